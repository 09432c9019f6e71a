//! Start-up behaviour of the real binary: `.env` handling, one clear line for a bad setting,
//! the loud warning for the placeholder TURN secret, the derived ceiling in the log, the
//! `healthcheck` and `check-db` subcommands.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{temp_dir, Server};

fn run_with(env: &[(&str, &str)], dir: &std::path::Path) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mini-discord"));
    cmd.current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn a_bad_setting_stops_the_server_with_one_clear_line() {
    let dir = temp_dir("cfg");
    let (code, out) = run_with(
        &[("TURN_PORT", "abc"), ("LISTEN_ADDR", "127.0.0.1:0")],
        &dir,
    );
    assert_eq!(code, 2);
    assert_eq!(
        out.trim(),
        r#"mini-discord: TURN_PORT must be 1-65535, got "abc""#
    );
    let (code, out) = run_with(
        &[
            ("REGISTRATION", "sometimes"),
            ("LISTEN_ADDR", "127.0.0.1:0"),
        ],
        &dir,
    );
    assert_eq!(code, 2);
    assert!(
        out.contains("REGISTRATION must be invite, open or closed"),
        "{out}"
    );
}

#[test]
fn dotenv_is_read_and_the_real_environment_wins() {
    let dir = temp_dir("dotenv");
    // .env asks for a bad TURN_PORT; the real environment overrides it with a good one.
    std::fs::write(
        dir.join(".env"),
        "TURN_PORT=abc\nTURN_HOST=turn.example.com\n",
    )
    .unwrap();
    let (code, out) = run_with(&[("LISTEN_ADDR", "127.0.0.1:0")], &dir);
    assert_eq!(
        (code, out.trim()),
        (2, r#"mini-discord: TURN_PORT must be 1-65535, got "abc""#)
    );
    let s = Server::start_in(&dir, "127.0.0.1:0", &[("TURN_PORT", "3479")], false);
    let t = s.register("alice");
    let cfg = s.call("GET", "/api/webrtc-config", &t, None).json();
    assert_eq!(
        cfg["iceServers"][1]["urls"][0], "turn:turn.example.com:3479?transport=udp",
        "TURN_HOST from .env, port from env"
    );
}

#[test]
fn placeholder_turn_secret_on_a_public_address_is_warned_about() {
    let s = Server::start_in(
        &temp_dir("warn"),
        "0.0.0.0:0",
        &[
            ("TURN_SECRET", "change-me-to-a-long-random-secret"),
            ("TURN_HOST", "127.0.0.1"),
        ],
        false,
    );
    assert!(
        s.log_text()
            .contains("TURN_SECRET is still the placeholder"),
        "{}",
        s.log_text()
    );
    // On loopback it is only a test setting: no warning.
    let quiet = Server::start(&[("TURN_SECRET", "change-me-to-a-long-random-secret")]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!quiet.log_text().contains("placeholder"));
}

#[test]
fn a_trusted_proxy_network_wider_than_a_slash_8_is_warned_about() {
    let wide = Server::start(&[("TRUSTED_PROXIES", "127.0.0.1, 0.0.0.0/0")]);
    let narrow = Server::start(&[("TRUSTED_PROXIES", "127.0.0.1, 172.16.0.0/12")]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        wide.log_text()
            .contains("TRUSTED_PROXIES entry 0.0.0.0/0 is a very wide network"),
        "{}",
        wide.log_text()
    );
    assert!(!narrow.log_text().contains("very wide"));
}

#[test]
fn the_derived_ceiling_is_logged_and_max_connections_lowers_it() {
    let s = Server::start(&[]);
    let log = s.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("max connections: "))
        .expect("ceiling logged");
    let n: usize = line
        .split("max connections: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= 16, "{line}");
    let s = Server::start(&[("MAX_CONNECTIONS", "40")]);
    assert!(
        s.log_text().contains("max connections: 40 "),
        "{}",
        s.log_text()
    );
    assert!(s
        .request("GET", "/metrics", &[], None)
        .text()
        .contains("md_max_connections 40"));
}

#[test]
fn healthcheck_and_check_db_subcommands() {
    let mut s = Server::start(&[]);
    let port = s.addr.port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let dir = temp_dir("hc");
    let (code, _) = run_with(&[("LISTEN_ADDR", &listen)], &dir);
    // That was a second server on the same port: it must fail to bind, not crash.
    assert_eq!(code, 1);
    let hc = |listen: &str| {
        Command::new(env!("CARGO_BIN_EXE_mini-discord"))
            .arg("healthcheck")
            .current_dir(&dir)
            .env_clear()
            .env("LISTEN_ADDR", listen)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(hc(&listen), Some(0));
    assert_eq!(
        hc(&format!("0.0.0.0:{port}")),
        Some(0),
        "0.0.0.0 means ask loopback"
    );
    let db = s.data_dir.join("chat.db");
    s.stop();
    assert_eq!(hc(&listen), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_mini-discord"))
        .arg("check-db")
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        (Some(0), "ok")
    );
    std::fs::write(dir.join("junk.db"), vec![0x55u8; 8192]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mini-discord"))
        .arg("check-db")
        .arg(dir.join("junk.db"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = Command::new(env!("CARGO_BIN_EXE_mini-discord"))
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
