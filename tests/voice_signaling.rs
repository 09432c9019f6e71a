//! `/ws/voice` signaling end to end against the real server (issue 5, "Server rules"):
//! welcome / peer_joined / peer_left, `voice_state` on every `/ws` and in `ready`, relay with
//! a server-stamped `from`, no relay across rooms, the room cap, one room per user, mute /
//! deafen / speaking, malformed and oversized signaling, the signaling rate limit, the
//! handshake rules, deleting a voice channel with people in it, and (issue 15) the
//! `video` / `screen` flags and the `watch` relay. Every wait is bounded.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Server, WsClient};
use serde_json::{json, Value};

/// How long we listen to conclude that nothing arrives.
const QUIET: Duration = Duration::from_millis(300);

const SIGNAL_TYPES: [&str; 3] = ["offer", "answer", "candidate"];

/// Opens `/ws/voice?channel=room` with a Bearer token (the handshake must succeed).
fn voice(s: &Server, token: &str, room: &str) -> WsClient {
    s.ws_at(
        &format!("/ws/voice?channel={room}"),
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .unwrap_or_else(|status| panic!("voice handshake for {room} refused with {status}"))
}

/// Joins `room`; the first frame must be `welcome`. Returns the socket, our peer id and the
/// welcome frame.
fn join(s: &Server, token: &str, room: &str) -> (WsClient, String, Value) {
    let mut c = voice(s, token, room);
    let w = c.recv().expect("a first frame on /ws/voice");
    assert_eq!(w["type"], "welcome", "first frame: {w}");
    let id = w["id"]
        .as_str()
        .expect("welcome.id is a string")
        .to_string();
    assert!(!id.is_empty());
    (c, id, w)
}

/// The next `error` frame, whose code must be `code`.
fn expect_error(c: &mut WsClient, code: &str, why: &str) -> Value {
    let e = c.recv_type("error");
    assert_eq!(e["code"], code, "{why}: {e}");
    assert!(e["message"].is_string(), "{why}: {e}");
    e
}

/// The connection is still served: a `ping` gets its `pong`.
fn still_alive(c: &mut WsClient) {
    c.send(json!({"type":"ping"}));
    c.recv_type("pong");
}

/// The next `voice_state` must be this one (`muted` and `deafened` are both `muted`: the
/// tests that change them check the frame themselves).
fn expect_voice_state(ws: &mut WsClient, channel: &str, user: &str, joined: bool, muted: bool) {
    let v = ws.recv_type("voice_state");
    assert_eq!(
        (
            v["channel"].as_str(),
            v["user"].as_str(),
            v["joined"].as_bool(),
            v["muted"].as_bool(),
            v["deafened"].as_bool()
        ),
        (
            Some(channel),
            Some(user),
            Some(joined),
            Some(muted),
            Some(muted)
        ),
        "{v}"
    );
}

/// `ready.voice` as a set of (channel, user, muted, deafened).
fn ready_voice(s: &Server, token: &str) -> HashSet<(String, String, bool, bool)> {
    let (_ws, ready) = s.ws(token);
    ready["voice"]
        .as_array()
        .expect("ready.voice is an array")
        .iter()
        .map(|m| {
            (
                m["channel"].as_str().unwrap().to_string(),
                m["user"].as_str().unwrap().to_string(),
                m["muted"].as_bool().unwrap(),
                m["deafened"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn member(channel: &str, user: &str, muted: bool, deafened: bool) -> (String, String, bool, bool) {
    (channel.into(), user.into(), muted, deafened)
}

fn create_voice_channel(s: &Server, admin: &str, name: &str) {
    let r = s.call(
        "POST",
        "/api/channels",
        admin,
        Some(&json!({"name": name, "kind": "voice"})),
    );
    assert_eq!(r.status, 201, "create {name}: {}", r.text());
}

fn signaling_in(frames: &[Value]) -> Vec<&Value> {
    frames
        .iter()
        .filter(|f| SIGNAL_TYPES.contains(&f["type"].as_str().unwrap_or("")))
        .collect()
}

/// A realistic audio-only SDP (CRLF line ends, as browsers send them).
fn sdp(lines: usize) -> String {
    let mut s = String::from(
        "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 0.0.0.0\r\n\
         a=ice-ufrag:Zk3q\r\na=ice-pwd:v5d7LqJ0ZrX2b4hQ+9yUeF1c\r\na=setup:actpass\r\n\
         a=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n",
    );
    for i in 0..lines {
        s.push_str(&format!(
            "a=x-filler-{i}:\"quoted\" \\ back/slash ünïcødé\r\n"
        ));
    }
    s
}

fn candidate(n: u32) -> Value {
    json!({
        "candidate": format!("candidate:{n} 1 udp 2122260223 192.168.1.{} 5{n:04} typ host generation 0 ufrag Zk3q network-id 1", n % 250),
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "Zk3q"
    })
}

#[test]
fn welcome_peer_joined_voice_state_and_ready_snapshot() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    // /ws connections: alice, bob, and carol (who never joins voice) with two tabs.
    let (mut wa, _) = s.ws(&alice);
    let (mut wb, _) = s.ws(&bob);
    let (mut wc1, _) = s.ws(&carol);
    let (mut wc2, _) = s.ws(&carol);

    let (mut a, a_id, welcome_a) = join(&s, &alice, "lounge");
    assert_eq!(welcome_a["peers"], json!([]), "{welcome_a}");
    for ws in [&mut wa, &mut wb, &mut wc1, &mut wc2] {
        expect_voice_state(ws, "lounge", "alice", true, false);
    }

    let (mut b, b_id, welcome_b) = join(&s, &bob, "lounge");
    assert_ne!(a_id, b_id, "peer ids are distinct");
    assert_eq!(
        welcome_b["peers"],
        json!([{"id": a_id, "user": "alice", "muted": false, "deafened": false, "video": false, "screen": false}]),
        "{welcome_b}"
    );
    let pj = a.recv_type("peer_joined");
    assert_eq!(
        pj["peer"],
        json!({"id": b_id, "user": "bob", "muted": false, "deafened": false, "video": false, "screen": false}),
        "{pj}"
    );
    for ws in [&mut wa, &mut wb, &mut wc1, &mut wc2] {
        expect_voice_state(ws, "lounge", "bob", true, false);
    }
    // The newcomer is not told about itself.
    let extra = b.drain_for(QUIET);
    assert!(
        extra.iter().all(|f| f["type"] != "peer_joined"),
        "{extra:?}"
    );

    // A /ws opened now lists everyone in voice in its `ready` snapshot.
    assert_eq!(
        ready_voice(&s, &carol),
        HashSet::from([
            member("lounge", "alice", false, false),
            member("lounge", "bob", false, false)
        ])
    );
}

#[test]
fn relay_stamps_from_drops_to_and_keeps_the_payload() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, b_id, _) = join(&s, &bob, "lounge");
    let (mut c, _c_id, _) = join(&s, &carol, "lounge");

    // offer a → b, with an SDP full of CRLF, quotes, backslashes and non-ASCII.
    let offer_sdp = sdp(3);
    a.send(json!({"type":"offer","to":b_id,"sdp":offer_sdp}));
    let got = b.recv_type("offer");
    assert_eq!(got["from"], a_id.as_str(), "{got}");
    assert_eq!(got["sdp"], offer_sdp.as_str(), "sdp intact");
    assert!(got.get("to").is_none(), "`to` must not be relayed: {got}");

    // answer b → a.
    let answer_sdp = sdp(1).replace("actpass", "active");
    b.send(json!({"type":"answer","to":a_id,"sdp":answer_sdp}));
    let got = a.recv_type("answer");
    assert_eq!(got["from"], b_id.as_str(), "{got}");
    assert_eq!(got["sdp"], answer_sdp.as_str());
    assert!(got.get("to").is_none(), "{got}");

    // candidates both ways, objects intact.
    let cand = candidate(7);
    a.send(json!({"type":"candidate","to":b_id,"candidate":cand}));
    let got = b.recv_type("candidate");
    assert_eq!(got["from"], a_id.as_str(), "{got}");
    assert_eq!(got["candidate"], cand, "candidate intact");
    assert!(got.get("to").is_none(), "{got}");
    let cand2 = candidate(8);
    b.send(json!({"type":"candidate","to":a_id,"candidate":cand2}));
    let got = a.recv_type("candidate");
    assert_eq!(
        (got["from"].as_str(), &got["candidate"]),
        (Some(b_id.as_str()), &cand2)
    );

    // The server stamps `from`: a forged one is replaced by the sender's real id.
    a.send(json!({"type":"offer","to":b_id,"sdp":"v=0\r\n","from":b_id}));
    let got = b.recv_type("offer");
    assert_eq!(got["from"], a_id.as_str(), "forged from: {got}");

    // A larger (12 KiB) SDP, under the 16 KiB limit, is relayed byte for byte.
    let big_sdp = sdp(250);
    assert!(big_sdp.len() > 12 * 1024, "{}", big_sdp.len());
    assert!(Value::from(big_sdp.as_str()).to_string().len() < 16 * 1024);
    a.send(json!({"type":"offer","to":b_id,"sdp":big_sdp}));
    let got = b.recv_type("offer");
    assert_eq!(got["sdp"], big_sdp.as_str());

    // Relay is addressed: the third peer saw none of it, and nobody got an echo.
    let cs = c.drain_for(QUIET);
    assert!(signaling_in(&cs).is_empty(), "carol got: {cs:?}");
    let as_ = a.drain_for(QUIET);
    assert!(signaling_in(&as_).is_empty(), "alice got: {as_:?}");
    let bs = b.drain_for(QUIET);
    assert!(signaling_in(&bs).is_empty(), "bob got: {bs:?}");
}

#[test]
fn no_relay_across_rooms_nor_to_self_or_unknown_peers() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    create_voice_channel(&s, &alice, "stage");
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, b_id, welcome_b) = join(&s, &bob, "stage");
    assert_eq!(
        welcome_b["peers"],
        json!([]),
        "a stage welcome lists no lounge peer"
    );

    for f in [
        json!({"type":"offer","to":a_id,"sdp":sdp(0)}),
        json!({"type":"answer","to":a_id,"sdp":sdp(0)}),
        json!({"type":"candidate","to":a_id,"candidate":candidate(1)}),
    ] {
        b.send(f.clone());
        expect_error(&mut b, "not_found", &format!("cross-room {f}"));
    }
    let got = a.drain_for(QUIET);
    assert!(
        signaling_in(&got).is_empty(),
        "lounge peer got stage signaling: {got:?}"
    );
    // And the other way round.
    a.send(json!({"type":"offer","to":b_id,"sdp":sdp(0)}));
    expect_error(&mut a, "not_found", "lounge → stage");
    let got = b.drain_for(QUIET);
    assert!(signaling_in(&got).is_empty(), "{got:?}");

    // To yourself, or to an id nobody has.
    b.send(json!({"type":"offer","to":b_id,"sdp":sdp(0)}));
    expect_error(&mut b, "not_found", "offer to self");
    b.send(json!({"type":"candidate","to":"987654321","candidate":candidate(2)}));
    expect_error(&mut b, "not_found", "unknown id");
    b.send(json!({"type":"answer","to":"nobody","sdp":sdp(0)}));
    expect_error(&mut b, "not_found", "non-numeric unknown id");
    let got = b.drain_for(QUIET);
    assert!(signaling_in(&got).is_empty(), "echo to self: {got:?}");
    still_alive(&mut b);
    still_alive(&mut a);
}

#[test]
fn room_cap_refuses_with_room_full_then_closes() {
    let s = Server::start(&[("VOICE_MAX_PEERS", "2")]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let (mut wa, _) = s.ws(&alice);
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (b, _b_id, _) = join(&s, &bob, "lounge");
    expect_voice_state(&mut wa, "lounge", "alice", true, false);
    expect_voice_state(&mut wa, "lounge", "bob", true, false);
    a.recv_type("peer_joined");

    let mut c = voice(&s, &carol, "lounge");
    let first = c.recv().expect("a frame before the close");
    assert_eq!(
        (first["type"].as_str(), first["code"].as_str()),
        (Some("error"), Some("room_full")),
        "{first}"
    );
    assert!(
        c.close_code().is_some(),
        "the refused socket gets a close frame"
    );
    // Nobody heard of carol.
    let got = a.drain_for(QUIET);
    assert!(got.iter().all(|f| f["type"] != "peer_joined"), "{got:?}");
    let got = wa.drain_for(QUIET);
    assert!(got.iter().all(|f| f["type"] != "voice_state"), "{got:?}");
    assert_eq!(
        ready_voice(&s, &carol),
        HashSet::from([
            member("lounge", "alice", false, false),
            member("lounge", "bob", false, false)
        ])
    );

    // Once someone leaves there is room again.
    drop(b);
    a.recv_type("peer_left");
    let (mut c, c_id, welcome_c) = join(&s, &carol, "lounge");
    assert_eq!(
        welcome_c["peers"],
        json!([{"id": a_id, "user": "alice", "muted": false, "deafened": false, "video": false, "screen": false}])
    );
    // The same user reconnecting (a second tab) to the full room replaces itself.
    let (_a2, a2_id, welcome_a2) = join(&s, &alice, "lounge");
    assert_eq!(
        welcome_a2["peers"],
        json!([{"id": c_id, "user": "carol", "muted": false, "deafened": false, "video": false, "screen": false}])
    );
    expect_error(&mut a, "conflict", "replaced by a second tab");
    assert!(a.close_code().is_some());
    let left = c.recv_type("peer_left");
    assert_eq!(left["id"], a_id.as_str());
    assert_eq!(c.recv_type("peer_joined")["peer"]["id"], a2_id.as_str());
}

#[test]
fn one_room_per_user_joining_another_leaves_the_first() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    create_voice_channel(&s, &alice, "stage");
    let (mut wa, _) = s.ws(&alice);
    let (mut wb, _) = s.ws(&bob);
    let (mut a1, a1_id, _) = join(&s, &alice, "lounge");
    let (mut b, _b_id, _) = join(&s, &bob, "lounge");
    a1.recv_type("peer_joined");
    for ws in [&mut wa, &mut wb] {
        expect_voice_state(ws, "lounge", "alice", true, false);
        expect_voice_state(ws, "lounge", "bob", true, false);
    }

    let (_a2, a2_id, welcome) = join(&s, &alice, "stage");
    assert_ne!(a1_id, a2_id);
    assert_eq!(welcome["peers"], json!([]), "{welcome}");
    // The first voice socket is told and closed.
    expect_error(&mut a1, "conflict", "joined elsewhere");
    assert!(a1.close_code().is_some(), "first voice socket closed");
    // The lounge sees alice leave.
    let left = b.recv_type("peer_left");
    assert_eq!(left["id"], a1_id.as_str(), "{left}");
    // Every /ws: left lounge, then joined stage.
    for ws in [&mut wa, &mut wb] {
        expect_voice_state(ws, "lounge", "alice", false, false);
        expect_voice_state(ws, "stage", "alice", true, false);
    }
    assert_eq!(
        ready_voice(&s, &bob),
        HashSet::from([
            member("stage", "alice", false, false),
            member("lounge", "bob", false, false)
        ])
    );
    // The old peer id is gone.
    b.send(json!({"type":"offer","to":a1_id,"sdp":sdp(0)}));
    expect_error(&mut b, "not_found", "offer to the displaced peer");
}

#[test]
fn leaving_sends_peer_left_and_voice_state() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let (mut wc, _) = s.ws(&carol);
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, b_id, _) = join(&s, &bob, "lounge");
    let (mut c, _c_id, _) = join(&s, &carol, "lounge");
    expect_voice_state(&mut wc, "lounge", "alice", true, false);
    expect_voice_state(&mut wc, "lounge", "bob", true, false);
    expect_voice_state(&mut wc, "lounge", "carol", true, false);

    // A clean WebSocket close.
    b.ws.close(None).expect("close");
    let _ = b.close_code();
    for peer in [&mut a, &mut c] {
        let left = peer.recv_type("peer_left");
        assert_eq!(left["id"], b_id.as_str(), "{left}");
    }
    expect_voice_state(&mut wc, "lounge", "bob", false, false);

    // The TCP connection just going away.
    drop(a);
    let left = c.recv_type("peer_left");
    assert_eq!(left["id"], a_id.as_str(), "{left}");
    expect_voice_state(&mut wc, "lounge", "alice", false, false);

    assert_eq!(
        ready_voice(&s, &carol),
        HashSet::from([member("lounge", "carol", false, false)])
    );
    c.send(json!({"type":"offer","to":b_id,"sdp":sdp(0)}));
    expect_error(&mut c, "not_found", "offer to a peer that left");
}

