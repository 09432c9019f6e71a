//! "Run a community" (issue 13) end to end against the real server: the permission matrix
//! (every permission with and without, over the REST calls and `/ws` ops it guards, nothing
//! stored when refused), private channels leaving no trace over any path, the hierarchy,
//! kick / ban / timeout / slow mode with real clients, `speak` and `stream` on `/ws/voice`,
//! and the upgrade of a database made by the previous release (`tests/fixtures/v1.db`).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{HttpResponse, Server, WsClient};
use serde_json::{json, Value};
use tungstenite::Message;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn ok(r: &HttpResponse, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

fn refused(r: &HttpResponse, status: u16, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
}

fn create_role(s: &Server, token: &str, name: &str, perms: &[&str]) -> i64 {
    let r = s.call(
        "POST",
        "/api/roles",
        token,
        Some(&json!({"name": name, "permissions": perms})),
    );
    ok(&r, 201, "create role")["id"].as_i64().unwrap()
}

fn set_role_perms(s: &Server, token: &str, id: i64, perms: &[&str]) {
    let r = s.call(
        "PATCH",
        &format!("/api/roles/{id}"),
        token,
        Some(&json!({ "permissions": perms })),
    );
    ok(&r, 200, "patch role");
}

fn give(s: &Server, token: &str, user: &str, role: i64) {
    let r = s.call(
        "PUT",
        &format!("/api/members/{user}/roles/{role}"),
        token,
        None,
    );
    ok(&r, 204, "give role");
}

fn history(s: &Server, token: &str, channel: &str) -> Vec<Value> {
    let r = s.call(
        "GET",
        &format!("/api/history?channel={channel}"),
        token,
        None,
    );
    ok(&r, 200, "history").as_array().unwrap().clone()
}

/// Sends `frame` and returns the first answer to it this connection gets: its own
/// `message` (nonce), an `error`, or the event named `want`.
fn answer(c: &mut WsClient, frame: Value, want: &str) -> Value {
    let nonce = frame["nonce"].clone();
    c.send(frame);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let v = c.recv().expect("connection open");
        // Our own message is the one with our nonce (others' messages arrive too).
        let ours = nonce.is_null() || v["nonce"] == nonce;
        if ours && (v["type"] == "error" || v["type"] == want) {
            return v;
        }
    }
    panic!("no answer");
}

fn send(c: &mut WsClient, channel: &str, content: &str) -> Value {
    answer(
        c,
        json!({"type":"send","channel":channel,"content":content,"nonce":content}),
        "message",
    )
}

fn upload(s: &Server, token: &str, bytes: &[u8]) -> HttpResponse {
    let mut raw = format!(
        "POST /api/attachments?filename=a.txt HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        bytes.len()
    )
    .into_bytes();
    raw.extend_from_slice(bytes);
    s.raw(&raw)
}

fn voice(s: &Server, token: &str, room: &str) -> Result<WsClient, u16> {
    s.ws_at(
        &format!("/ws/voice?channel={room}"),
        &[("Authorization", &format!("Bearer {token}"))],
    )
}

