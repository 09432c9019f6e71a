//! Roles, permissions and moderation (API.md "Run a community"; issue 13).
//!
//! Who owns what:
//! - `perms.rs` — pure: the permission bits and names, THE function
//!   `permissions(member, overwrites)`, and the hierarchy rules. Called from every path.
//! - `snapshot.rs` — the in-memory picture (roles, member roles, overwrites, timeouts,
//!   bans, owners). Built on the **store thread** inside the job that changed it, published
//!   after COMMIT through `Community::publish` (an `Arc<Snapshot>` swapped behind a
//!   `RwLock`), and sent to the router in the same answer (`Cmd::Community`). Readers and
//!   routes read the published one; nothing asks SQLite about permissions per message.
//! - `rows.rs` — the SQL of roles, member roles, overwrites, bans, timeouts, the audit log,
//!   pins and channel settings. Runs on the store thread.
//! - `routes.rs` — the REST calls of the API.md table (connection threads).
//! - `chat.rs` — the permission checks of the `/ws` ops (send, edit, delete, react, typing,
//!   pin): slow mode, allowed mentions, the guard every op job runs (reader threads and the
//!   store thread).
//! - `visibility.rs` — owned by the **router thread**: per channel, the connections that
//!   may see it, recomputed only when a snapshot or the channel list changes; gaining or
//!   losing sight of a channel becomes `channel_create` / `channel_delete` for that user.
//! - `expiry.rs` — the **timeouts thread**: sleeps until the earliest timeout ends, then
//!   commits its end like any other change (`member_update`, new permissions pushed).

pub mod chat;
pub mod expiry;
pub mod perms;
pub mod routes;
pub mod rows;
pub mod snapshot;
pub mod visibility;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

pub use perms::Perms;
pub use snapshot::{ChannelView, MemberView, Role, Snapshot};

use crate::model::Channel;
use crate::realtime::protocol::ServerEvent;

/// What every thread shares of the community: the published snapshot, and the slow-mode
/// clocks (per user and channel, the last accepted send).
pub struct Community {
    snapshot: RwLock<Arc<Snapshot>>,
    pub(crate) slowmode: Mutex<HashMap<(i64, String), Instant>>,
    /// A token per publish, for the timeout clock (`expiry.rs`) to look again. Bounded to
    /// one: a wake-up already waiting says all there is to say, and the store thread's
    /// `try_send` never blocks.
    published: (Sender<()>, Receiver<()>),
}

impl Community {
    pub fn new(snapshot: Snapshot) -> Community {
        Community {
            snapshot: RwLock::new(Arc::new(snapshot)),
            slowmode: Mutex::new(HashMap::new()),
            published: crossbeam_channel::bounded(1),
        }
    }

    /// Wakes up after each `publish` (the timeout clock waits on it).
    pub fn changes(&self) -> Receiver<()> {
        self.published.1.clone()
    }

    /// The snapshot of the last committed change.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes `s` the current snapshot. Only the store thread calls it, after the COMMIT of
    /// the job that built `s`, so snapshots are published in commit order.
    pub fn publish(&self, s: Arc<Snapshot>) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = s;
        let _ = self.published.0.try_send(());
    }
}

/// A change to the channel list, as the router must apply it.
#[derive(Debug, Clone)]
pub enum ChannelChange {
    Created(Channel),
    Updated {
        channel: Channel,
        renamed_from: Option<String>,
    },
    Deleted(String),
}

/// What a committed community change tells the router: the new snapshot (if permissions
/// changed), the channel list change (if any), and events for everyone (`roles`,
/// `member_update`) or for a channel's viewers (`message_update`, `message_delete`).
#[derive(Debug, Default)]
pub struct Update {
    pub snapshot: Option<Arc<Snapshot>>,
    pub channel: Option<ChannelChange>,
    pub events: Vec<ServerEvent>,
}
