//! `import-discord`: DiscordChatExporter JSON exports that the tests write from the format
//! (not copies of real exports) go into a stopped server's DATA_DIR and come out through the
//! real server's API. Also: refused while a server runs, bad files refused whole, a second
//! or overlapping import adds nothing, an import killed midway resumes, export → import
//! round-trips, and `POST /api/admin/merge-account`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{assert_check_db, subcommand, temp_dir, Server};
use serde_json::{json, Value};

fn import(data_dir: &Path, files: &[&Path], extra: &[&str]) -> Output {
    let mut args = vec!["import-discord"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend_from_slice(extra);
    subcommand(data_dir, &args)
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn user(id: &str, name: &str, nickname: &str) -> Value {
    json!({"id": id, "name": name, "discriminator": "0000", "nickname": nickname,
           "color": null, "isBot": false, "roles": [], "avatarUrl": "https://cdn.discordapp.com/embed/avatars/0.png"})
}

/// One message as DiscordChatExporter's JSON writer lays it out.
fn msg(id: &str, ts: &str, author: Value, content: &str) -> Value {
    json!({
        "id": id, "type": "Default", "timestamp": ts, "timestampEdited": null,
        "callEndedTimestamp": null, "isPinned": false, "content": content, "author": author,
        "attachments": [], "embeds": [], "stickers": [], "reactions": [], "mentions": [],
    })
}

fn export_doc(channel_id: &str, name: &str, messages: Vec<Value>) -> Value {
    json!({
        "guild": {"id": "81384788765712384", "name": "Test Guild", "iconUrl": ""},
        "channel": {"id": channel_id, "type": "GuildTextChat", "categoryId": "1", "category": "Text",
                    "name": name, "topic": "imported topic"},
        "dateRange": {"after": null, "before": null},
        "exportedAt": "2024-05-01T10:00:00+00:00",
        "messages": messages.clone(),
        "messageCount": messages.len(),
    })
}

fn write_json(dir: &Path, name: &str, doc: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
    p
}

/// A server with its admin account, stopped so that imports may run.
fn stopped_server() -> (Server, String) {
    let mut s = Server::start(&[]);
    let admin = s.register("admin");
    s.stop();
    (s, admin)
}

fn history(s: &Server, token: &str, channel: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let r = s.call(
            "GET",
            &format!("/api/history?channel={channel}&limit=200&after={after}"),
            token,
            None,
        );
        assert_eq!(r.status, 200, "history: {}", r.text());
        let page = r.json().as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        after = page.last().unwrap()["id"].as_i64().unwrap();
        out.extend(page);
    }
}

fn count(data_dir: &Path, sql: &str) -> i64 {
    let c = rusqlite::Connection::open(data_dir.join("chat.db")).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The channel fixture: replies, reactions by several users, an edit, a pin, a mention,
/// Unicode and emoji, a stored and a missing attachment, a custom emoji; written out of
/// timestamp order on purpose.
fn general_fixture(dir: &Path, file_bytes: &[u8]) -> PathBuf {
    let john = user("100000000000000001", "Jöhn Doe", "Johnny");
    let bob = user("100000000000000002", "bob", "bob");
    let mut carol = user("100000000000000003", "carol", "");
    carol["avatarUrl"] = json!("general.json_Files/carol-avatar.png");
    std::fs::create_dir_all(dir.join("general.json_Files")).unwrap();
    let mut png = Vec::new();
    image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([x as u8 * 16, y as u8 * 16, 99]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    std::fs::write(dir.join("general.json_Files/carol-avatar.png"), png).unwrap();
    std::fs::write(dir.join("general.json_Files/notes-1A2B.bin"), file_bytes).unwrap();
    let mut m1 = msg(
        "200000000000000001",
        "2021-03-04T05:06:07.123+00:00",
        john.clone(),
        "héllo wörld 👋🏽 — naïve café",
    );
    m1["timestampEdited"] = json!("2021-03-04T07:06:07.5+02:00");
    m1["isPinned"] = json!(true);
    m1["reactions"] = json!([
        {"emoji": {"id": null, "name": "👍", "code": "thumbsup", "isAnimated": false, "imageUrl": ""},
         "count": 2, "users": [bob.clone(), carol.clone()]},
        {"emoji": {"id": "555", "name": "pepe", "code": "pepe", "isAnimated": false, "imageUrl": ""},
         "count": 1, "users": [john.clone()]},
    ]);
    let mut m2 = msg(
        "200000000000000002",
        "2021-03-04T05:10:00+00:00",
        bob.clone(),
        "@Jöhn Doe replying to you",
    );
    m2["type"] = json!("Reply");
    m2["reference"] =
        json!({"messageId": "200000000000000001", "channelId": "300", "guildId": "1"});
    m2["mentions"] = json!([john.clone()]);
    let mut m3 = msg(
        "200000000000000003",
        "2021-03-05T00:00:00Z",
        carol.clone(),
        "files",
    );
    m3["attachments"] = json!([
        {"id": "9001", "url": "general.json_Files/notes-1A2B.bin", "fileName": "notes.bin", "fileSizeBytes": file_bytes.len()},
        {"id": "9002", "url": "general.json_Files/gone-3C4D.png", "fileName": "gone.png", "fileSizeBytes": 10},
    ]);
    // Out of order: m3, m1, m2.
    write_json(
        dir,
        "general.json",
        &export_doc("300000000000000001", "💬 General Chat", vec![m3, m1, m2]),
    )
}

#[test]
fn import_brings_channels_authors_replies_reactions_edits_pins_and_files() {
    let (mut s, admin) = stopped_server();
    let dir = temp_dir("export-in");
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let general = general_fixture(&dir, &bytes);

    let out = ok(&import(&s.data_dir, &[&general], &[]));
    assert!(out.contains("3 messages imported"), "{out}");
    assert!(out.contains("1 files missing"), "{out}");

    s.restart(false);
    let chans = s.call("GET", "/api/channels", &admin, None).json();
    let chan = chans
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "general-chat")
        .unwrap_or_else(|| panic!("channel made valid: {chans}"));
    assert_eq!(chan["topic"], "imported topic");
    let h = history(&s, &admin, "general-chat");
    assert_eq!(h.len(), 3);
    // Timestamp order, with ids increasing.
    let ts: Vec<i64> = h.iter().map(|m| m["ts"].as_i64().unwrap()).collect();
    assert_eq!(
        ts,
        vec![1_614_834_367_123, 1_614_834_600_000, 1_614_902_400_000]
    );
    assert_eq!(h[0]["content"], "héllo wörld 👋🏽 — naïve café");
    assert_eq!(h[0]["author"], "J_hn_Doe");
    // A message pinned on Discord is pinned here ("Run a community" pins).
    assert_eq!(h[0]["pinned"], true, "{}", h[0]);
    assert_eq!(h[1]["pinned"], false);
    let pins = s
        .call("GET", "/api/pins?channel=general-chat", &admin, None)
        .json();
    assert_eq!(pins.as_array().map(|p| p.len()), Some(1), "{pins}");
    assert_eq!(pins[0]["id"], h[0]["id"]);
    assert_eq!(h[0]["edited_ts"], 1_614_834_367_500i64);
    assert_eq!(h[0]["reactions"]["👍"], json!(["bob", "carol"]));
    assert_eq!(h[0]["reactions"][":pepe:"], json!(["J_hn_Doe"]));
    assert_eq!(h[1]["reply_to"], h[0]["id"]);
    assert_eq!(h[1]["content"], "@Jöhn Doe replying to you");
    assert_eq!(h[2]["author"], "carol");
    assert!(h[2]["content"]
        .as_str()
        .unwrap()
        .contains("[file not imported (not in the export): gone.png]"));
    let att = &h[2]["attachments"];
    assert_eq!(att.as_array().unwrap().len(), 1, "{att}");
    assert_eq!(att[0]["filename"], "notes.bin");
    let r = s.call("GET", att[0]["url"].as_str().unwrap(), &admin, None);
    assert_eq!(r.status, 200);
    assert!(r.body == bytes, "attachment byte-identical");

    // Authors are accounts without a password: listed, but nobody can log in as them.
    let users = s.call("GET", "/api/users", &admin, None).json();
    for name in ["J_hn_Doe", "bob", "carol"] {
        assert!(
            users
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u["username"] == name),
            "{name} in {users}"
        );
        for pw in ["", "password123"] {
            let r = s.request(
                "POST",
                "/api/login",
                &[],
                Some(&json!({"username": name, "password": pw})),
            );
            assert!(r.status == 401 || r.status == 400, "{name}: {}", r.status);
        }
    }
    let avatar = |users: &Value, name: &str| {
        users
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["username"] == name)
            .unwrap()["avatar_url"]
            .clone()
    };
    let carol_avatar = avatar(&users, "carol");
    let r = s.call(
        "GET",
        carol_avatar.as_str().expect("avatar imported"),
        &admin,
        None,
    );
    assert_eq!(r.status, 200);
    assert!(
        avatar(&users, "bob").is_null(),
        "a remote avatar is not fetched"
    );
    assert_eq!(
        count(
            &s.data_dir,
            "SELECT COUNT(*) FROM discord_users WHERE nickname = 'Johnny'"
        ),
        1
    );
    assert_eq!(
        count(
            &s.data_dir,
            "SELECT COUNT(*) FROM discord_messages WHERE discord_pinned = 1"
        ),
        1
    );

    // Refused while the server runs, and nothing changes.
    let before = count(&s.data_dir, "SELECT COUNT(*) FROM messages");
    let r = import(&s.data_dir, &[&general], &[]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("in use by another mini-discord process"),
        "{err}"
    );
    assert_eq!(count(&s.data_dir, "SELECT COUNT(*) FROM messages"), before);

    // A second run adds nothing; an overlapping export of the same channel adds only what
    // is new, to the same channel.
    s.stop();
    let out = ok(&import(&s.data_dir, &[&general], &[]));
    assert!(
        out.contains("0 messages imported, 3 already there"),
        "{out}"
    );
    let later = msg(
        "200000000000000009",
        "2021-03-06T00:00:00Z",
        user("100000000000000002", "bob", "bob"),
        "new in the second export",
    );
    let overlap = write_json(
        &dir,
        "general-later.json",
        &export_doc(
            "300000000000000001",
            "general chat",
            vec![
                msg(
                    "200000000000000003",
                    "2021-03-05T00:00:00Z",
                    user("100000000000000003", "carol", ""),
                    "files",
                ),
                later,
            ],
        ),
    );
    let out = ok(&import(&s.data_dir, &[&overlap], &[]));
    assert!(
        out.contains("1 messages imported, 1 already there"),
        "{out}"
    );
    s.restart(false);
    let h = history(&s, &admin, "general-chat");
    assert_eq!(h.len(), 4);
    assert_eq!(h[3]["content"], "new in the second export");
    assert_eq!(
        h[3]["author"], "bob",
        "the same Discord user is the same account"
    );
    assert_eq!(
        count(
            &s.data_dir,
            "SELECT COUNT(*) FROM channels WHERE name LIKE 'general-chat%'"
        ),
        1
    );
}

