//! The HTTP endpoints of direct messages (API.md "Direct messages, profiles, read state";
//! docs/DMS.md):
//! - `POST /api/dms` `{"users":[…]}` → 200 `{"channel"}`: the pair's one DM, or a new group DM;
//! - `POST /api/dms/{name}/members` `{"username"}` (members only) → 200 `{"channel"}`.
//!
//! A DM is a channel of kind `dm`; who sees it is `community::Snapshot`'s rule (its members,
//! nobody else), so creating one goes through `commit_update` with a `ChannelChange` and the
//! router's visibility tells exactly the members (`channel_create`). Everything after that —
//! fan-out, history, search, files, read state, pushes — is the text channels' code.

use serde::Deserialize;
use serde_json::json;

use crate::community::routes::commit_update;
use crate::community::ChannelChange;
use crate::error::{ApiError, ApiResult};
use crate::http::api::{body, signed_in};
use crate::http::{Request, Response};
use crate::model::{Channel, ChannelKind};
use crate::{store, App};

/// A group DM holds at most this many people, its creator included (API.md; Discord's
/// number): past it a conversation is a channel.
pub const MAX_DM_MEMBERS: usize = 10;

/// Answers the request if it is a DM endpoint, else `None` (`api.rs` goes on).
pub fn route(req: &Request, app: &App) -> Option<ApiResult<Response>> {
    let path = req.path.as_str();
    let r = if path == "/api/dms" {
        match req.method.as_str() {
            "POST" => open(req, app),
            _ => Err(method_not_allowed()),
        }
    } else if let Some(name) = path
        .strip_prefix("/api/dms/")
        .and_then(|rest| rest.strip_suffix("/members"))
    {
        match req.method.as_str() {
            "POST" => add(req, app, name),
            _ => Err(method_not_allowed()),
        }
    } else {
        return None;
    };
    Some(r.map(|resp| resp.with_header("Cache-Control", "no-store")))
}

fn method_not_allowed() -> ApiError {
    ApiError::new(
        crate::error::Code::MethodNotAllowed,
        "method not allowed here",
    )
}

#[derive(Deserialize)]
struct OpenBody {
    users: Vec<String>,
}

#[derive(Deserialize)]
struct AddBody {
    username: String,
}

fn too_many() -> ApiError {
    ApiError::bad_request(format!("a group DM holds at most {MAX_DM_MEMBERS} members"))
}

/// The answer: `channel` as `user_id` now sees it.
fn answer(app: &App, user_id: i64, channel: &Channel) -> ApiResult<Response> {
    let view = app
        .community
        .snapshot()
        .view(user_id, channel, app.config.media_port())
        .ok_or_else(ApiError::internal)?;
    Ok(Response::json(200, &json!({ "channel": view })))
}

fn open(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let b: OpenBody = body(req)?;
    // Checked before any lookup, so a huge list costs nothing on the store thread.
    if b.users.len() >= MAX_DM_MEMBERS * 2 {
        return Err(too_many());
    }
    let uid = user.id;
    let channel = commit_update(app, move |c, _| {
        let mut members = vec![uid];
        for id in store::dms::user_ids(c, &b.users)? {
            if !members.contains(&id) {
                members.push(id);
            }
        }
        if members.len() < 2 {
            return Err(ApiError::bad_request("a DM needs someone besides you"));
        }
        if members.len() > MAX_DM_MEMBERS {
            return Err(too_many());
        }
        let (channel, new) = store::dms::open_dm(c, &members)?;
        let change = new.then(|| ChannelChange::Created(channel.clone()));
        Ok((channel, change, Vec::new()))
    })?;
    answer(app, uid, &channel)
}

fn add(req: &Request, app: &App, name: &str) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let b: AddBody = body(req)?;
    let (uid, name) = (user.id, name.to_string());
    let channel = commit_update(app, move |c, s| {
        let not_found = || ApiError::not_found(format!("no DM named {name:?}"));
        let (id, channel) = store::channel(c, &name)?.ok_or_else(not_found)?;
        if channel.kind != ChannelKind::Dm || !s.can_view(uid, &name) {
            return Err(not_found());
        }
        let new = store::dms::user_ids(c, std::slice::from_ref(&b.username))?[0];
        let mut members = store::dms::dm_member_ids(c, id)?;
        if members.contains(&new) {
            return Ok((channel, None, Vec::new()));
        }
        members.push(new);
        if members.len() > MAX_DM_MEMBERS {
            return Err(too_many());
        }
        if members.len() == 3 {
            // A pair's DM stays theirs: the three get a new group DM.
            let (group, _) = store::dms::open_dm(c, &members)?;
            return Ok((
                group.clone(),
                Some(ChannelChange::Created(group)),
                Vec::new(),
            ));
        }
        store::dms::add_member(c, id, new)?;
        // Members already in it hear `channel_update` (the new member list); the new one
        // gains sight of it (`channel_create`).
        let change = ChannelChange::Updated {
            channel: channel.clone(),
            renamed_from: None,
        };
        Ok((channel, Some(change), Vec::new()))
    })?;
    answer(app, uid, &channel)
}
