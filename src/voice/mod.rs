//! Voice: the rules of voice rooms and the ICE servers clients use to reach each other.
//!
//! Nothing in here owns a thread. `rooms.rs` is plain state that the **router thread**
//! owns one of; `turn.rs` is pure and runs on the **connection thread** answering
//! `GET /api/webrtc-config`.

pub mod rooms;
pub mod signaling;
pub mod turn;

pub use rooms::{Flags, RoomLimits, VoicePeer, VoiceRooms};