#[test]
fn a_bad_export_is_refused_with_the_file_and_place_and_nothing_is_imported() {
    let (s, _admin) = stopped_server();
    let dir = temp_dir("bad-exports");
    let good = write_json(
        &dir,
        "good.json",
        &export_doc(
            "300000000000000005",
            "good",
            vec![msg(
                "1",
                "2021-01-01T00:00:00Z",
                user("7", "al", "al"),
                "fine",
            )],
        ),
    );
    let before = count(&s.data_dir, "SELECT COUNT(*) FROM messages");
    let fine = msg("2", "2021-01-01T00:00:00Z", user("7", "al", "al"), "fine");
    let mut no_id = fine.clone();
    no_id.as_object_mut().unwrap().remove("id");
    let mut bad_ts = fine.clone();
    bad_ts["timestamp"] = json!("last tuesday");
    let mut bad_edit = fine.clone();
    bad_edit["timestampEdited"] = json!("2021-02-30T00:00:00Z");
    let truncated = {
        let text =
            serde_json::to_string_pretty(&export_doc("9", "x", vec![fine.clone(), fine.clone()]))
                .unwrap();
        text[..text.len() - 60].to_string()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "no-id.json",
            serde_json::to_string_pretty(&export_doc("9", "x", vec![fine.clone(), no_id])).unwrap(),
            "messages[1]: missing field `id`",
        ),
        (
            "bad-ts.json",
            serde_json::to_string_pretty(&export_doc("9", "x", vec![fine.clone(), bad_ts]))
                .unwrap(),
            "messages[1]: timestamp \"last tuesday\" is not an ISO 8601 date",
        ),
        (
            "bad-edit.json",
            serde_json::to_string_pretty(&export_doc("9", "x", vec![bad_edit])).unwrap(),
            "messages[0]: timestampEdited",
        ),
        ("truncated.json", truncated, "EOF while parsing"),
        (
            "not-json.json",
            "{\"guild\": {\"id\": \"1\"}, oops".into(),
            "line 1 column",
        ),
        (
            "no-messages.json",
            json!({"guild": {}, "channel": {"id": "9", "name": "x"}}).to_string(),
            "no \"messages\" array",
        ),
    ];
    for (name, text, want) in cases {
        let bad = dir.join(name);
        std::fs::write(&bad, text).unwrap();
        let r = import(&s.data_dir, &[&good, &bad], &[]);
        assert!(!r.status.success(), "{name} refused");
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
        if name != "no-messages.json" {
            assert!(
                err.contains("line ") && err.contains("column "),
                "{name}: {err}"
            );
        }
        assert_eq!(
            count(&s.data_dir, "SELECT COUNT(*) FROM messages"),
            before,
            "{name}: nothing imported, not even the good file"
        );
        std::fs::remove_file(&bad).unwrap();
    }
    let r = import(&s.data_dir, &[&dir.join("missing.json")], &[]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("missing.json"));
}

