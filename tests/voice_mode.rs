//! A voice channel's mode (issue 16, API.md "Voice, video and screen share"): `mesh` or
//! `sfu`, against the real server. The default follows `SFU_UDP_PORT`; `PATCH
//! /api/channels/{name}` sets it (only with `manage_channels`, only on voice channels, `sfu`
//! only with a media port; nothing stored when refused) and every viewer hears it; it is
//! kept across restarts, falls back to `mesh` while the port is unset, survives the upgrade
//! of a v1 database, and picks the room's cap (`VOICE_MAX_PEERS` / `SFU_MAX_PEERS`).
//! `SFU_UDP_PORT=0` is "any free port", so these tests never collide on a port.

mod common;

use std::time::Duration;

use common::{HttpResponse, Server, WsClient};
use serde_json::{json, Value};

const WITH_PORT: (&str, &str) = ("SFU_UDP_PORT", "0");

fn ok(r: &HttpResponse, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// Every channel `token` sees, by name, as `GET /api/channels` gives them.
fn channels(s: &Server, token: &str) -> Vec<Value> {
    ok(
        &s.call("GET", "/api/channels", token, None),
        200,
        "channels",
    )
    .as_array()
    .unwrap()
    .clone()
}

/// The `voice_mode` field of channel `name` (`Value::Null` when absent).
fn mode(s: &Server, token: &str, name: &str) -> Value {
    let all = channels(s, token);
    let c = all
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no channel {name} in {all:?}"));
    c.get("voice_mode").cloned().unwrap_or(Value::Null)
}

fn patch(s: &Server, token: &str, name: &str, body: Value) -> HttpResponse {
    s.call(
        "PATCH",
        &format!("/api/channels/{name}"),
        token,
        Some(&body),
    )
}

fn audit_count(s: &Server, token: &str) -> usize {
    let r = s.call("GET", "/api/audit-log?limit=100", token, None);
    ok(&r, 200, "audit log").as_array().unwrap().len()
}

fn voice(s: &Server, token: &str, room: &str) -> WsClient {
    s.ws_at(
        &format!("/ws/voice?channel={room}"),
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .expect("voice handshake")
}

/// Joins `room` and returns the socket and its `welcome`.
fn join(s: &Server, token: &str, room: &str) -> (WsClient, Value) {
    let mut c = voice(s, token, room);
    let w = c.recv().expect("a first frame on /ws/voice");
    assert_eq!(w["type"], "welcome", "first frame: {w}");
    (c, w)
}

fn login(s: &Server, name: &str) -> String {
    let r = s.request(
        "POST",
        "/api/login",
        &[],
        Some(&json!({"username": name, "password": "password123"})),
    );
    ok(&r, 200, "login")["token"].as_str().unwrap().to_string()
}

#[test]
fn the_default_mode_follows_sfu_udp_port() {
    for (env, want, media_server) in [(vec![], "mesh", false), (vec![WITH_PORT], "sfu", true)] {
        let s = Server::start(&env);
        let alice = s.register("alice");
        assert_eq!(mode(&s, &alice, "lounge"), want, "{env:?}");
        assert_eq!(
            mode(&s, &alice, "general"),
            Value::Null,
            "a text channel has no voice_mode"
        );
        let (_w, ready) = s.ws(&alice);
        assert_eq!(ready["media_server"], media_server, "{env:?}");
        let lounge = ready["channels"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "lounge")
            .unwrap()
            .clone();
        assert_eq!(lounge["voice_mode"], want);
        let (_v, welcome) = join(&s, &alice, "lounge");
        assert_eq!(welcome["voice_mode"], want, "{welcome}");
        // A new voice channel gets the default too; a text channel has no mode.
        let r = s.call(
            "POST",
            "/api/channels",
            &alice,
            Some(&json!({"name": "stage", "kind": "voice"})),
        );
        assert_eq!(ok(&r, 201, "create")["voice_mode"], want);
        let r = s.call(
            "POST",
            "/api/channels",
            &alice,
            Some(&json!({"name": "notes", "kind": "text"})),
        );
        assert!(ok(&r, 201, "create text").get("voice_mode").is_none());
    }
}

#[test]
fn patch_voice_mode_needs_manage_channels_a_voice_channel_and_a_media_port() {
    let s = Server::start(&[WITH_PORT]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut watch, _) = s.ws(&bob);
    let before = audit_count(&s, &alice);

    // Without manage_channels: 403, nothing stored, nothing logged, nobody told.
    let r = patch(&s, &bob, "lounge", json!({"voice_mode": "mesh"}));
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(mode(&s, &alice, "lounge"), "sfu");
    assert_eq!(audit_count(&s, &alice), before);
    let got = watch.drain_for(Duration::from_millis(300));
    assert!(got.iter().all(|f| f["type"] != "channel_update"), "{got:?}");

    // Bad values are refused before anything is written.
    for (body, what) in [
        (json!({"voice_mode": "p2p"}), "unknown value"),
        (json!({"voice_mode": "SFU"}), "not the wire spelling"),
        (json!({"voice_mode": 1}), "not a string"),
    ] {
        let r = patch(&s, &alice, "lounge", body);
        assert_eq!(r.status, 400, "{what}: {}", r.text());
        assert_eq!(r.error_code(), "bad_request", "{what}");
    }
    let r = patch(&s, &alice, "general", json!({"voice_mode": "mesh"}));
    assert_eq!(r.status, 400, "text channel: {}", r.text());
    assert!(r.text().contains("voice channel"), "{}", r.text());
    assert_eq!(mode(&s, &alice, "general"), Value::Null);
    assert_eq!(mode(&s, &alice, "lounge"), "sfu");
    assert_eq!(audit_count(&s, &alice), before);

    // A role with manage_channels may; everyone who sees the channel hears channel_update.
    let r = s.call(
        "POST",
        "/api/roles",
        &alice,
        Some(&json!({"name": "mods", "permissions": ["manage_channels"]})),
    );
    let role = ok(&r, 201, "role")["id"].as_i64().unwrap();
    let r = s.call(
        "PUT",
        &format!("/api/members/bob/roles/{role}"),
        &alice,
        None,
    );
    ok(&r, 204, "give role");
    let r = patch(&s, &bob, "lounge", json!({"voice_mode": "mesh"}));
    assert_eq!(ok(&r, 200, "bob sets mesh")["voice_mode"], "mesh");
    // Bob's new role already changed his permissions everywhere (channel_update for each
    // channel): wait for the one that carries the new mode.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "no channel_update with mesh"
        );
        let u = watch.recv_type("channel_update");
        if u["channel"]["name"] == "lounge" && u["channel"]["voice_mode"] == "mesh" {
            break;
        }
    }
    assert_eq!(mode(&s, &alice, "lounge"), "mesh");
    let r = s.call("GET", "/api/audit-log?limit=1", &alice, None);
    let last = ok(&r, 200, "audit")[0].clone();
    assert_eq!(
        (last["action"].as_str(), last["target"].as_str()),
        (Some("channel_update"), Some("#lounge")),
        "{last}"
    );
    assert_eq!(last["actor"], "bob", "{last}");

    // null: back to the server's default (sfu here).
    let r = patch(&s, &alice, "lounge", json!({"voice_mode": null}));
    assert_eq!(ok(&r, 200, "null")["voice_mode"], "sfu");
    assert_eq!(mode(&s, &alice, "lounge"), "sfu");

    // Without a media port, sfu is refused and mesh is fine.
    let n = Server::start(&[]);
    let owner = n.register("alice");
    let r = patch(&n, &owner, "lounge", json!({"voice_mode": "sfu"}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code(), "bad_request");
    assert!(r.text().contains("SFU_UDP_PORT"), "{}", r.text());
    assert_eq!(mode(&n, &owner, "lounge"), "mesh");
    let r = patch(&n, &owner, "lounge", json!({"voice_mode": "mesh"}));
    assert_eq!(ok(&r, 200, "mesh")["voice_mode"], "mesh");
}

#[test]
fn the_choice_survives_restarts_and_falls_back_to_mesh_without_the_port() {
    let dir = common::temp_dir("voice-mode");
    let mut s = Server::start_in(&dir, "127.0.0.1:0", &[WITH_PORT], true);
    let alice = s.register("alice");
    let r = s.call(
        "POST",
        "/api/channels",
        &alice,
        Some(&json!({"name": "stage", "kind": "voice"})),
    );
    ok(&r, 201, "create stage");
    ok(
        &patch(&s, &alice, "lounge", json!({"voice_mode": "mesh"})),
        200,
        "lounge mesh",
    );
    ok(
        &patch(&s, &alice, "stage", json!({"voice_mode": "sfu"})),
        200,
        "stage sfu",
    );
    s.restart(false);
    assert_eq!(mode(&s, &alice, "lounge"), "mesh");
    assert_eq!(mode(&s, &alice, "stage"), "sfu");
    s.stop();

    // The port unset: the stored sfu cannot be honoured and runs as mesh...
    let mut n = Server::start_in(&dir, "127.0.0.1:0", &[], true);
    assert_eq!(mode(&n, &alice, "stage"), "mesh");
    assert_eq!(mode(&n, &alice, "lounge"), "mesh");
    let (_v, welcome) = join(&n, &alice, "stage");
    assert_eq!(welcome["voice_mode"], "mesh");
    n.stop();

    // ...and is sfu again once the port is back (the choice was kept).
    let p = Server::start_in(&dir, "127.0.0.1:0", &[WITH_PORT], false);
    assert_eq!(mode(&p, &alice, "stage"), "sfu");
    assert_eq!(mode(&p, &alice, "lounge"), "mesh");
    let (_v, welcome) = join(&p, &alice, "stage");
    assert_eq!(welcome["voice_mode"], "sfu");
}

#[test]
fn a_v1_database_upgrades_with_the_default_mode() {
    let dir = common::temp_dir("v1-voice-mode");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.db"),
        dir.join("chat.db"),
    )
    .unwrap();
    let mut s = Server::start_in(&dir, "127.0.0.1:0", &[WITH_PORT], false);
    let alice = login(&s, "alice");
    assert_eq!(
        mode(&s, &alice, "lounge"),
        "sfu",
        "no stored mode: the default"
    );
    ok(
        &patch(&s, &alice, "lounge", json!({"voice_mode": "mesh"})),
        200,
        "set mesh on the upgraded database",
    );
    s.restart(false);
    assert_eq!(mode(&s, &alice, "lounge"), "mesh");
    common::assert_check_db(&dir.join("chat.db"));
}

