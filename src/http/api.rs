//! The HTTP routes of API.md: accounts, channels, history, search, ICE servers, health and
//! metrics, and the embedded app for everything else. Each handler takes a parsed `Request`
//! and returns a `Response`; errors are `ApiError`s turned into the contract's JSON body.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::assets;
use crate::community::{self, Perms};
use crate::config::Registration;
use crate::error::{ApiError, ApiResult};
use crate::http::auth::{self, Source};
use crate::http::proxy::ClientNet;
use crate::http::{Request, Response};
use crate::model::{Channel, ChannelKind, User};
use crate::store::{self, now_ms, Page, Store};
use crate::voice::turn;
use crate::{validate, App};

/// API.md: history pages default to 50 and are capped at 200.
const HISTORY_DEFAULT: i64 = 50;
const HISTORY_MAX: i64 = 200;
const SEARCH_DEFAULT: i64 = 25;
const SEARCH_MAX: i64 = 100;
/// A page is read from the store in pieces of at most this many messages, or of the message
/// that brings the piece past `PIECE_BYTES` of content: one store job never copies more
/// than about 64 KiB of a 3.2 MB page, and a stalled client pins at most one piece.
const PIECE_MESSAGES: usize = 50;
const PIECE_BYTES: usize = 64 * 1024;

/// Answers one plain HTTP request (not a WebSocket upgrade).
pub fn handle(req: &Request, app: &App) -> Response {
    match route(req, app) {
        Ok(r) => r,
        Err(e) => Response::error(&e),
    }
}

fn route(req: &Request, app: &App) -> ApiResult<Response> {
    let m = req.method.as_str();
    let path = req.path.as_str();
    // Roles, members, moderation, pins, channel settings (`community/routes.rs`).
    if let Some(answer) = community::routes::route(req, app) {
        return answer;
    }
    if let Some(name) = path.strip_prefix("/api/channels/") {
        let name = crate::http::percent_decode(name)
            .ok_or_else(|| ApiError::not_found("no such channel"))?;
        return match m {
            "DELETE" => delete_channel(req, app, &name),
            _ => Err(method_not_allowed()),
        };
    }
    if let Some(rest) = path.strip_prefix("/api/admin/") {
        return super::admin::route(req, app, rest);
    }
    if let Some(code) = path.strip_prefix("/api/invites/") {
        return invite_by_code(req, app, code);
    }
    if super::me::owns(path) {
        return super::me::route(req, app);
    }
    // Profiles, notification levels, Web Push (issue 14): `social/routes.rs`.
    if let Some(r) = crate::social::routes::route(req, app) {
        return r;
    }
    if let Some(r) = crate::social::dms::route(req, app) {
        return r;
    }
    match (m, path) {
        ("GET" | "HEAD", "/healthz") => health(app),
        ("GET", "/metrics") => metrics(req, app),
        ("GET", "/api/setup") => {
            // Unauthenticated on purpose: the sign-in page asks before anyone has an account,
            // so it can say "create the first account" instead of "welcome back".
            let users = app.store.read(store::user_count)?;
            Ok(Response::json(200, &json!({ "first_run": users == 0 }))
                .with_header("Cache-Control", "no-store"))
        }
        ("POST", "/api/register") => register(req, app),
        ("POST", "/api/login") => login(req, app),
        ("POST", "/api/logout") => logout(req, app),
        ("GET", "/api/me") => {
            let (user, _) = signed_in(req, app)?;
            Ok(Response::json(200, &json!({ "user": user })))
        }
        ("POST", "/api/invites") => create_invite(req, app),
        ("GET", "/api/invites") => {
            community::routes::require(req, app, Perms::CREATE_INVITES)?;
            let invites = app.store.read(store::live_invites)?;
            Ok(Response::json(200, &json!(invites)).with_header("Cache-Control", "no-store"))
        }
        ("GET", "/api/channels") => {
            let (user, _) = signed_in(req, app)?;
            let channels = app.store.read(store::list_channels)?;
            let snapshot = app.community.snapshot();
            let visible: Vec<_> = channels
                .iter()
                .filter_map(|c| snapshot.view(user.id, c, app.config.media_port()))
                .collect();
            Ok(Response::json(200, &json!(visible)))
        }
        ("POST", "/api/channels") => create_channel(req, app),
        ("GET", "/api/users") => {
            signed_in(req, app)?;
            let users = app.store.read(store::list_users)?;
            Ok(Response::json(200, &json!(users)))
        }
        ("GET", "/api/history") => history(req, app),
        ("GET", "/api/search") => search(req, app),
        ("GET", "/api/webrtc-config") => {
            let (user, _) = signed_in(req, app)?;
            let now = (now_ms() / 1000) as u64;
            Ok(
                Response::json(200, &turn::webrtc_config(&app.config, &user.username, now))
                    .with_header("Cache-Control", "no-store"),
            )
        }
        (
            _,
            "/healthz" | "/metrics" | "/api/setup" | "/api/register" | "/api/login" | "/api/logout"
            | "/api/me" | "/api/invites" | "/api/channels" | "/api/users" | "/api/history"
            | "/api/search" | "/api/webrtc-config" | "/ws" | "/ws/voice",
        ) => Err(method_not_allowed()),
        _ if path.starts_with("/api/") => Err(ApiError::not_found("no such endpoint")),
        ("GET" | "HEAD", _) => {
            assets::serve(req).ok_or_else(|| ApiError::not_found("no such page"))
        }
        _ => Err(method_not_allowed()),
    }
}

