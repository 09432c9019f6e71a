//! The REST half of API.md against the real server: accounts and sessions (register, login,
//! logout, me, invites, the login throttle, cookie vs Bearer, CSRF Origin rule), channels,
//! users, history paging, full-text search, ICE servers, health and metrics, and a restart
//! that keeps users, sessions, channels and messages. Malformed input is in `http_errors.rs`.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{HttpResponse, Server};
use serde_json::{json, Value};

const FAST_SEND: [(&str, &str); 2] = [("SEND_RATE", "100000"), ("SEND_BURST", "100000")];
/// The search tests search more often than a person does (`SEARCH_RATE` is 2 a second).
const FAST_SEND_AND_SEARCH: [(&str, &str); 4] = [
    ("SEND_RATE", "100000"),
    ("SEND_BURST", "100000"),
    ("SEARCH_RATE", "100000"),
    ("SEARCH_BURST", "100000"),
];

/// Status, JSON content type and the contract's error body `{"error":{"code","message"}}`.
fn assert_error(r: &HttpResponse, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("application/json"),
        "{what}: error body is JSON"
    );
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{what}: {v}");
    assert!(
        !v["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{what}: error has a message: {v}"
    );
}

fn assert_healthy(s: &Server) {
    let r = s.request("GET", "/healthz", &[], None);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "ok"),
        "server still up"
    );
}

fn register_body(name: &str, password: &str) -> Value {
    json!({"username": name, "password": password})
}

fn register_with(s: &Server, body: Value) -> HttpResponse {
    s.request("POST", "/api/register", &[], Some(&body))
}

fn login(s: &Server, name: &str, password: &str) -> HttpResponse {
    login_with(s, &[], name, password)
}

fn login_with(s: &Server, headers: &[(&str, &str)], name: &str, password: &str) -> HttpResponse {
    s.request(
        "POST",
        "/api/login",
        headers,
        Some(&json!({"username": name, "password": password})),
    )
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The session cookie a response sets, with its attributes.
fn set_cookie(r: &HttpResponse) -> String {
    r.header("set-cookie")
        .unwrap_or_else(|| panic!("no Set-Cookie: {:?}", r.headers))
        .to_string()
}

fn assert_session_cookie(r: &HttpResponse, token: &str) {
    let c = set_cookie(r);
    assert!(
        c.starts_with(&format!("md_session={token}")),
        "cookie carries the token: {c}"
    );
    let attrs: Vec<String> = c
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for want in ["httponly", "samesite=strict", "path=/"] {
        assert!(attrs.iter().any(|a| a == want), "cookie has {want}: {c}");
    }
}

/// Sends `n` messages to `channel` over `/ws` and returns their ids in commit order.
fn seed(s: &Server, token: &str, channel: &str, n: usize, prefix: &str) -> Vec<i64> {
    let (mut c, _) = s.ws(token);
    let mut ids = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let window = (n - i).min(25);
        for k in i..i + window {
            c.send(json!({"type":"send","channel":channel,"content":format!("{prefix} {k}"),"nonce":format!("{prefix}-{k}")}));
        }
        for _ in 0..window {
            let m = c.recv_type("message");
            ids.push(m["message"]["id"].as_i64().unwrap());
        }
        i += window;
    }
    ids
}

fn ids_of(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect()
}

