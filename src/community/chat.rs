//! The permission side of the `/ws` chat ops (send, edit, delete, react, pin): what a
//! member may do to a channel or to a message, slow mode, and which `@everyone` / `@here`
//! / `@role` mentions a message may make. `realtime/chat.rs` calls these; the checks that
//! need a message's channel run inside the op's store job (`guard`), against the snapshot
//! published when the op was read, so no check asks SQLite for permissions.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};

use super::perms::Perms;
use super::rows;
use super::snapshot::{Snapshot, EVERYONE};
use crate::error::{ApiError, ApiResult};
use crate::model::{Message, User};
use crate::App;

/// Slow-mode clocks kept before the oldest are swept: one per member and slowed channel
/// they wrote in; past this many, entries older than the longest slow mode go.
const SLOWMODE_ENTRIES: usize = 10_000;
const SLOWMODE_LONGEST: Duration = Duration::from_secs(6 * 3600);

/// A channel the user may not see answers exactly like one that does not exist.
pub fn no_channel(name: &str) -> ApiError {
    ApiError::not_found(format!("no channel named {name:?}"))
}

fn forbidden(s: &Snapshot, user: &User, p: Perms) -> ApiError {
    if s.timeout_until(user.id, crate::store::now_ms()).is_some() {
        return ApiError::forbidden("you are timed out");
    }
    ApiError::forbidden(format!("you need {} here", p.names().join(", ")))
}

/// What a `send` to `channel` may do: refused without `view_channel` (as unknown),
/// `send_messages` (or during a timeout) and, with files, `attach_files`; then slow mode.
/// Returns the sender's permissions there, for `mentions`.
pub fn check_send(app: &App, user: &User, channel: &str, with_files: bool) -> ApiResult<Perms> {
    let s = app.community.snapshot();
    let p = s
        .in_channel(user.id, channel)
        .filter(|p| p.has(Perms::VIEW_CHANNEL))
        .ok_or_else(|| no_channel(channel))?;
    for need in [Perms::SEND_MESSAGES, Perms::ATTACH_FILES] {
        if (need == Perms::SEND_MESSAGES || with_files) && !p.has(need) {
            return Err(forbidden(&s, user, need));
        }
    }
    if let Some(&secs) = s.slowmode.get(channel) {
        if !p.has(Perms::MANAGE_MESSAGES) {
            slow_mode(app, user.id, channel, Duration::from_secs(u64::from(secs)))?;
        }
    }
    Ok(p)
}

/// One send of `user_id` to a slowed channel: `rate_limited` (with the wait) if the last
/// one was less than `every` ago, else the clock restarts now.
fn slow_mode(app: &App, user_id: i64, channel: &str, every: Duration) -> ApiResult<()> {
    let now = Instant::now();
    let mut clocks = app
        .community
        .slowmode
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = (user_id, channel.to_string());
    if let Some(last) = clocks.get(&key) {
        let since = now.duration_since(*last);
        if since < every {
            let wait = (every - since).as_millis() as u64;
            return Err(ApiError::rate_limited(wait.max(1)));
        }
    }
    if clocks.len() >= SLOWMODE_ENTRIES {
        clocks.retain(|_, t| now.duration_since(*t) < SLOWMODE_LONGEST);
    }
    clocks.insert(key, now);
    Ok(())
}

/// The mentions a message may make: `@everyone` / `@here`, and `@role` for each role named,
/// only with `mention_everyone` (API.md); otherwise they stay plain text and notify nobody.
pub fn mentions(s: &Snapshot, perms: Perms, content: &str) -> (bool, Vec<i64>) {
    if !perms.has(Perms::MENTION_EVERYONE) {
        return (false, Vec::new());
    }
    let everyone = mentioned(content, "everyone") || mentioned(content, "here");
    let roles = s
        .roles
        .iter()
        .filter(|r| r.id != EVERYONE && mentioned(content, &r.name))
        .map(|r| r.id)
        .collect();
    (everyone, roles)
}

