//! The HTTP side: everything a connection thread does before (or instead of) a WebSocket
//! upgrade.
//!
//! Threads and owners inside:
//! - `server.rs` is the **accept loop** (its own thread, owns the listener) and the body of
//!   every **connection thread** (each owns its socket until an upgrade hands it to
//!   `realtime`);
//! - `limits.rs` is admission control: the derived connection ceiling and the per-IP
//!   tickets, shared by the accept loop (which takes tickets) and connection threads (which
//!   drop them);
//! - `heavy.rs` counts the history and search responses in flight per user and per address
//!   (shared by connection threads; a permit goes with each response's body);
//! - `request.rs` (parsing and writing one request, big bodies streamed under a
//!   whole-response deadline), `api.rs` (the routes), `assets.rs` (the
//!   embedded app), `auth.rs` (passwords, sessions, login throttles), `host.rs` (the
//!   `Host` check), `me.rs` (the user's own password and sessions) and `proxy.rs`
//!   (`TRUSTED_PROXIES`) run on the connection thread and own no state of their own beyond
//!   the shared throttles;
//! - `admin.rs` is the owner's `/api/admin/` routes (merge an imported account, the backup
//!   schedule), on the connection thread;
//! - `files.rs` is the routes of uploads and downloads, which read and write the socket
//!   themselves (a body streamed to disk, a file streamed from it) on the connection thread.

pub mod admin;
pub mod api;
pub mod assets;
pub mod auth;
pub mod files;
pub mod heavy;
pub mod host;
pub mod limits;
pub mod me;
pub mod proxy;
mod request;
pub mod server;

pub use request::*;
