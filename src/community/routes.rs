//! The REST calls of API.md "Roles, permissions and moderation": roles, members and their
//! roles, channel overwrites and settings, kick, ban, timeout, the audit log and pins. Runs
//! on connection threads. Every change is one store job that loads the snapshot it checks
//! against (so two racing moderators cannot both pass on a stale picture), writes its rows
//! and its audit entry, and loads the snapshot after; the answer publishes that snapshot
//! and the events after the COMMIT, in commit order (`commit_update`).

use std::sync::Arc;

use rusqlite::Connection;
use serde::Deserialize;
use serde_json::json;

use super::perms::{self, Perms, Rank};
use super::rows;
use super::snapshot::{Snapshot, EVERYONE};
use super::{ChannelChange, Update};
use crate::error::{ApiError, ApiResult};
use crate::http::api::{body, signed_in};
use crate::http::{percent_decode, Request, Response};
use crate::model::{Channel, ChannelKind, User, VoiceMode};
use crate::realtime::chat::commit_then_publish;
use crate::realtime::frame::code;
use crate::realtime::protocol::ServerEvent;
use crate::realtime::router::Sessions;
use crate::store::{self, now_ms};
use crate::{validate, App};

/// Role names, category names: 1–32 characters (API.md for roles), no control characters.
const MAX_NAME_CHARS: usize = 32;
/// A moderation reason is a sentence, not an essay; it is shown in the audit log and in
/// the close reason of a kicked user's sockets (which WebSocket caps at 123 bytes anyway).
const MAX_REASON_CHARS: usize = 512;
/// Discord's longest slow mode is 6 hours.
const MAX_SLOWMODE_S: u32 = 6 * 3600;
/// The longest timeout, 28 days as in Discord: longer is a ban.
const MAX_TIMEOUT_MS: i64 = 28 * 24 * 3600 * 1000;
/// A ban may delete at most the last 7 days of the user's messages (as Discord).
const MAX_DELETE_MESSAGES_S: i64 = 7 * 24 * 3600;
const AUDIT_DEFAULT: i64 = 50;
const AUDIT_MAX: i64 = 100;

/// Answers the community routes; `None` for any other path.
pub fn route(req: &Request, app: &App) -> Option<ApiResult<Response>> {
    let path = req.path.as_str();
    let m = req.method.as_str();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    Some(match (m, parts.as_slice()) {
        ("GET", ["api", "roles"]) => list_roles(req, app),
        ("POST", ["api", "roles"]) => create_role(req, app),
        ("PATCH", ["api", "roles", id]) => patch_role(req, app, id),
        ("DELETE", ["api", "roles", id]) => delete_role(req, app, id),
        ("GET", ["api", "members"]) => list_members(req, app),
        (m @ ("PUT" | "DELETE"), ["api", "members", user, "roles", id]) => {
            decode(user).and_then(|u| member_role(req, app, &u, id, m == "PUT"))
        }
        ("POST", ["api", "members", user, "kick"]) => decode(user).and_then(|u| kick(req, app, &u)),
        ("POST", ["api", "members", user, "timeout"]) => {
            decode(user).and_then(|u| timeout(req, app, &u))
        }
        ("POST", ["api", "bans"]) => ban(req, app),
        ("GET", ["api", "bans"]) => list_bans(req, app),
        ("DELETE", ["api", "bans", user]) => decode(user).and_then(|u| unban(req, app, &u)),
        ("GET", ["api", "audit-log"]) => audit_log(req, app),
        ("GET", ["api", "pins"]) => pins(req, app),
        ("PATCH", ["api", "channels", name]) => {
            decode(name).and_then(|n| patch_channel(req, app, &n))
        }
        (m @ ("PUT" | "DELETE"), ["api", "channels", name, "overwrites", id]) => {
            decode(name).and_then(|n| overwrite(req, app, &n, id, m == "PUT"))
        }
        (
            _,
            ["api", "roles"]
            | ["api", "roles", _]
            | ["api", "members"]
            | ["api", "members", _, "roles", _]
            | ["api", "members", _, "kick" | "timeout"]
            | ["api", "bans"]
            | ["api", "bans", _]
            | ["api", "audit-log"]
            | ["api", "pins"]
            | ["api", "channels", _, "overwrites", _],
        ) => Err(ApiError::new(
            crate::error::Code::MethodNotAllowed,
            "method not allowed here",
        )),
        _ => return None,
    })
}