fn metric(s: &Server, name: &str) -> f64 {
    let text = s.request("GET", "/metrics", &[], None).text();
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

// ---------------------------------------------------------------------------------------
// Accounts and sessions
// ---------------------------------------------------------------------------------------

#[test]
fn register_returns_201_user_token_and_session_cookie_first_is_admin() {
    let s = Server::start(&[]);
    let r = register_with(&s, register_body("alice", "password123"));
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let token = v["token"].as_str().unwrap().to_string();
    assert!(
        token.len() >= 32,
        "token carries at least 128 bits: {token}"
    );
    assert_eq!(v["user"]["username"], "alice");
    assert_eq!(v["user"]["admin"], true, "first account is admin");
    assert!(v["user"]["id"].as_i64().unwrap() > 0);
    // v2: user objects also carry avatar_url, display_name and status_text (null when none).
    assert_eq!(v["user"].as_object().unwrap().len(), 6, "{v}");
    assert!(v["user"]["avatar_url"].is_null() && v["user"]["display_name"].is_null());
    assert!(v["user"]["status_text"].is_null());
    assert_session_cookie(&r, &token);

    let r2 = register_with(&s, register_body("bob", "password123"));
    assert_eq!(r2.status, 201);
    let v2 = r2.json();
    assert_eq!(v2["user"]["admin"], false, "second account is not admin");
    assert_ne!(v2["user"]["id"], v["user"]["id"]);
    assert_ne!(v2["token"], v["token"]);
}

#[test]
fn register_rejects_each_bad_username_rule_with_400() {
    let s = Server::start(&[]);
    for (name, why) in [
        ("a", "too short (1)"),
        ("", "empty"),
        (&"x".repeat(33) as &str, "too long (33)"),
        ("al ice", "space"),
        ("ålice", "non-ASCII"),
        ("<script>", "angle brackets"),
        ("a/b", "slash"),
        ("al@ce", "at sign"),
    ] {
        let r = register_with(&s, register_body(name, "password123"));
        assert_error(&r, 400, "bad_request", why);
    }
    // The edges are allowed.
    for ok in ["ab", &"y".repeat(32), "A.b-c_9"] {
        let r = register_with(&s, register_body(ok, "password123"));
        assert_eq!(r.status, 201, "{ok}: {}", r.text());
    }
}

#[test]
fn register_rejects_password_of_7_or_129_chars_and_accepts_8_and_128() {
    let s = Server::start(&[]);
    for (pw, why) in [
        ("1234567".to_string(), "7 chars"),
        ("p".repeat(129), "129 chars"),
        (String::new(), "empty"),
    ] {
        let r = register_with(&s, register_body("alice", &pw));
        assert_error(&r, 400, "bad_request", why);
    }
    assert_eq!(
        register_with(&s, register_body("alice", "12345678")).status,
        201
    );
    assert_eq!(
        register_with(&s, register_body("bob", &"p".repeat(128))).status,
        201
    );
    assert_eq!(login(&s, "bob", &"p".repeat(128)).status, 200);
}

#[test]
fn register_409_when_name_taken_ignoring_case() {
    let s = Server::start(&[]);
    s.register("alice");
    for name in ["alice", "Alice", "ALICE"] {
        let r = register_with(&s, register_body(name, "password123"));
        assert_error(&r, 409, "conflict", name);
    }
}

#[test]
fn registration_invite_mode_needs_a_valid_unused_invite() {
    let s = Server::start(&[("REGISTRATION", "invite")]);
    // The first account needs no invite and is admin.
    let admin = s.register("admin");
    let r = register_with(&s, register_body("bob", "password123"));
    assert_error(&r, 403, "forbidden", "no invite");
    let r = register_with(
        &s,
        json!({"username":"bob","password":"password123","invite":""}),
    );
    assert_error(&r, 403, "forbidden", "empty invite");
    let r = register_with(
        &s,
        json!({"username":"bob","password":"password123","invite":"not-a-real-code"}),
    );
    assert_error(&r, 403, "forbidden", "bad invite");

    let inv = s.call("POST", "/api/invites", &admin, None);
    assert_eq!(inv.status, 201, "{}", inv.text());
    let inv = inv.json();
    let code = inv["code"].as_str().unwrap().to_string();
    assert!(!code.is_empty());
    assert!(
        inv["expires_ts"].as_i64().unwrap() > now_ms(),
        "invite expires in the future: {inv}"
    );

    // A refused attempt created nothing: bob can still take his name with the invite.
    let r = register_with(
        &s,
        json!({"username":"bob","password":"password123","invite":code}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["user"]["admin"], false);

    let r = register_with(
        &s,
        json!({"username":"carol","password":"password123","invite":code}),
    );
    assert_error(&r, 403, "forbidden", "reused invite");

    // A name clash does not use up the invite.
    let code2 = s.call("POST", "/api/invites", &admin, None).json()["code"]
        .as_str()
        .unwrap()
        .to_string();
    let r = register_with(
        &s,
        json!({"username":"BOB","password":"password123","invite":code2}),
    );
    assert_error(&r, 409, "conflict", "taken name with a valid invite");
    let r = register_with(
        &s,
        json!({"username":"carol","password":"password123","invite":code2}),
    );
    assert_eq!(r.status, 201, "invite still valid: {}", r.text());
}

#[test]
fn registration_defaults_to_invite_when_unset() {
    // An empty value means unset (the harness sets REGISTRATION=open otherwise).
    let s = Server::start(&[("REGISTRATION", "")]);
    s.register("admin");
    let r = register_with(&s, register_body("bob", "password123"));
    assert_error(&r, 403, "forbidden", "default mode needs an invite");
}

#[test]
fn registration_closed_allows_only_the_first_account() {
    let s = Server::start(&[("REGISTRATION", "closed")]);
    let r = register_with(&s, register_body("admin", "password123"));
    assert_eq!(r.status, 201, "first account always allowed");
    assert_eq!(r.json()["user"]["admin"], true);
    let admin = r.json()["token"].as_str().unwrap().to_string();
    let r = register_with(&s, register_body("bob", "password123"));
    assert_error(&r, 403, "forbidden", "closed");
    // Not even with an invite.
    let code = s.call("POST", "/api/invites", &admin, None).json()["code"].clone();
    let r = register_with(
        &s,
        json!({"username":"bob","password":"password123","invite":code}),
    );
    assert_error(&r, 403, "forbidden", "closed, with invite");
}

#[test]
fn invites_are_admin_only_and_need_a_session() {
    let s = Server::start(&[]);
    s.register("admin");
    let bob = s.register("bob");
    let r = s.call("POST", "/api/invites", &bob, None);
    assert_error(&r, 403, "forbidden", "non-admin invite");
    let r = s.request("POST", "/api/invites", &[], None);
    assert_error(&r, 401, "unauthorized", "no session");
}

#[test]
fn login_returns_200_same_body_and_cookie() {
    let s = Server::start(&[]);
    let reg = register_with(&s, register_body("alice", "password123")).json();
    let r = login(&s, "alice", "password123");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["user"], reg["user"]);
    let token = v["token"].as_str().unwrap().to_string();
    assert_ne!(v["token"], reg["token"], "a new session per login");
    assert_session_cookie(&r, &token);
    // Both sessions work.
    for t in [&token, reg["token"].as_str().unwrap()] {
        let me = s.call("GET", "/api/me", t, None);
        assert_eq!(me.status, 200);
        assert_eq!(me.json(), json!({"user": reg["user"]}));
    }
}

#[test]
fn login_401_same_answer_for_unknown_user_and_wrong_password() {
    let s = Server::start(&[]);
    s.register("alice");
    let wrong = login(&s, "alice", "wrongpassword");
    let unknown = login(&s, "nobody", "password123");
    let invalid = login(&s, "not a valid name!", "password123");
    assert_error(&wrong, 401, "unauthorized", "wrong password");
    assert_error(&unknown, 401, "unauthorized", "unknown user");
    assert_error(&invalid, 401, "unauthorized", "invalid name");
    assert_eq!(wrong.body, unknown.body, "no user enumeration");
    assert_eq!(wrong.body, invalid.body);
    assert!(wrong.header("set-cookie").is_none());
}

#[test]
fn login_429_with_retry_after_after_10_failures_per_username() {
    let s = Server::start(&[]);
    s.register("alice");
    for i in 0..10 {
        let r = login(&s, "alice", "wrongpassword");
        assert_error(&r, 401, "unauthorized", &format!("failure {i}"));
    }
    let r = login(&s, "alice", "wrongpassword");
    assert_error(&r, 429, "rate_limited", "11th attempt");
    let ra: u64 = r
        .header("retry-after")
        .expect("Retry-After on 429")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=15 * 60).contains(&ra), "Retry-After {ra}");
    // The right password does not get through the throttle either, whatever the case.
    assert_error(
        &login(&s, "alice", "password123"),
        429,
        "rate_limited",
        "right password while throttled",
    );
    assert_error(
        &login(&s, "ALICE", "password123"),
        429,
        "rate_limited",
        "other case while throttled",
    );
    // Another account from the same IP is unaffected (10 < 30 per IP).
    s.register("bob");
    assert_eq!(login(&s, "bob", "password123").status, 200);
}

