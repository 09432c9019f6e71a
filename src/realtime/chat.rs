//! The chat ops of API.md — send, edit, delete, react, typing — as one named function each,
//! and `commit_then_publish`, the one way a committed change reaches every `/ws` client.
//!
//! The op functions run on a `/ws` reader's connection thread: they check the input
//! (`validate.rs`) and the sender's rate limit, queue the store job, and return without
//! waiting for the commit. What happens after the commit runs on the store thread.
//! HTTP routes that change what `/ws` clients see (channel create and delete) use
//! `commit_then_publish` too, so there is one home for the ordering rule below.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use rusqlite::Connection;

use super::frame;
use super::protocol::ServerEvent;
use super::router::{Cmd, RouterHandle};
use super::trace::{Stage, Trace};
use super::writer::Outbox;
use crate::community::chat::{self as guard, Op};
use crate::error::{ApiError, ApiResult};
use crate::metrics::METRICS;
use crate::model::User;
use crate::{store, validate, App};

/// The right to publish one committed change, handed only to the answer of
/// `commit_then_publish`.
pub struct Publisher {
    router: RouterHandle,
}

impl Publisher {
    /// Sends `event` to every `/ws` connection (through the router).
    pub fn publish(self, event: ServerEvent) {
        self.router.send(Cmd::Publish(event, None));
    }

    /// `publish` of a new message, whose path is timed stage by stage (`trace.rs`).
    pub fn publish_traced(self, event: ServerEvent, trace: Trace) {
        self.router.send(Cmd::Publish(event, Some(trace)));
    }

    /// Sends a committed community change (new permissions, a channel change, their
    /// events) to the router (`community/`).
    pub fn community(self, update: crate::community::Update) {
        self.router.send(Cmd::Community(Box::new(update)));
    }
}

/// Queues `job` for the store's next transaction, and returns at once. After the COMMIT,
/// `answer` runs with the job's result and a `Publisher`; it must not block.
///
/// The per-channel id-order rule lives here: every client must see a channel's messages in
/// id order. Ids are handed out in commit order, and the store runs the answers of a batch
/// on its own thread in that same order, so an event published from inside the answer
/// reaches the router — which keeps the order of what it is sent — in id order. Publishing
/// from anywhere else (say, from the caller after it waited for the result) lets two
/// connection threads race and a channel arrive out of order. So a change that clients
/// must see is published only through the `Publisher` this hands to `answer`.
pub fn commit_then_publish<R, F, A>(app: &App, job: F, answer: A) -> ApiResult<()>
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> ApiResult<R> + Send + 'static,
    A: FnOnce(ApiResult<R>, Publisher) + Send + 'static,
{
    let router = app.router.clone();
    app.store
        .submit(job, move |result| answer(result, Publisher { router }))
}

/// Who a chat op comes from: the user, and their `/ws` connection (for answers that go to
/// that connection only).
pub struct Client<'a> {
    pub conn: u64,
    pub user: &'a User,
    pub outbox: &'a Arc<Outbox>,
    /// When the reader read the op's frame (the start of a message's timed path).
    pub read: Trace,
}

impl Client<'_> {
    /// An `error` event to this connection only.
    fn error(&self, e: &ApiError, nonce: Option<String>) {
        reply_error(self.outbox, e, nonce);
    }

    /// One token from the user's send bucket (`SEND_RATE`, `SEND_BURST`), shared by all of
    /// their tabs: send, edit, delete and react all spend it.
    fn take_send_token(&self, app: &App) -> ApiResult<()> {
        app.send_limit
            .take(self.user.id)
            .map_err(ApiError::rate_limited)
    }
}

/// Pushes an `error` event to one connection; never blocks (safe on the store thread).
fn reply_error(outbox: &Arc<Outbox>, e: &ApiError, nonce: Option<String>) {
    let _ = outbox.push(frame::json(&ServerEvent::error(e, nonce)));
}

/// `send`: a new message, idempotent per `nonce`. Everyone gets the `message` event; a
/// repeated nonce gets the stored message back, to this connection only.
pub fn send(
    app: &App,
    from: &Client,
    channel: String,
    content: String,
    nonce: Option<String>,
    reply_to: Option<i64>,
    attachments: Vec<String>,
) {
    let checked = validate::message_content(&content, !attachments.is_empty())
        .and_then(|c| nonce.as_deref().map_or(Ok(()), validate::nonce).map(|_| c))
        .and_then(|c| {
            // Permissions and slow mode before the token: a refused send is not stored.
            guard::check_send(app, from.user, &channel, !attachments.is_empty()).map(|p| (c, p))
        })
        .and_then(|c| from.take_send_token(app).map(|_| c));
    let (content, perms) = match checked {
        Ok(c) => c,
        Err(e) => return from.error(&e, nonce),
    };
    let snapshot = app.community.snapshot();
    let mentions = guard::mentions(&snapshot, perms, &content);
    let online = guard::online_for(app, mentions.0, &content);
    let (user, n, outbox) = (from.user.clone(), nonce.clone(), from.outbox.clone());
    let (push, author_id, trace) = (app.push.clone(), from.user.id, from.read);
    let queued = commit_then_publish(
        app,
        move |c| {
            let (mut m, repeated) = store::insert_message(
                c,
                &user,
                &channel,
                &content,
                reply_to,
                n.as_deref(),
                &attachments,
            )?;
            if !repeated {
                guard::record_mentions(c, &snapshot, &mut m, &mentions, &online)?;
            }
            Ok((m, repeated))
        },
        move |result, publisher| match result {
            Ok((message, false)) => {
                trace.stage(Stage::Commit);
                METRICS.messages_stored.fetch_add(1, Relaxed);
                // Web Push to those with no tab open (issue 14); never blocks.
                push.offer(&message, author_id);
                publisher.publish_traced(ServerEvent::Message { message, nonce }, trace);
            }
            Ok((message, true)) => {
                let _ = outbox.push(frame::json(&ServerEvent::Message { message, nonce }));
            }
            Err(e) => reply_error(&outbox, &e, nonce),
        },
    );
    if let Err(e) = queued {
        from.error(&e, None);
    }
}