#[test]
fn state_and_speaking_reach_the_room_and_every_ws() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let (mut wc, _) = s.ws(&carol);
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, _b_id, _) = join(&s, &bob, "lounge");
    expect_voice_state(&mut wc, "lounge", "alice", true, false);
    expect_voice_state(&mut wc, "lounge", "bob", true, false);

    a.send(json!({"type":"state","muted":true,"deafened":false}));
    let ps = b.recv_type("peer_state");
    assert_eq!(
        (
            ps["id"].as_str(),
            ps["muted"].as_bool(),
            ps["deafened"].as_bool()
        ),
        (Some(a_id.as_str()), Some(true), Some(false)),
        "{ps}"
    );
    let v = wc.recv_type("voice_state");
    assert_eq!(
        v,
        json!({"type":"voice_state","channel":"lounge","user":"alice","joined":true,"muted":true,"deafened":false,"video":false,"screen":false})
    );
    // The state sticks: snapshot and a newcomer's welcome show it.
    assert_eq!(
        ready_voice(&s, &carol),
        HashSet::from([
            member("lounge", "alice", true, false),
            member("lounge", "bob", false, false)
        ])
    );
    let (mut c, _c_id, welcome_c) = join(&s, &carol, "lounge");
    let peers = welcome_c["peers"].as_array().unwrap();
    let alice_peer = peers.iter().find(|p| p["user"] == "alice").unwrap();
    assert_eq!(
        (
            alice_peer["muted"].as_bool(),
            alice_peer["deafened"].as_bool()
        ),
        (Some(true), Some(false))
    );
    wc.recv_type("voice_state"); // carol joined

    // Deafen ("silences everyone and mutes you").
    a.send(json!({"type":"state","muted":true,"deafened":true}));
    for peer in [&mut b, &mut c] {
        let ps = peer.recv_type("peer_state");
        assert_eq!(
            (
                ps["id"].as_str(),
                ps["muted"].as_bool(),
                ps["deafened"].as_bool()
            ),
            (Some(a_id.as_str()), Some(true), Some(true)),
            "{ps}"
        );
    }
    let v = wc.recv_type("voice_state");
    assert_eq!(
        (
            v["user"].as_str(),
            v["joined"].as_bool(),
            v["deafened"].as_bool()
        ),
        (Some("alice"), Some(true), Some(true)),
        "{v}"
    );

    // Speaking: the room gets it, the speaker does not, and /ws does not.
    a.send(json!({"type":"speaking","speaking":true}));
    for peer in [&mut b, &mut c] {
        let sp = peer.recv_type("speaking");
        assert_eq!(
            (sp["id"].as_str(), sp["speaking"].as_bool()),
            (Some(a_id.as_str()), Some(true)),
            "{sp}"
        );
    }
    a.send(json!({"type":"speaking","speaking":false}));
    let sp = b.recv_type("speaking");
    assert_eq!(
        (sp["id"].as_str(), sp["speaking"].as_bool()),
        (Some(a_id.as_str()), Some(false))
    );
    let echo = a.drain_for(QUIET);
    assert!(
        echo.iter().all(|f| f["type"] != "speaking"),
        "speaker got its own speaking: {echo:?}"
    );
    let ws_frames = wc.drain_for(QUIET);
    assert!(
        ws_frames.iter().all(|f| f["type"] != "speaking"),
        "{ws_frames:?}"
    );
}

