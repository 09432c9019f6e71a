//! Direct messages (issue 14, API.md "Direct messages, profiles, read state"; docs/DMS.md)
//! against the real server: a DM does not exist for anyone but its members over every path,
//! a pair keeps its DM, group DMs and their limit, and DM messages count as mentions.

mod common;

use std::time::Duration;

use common::{Server, WsClient};
use serde_json::{json, Value};

fn open_dm(s: &Server, token: &str, users: &[&str]) -> Value {
    let r = s.call("POST", "/api/dms", token, Some(&json!({ "users": users })));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["channel"].clone()
}

/// Sends `content` (with `attachments`) to `channel` and returns the stored message.
fn send(ws: &mut WsClient, channel: &str, content: &str, attachments: Value) -> Value {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nonce = format!(
        "d{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    ws.send(json!({"type":"send","channel":channel,"content":content,"attachments":attachments,"nonce":nonce}));
    loop {
        let m = ws.recv_type("message");
        if m["nonce"] == nonce.as_str() {
            return m["message"].clone();
        }
    }
}

fn upload(s: &Server, token: &str, bytes: &[u8]) -> Value {
    let mut raw = format!(
        "POST /api/attachments?filename=note.txt HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        bytes.len()
    )
    .into_bytes();
    raw.extend_from_slice(bytes);
    let r = s.raw(&raw);
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["attachment"].clone()
}

#[test]
fn a_third_user_gets_404_and_no_events_for_a_dm_between_two_others() {
    let s = Server::start(&[]);
    // The owner (first account) is the third user: not even every permission sees a DM.
    let owner = s.register("owner");
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut owner_ws, _) = s.ws(&owner);
    let (mut alice_ws, _) = s.ws(&alice);
    let (mut bob_ws, _) = s.ws(&bob);

    let dm = open_dm(&s, &alice, &["bob"]);
    assert_eq!(dm["kind"], "dm");
    assert_eq!(dm["members"], json!(["alice", "bob"]));
    let name = dm["name"].as_str().unwrap().to_string();
    assert_eq!(bob_ws.recv_type("channel_create")["channel"]["name"], name);

    let file = upload(&s, &alice, b"for bob only");
    let m = send(&mut alice_ws, &name, "secret plans", json!([file["id"]]));
    assert_eq!(bob_ws.recv_type("message")["message"]["id"], m["id"]);
    alice_ws.send(json!({"type":"typing","channel":name}));
    alice_ws.send(json!({"type":"react","id":m["id"],"emoji":"👍","on":true}));
    alice_ws.send(json!({"type":"edit","id":m["id"],"content":"secret plans v2"}));
    assert_eq!(
        bob_ws.recv_type("message_update")["message"]["content"],
        "secret plans v2"
    );

    // Events: nothing of the DM reached the third user's socket.
    for e in owner_ws.drain_for(Duration::from_millis(800)) {
        assert!(!e.to_string().contains(&name), "owner saw {e}");
        assert!(!e.to_string().contains("secret plans"), "owner saw {e}");
    }
    // Channels and ready.
    let r = s.call("GET", "/api/channels", &owner, None);
    assert!(!r.text().contains(&name), "{}", r.text());
    let (_, ready) = s.ws(&owner);
    assert!(!ready.to_string().contains(&name), "{ready}");
    // History, search, files.
    let q = format!("/api/history?channel={name}");
    assert_eq!(s.call("GET", &q, &owner, None).status, 404);
    assert_eq!(s.call("GET", &q, &bob, None).status, 200);
    let r = s.call("GET", "/api/search?q=secret", &owner, None);
    assert!(!r.text().contains("secret plans"), "{}", r.text());
    let q = format!("/api/search?q=secret&channel={name}");
    assert_eq!(s.call("GET", &q, &owner, None).status, 404);
    let r = s.call("GET", "/api/search?q=secret", &bob, None);
    assert!(r.text().contains("secret plans"), "{}", r.text());
    let url = file["url"].as_str().unwrap();
    assert_eq!(s.call("GET", url, &owner, None).status, 404);
    assert_eq!(s.call("GET", url, &bob, None).status, 200);
    // Members, sends, reads and ops.
    let path = format!("/api/dms/{name}/members");
    let r = s.call("POST", &path, &owner, Some(&json!({"username":"owner"})));
    assert_eq!(r.status, 404, "{}", r.text());
    owner_ws.send(json!({"type":"send","channel":name,"content":"hi","nonce":"x"}));
    assert_eq!(owner_ws.recv_type("error")["code"], "not_found");
    owner_ws.send(json!({"type":"read","channel":name,"id":m["id"]}));
    assert_eq!(owner_ws.recv_type("error")["code"], "not_found");
    owner_ws.send(json!({"type":"delete","id":m["id"]}));
    assert_eq!(owner_ws.recv_type("error")["code"], "not_found");
    // And a DM cannot be made through the channel endpoint.
    let r = s.call(
        "POST",
        "/api/channels",
        &owner,
        Some(&json!({"name":"x","kind":"dm"})),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn the_same_pair_always_gets_the_same_dm_and_a_third_makes_a_group() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    s.register("carol");
    let one = open_dm(&s, &alice, &["bob"]);
    assert_eq!(open_dm(&s, &bob, &["Alice"])["name"], one["name"]);
    assert_eq!(
        open_dm(&s, &alice, &["bob", "bob", "alice"])["name"],
        one["name"]
    );
    let r = s.call(
        "POST",
        "/api/dms",
        &alice,
        Some(&json!({"users":["alice"]})),
    );
    assert_eq!(r.status, 400);
    let r = s.call(
        "POST",
        "/api/dms",
        &alice,
        Some(&json!({"users":["nobody"]})),
    );
    assert_eq!(r.status, 404);

    // Adding to a pair's DM makes a new group DM of the three; the pair's stays.
    let path = format!("/api/dms/{}/members", one["name"].as_str().unwrap());
    let r = s.call("POST", &path, &alice, Some(&json!({"username":"carol"})));
    assert_eq!(r.status, 200, "{}", r.text());
    let group = r.json()["channel"].clone();
    assert_ne!(group["name"], one["name"]);
    assert_eq!(group["members"], json!(["alice", "bob", "carol"]));
    assert_eq!(
        open_dm(&s, &alice, &["bob"])["members"],
        json!(["alice", "bob"])
    );
}

#[test]
fn a_group_dm_takes_up_to_ten_members_and_refuses_the_eleventh() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let names: Vec<String> = (1..=10).map(|i| format!("user{i}")).collect();
    for n in &names {
        s.register(n);
    }
    let r = s.call("POST", "/api/dms", &alice, Some(&json!({ "users": names })));
    assert_eq!(r.status, 400, "11 with the creator: {}", r.text());
    let group = open_dm(&s, &alice, &["user1", "user2"]);
    let path = format!("/api/dms/{}/members", group["name"].as_str().unwrap());
    let late = s.register("late");
    for n in &names[2..9] {
        let r = s.call("POST", &path, &alice, Some(&json!({ "username": n })));
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(
        s.call("GET", "/api/channels", &alice, None)
            .json()
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == group["name"])
            .unwrap()["members"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    let r = s.call("POST", &path, &alice, Some(&json!({"username":"user10"})));
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.error_code(), "bad_request");
    // A non-member cannot add themselves: 404.
    let r = s.call("POST", &path, &late, Some(&json!({"username":"late"})));
    assert_eq!(r.status, 404);
}

#[test]
fn a_dm_message_counts_as_a_mention_for_the_other_member() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let name = open_dm(&s, &alice, &["bob"])["name"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut alice_ws, _) = s.ws(&alice);
    let m = send(&mut alice_ws, &name, "are you there?", json!([]));
    send(&mut alice_ws, &name, "hello?", json!([]));
    let (mut bob_ws, ready) = s.ws(&bob);
    assert_eq!(
        ready["unread"][&name],
        json!({"last_read_id":0,"mentions":2})
    );
    let (_, ready) = s.ws(&alice);
    assert_eq!(ready["unread"][&name]["mentions"], 0);
    bob_ws.send(json!({"type":"read","channel":name,"id":m["id"]}));
    bob_ws.drain_for(Duration::from_millis(200));
    let (_, ready) = s.ws(&bob);
    assert_eq!(ready["unread"][&name]["mentions"], 1);
}