pub(crate) fn method_not_allowed() -> ApiError {
    ApiError::new(
        crate::error::Code::MethodNotAllowed,
        "method not allowed here",
    )
}

/// `GET /metrics`: open unless `METRICS_TOKEN` is set (API.md v2 "Hardening"). Open is the
/// v1 default because a scraper usually sits on a private network and the figures hold no
/// user data; they do show load and connection counts, so a public server should set it.
fn metrics(req: &Request, app: &App) -> ApiResult<Response> {
    if let Some(want) = &app.config.metrics_token {
        let given = match auth::request_token(req) {
            Some((t, Source::Bearer)) => t,
            _ => String::new(),
        };
        if !auth::same_secret(&given, want) {
            return Err(ApiError::unauthorized());
        }
    }
    Ok(Response::new(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        crate::metrics::METRICS
            .render(app.admission.max())
            .into_bytes(),
    ))
}

fn health(app: &App) -> ApiResult<Response> {
    match app.store.read(store::health) {
        Ok(()) => Ok(Response::text(200, "ok")),
        Err(e) if e.code == crate::error::Code::Unavailable => Err(e),
        Err(_) => Err(ApiError::new(
            crate::error::Code::Unavailable,
            "the store is not answering",
        )),
    }
}

/// Parses a JSON body into `T`, with a clear 400 for every way it can be wrong.
pub(crate) fn body<T: DeserializeOwned>(req: &Request) -> ApiResult<T> {
    if req.body.is_empty() {
        return Err(ApiError::bad_request("a JSON body is needed"));
    }
    let text =
        std::str::from_utf8(&req.body).map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
    if crate::realtime::protocol::too_deep(text) {
        return Err(ApiError::bad_request("JSON nests too deeply"));
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))?;
    // serde would also fill a struct from an array, field by field; the contract says object.
    if !value.is_object() {
        return Err(ApiError::bad_request("the JSON body must be an object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}

/// The request's user, or 401. Cookie sessions on state-changing requests must also come
/// from an allowed origin (CSRF).
pub fn signed_in(req: &Request, app: &App) -> ApiResult<(User, String)> {
    let (user, source, token) = auth::authenticate(req, &app.store)?;
    if source == Source::Cookie && req.method != "GET" && req.method != "HEAD" {
        auth::check_origin(req, &app.config, false)?;
    }
    Ok((user, token))
}

pub(crate) fn admin(req: &Request, app: &App) -> ApiResult<User> {
    let (user, _) = signed_in(req, app)?;
    if !user.admin {
        return Err(ApiError::forbidden("only an admin can do that"));
    }
    Ok(user)
}

fn session_cookie(token: &str) -> String {
    format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        auth::COOKIE,
        auth::SESSION_TTL_MS / 1000
    )
}

/// Creates a session for `user` and answers with it (body + cookie).
fn start_session(app: &App, user: User, status: u16) -> ApiResult<Response> {
    let token = auth::new_token();
    let hash = auth::token_hash(&token);
    let uid = user.id;
    let ended = app
        .store
        .call(move |c| store::insert_session(c, &hash, uid, now_ms() + auth::SESSION_TTL_MS))?;
    if !ended.is_empty() {
        log::info!(
            "user {uid} is past {} sessions: ended the {} oldest",
            store::SESSIONS_PER_USER,
            ended.len()
        );
    }
    // A session ended by the cap is ended like a logout: its sockets close with 4001.
    for hash in ended {
        app.router.end_sessions(
            crate::realtime::router::Sessions::One(hash),
            crate::realtime::frame::code::SESSION_ENDED,
            "too many sessions",
        );
    }
    Ok(
        Response::json(status, &json!({ "user": user, "token": token }))
            .with_header("Set-Cookie", session_cookie(&token))
            .with_header("Cache-Control", "no-store"),
    )
}

#[derive(Deserialize)]
struct RegisterBody {
    username: String,
    password: String,
    #[serde(default)]
    invite: Option<String>,
}

fn register(req: &Request, app: &App) -> ApiResult<Response> {
    auth::check_origin(req, &app.config, false)?;
    let b: RegisterBody = body(req)?;
    validate::username(&b.username)?;
    validate::password(&b.password)?;
    app.throttles
        .register_ip
        .take(ClientNet::of(req.peer))
        .map_err(ApiError::rate_limited)?;
    let hash = auth::hash_password(&b.password)?;
    let mode = app.config.registration;
    let (name, invite) = (b.username.clone(), b.invite.clone());
    let user = app.store.call(move |c| {
        let first = store::user_count(c)? == 0;
        if !first {
            match mode {
                Registration::Closed => return Err(ApiError::forbidden("registration is closed")),
                Registration::Invite if invite.as_deref().unwrap_or("").is_empty() => {
                    return Err(ApiError::forbidden("an invite code is needed to register"))
                }
                _ => {}
            }
        }
        // A banned name stays refused (API.md "Run a community"), before "taken".
        if community::rows::name_banned(c, &name)? {
            return Err(ApiError::forbidden("that name is banned from this server"));
        }
        let user = store::insert_user(c, &name, &hash, first)?;
        if !first && mode == Registration::Invite {
            store::use_invite(c, invite.as_deref().unwrap_or(""), user.id)?;
        }
        Ok(user)
    })?;
    log::info!(
        "new account {:?}{}",
        user.username,
        if user.admin { " (admin)" } else { "" }
    );
    if user.admin {
        // The owner holds every permission: publish the snapshot that knows them.
        community::routes::commit_update(app, |_, _| Ok(((), None, Vec::new())))?;
    }
    start_session(app, user, 201)
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// A valid Argon2id hash of a random password: unknown users are verified against it so a
/// login takes as long for them as for real ones.
static DUMMY_HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn login(req: &Request, app: &App) -> ApiResult<Response> {
    auth::check_origin(req, &app.config, false)?;
    let b: LoginBody = body(req)?;
    let wrong = || {
        ApiError::new(
            crate::error::Code::Unauthorized,
            "wrong username or password",
        )
    };
    // A name that cannot be an account is refused before it touches any throttle or the
    // hasher: nothing of it is kept (issue 19, finding 3: 1 MiB names kept as throttle keys
    // took RSS to 1.29 GB). It costs the client nothing to learn that a name is malformed.
    if validate::username(&b.username).is_err() {
        return Err(wrong());
    }
    let t = &app.throttles;
    let net = ClientNet::of(req.peer);
    // Every attempt is counted before the (slow) check, so concurrent guesses cannot all
    // slip through; what turns out not to apply is given back.
    t.login_ip.take(net).map_err(ApiError::rate_limited)?;
    let name = b.username.clone();
    let found = match app.store.read(move |c| store::user_for_login(c, &name)) {
        Ok(found) => found,
        Err(e) => {
            t.login_ip.refund(net);
            return Err(e);
        }
    };
    let Some((user, hash)) = found else {
        // An unknown name keeps no entry of its own; it is verified against a dummy hash so
        // it takes as long as a real one.
        let dummy =
            DUMMY_HASH.get_or_init(|| auth::hash_password(&auth::new_token()).unwrap_or_default());
        let _ = auth::verify_password(&b.password, dummy)?;
        return Err(wrong());
    };
    let key = (user.id, net);
    if let Err(ms) = t.login_success.take(key) {
        t.login_ip.refund(net);
        return Err(ApiError::rate_limited(ms));
    }
    if let Err(ms) = t.login_account.take(key) {
        t.login_ip.refund(net);
        t.login_success.refund(key);
        return Err(ApiError::rate_limited(ms));
    }
    if auth::verify_password(&b.password, &hash)? {
        t.login_account.clear(key);
        t.login_ip.refund(net);
        // Said only to someone with the password: a ban is not announced to strangers.
        if app.community.snapshot().banned.contains(&user.id) {
            return Err(ApiError::forbidden("you are banned from this server"));
        }
        start_session(app, user, 200)
    } else {
        t.login_success.refund(key);
        Err(wrong())
    }
}

fn logout(req: &Request, app: &App) -> ApiResult<Response> {
    let (_, token) = signed_in(req, app)?;
    let hash = auth::token_hash(&token);
    let revoked = hash.clone();
    app.store.call(move |c| store::delete_session(c, &hash))?;
    // API.md v2: logging out closes that session's sockets with 4001, before the 204, so
    // nothing the client sends on them after seeing the 204 is acted on (issue 19,
    // finding 6: an open /ws kept storing messages).
    app.router.end_sessions(
        crate::realtime::router::Sessions::One(revoked),
        crate::realtime::frame::code::SESSION_ENDED,
        "logged out",
    );
    Ok(Response::no_content().with_header(
        "Set-Cookie",
        format!(
            "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
            auth::COOKIE
        ),
    ))
}

/// The most uses one invite may have: enough for a large community's announcement link,
/// small enough that a leaked code cannot fill the server unnoticed.
const MAX_INVITE_USES: i64 = 10_000;
/// The longest an invite may live (30 days): a forgotten link should die on its own.
const MAX_INVITE_TTL_S: i64 = 30 * 24 * 3600;

#[derive(Deserialize, Default)]
struct InviteBody {
    #[serde(default)]
    max_uses: Option<i64>,
    #[serde(default)]
    expires_in_s: Option<i64>,
}

fn create_invite(req: &Request, app: &App) -> ApiResult<Response> {
    let user = community::routes::require(req, app, Perms::CREATE_INVITES)?;
    // No body (v1 clients) means the v1 defaults: one use, `INVITE_TTL_MS`.
    let b: InviteBody = if req.body.is_empty() {
        InviteBody::default()
    } else {
        body(req)?
    };
    let max_uses = b.max_uses.unwrap_or(1);
    if !(1..=MAX_INVITE_USES).contains(&max_uses) {
        return Err(ApiError::bad_request(format!(
            "max_uses must be 1 to {MAX_INVITE_USES}"
        )));
    }
    let ttl_ms = match b.expires_in_s {
        None => auth::INVITE_TTL_MS,
        Some(s) if (1..=MAX_INVITE_TTL_S).contains(&s) => s * 1000,
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "expires_in_s must be 1 to {MAX_INVITE_TTL_S}"
            )))
        }
    };
    let code = auth::new_invite_code();
    let expires_ts = now_ms() + ttl_ms;
    let invite = app
        .store
        .call(move |c| store::insert_invite(c, &code, user.id, expires_ts, max_uses))?;
    Ok(Response::json(201, &json!(invite)))
}