#[test]
fn malformed_and_oversized_signaling_gets_bad_request_and_the_connection_stays() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, b_id, _) = join(&s, &bob, "lounge");
    let to = b_id.as_str();
    let bad: Vec<(String, &str)> = vec![
        ("not json".into(), "bad JSON"),
        (r#"{"type":"offer","to":"#.into(), "truncated JSON"),
        (r#"{"to":"1","sdp":"x"}"#.into(), "no type"),
        (r#"{"type":"dance"}"#.into(), "unknown type"),
        (
            json!({"type":"offer","to":to}).to_string(),
            "offer without sdp",
        ),
        (
            json!({"type":"offer","sdp":"v=0"}).to_string(),
            "offer without to",
        ),
        (
            json!({"type":"answer","to":to}).to_string(),
            "answer without sdp",
        ),
        (
            json!({"type":"candidate","to":to}).to_string(),
            "candidate missing",
        ),
        (
            json!({"type":"offer","to":to,"sdp":5}).to_string(),
            "sdp not a string",
        ),
        (
            json!({"type":"offer","to":7,"sdp":"v=0"}).to_string(),
            "to not a string",
        ),
        (
            json!({"type":"state","muted":true}).to_string(),
            "state without deafened",
        ),
        (json!({"type":"speaking"}).to_string(), "speaking missing"),
        ("[".repeat(40), "deep nesting"),
        // Semantic checks.
        (
            json!({"type":"candidate","to":to,"candidate":"candidate:1 1 udp"}).to_string(),
            "candidate is a string",
        ),
        (
            json!({"type":"candidate","to":to,"candidate":42}).to_string(),
            "candidate is a number",
        ),
        (
            json!({"type":"candidate","to":to,"candidate":[1,2]}).to_string(),
            "candidate is an array",
        ),
        (
            json!({"type":"offer","to":to,"sdp":"x".repeat(17 * 1024)}).to_string(),
            "sdp over 16 KiB",
        ),
        (
            json!({"type":"answer","to":to,"sdp":"x".repeat(40 * 1024)}).to_string(),
            "sdp of 40 KiB",
        ),
        (
            json!({"type":"candidate","to":to,"candidate":{"candidate":"x".repeat(8 * 1024)}})
                .to_string(),
            "candidate of 8 KiB",
        ),
    ];
    for (frame, why) in &bad {
        a.send_text(frame);
        expect_error(&mut a, "bad_request", why);
    }
    // Nothing of it reached the peer, and the connection is still served.
    let got = b.drain_for(QUIET);
    assert!(
        signaling_in(&got).is_empty(),
        "refused frames were relayed: {got:?}"
    );
    still_alive(&mut a);
    a.send(json!({"type":"offer","to":to,"sdp":sdp(0)}));
    let got = b.recv_type("offer");
    assert_eq!(got["from"], a_id.as_str());
    // The peer never saw a peer_left for alice.
    let got = b.drain_for(QUIET);
    assert!(got.iter().all(|f| f["type"] != "peer_left"), "{got:?}");
}

/// Answers in parts are for media server rooms (docs/VOICE.md): in a mesh room a part is
/// refused, nothing reaches the peer, and the socket goes on.
#[test]
fn answer_parts_are_refused_in_a_mesh_room() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut a, _, w) = join(&s, &alice, "lounge");
    assert_ne!(w["voice_mode"], "sfu", "{w}");
    let (mut b, b_id, _) = join(&s, &bob, "lounge");
    a.send(json!({"type":"answer","to":b_id,"sdp":"v=0","part":0,"more":true}));
    expect_error(&mut a, "bad_request", "an answer part in mesh");
    a.send(json!({"type":"answer","to":b_id,"sdp":"v=1","part":1}));
    expect_error(&mut a, "bad_request", "an answer part in mesh");
    still_alive(&mut a);
    let got = b.drain_for(QUIET);
    assert!(signaling_in(&got).is_empty(), "{got:?}");
}