fn login_via(s: &Server, xff: &str, name: &str, password: &str) -> HttpResponse {
    login_with(s, &[("X-Forwarded-For", xff)], name, password)
}

/// Behind a trusted reverse proxy (`TRUSTED_PROXIES`; here the test client plays the proxy on
/// 127.0.0.1), the per-IP login throttle counts the client the proxy forwards, so one
/// client's failures do not lock everybody out; a client cannot dodge it by forging the
/// header, because the proxy appends the address it saw. Without the setting the header is
/// ignored and everyone behind the proxy shares one address.
#[test]
fn login_throttle_counts_the_forwarded_client_only_behind_a_trusted_proxy() {
    let s = Server::start(&[("TRUSTED_PROXIES", "127.0.0.1")]);
    s.register("alice");
    for i in 0..30 {
        let r = login_via(&s, "203.0.113.1", &format!("user{}", i % 5), "wrong");
        assert_error(&r, 401, "unauthorized", &format!("failure {i}"));
    }
    assert_error(
        &login_via(&s, "203.0.113.1", "alice", "password123"),
        429,
        "rate_limited",
        "the failing client is throttled",
    );
    assert_error(
        &login_via(&s, "203.0.113.2, 203.0.113.1", "alice", "password123"),
        429,
        "rate_limited",
        "a forged left-hand entry changes nothing",
    );
    let r = login_via(&s, "203.0.113.2", "alice", "password123");
    assert_eq!(r.status, 200, "another client logs in: {}", r.text());

    let plain = Server::start(&[]);
    plain.register("alice");
    for i in 0..30 {
        let r = login_via(&plain, "203.0.113.1", &format!("user{}", i % 5), "wrong");
        assert_error(&r, 401, "unauthorized", &format!("failure {i}"));
    }
    assert_error(
        &login_via(&plain, "203.0.113.2", "alice", "password123"),
        429,
        "rate_limited",
        "without TRUSTED_PROXIES the header is ignored",
    );
}

#[test]
fn login_429_after_30_failures_from_one_ip_across_usernames() {
    let s = Server::start(&[]);
    s.register("alice");
    for i in 0..30 {
        let r = login(&s, &format!("user{}", i % 5), "wrongpassword");
        assert_error(&r, 401, "unauthorized", &format!("failure {i}"));
    }
    let r = login(&s, "someone-new", "wrongpassword");
    assert_error(&r, 429, "rate_limited", "31st failure from the IP");
    assert!(r.header("retry-after").is_some());
    assert_error(
        &login(&s, "alice", "password123"),
        429,
        "rate_limited",
        "IP throttled",
    );
}

#[test]
fn logout_204_revokes_session_and_clears_cookie() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    let other = login(&s, "alice", "password123").json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.call("POST", "/api/logout", &t, None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    let c = set_cookie(&r);
    assert!(
        c.starts_with("md_session=;") || c.starts_with("md_session=\"\""),
        "{c}"
    );
    assert!(c.contains("Max-Age=0"), "cookie cleared: {c}");
    assert!(c.contains("Path=/"), "{c}");
    assert_error(
        &s.call("GET", "/api/me", &t, None),
        401,
        "unauthorized",
        "revoked token",
    );
    assert_error(
        &s.call("POST", "/api/logout", &t, None),
        401,
        "unauthorized",
        "logout twice",
    );
    // Only that session was revoked.
    assert_eq!(s.call("GET", "/api/me", &other, None).status, 200);
    assert_error(
        &s.request("POST", "/api/logout", &[], None),
        401,
        "unauthorized",
        "logout without session",
    );
}

#[test]
fn me_200_with_session_401_without_or_with_bad_token() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    let r = s.call("GET", "/api/me", &t, None);
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["user"]["username"], "alice");
    assert_eq!(v["user"]["admin"], true);
    assert_error(
        &s.request("GET", "/api/me", &[], None),
        401,
        "unauthorized",
        "none",
    );
    for bad in [
        "nope".to_string(),
        "0".repeat(64),
        format!("{t}x"),
        t[..63].to_string(),
        String::new(),
    ] {
        assert_error(
            &s.call("GET", "/api/me", &bad, None),
            401,
            "unauthorized",
            &format!("bearer {bad:?}"),
        );
    }
    assert_error(
        &s.request(
            "GET",
            "/api/me",
            &[("Authorization", &format!("Basic {t}"))],
            None,
        ),
        401,
        "unauthorized",
        "Basic scheme",
    );
    assert_error(
        &s.request("GET", "/api/me", &[("Cookie", "md_session=garbage")], None),
        401,
        "unauthorized",
        "bad cookie",
    );
}

