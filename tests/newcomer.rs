//! Issue 18, server side: what a newcomer meets before the chat itself — `--help`, the
//! first-run hint on the sign-in page, deleting voice channels, and v2 invites.

mod common;

use std::process::Command;

use common::Server;
use serde_json::json;

#[test]
fn help_prints_usage_with_every_subcommand_and_exits_zero() {
    for flag in ["--help", "-h"] {
        let out = Command::new(env!("CARGO_BIN_EXE_mini-discord"))
            .arg(flag)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        for word in [
            "usage",
            "healthcheck",
            "check-db",
            "backup",
            "restore",
            "export",
            "import-discord",
            "--version",
            "--help",
        ] {
            assert!(text.contains(word), "{flag} output lacks {word:?}: {text}");
        }
    }
}

#[test]
fn setup_says_first_run_until_the_first_account_exists() {
    let s = Server::start(&[]);
    let r = s.request("GET", "/api/setup", &[], None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"first_run": true}));
    s.register("founder");
    let r = s.request("GET", "/api/setup", &[], None);
    assert_eq!(r.json(), json!({"first_run": false}));
    assert_eq!(s.request("POST", "/api/setup", &[], None).status, 405);
}

#[test]
fn admin_deletes_a_voice_channel_and_others_cannot() {
    let s = Server::start(&[]);
    let admin = s.register("founder");
    let user = s.register("member");
    let r = s.call(
        "POST",
        "/api/channels",
        &admin,
        Some(&json!({"name": "talk", "kind": "voice"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.call("DELETE", "/api/channels/talk", &user, None).status,
        403
    );
    assert_eq!(
        s.call("DELETE", "/api/channels/talk", &admin, None).status,
        204
    );
    let list = s.call("GET", "/api/channels", &admin, None).json();
    assert!(list.as_array().unwrap().iter().all(|c| c["name"] != "talk"));
}

fn register_with(s: &Server, name: &str, invite: &str) -> u16 {
    s.request(
        "POST",
        "/api/register",
        &[],
        Some(&json!({"username": name, "password": "password123", "invite": invite})),
    )
    .status
}

#[test]
fn v1_invite_defaults_stay_one_use_and_a_week() {
    let s = Server::start(&[("REGISTRATION", "invite")]);
    let admin = s.register("founder");
    let r = s.call("POST", "/api/invites", &admin, None);
    assert_eq!(r.status, 201, "{}", r.text());
    let inv = r.json();
    assert_eq!(
        (inv["max_uses"].clone(), inv["uses"].clone()),
        (json!(1), json!(0))
    );
    let week_ms = 7 * 24 * 3600 * 1000i64;
    let left = inv["expires_ts"].as_i64().unwrap()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
    assert!((week_ms - 60_000..=week_ms).contains(&left), "{left}");
    let code = inv["code"].as_str().unwrap();
    assert_eq!(register_with(&s, "first", code), 201);
    assert_eq!(register_with(&s, "second", code), 403);
    // A used-up invite is no longer live.
    let list = s.call("GET", "/api/invites", &admin, None).json();
    assert_eq!(list, json!([]));
}

#[test]
fn multi_use_invites_are_listed_counted_and_revocable() {
    let s = Server::start(&[("REGISTRATION", "invite")]);
    let admin = s.register("founder");
    let r = s.call(
        "POST",
        "/api/invites",
        &admin,
        Some(&json!({"max_uses": 3, "expires_in_s": 3600})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let code = r.json()["code"].as_str().unwrap().to_string();
    assert_eq!(r.json()["max_uses"], 3);
    assert_eq!(register_with(&s, "one", &code), 201);
    assert_eq!(register_with(&s, "two", &code), 201);
    let list = s.call("GET", "/api/invites", &admin, None).json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0]["code"].as_str(), list[0]["uses"].as_i64()),
        (Some(code.as_str()), Some(2))
    );
    let member = s.request(
        "POST",
        "/api/login",
        &[],
        Some(&json!({"username": "one", "password": "password123"})),
    );
    let member = member.json()["token"].as_str().unwrap().to_string();
    assert_eq!(s.call("GET", "/api/invites", &member, None).status, 403);
    let path = format!("/api/invites/{code}");
    assert_eq!(s.call("DELETE", &path, &member, None).status, 403);
    assert_eq!(s.call("DELETE", &path, &admin, None).status, 204);
    assert_eq!(register_with(&s, "three", &code), 403, "revoked");
    assert_eq!(s.call("DELETE", &path, &admin, None).status, 404);
    assert_eq!(
        s.call("GET", "/api/invites", &admin, None).json(),
        json!([])
    );
}

#[test]
fn invite_options_out_of_range_are_refused() {
    let s = Server::start(&[]);
    let admin = s.register("founder");
    for body in [
        json!({"max_uses": 0}),
        json!({"max_uses": 1_000_000}),
        json!({"expires_in_s": 0}),
        json!({"expires_in_s": 10_000_000_000u64}),
        json!({"max_uses": "3"}),
    ] {
        let r = s.call("POST", "/api/invites", &admin, Some(&body));
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
}

#[test]
fn an_expired_invite_is_refused() {
    let s = Server::start(&[("REGISTRATION", "invite")]);
    let admin = s.register("founder");
    let r = s.call(
        "POST",
        "/api/invites",
        &admin,
        Some(&json!({"expires_in_s": 1})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let code = r.json()["code"].as_str().unwrap().to_string();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(register_with(&s, "late", &code), 403);
}
