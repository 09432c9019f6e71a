//! Profiles, status, read state, server-counted mentions, notification levels and Web Push
//! (issue 14, API.md "Direct messages, profiles, read state") against the real server.
//!
//! The Web Push tests play the browser and its push service on loopback: they subscribe with
//! their own P-256 key pair and auth secret, run their own push endpoint (a plain HTTP
//! listener, allowed by `PUSH_ALLOW_LOOPBACK=1`), decrypt what the server sends (RFC 8291)
//! and check its VAPID JWT (RFC 8292) against the server's public key.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::{Server, WsClient};
use crossbeam_channel::{unbounded, Receiver};
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use serde_json::{json, Value};
use sha2::Sha256;

/// Sends `content` to general as `ws` and returns the stored message's id.
fn say(ws: &mut WsClient, content: &str) -> i64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = format!("n{}", NEXT.fetch_add(1, Ordering::Relaxed));
    ws.send(json!({"type":"send","channel":"general","content":content,"nonce":nonce}));
    loop {
        let m = ws.recv_type("message");
        if m["nonce"] == nonce.as_str() {
            return m["message"]["id"].as_i64().unwrap();
        }
    }
}

/// The next `presence` event about `user` (others' are skipped).
fn presence_of(ws: &mut WsClient, user: &str) -> String {
    loop {
        let p = ws.recv_type("presence");
        if p["user"] == user {
            return p["status"].as_str().unwrap().to_string();
        }
    }
}

#[test]
fn a_profile_change_is_pushed_as_user_update_and_every_user_object_carries_it() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut bob_ws, _) = s.ws(&bob);

    let r = s.call(
        "PATCH",
        "/api/me",
        &alice,
        Some(&json!({"display_name":"  Alice A.  ","status_text":"on a train"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user"]["display_name"], "Alice A.");
    assert_eq!(r.json()["user"]["status_text"], "on a train");
    let ev = bob_ws.recv_type("user_update");
    assert_eq!(ev["user"]["username"], "alice");
    assert_eq!(ev["user"]["display_name"], "Alice A.");

    let users = s.call("GET", "/api/users", &bob, None).json();
    let a = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap();
    assert_eq!(a["status_text"], "on a train");
    let (_, ready) = s.ws(&alice);
    assert_eq!(ready["user"]["display_name"], "Alice A.");
    assert_eq!(
        s.call("GET", "/api/me", &alice, None).json()["user"]["status_text"],
        "on a train"
    );

    // Only what is named changes; null clears; too long or control characters are refused.
    let r = s.call(
        "PATCH",
        "/api/me",
        &alice,
        Some(&json!({"status_text":null})),
    );
    assert_eq!(r.json()["user"]["display_name"], "Alice A.");
    assert_eq!(r.json()["user"]["status_text"], Value::Null);
    for bad in [
        json!({"display_name":"x".repeat(33)}),
        json!({"display_name":"a\u{7}"}),
        json!({"status_text":5}),
    ] {
        let r = s.call("PATCH", "/api/me", &alice, Some(&bad));
        assert_eq!(r.status, 400, "{bad}");
    }
    assert_eq!(
        s.request("PATCH", "/api/me", &[], Some(&json!({}))).status,
        401
    );
}

#[test]
fn status_is_broadcast_and_invisible_looks_offline_to_everyone_else() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut bob_ws, _) = s.ws(&bob);
    let (mut alice_ws, _) = s.ws(&alice);
    assert_eq!(presence_of(&mut bob_ws, "alice"), "online");

    alice_ws.send(json!({"type":"status","status":"dnd"}));
    assert_eq!(presence_of(&mut bob_ws, "alice"), "dnd");
    alice_ws.send(json!({"type":"status","status":"invisible"}));
    assert_eq!(presence_of(&mut bob_ws, "alice"), "offline");

    // A newcomer does not see her at all; her own second tab knows she is invisible.
    let carol = s.register("carol");
    let (_c, ready) = s.ws(&carol);
    let names: Vec<&str> = ready["presence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"alice"), "{names:?}");
    assert!(names.contains(&"bob"));
    let (_a2, ready) = s.ws(&alice);
    assert_eq!(ready["status"], "invisible");

    alice_ws.send(json!({"type":"status","status":"away"}));
    assert_eq!(alice_ws.recv_type("error")["code"], "bad_request");
    alice_ws.send(json!({"type":"status","status":"idle"}));
    assert_eq!(presence_of(&mut bob_ws, "alice"), "idle");
}

#[test]
fn reading_on_one_connection_clears_unread_on_the_other_and_a_reconnect_restores_it() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut alice_ws, _) = s.ws(&alice);
    let m1 = say(&mut alice_ws, "one");
    let m2 = say(&mut alice_ws, "two");
    let m3 = say(&mut alice_ws, "three");

    let (mut laptop, ready) = s.ws(&bob);
    assert_eq!(
        ready["unread"]["general"],
        json!({"last_read_id":0,"mentions":0})
    );
    assert_eq!(ready["last_ids"]["general"], m3);
    let (mut phone, _) = s.ws(&bob);

    phone.send(json!({"type":"read","channel":"general","id":m2}));
    let ev = laptop.recv_type("read");
    assert_eq!(
        ev,
        json!({"type":"read","channel":"general","id":m2,"mentions":0})
    );
    assert!(
        phone
            .drain_for(Duration::from_millis(400))
            .iter()
            .all(|f| f["type"] != "read"),
        "the connection that read is not told again"
    );
    // The sender's own messages count as read for the sender.
    let (_, ready) = s.ws(&alice);
    assert_eq!(ready["unread"]["general"]["last_read_id"], m3);

    drop(laptop);
    drop(phone);
    let (mut again, ready) = s.ws(&bob);
    assert_eq!(
        ready["unread"]["general"]["last_read_id"], m2,
        "kept on the server"
    );
    // Never back, never past the newest message; unknown channels are refused.
    again.send(json!({"type":"read","channel":"general","id":m1}));
    again.send(json!({"type":"read","channel":"general","id":m3 + 1000}));
    again.send(json!({"type":"read","channel":"nope","id":1}));
    assert_eq!(again.recv_type("error")["code"], "not_found");
    let (_, ready) = s.ws(&bob);
    assert_eq!(ready["unread"]["general"]["last_read_id"], m3);
}