#[test]
fn frame_over_64_kib_closes_with_1009_and_leaves_the_room() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut wb, _) = s.ws(&bob);
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, b_id, _) = join(&s, &bob, "lounge");
    expect_voice_state(&mut wb, "lounge", "alice", true, false);
    expect_voice_state(&mut wb, "lounge", "bob", true, false);
    let big = json!({"type":"offer","to":b_id,"sdp":"x".repeat(70 * 1024)}).to_string();
    let _ = a.ws.send(tungstenite::Message::text(big));
    assert_eq!(a.close_code(), Some(1009));
    let left = b.recv_type("peer_left");
    assert_eq!(left["id"], a_id.as_str());
    expect_voice_state(&mut wb, "lounge", "alice", false, false);
    let got = b.drain_for(QUIET);
    assert!(signaling_in(&got).is_empty(), "{got:?}");
}

#[test]
fn signaling_is_rate_limited_per_connection() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, b_id, _) = join(&s, &bob, "lounge");
    a.recv_type("peer_joined");
    const SENT: usize = 500;
    for i in 0..SENT {
        a.send(json!({"type":"candidate","to":b_id,"candidate":candidate(i as u32)}));
    }
    let mut limited = Vec::new();
    let mut relayed = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while relayed + limited.len() < SENT && std::time::Instant::now() < deadline {
        for f in a.drain_for(Duration::from_millis(200)) {
            if f["type"] == "error" && f["code"] == "rate_limited" {
                limited.push(f);
            } else {
                panic!("unexpected frame for the sender: {f}");
            }
        }
        for f in b.drain_for(Duration::from_millis(200)) {
            if f["type"] == "candidate" {
                assert_eq!(f["from"], a_id.as_str());
                relayed += 1;
            }
        }
    }
    assert_eq!(
        relayed + limited.len(),
        SENT,
        "every candidate is either relayed or refused (relayed {relayed}, limited {})",
        limited.len()
    );
    assert!(relayed >= 200, "the burst of 200 goes through: {relayed}");
    assert!(
        limited.len() >= 100,
        "a burst of {SENT} is refused in part: {} refused",
        limited.len()
    );
    assert!(
        limited[0]["retry_after_ms"]
            .as_u64()
            .is_some_and(|ms| ms > 0),
        "{}",
        limited[0]
    );
    // Not a disconnect: after a pause signaling flows again.
    std::thread::sleep(Duration::from_millis(300));
    still_alive(&mut a);
    a.send(json!({"type":"offer","to":b_id,"sdp":sdp(0)}));
    assert_eq!(b.recv_type("offer")["from"], a_id.as_str());
}