#[test]
fn the_room_cap_follows_the_mode_and_a_mode_change_restarts_the_call() {
    let s = Server::start(&[WITH_PORT, ("VOICE_MAX_PEERS", "2"), ("SFU_MAX_PEERS", "3")]);
    let tokens: Vec<String> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|n| s.register(n))
        .collect();
    // sfu: three fit, the fourth is refused.
    let mut in_room: Vec<WsClient> = tokens[..3]
        .iter()
        .map(|t| {
            let (c, w) = join(&s, t, "lounge");
            assert_eq!(w["voice_mode"], "sfu");
            c
        })
        .collect();
    let mut d = voice(&s, &tokens[3], "lounge");
    let e = d.recv().expect("an answer");
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("room_full"))
    );

    // To mesh: the call is dropped without an error (clients reconnect), then two fit.
    ok(
        &patch(&s, &tokens[0], "lounge", json!({"voice_mode": "mesh"})),
        200,
        "to mesh",
    );
    for c in &mut in_room {
        let got = c.drain_for(Duration::from_millis(500));
        assert!(got.iter().all(|f| f["type"] != "error"), "{got:?}");
        assert!(c.recv().is_none(), "the socket was closed");
    }
    let (_a, w) = join(&s, &tokens[0], "lounge");
    assert_eq!(w["voice_mode"], "mesh");
    let (_b, _) = join(&s, &tokens[1], "lounge");
    let mut c = voice(&s, &tokens[2], "lounge");
    let e = c.recv().expect("an answer");
    assert_eq!(e["code"], "room_full", "{e}");
    assert!(e["message"].as_str().unwrap().contains('2'), "{e}");
}