fn decode(s: &str) -> ApiResult<String> {
    percent_decode(s).ok_or_else(|| ApiError::not_found("no such thing"))
}

fn role_id(s: &str) -> ApiResult<i64> {
    s.parse().map_err(|_| ApiError::not_found("no such role"))
}

/// The signed-in user, refused with 403 unless they hold `p` server-wide (owner and
/// `administrator` hold everything).
pub fn require(req: &Request, app: &App, p: Perms) -> ApiResult<User> {
    let (user, _) = signed_in(req, app)?;
    if !app.community.snapshot().server(user.id).has(p) {
        return Err(missing(p));
    }
    Ok(user)
}

fn missing(p: Perms) -> ApiError {
    ApiError::forbidden(format!("you need {}", p.names().join(", ")))
}

/// Checks `p` server-wide against the snapshot of the job.
fn need(s: &Snapshot, user: &User, p: Perms) -> ApiResult<()> {
    if s.server(user.id).has(p) {
        Ok(())
    } else {
        Err(missing(p))
    }
}

/// 1–`max` characters after trimming, no control characters.
fn short_text(raw: &str, what: &str, max: usize, min: usize) -> ApiResult<String> {
    let t = raw.trim();
    let n = t.chars().count();
    if n < min || n > max {
        return Err(ApiError::bad_request(format!(
            "{what} must be {min} to {max} characters"
        )));
    }
    if t.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(t.to_string())
}

fn reason(r: Option<String>) -> ApiResult<String> {
    short_text(r.as_deref().unwrap_or(""), "reason", MAX_REASON_CHARS, 0)
}

fn color(c: &str) -> ApiResult<String> {
    let ok = c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if !ok {
        return Err(ApiError::bad_request("color must be \"#rrggbb\" or null"));
    }
    Ok(c.to_ascii_lowercase())
}

/// What a job asks to be told once it committed, built from the snapshot after it.
pub enum After {
    /// The full role list, to everyone.
    Roles,
    /// This member's roles and timeout, to everyone.
    Member(User),
    /// An event as it is (channel events go only to the channel's viewers).
    Event(ServerEvent),
}

/// Runs `job` in the store's next transaction with the snapshot before it, loads the
/// snapshot after it, and — after the COMMIT, on the store thread, in commit order —
/// publishes that snapshot and hands the router the channel change and the events. Waits
/// for the result, so the response goes out once the change is durable and on its way.
pub fn commit_update<R, F>(app: &App, job: F) -> ApiResult<R>
where
    R: Send + 'static,
    F: FnOnce(&Connection, &Snapshot) -> ApiResult<(R, Option<ChannelChange>, Vec<After>)>
        + Send
        + 'static,
{
    let community = app.community.clone();
    let (reply_tx, reply_rx) = crossbeam_channel::bounded::<ApiResult<R>>(1);
    commit_then_publish(
        app,
        move |c| {
            let before = Snapshot::load(c)?;
            let (r, channel, after) = job(c, &before)?;
            let snapshot = Snapshot::load(c)?;
            let mut events = Vec::new();
            for a in after {
                events.push(match a {
                    After::Roles => ServerEvent::Roles {
                        roles: snapshot.roles.clone(),
                    },
                    After::Member(u) => ServerEvent::MemberUpdate {
                        member: snapshot.member(&u),
                    },
                    After::Event(e) => e,
                });
            }
            Ok((r, snapshot, channel, events))
        },
        move |result, publisher| {
            let result = result.map(|(r, snapshot, channel, events)| {
                let snapshot = Arc::new(snapshot);
                community.publish(snapshot.clone());
                publisher.community(Update {
                    snapshot: Some(snapshot),
                    channel,
                    events,
                });
                r
            });
            let _ = reply_tx.send(result);
        },
    )?;
    reply_rx.recv().map_err(|_| ApiError::internal())?
}

