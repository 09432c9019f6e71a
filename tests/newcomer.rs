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
        for word in ["usage", "healthcheck", "check-db", "--version", "--help"] {
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
