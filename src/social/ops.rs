//! The `/ws` ops of issue 14 — `read` and `status` — and what a new `/ws` connection needs
//! from the store before it joins (its status and read state, for `ready`). They run on a
//! reader's connection thread like the chat ops (`realtime/chat.rs`): check, queue the
//! store job, return; the answer runs on the store thread after the COMMIT.

use std::collections::BTreeMap;

use super::Status;
use crate::error::ApiError;
use crate::ratelimit::PerUser;
use crate::realtime::chat::Client;
use crate::realtime::frame;
use crate::realtime::protocol::ServerEvent;
use crate::realtime::router::Cmd;
use crate::store::{self, Unread};
use crate::App;

/// `read` and `status` ops per user, all tabs together: a client marks a channel read as
/// messages arrive and scrolls by, so a burst of 30; then 10 a second is far above what a
/// person causes, and keeps a script from turning them into a flood of store writes.
const OPS_RATE: f64 = 10.0;
const OPS_BURST: f64 = 30.0;

pub fn budget() -> PerUser {
    PerUser::new(OPS_RATE, OPS_BURST)
}

/// One token of the user's `read`/`status` budget, or a `rate_limited` error to this socket.
fn take_token(app: &App, from: &Client) -> bool {
    match app.social_ops.take(from.user.id) {
        Ok(()) => true,
        Err(ms) => {
            let e = ApiError::rate_limited(ms);
            let _ = from.outbox.push(frame::json(&ServerEvent::error(&e, None)));
            false
        }
    }
}

/// What `ready` carries of the store for `user_id`: the status they chose and the read state
/// of every text channel. A store that is too busy to answer in its read budget costs this
/// connection its unread counts (each channel then shows as read up to nothing, as a new
/// device would), not the connection itself.
pub fn join_state(app: &App, user_id: i64) -> (Status, BTreeMap<String, Unread>) {
    match app.store.read(move |c| {
        Ok((
            store::chosen_status(c, user_id)?,
            store::unread(c, user_id)?,
        ))
    }) {
        Ok(state) => state,
        Err(e) => {
            log::warn!("read state of user {user_id} not loaded for ready: {e}");
            (Status::Online, BTreeMap::new())
        }
    }
}

/// `{"type":"read","channel","id"}`: moves the user's read marker, then tells their other
/// connections (API.md: "pushed to the user's other connections").
pub fn read(app: &App, from: &Client, channel: String, id: i64) {
    if !take_token(app, from) {
        return;
    }
    // A channel this user cannot see answers as one that does not exist ("Run a community").
    if !app.community.snapshot().can_view(from.user.id, &channel) {
        let e = ApiError::not_found("no such channel");
        let _ = from.outbox.push(frame::json(&ServerEvent::error(&e, None)));
        return;
    }
    let (user_id, conn, outbox) = (from.user.id, from.conn, from.outbox.clone());
    let router = app.router.clone();
    let ch = channel.clone();
    let queued = app.store.submit(
        move |c| store::mark_read(c, user_id, &ch, id),
        move |result| match result {
            Ok(u) => router.send(Cmd::ToUser {
                user_id,
                except_conn: Some(conn),
                event: ServerEvent::Read {
                    channel,
                    id: u.last_read_id,
                    mentions: u.mentions,
                },
            }),
            Err(e) => {
                let _ = outbox.push(frame::json(&ServerEvent::error(&e, None)));
            }
        },
    );
    if let Err(e) = queued {
        let _ = from.outbox.push(frame::json(&ServerEvent::error(&e, None)));
    }
}

/// `{"type":"status","status":…}`: kept in the store (do not disturb must also hold while
/// no tab is open), then every `/ws` is told what it shows.
pub fn status(app: &App, from: &Client, status: String) {
    let Some(status) = Status::parse(&status) else {
        let e = ApiError::bad_request("status must be online, idle, dnd or invisible");
        let _ = from.outbox.push(frame::json(&ServerEvent::error(&e, None)));
        return;
    };
    if !take_token(app, from) {
        return;
    }
    let (user_id, outbox, router) = (from.user.id, from.outbox.clone(), app.router.clone());
    let queued = app.store.submit(
        move |c| store::set_status(c, user_id, status),
        move |result| match result {
            Ok(()) => router.send(Cmd::Status { user_id, status }),
            Err(e) => {
                let _ = outbox.push(frame::json(&ServerEvent::error(&e, None)));
            }
        },
    );
    if let Err(e) = queued {
        let _ = from.outbox.push(frame::json(&ServerEvent::error(&e, None)));
    }
}