fn list_roles(req: &Request, app: &App) -> ApiResult<Response> {
    signed_in(req, app)?;
    Ok(Response::json(200, &json!(app.community.snapshot().roles)))
}

#[derive(Deserialize)]
struct NewRole {
    name: String,
    #[serde(default)]
    color: Option<String>,
    #[serde(default)]
    hoist: bool,
    #[serde(default)]
    permissions: Vec<String>,
}

fn create_role(req: &Request, app: &App) -> ApiResult<Response> {
    let user = require(req, app, Perms::MANAGE_ROLES)?;
    let b: NewRole = body(req)?;
    let name = short_text(&b.name, "name", MAX_NAME_CHARS, 1)?;
    let color = b.color.as_deref().map(color).transpose()?;
    let perms = Perms::from_names(&b.permissions)?;
    let role = commit_update(app, move |c, s| {
        need(s, &user, Perms::MANAGE_ROLES)?;
        perms::may_grant(s.server(user.id), perms)?;
        let id = rows::insert_role(c, &name, color.as_deref(), b.hoist, perms)?;
        rows::audit(c, user.id, "role_create", &name, "")?;
        Ok((id, None, vec![After::Roles]))
    })?;
    let snap = app.community.snapshot();
    Ok(Response::json(201, &json!(snap.role(role))))
}

#[derive(Deserialize)]
struct RolePatchBody {
    #[serde(default)]
    name: Option<String>,
    /// Absent: unchanged; null: no colour.
    #[serde(default, deserialize_with = "some")]
    color: Option<Option<String>>,
    #[serde(default)]
    hoist: Option<bool>,
    #[serde(default)]
    permissions: Option<Vec<String>>,
    #[serde(default)]
    position: Option<i64>,
}

/// Tells a field given as `null` (Some(None)) from one left out (None).
fn some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

fn patch_role(req: &Request, app: &App, id: &str) -> ApiResult<Response> {
    let user = require(req, app, Perms::MANAGE_ROLES)?;
    let id = role_id(id)?;
    let b: RolePatchBody = body(req)?;
    let patch = rows::RolePatch {
        name: b
            .name
            .as_deref()
            .map(|n| short_text(n, "name", MAX_NAME_CHARS, 1))
            .transpose()?,
        color: b
            .color
            .map(|c| c.as_deref().map(color).transpose())
            .transpose()?,
        hoist: b.hoist,
        permissions: b
            .permissions
            .as_deref()
            .map(Perms::from_names)
            .transpose()?,
        position: b.position,
    };
    commit_update(app, move |c, s| {
        need(s, &user, Perms::MANAGE_ROLES)?;
        let role = s
            .role(id)
            .ok_or_else(|| ApiError::not_found("no such role"))?;
        let rank = s.rank(user.id);
        if id == EVERYONE {
            if patch.name.is_some() || patch.position.is_some() {
                return Err(ApiError::bad_request(
                    "the everyone role keeps its name and its place",
                ));
            }
        } else {
            perms::may_manage_role(rank, role.position)?;
        }
        if let Some(p) = patch.permissions {
            perms::may_grant(s.server(user.id), p.minus(role.permissions))?;
        }
        if let (Some(pos), Rank::Position(mine)) = (patch.position, rank) {
            if pos >= mine {
                return Err(ApiError::forbidden(
                    "you can only move a role below your highest role",
                ));
            }
        }
        rows::update_role(c, id, &patch)?;
        rows::audit(c, user.id, "role_update", &role.name, "")?;
        Ok(((), None, vec![After::Roles]))
    })?;
    let snap = app.community.snapshot();
    Ok(Response::json(200, &json!(snap.role(id))))
}