/// Whether `@name` occurs in `content` (ignoring case) and is not the start of a longer
/// word (`@here` is not in `@hereford`).
fn mentioned(content: &str, name: &str) -> bool {
    let (hay, needle) = (content.to_lowercase(), format!("@{}", name.to_lowercase()));
    hay.match_indices(&needle).any(|(at, m)| {
        hay[at + m.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// How long a send that may use `@here` waits for the router to say who is online. The
/// answer is one `HashSet` copy; past this the message is still sent, `@here` then reaching
/// nobody rather than holding the sender's socket.
const ONLINE_WAIT: Duration = Duration::from_secs(2);

/// Who `@here` reaches: the members with a `/ws` open. Asked of the router only when the
/// message says `@here` and `may` use it (and not `@everyone`, which reaches them anyway),
/// so an ordinary message costs nothing. Runs on the sender's thread, before the store job.
pub fn online_for(app: &App, may: bool, content: &str) -> HashSet<i64> {
    if !may || !mentioned(content, "here") || mentioned(content, "everyone") {
        return HashSet::new();
    }
    let (done, answer) = crossbeam_channel::bounded(1);
    app.router
        .send(crate::realtime::router::Cmd::Connected { done });
    answer.recv_timeout(ONLINE_WAIT).unwrap_or_default()
}

/// Stores the allowed mentions of a just-inserted message, puts them on its object, and
/// settles its mention rows (`settle_mentions`).
pub fn record_mentions(
    conn: &Connection,
    s: &Snapshot,
    m: &mut Message,
    allowed: &(bool, Vec<i64>),
    online: &HashSet<i64>,
) -> ApiResult<()> {
    if allowed.0 || !allowed.1.is_empty() {
        rows::set_mentions(conn, m.id, allowed.0, &allowed.1)?;
        m.mention_everyone = allowed.0;
        m.mention_roles = allowed.1.clone();
    }
    settle_mentions(conn, s, m.id, &m.content, allowed, online)
}

/// Makes a message's mention rows (what unread mention counts, desktop notifications and
/// Web Push read, `store/social.rs`) follow the rule of API.md — "a mention is `@username`
/// of a member who can see the channel, or an allowed `@everyone` / `@here` / `@role`":
/// it drops the `@username` (and DM) rows `store/social.rs` wrote for members who cannot
/// see the channel (issue 13's known limit: a ping from a private channel counted the day
/// its target was let in), then adds one row for every member an allowed group mention
/// reaches: `@everyone` every member, `@here` those in `online`, `@role` its holders —
/// only members who can see the channel, never banned ones, never the author. Inside the
/// message's store job, after `store/social.rs` wrote the `@username` rows (an edit deletes
/// and rewrites them all), on every send and every edit.
pub fn settle_mentions(
    conn: &Connection,
    s: &Snapshot,
    message_id: i64,
    content: &str,
    allowed: &(bool, Vec<i64>),
    online: &HashSet<i64>,
) -> ApiResult<()> {
    let mut st = conn.prepare_cached("SELECT user_id FROM mentions WHERE message_id = ?1")?;
    let named: Vec<i64> = st
        .query_map(params![message_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    // The common message names nobody and says no `@everyone`: one index lookup, done.
    if named.is_empty() && !allowed.0 && allowed.1.is_empty() {
        return Ok(());
    }
    let (channel, author) = rows::message_place(conn, message_id)?;
    let mut unseen =
        conn.prepare_cached("DELETE FROM mentions WHERE message_id = ?1 AND user_id = ?2")?;
    for id in named {
        if !s.can_view(id, &channel) {
            unseen.execute(params![message_id, id])?;
        }
    }
    let mut reach: HashSet<i64> = HashSet::new();
    if allowed.0 && mentioned(content, "everyone") {
        let mut st = conn.prepare_cached("SELECT id FROM users")?;
        for id in st.query_map([], |r| r.get::<_, i64>(0))? {
            reach.insert(id?);
        }
    } else if allowed.0 {
        reach.extend(online);
    }
    for (user, roles) in &s.member_roles {
        if roles.iter().any(|r| allowed.1.contains(r)) {
            reach.insert(*user);
        }
    }
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO mentions (user_id, channel_id, message_id)
         SELECT ?1, channel_id, id FROM messages WHERE id = ?2",
    )?;
    for id in reach {
        if id != author && !s.banned.contains(&id) && s.can_view(id, &channel) {
            insert.execute(params![id, message_id])?;
        }
    }
    Ok(())
}

/// What an op on an existing message needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Edit,
    Delete,
    React,
    Pin,
}

/// Inside the op's store job: the message's channel must be visible to `user` (else the
/// message does not exist for them), and the op allowed there. Returns the channel name
/// and whether `user` moderates it (`manage_messages`: may delete others' messages).
pub fn guard(
    conn: &Connection,
    s: &Snapshot,
    user: &User,
    id: i64,
    op: Op,
) -> ApiResult<(String, bool)> {
    let (channel, _author) = rows::message_place(conn, id)?;
    let p = s
        .in_channel(user.id, &channel)
        .filter(|p| p.has(Perms::VIEW_CHANNEL))
        .ok_or_else(|| ApiError::not_found("no such message"))?;
    let need = match op {
        Op::Edit | Op::Delete => Perms::NONE,
        Op::React => Perms::ADD_REACTIONS,
        Op::Pin => Perms::MANAGE_MESSAGES,
    };
    if !p.has(need) {
        return Err(forbidden(s, user, need));
    }
    Ok((channel, p.has(Perms::MANAGE_MESSAGES)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_match_whole_names_only_and_need_the_permission() {
        assert!(mentioned("hi @everyone!", "everyone"));
        assert!(mentioned("@HERE", "here"));
        assert!(!mentioned("@hereford", "here"));
        assert!(!mentioned("everyone", "everyone"));
        assert!(mentioned("ping @mods, please", "mods"));
        let s = Snapshot::default();
        assert_eq!(
            mentions(&s, Perms::EVERYONE_DEFAULT, "@everyone"),
            (false, vec![])
        );
        assert!(mentions(&s, Perms::ALL, "@everyone").0);
    }
}