#[test]
fn cookie_session_works_for_get_and_post_needs_own_origin() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    let cookie = format!("other=1; md_session={t}");
    let own = format!("http://{}", s.addr);
    let r = s.request("GET", "/api/me", &[("Cookie", &cookie)], None);
    assert_eq!(r.status, 200, "cookie auth on GET: {}", r.text());
    assert_eq!(r.json()["user"]["username"], "alice");
    let r = s.request(
        "GET",
        "/api/channels",
        &[("Cookie", &cookie), ("Origin", "https://evil.example")],
        None,
    );
    assert_eq!(r.status, 200, "GET is not state-changing");

    // POST with the cookie and a foreign Origin: refused (CSRF).
    let r = s.request(
        "POST",
        "/api/invites",
        &[("Cookie", &cookie), ("Origin", "https://evil.example")],
        None,
    );
    assert_error(&r, 403, "forbidden", "cookie POST, foreign origin");
    let r = s.request(
        "POST",
        "/api/channels",
        &[("Cookie", &cookie), ("Origin", "https://evil.example")],
        Some(&json!({"name":"csrf","kind":"text"})),
    );
    assert_error(
        &r,
        403,
        "forbidden",
        "cookie channel create, foreign origin",
    );
    let r = s.request(
        "POST",
        "/api/logout",
        &[("Cookie", &cookie), ("Origin", "null")],
        None,
    );
    assert_error(&r, 403, "forbidden", "cookie logout, null origin");
    assert!(
        !s.call("GET", "/api/channels", &t, None)
            .text()
            .contains("csrf"),
        "nothing was created"
    );

    // Own origin: allowed.
    let r = s.request(
        "POST",
        "/api/invites",
        &[("Cookie", &cookie), ("Origin", &own)],
        None,
    );
    assert_eq!(r.status, 201, "cookie POST, own origin: {}", r.text());

    // Bearer is not subject to the Origin rule (a browser never adds it by itself).
    let r = s.request(
        "POST",
        "/api/invites",
        &[
            ("Authorization", &format!("Bearer {t}")),
            ("Origin", "https://evil.example"),
        ],
        None,
    );
    assert_eq!(r.status, 201, "bearer POST: {}", r.text());
}

#[test]
fn every_session_endpoint_401_without_session() {
    let s = Server::start(&[]);
    s.register("alice");
    for (m, p) in [
        ("GET", "/api/me"),
        ("POST", "/api/logout"),
        ("POST", "/api/invites"),
        ("GET", "/api/channels"),
        ("POST", "/api/channels"),
        ("DELETE", "/api/channels/general"),
        ("GET", "/api/users"),
        ("GET", "/api/history?channel=general"),
        ("GET", "/api/search?q=hello"),
        ("GET", "/api/webrtc-config"),
    ] {
        let r = s.request(m, p, &[], None);
        assert_error(&r, 401, "unauthorized", &format!("{m} {p}"));
    }
}

#[test]
fn users_lists_id_username_admin_and_needs_session() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    s.register("bob");
    let r = s.call("GET", "/api/users", &t, None);
    assert_eq!(r.status, 200);
    let v = r.json();
    let users = v.as_array().unwrap();
    assert_eq!(users.len(), 2, "{v}");
    for u in users {
        let keys: Vec<&str> = u.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        let mut keys = keys;
        keys.sort();
        assert_eq!(
            keys,
            [
                "admin",
                "avatar_url",
                "display_name",
                "id",
                "status_text",
                "username"
            ],
            "no other fields: {u}"
        );
    }
    let alice = users.iter().find(|u| u["username"] == "alice").unwrap();
    let bob = users.iter().find(|u| u["username"] == "bob").unwrap();
    assert_eq!(
        (alice["admin"].clone(), bob["admin"].clone()),
        (json!(true), json!(false))
    );
    assert_error(
        &s.request("GET", "/api/users", &[], None),
        401,
        "unauthorized",
        "users without session",
    );
}

// ---------------------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------------------

/// A channel object's v1 fields (v2 adds slow mode, position, category, permissions).
fn v1_channel(c: &Value) -> Value {
    json!({"name": c["name"], "kind": c["kind"], "topic": c["topic"]})
}

#[test]
fn channels_default_list_is_general_text_and_lounge_voice() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    let r = s.call("GET", "/api/channels", &t, None);
    assert_eq!(r.status, 200);
    // The v1 fields, exactly; v2 ("Run a community") adds fields beside them.
    let v1: Vec<Value> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| json!({"name": c["name"], "kind": c["kind"], "topic": c["topic"]}))
        .collect();
    assert_eq!(
        json!(v1),
        json!([{"name":"general","kind":"text","topic":""},{"name":"lounge","kind":"voice","topic":""}])
    );
    assert_eq!(r.json()[0]["slowmode_s"], 0);
    assert_eq!(r.json()[0]["private"], false);
    assert_eq!(r.json()[0]["category"], Value::Null);
}