fn delete_role(req: &Request, app: &App, id: &str) -> ApiResult<Response> {
    let user = require(req, app, Perms::MANAGE_ROLES)?;
    let id = role_id(id)?;
    commit_update(app, move |c, s| {
        need(s, &user, Perms::MANAGE_ROLES)?;
        if id == EVERYONE {
            return Err(ApiError::bad_request("the everyone role cannot be deleted"));
        }
        let role = s
            .role(id)
            .ok_or_else(|| ApiError::not_found("no such role"))?;
        perms::may_manage_role(s.rank(user.id), role.position)?;
        // The members who had it hear of it as a member_update.
        let holders: Vec<i64> = s
            .member_roles
            .iter()
            .filter(|(_, r)| r.contains(&id))
            .map(|(u, _)| *u)
            .collect();
        rows::delete_role(c, id)?;
        rows::audit(c, user.id, "role_delete", &role.name, "")?;
        let mut after = vec![After::Roles];
        for u in store::list_users(c)? {
            if holders.contains(&u.id) {
                after.push(After::Member(u));
            }
        }
        Ok(((), None, after))
    })?;
    Ok(Response::no_content())
}

fn list_members(req: &Request, app: &App) -> ApiResult<Response> {
    signed_in(req, app)?;
    let users = app.store.read(store::list_users)?;
    let snap = app.community.snapshot();
    let members: Vec<_> = users.iter().map(|u| snap.member(u)).collect();
    Ok(Response::json(200, &json!(members)))
}

fn member_role(req: &Request, app: &App, name: &str, id: &str, on: bool) -> ApiResult<Response> {
    let user = require(req, app, Perms::MANAGE_ROLES)?;
    let id = role_id(id)?;
    let name = name.to_string();
    commit_update(app, move |c, s| {
        need(s, &user, Perms::MANAGE_ROLES)?;
        let target = rows::user_by_name(c, &name)?;
        let role = s
            .role(id)
            .filter(|r| r.id != EVERYONE)
            .ok_or_else(|| ApiError::not_found("no such role"))?;
        let rank = s.rank(user.id);
        perms::may_manage_role(rank, role.position)?;
        if target.id != user.id {
            perms::may_act_on(rank, s.rank(target.id))?;
        }
        rows::set_member_role(c, target.id, role, on)?;
        let action = if on {
            "member_role_add"
        } else {
            "member_role_remove"
        };
        let what = format!("{} {}", target.username, role.name);
        rows::audit(c, user.id, action, &what, "")?;
        Ok(((), None, vec![After::Member(target)]))
    })?;
    Ok(Response::no_content())
}

#[derive(Deserialize)]
struct OverwriteBody {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

fn overwrite(req: &Request, app: &App, channel: &str, id: &str, on: bool) -> ApiResult<Response> {
    let user = require(req, app, Perms::MANAGE_ROLES)?;
    let id = role_id(id)?;
    let (allow, deny) = if on {
        let b: OverwriteBody = body(req)?;
        (Perms::from_names(&b.allow)?, Perms::from_names(&b.deny)?)
    } else {
        (Perms::NONE, Perms::NONE)
    };
    if allow.0 & deny.0 != 0 {
        return Err(ApiError::bad_request(
            "a permission cannot be both allowed and denied",
        ));
    }
    let name = channel.to_string();
    commit_update(app, move |c, s| {
        let here = s
            .in_channel(user.id, &name)
            .filter(|p| p.has(Perms::VIEW_CHANNEL))
            .ok_or_else(|| ApiError::not_found("no such channel"))?;
        if !here.has(Perms::MANAGE_ROLES) {
            return Err(missing(Perms::MANAGE_ROLES));
        }
        let role = s
            .role(id)
            .ok_or_else(|| ApiError::not_found("no such role"))?;
        if id != EVERYONE {
            perms::may_manage_role(s.rank(user.id), role.position)?;
        }
        // Both directions change what others may do: neither may reach past the actor's own.
        perms::may_grant(here, allow.union(deny))?;
        let (channel_id, _) = s.channels[&name];
        let what = format!("#{name} {}", role.name);
        if on {
            rows::set_overwrite(c, channel_id, id, allow, deny)?;
            rows::audit(c, user.id, "overwrite_set", &what, "")?;
        } else {
            if !rows::delete_overwrite(c, channel_id, id)? {
                return Err(ApiError::not_found("no overwrite for that role here"));
            }
            rows::audit(c, user.id, "overwrite_delete", &what, "")?;
        }
        Ok(((), None, Vec::new()))
    })?;
    if on {
        Ok(Response::json(
            200,
            &json!({"role": id, "allow": allow, "deny": deny}),
        ))
    } else {
        Ok(Response::no_content())
    }
}

#[derive(Deserialize)]
struct ChannelPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    slowmode_s: Option<u32>,
    #[serde(default)]
    position: Option<i64>,
    #[serde(default, deserialize_with = "some")]
    category: Option<Option<String>>,
    /// Issue 16: `"mesh"` or `"sfu"` (voice channels only); null goes back to the server's
    /// default. A string, not the enum, so an unknown value gets a message that names it.
    #[serde(default, deserialize_with = "some")]
    voice_mode: Option<Option<String>>,
}

