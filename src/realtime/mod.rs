//! The realtime side: `/ws` chat and `/ws/voice` signaling connections after their upgrade.
//!
//! Threads and owners inside:
//! - `ws.rs` runs on each upgraded **connection thread**, its reader: the WebSocket
//!   transport and the whole handshake;
//! - `router.rs` is the **router thread**, the one owner of realtime state (connections,
//!   presence, typing, voice rooms, the channel list, last ids) and of fan-out;
//! - `writer.rs` is the **writer thread**, the one owner of every upgraded socket's write
//!   side, and the `Outbox` each connection's frames queue in;
//! - `trace.rs` times each stage of a chat message's path (histograms for `/metrics`);
//! - `frame.rs` (encoding server frames), `protocol.rs` (the wire types of API.md) and
//!   `coalesce.rs` (folding repeated state changes, per user) are pure and own nothing.

pub mod chat;
pub mod coalesce;
pub mod frame;
pub mod presence;
pub mod protocol;
pub mod router;
pub mod trace;
pub mod writer;
pub mod ws;