#[test]
fn mentions_made_while_offline_are_counted_by_the_server() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("Bob");
    let (mut alice_ws, _) = s.ws(&alice);
    let m1 = say(&mut alice_ws, "hey @bob, look");
    say(&mut alice_ws, "no mention here, bob@example.com");
    say(&mut alice_ws, "@nobody @alice");
    let m4 = say(&mut alice_ws, "(@BOB) again");

    let (mut bob_ws, ready) = s.ws(&bob);
    assert_eq!(ready["unread"]["general"]["mentions"], 2);
    bob_ws.send(json!({"type":"read","channel":"general","id":m1}));
    let (_, ready) = s.ws(&bob);
    assert_eq!(
        ready["unread"]["general"],
        json!({"last_read_id":m1,"mentions":1})
    );

    // An edit that takes the mention out takes the count with it.
    alice_ws.send(json!({"type":"edit","id":m4,"content":"again"}));
    alice_ws.recv_type("message_update");
    let (_, ready) = s.ws(&bob);
    assert_eq!(ready["unread"]["general"]["mentions"], 0);
}

#[test]
fn notification_levels_per_channel_and_default() {
    let s = Server::start(&[]);
    let bob = s.register("bob");
    let r = s.call("GET", "/api/me/notify", &bob, None);
    assert_eq!(r.json(), json!({"default":"mentions","channels":{}}));
    let r = s.call(
        "PUT",
        "/api/me/notify",
        &bob,
        Some(&json!({"level":"nothing"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.call(
        "PUT",
        "/api/me/notify",
        &bob,
        Some(&json!({"channel":"general","level":"all"})),
    );
    assert_eq!(
        r.json(),
        json!({"default":"nothing","channels":{"general":"all"}})
    );
    let r = s.call(
        "PUT",
        "/api/me/notify",
        &bob,
        Some(&json!({"channel":"general","level":null})),
    );
    assert_eq!(r.json()["channels"], json!({}));
    for bad in [
        json!({"level":"loud"}),
        json!({"channel":"nope","level":"all"}),
        json!({}),
    ] {
        let r = s.call("PUT", "/api/me/notify", &bob, Some(&bad));
        assert!(r.status == 400 || r.status == 404, "{bad}: {}", r.status);
    }
}

// ---- Web Push -------------------------------------------------------------------------

/// One request the test's push service received.
struct PushRequest {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl PushRequest {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// A push service on loopback: every request is handed to the test, and answered with the
/// status in `status` (201 until the test says otherwise).
struct PushService {
    port: u16,
    status: Arc<AtomicU16>,
    received: Receiver<PushRequest>,
}

impl PushService {
    fn start() -> PushService {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(201));
        let (tx, rx) = unbounded();
        let st = status.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut r = BufReader::new(stream);
                let mut line = String::new();
                if r.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                }
                let len: usize = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len.min(1 << 20)];
                let _ = r.read_exact(&mut body);
                let code = st.load(Ordering::SeqCst);
                let _ = r.get_mut().write_all(
                    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
                let _ = tx.send(PushRequest {
                    path,
                    headers,
                    body,
                });
            }
        });
        PushService {
            port,
            status,
            received: rx,
        }
    }

    fn expect_push(&self) -> PushRequest {
        self.received
            .recv_timeout(Duration::from_secs(10))
            .expect("a push within 10 s")
    }

    fn expect_none(&self, d: Duration) {
        if let Ok(r) = self.received.recv_timeout(d) {
            panic!("unexpected push to {}", r.path);
        }
    }
}

/// The browser's side of a subscription: its key pair and auth secret.
struct Browser {
    key: SecretKey,
    auth: [u8; 16],
}

impl Browser {
    fn new(seed: u8) -> Browser {
        let key = SecretKey::from_slice(&[seed; 32]).unwrap();
        Browser {
            key,
            auth: [seed.wrapping_add(1); 16],
        }
    }

    fn public(&self) -> Vec<u8> {
        self.key
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    fn subscription(&self, endpoint: &str) -> Value {
        json!({
            "endpoint": endpoint,
            "expirationTime": null,
            "keys": {"p256dh": URL_SAFE_NO_PAD.encode(self.public()), "auth": URL_SAFE_NO_PAD.encode(self.auth)}
        })
    }

    /// Decrypts an `aes128gcm` body (RFC 8291 §3.4, RFC 8188), as a browser does.
    fn decrypt(&self, body: &[u8]) -> Value {
        let salt = &body[..16];
        let id_len = body[20] as usize;
        let as_public = PublicKey::from_sec1_bytes(&body[21..21 + id_len]).unwrap();
        let ciphertext = &body[21 + id_len..];
        let shared =
            p256::ecdh::diffie_hellman(self.key.to_nonzero_scalar(), as_public.as_affine());
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(&self.public());
        info.extend_from_slice(&body[21..21 + id_len]);
        let mut ikm = [0u8; 32];
        Hkdf::<Sha256>::new(Some(&self.auth), shared.raw_secret_bytes())
            .expand(&info, &mut ikm)
            .unwrap();
        let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
        let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
        prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek)
            .unwrap();
        prk.expand(b"Content-Encoding: nonce\0", &mut nonce)
            .unwrap();
        let mut plain = Aes128Gcm::new_from_slice(&cek)
            .unwrap()
            .decrypt(Nonce::from_slice(&nonce), ciphertext)
            .expect("the payload decrypts with our key and auth secret");
        while plain.last() == Some(&0) {
            plain.pop();
        }
        assert_eq!(plain.pop(), Some(2), "one record, the last: delimiter 0x02");
        serde_json::from_slice(&plain).expect("the payload is JSON")
    }
}

/// Checks the `Authorization: vapid t=…, k=…` of RFC 8292 and returns the JWT's claims.
fn check_vapid(req: &PushRequest, server_key: &str) -> Value {
    let auth = req.header("authorization");
    let rest = auth
        .strip_prefix("vapid t=")
        .unwrap_or_else(|| panic!("not vapid: {auth}"));
    let (jwt, k) = rest.split_once(", k=").unwrap();
    assert_eq!(k, server_key, "k= is the key the server published");
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(input.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    let vk = VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(server_key).unwrap()).unwrap();
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(sig).unwrap()).unwrap();
    vk.verify(input.as_bytes(), &sig)
        .expect("the JWT is signed by the server's VAPID key");
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(input.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn web_push_reaches_a_user_with_no_tab_open_encrypted_signed_and_not_in_dnd() {
    let s = Server::start(&[("PUSH_ALLOW_LOOPBACK", "1")]);
    let service = PushService::start();
    let alice = s.register("alice");
    let bob = s.register("bob");
    let browser = Browser::new(9);
    let endpoint = format!("http://127.0.0.1:{}/push/bob-1", service.port);

    let key = s.call("GET", "/api/push/vapid-key", &bob, None).json()["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(&key).unwrap().len(),
        65,
        "an uncompressed P-256 point"
    );
    let r = s.call(
        "POST",
        "/api/push/subscriptions",
        &bob,
        Some(&browser.subscription(&endpoint)),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(
        s.call("GET", "/api/push/subscriptions", &bob, None).json()["endpoints"],
        json!([endpoint])
    );

    let (mut alice_ws, _) = s.ws(&alice);
    // Bob has a tab open: nothing is pushed.
    let (bob_ws, _) = s.ws(&bob);
    say(&mut alice_ws, "@bob are you at your desk?");
    service.expect_none(Duration::from_millis(1500));

    // No tab open: a mention is pushed, encrypted for his browser, signed with the VAPID key.
    drop(bob_ws);
    std::thread::sleep(Duration::from_millis(300));
    let id = say(&mut alice_ws, "@bob lunch?");
    let req = service.expect_push();
    assert_eq!(req.path, "/push/bob-1");
    assert_eq!(req.header("content-encoding"), "aes128gcm");
    assert!(req.header("ttl").parse::<u64>().unwrap() > 0);
    let claims = check_vapid(&req, &key);
    assert_eq!(claims["aud"], format!("http://127.0.0.1:{}", service.port));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(
        exp > now && exp <= now + 24 * 3600,
        "RFC 8292: at most 24 h ahead"
    );
    assert!(claims["sub"].as_str().unwrap().starts_with("mailto:"));
    let payload = browser.decrypt(&req.body);
    assert_eq!(payload["body"], "@bob lunch?");
    assert_eq!(payload["channel"], "general");
    assert_eq!(payload["id"], id);
    assert!(payload["url"]
        .as_str()
        .unwrap()
        .contains(&format!("message={id}")));

    // Default level is mentions: a plain message is not pushed, until the channel is "all".
    say(&mut alice_ws, "just chatting");
    service.expect_none(Duration::from_millis(1200));
    s.call(
        "PUT",
        "/api/me/notify",
        &bob,
        Some(&json!({"channel":"general","level":"all"})),
    );
    say(&mut alice_ws, "anyone?");
    assert_eq!(
        browser.decrypt(&service.expect_push().body)["body"],
        "anyone?"
    );
    // The author is never pushed their own message.
    // Do not disturb silences pushes even with no tab open.
    let (mut bob_ws, _) = s.ws(&bob);
    bob_ws.send(json!({"type":"status","status":"dnd"}));
    let (_, ready) = s.ws(&bob);
    assert_eq!(ready["status"], "dnd");
    drop(bob_ws);
    std::thread::sleep(Duration::from_millis(300));
    say(&mut alice_ws, "@bob urgent?");
    service.expect_none(Duration::from_millis(1500));
}

#[test]
fn a_410_from_the_push_service_removes_the_subscription() {
    let s = Server::start(&[("PUSH_ALLOW_LOOPBACK", "1")]);
    let service = PushService::start();
    let alice = s.register("alice");
    let bob = s.register("bob");
    let browser = Browser::new(3);
    let endpoint = format!("http://127.0.0.1:{}/push/gone", service.port);
    let r = s.call(
        "POST",
        "/api/push/subscriptions",
        &bob,
        Some(&browser.subscription(&endpoint)),
    );
    assert_eq!(r.status, 201);
    service.status.store(410, Ordering::SeqCst);
    let (mut alice_ws, _) = s.ws(&alice);
    say(&mut alice_ws, "@bob still there?");
    service.expect_push();
    wait_until("the subscription to go", || {
        s.call("GET", "/api/push/subscriptions", &bob, None).json()["endpoints"] == json!([])
    });
    say(&mut alice_ws, "@bob hello?");
    service.expect_none(Duration::from_millis(1200));

    // Unsubscribing by hand: 204, then 404.
    s.call(
        "POST",
        "/api/push/subscriptions",
        &bob,
        Some(&browser.subscription(&endpoint)),
    );
    let del = json!({"endpoint": endpoint});
    assert_eq!(
        s.call("DELETE", "/api/push/subscriptions", &bob, Some(&del))
            .status,
        204
    );
    assert_eq!(
        s.call("DELETE", "/api/push/subscriptions", &bob, Some(&del))
            .status,
        404
    );
}

#[test]
fn push_endpoints_must_be_https_on_public_addresses() {
    let s = Server::start(&[]);
    let bob = s.register("bob");
    let browser = Browser::new(5);
    for bad in [
        "http://127.0.0.1:9/push",
        "https://127.0.0.1/push",
        "https://localhost/push",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.8/push",
        "https://[::1]/push",
        "https://[fd00::1]/push",
        "https://user@8.8.8.8/push",
        "file:///etc/passwd",
    ] {
        let r = s.call(
            "POST",
            "/api/push/subscriptions",
            &bob,
            Some(&browser.subscription(bad)),
        );
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // Keys that are not a P-256 point and a 16-byte secret are refused too.
    let mut sub = browser.subscription("https://8.8.8.8/push");
    sub["keys"]["auth"] = json!("AAAA");
    assert_eq!(
        s.call("POST", "/api/push/subscriptions", &bob, Some(&sub))
            .status,
        400
    );
    // Even with the test setting, only loopback gets http, and nothing private.
    let t = Server::start(&[("PUSH_ALLOW_LOOPBACK", "1")]);
    let bob = t.register("bob");
    let r = t.call(
        "POST",
        "/api/push/subscriptions",
        &bob,
        Some(&browser.subscription("http://10.0.0.8/push")),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn a_channel_a_user_cannot_see_leaves_no_trace_in_read_state_levels_or_pushes() {
    let s = Server::start(&[("PUSH_ALLOW_LOOPBACK", "1")]);
    let service = PushService::start();
    let alice = s.register("alice");
    let bob = s.register("bob");
    let r = s.call(
        "POST",
        "/api/channels",
        &alice,
        Some(&json!({"name":"secret","kind":"text"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    // Role 1 is `everyone`: without view_channel the channel is private to the owner.
    let r = s.call(
        "PUT",
        "/api/channels/secret/overwrites/1",
        &alice,
        Some(&json!({"allow":[],"deny":["view_channel"]})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let browser = Browser::new(11);
    let endpoint = format!("http://127.0.0.1:{}/push/bob", service.port);
    s.call(
        "POST",
        "/api/push/subscriptions",
        &bob,
        Some(&browser.subscription(&endpoint)),
    );
    s.call("PUT", "/api/me/notify", &bob, Some(&json!({"level":"all"})));

    let (mut alice_ws, _) = s.ws(&alice);
    alice_ws.send(
        json!({"type":"send","channel":"secret","content":"@bob you cannot see this","nonce":"s1"}),
    );
    alice_ws.recv_type("message");
    service.expect_none(Duration::from_millis(1500));

    let (mut bob_ws, ready) = s.ws(&bob);
    assert!(
        ready["unread"].get("secret").is_none(),
        "{}",
        ready["unread"]
    );
    assert!(ready["unread"].get("general").is_some());
    bob_ws.send(json!({"type":"read","channel":"secret","id":1}));
    assert_eq!(bob_ws.recv_type("error")["code"], "not_found");
    let r = s.call(
        "PUT",
        "/api/me/notify",
        &bob,
        Some(&json!({"channel":"secret","level":"all"})),
    );
    assert_eq!(r.status, 404);
}

/// Issue 20: while nobody has a subscription the push worker skips every message, and a
/// subscription made after that is pushed to from its next message on.
#[test]
fn a_subscription_made_after_unpushed_messages_is_pushed_to() {
    let s = Server::start(&[("PUSH_ALLOW_LOOPBACK", "1")]);
    let service = PushService::start();
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut alice_ws, _) = s.ws(&alice);
    // Nobody is subscribed: these go nowhere, and the worker learns that.
    say(&mut alice_ws, "@bob before you subscribed");
    say(&mut alice_ws, "@bob still nobody");
    std::thread::sleep(Duration::from_millis(300));

    let browser = Browser::new(11);
    let endpoint = format!("http://127.0.0.1:{}/push/bob-late", service.port);
    let r = s.call(
        "POST",
        "/api/push/subscriptions",
        &bob,
        Some(&browser.subscription(&endpoint)),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    service.expect_none(Duration::from_millis(500));
    say(&mut alice_ws, "@bob now you are");
    let req = service.expect_push();
    assert_eq!(req.path, "/push/bob-late");
    assert_eq!(browser.decrypt(&req.body)["body"], "@bob now you are");
}

/// `ready.unread[channel].mentions` as a fresh connection of `token` sees it (0 if absent).
fn mentions_in(s: &Server, token: &str, channel: &str) -> i64 {
    let (_, ready) = s.ws(token);
    ready["unread"][channel]["mentions"].as_i64().unwrap_or(0)
}

#[test]
fn an_at_mention_of_a_member_who_cannot_see_the_channel_is_no_mention() {
    // Issue 13's known limit: `@bob` in a channel bob cannot see wrote a mention row, so
    // the day he was let in, his badge counted pings from before he could read them.
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let r = s.call(
        "POST",
        "/api/channels",
        &alice,
        Some(&json!({"name":"secret","kind":"text"})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let r = s.call(
        "POST",
        "/api/roles",
        &alice,
        Some(&json!({"name":"staff","permissions":[]})),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let staff = r.json()["id"].as_i64().unwrap();
    let r = s.call(
        "PUT",
        &format!("/api/members/carol/roles/{staff}"),
        &alice,
        None,
    );
    assert_eq!(r.status, 204, "{}", r.text());
    for (role, ow) in [
        (1, json!({"allow":[],"deny":["view_channel"]})),
        (staff, json!({"allow":["view_channel"],"deny":[]})),
    ] {
        let r = s.call(
            "PUT",
            &format!("/api/channels/secret/overwrites/{role}"),
            &alice,
            Some(&ow),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let (mut a, _) = s.ws(&alice);
    a.send(json!({"type":"send","channel":"secret","content":"@bob @carol look","nonce":"m1"}));
    let id = a.recv_type("message")["message"]["id"].as_i64().unwrap();
    // An edit rewrites the rows: still none for bob.
    a.send(json!({"type":"edit","id":id,"content":"@bob @carol look again"}));
    a.recv_type("message_update");
    assert_eq!(mentions_in(&s, &carol, "secret"), 1, "carol can see it");

    // Let bob in: the channel appears, with no mention from before he could see it.
    let r = s.call("DELETE", "/api/channels/secret/overwrites/1", &alice, None);
    assert_eq!(r.status, 204, "{}", r.text());
    let (_, ready) = s.ws(&bob);
    assert_eq!(
        ready["unread"]["secret"],
        json!({"last_read_id":0,"mentions":0}),
        "{}",
        ready["unread"]
    );
    // Now that he can see it, a mention counts.
    a.send(json!({"type":"send","channel":"secret","content":"welcome @bob","nonce":"m2"}));
    a.recv_type("message");
    assert_eq!(mentions_in(&s, &bob, "secret"), 1);
}

/// A small PNG (an avatar must be an image the server can decode).
fn png(shade: u8) -> Vec<u8> {
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([x as u8 * 8, y as u8 * 8, shade])
    }));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[test]
fn a_new_avatar_is_pushed_as_user_update() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut bob_ws, _) = s.ws(&bob);
    let body = png(7);
    let mut raw = format!(
        "PUT /api/me/avatar HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {alice}\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let r = s.raw(&raw);
    assert_eq!(r.status, 200, "{}", r.text());
    let url = r.json()["user"]["avatar_url"].as_str().unwrap().to_string();
    let ev = bob_ws.recv_type("user_update");
    assert_eq!(ev["user"]["username"], "alice");
    assert_eq!(ev["user"]["avatar_url"], url.as_str());
    // The rest of the user object comes along (a client replaces the whole object).
    assert!(ev["user"].as_object().unwrap().contains_key("display_name"));
}