#[test]
fn handshake_rules() {
    let s = Server::start(&[("ALLOWED_ORIGINS", "https://chat.example.com")]);
    let t = s.register("alice");
    let bearer = format!("Bearer {t}");
    let auth = [("Authorization", bearer.as_str())];
    // 404 before the upgrade for anything but a voice channel.
    assert_eq!(
        s.ws_at("/ws/voice?channel=general", &auth).err(),
        Some(404),
        "text channel"
    );
    assert_eq!(
        s.ws_at("/ws/voice?channel=nowhere", &auth).err(),
        Some(404),
        "unknown channel"
    );
    assert_eq!(
        s.ws_at("/ws/voice", &auth).err(),
        Some(404),
        "no channel parameter"
    );
    assert_eq!(
        s.ws_at("/ws/voice?channel=", &auth).err(),
        Some(404),
        "empty channel"
    );
    // Session.
    assert_eq!(
        s.ws_at("/ws/voice?channel=lounge", &[]).err(),
        Some(401),
        "no session"
    );
    assert_eq!(
        s.ws_at(
            "/ws/voice?channel=lounge",
            &[("Authorization", "Bearer 00")]
        )
        .err(),
        Some(401),
        "bad token"
    );
    // Cookie sessions need our own (or an allowed) Origin.
    let cookie = format!("md_session={t}");
    assert_eq!(
        s.ws_at(
            "/ws/voice?channel=lounge",
            &[("Cookie", &cookie), ("Origin", "https://evil.example")]
        )
        .err(),
        Some(403),
        "cookie with a foreign Origin"
    );
    assert_eq!(
        s.ws_at("/ws/voice?channel=lounge", &[("Cookie", &cookie)])
            .err(),
        Some(403),
        "cookie without Origin"
    );
    // None of the refused handshakes put anyone in voice.
    assert!(ready_voice(&s, &t).is_empty());
    let own = format!("http://{}", s.addr);
    let mut c = s
        .ws_at(
            "/ws/voice?channel=lounge",
            &[("Cookie", &cookie), ("Origin", &own)],
        )
        .expect("cookie with our own Origin");
    assert_eq!(c.recv_type("welcome")["peers"], json!([]));
    drop(c);
    let mut c = s
        .ws_at(
            "/ws/voice?channel=lounge",
            &[("Cookie", &cookie), ("Origin", "https://chat.example.com")],
        )
        .expect("cookie with an allowed Origin");
    c.recv_type("welcome");
    let mut c2 = s
        .ws_at(
            "/ws/voice?channel=lounge",
            &[
                ("Authorization", &bearer),
                ("Origin", "https://evil.example"),
            ],
        )
        .expect("a Bearer token with any Origin");
    c2.recv_type("welcome");
}