fn patch_channel(req: &Request, app: &App, name: &str) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let b: ChannelPatch = body(req)?;
    if let Some(n) = &b.name {
        validate::channel_name(n)?;
    }
    let topic = b.topic.as_deref().map(validate::topic).transpose()?;
    if b.slowmode_s.is_some_and(|s| s > MAX_SLOWMODE_S) {
        return Err(ApiError::bad_request(format!(
            "slowmode_s must be 0 to {MAX_SLOWMODE_S}"
        )));
    }
    let category = match &b.category {
        Some(Some(c)) => Some(Some(short_text(c, "category", MAX_NAME_CHARS, 1)?)),
        Some(None) => Some(None),
        None => None,
    };
    let voice_mode = match &b.voice_mode {
        Some(Some(m)) => Some(Some(VoiceMode::parse(m).ok_or_else(|| {
            ApiError::bad_request(format!("voice_mode must be \"mesh\" or \"sfu\", got {m:?}"))
        })?)),
        Some(None) => Some(None),
        None => None,
    };
    let media_port = app.config.media_port();
    let (old, uid) = (name.to_string(), user.id);
    let channel = commit_update(app, move |c, s| {
        let here = s
            .in_channel(user.id, &old)
            .filter(|p| p.has(Perms::VIEW_CHANNEL))
            .ok_or_else(|| ApiError::not_found("no such channel"))?;
        if !here.has(Perms::MANAGE_CHANNELS) {
            return Err(missing(Perms::MANAGE_CHANNELS));
        }
        let (id, mut ch) =
            store::channel(c, &old)?.ok_or_else(|| ApiError::not_found("no such channel"))?;
        if let Some(n) = b.name.filter(|n| *n != old) {
            if store::channel(c, &n)?.is_some() {
                return Err(ApiError::conflict(format!("a channel named {n:?} exists")));
            }
            ch.name = n;
        }
        if let Some(t) = topic {
            ch.topic = t;
        }
        if let Some(sm) = b.slowmode_s {
            ch.slowmode_s = sm;
        }
        if let Some(p) = b.position {
            ch.position = p;
        }
        if let Some(cat) = category {
            ch.category = cat;
        }
        if let Some(mode) = voice_mode {
            if ch.kind != ChannelKind::Voice {
                return Err(ApiError::bad_request(
                    "only a voice channel has a voice_mode",
                ));
            }
            if mode == Some(VoiceMode::Sfu) && !media_port {
                return Err(ApiError::bad_request(
                    "this server has no media server (SFU_UDP_PORT is not set): voice_mode \"sfu\" is not available",
                ));
            }
            ch.voice_mode = mode;
        }
        rows::update_channel(c, id, &ch)?;
        rows::audit(c, user.id, "channel_update", &format!("#{}", ch.name), "")?;
        let renamed_from = (ch.name != old).then(|| old.clone());
        Ok((
            ch.clone(),
            Some(ChannelChange::Updated {
                channel: ch,
                renamed_from,
            }),
            Vec::new(),
        ))
    })?;
    let view = app.community.snapshot().view(uid, &channel, media_port);
    Ok(Response::json(200, &json!(view)))
}