/// The close frame's code and reason (bounded wait).
fn close_of(c: &mut WsClient) -> Option<(u16, String)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        match c.ws.read() {
            Ok(Message::Close(Some(f))) => return Some((u16::from(f.code), f.reason.to_string())),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

fn login(s: &Server, name: &str) -> HttpResponse {
    s.request(
        "POST",
        "/api/login",
        &[],
        Some(&json!({"username": name, "password": "password123"})),
    )
}

fn audit_actions(s: &Server, token: &str) -> Vec<(String, String, String)> {
    let r = s.call("GET", "/api/audit-log?limit=100", token, None);
    ok(&r, 200, "audit log")
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["target"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_v1_database_upgrades_in_place_keeps_its_data_and_behaves_as_v1() {
    let dir = common::temp_dir("v1");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/v1.db"),
        dir.join("chat.db"),
    )
    .unwrap();
    let s = Server::start_in(&dir, "127.0.0.1:0", &[], false);
    assert!(
        s.log_text().contains("schema version 5"),
        "{}",
        s.log_text()
    );
    let alice = ok(&login(&s, "alice"), 200, "owner logs in")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = ok(&login(&s, "bob"), 200, "bob logs in")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let general = history(&s, &bob, "general");
    assert_eq!(general.len(), 2);
    assert_eq!(general[0]["content"], "hello from alice");
    assert_eq!(general[0]["reactions"], json!({"👍": ["bob"]}));
    assert_eq!(general[0]["pinned"], false);
    assert_eq!(
        history(&s, &bob, "random")[0]["content"],
        "random banana words"
    );
    let roles = ok(&s.call("GET", "/api/roles", &bob, None), 200, "roles");
    assert_eq!(
        roles,
        json!([{"id":1,"name":"everyone","color":null,"position":0,"hoist":false,
                "permissions":["view_channel","send_messages","attach_files","add_reactions","connect","speak","stream"]}])
    );
    // As v1: everyone writes and talks, only the admin manages channels and invites.
    let (mut w, ready) = s.ws(&bob);
    assert_eq!(ready["channels"].as_array().unwrap().len(), 3);
    assert_eq!(ready["last_ids"]["general"], 2);
    assert!(send(&mut w, "general", "after the upgrade")["message"]["id"].as_i64() > Some(3));
    assert!(voice(&s, &bob, "lounge").is_ok());
    let make = json!({"name":"mine","kind":"text"});
    refused(
        &s.call("POST", "/api/channels", &bob, Some(&make)),
        403,
        "bob: channels",
    );
    refused(
        &s.call("POST", "/api/invites", &bob, None),
        403,
        "bob: invites",
    );
    ok(
        &s.call("POST", "/api/channels", &alice, Some(&make)),
        201,
        "owner: channels",
    );
    ok(
        &s.call("POST", "/api/invites", &alice, None),
        201,
        "owner: invites",
    );
    let members = ok(&s.call("GET", "/api/members", &bob, None), 200, "members");
    assert_eq!(members.as_array().unwrap().len(), 2);
    assert_eq!(members[0]["roles"], json!([]));
}

#[test]
fn permission_matrix_every_permission_with_and_without() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    // The baseline: everyone only sees; bob's test role adds one permission at a time.
    set_role_perms(&s, &alice, 1, &["view_channel"]);
    let role = create_role(&s, &alice, "tester", &[]);
    give(&s, &alice, "bob", role);
    let (mut b, _) = s.ws(&bob);
    let (mut a, _) = s.ws(&alice);
    let grant = |perms: &[&str]| {
        let mut all = vec!["view_channel"];
        all.extend_from_slice(perms);
        set_role_perms(&s, &alice, role, &all);
    };

    // send_messages (typing too: only who may write there is typing there)
    grant(&[]);
    let e = send(&mut b, "general", "refused send");
    assert_eq!(e["code"], "forbidden", "{e}");
    b.send(json!({"type":"typing","channel":"general"}));
    let seen = a.drain_for(Duration::from_millis(500));
    assert!(seen.iter().all(|f| f["type"] != "typing"), "{seen:?}");
    grant(&["send_messages"]);
    b.send(json!({"type":"typing","channel":"general"}));
    assert_eq!(a.recv_type("typing")["user"], "bob");
    let m = send(&mut b, "general", "allowed send");
    assert_eq!(m["type"], "message", "{m}");
    let mine = m["message"]["id"].as_i64().unwrap();
    let texts: Vec<Value> = history(&s, &alice, "general")
        .iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(
        texts,
        vec![json!("allowed send")],
        "nothing stored when refused"
    );

    // attach_files
    let file = ok(&upload(&s, &bob, b"hello"), 201, "upload")["attachment"]["id"].clone();
    let with_file = |c: &mut WsClient| {
        answer(
            c,
            json!({"type":"send","channel":"general","content":"f","attachments":[file],"nonce":"f"}),
            "message",
        )
    };
    assert_eq!(with_file(&mut b)["code"], "forbidden");
    grant(&["send_messages", "attach_files"]);
    assert_eq!(with_file(&mut b)["type"], "message");

    // add_reactions
    let react = json!({"type":"react","id":mine,"emoji":"👍"});
    assert_eq!(
        answer(&mut b, react.clone(), "reaction")["code"],
        "forbidden"
    );
    grant(&["add_reactions"]);
    assert_eq!(answer(&mut b, react, "reaction")["on"], true);

    // mention_everyone: without it @everyone / @role stay plain text
    grant(&["send_messages"]);
    let m = send(&mut b, "general", "hey @everyone and @tester");
    assert_eq!(m["message"]["mention_everyone"], false);
    assert_eq!(m["message"]["mention_roles"], json!([]));
    grant(&["send_messages", "mention_everyone"]);
    let m = send(&mut b, "general", "again @everyone and @tester");
    assert_eq!(m["message"]["mention_everyone"], true);
    assert_eq!(m["message"]["mention_roles"], json!([role]));
    let edited = m["message"]["id"].clone();
    let up = answer(
        &mut b,
        json!({"type":"edit","id":edited,"content":"no ping now"}),
        "message_update",
    );
    assert_eq!(
        up["message"]["mention_everyone"], false,
        "an edit recomputes: {up}"
    );
    assert_eq!(up["message"]["mention_roles"], json!([]));

    // manage_messages: delete others' messages, pin
    grant(&[]);
    let theirs = send(&mut a, "general", "alice's")["message"]["id"]
        .as_i64()
        .unwrap();
    let pin = json!({"type":"pin","id":theirs,"on":true});
    assert_eq!(
        answer(&mut b, pin.clone(), "message_update")["code"],
        "forbidden"
    );
    let del = json!({"type":"delete","id":theirs});
    assert_eq!(
        answer(&mut b, del.clone(), "message_delete")["code"],
        "forbidden"
    );
    let pins = s.call("GET", "/api/pins?channel=general", &bob, None);
    assert_eq!(
        ok(&pins, 200, "pins"),
        json!([]),
        "nothing pinned when refused"
    );
    grant(&["manage_messages"]);
    let up = answer(&mut b, pin, "message_update");
    assert_eq!(up["message"]["pinned"], true, "{up}");
    let pins = s.call("GET", "/api/pins?channel=general", &bob, None);
    assert_eq!(ok(&pins, 200, "pins")[0]["id"], theirs);
    assert_eq!(answer(&mut b, del, "message_delete")["id"], theirs);
    // The own message needs nothing more.
    grant(&[]);
    let own = json!({"type":"delete","id":mine});
    assert_eq!(answer(&mut b, own, "message_delete")["id"], mine);

    // manage_channels
    let make = json!({"name":"made","kind":"text"});
    let patch = json!({"topic":"new topic"});
    refused(
        &s.call("POST", "/api/channels", &bob, Some(&make)),
        403,
        "create",
    );
    refused(
        &s.call("PATCH", "/api/channels/general", &bob, Some(&patch)),
        403,
        "patch",
    );
    refused(
        &s.call("DELETE", "/api/channels/lounge", &bob, None),
        403,
        "delete",
    );
    grant(&["manage_channels"]);
    ok(
        &s.call("POST", "/api/channels", &bob, Some(&make)),
        201,
        "create",
    );
    let ch = ok(
        &s.call("PATCH", "/api/channels/made", &bob, Some(&patch)),
        200,
        "patch",
    );
    assert_eq!(ch["topic"], "new topic");
    ok(
        &s.call("DELETE", "/api/channels/made", &bob, None),
        204,
        "delete",
    );

    // manage_roles: roles, member roles, overwrites
    grant(&[]);
    let new_role = json!({"name":"helpers"});
    let ow = json!({"allow":[],"deny":["view_channel"]});
    refused(
        &s.call("POST", "/api/roles", &bob, Some(&new_role)),
        403,
        "role",
    );
    refused(
        &s.call(
            "PUT",
            &format!("/api/members/carol/roles/{role}"),
            &bob,
            None,
        ),
        403,
        "assign",
    );
    refused(
        &s.call("PUT", "/api/channels/general/overwrites/1", &bob, Some(&ow)),
        403,
        "ow",
    );
    grant(&["manage_roles"]);
    let helpers = ok(
        &s.call("POST", "/api/roles", &bob, Some(&new_role)),
        201,
        "role",
    )["id"]
        .as_i64()
        .unwrap();
    ok(
        &s.call(
            "PUT",
            &format!("/api/members/carol/roles/{helpers}"),
            &bob,
            None,
        ),
        204,
        "assign",
    );
    let ow = json!({"allow":["view_channel"],"deny":[]});
    ok(
        &s.call(
            "PUT",
            &format!("/api/channels/general/overwrites/{helpers}"),
            &bob,
            Some(&ow),
        ),
        200,
        "ow",
    );
    ok(
        &s.call(
            "DELETE",
            &format!("/api/channels/general/overwrites/{helpers}"),
            &bob,
            None,
        ),
        204,
        "ow",
    );

    // kick_members, ban_members, moderate_members (on a throwaway member each)
    for (perm, path, body) in [
        ("kick_members", "/api/members/dave/kick", json!({})),
        ("ban_members", "/api/bans", json!({"username":"dave"})),
        (
            "moderate_members",
            "/api/members/dave/timeout",
            json!({"until_ts": now_ms() + 60_000}),
        ),
    ] {
        let dave = if perm == "kick_members" {
            s.register("dave")
        } else {
            String::new()
        };
        let _ = dave;
        grant(&[]);
        refused(&s.call("POST", path, &bob, Some(&body)), 403, perm);
        grant(&[perm]);
        ok(&s.call("POST", path, &bob, Some(&body)), 204, perm);
    }
    grant(&[]);
    refused(&s.call("GET", "/api/bans", &bob, None), 403, "bans");
    grant(&["ban_members"]);
    assert_eq!(
        ok(&s.call("GET", "/api/bans", &bob, None), 200, "bans")[0]["user"]["username"],
        "dave"
    );

    // create_invites, view_audit_log
    grant(&[]);
    refused(&s.call("POST", "/api/invites", &bob, None), 403, "invites");
    refused(&s.call("GET", "/api/audit-log", &bob, None), 403, "audit");
    grant(&["create_invites", "view_audit_log"]);
    ok(&s.call("POST", "/api/invites", &bob, None), 201, "invites");
    let log = audit_actions(&s, &bob);
    for action in [
        "kick",
        "ban",
        "timeout",
        "pin",
        "message_delete",
        "role_create",
        "overwrite_set",
        "channel_update",
    ] {
        assert!(
            log.iter().any(|(a, _, _)| a == action),
            "{action} in {log:?}"
        );
    }

    // connect, speak, stream
    grant(&[]);
    assert_eq!(voice(&s, &bob, "lounge").err(), Some(403), "no connect");
    grant(&["connect"]);
    let (mut av, _) = (voice(&s, &alice, "lounge").unwrap(), ());
    assert_eq!(av.recv().unwrap()["type"], "welcome");
    let mut bv = voice(&s, &bob, "lounge").unwrap();
    assert_eq!(bv.recv().unwrap()["type"], "welcome");
    // Without speak bob is kept muted, whatever he says.
    bv.send(json!({"type":"state","muted":false,"deafened":false}));
    let seen = av.drain_for(Duration::from_millis(1200));
    let states: Vec<&Value> = seen.iter().filter(|f| f["type"] == "peer_state").collect();
    assert!(
        !states.is_empty() && states.iter().all(|f| f["muted"] == true),
        "{seen:?}"
    );
    bv.send(json!({"type":"state","muted":false,"deafened":false,"video":true,"screen":false}));
    assert_eq!(
        bv.recv().unwrap()["code"],
        "forbidden",
        "no stream: no video"
    );
    drop(bv);
    grant(&["connect", "speak", "stream"]);
    let mut bv = voice(&s, &bob, "lounge").unwrap();
    assert_eq!(bv.recv().unwrap()["type"], "welcome");
    bv.send(json!({"type":"state","muted":false,"deafened":false,"video":true,"screen":false}));
    let seen = av.drain_for(Duration::from_millis(1200));
    assert!(
        seen.iter()
            .any(|f| f["type"] == "peer_state" && f["video"] == true && f["muted"] == false),
        "{seen:?}"
    );

    // view_channel
    set_role_perms(&s, &alice, 1, &[]);
    grant(&[]);
    set_role_perms(&s, &alice, role, &[]);
    refused(
        &s.call("GET", "/api/history?channel=general", &bob, None),
        404,
        "no view",
    );
    set_role_perms(&s, &alice, role, &["view_channel"]);
    ok(
        &s.call("GET", "/api/history?channel=general", &bob, None),
        200,
        "view",
    );

    // administrator: everything, whatever the overwrites
    set_role_perms(&s, &alice, role, &["administrator"]);
    let deny = json!({"allow":[],"deny":["view_channel","send_messages"]});
    ok(
        &s.call(
            "PUT",
            &format!("/api/channels/general/overwrites/{role}"),
            &alice,
            Some(&deny),
        ),
        200,
        "ow",
    );
    assert_eq!(
        send(&mut b, "general", "as administrator")["type"],
        "message"
    );
    ok(
        &s.call("GET", "/api/audit-log", &bob, None),
        200,
        "admin audit",
    );
    let _ = carol;
}

#[test]
fn a_private_channel_leaves_no_trace_then_appears_live_and_disappears_live() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let staff = create_role(&s, &alice, "staff", &["manage_messages"]);
    give(&s, &alice, "bob", staff);
    for (name, kind) in [("secret", "text"), ("backroom", "voice")] {
        ok(
            &s.call(
                "POST",
                "/api/channels",
                &alice,
                Some(&json!({"name":name,"kind":kind})),
            ),
            201,
            name,
        );
        let deny = json!({"allow":[],"deny":["view_channel"]});
        ok(
            &s.call(
                "PUT",
                &format!("/api/channels/{name}/overwrites/1"),
                &alice,
                Some(&deny),
            ),
            200,
            "deny",
        );
        let allow = json!({"allow":["view_channel"],"deny":[]});
        ok(
            &s.call(
                "PUT",
                &format!("/api/channels/{name}/overwrites/{staff}"),
                &alice,
                Some(&allow),
            ),
            200,
            "allow",
        );
    }
    let (mut b, bready) = s.ws(&bob);
    let secret = bready["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "secret")
        .expect("bob sees it")
        .clone();
    assert_eq!(secret["private"], true);
    assert!(secret["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("view_channel")));
    let (mut c, cready) = s.ws(&carol);
    let ready_text = cready.to_string();
    assert!(
        !ready_text.contains("secret") && !ready_text.contains("backroom"),
        "{ready_text}"
    );

    // Others act in it: message, edit, reaction, typing, pin, files, voice, delete.
    let m = send(&mut b, "secret", "zanzibar plans")["message"]["id"]
        .as_i64()
        .unwrap();
    b.send(json!({"type":"edit","id":m,"content":"zanzibar plans v2"}));
    b.send(json!({"type":"react","id":m,"emoji":"👍"}));
    b.send(json!({"type":"typing","channel":"secret"}));
    b.send(json!({"type":"pin","id":m,"on":true}));
    let file = ok(&upload(&s, &bob, b"classified"), 201, "upload")["attachment"].clone();
    let with_file = json!({"type":"send","channel":"secret","content":"see file","attachments":[file["id"]],"nonce":"sf"});
    let fm = answer(&mut b, with_file, "message")["message"]["id"]
        .as_i64()
        .unwrap();
    let mut bv = voice(&s, &bob, "backroom").expect("bob joins the private voice channel");
    assert_eq!(bv.recv().unwrap()["type"], "welcome");
    let gone = send(&mut b, "secret", "to delete")["message"]["id"]
        .as_i64()
        .unwrap();
    b.send(json!({"type":"delete","id":gone}));
    // Carol, meanwhile: nothing at all.
    let seen = c.drain_for(Duration::from_millis(1500));
    for f in &seen {
        let t = f.to_string();
        assert!(
            !t.contains("secret") && !t.contains("backroom") && !t.contains("zanzibar"),
            "{t}"
        );
    }
    // And no path gives it away.
    let chans = ok(
        &s.call("GET", "/api/channels", &carol, None),
        200,
        "channels",
    )
    .to_string();
    assert!(
        !chans.contains("secret") && !chans.contains("backroom"),
        "{chans}"
    );
    refused(
        &s.call("GET", "/api/history?channel=secret", &carol, None),
        404,
        "history",
    );
    refused(
        &s.call("GET", "/api/pins?channel=secret", &carol, None),
        404,
        "pins",
    );
    refused(
        &s.call("GET", "/api/search?q=zanzibar&channel=secret", &carol, None),
        404,
        "search in",
    );
    let found = ok(
        &s.call("GET", "/api/search?q=zanzibar", &carol, None),
        200,
        "search",
    );
    assert_eq!(found, json!([]), "search leaves its messages out");
    let found = ok(
        &s.call("GET", "/api/search?q=zanzibar", &bob, None),
        200,
        "search",
    );
    assert_eq!(found.as_array().unwrap().len(), 1, "while bob finds it");
    let url = file["url"].as_str().unwrap();
    refused(&s.call("GET", url, &carol, None), 404, "file");
    refused(&s.call("GET", url, &bob, None), 200, "file for bob");
    assert_eq!(voice(&s, &carol, "backroom").err(), Some(404), "voice");
    let e = send(&mut c, "secret", "let me in");
    assert_eq!(e["code"], "not_found", "{e}");
    let e = answer(
        &mut c,
        json!({"type":"react","id":m,"emoji":"👍"}),
        "reaction",
    );
    assert_eq!(e["code"], "not_found", "{e}");
    assert!(history(&s, &alice, "secret")
        .iter()
        .all(|m| m["content"] != "let me in"));

    // Granted: it appears live, with its history and its voice room.
    give(&s, &alice, "carol", staff);
    let got = c.drain_for(Duration::from_millis(1000));
    let mut created: Vec<&str> = got
        .iter()
        .filter(|f| f["type"] == "channel_create")
        .map(|f| f["channel"]["name"].as_str().unwrap())
        .collect();
    let at = |t: &str| {
        got.iter()
            .position(|f| f["type"] == t || f["channel"]["name"] == t)
    };
    let in_room = got.iter().position(|f| {
        f["type"] == "voice_state" && f["channel"] == "backroom" && f["user"] == "bob"
    });
    assert!(in_room.is_some(), "who is in the voice room: {got:?}");
    assert!(
        at("backroom") < in_room,
        "after its channel_create: {got:?}"
    );
    created.sort();
    assert_eq!(created, ["backroom", "secret"]);
    let h = history(&s, &carol, "secret");
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["pinned"], true);
    refused(&s.call("GET", url, &carol, None), 200, "file once granted");
    let _ = fm;
    // Revoked: it disappears live, and events stop.
    let r = s.call(
        "DELETE",
        &format!("/api/members/carol/roles/{staff}"),
        &alice,
        None,
    );
    ok(&r, 204, "revoke");
    let mut deleted = Vec::new();
    for _ in 0..2 {
        deleted.push(
            c.recv_type("channel_delete")["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    deleted.sort();
    assert_eq!(deleted, ["backroom", "secret"]);
    send(&mut b, "secret", "zanzibar again");
    let seen = c.drain_for(Duration::from_millis(800));
    assert!(
        seen.iter().all(|f| !f.to_string().contains("zanzibar")),
        "{seen:?}"
    );
    // A member in the voice room who loses sight of it is taken out.
    let r = s.call(
        "DELETE",
        &format!("/api/members/bob/roles/{staff}"),
        &alice,
        None,
    );
    ok(&r, 204, "revoke bob");
    let mut out = false;
    for _ in 0..5 {
        match bv.recv() {
            Some(v) if v["type"] == "error" => {
                assert_eq!(v["code"], "forbidden");
                out = true;
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert!(out, "bob is told and removed from the voice room");
}

#[test]
fn hierarchy_nobody_acts_above_themselves_on_the_owner_or_grants_what_they_lack() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let dave = s.register("dave");
    let _carol = s.register("carol");
    let mods = create_role(
        &s,
        &alice,
        "mods",
        &[
            "ban_members",
            "kick_members",
            "manage_roles",
            "moderate_members",
        ],
    );
    // Created after, so placed below mods... then moved above it.
    let seniors = create_role(&s, &alice, "seniors", &["ban_members"]);
    let r = s.call(
        "PATCH",
        &format!("/api/roles/{seniors}"),
        &alice,
        Some(&json!({"position": 2})),
    );
    assert_eq!(ok(&r, 200, "move")["position"], 2);
    give(&s, &alice, "bob", mods);
    give(&s, &alice, "dave", seniors);
    let roles = ok(&s.call("GET", "/api/roles", &bob, None), 200, "roles");
    let names: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["seniors", "mods", "everyone"], "highest first");

    let ban = |who: &str| json!({"username": who, "reason": "test"});
    refused(
        &s.call("POST", "/api/bans", &bob, Some(&ban("alice"))),
        403,
        "the owner",
    );
    refused(
        &s.call("POST", "/api/bans", &bob, Some(&ban("dave"))),
        403,
        "a higher role",
    );
    refused(
        &s.call("POST", "/api/members/alice/kick", &bob, None),
        403,
        "kick owner",
    );
    let t = json!({"until_ts": now_ms() + 60_000});
    refused(
        &s.call("POST", "/api/members/dave/timeout", &bob, Some(&t)),
        403,
        "timeout higher",
    );
    refused(
        &s.call("POST", "/api/bans", &dave, Some(&ban("alice"))),
        403,
        "owner, by anyone",
    );
    // Roles: not above or equal to your own, and no permission you lack.
    let admin = json!({"name":"sneaky","permissions":["administrator"]});
    refused(
        &s.call("POST", "/api/roles", &bob, Some(&admin)),
        403,
        "grant administrator",
    );
    let up = json!({"permissions":["ban_members","kick_members","manage_roles","moderate_members","view_audit_log"]});
    refused(
        &s.call("PATCH", &format!("/api/roles/{mods}"), &bob, Some(&up)),
        403,
        "own role",
    );
    refused(
        &s.call(
            "PATCH",
            &format!("/api/roles/{seniors}"),
            &bob,
            Some(&json!({"name":"x"})),
        ),
        403,
        "higher role",
    );
    refused(
        &s.call(
            "PUT",
            &format!("/api/members/bob/roles/{seniors}"),
            &bob,
            None,
        ),
        403,
        "give self a higher role",
    );
    refused(
        &s.call("DELETE", &format!("/api/roles/{seniors}"), &bob, None),
        403,
        "delete higher",
    );
    let everyone_up = json!({"permissions":["view_channel","ban_members"]});
    ok(
        &s.call("PATCH", "/api/roles/1", &bob, Some(&everyone_up)),
        200,
        "grant what you have, below you",
    );
    let everyone_admin = json!({"permissions":["administrator"]});
    refused(
        &s.call("PATCH", "/api/roles/1", &bob, Some(&everyone_admin)),
        403,
        "what you lack",
    );
    // Nobody, not even the owner, deletes everyone.
    refused(
        &s.call("DELETE", "/api/roles/1", &bob, None),
        400,
        "everyone by bob",
    );
    refused(
        &s.call("DELETE", "/api/roles/1", &alice, None),
        400,
        "everyone by the owner",
    );
    // Below you: fine.
    let low = create_role(&s, &bob, "low", &["kick_members"]);
    give(&s, &bob, "carol", low);
    ok(
        &s.call(
            "POST",
            "/api/members/carol/kick",
            &bob,
            Some(&json!({"reason":"ok"})),
        ),
        204,
        "kick lower",
    );
    ok(
        &s.call("DELETE", &format!("/api/roles/{low}"), &bob, None),
        204,
        "delete lower",
    );
}

#[test]
fn kick_ban_timeout_and_slow_mode_with_real_clients() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let mods = create_role(
        &s,
        &alice,
        "mods",
        &[
            "kick_members",
            "ban_members",
            "moderate_members",
            "manage_messages",
            "view_audit_log",
            "send_messages",
            "view_channel",
        ],
    );
    give(&s, &alice, "bob", mods);
    let (mut a, _) = s.ws(&alice);

    // Kick: every tab of carol's closes with 4003 and the reason; she may log in again.
    let (mut c1, _) = s.ws(&carol);
    let (mut c2, _) = s.ws(&carol);
    let r = s.call(
        "POST",
        "/api/members/carol/kick",
        &bob,
        Some(&json!({"reason":"cool off"})),
    );
    ok(&r, 204, "kick");
    assert_eq!(close_of(&mut c1), Some((4003, "kicked: cool off".into())));
    assert_eq!(close_of(&mut c2), Some((4003, "kicked: cool off".into())));
    refused(
        &s.call("GET", "/api/me", &carol, None),
        401,
        "session revoked",
    );
    let carol = ok(&login(&s, "carol"), 200, "log in again")["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Ban with the last hour of messages deleted, while her socket is open.
    let (mut c, _) = s.ws(&carol);
    let spam = send(&mut c, "general", "spam spam")["message"]["id"]
        .as_i64()
        .unwrap();
    let file = ok(&upload(&s, &carol, b"spam file"), 201, "upload")["attachment"].clone();
    let fm = answer(
        &mut c,
        json!({"type":"send","channel":"general","content":"","attachments":[file["id"]],"nonce":"cf"}),
        "message",
    )["message"]["id"]
        .as_i64()
        .unwrap();
    let r = s.call(
        "POST",
        "/api/bans",
        &bob,
        Some(&json!({"username":"carol","reason":"spam","delete_messages_s":3600})),
    );
    ok(&r, 204, "ban");
    assert_eq!(close_of(&mut c), Some((4003, "banned: spam".into())));
    let mut deleted = Vec::new();
    while deleted.len() < 2 {
        deleted.push(a.recv_type("message_delete")["id"].as_i64().unwrap());
    }
    deleted.sort();
    assert_eq!(deleted, [spam, fm]);
    assert!(history(&s, &alice, "general").is_empty());
    refused(
        &s.call("GET", file["url"].as_str().unwrap(), &alice, None),
        404,
        "her files go too",
    );
    refused(&login(&s, "carol"), 403, "banned login");
    let reg = s.request(
        "POST",
        "/api/register",
        &[],
        Some(&json!({"username":"CAROL","password":"password123"})),
    );
    refused(&reg, 403, "banned name");
    let bans = ok(&s.call("GET", "/api/bans", &bob, None), 200, "bans");
    assert_eq!(bans[0]["user"]["username"], "carol");
    assert_eq!(bans[0]["reason"], "spam");
    ok(
        &s.call("DELETE", "/api/bans/carol", &bob, None),
        204,
        "unban",
    );
    let carol = ok(&login(&s, "carol"), 200, "unbanned")["token"]
        .as_str()
        .unwrap()
        .to_string();

    // Timeout: no send, no react, no voice; everyone hears member_update; lifted early.
    let (mut c, _) = s.ws(&carol);
    let m = send(&mut a, "general", "react to me")["message"]["id"]
        .as_i64()
        .unwrap();
    let until = now_ms() + 60_000;
    let r = s.call(
        "POST",
        "/api/members/carol/timeout",
        &bob,
        Some(&json!({"until_ts":until,"reason":"calm"})),
    );
    ok(&r, 204, "timeout");
    let up = a.recv_type("member_update");
    assert_eq!(up["member"]["user"]["username"], "carol");
    assert_eq!(up["member"]["timeout_until_ts"], until);
    assert_eq!(send(&mut c, "general", "muted?")["code"], "forbidden");
    let e = answer(
        &mut c,
        json!({"type":"react","id":m,"emoji":"👍"}),
        "reaction",
    );
    assert_eq!(e["code"], "forbidden");
    assert_eq!(voice(&s, &carol, "lounge").err(), Some(403));
    let members = ok(&s.call("GET", "/api/members", &carol, None), 200, "members");
    let me = members
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["username"] == "carol")
        .unwrap()
        .clone();
    assert_eq!(me["timeout_until_ts"], until);
    assert!(history(&s, &alice, "general")
        .iter()
        .all(|m| m["content"] != "muted?"));
    let r = s.call(
        "POST",
        "/api/members/carol/timeout",
        &bob,
        Some(&json!({"until_ts":null})),
    );
    ok(&r, 204, "lift");
    assert_eq!(
        a.recv_type("member_update")["member"]["timeout_until_ts"],
        Value::Null
    );
    assert_eq!(send(&mut c, "general", "free again")["type"], "message");

    // Slow mode: once per 2 s for carol, nothing stored when refused; bob is exempt.
    let r = s.call(
        "PATCH",
        "/api/channels/general",
        &alice,
        Some(&json!({"slowmode_s":2})),
    );
    assert_eq!(ok(&r, 200, "slow mode")["slowmode_s"], 2);
    assert_eq!(c.recv_type("channel_update")["channel"]["slowmode_s"], 2);
    assert_eq!(send(&mut c, "general", "slow one")["type"], "message");
    let e = send(&mut c, "general", "slow two");
    assert_eq!(e["code"], "rate_limited");
    let wait = e["retry_after_ms"].as_u64().unwrap();
    assert!(wait > 0 && wait <= 2000, "{e}");
    let (mut b, _) = s.ws(&bob);
    assert_eq!(send(&mut b, "general", "mod one")["type"], "message");
    assert_eq!(send(&mut b, "general", "mod two")["type"], "message");
    assert!(history(&s, &alice, "general")
        .iter()
        .all(|m| m["content"] != "slow two"));
    std::thread::sleep(Duration::from_millis(wait + 50));
    assert_eq!(send(&mut c, "general", "slow three")["type"], "message");

    // Everything is in the audit log with actor and reason.
    let log = audit_actions(&s, &bob);
    for want in [
        ("kick", "carol", "cool off"),
        ("ban", "carol", "spam"),
        ("unban", "carol", ""),
        ("timeout", "carol", "calm"),
        ("timeout_remove", "carol", ""),
        ("channel_update", "#general", ""),
    ] {
        assert!(
            log.iter()
                .any(|(a, t, r)| (a.as_str(), t.as_str(), r.as_str()) == want),
            "{want:?} in {log:?}"
        );
    }
    let raw = s.call("GET", "/api/audit-log?limit=1", &alice, None);
    assert_eq!(ok(&raw, 200, "page")[0]["actor"], "alice");
}

#[test]
fn channel_rename_keeps_history_and_roles_push_live() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let (mut a, _) = s.ws(&alice);
    let (mut b, _) = s.ws(&bob);
    send(&mut a, "general", "before the rename");
    let r = s.call(
        "PATCH",
        "/api/channels/general",
        &alice,
        Some(&json!({"name":"town-square","topic":"hi","position":3,"category":"Chat"})),
    );
    let ch = ok(&r, 200, "rename");
    assert_eq!(
        (ch["name"].clone(), ch["category"].clone()),
        (json!("town-square"), json!("Chat"))
    );
    let up = b.recv_type("channel_update");
    assert_eq!(up["renamed_from"], "general");
    assert_eq!(up["channel"]["name"], "town-square");
    assert_eq!(
        history(&s, &bob, "town-square")[0]["content"],
        "before the rename"
    );
    refused(
        &s.call("GET", "/api/history?channel=general", &bob, None),
        404,
        "old name",
    );
    assert_eq!(send(&mut b, "town-square", "after")["type"], "message");
    // Role changes reach everyone at once.
    let id = create_role(&s, &alice, "gold", &[]);
    assert_eq!(b.recv_type("roles")["roles"][0]["name"], "gold");
    let r = s.call(
        "PATCH",
        &format!("/api/roles/{id}"),
        &alice,
        Some(&json!({"color":"#FFAA00","hoist":true})),
    );
    assert_eq!(ok(&r, 200, "colour")["color"], "#ffaa00");
    assert_eq!(b.recv_type("roles")["roles"][0]["color"], "#ffaa00");
    give(&s, &alice, "bob", id);
    assert_eq!(b.recv_type("member_update")["member"]["roles"], json!([id]));
    let (_, ready) = s.ws(&bob);
    assert_eq!(ready["roles"].as_array().unwrap().len(), 2);
    assert!(ready["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("send_messages")));
    let me = ready["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user"]["username"] == "bob")
        .unwrap()
        .clone();
    assert_eq!(me["roles"], json!([id]));
    let bad = s.call(
        "PATCH",
        &format!("/api/roles/{id}"),
        &alice,
        Some(&json!({"color":"red"})),
    );
    refused(&bad, 400, "bad colour");
    let bad = s.call(
        "POST",
        "/api/roles",
        &alice,
        Some(&json!({"name":"x","permissions":["fly"]})),
    );
    refused(&bad, 400, "unknown permission");
}

fn channel_in<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no #{name} in {list}"))
}

#[test]
fn channel_objects_carry_overwrites_for_role_managers_and_going_private_reaches_every_viewer() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let staff = create_role(&s, &alice, "staff", &[]);
    give(&s, &alice, "bob", staff);
    let staff_ow = json!({"allow":["view_channel"],"deny":["attach_files"]});
    let r = s.call(
        "PUT",
        &format!("/api/channels/general/overwrites/{staff}"),
        &alice,
        Some(&staff_ow),
    );
    ok(&r, 200, "staff overwrite");
    let (mut a, aready) = s.ws(&alice);
    let (mut b, bready) = s.ws(&bob);
    let (mut c, _) = s.ws(&carol);
    // The owner (manage_roles) gets the stored overwrites, in ready and over REST.
    let want = json!([{"role_id": staff, "allow": ["view_channel"], "deny": ["attach_files"]}]);
    assert_eq!(
        channel_in(&aready["channels"], "general")["overwrites"],
        want
    );
    let rest = ok(
        &s.call("GET", "/api/channels", &alice, None),
        200,
        "channels",
    );
    assert_eq!(channel_in(&rest, "general")["overwrites"], want);
    // Without manage_roles there is no such field.
    assert!(channel_in(&bready["channels"], "general")
        .get("overwrites")
        .is_none());

    // #general goes private: alice (owner) and bob (staff allow) keep their access, yet
    // both must hear that it is private now; carol loses it.
    let deny = json!({"allow":[],"deny":["view_channel"]});
    let r = s.call(
        "PUT",
        "/api/channels/general/overwrites/1",
        &alice,
        Some(&deny),
    );
    ok(&r, 200, "everyone deny");
    let up = a.recv_type("channel_update");
    assert_eq!(
        (
            up["channel"]["name"].clone(),
            up["channel"]["private"].clone()
        ),
        (json!("general"), json!(true))
    );
    assert_eq!(
        up["channel"]["overwrites"],
        json!([
            {"role_id": 1, "allow": [], "deny": ["view_channel"]},
            {"role_id": staff, "allow": ["view_channel"], "deny": ["attach_files"]},
        ])
    );
    let up = b.recv_type("channel_update");
    assert_eq!(up["channel"]["private"], true);
    assert!(up["channel"].get("overwrites").is_none(), "{up}");
    assert_eq!(c.recv_type("channel_delete")["name"], "general");

    // And public again: the same for both, carol sees it come back.
    let r = s.call("DELETE", "/api/channels/general/overwrites/1", &alice, None);
    ok(&r, 204, "clear deny");
    assert_eq!(a.recv_type("channel_update")["channel"]["private"], false);
    assert_eq!(b.recv_type("channel_update")["channel"]["private"], false);
    assert_eq!(
        c.recv_type("channel_create")["channel"]["name"],
        json!("general")
    );
}

/// `ready.unread[channel].mentions` as a fresh connection of `token` sees it (0 if absent).
fn mention_count(s: &Server, token: &str, channel: &str) -> i64 {
    let (_, ready) = s.ws(token);
    ready["unread"][channel]["mentions"].as_i64().unwrap_or(0)
}

#[test]
fn group_mentions_count_for_those_who_can_see_and_only_with_mention_everyone() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let carol = s.register("carol");
    let dave = s.register("dave");
    let mods = create_role(&s, &alice, "mods", &[]);
    give(&s, &alice, "carol", mods);
    // #mods-only: only the mods role (and the owner) can see it.
    ok(
        &s.call(
            "POST",
            "/api/channels",
            &alice,
            Some(&json!({"name":"mods-only","kind":"text"})),
        ),
        201,
        "channel",
    );
    for (role, ow) in [
        (1, json!({"allow":[],"deny":["view_channel"]})),
        (mods, json!({"allow":["view_channel"],"deny":[]})),
    ] {
        let r = s.call(
            "PUT",
            &format!("/api/channels/mods-only/overwrites/{role}"),
            &alice,
            Some(&ow),
        );
        ok(&r, 200, "overwrite");
    }
    let (mut a, _) = s.ws(&alice);
    let (mut b, _) = s.ws(&bob);

    // Without mention_everyone: plain text, nobody counted.
    let m = send(&mut b, "general", "@everyone @here @mods look");
    assert_eq!(m["message"]["mention_everyone"], false);
    for t in [&alice, &carol, &dave] {
        assert_eq!(mention_count(&s, t, "general"), 0);
    }

    // The owner's @everyone reaches every member who can see #general, not the author.
    send(&mut a, "general", "@everyone meeting at noon");
    for t in [&bob, &carol, &dave] {
        assert_eq!(mention_count(&s, t, "general"), 1);
    }
    assert_eq!(mention_count(&s, &alice, "general"), 0);

    // In #mods-only it reaches only those who can see it.
    send(&mut a, "mods-only", "@everyone staff only");
    assert_eq!(mention_count(&s, &carol, "mods-only"), 1);
    for t in [&bob, &dave] {
        assert_eq!(mention_count(&s, t, "mods-only"), 0);
    }

    // @role reaches its holders.
    send(&mut a, "general", "@mods please check");
    assert_eq!(mention_count(&s, &carol, "general"), 2);
    assert_eq!(mention_count(&s, &bob, "general"), 1);

    // @here reaches those online: bob has a socket open, dave and carol do not.
    send(&mut a, "general", "@here quick poll");
    assert_eq!(mention_count(&s, &bob, "general"), 2);
    assert_eq!(mention_count(&s, &dave, "general"), 1);
    assert_eq!(mention_count(&s, &carol, "general"), 2);

    // Once given mention_everyone, bob's @everyone counts too.
    let loud = create_role(&s, &alice, "loud", &["mention_everyone"]);
    give(&s, &alice, "bob", loud);
    let _ = b.recv_type("member_update");
    let m = send(&mut b, "general", "@everyone from bob");
    assert_eq!(m["message"]["mention_everyone"], true);
    assert_eq!(mention_count(&s, &dave, "general"), 2);
    assert_eq!(mention_count(&s, &alice, "general"), 1);
}

#[test]
fn a_timeout_that_runs_out_is_pushed_to_everyone_and_gives_sending_back() {
    // Nobody lifts it: the server itself tells every client when it ends, so the member
    // list and the timed-out member's own composer change without a reload or a poll.
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let carol = s.register("carol");
    let (mut a, _) = s.ws(&alice);
    let (mut c, _) = s.ws(&carol);
    let until = now_ms() + 2_000;
    let r = s.call(
        "POST",
        "/api/members/carol/timeout",
        &alice,
        Some(&json!({ "until_ts": until })),
    );
    ok(&r, 204, "timeout");
    assert_eq!(
        a.recv_type("member_update")["member"]["timeout_until_ts"],
        until
    );
    // Carol's own view of #general lost send_messages while it runs.
    let general = loop {
        let u = c.recv_type("channel_update");
        if u["channel"]["name"] == "general" {
            break u["channel"].clone();
        }
    };
    assert!(!general["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("send_messages")));

    // It runs out: everyone hears member_update with no timeout, carol gets her
    // permissions back as channel_update, with no request from anyone.
    let up = a.recv_type("member_update");
    let at = now_ms();
    assert_eq!(up["member"]["user"]["username"], "carol");
    assert_eq!(up["member"]["timeout_until_ts"], Value::Null);
    assert!(at >= until, "not before it ends ({} ms early)", until - at);
    // Well within the margin on an idle machine (a few ms); generous for a loaded one.
    assert!(at < until + 3_000, "pushed {} ms after the end", at - until);
    let general = loop {
        let u = c.recv_type("channel_update");
        if u["channel"]["name"] == "general" {
            break u["channel"].clone();
        }
    };
    assert!(general["permissions"]
        .as_array()
        .unwrap()
        .contains(&json!("send_messages")));
    assert_eq!(send(&mut c, "general", "free again")["type"], "message");
    let members = ok(&s.call("GET", "/api/members", &alice, None), 200, "members");
    assert!(members
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["timeout_until_ts"].is_null()));
}