#[test]
fn channel_create_201_and_delete_204_are_pushed_to_ws() {
    let s = Server::start(&[]);
    let admin = s.register("alice");
    let bob = s.register("bob");
    let (mut w, _) = s.ws(&bob);

    let r = s.call(
        "POST",
        "/api/channels",
        &admin,
        Some(&json!({"name":"dev-ops_2","kind":"text","topic":"  builds  "})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let ch = v1_channel(&r.json());
    assert_eq!(
        ch,
        json!({"name":"dev-ops_2","kind":"text","topic":"builds"})
    );
    let ev = w.recv_type("channel_create");
    assert_eq!(v1_channel(&ev["channel"]), ch);

    let r = s.call(
        "POST",
        "/api/channels",
        &admin,
        Some(&json!({"name":"stage","kind":"voice"})),
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        v1_channel(&r.json()),
        json!({"name":"stage","kind":"voice","topic":""})
    );
    assert_eq!(w.recv_type("channel_create")["channel"]["name"], "stage");

    let list = s.call("GET", "/api/channels", &bob, None).json();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in ["general", "lounge", "dev-ops_2", "stage"] {
        assert!(names.contains(&n), "{n} listed: {list}");
    }

    let r = s.call("DELETE", "/api/channels/dev-ops_2", &admin, None);
    assert_eq!(r.status, 204, "{}", r.text());
    assert!(r.body.is_empty());
    let ev = w.recv_type("channel_delete");
    assert_eq!(ev["name"], "dev-ops_2");
    assert!(!s
        .call("GET", "/api/channels", &bob, None)
        .text()
        .contains("dev-ops_2"));
    assert_error(
        &s.call("DELETE", "/api/channels/dev-ops_2", &admin, None),
        404,
        "not_found",
        "deleted twice",
    );
    assert_error(
        &s.call("DELETE", "/api/channels/never-was", &admin, None),
        404,
        "not_found",
        "unknown channel",
    );
    assert_error(
        &s.call("GET", "/api/history?channel=dev-ops_2", &admin, None),
        404,
        "not_found",
        "history of a deleted channel",
    );
    // A name can be reused after deletion.
    let r = s.call(
        "POST",
        "/api/channels",
        &admin,
        Some(&json!({"name":"dev-ops_2","kind":"voice"})),
    );
    assert_eq!(r.status, 201);
}

#[test]
fn channel_create_409_on_duplicate_also_across_kinds() {
    let s = Server::start(&[]);
    let admin = s.register("alice");
    for (name, kind) in [
        ("general", "text"),
        ("general", "voice"),
        ("lounge", "text"),
        ("lounge", "voice"),
    ] {
        let r = s.call(
            "POST",
            "/api/channels",
            &admin,
            Some(&json!({"name":name,"kind":kind})),
        );
        assert_error(&r, 409, "conflict", &format!("{name} as {kind}"));
    }
    let ok = json!({"name":"random","kind":"text"});
    assert_eq!(
        s.call("POST", "/api/channels", &admin, Some(&ok)).status,
        201
    );
    assert_error(
        &s.call("POST", "/api/channels", &admin, Some(&ok)),
        409,
        "conflict",
        "same twice",
    );
}

#[test]
fn channel_create_400_for_bad_name_kind_topic_fields_and_types() {
    let s = Server::start(&[]);
    let admin = s.register("alice");
    let long_topic = "t".repeat(257);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name":"","kind":"text"}), "empty name"),
        (
            json!({"name":"a".repeat(33),"kind":"text"}),
            "name 33 chars",
        ),
        (json!({"name":"General","kind":"text"}), "uppercase"),
        (json!({"name":"a b","kind":"text"}), "space"),
        (json!({"name":"x/y","kind":"text"}), "slash"),
        (json!({"name":"dot.s","kind":"text"}), "dot"),
        (json!({"name":"ünï","kind":"text"}), "non-ASCII"),
        (json!({"name":"ok","kind":"video"}), "bad kind"),
        (json!({"name":"ok","kind":"TEXT"}), "kind case"),
        (
            json!({"name":"ok","kind":"text","topic":long_topic}),
            "topic 257",
        ),
        (
            json!({"name":"ok","kind":"text","topic":"bell\u{7}"}),
            "topic control char",
        ),
        (json!({"kind":"text"}), "missing name"),
        (json!({"name":"ok"}), "missing kind"),
        (json!({}), "empty object"),
        (json!({"name":5,"kind":"text"}), "name number"),
        (json!({"name":"ok","kind":1}), "kind number"),
        (json!({"name":"ok","kind":"text","topic":5}), "topic number"),
        (json!({"name":null,"kind":"text"}), "name null"),
        (json!(["ok", "text"]), "array"),
        (json!("ok"), "string"),
    ];
    let mut accepted = Vec::new();
    for (body, why) in cases {
        let r = s.call("POST", "/api/channels", &admin, Some(&body));
        if r.status == 201 {
            accepted.push(format!("{why}: {body} -> 201 {}", r.text()));
            continue;
        }
        assert_error(&r, 400, "bad_request", why);
    }
    // No body at all.
    assert_error(
        &s.call("POST", "/api/channels", &admin, None),
        400,
        "bad_request",
        "no body",
    );
    // The edges are allowed.
    for body in [
        json!({"name":"a","kind":"text"}),
        json!({"name":"b".repeat(32),"kind":"voice","topic":"t".repeat(256)}),
    ] {
        let r = s.call("POST", "/api/channels", &admin, Some(&body));
        assert_eq!(r.status, 201, "{body}: {}", r.text());
    }
    assert_healthy(&s);
    assert!(
        accepted.is_empty(),
        "malformed channel bodies were accepted: {accepted:#?}"
    );
}

#[test]
fn channel_create_and_delete_403_for_non_admin() {
    let s = Server::start(&[]);
    let admin = s.register("alice");
    let bob = s.register("bob");
    let r = s.call(
        "POST",
        "/api/channels",
        &bob,
        Some(&json!({"name":"mine","kind":"text"})),
    );
    assert_error(&r, 403, "forbidden", "non-admin create");
    let r = s.call("DELETE", "/api/channels/general", &bob, None);
    assert_error(&r, 403, "forbidden", "non-admin delete");
    assert_eq!(
        s.call("GET", "/api/channels", &admin, None)
            .json()
            .as_array()
            .unwrap()
            .len(),
        2,
        "nothing changed"
    );
}

// ---------------------------------------------------------------------------------------
// History
// ---------------------------------------------------------------------------------------

#[test]
fn history_default_limit_cap_and_paging_oldest_first() {
    let s = Server::start(&FAST_SEND);
    let t = s.register("alice");
    s.call(
        "POST",
        "/api/channels",
        &t,
        Some(&json!({"name":"random","kind":"text"})),
    );
    let ids = seed(&s, &t, "general", 230, "msg");
    let other = seed(&s, &t, "random", 5, "elsewhere");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids increase");

    let get = |q: &str| {
        let r = s.call("GET", &format!("/api/history?{q}"), &t, None);
        assert_eq!(r.status, 200, "{q}: {}", r.text());
        r.json()
    };

    // Default: the newest 50, oldest first.
    let h = get("channel=general");
    assert_eq!(ids_of(&h), ids[180..].to_vec());
    let m = &h[49];
    assert_eq!(m["channel"], "general");
    assert_eq!(m["author"], "alice");
    assert_eq!(m["content"], "msg 229");
    assert!(m["ts"].as_i64().unwrap() > 1_700_000_000_000);
    assert_eq!(m["edited_ts"], Value::Null);
    assert_eq!(m["reply_to"], Value::Null);
    assert_eq!(m["reactions"], json!({}));

    // Above 200 is capped at 200.
    assert_eq!(
        ids_of(&get("channel=general&limit=500")),
        ids[30..].to_vec()
    );
    assert_eq!(
        ids_of(&get("channel=general&limit=200")),
        ids[30..].to_vec()
    );
    assert_eq!(ids_of(&get("channel=general&limit=1")), vec![ids[229]]);

    // before: the newest `limit` with id < before, oldest first.
    assert_eq!(
        ids_of(&get(&format!(
            "channel=general&limit=10&before={}",
            ids[100]
        ))),
        ids[90..100].to_vec()
    );
    assert_eq!(
        ids_of(&get(&format!("channel=general&limit=10&before={}", ids[5]))),
        ids[..5].to_vec()
    );
    assert_eq!(
        ids_of(&get(&format!("channel=general&before={}", ids[0]))),
        Vec::<i64>::new()
    );
    // after: the oldest `limit` with id > after, oldest first.
    assert_eq!(
        ids_of(&get(&format!(
            "channel=general&limit=10&after={}",
            ids[100]
        ))),
        ids[101..111].to_vec()
    );
    assert_eq!(
        ids_of(&get("channel=general&limit=3&after=0")),
        ids[..3].to_vec()
    );
    assert_eq!(
        ids_of(&get(&format!("channel=general&after={}", ids[229]))),
        Vec::<i64>::new()
    );
    // Scroll all the way back with before= and catch up with after=: every id exactly once.
    let mut back = Vec::new();
    let mut page = ids_of(&get("channel=general&limit=64"));
    while !page.is_empty() {
        back.splice(0..0, page.iter().copied());
        page = ids_of(&get(&format!(
            "channel=general&limit=64&before={}",
            page[0]
        )));
    }
    assert_eq!(back, ids);
    let mut fwd = Vec::new();
    let mut cursor = 0;
    loop {
        let page = ids_of(&get(&format!("channel=general&limit=64&after={cursor}")));
        if page.is_empty() {
            break;
        }
        cursor = *page.last().unwrap();
        fwd.extend(page);
    }
    assert_eq!(fwd, ids);

    // Channels do not mix.
    assert_eq!(ids_of(&get("channel=random")), other);
}

#[test]
fn history_bad_parameters_get_400_404_401() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    for q in [
        "channel=general&limit=0",
        "channel=general&limit=-1",
        "channel=general&limit=abc",
        "channel=general&limit=",
        "channel=general&limit=1.5",
        "channel=general&limit=99999999999999999999999",
        "channel=general&before=1&after=1",
        "channel=general&before=abc",
        "channel=general&after=xyz",
        "channel=lounge",
        "limit=5",
        "",
    ] {
        let r = s.call("GET", &format!("/api/history?{q}"), &t, None);
        assert_error(&r, 400, "bad_request", q);
    }
    for q in ["channel=nowhere", "channel=General", "channel=%2e%2e"] {
        let r = s.call("GET", &format!("/api/history?{q}"), &t, None);
        assert_error(&r, 404, "not_found", q);
    }
    assert_error(
        &s.request("GET", "/api/history?channel=general", &[], None),
        401,
        "unauthorized",
        "no session",
    );
    assert_healthy(&s);
}