#[derive(Deserialize, Default)]
struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

fn optional_body<T: serde::de::DeserializeOwned + Default>(req: &Request) -> ApiResult<T> {
    if req.body.is_empty() {
        Ok(T::default())
    } else {
        body(req)
    }
}

/// Ends every session of `target` in the job's transaction (kick, ban); after the COMMIT
/// the caller closes their sockets with 4003.
fn remove(app: &App, target: i64, why: String) {
    app.router
        .end_sessions(Sessions::OfUser(target), code::REMOVED, why);
}

fn kick(req: &Request, app: &App, name: &str) -> ApiResult<Response> {
    let user = require(req, app, Perms::KICK_MEMBERS)?;
    let b: ReasonBody = optional_body(req)?;
    let why = reason(b.reason)?;
    let (name, r) = (name.to_string(), why.clone());
    let target = commit_update(app, move |c, s| {
        need(s, &user, Perms::KICK_MEMBERS)?;
        let target = rows::user_by_name(c, &name)?;
        perms::may_act_on(s.rank(user.id), s.rank(target.id))?;
        rows::revoke_sessions(c, target.id)?;
        rows::audit(c, user.id, "kick", &target.username, &r)?;
        Ok((target.id, None, Vec::new()))
    })?;
    remove(app, target, format!("kicked: {why}"));
    Ok(Response::no_content())
}

#[derive(Deserialize)]
struct BanBody {
    username: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    delete_messages_s: Option<i64>,
}

fn ban(req: &Request, app: &App) -> ApiResult<Response> {
    let user = require(req, app, Perms::BAN_MEMBERS)?;
    let b: BanBody = body(req)?;
    let why = reason(b.reason)?;
    let window = b.delete_messages_s.unwrap_or(0);
    if !(0..=MAX_DELETE_MESSAGES_S).contains(&window) {
        return Err(ApiError::bad_request(format!(
            "delete_messages_s must be 0 to {MAX_DELETE_MESSAGES_S}"
        )));
    }
    let (name, r, blobs) = (b.username, why.clone(), app.files.blobs.clone());
    let target = commit_update(app, move |c, s| {
        need(s, &user, Perms::BAN_MEMBERS)?;
        let target = rows::user_by_name(c, &name)?;
        perms::may_act_on(s.rank(user.id), s.rank(target.id))?;
        rows::insert_ban(c, &target, user.id, &r)?;
        rows::revoke_sessions(c, target.id)?;
        rows::audit(c, user.id, "ban", &target.username, &r)?;
        let mut after = Vec::new();
        if window > 0 {
            let since = now_ms() - window * 1000;
            for id in rows::messages_since(c, target.id, since)? {
                // As a normal delete: its files go too, and viewers hear `message_delete`.
                let channel = store::delete_message(c, &blobs, &target, id, true)?;
                after.push(After::Event(ServerEvent::MessageDelete { id, channel }));
            }
        }
        Ok((target.id, None, after))
    })?;
    remove(app, target, format!("banned: {why}"));
    Ok(Response::no_content())
}

fn list_bans(req: &Request, app: &App) -> ApiResult<Response> {
    require(req, app, Perms::BAN_MEMBERS)?;
    let bans = app.store.read(rows::list_bans)?;
    Ok(Response::json(200, &json!(bans)).with_header("Cache-Control", "no-store"))
}

fn unban(req: &Request, app: &App, name: &str) -> ApiResult<Response> {
    let user = require(req, app, Perms::BAN_MEMBERS)?;
    let name = name.to_string();
    commit_update(app, move |c, s| {
        need(s, &user, Perms::BAN_MEMBERS)?;
        let target = rows::user_by_name(c, &name)?;
        if !rows::delete_ban(c, target.id)? {
            return Err(ApiError::not_found("that member is not banned"));
        }
        rows::audit(c, user.id, "unban", &target.username, "")?;
        Ok(((), None, Vec::new()))
    })?;
    Ok(Response::no_content())
}

