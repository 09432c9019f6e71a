//! ICE servers for `GET /api/webrtc-config`: the STUN list, and — when `TURN_HOST` is set —
//! a TURN entry with either static credentials (coturn `lt-cred-mech`) or short-lived ones
//! minted per user from `TURN_SECRET` (coturn `use-auth-secret`, the "TURN REST API":
//! username `"<expiry unix s>:<user>"`, credential `base64(HMAC-SHA1(secret, username))`).

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha1::Sha1;

use crate::config::Config;

/// The REST-API credential for `username` valid until `expiry` (unix seconds).
pub fn rest_credential(secret: &str, expiry: u64, username: &str) -> (String, String) {
    let user = format!("{expiry}:{username}");
    let mut mac =
        Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(user.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (user, credential)
}

/// The body of `GET /api/webrtc-config` for `username` at `now` (unix seconds).
pub fn webrtc_config(config: &Config, username: &str, now: u64) -> Value {
    let mut servers = vec![json!({"urls": config.stun_urls})];
    if let Some(host) = &config.turn_host {
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let urls = [
            format!("turn:{host}:{}?transport=udp", config.turn_port),
            format!("turn:{host}:{}?transport=tcp", config.turn_port),
        ];
        if let Some(secret) = &config.turn_secret {
            let (u, c) = rest_credential(secret, now + config.turn_ttl, username);
            servers.push(json!({"urls": urls, "username": u, "credential": c}));
        } else if let (Some(u), Some(p)) = (&config.turn_username, &config.turn_password) {
            servers.push(json!({"urls": urls, "username": u, "credential": p}));
        } else {
            servers.push(json!({"urls": urls}));
        }
    }
    json!({"iceServers": servers, "ttl": config.turn_ttl})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn rest_credential_matches_coturn_formula() {
        // Known answer: HMAC-SHA1("secret", "1700000000:alice"), computed independently with
        // `printf %s 1700000000:alice | openssl dgst -sha1 -hmac secret -binary | base64`.
        let (u, c) = rest_credential("secret", 1_700_000_000, "alice");
        assert_eq!(u, "1700000000:alice");
        assert_eq!(c, "d8soP47RbdIKLDUOpnJPVQyq5Ts=");
    }

    #[test]
    fn no_turn_without_host() {
        let c = Config::from_map(&HashMap::new()).unwrap();
        let v = webrtc_config(&c, "alice", 0);
        assert_eq!(v["iceServers"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["iceServers"][0]["urls"][0],
            "stun:stun.l.google.com:19302"
        );
        assert_eq!(v["ttl"], 86400);
    }

    #[test]
    fn static_and_secret_turn() {
        let mut m: HashMap<String, String> = [
            ("TURN_HOST", "turn.example.com"),
            ("TURN_USERNAME", "u"),
            ("TURN_PASSWORD", "p"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let v = webrtc_config(&Config::from_map(&m).unwrap(), "alice", 100);
        assert_eq!(
            v["iceServers"][1]["urls"][0],
            "turn:turn.example.com:3478?transport=udp"
        );
        assert_eq!(
            v["iceServers"][1]["urls"][1],
            "turn:turn.example.com:3478?transport=tcp"
        );
        assert_eq!(v["iceServers"][1]["username"], "u");
        m.insert("TURN_SECRET".into(), "s3cret".into());
        m.insert("TURN_TTL".into(), "600".into());
        let v = webrtc_config(&Config::from_map(&m).unwrap(), "alice", 100);
        assert_eq!(v["iceServers"][1]["username"], "700:alice");
        assert_eq!(v["ttl"], 600);
    }
}