#[test]
fn history_reflects_edits_reactions_replies_and_deletes() {
    let s = Server::start(&FAST_SEND);
    let t = s.register("alice");
    let (mut c, _) = s.ws(&t);
    c.send(json!({"type":"send","channel":"general","content":"one"}));
    let one = c.recv_type("message")["message"]["id"].as_i64().unwrap();
    c.send(json!({"type":"send","channel":"general","content":"two","reply_to":one}));
    let two = c.recv_type("message")["message"]["id"].as_i64().unwrap();
    c.send(json!({"type":"edit","id":one,"content":"one!"}));
    c.recv_type("message_update");
    c.send(json!({"type":"react","id":one,"emoji":"👍"}));
    c.recv_type("reaction");
    let h = s
        .call("GET", "/api/history?channel=general", &t, None)
        .json();
    assert_eq!(ids_of(&h), vec![one, two]);
    assert_eq!(h[0]["content"], "one!");
    assert!(h[0]["edited_ts"].as_i64().is_some());
    assert_eq!(h[0]["reactions"], json!({"👍":["alice"]}));
    assert_eq!(h[1]["reply_to"], one);
    c.send(json!({"type":"delete","id":one}));
    c.recv_type("message_delete");
    let h = s
        .call("GET", "/api/history?channel=general", &t, None)
        .json();
    assert_eq!(ids_of(&h), vec![two]);
}

// ---------------------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------------------