fn invite_by_code(req: &Request, app: &App, code: &str) -> ApiResult<Response> {
    match req.method.as_str() {
        "DELETE" => {
            community::routes::require(req, app, Perms::CREATE_INVITES)?;
            let code = code.to_string();
            app.store.call(move |c| store::revoke_invite(c, &code))?;
            Ok(Response::no_content())
        }
        _ => Err(method_not_allowed()),
    }
}

#[derive(Deserialize)]
struct ChannelBody {
    name: String,
    kind: String,
    #[serde(default)]
    topic: Option<String>,
}

fn create_channel(req: &Request, app: &App) -> ApiResult<Response> {
    let user = community::routes::require(req, app, Perms::MANAGE_CHANNELS)?;
    let b: ChannelBody = body(req)?;
    validate::channel_name(&b.name)?;
    // A DM is opened with `POST /api/dms` (it needs members), never created here.
    let kind = ChannelKind::parse(&b.kind)
        .filter(|k| *k != ChannelKind::Dm)
        .ok_or_else(|| ApiError::bad_request("kind must be \"text\" or \"voice\""))?;
    let channel = Channel::new(
        b.name,
        kind,
        validate::topic(b.topic.as_deref().unwrap_or(""))?,
    );
    let uid = user.id;
    community::routes::create_channel(app, user, channel.clone())?;
    Ok(Response::json(
        201,
        &json!(app
            .community
            .snapshot()
            .view(uid, &channel, app.config.media_port())),
    ))
}

