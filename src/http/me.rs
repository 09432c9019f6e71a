//! The signed-in user's own account routes beyond `GET /api/me` (issue 18, "User settings";
//! additions to API.md): changing the password, and the list of the user's sessions with a
//! way to end any of them. Runs on the connection thread; the rows are `store/accounts.rs`'s,
//! and ending a session closes its sockets through `RouterHandle::end_sessions` with 4001,
//! exactly as logout does.
//!
//! - `POST /api/me/password {"current","new"}` → 204; the other sessions end.
//! - `GET /api/me/sessions` → `[{"id","created_ts","expires_ts","current"}]`, newest first.
//! - `DELETE /api/me/sessions/{id}` → 204 (the current one too: that is a logout).
//! - `DELETE /api/me/sessions` → 200 `{"ended": n}`: every session but this one.

use serde::Deserialize;
use serde_json::json;

use super::api::{body, method_not_allowed, signed_in};
use crate::error::{ApiError, ApiResult};
use crate::http::auth;
use crate::http::proxy::ClientNet;
use crate::http::{Request, Response};
use crate::realtime::frame::code::SESSION_ENDED;
use crate::realtime::router::Sessions;
use crate::store;
use crate::{validate, App};

/// Whether `path` is one of this module's; `api.rs` hands those to [`route`].
pub fn owns(path: &str) -> bool {
    path == "/api/me/password"
        || path == "/api/me/sessions"
        || path.starts_with("/api/me/sessions/")
}

pub fn route(req: &Request, app: &App) -> ApiResult<Response> {
    let path = req.path.as_str();
    let m = req.method.as_str();
    if let Some(id) = path.strip_prefix("/api/me/sessions/") {
        return match m {
            "DELETE" => end_one(req, app, id),
            _ => Err(method_not_allowed()),
        };
    }
    match (m, path) {
        ("POST", "/api/me/password") => change_password(req, app),
        ("GET", "/api/me/sessions") => {
            let (user, token) = signed_in(req, app)?;
            let hash = auth::token_hash(&token);
            let list = app
                .store
                .read(move |c| store::list_sessions(c, user.id, &hash))?;
            Ok(Response::json(200, &json!(list)).with_header("Cache-Control", "no-store"))
        }
        ("DELETE", "/api/me/sessions") => {
            let (user, token) = signed_in(req, app)?;
            let keep = auth::token_hash(&token);
            let ended = app
                .store
                .call(move |c| store::delete_other_sessions(c, user.id, &keep))?;
            let n = ended.len();
            close_sockets(app, ended, "signed out from another device");
            Ok(Response::json(200, &json!({ "ended": n })))
        }
        _ => Err(method_not_allowed()),
    }
}

/// Closes the sockets of sessions that were just deleted, as logout does (API.md v2: 4001),
/// before the route answers, so nothing they send afterwards is acted on.
fn close_sockets(app: &App, hashes: Vec<Vec<u8>>, reason: &'static str) {
    for hash in hashes {
        app.router
            .end_sessions(Sessions::One(hash), SESSION_ENDED, reason);
    }
}

fn end_one(req: &Request, app: &App, id: &str) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    // Ids are 32 hex digits; anything else names no session and is not worth a store job.
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::not_found("no such session"));
    }
    let id = id.to_ascii_lowercase();
    let hash = app
        .store
        .call(move |c| store::delete_session_by_id(c, user.id, &id))?;
    close_sockets(app, vec![hash], "signed out from another device");
    Ok(Response::no_content())
}

#[derive(Deserialize)]
struct PasswordBody {
    current: String,
    new: String,
}

/// A wrong current password is a guess like a failed login, so it is counted by the same
/// throttles as `login` (per address, and per account + address with the growing delay):
/// a stolen session cookie buys no faster way to guess the password. It is answered 403, not
/// 401, because the session itself is fine and the app must not sign the user out.
fn change_password(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, token) = signed_in(req, app)?;
    let b: PasswordBody = body(req)?;
    // The same rules as registration.
    validate::password(&b.new)?;
    let t = &app.throttles;
    let net = ClientNet::of(req.peer);
    let key = (user.id, net);
    t.login_ip.take(net).map_err(ApiError::rate_limited)?;
    if let Err(ms) = t.login_account.take(key) {
        t.login_ip.refund(net);
        return Err(ApiError::rate_limited(ms));
    }
    let uid = user.id;
    let old_hash = app.store.read(move |c| store::password_hash(c, uid))?;
    if !auth::verify_password(&b.current, &old_hash)? {
        return Err(ApiError::forbidden("the current password is wrong"));
    }
    t.login_account.clear(key);
    t.login_ip.refund(net);
    let new_hash = auth::hash_password(&b.new)?;
    let keep = auth::token_hash(&token);
    let ended = app
        .store
        .call(move |c| store::change_password(c, uid, &old_hash, &new_hash, &keep))?;
    log::info!(
        "user {uid} changed their password; {} other sessions ended",
        ended.len()
    );
    close_sockets(app, ended, "the password changed");
    Ok(Response::no_content())
}