/// `edit`: the author changes a message's content; everyone gets `message_update`.
pub fn edit(app: &App, from: &Client, id: i64, content: String) {
    let checked = validate::content(&content).and_then(|c| from.take_send_token(app).map(|_| c));
    let content = match checked {
        Ok(c) => c,
        Err(e) => return from.error(&e, None),
    };
    let (user, s) = (from.user.clone(), app.community.snapshot());
    // Whether the author may use `@here` in that channel is known only in the job; asking
    // who is online for every edit that says `@here` is cheap (edits are rate-limited).
    let online = guard::online_for(app, true, &content);
    broadcast_after_commit(
        app,
        from,
        move |c| {
            let (channel, _) = guard::guard(c, &s, &user, id, Op::Edit)?;
            // The new text's mentions, as the author may make them now.
            let perms = s.in_channel(user.id, &channel).unwrap_or_default();
            let allowed = guard::mentions(&s, perms, &content);
            crate::community::rows::set_mentions(c, id, allowed.0, &allowed.1)?;
            let message = store::edit_message(c, &user, id, &content)?;
            // After the edit rewrote the `@username` rows.
            guard::settle_mentions(c, &s, id, &content, &allowed, &online)?;
            Ok(message)
        },
        |message| ServerEvent::MessageUpdate { message },
    );
}

/// `delete`: the author, or a member with `manage_messages` in the channel, removes a
/// message; the channel's viewers get `message_delete`. A moderator's delete of someone
/// else's message is in the audit log.
pub fn delete(app: &App, from: &Client, id: i64) {
    if let Err(e) = from.take_send_token(app) {
        return from.error(&e, None);
    }
    let (user, blobs, s) = (
        from.user.clone(),
        app.files.blobs.clone(),
        app.community.snapshot(),
    );
    broadcast_after_commit(
        app,
        from,
        move |c| {
            let (channel, moderator) = guard::guard(c, &s, &user, id, Op::Delete)?;
            let (_, author) = crate::community::rows::message_place(c, id)?;
            store::delete_message(c, &blobs, &user, id, moderator)?;
            if author != user.id {
                let what = format!("message {id} in #{channel}");
                crate::community::rows::audit(c, user.id, "message_delete", &what, "")?;
            }
            Ok(channel)
        },
        move |channel| ServerEvent::MessageDelete { id, channel },
    );
}

/// `pin`: a member with `manage_messages` pins or unpins a message; the channel's viewers
/// get `message_update` with `pinned`, and the audit log an entry.
pub fn pin(app: &App, from: &Client, id: i64, on: bool) {
    let (user, s) = (from.user.clone(), app.community.snapshot());
    broadcast_after_commit(
        app,
        from,
        move |c| {
            let (channel, _) = guard::guard(c, &s, &user, id, Op::Pin)?;
            if crate::community::rows::set_pin(c, id, user.id, on)? {
                let action = if on { "pin" } else { "unpin" };
                let what = format!("message {id} in #{channel}");
                crate::community::rows::audit(c, user.id, action, &what, "")?;
            }
            store::message(c, id)?.ok_or_else(|| ApiError::not_found("no such message"))
        },
        |message| ServerEvent::MessageUpdate { message },
    );
}

/// `react`: toggles the user's emoji on a message; everyone gets `reaction`.
pub fn react(app: &App, from: &Client, id: i64, emoji: String) {
    if let Err(e) = validate::emoji(&emoji).and_then(|_| from.take_send_token(app)) {
        return from.error(&e, None);
    }
    let (user, e2, name) = (from.user.clone(), emoji.clone(), from.user.username.clone());
    let s = app.community.snapshot();
    broadcast_after_commit(
        app,
        from,
        move |c| {
            guard::guard(c, &s, &user, id, Op::React)?;
            store::toggle_reaction(c, &user, id, &e2)
        },
        move |(channel, on)| ServerEvent::Reaction {
            id,
            channel,
            emoji,
            user: name,
            on,
        },
    );
}

/// The shape edit, delete and react share once their checks passed: commit `job`, then
/// publish `event` of its result to everyone, or tell this connection what went wrong.
fn broadcast_after_commit<R, F, E>(app: &App, from: &Client, job: F, event: E)
where
    R: Send + 'static,
    F: FnOnce(&Connection) -> ApiResult<R> + Send + 'static,
    E: FnOnce(R) -> ServerEvent + Send + 'static,
{
    let outbox = from.outbox.clone();
    let queued = commit_then_publish(app, job, move |result, publisher| match result {
        Ok(r) => publisher.publish(event(r)),
        Err(e) => reply_error(&outbox, &e, None),
    });
    if let Err(e) = queued {
        from.error(&e, None);
    }
}

/// `typing`: the router forwards it to everyone else, at most once per
/// `presence::TYPING_INTERVAL` per user and channel. Nothing is stored.
pub fn typing(app: &App, from: &Client, channel: String) {
    app.router.send(Cmd::Typing {
        conn: from.conn,
        channel,
    });
}