/// `manage_channels` in that channel (checked in the job); viewers hear `channel_delete`.
fn delete_channel(req: &Request, app: &App, name: &str) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    community::routes::delete_channel(app, user, name.to_string())?;
    Ok(Response::no_content())
}

/// Parses an integer query parameter: absent → `None`, not an integer → 400.
fn int_param(req: &Request, name: &str) -> ApiResult<Option<i64>> {
    match req.query_param(name) {
        None => Ok(None),
        Some(v) => v
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("{name} must be an integer"))),
    }
}

/// `limit`: default `default`, 1..=max (0, negative or non-numeric → 400; above max → max).
fn limit_param(req: &Request, default: i64, max: i64) -> ApiResult<u32> {
    match int_param(req, "limit")? {
        None => Ok(default as u32),
        Some(n) if n < 1 => Err(ApiError::bad_request("limit must be at least 1")),
        Some(n) => Ok(n.min(max) as u32),
    }
}

fn history(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let channel = req
        .query_param("channel")
        .ok_or_else(|| ApiError::bad_request("channel is needed"))?;
    let limit = limit_param(req, HISTORY_DEFAULT, HISTORY_MAX)?;
    let page = match (int_param(req, "before")?, int_param(req, "after")?) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("use before or after, not both")),
        (Some(b), None) if b >= 1 => Page::Before(b),
        (None, Some(a)) if a >= 0 => Page::After(a),
        (None, None) => Page::Latest,
        _ => {
            return Err(ApiError::bad_request(
                "before and after must be message ids",
            ))
        }
    };
    // A channel the user may not see is one that does not exist (API.md).
    if !app.community.snapshot().can_view(user.id, &channel) {
        return Err(community::chat::no_channel(&channel));
    }
    let permit = app.heavy.admit(user.id, req.peer)?;
    let ids = app
        .store
        .read(move |c| store::history_ids(c, &channel, limit, page))?;
    Ok(message_array(app.store.clone(), ids, permit))
}