#[test]
fn leaving_a_group_dm_takes_it_away_from_every_tab_and_keeps_it_for_the_rest() {
    let s = Server::start(&[]);
    // alice is the owner: once the last member has left, not even she may see it.
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let dave = s.register("dave");
    let group = open_dm(&s, &bob, &["carol", "alice"]);
    let name = group["name"].as_str().unwrap().to_string();
    let (mut bob_ws, _) = s.ws(&bob);
    let (mut bob_tab2, _) = s.ws(&bob);
    let (mut carol_ws, _) = s.ws(&carol);
    let kept = send(&mut carol_ws, &name, "before bob left", json!([]));
    let leave = format!("/api/dms/{name}/members/me");

    // Not a member: it does not exist.
    assert_eq!(s.call("DELETE", &leave, &dave, None).status, 404);
    let r = s.call("DELETE", &leave, &bob, None);
    assert_eq!(r.status, 204, "{}", r.text());
    for ws in [&mut bob_ws, &mut bob_tab2] {
        assert_eq!(ws.recv_type("channel_delete")["name"], name.as_str());
    }
    let up = carol_ws.recv_type("channel_update");
    assert_eq!(up["channel"]["name"], name.as_str());
    let mut members: Vec<String> = up["channel"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect();
    members.sort();
    assert_eq!(members, ["alice", "carol"]);
    // Gone for bob over every path; the others keep the history.
    assert!(!s
        .call("GET", "/api/channels", &bob, None)
        .text()
        .contains(&name));
    let q = format!("/api/history?channel={name}");
    assert_eq!(s.call("GET", &q, &bob, None).status, 404);
    assert_eq!(s.call("DELETE", &leave, &bob, None).status, 404);
    bob_ws.send(json!({"type":"send","channel":name,"content":"still here?","nonce":"b1"}));
    assert_eq!(bob_ws.recv_type("error")["code"], "not_found");
    let h = s.call("GET", &q, &carol, None).json();
    assert!(
        h.as_array().unwrap().iter().any(|m| m["id"] == kept["id"]),
        "{h}"
    );
    let after = send(&mut carol_ws, &name, "after bob left", json!([]));
    for e in bob_ws.drain_for(Duration::from_millis(500)) {
        assert!(!e.to_string().contains("after bob left"), "bob saw {e}");
    }

    // The last one out leaves it empty but intact, and seen by nobody (the owner included).
    for t in [&carol, &alice] {
        let r = s.call("DELETE", &leave, t, None);
        assert_eq!(r.status, 204, "{}", r.text());
    }
    for t in [&alice, &bob, &carol, &dave] {
        assert!(!s
            .call("GET", "/api/channels", t, None)
            .text()
            .contains(&name));
        assert_eq!(s.call("GET", &q, t, None).status, 404);
    }
    let (_, ready) = s.ws(&alice);
    assert!(!ready.to_string().contains(&name), "{ready}");
    let r = s.call("GET", "/api/search?q=after", &alice, None);
    assert!(!r.text().contains("after bob left"), "{}", r.text());
    assert!(after["id"].as_i64().unwrap() > kept["id"].as_i64().unwrap());

    // A two-person DM is not left: the app closes it instead (docs/DMS.md).
    let pair = open_dm(&s, &alice, &["bob"])["name"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s.call(
        "DELETE",
        &format!("/api/dms/{pair}/members/me"),
        &alice,
        None,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(s
        .call("GET", "/api/channels", &alice, None)
        .text()
        .contains(&pair));
}