#[test]
fn deleting_a_voice_channel_closes_its_peers() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    create_voice_channel(&s, &alice, "stage");
    let (mut wc, _) = s.ws(&carol);
    let (mut a, _a_id, _) = join(&s, &alice, "stage");
    let (mut b, _b_id, _) = join(&s, &bob, "stage");
    let (mut c, _c_id, _) = join(&s, &carol, "lounge");
    expect_voice_state(&mut wc, "stage", "alice", true, false);
    expect_voice_state(&mut wc, "stage", "bob", true, false);
    expect_voice_state(&mut wc, "lounge", "carol", true, false);
    a.recv_type("peer_joined");

    let r = s.call("DELETE", "/api/channels/stage", &alice, None);
    assert_eq!(r.status, 204, "{}", r.text());
    for (peer, who) in [(&mut a, "alice"), (&mut b, "bob")] {
        let e = peer.recv_type("error");
        assert!(e["code"].is_string(), "{who}: {e}");
        assert!(peer.close_code().is_some(), "{who}'s voice socket closed");
    }
    // /ws: both left stage, and the channel is gone.
    let mut left = HashSet::new();
    let mut deleted = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while (left.len() < 2 || !deleted) && std::time::Instant::now() < deadline {
        let f = wc.recv().expect("/ws stays open");
        match f["type"].as_str() {
            Some("voice_state") => {
                assert_eq!(
                    (f["channel"].as_str(), f["joined"].as_bool()),
                    (Some("stage"), Some(false)),
                    "{f}"
                );
                left.insert(f["user"].as_str().unwrap().to_string());
            }
            Some("channel_delete") => {
                assert_eq!(f["name"], "stage");
                deleted = true;
            }
            _ => {}
        }
    }
    assert_eq!(
        left,
        HashSet::from(["alice".to_string(), "bob".to_string()])
    );
    assert!(deleted, "channel_delete on /ws");
    // The lounge is untouched, the snapshot has no stage, and stage is no longer joinable.
    still_alive(&mut c);
    let got = c.drain_for(QUIET);
    assert!(got.iter().all(|f| f["type"] != "peer_left"), "{got:?}");
    assert_eq!(
        ready_voice(&s, &carol),
        HashSet::from([member("lounge", "carol", false, false)])
    );
    assert_eq!(
        s.ws_at(
            "/ws/voice?channel=stage",
            &[("Authorization", &format!("Bearer {bob}"))]
        )
        .err(),
        Some(404)
    );
}