#[derive(Deserialize)]
struct TimeoutBody {
    until_ts: Option<i64>,
    #[serde(default)]
    reason: Option<String>,
}

fn timeout(req: &Request, app: &App, name: &str) -> ApiResult<Response> {
    let user = require(req, app, Perms::MODERATE_MEMBERS)?;
    let b: TimeoutBody = body(req)?;
    let why = reason(b.reason)?;
    let now = now_ms();
    // A time already past lifts the timeout, like null.
    let until = b.until_ts.filter(|&t| t > now);
    if until.is_some_and(|t| t - now > MAX_TIMEOUT_MS) {
        return Err(ApiError::bad_request("a timeout lasts at most 28 days"));
    }
    let name = name.to_string();
    commit_update(app, move |c, s| {
        need(s, &user, Perms::MODERATE_MEMBERS)?;
        let target = rows::user_by_name(c, &name)?;
        perms::may_act_on(s.rank(user.id), s.rank(target.id))?;
        rows::set_timeout(c, target.id, until)?;
        let action = if until.is_some() {
            "timeout"
        } else {
            "timeout_remove"
        };
        rows::audit(c, user.id, action, &target.username, &why)?;
        Ok(((), None, vec![After::Member(target)]))
    })?;
    Ok(Response::no_content())
}

fn audit_log(req: &Request, app: &App) -> ApiResult<Response> {
    require(req, app, Perms::VIEW_AUDIT_LOG)?;
    let int = |name: &str| -> ApiResult<Option<i64>> {
        req.query_param(name)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::bad_request(format!("{name} must be an integer")))
            })
            .transpose()
    };
    let limit = match int("limit")? {
        None => AUDIT_DEFAULT,
        Some(n) if n < 1 => return Err(ApiError::bad_request("limit must be at least 1")),
        Some(n) => n.min(AUDIT_MAX),
    } as u32;
    let before = int("before")?;
    let page = app
        .store
        .read(move |c| rows::audit_page(c, limit, before))?;
    Ok(Response::json(200, &json!(page)).with_header("Cache-Control", "no-store"))
}

fn pins(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let channel = req
        .query_param("channel")
        .ok_or_else(|| ApiError::bad_request("channel is needed"))?;
    if !app.community.snapshot().can_view(user.id, &channel) {
        return Err(ApiError::not_found(format!("no channel named {channel:?}")));
    }
    let messages = app.store.read(move |c| {
        let ids = rows::pin_ids(c, &channel)?;
        store::messages_by_id(c, &ids, usize::MAX)
    })?;
    Ok(Response::json(200, &json!(messages)))
}

/// `POST /api/channels` (`manage_channels`): commits the channel, and viewers hear
/// `channel_create`.
pub fn create_channel(app: &App, user: User, channel: Channel) -> ApiResult<()> {
    commit_update(app, move |c, s| {
        need(s, &user, Perms::MANAGE_CHANNELS)?;
        store::insert_channel(c, &channel)?;
        rows::audit(
            c,
            user.id,
            "channel_create",
            &format!("#{}", channel.name),
            "",
        )?;
        Ok(((), Some(ChannelChange::Created(channel)), Vec::new()))
    })
}

/// `DELETE /api/channels/{name}` (`manage_channels` there); viewers hear `channel_delete`.
pub fn delete_channel(app: &App, user: User, name: String) -> ApiResult<()> {
    commit_update(app, move |c, s| {
        let here = s
            .in_channel(user.id, &name)
            .filter(|p| p.has(Perms::VIEW_CHANNEL))
            .ok_or_else(|| ApiError::not_found(format!("no channel named {name:?}")))?;
        if !here.has(Perms::MANAGE_CHANNELS) {
            return Err(missing(Perms::MANAGE_CHANNELS));
        }
        let gone = store::delete_channel(c, &name)?;
        rows::audit(c, user.id, "channel_delete", &format!("#{}", gone.name), "")?;
        Ok(((), Some(ChannelChange::Deleted(gone.name)), Vec::new()))
    })
}
