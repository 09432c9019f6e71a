//! The HTTP endpoints of issue 14 (documented in docs/SOCIAL.md):
//! - `PATCH /api/me` `{"display_name"?,"status_text"?}` → 200 `{"user"}`, pushed to every
//!   `/ws` as `user_update`;
//! - `GET /api/me/notify` → `{"default","channels":{name: level}}`;
//!   `PUT /api/me/notify` `{"channel"?,"level"}` (a level, or null to follow the default);
//! - `GET /api/push/vapid-key` → `{"key"}` (base64url, for `pushManager.subscribe`);
//! - `GET /api/push/subscriptions` → `{"endpoints":[…]}` (this user's);
//!   `POST` the browser's `PushSubscription.toJSON()` → 201;
//!   `DELETE` `{"endpoint"}` → 204 (404 when this user has no such subscription).

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{profile_text, NotifyLevel, MAX_DISPLAY_NAME_CHARS, MAX_STATUS_TEXT_CHARS};
use crate::error::{ApiError, ApiResult};
use crate::http::api::{body, signed_in};
use crate::http::{Request, Response};
use crate::push::{crypto, endpoint};
use crate::realtime::chat;
use crate::realtime::protocol::ServerEvent;
use crate::{store, App};

/// Answers the request if it is one of these endpoints, else `None` (`api.rs` goes on).
pub fn route(req: &Request, app: &App) -> Option<ApiResult<Response>> {
    let r = match (req.method.as_str(), req.path.as_str()) {
        ("PATCH", "/api/me") => patch_me(req, app),
        ("GET", "/api/me/notify") => get_notify(req, app),
        ("PUT", "/api/me/notify") => put_notify(req, app),
        ("GET", "/api/push/vapid-key") => signed_in(req, app)
            .map(|_| Response::json(200, &json!({ "key": app.push.public_key_b64() }))),
        ("GET", "/api/push/subscriptions") => list_subscriptions(req, app),
        ("POST", "/api/push/subscriptions") => subscribe(req, app),
        ("DELETE", "/api/push/subscriptions") => unsubscribe(req, app),
        (_, "/api/me/notify" | "/api/push/vapid-key" | "/api/push/subscriptions") => {
            Err(ApiError::new(
                crate::error::Code::MethodNotAllowed,
                "method not allowed here",
            ))
        }
        _ => return None,
    };
    Some(r.map(|resp| resp.with_header("Cache-Control", "no-store")))
}

/// A profile field of the body: absent → unchanged (`None`), null or "" → cleared.
fn field(b: &Map<String, Value>, name: &str, max: usize) -> ApiResult<Option<Option<String>>> {
    match b.get(name) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => profile_text(s, name, max).map(Some),
        Some(_) => Err(ApiError::bad_request(format!(
            "{name} must be a string or null"
        ))),
    }
}

fn patch_me(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let b: Map<String, Value> = body(req)?;
    let display_name = field(&b, "display_name", MAX_DISPLAY_NAME_CHARS)?;
    let status_text = field(&b, "status_text", MAX_STATUS_TEXT_CHARS)?;
    let id = user.id;
    let user = commit_publish_and_wait(
        app,
        move |c| store::set_profile(c, id, display_name, status_text),
        |u| ServerEvent::UserUpdate { user: u.clone() },
    )?;
    Ok(Response::json(200, &json!({ "user": user })))
}

fn get_notify(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let mut s = app
        .store
        .read(move |c| store::notify_settings(c, user.id))?;
    // Levels of channels this user can no longer see are not shown ("Run a community").
    let snapshot = app.community.snapshot();
    s.channels
        .retain(|name, _| snapshot.can_view(user.id, name));
    Ok(Response::json(200, &json!(s)))
}

#[derive(Deserialize)]
struct NotifyBody {
    #[serde(default)]
    channel: Option<String>,
    level: Option<String>,
}

fn put_notify(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let b: NotifyBody = body(req)?;
    if let Some(ch) = &b.channel {
        if !app.community.snapshot().can_view(user.id, ch) {
            return Err(ApiError::not_found("no such channel"));
        }
    }
    let level = match b.level.as_deref() {
        None if b.channel.is_some() => None,
        None => return Err(ApiError::bad_request("the default needs a level")),
        Some(l) => Some(NotifyLevel::parse(l).ok_or_else(|| {
            ApiError::bad_request("level must be \"all\", \"mentions\" or \"nothing\"")
        })?),
    };
    let s = app
        .store
        .call(move |c| store::set_notify(c, user.id, b.channel.as_deref(), level))?;
    Ok(Response::json(200, &json!(s)))
}

fn list_subscriptions(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let endpoints = app
        .store
        .read(move |c| store::subscription_endpoints(c, user.id))?;
    Ok(Response::json(200, &json!({ "endpoints": endpoints })))
}

#[derive(Deserialize)]
struct SubscriptionBody {
    endpoint: String,
    keys: SubscriptionKeys,
}

#[derive(Deserialize)]
struct SubscriptionKeys {
    p256dh: String,
    auth: String,
}

/// Browsers give the keys as base64url without padding; accept padding too.
fn b64url(s: &str) -> ApiResult<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .or_else(|_| URL_SAFE.decode(s))
        .map_err(|_| ApiError::bad_request("keys must be base64url"))
}

fn subscribe(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let b: SubscriptionBody = body(req)?;
    let (p256dh, auth) = (b64url(&b.keys.p256dh)?, b64url(&b.keys.auth)?);
    crypto::check_subscription_keys(&p256dh, &auth).map_err(|_| {
        ApiError::bad_request("keys.p256dh must be a P-256 point and keys.auth 16 bytes")
    })?;
    endpoint::check(&b.endpoint, app.push.policy)?;
    let ep = b.endpoint;
    app.store
        .call(move |c| store::add_subscription(c, user.id, &ep, &p256dh, &auth))?;
    app.push.subscribed();
    Ok(Response::json(201, &json!({})))
}

#[derive(Deserialize)]
struct EndpointBody {
    endpoint: String,
}

fn unsubscribe(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let b: EndpointBody = body(req)?;
    let removed = app
        .store
        .call(move |c| store::remove_subscription(c, user.id, &b.endpoint))?;
    if !removed {
        return Err(ApiError::not_found("no such subscription"));
    }
    Ok(Response::no_content())
}

/// `chat::commit_then_publish` for a route: publishes `event` of the committed result (from
/// inside the store's answer, so in commit order), then waits for that result, so the
/// response is written only once the change is durable and on its way to every client.
fn commit_publish_and_wait<R, F, E>(app: &App, job: F, event: E) -> ApiResult<R>
where
    R: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> ApiResult<R> + Send + 'static,
    E: FnOnce(&R) -> ServerEvent + Send + 'static,
{
    let (reply_tx, reply_rx) = crossbeam_channel::bounded::<ApiResult<R>>(1);
    chat::commit_then_publish(app, job, move |result, publisher| {
        if let Ok(r) = &result {
            publisher.publish(event(r));
        }
        let _ = reply_tx.send(result);
    })?;
    reply_rx.recv().map_err(|_| ApiError::internal())?
}