#[test]
fn sdp_limit_is_16_kib_of_sdp() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, b_id, _) = join(&s, &bob, "lounge");
    // A realistic SDP (CRLF line ends) of exactly 16 KiB is within the limit…
    let mut at_limit = sdp(0);
    while at_limit.len() < 16 * 1024 - 40 {
        at_limit.push_str("a=rtcp-fb:111 transport-cc\r\n");
    }
    at_limit.push_str(&"x".repeat(16 * 1024 - 2 - at_limit.len()));
    at_limit.push_str("\r\n");
    assert_eq!(at_limit.len(), 16 * 1024);
    a.send(json!({"type":"offer","to":b_id,"sdp":at_limit}));
    let got = b.drain_for(Duration::from_secs(1));
    let offers = signaling_in(&got);
    assert!(
        offers.len() == 1 && offers[0]["from"] == a_id.as_str(),
        "an SDP of exactly 16 KiB must be relayed; bob got {got:?}, alice got {:?}",
        a.drain_for(QUIET)
    );
    assert_eq!(offers[0]["sdp"], at_limit.as_str());
    // …one byte more is not.
    a.send(json!({"type":"answer","to":b_id,"sdp":format!("{at_limit}x")}));
    expect_error(&mut a, "bad_request", "SDP of 16 KiB + 1");
    let got = b.drain_for(QUIET);
    assert!(signaling_in(&got).is_empty(), "{got:?}");
}

#[test]
fn sustained_bad_signaling_closes_with_1008() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, _b_id, _) = join(&s, &bob, "lounge");
    for _ in 0..40 {
        if a.ws.send(tungstenite::Message::text("garbage")).is_err() {
            break;
        }
    }
    assert_eq!(a.close_code(), Some(1008));
    assert_eq!(b.recv_type("peer_left")["id"], a_id.as_str());
}