fn search(req: &Request, app: &App) -> ApiResult<Response> {
    let (user, _) = signed_in(req, app)?;
    let q = req.query_param("q").unwrap_or_default();
    if q.trim().is_empty() {
        return Err(ApiError::bad_request("q is needed"));
    }
    if q.len() > 256 {
        return Err(ApiError::bad_request("q is over 256 bytes"));
    }
    if q.chars().any(char::is_control) {
        // SQLite's FTS5 would read a NUL as the end of the query.
        return Err(ApiError::bad_request(
            "q must not contain control characters",
        ));
    }
    // The words are checked (and a query of too many refused) before it costs a token.
    store::search_query(&q)?;
    let channel = req.query_param("channel");
    let limit = limit_param(req, SEARCH_DEFAULT, SEARCH_MAX)?;
    app.search_limit
        .take(user.id)
        .map_err(ApiError::rate_limited)?;
    let snapshot = app.community.snapshot();
    if let Some(name) = channel
        .as_deref()
        .filter(|n| !snapshot.can_view(user.id, n))
    {
        return Err(community::chat::no_channel(name));
    }
    // Messages of channels the user may not see are left out in the query itself.
    let hidden = snapshot.hidden_channel_ids(user.id);
    let permit = app.heavy.admit(user.id, req.peer)?;
    let ids = app
        .store
        .read(move |c| store::search_ids(c, &q, channel.as_deref(), &hidden, limit))?;
    Ok(message_array(app.store.clone(), ids, permit))
}

/// A 200 whose body is the JSON array of the messages of `ids`, in that order, read from the
/// store a piece at a time as the client takes the response (`PIECE_MESSAGES`,
/// `PIECE_BYTES`). A message deleted meanwhile is left out, as if it had gone a moment
/// earlier. `permit` (this request's place among the heavy ones) goes with the last piece.
fn message_array(store: Store, ids: Vec<i64>, permit: crate::http::heavy::Permit) -> Response {
    let mut permit = Some(permit);
    let (mut next, mut opened, mut wrote_any, mut closed) = (0, false, false, false);
    let pieces = std::iter::from_fn(move || {
        if closed {
            return None;
        }
        let mut out = Vec::new();
        if !opened {
            out.push(b'[');
            opened = true;
        }
        if next >= ids.len() {
            out.push(b']');
            closed = true;
            permit.take();
            return Some(Ok(out));
        }
        let want = ids[next..(next + PIECE_MESSAGES).min(ids.len())].to_vec();
        let last_wanted = want[want.len() - 1];
        let rows = match store.read(move |c| store::messages_by_id(c, &want, PIECE_BYTES)) {
            Ok(rows) => rows,
            Err(e) => {
                closed = true;
                return Some(Err(e));
            }
        };
        // Where this piece stopped: at its last message, or (all of them gone) at the end
        // of what was asked for. Either is in ids[next..], so every piece moves on.
        let upto = rows.last().map_or(last_wanted, |m| m.id);
        next += ids[next..].iter().position(|&id| id == upto).unwrap_or(0) + 1;
        for m in rows {
            if wrote_any {
                out.push(b',');
            }
            wrote_any = true;
            if let Err(e) = serde_json::to_writer(&mut out, &m) {
                log::error!("cannot serialize a message: {e}");
                closed = true;
                return Some(Err(ApiError::internal()));
            }
        }
        Some(Ok(out))
    });
    Response::stream(200, "application/json", pieces)
}