#[test]
fn search_finds_words_newest_first_with_channel_filter_and_limit() {
    let s = Server::start(&FAST_SEND_AND_SEARCH);
    let t = s.register("alice");
    s.call(
        "POST",
        "/api/channels",
        &t,
        Some(&json!({"name":"random","kind":"text"})),
    );
    let (mut c, _) = s.ws(&t);
    let mut send = |ch: &str, text: &str| {
        c.send(json!({"type":"send","channel":ch,"content":text}));
        c.recv_type("message")["message"]["id"].as_i64().unwrap()
    };
    let a = send("general", "apple banana");
    let b = send("general", "Apple cherry pie");
    let r = send("random", "an apple a day");
    let _n = send("general", "nothing to see");

    let search = |q: &str| {
        let resp = s.call("GET", &format!("/api/search?{q}"), &t, None);
        assert_eq!(resp.status, 200, "{q}: {}", resp.text());
        resp.json()
    };
    assert_eq!(ids_of(&search("q=apple")), vec![r, b, a], "newest first");
    assert_eq!(
        ids_of(&search("q=APPLE")),
        vec![r, b, a],
        "case-insensitive"
    );
    assert_eq!(ids_of(&search("q=apple&channel=general")), vec![b, a]);
    assert_eq!(ids_of(&search("q=apple&channel=random")), vec![r]);
    assert_eq!(ids_of(&search("q=apple&limit=1")), vec![r]);
    assert_eq!(ids_of(&search("q=apple&limit=2")), vec![r, b]);
    assert_eq!(
        ids_of(&search("q=apple+cherry")),
        vec![b],
        "every word must match"
    );
    assert_eq!(ids_of(&search("q=apple%20banana")), vec![a]);
    assert_eq!(ids_of(&search("q=durian")), Vec::<i64>::new());
    let hit = &search("q=banana")[0];
    assert_eq!(hit["content"], "apple banana");
    assert_eq!(hit["channel"], "general");
    assert_eq!(hit["author"], "alice");

    // Edits and deletes are reflected.
    c.send(json!({"type":"edit","id":a,"content":"durian banana"}));
    c.recv_type("message_update");
    assert_eq!(ids_of(&search("q=apple")), vec![r, b]);
    assert_eq!(ids_of(&search("q=durian")), vec![a]);
    assert_eq!(search("q=durian")[0]["content"], "durian banana");
    c.send(json!({"type":"delete","id":b}));
    c.recv_type("message_delete");
    assert_eq!(ids_of(&search("q=apple")), vec![r]);
    assert_eq!(ids_of(&search("q=cherry")), Vec::<i64>::new());
}

#[test]
fn search_fts_syntax_in_q_is_harmless() {
    let s = Server::start(&FAST_SEND_AND_SEARCH);
    let t = s.register("alice");
    let (mut c, _) = s.ws(&t);
    c.send(
        json!({"type":"send","channel":"general","content":"hello world (test) \"quoted\" a*b"}),
    );
    c.recv_type("message");
    let mut wrong = Vec::new();
    for q in [
        "%22",
        "%22unbalanced",
        "hello%22",
        "*",
        "hello*",
        "NEAR(hello",
        "NEAR(hello+world)",
        "hello+OR",
        "OR",
        "AND+NOT",
        "-hello",
        "content:hello",
        "nosuchcol:hello",
        "^hello",
        "(",
        ")",
        "{hello}",
        "'",
        "%27%3B+DROP+TABLE+messages%3B--",
        "hello+%2B+world",
        "%5C",
        "%F0%9F%91%8D",
        "%00",
        "hello%00world",
        "%01",
    ] {
        let r = s.call("GET", &format!("/api/search?q={q}"), &t, None);
        match r.status {
            200 => assert!(r.json().is_array(), "q={q}"),
            400 => assert_error(&r, 400, "bad_request", q),
            other => wrong.push(format!("q={q}: got {other} {}", r.text())),
        }
    }
    // Punctuation is taken literally, not as syntax.
    let r = s.call("GET", "/api/search?q=NEAR(hello", &t, None);
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.call("GET", "/api/search?q=hello+OR+nothing", &t, None);
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json(),
        json!([]),
        "OR is a word to match, not an operator"
    );
    assert_healthy(&s);
    // Still searchable afterwards.
    assert_eq!(
        s.call("GET", "/api/search?q=hello", &t, None)
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(
        wrong.is_empty(),
        "search answered neither 200 nor 400: {wrong:#?}\nserver log:\n{}",
        s.log_text()
    );
}

#[test]
fn search_400_for_empty_q_and_bad_limit_404_unknown_channel_401() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    for q in [
        "",
        "q=",
        "q=+++",
        "q=%20%09",
        "q=hello&limit=0",
        "q=hello&limit=-3",
        "q=hello&limit=lots",
        "q=hello&channel=lounge",
    ] {
        let r = s.call("GET", &format!("/api/search?{q}"), &t, None);
        assert_error(&r, 400, "bad_request", q);
    }
    let r = s.call("GET", "/api/search?q=hello&channel=nowhere", &t, None);
    assert_error(&r, 404, "not_found", "unknown channel");
    assert_error(
        &s.request("GET", "/api/search?q=hello", &[], None),
        401,
        "unauthorized",
        "no session",
    );
    assert_healthy(&s);
}

// ---------------------------------------------------------------------------------------
// ICE servers
// ---------------------------------------------------------------------------------------

/// base64(HMAC-SHA1(secret, message)), computed independently with openssl.
fn openssl_hmac_sha1_b64(secret: &str, message: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"printf %s "$1" | openssl dgst -sha1 -hmac "$2" -binary | base64"#)
        .arg("sh")
        .arg(message)
        .arg(secret)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn webrtc_config_default_is_stun_only_no_store_and_needs_session() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    assert_error(
        &s.request("GET", "/api/webrtc-config", &[], None),
        401,
        "unauthorized",
        "no session",
    );
    let r = s.call("GET", "/api/webrtc-config", &t, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.json(),
        json!({"iceServers":[{"urls":["stun:stun.l.google.com:19302"]}],"ttl":86400})
    );
}

#[test]
fn webrtc_config_turn_secret_mints_rest_credentials() {
    let secret = "s3cret-turn-key";
    let s = Server::start(&[
        ("TURN_HOST", "turn.example.com"),
        ("TURN_SECRET", secret),
        ("TURN_TTL", "600"),
    ]);
    let t = s.register("alice");
    let before = now_secs();
    let r = s.call("GET", "/api/webrtc-config", &t, None);
    let after = now_secs();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let v = r.json();
    assert_eq!(v["ttl"], 600);
    let servers = v["iceServers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{v}");
    assert_eq!(servers[0]["urls"], json!(["stun:stun.l.google.com:19302"]));
    let turn = &servers[1];
    assert_eq!(
        turn["urls"],
        json!([
            "turn:turn.example.com:3478?transport=udp",
            "turn:turn.example.com:3478?transport=tcp"
        ]),
        "TURN_PORT defaults to 3478"
    );
    let username = turn["username"].as_str().unwrap();
    let (expiry, user) = username.split_once(':').expect("<expiry>:<username>");
    assert_eq!(user, "alice");
    let expiry: u64 = expiry.parse().expect("expiry in unix seconds");
    assert!(
        (before + 600..=after + 600 + 1).contains(&expiry),
        "expiry {expiry} ≈ now+600 ({before}..{after})"
    );
    assert_eq!(
        turn["credential"].as_str().unwrap(),
        openssl_hmac_sha1_b64(secret, username),
        "credential = base64(HMAC-SHA1(secret, username))"
    );
}