#[test]
fn an_import_killed_midway_resumes_and_adds_nothing_twice() {
    let (s, _admin) = stopped_server();
    let dir = temp_dir("big-export");
    let authors: Vec<Value> = (0..20)
        .map(|i| user(&format!("{}", 5000 + i), &format!("user{i}"), ""))
        .collect();
    const N: usize = 40_000;
    let messages: Vec<Value> = (0..N)
        .map(|i| {
            msg(
                &format!("{}", 1_000_000 + i),
                &format!(
                    "2022-01-01T00:{:02}:{:02}.{:03}Z",
                    i / 60_000 % 60,
                    i / 1000 % 60,
                    i % 1000
                ),
                authors[i % 20].clone(),
                &format!("message number {i}"),
            )
        })
        .collect();
    let file = write_json(&dir, "big.json", &export_doc("42", "big", messages));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mini-discord"))
        .args(["import-discord", file.to_str().unwrap()])
        .env_clear()
        .env("DATA_DIR", &s.data_dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some batches are committed, then SIGKILL it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = rusqlite::Connection::open(s.data_dir.join("chat.db"))
            .and_then(|c| {
                c.query_row("SELECT COUNT(*) FROM discord_messages", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
            .unwrap_or(0);
        if n > 0 || Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let partial = count(&s.data_dir, "SELECT COUNT(*) FROM discord_messages");
    assert!(
        partial > 0 && partial < N as i64,
        "killed midway: {partial} of {N} committed"
    );

    let out = ok(&import(&s.data_dir, &[&file], &[]));
    assert!(out.contains(&format!("{partial} already there")), "{out}");
    assert_eq!(
        count(&s.data_dir, "SELECT COUNT(*) FROM discord_messages"),
        N as i64
    );
    assert_eq!(
        count(
            &s.data_dir,
            "SELECT COUNT(*) FROM messages m JOIN channels c ON c.id = m.channel_id WHERE c.name = 'big'"
        ),
        N as i64
    );
    assert_eq!(
        count(
            &s.data_dir,
            "SELECT COUNT(DISTINCT content) FROM messages WHERE content LIKE 'message number %'"
        ),
        N as i64
    );
    assert_eq!(
        count(
            &s.data_dir,
            "SELECT COUNT(*) FROM users WHERE password_hash = ''"
        ),
        20
    );
    assert_check_db(&s.data_dir.join("chat.db"));
}

#[test]
fn export_then_import_into_a_fresh_server_round_trips() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let bytes: Vec<u8> = (0..40_000u32).map(|i| (i % 241) as u8).collect();
    let mut raw = format!(
        "POST /api/attachments?filename=data.bin HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {alice}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        bytes.len()
    )
    .into_bytes();
    raw.extend_from_slice(&bytes);
    let up = s.raw(&raw);
    assert_eq!(up.status, 201, "{}", up.text());
    let file_id = up.json()["attachment"]["id"].clone();
    let (mut a, _) = s.ws(&alice);
    a.send(json!({"type":"send","channel":"general","content":"first ✨","attachments":[file_id]}));
    let first = a.recv_type("message")["message"]["id"].as_i64().unwrap();
    let (mut b, _) = s.ws(&bob);
    b.send(json!({"type":"send","channel":"general","content":"reply","reply_to":first}));
    b.recv_type("message");
    b.send(json!({"type":"react","id":first,"emoji":"🎉"}));
    b.recv_type("reaction");
    a.send(json!({"type":"edit","id":first,"content":"first ✨ (edited)"}));
    a.recv_type("message_update");
    let original = history(&s, &alice, "general");

    let out = temp_dir("roundtrip-export");
    ok(&subcommand(&s.data_dir, &["export", out.to_str().unwrap()]));

    let (mut fresh, owner) = stopped_server();
    ok(&import(&fresh.data_dir, &[&out], &[]));
    fresh.restart(false);
    let chans = fresh.call("GET", "/api/channels", &owner, None).json();
    let imported_general = chans
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .find(|n| n.starts_with("general-"))
        .unwrap_or_else(|| panic!("a new channel for the import: {chans}"));
    let got = history(&fresh, &owner, &imported_general);
    assert_eq!(got.len(), original.len());
    for (o, g) in original.iter().zip(&got) {
        for field in ["author", "content", "ts", "edited_ts", "reactions"] {
            assert_eq!(o[field], g[field], "{field}");
        }
    }
    assert_eq!(got[1]["reply_to"], got[0]["id"]);
    let att = &got[0]["attachments"][0];
    assert_eq!(att["filename"], "data.bin");
    let r = fresh.call("GET", att["url"].as_str().unwrap(), &owner, None);
    assert!(
        r.status == 200 && r.body == bytes,
        "the file came along, byte-identical"
    );
}

#[test]
fn a_second_server_is_refused_while_one_holds_the_data_dir() {
    let s = Server::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_mini-discord"))
        .env_clear()
        .env("DATA_DIR", &s.data_dir)
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is in use by another mini-discord process (the server, pid"),
        "{err}"
    );
    // The first one is unharmed.
    assert_eq!(s.request("GET", "/healthz", &[], None).status, 200);
}

#[test]
fn merge_account_hands_an_imported_authors_history_to_a_real_account() {
    let (mut s, admin) = stopped_server();
    let dir = temp_dir("merge-export");
    let general = general_fixture(&dir, b"some bytes");
    ok(&import(&s.data_dir, &[&general], &[]));
    s.restart(false);
    let john = s.register("john");

    let merge = |token: &str, from: &str, into: &str| {
        s.call(
            "POST",
            "/api/admin/merge-account",
            token,
            Some(&json!({"from": from, "into": into})),
        )
    };
    assert_eq!(merge(&john, "J_hn_Doe", "john").status, 403, "owner only");
    let r = merge(&admin, "john", "admin");
    assert_eq!(
        r.status,
        409,
        "a from with a password is refused: {}",
        r.text()
    );
    assert_eq!(merge(&admin, "nobody", "john").status, 404);
    assert_eq!(merge(&admin, "J_hn_Doe", "nobody").status, 404);
    assert_eq!(merge(&admin, "bob", "bob").status, 400);

    // john takes J_hn_Doe's message and its :pepe: reaction, and an open page hears of it
    // (one `user_merge`, so it can show the moved messages under john without a reload).
    let (mut page, _) = s.ws(&john);
    let r = merge(&admin, "j_hn_doe", "john");
    assert_eq!(r.status, 200, "{}", r.text());
    let ev = page.recv_type("user_merge");
    assert_eq!(ev["from"], "J_hn_Doe");
    assert_eq!(ev["into"]["username"], "john");
    assert_eq!(
        r.json(),
        json!({"from": "J_hn_Doe", "into": "john", "messages": 1, "reactions": 1})
    );
    let h = history(&s, &admin, "general-chat");
    assert_eq!(h[0]["author"], "john");
    assert_eq!(h[0]["reactions"][":pepe:"], json!(["john"]));
    let users = s.call("GET", "/api/users", &admin, None).json();
    assert!(
        !users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["username"] == "J_hn_Doe"),
        "the imported account is gone: {users}"
    );
    let log = s.log_text();
    assert!(
        log.contains("merge-account by \"admin\"")
            && log.contains("\"J_hn_Doe\"")
            && log.contains("merged into \"john\""),
        "audit line: {log}"
    );

    // Merging a passwordless account into another passwordless one, with an overlapping
    // reaction: bob and carol both reacted 👍 on the same message; one reaction stays.
    let r = merge(&admin, "carol", "bob");
    assert_eq!(r.status, 200, "{}", r.text());
    let h = history(&s, &admin, "general-chat");
    assert_eq!(h[0]["reactions"]["👍"], json!(["bob"]));
    assert_eq!(h[2]["author"], "bob");
    let users = s.call("GET", "/api/users", &admin, None).json();
    let bob = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap();
    assert!(
        bob["avatar_url"].is_string(),
        "bob had none, so takes carol's: {bob}"
    );

    // A later import of the same Discord user goes to the account it was merged into.
    s.stop();
    let later = write_json(
        &dir,
        "later.json",
        &export_doc(
            "300000000000000001",
            "general chat",
            vec![msg(
                "200000000000000077",
                "2021-04-01T00:00:00Z",
                user("100000000000000001", "Jöhn Doe", "Johnny"),
                "after the merge",
            )],
        ),
    );
    let out = ok(&import(&s.data_dir, &[&later], &[]));
    assert!(out.contains("0 accounts created"), "{out}");
    s.restart(false);
    let h = history(&s, &admin, "general-chat");
    assert_eq!(h.last().unwrap()["author"], "john");
}

#[test]
fn progress_shows_on_a_terminal_and_not_in_a_pipe() {
    let (s, _admin) = stopped_server();
    let dir = temp_dir("progress");
    let messages: Vec<Value> = (0..8_000)
        .map(|i| {
            msg(
                &format!("{}", 7_000_000 + i),
                &format!("2023-01-01T00:{:02}:{:02}Z", i / 60 % 60, i % 60),
                user("77", "talker", ""),
                &format!("m {i}"),
            )
        })
        .collect();
    let file = write_json(&dir, "p.json", &export_doc("4242", "progress", messages));
    // `script` (util-linux) gives the import a terminal.
    let cmd = format!(
        "{} import-discord {}",
        env!("CARGO_BIN_EXE_mini-discord"),
        file.display()
    );
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env_clear()
        .env("DATA_DIR", &s.data_dir)
        .output()
        .expect("run script(1)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("importing ") && text.contains("/8000 messages, ") && text.contains("/s"),
        "a progress bar with messages/s: {text:?}"
    );
    // Not a terminal: no progress, just the plain lines.
    let again = import(&s.data_dir, &[&file], &[]);
    assert!(again.status.success());
    assert!(
        again.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout).lines().count(), 2);
}

#[test]
fn media_resolves_relative_urls_against_the_given_folder() {
    let (s, _admin) = stopped_server();
    let media = temp_dir("media-here");
    let elsewhere = temp_dir("json-elsewhere");
    let json = general_fixture(&media, b"the bytes");
    let moved = elsewhere.join("general.json");
    std::fs::rename(&json, &moved).unwrap();
    let out = ok(&import(
        &s.data_dir,
        &[&moved],
        &["--media", media.to_str().unwrap()],
    ));
    assert!(out.contains("2 files stored, 1 files missing"), "{out}");
    let stored: i64 = count(
        &s.data_dir,
        "SELECT COUNT(*) FROM attachments WHERE filename = 'notes.bin' AND message_id IS NOT NULL",
    );
    assert_eq!(stored, 1);
    let r = import(&s.data_dir, &[&moved], &["--media"]);
    assert_eq!(r.status.code(), Some(2), "--media needs a folder");
}