#[test]
fn video_and_screen_flags_reach_the_room_every_ws_ready_and_welcome() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let (mut wc, _) = s.ws(&carol);
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, _b_id, _) = join(&s, &bob, "lounge");
    expect_voice_state(&mut wc, "lounge", "alice", true, false);
    expect_voice_state(&mut wc, "lounge", "bob", true, false);

    a.send(json!({"type":"state","muted":false,"deafened":false,"video":true,"screen":false}));
    let ps = b.recv_type("peer_state");
    assert_eq!(
        ps,
        json!({"type":"peer_state","id":a_id,"muted":false,"deafened":false,"video":true,"screen":false})
    );
    assert_eq!(
        wc.recv_type("voice_state"),
        json!({"type":"voice_state","channel":"lounge","user":"alice","joined":true,"muted":false,"deafened":false,"video":true,"screen":false})
    );
    // Only the screen flag changes: that alone is a change the room and /ws hear about.
    a.send(json!({"type":"state","muted":false,"deafened":false,"video":true,"screen":true}));
    let ps = b.recv_type("peer_state");
    assert_eq!(
        (ps["video"].as_bool(), ps["screen"].as_bool()),
        (Some(true), Some(true)),
        "{ps}"
    );
    let v = wc.recv_type("voice_state");
    assert_eq!(
        (v["video"].as_bool(), v["screen"].as_bool()),
        (Some(true), Some(true)),
        "{v}"
    );

    // A /ws opened now sees the flags in ready.voice.
    let (mut w2, ready) = s.ws(&carol);
    let alice_in_ready = ready["voice"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"] == "alice")
        .cloned()
        .unwrap();
    assert_eq!(
        alice_in_ready,
        json!({"channel":"lounge","user":"alice","muted":false,"deafened":false,"video":true,"screen":true})
    );
    // A newcomer's welcome carries them too.
    let (_c, _c_id, welcome_c) = join(&s, &carol, "lounge");
    let alice_peer = welcome_c["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"] == "alice")
        .cloned()
        .unwrap();
    assert_eq!(
        alice_peer,
        json!({"id":a_id,"user":"alice","muted":false,"deafened":false,"video":true,"screen":true})
    );
    w2.recv_type("voice_state"); // carol joined

    // A v1 `state` without the new fields means camera and screen off.
    a.send(json!({"type":"state","muted":true,"deafened":false}));
    let v = w2.recv_type("voice_state");
    assert_eq!(
        (
            v["muted"].as_bool(),
            v["video"].as_bool(),
            v["screen"].as_bool()
        ),
        (Some(true), Some(false), Some(false)),
        "{v}"
    );
    still_alive(&mut a);
}

#[test]
fn watch_is_relayed_to_that_peer_only_within_the_room() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    create_voice_channel(&s, &alice, "stage");
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, b_id, _) = join(&s, &bob, "lounge");
    let (mut c, c_id, _) = join(&s, &carol, "stage");
    a.recv_type("peer_joined");

    b.send(json!({"type":"watch","id":a_id,"on":true}));
    assert_eq!(
        a.recv_type("watch"),
        json!({"type":"watch","from":b_id,"on":true})
    );
    b.send(json!({"type":"watch","id":a_id,"on":false}));
    assert_eq!(
        a.recv_type("watch"),
        json!({"type":"watch","from":b_id,"on":false})
    );
    // Not across rooms, not to yourself, not to nobody.
    c.send(json!({"type":"watch","id":a_id,"on":true}));
    expect_error(&mut c, "not_found", "cross-room watch");
    b.send(json!({"type":"watch","id":b_id,"on":true}));
    expect_error(&mut b, "not_found", "watch yourself");
    b.send(json!({"type":"watch","id":"987654321","on":true}));
    expect_error(&mut b, "not_found", "watch nobody");
    a.send(json!({"type":"watch","id":c_id,"on":true}));
    expect_error(&mut a, "not_found", "watch into another room");
    // Malformed: `on` must be a boolean.
    b.send(json!({"type":"watch","id":a_id,"on":"yes"}));
    expect_error(&mut b, "bad_request", "on is not a bool");
    let got = a.drain_for(QUIET);
    assert!(got.iter().all(|f| f["type"] != "watch"), "{got:?}");
    let got = c.drain_for(QUIET);
    assert!(got.iter().all(|f| f["type"] != "watch"), "{got:?}");
    still_alive(&mut b);
}

#[test]
fn watch_spends_the_signaling_budget() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut a, a_id, _) = join(&s, &alice, "lounge");
    let (mut b, b_id, _) = join(&s, &bob, "lounge");
    a.recv_type("peer_joined");
    const SENT: usize = 500;
    for i in 0..SENT {
        b.send(json!({"type":"watch","id":a_id,"on":i % 2 == 0}));
    }
    let (mut limited, mut relayed) = (0, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while relayed + limited < SENT && std::time::Instant::now() < deadline {
        for f in b.drain_for(Duration::from_millis(200)) {
            assert_eq!(f["code"], "rate_limited", "{f}");
            limited += 1;
        }
        for f in a.drain_for(Duration::from_millis(200)) {
            if f["type"] == "watch" {
                assert_eq!(f["from"], b_id.as_str());
                relayed += 1;
            }
        }
    }
    assert_eq!(
        relayed + limited,
        SENT,
        "relayed {relayed}, limited {limited}"
    );
    assert!(relayed >= 200, "the burst goes through: {relayed}");
    assert!(
        limited >= 100,
        "a flood of watch is refused in part: {limited}"
    );
}