#[test]
fn webrtc_config_turn_secret_default_ttl_is_86400() {
    let s = Server::start(&[("TURN_HOST", "turn.example.com"), ("TURN_SECRET", "k")]);
    let t = s.register("bob");
    let before = now_secs();
    let v = s.call("GET", "/api/webrtc-config", &t, None).json();
    let after = now_secs();
    assert_eq!(v["ttl"], 86400);
    let username = v["iceServers"][1]["username"].as_str().unwrap().to_string();
    let expiry: u64 = username.split_once(':').unwrap().0.parse().unwrap();
    assert!((before + 86400..=after + 86400 + 1).contains(&expiry));
    assert!(username.ends_with(":bob"));
    assert_eq!(
        v["iceServers"][1]["credential"].as_str().unwrap(),
        openssl_hmac_sha1_b64("k", &username)
    );
}

#[test]
fn webrtc_config_static_turn_custom_port_and_stun_list() {
    let s = Server::start(&[
        ("TURN_HOST", "relay.example.org"),
        ("TURN_PORT", "5349"),
        ("TURN_USERNAME", "turnuser"),
        ("TURN_PASSWORD", "turnpass"),
        ("STUN_URLS", "stun:a.example:3478, stun:b.example:19302"),
    ]);
    let t = s.register("alice");
    let r = s.call("GET", "/api/webrtc-config", &t, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(
        r.json(),
        json!({"iceServers":[
            {"urls":["stun:a.example:3478","stun:b.example:19302"]},
            {"urls":["turn:relay.example.org:5349?transport=udp","turn:relay.example.org:5349?transport=tcp"],
             "username":"turnuser","credential":"turnpass"}
        ],"ttl":86400})
    );
}

// ---------------------------------------------------------------------------------------
// Health and metrics
// ---------------------------------------------------------------------------------------

#[test]
fn healthz_200_ok_without_session() {
    let s = Server::start(&[]);
    let r = s.request("GET", "/healthz", &[], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "ok");
    let r = s.request("HEAD", "/healthz", &[], None);
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "HEAD has no body");
}

#[test]
fn metrics_prometheus_text_counts_a_stored_message() {
    let s = Server::start(&[]);
    let r = s.request("GET", "/metrics", &[], None);
    assert_eq!(r.status, 200, "no session needed");
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    let text = r.text();
    for name in [
        "md_connections_open",
        "md_messages_stored_total",
        "md_deliveries_total",
        "md_slow_clients_dropped_total",
        "md_store_batch_size_max",
        "md_store_commit_seconds_total",
        "md_connections_refused_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} in metrics:\n{text}"
        );
    }
    let stored = metric(&s, "md_messages_stored_total");
    let t = s.register("alice");
    let (mut c, _) = s.ws(&t);
    c.send(json!({"type":"send","channel":"general","content":"count me"}));
    c.recv_type("message");
    assert_eq!(metric(&s, "md_messages_stored_total"), stored + 1.0);
    assert!(metric(&s, "md_deliveries_total") >= 1.0);
    assert!(metric(&s, "md_ws_connections_open") >= 1.0);
}

// ---------------------------------------------------------------------------------------
// Restart
// ---------------------------------------------------------------------------------------

#[test]
fn restart_keeps_users_sessions_channels_and_messages() {
    let mut s = Server::start(&FAST_SEND);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let r = s.call(
        "POST",
        "/api/channels",
        &alice,
        Some(&json!({"name":"kept","kind":"text","topic":"survives"})),
    );
    assert_eq!(r.status, 201);
    let ids = seed(&s, &bob, "kept", 5, "before-restart");
    let history = s
        .call("GET", "/api/history?channel=kept", &alice, None)
        .json();

    for hard in [false, true] {
        s.restart(hard);
        let what = if hard { "kill -9" } else { "SIGTERM" };
        // Sessions survive: both tokens still work.
        let me = s.call("GET", "/api/me", &alice, None);
        assert_eq!(me.status, 200, "{what}: session kept: {}", me.text());
        assert_eq!(me.json()["user"]["admin"], true);
        assert_eq!(s.call("GET", "/api/me", &bob, None).status, 200, "{what}");
        // Users survive: login works and the name is still taken.
        assert_eq!(login(&s, "bob", "password123").status, 200, "{what}");
        assert_error(
            &register_with(&s, register_body("Bob", "password123")),
            409,
            "conflict",
            what,
        );
        // Channels survive.
        let chans = s.call("GET", "/api/channels", &bob, None).json();
        assert!(
            chans
                .as_array()
                .unwrap()
                .iter()
                .map(v1_channel)
                .any(|c| c == json!({"name":"kept","kind":"text","topic":"survives"})),
            "{what}: {chans}"
        );
        // Messages survive, identical.
        assert_eq!(
            s.call("GET", "/api/history?channel=kept", &alice, None)
                .json(),
            history,
            "{what}"
        );
        assert_eq!(
            ids_of(
                &s.call("GET", "/api/search?q=before-restart", &alice, None)
                    .json()
            )
            .len(),
            5,
            "{what}: search index kept"
        );
    }

    // Ids are never reused: delete the newest, restart, and the next id is still higher.
    let (mut c, _) = s.ws(&bob);
    c.send(json!({"type":"delete","id":ids[4]}));
    c.recv_type("message_delete");
    drop(c);
    s.restart(false);
    let next = seed(&s, &bob, "kept", 1, "after-restart");
    assert!(next[0] > ids[4], "id {} reused after {}", next[0], ids[4]);
}
