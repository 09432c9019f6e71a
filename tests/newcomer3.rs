//! Issue 18, user settings on the server: `POST /api/me/password` and the sessions list
//! (`GET /api/me/sessions`, `DELETE /api/me/sessions[/{id}]`), against the real server.
//! Ending a session, by a password change or by revoking it, closes its sockets with 4001
//! and leaves the session the request came with alone.

mod common;

use common::{Server, WsClient};
use serde_json::{json, Value};

fn login(s: &Server, name: &str, password: &str) -> (u16, Option<String>) {
    let r = s.request(
        "POST",
        "/api/login",
        &[],
        Some(&json!({"username": name, "password": password})),
    );
    let token = (r.status == 200).then(|| r.json()["token"].as_str().unwrap().to_string());
    (r.status, token)
}

/// The socket still answers: a message sent on it comes back as its `message` event.
fn still_works(ws: &mut WsClient, nonce: &str) {
    ws.send(json!({"type": "send", "channel": "general", "content": "still here", "nonce": nonce}));
    let m = ws.recv_type("message");
    assert_eq!(m["nonce"], nonce, "{m}");
}

#[test]
fn changing_the_password_needs_the_current_one_and_ends_every_other_session_with_4001() {
    let s = Server::start(&[]);
    let here = s.register("alice");
    let (_, there) = login(&s, "alice", "password123");
    let there = there.unwrap();
    let (mut ws_here, _) = s.ws(&here);
    let (mut ws_there, _) = s.ws(&there);
    let change = |token: &str, current: &str, new: &str| {
        s.call(
            "POST",
            "/api/me/password",
            token,
            Some(&json!({"current": current, "new": new})),
        )
    };

    let wrong = change(&here, "not-my-password", "a-new-password");
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert_eq!(wrong.error_code(), "forbidden");
    assert_eq!(change(&here, "password123", "short").status, 400);
    assert_eq!(
        s.request(
            "POST",
            "/api/me/password",
            &[],
            Some(&json!({"current": "password123", "new": "a-new-password"}))
        )
        .status,
        401,
        "a session is needed"
    );
    // Nothing changed so far: both sessions live, the old password works.
    assert_eq!(s.call("GET", "/api/me", &there, None).status, 200);

    let ok = change(&here, "password123", "a-new-password");
    assert_eq!(ok.status, 204, "{}", ok.text());
    assert_eq!(
        ws_there.close_code(),
        Some(4001),
        "the other session's socket"
    );
    assert_eq!(s.call("GET", "/api/me", &there, None).status, 401);
    assert_eq!(
        s.call("GET", "/api/me", &here, None).status,
        200,
        "this one is kept"
    );
    still_works(&mut ws_here, "n-after-change");

    assert_eq!(login(&s, "alice", "password123").0, 401, "the old password");
    assert_eq!(login(&s, "alice", "a-new-password").0, 200, "the new one");
}

#[test]
fn wrong_current_passwords_are_throttled_like_logins() {
    let s = Server::start(&[]);
    let token = s.register("alice");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = s.call(
            "POST",
            "/api/me/password",
            &token,
            Some(&json!({"current": "guess-guess", "new": "a-new-password"})),
        );
        statuses.push(r.status);
        if r.status == 429 {
            assert!(r.header("retry-after").is_some(), "429 says when");
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert!(
        statuses.len() <= 11,
        "at most 10 free guesses: {statuses:?}"
    );
    assert!(
        statuses[..statuses.len() - 1].iter().all(|&c| c == 403),
        "{statuses:?}"
    );
    // The guesses counted against logging in from here too: the same throttle.
    assert_eq!(login(&s, "alice", "wrong-password").0, 429);
}

#[test]
fn the_sessions_list_shows_no_secrets_and_revoking_one_closes_its_sockets_with_4001() {
    let s = Server::start(&[]);
    let here = s.register("alice");
    let (_, there) = login(&s, "alice", "password123");
    let there = there.unwrap();
    let bob = s.register("bob");
    let (mut ws_here, _) = s.ws(&here);
    let (mut ws_there, _) = s.ws(&there);

    let r = s.call("GET", "/api/me/sessions", &here, None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let text = r.text();
    for token in [&here, &there] {
        assert!(!text.contains(token.as_str()), "a token in {text}");
        let hash: String = sha256_hex(token);
        assert!(!text.contains(&hash), "a token hash in {text}");
    }
    let list: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(list.len(), 2, "{text}");
    for e in &list {
        let keys: Vec<&str> = e.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        assert_eq!(keys.len(), 4, "{e}");
        for k in ["id", "created_ts", "expires_ts", "current"] {
            assert!(keys.contains(&k), "{e}");
        }
    }
    let current: Vec<&Value> = list.iter().filter(|e| e["current"] == true).collect();
    assert_eq!(current.len(), 1, "{text}");
    let other = list.iter().find(|e| e["current"] == false).unwrap();
    let other_id = other["id"].as_str().unwrap();

    // Bob cannot end Alice's session, and gets the same answer as for a made-up id.
    let path = format!("/api/me/sessions/{other_id}");
    assert_eq!(s.call("DELETE", &path, &bob, None).status, 404);
    assert_eq!(s.call("GET", "/api/me", &there, None).status, 200);

    assert_eq!(s.call("DELETE", &path, &here, None).status, 204);
    assert_eq!(ws_there.close_code(), Some(4001));
    assert_eq!(s.call("GET", "/api/me", &there, None).status, 401);
    assert_eq!(
        s.call("DELETE", &path, &here, None).status,
        404,
        "already gone"
    );
    still_works(&mut ws_here, "n-after-revoke");
    let list = s.call("GET", "/api/me/sessions", &here, None).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["current"], true);
}

#[test]
fn signing_out_every_other_device_keeps_this_one() {
    let s = Server::start(&[]);
    let here = s.register("alice");
    let others: Vec<String> = (0..3)
        .map(|_| login(&s, "alice", "password123").1.unwrap())
        .collect();
    let mut sockets: Vec<WsClient> = others.iter().map(|t| s.ws(t).0).collect();
    let r = s.call("DELETE", "/api/me/sessions", &here, None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"ended": 3}));
    for ws in &mut sockets {
        assert_eq!(ws.close_code(), Some(4001));
    }
    for t in &others {
        assert_eq!(s.call("GET", "/api/me", t, None).status, 401);
    }
    assert_eq!(s.call("GET", "/api/me", &here, None).status, 200);
    assert_eq!(s.call("PUT", "/api/me/sessions", &here, None).status, 405);
}

fn sha256_hex(token: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every emoji the picker offers (assets/emojidata.js) must be one the server takes as a
/// reaction, or picking it to react would fail with a `bad_request` the user cannot fix.
#[test]
fn every_emoji_in_the_picker_is_a_valid_reaction() {
    let data = include_str!("../assets/emojidata.js");
    let mut seen = std::collections::HashSet::new();
    for piece in data.split("[\"").skip(1) {
        let e = piece.split('"').next().unwrap();
        assert!(
            mini_discord::validate::emoji(e).is_ok(),
            "the picker offers {e:?} ({:x?}), which the server refuses",
            e.chars().map(|c| c as u32).collect::<Vec<_>>()
        );
        assert!(seen.insert(e), "{e} is listed twice");
    }
    assert!(seen.len() > 500, "the picker's list: {}", seen.len());
}
