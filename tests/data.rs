//! "Own your data": `backup` against a live server while clients send, `restore` into a new
//! DATA_DIR, and restore's refusals (non-empty dir, damaged archive). Real binary, real
//! WebSocket clients.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_check_db, subcommand, temp_dir, Server};
use serde_json::json;

fn upload(s: &Server, token: &str, bytes: &[u8]) -> serde_json::Value {
    let mut raw = format!(
        "POST /api/attachments?filename=blob.bin HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        s.addr,
        bytes.len()
    )
    .into_bytes();
    raw.extend_from_slice(bytes);
    let r = s.raw(&raw);
    assert_eq!(r.status, 201, "upload: {}", r.text());
    r.json()["attachment"].clone()
}

#[test]
fn backup_of_a_live_server_restores_every_acknowledged_message_and_file() {
    let s = Server::start(&[("SEND_RATE", "100000")]);
    let alice = s.register("alice");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
    let file = upload(&s, &alice, &data);
    let (mut a, _) = s.ws(&alice);
    a.send(
        json!({"type":"send","channel":"general","content":"with file","attachments":[file["id"]]}),
    );
    let mut acked = vec![a.recv_type("message")["message"]["id"].as_i64().unwrap()];
    for i in 0..30 {
        a.send(json!({"type":"send","channel":"general","content":format!("before {i}")}));
        acked.push(a.recv_type("message")["message"]["id"].as_i64().unwrap());
    }

    // Another client keeps sending while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let bob = s.register("bob");
    let (mut b, _) = s.ws(&bob);
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) && n < 2000 {
                b.send(json!({"type":"send","channel":"general","content":format!("during {n}")}));
                b.recv_type("message");
                n += 1;
            }
            n
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let out_dir = temp_dir("backup-out");
    let archive = out_dir.join("backup.tar");
    let r = subcommand(&s.data_dir, &["backup", archive.to_str().unwrap()]);
    stop.store(true, Ordering::SeqCst);
    let during = busy.join().unwrap();
    assert!(
        r.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(during > 0, "messages were sent during the backup");
    assert!(archive.is_file() && !out_dir.join("backup.tar.partial").exists());
    let holds = std::fs::read_dir(&s.data_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("backup.hold"))
        .count();
    assert_eq!(holds, 0, "hold released");

    let restored = temp_dir("restored");
    let r = subcommand(&restored, &["restore", archive.to_str().unwrap()]);
    assert!(
        r.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_check_db(&restored.join("chat.db"));

    let s2 = Server::start_in(&restored, "127.0.0.1:0", &[], false);
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let page = s2
            .call(
                "GET",
                &format!("/api/history?channel=general&limit=200&after={after}"),
                &alice,
                None,
            )
            .json();
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap()["id"].as_i64().unwrap();
        ids.extend(page.iter().map(|m| m["id"].as_i64().unwrap()));
    }
    for id in &acked {
        assert!(
            ids.contains(id),
            "message {id} acknowledged before the backup is restored"
        );
    }
    let r = s2.call("GET", file["url"].as_str().unwrap(), &alice, None);
    assert_eq!(r.status, 200);
    assert!(r.body == data, "file byte-identical after restore");

    // Restore refuses a non-empty directory, and leaves it as it was.
    let r = subcommand(&restored, &["restore", archive.to_str().unwrap()]);
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("not empty"));
}

#[test]
fn restore_refuses_a_damaged_or_unfinished_archive_and_leaves_nothing() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    upload(&s, &alice, &data);
    let out_dir = temp_dir("backup-bad");
    let archive = out_dir.join("b.tar");
    let r = subcommand(&s.data_dir, &["backup", archive.to_str().unwrap()]);
    assert!(
        r.status.success(),
        "backup: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let mut bytes = std::fs::read(&archive).unwrap();

    // Flip one byte inside the blob's content (past the tar header that precedes it).
    let pos = bytes
        .windows(data.len().min(64))
        .position(|w| w == &data[..64])
        .unwrap();
    bytes[pos + 1000] ^= 0xff;
    let bad = out_dir.join("bad.tar");
    std::fs::write(&bad, &bytes).unwrap();
    let target = temp_dir("restore-bad");
    let r = subcommand(&target, &["restore", bad.to_str().unwrap()]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "nothing left behind"
    );

    // A truncated archive (a killed copy) has no manifest: refused too.
    let cut = out_dir.join("cut.tar");
    std::fs::write(&cut, &std::fs::read(&archive).unwrap()[..20_000]).unwrap();
    let r = subcommand(&target, &["restore", cut.to_str().unwrap()]);
    assert!(!r.status.success());
    assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
}

#[test]
fn deleting_a_message_keeps_its_bytes_while_a_backup_holds_the_data_dir() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let (mut a, _) = s.ws(&alice);
    let send_file = |a: &mut common::WsClient, seed: u8| {
        let data: Vec<u8> = (0..10_000u32)
            .map(|i| (i as u8).wrapping_mul(seed))
            .collect();
        let f = upload(&s, &alice, &data);
        a.send(json!({"type":"send","channel":"general","content":"f","attachments":[f["id"]]}));
        let id = a.recv_type("message")["message"]["id"].as_i64().unwrap();
        let hash = {
            use sha2::Digest;
            let h = sha2::Sha256::digest(&data);
            h.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let path = s.data_dir.join("files/blobs").join(&hash[..2]).join(&hash);
        assert!(path.is_file(), "blob stored at {}", path.display());
        (id, path)
    };
    let (held_id, held_path) = send_file(&mut a, 3);
    let (free_id, free_path) = send_file(&mut a, 5);

    std::fs::write(s.data_dir.join("backup.hold"), "test").unwrap();
    a.send(json!({"type":"delete","id":held_id}));
    a.recv_type("message_delete");
    assert!(held_path.is_file(), "bytes kept while the hold is there");

    std::fs::remove_file(s.data_dir.join("backup.hold")).unwrap();
    a.send(json!({"type":"delete","id":free_id}));
    a.recv_type("message_delete");
    assert!(
        !free_path.exists(),
        "without a hold, deletion removes the bytes"
    );
}

#[test]
fn scheduled_backups_run_and_keep_only_the_newest() {
    let dir = temp_dir("scheduled");
    let dir_s = dir.to_str().unwrap().to_string();
    // 0.0003 h is about a second.
    let s = Server::start(&[
        ("BACKUP_DIR", &dir_s),
        ("BACKUP_EVERY_H", "0.0003"),
        ("BACKUP_KEEP", "2"),
    ]);
    s.register("alice");
    let finished = |d: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("backup-") && n.ends_with(".tar"))
            .collect();
        v.sort();
        v
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 4 && std::time::Instant::now() < deadline {
        let now = finished(&dir);
        // Between a new backup's rename and the rotation there may briefly be one extra.
        assert!(now.len() <= 3, "BACKUP_KEEP=2 honoured: {now:?}");
        seen.extend(now);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(seen.len() >= 4, "backups keep coming: {seen:?}");
    let newest = dir.join(finished(&dir).last().unwrap());
    let target = temp_dir("scheduled-restore");
    let r = subcommand(&target, &["restore", newest.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn export_writes_discord_chat_exporter_json_with_files_alongside() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    let data: Vec<u8> = (0..5_000u32).map(|i| (i % 13) as u8).collect();
    let f = upload(&s, &alice, &data);
    let (mut a, _) = s.ws(&alice);
    a.send(json!({"type":"send","channel":"general","content":"hello","attachments":[f["id"]]}));
    let first = a.recv_type("message")["message"]["id"].as_i64().unwrap();
    let (mut b, _) = s.ws(&bob);
    b.send(json!({"type":"send","channel":"general","content":"hi back","reply_to":first}));
    b.recv_type("message");
    b.send(json!({"type":"react","id":first,"emoji":"👍"}));
    b.recv_type("reaction");

    let out = temp_dir("export");
    let r = subcommand(
        &s.data_dir,
        &["export", out.to_str().unwrap(), "--channel", "general"],
    );
    assert!(
        r.status.success(),
        "export: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("general.json")).unwrap()).unwrap();
    assert_eq!(doc["channel"]["name"], "general");
    assert_eq!(doc["channel"]["type"], "GuildTextChat");
    assert!(doc["guild"]["name"].is_string() && doc["exportedAt"].is_string());
    assert_eq!(doc["messageCount"], 2);
    let m = &doc["messages"];
    assert_eq!(m[0]["content"], "hello");
    assert_eq!(m[0]["type"], "Default");
    assert_eq!(m[0]["author"]["name"], "alice");
    assert!(m[0]["timestamp"].as_str().unwrap().ends_with("+00:00"));
    assert!(m[0]["timestampEdited"].is_null());
    assert_eq!(m[0]["reactions"][0]["emoji"]["name"], "👍");
    assert_eq!(m[0]["reactions"][0]["count"], 1);
    assert_eq!(m[0]["reactions"][0]["users"][0]["name"], "bob");
    assert_eq!(m[1]["type"], "Reply");
    assert_eq!(m[1]["reference"]["messageId"], first.to_string());
    let att = &m[0]["attachments"][0];
    assert_eq!(att["fileName"], "blob.bin");
    assert_eq!(att["fileSizeBytes"], data.len());
    let copied = std::fs::read(out.join(att["url"].as_str().unwrap())).unwrap();
    assert!(
        copied == data,
        "attachment copied alongside, byte-identical"
    );

    let r = subcommand(
        &s.data_dir,
        &["export", out.to_str().unwrap(), "--channel", "nope"],
    );
    assert!(!r.status.success());
    assert_eq!(String::from_utf8_lossy(&r.stderr).lines().count(), 1);
}

#[test]
fn admin_settings_show_the_backup_schedule_and_its_last_result() {
    let dir = temp_dir("sched-status");
    let dir_s = dir.to_str().unwrap().to_string();
    let s = Server::start(&[("BACKUP_DIR", &dir_s), ("BACKUP_EVERY_H", "0.0003")]);
    let alice = s.register("alice");
    let bob = s.register("bob");
    assert_eq!(s.call("GET", "/api/admin/backups", &bob, None).status, 403);
    assert_eq!(
        s.request("GET", "/api/admin/backups", &[], None).status,
        401
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let r = s.call("GET", "/api/admin/backups", &alice, None);
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert_eq!(v["dir"], dir_s.as_str());
        assert_eq!(v["keep"], 7);
        assert!((v["every_h"].as_f64().unwrap() - 0.0003).abs() < 1e-9);
        assert!(v["next_ts"].as_i64().unwrap() > 0, "{v}");
        if !v["last"].is_null() || std::time::Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let last = &status["last"];
    let file = dir.join(last["file"].as_str().expect("a backup was taken"));
    assert!(last["file"].as_str().unwrap().starts_with("backup-"));
    assert_eq!(
        last["size"].as_u64().unwrap(),
        std::fs::metadata(&file).unwrap().len()
    );
    assert!(status["last_error"].is_null());
    assert!(status["count"].as_u64().unwrap() >= 1);

    // A BACKUP_DIR that cannot be created: the failure is shown.
    let blocker = temp_dir("sched-blocked").join("a-file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let bad = blocker.join("backups");
    let s2 = Server::start(&[
        ("BACKUP_DIR", bad.to_str().unwrap()),
        ("BACKUP_EVERY_H", "0.0003"),
    ]);
    let t = s2.register("carol");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = s2.call("GET", "/api/admin/backups", &t, None).json();
        if v["last_error"].is_string() {
            assert!(v["last"].is_null());
            assert!(
                v["last_error"].as_str().unwrap().contains("cannot create"),
                "{v}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no error shown: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // Off: nothing scheduled.
    let s3 = Server::start(&[]);
    let t = s3.register("dave");
    let v = s3.call("GET", "/api/admin/backups", &t, None).json();
    assert!(
        v["dir"].is_null() && v["next_ts"].is_null() && v["last"].is_null(),
        "{v}"
    );
}

/// Puts `n` stored files of `size` bytes straight into `data_dir`'s blob store (named by
/// their SHA-256, as the store names them), so that a backup has real work to do.
fn fill_blobs(data_dir: &Path, n: usize, size: usize) {
    use sha2::Digest;
    for i in 0..n {
        let data: Vec<u8> = (0..size)
            .map(|j| (j as u32).wrapping_mul(i as u32 * 2 + 1).to_le_bytes()[1])
            .collect();
        let hash: String = sha2::Sha256::digest(&data)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let dir = data_dir.join("files/blobs").join(&hash[..2]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(&hash), &data).unwrap();
    }
}

/// A small, seeded pseudo-random sequence (printed, so a failure can be replayed).
fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    *seed >> 33
}

fn seed() -> u64 {
    let s = std::env::var("KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("KILL_SEED={s}");
    s
}

/// True when `archive` restores (every hash checked) into a fresh directory.
fn restores(archive: &Path) -> bool {
    let target = temp_dir("kill-restore");
    let ok = subcommand(&target, &["restore", archive.to_str().unwrap()])
        .status
        .success();
    let _ = std::fs::remove_dir_all(&target);
    ok
}

#[test]
fn backup_killed_at_random_moments_leaves_no_archive_that_looks_whole() {
    let s = Server::start(&[("SEND_RATE", "100000")]);
    let alice = s.register("alice");
    let (mut a, _) = s.ws(&alice);
    for i in 0..50 {
        a.send(json!({"type":"send","channel":"general","content":format!("m {i}")}));
        a.recv_type("message");
    }
    fill_blobs(&s.data_dir, 120, 256 * 1024);
    let out_dir = temp_dir("kill-backup");
    let out = out_dir.join("b.tar");
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_mini-discord"))
            .args(["backup", out.to_str().unwrap()])
            .env_clear()
            .env("DATA_DIR", &s.data_dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole backup takes here, to spread the kills across it.
    let started = Instant::now();
    assert!(run().wait().unwrap().success());
    let whole = started.elapsed();
    std::fs::remove_file(&out).unwrap();
    let mut seed = seed();
    for round in 0..6 {
        let at = Duration::from_micros(lcg(&mut seed) % whole.as_micros().max(1) as u64);
        let mut child = run();
        std::thread::sleep(at);
        let _ = child.kill();
        let _ = child.wait();
        if out.exists() {
            assert!(
                restores(&out),
                "round {round}, killed at {at:?} of {whole:?}: {} is whole",
                out.display()
            );
            std::fs::remove_file(&out).unwrap();
        }
        let partial = out_dir.join("b.tar.partial");
        if partial.exists() {
            // A partial is never mistaken for a backup (restore refuses it or, if it was
            // already whole, it still has the .partial name).
            assert!(partial
                .file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with(".partial"));
        }
    }
    // The live server is untouched and the next backup succeeds.
    a.send(json!({"type":"send","channel":"general","content":"still here"}));
    a.recv_type("message");
    let r = subcommand(&s.data_dir, &["backup", out.to_str().unwrap()]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(restores(&out));
    assert_check_db(&s.data_dir.join("chat.db"));
}

#[test]
fn a_killed_backups_hold_does_not_keep_deleted_files() {
    let s = Server::start(&[]);
    let alice = s.register("alice");
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 97) as u8).collect();
    let f = upload(&s, &alice, &data);
    let (mut a, _) = s.ws(&alice);
    a.send(json!({"type":"send","channel":"general","content":"f","attachments":[f["id"]]}));
    let id = a.recv_type("message")["message"]["id"].as_i64().unwrap();
    // What `backup` leaves when it is killed -9: its hold, naming a pid that is gone.
    let mut dead = Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    std::fs::write(
        s.data_dir.join(format!("backup.hold.{dead_pid}.1")),
        dead_pid.to_string(),
    )
    .unwrap();
    let blobs = s.data_dir.join("files/blobs");
    let count_blobs = || {
        std::fs::read_dir(&blobs)
            .unwrap()
            .flatten()
            .map(|d| std::fs::read_dir(d.path()).unwrap().count())
            .sum::<usize>()
    };
    assert_eq!(count_blobs(), 1);
    a.send(json!({"type":"delete","id":id}));
    a.recv_type("message_delete");
    assert_eq!(count_blobs(), 0, "a dead backup's hold is ignored");
}

#[test]
fn server_killed_during_a_scheduled_backup_leaves_only_backups_that_verify() {
    let backups = temp_dir("kill-sched");
    let b = backups.to_str().unwrap().to_string();
    let env = [
        ("BACKUP_DIR", b.as_str()),
        ("BACKUP_EVERY_H", "0.0002"),
        ("SEND_RATE", "100000"),
    ];
    let data_dir = temp_dir("kill-sched-data");
    // keep_dir: each restart replaces (drops) the Server, which must not delete the data.
    let mut s = Server::start_in(&data_dir, "127.0.0.1:0", &env, true);
    let alice = s.register("alice");
    let (mut a, _) = s.ws(&alice);
    for i in 0..20 {
        a.send(json!({"type":"send","channel":"general","content":format!("m {i}")}));
        a.recv_type("message");
    }
    fill_blobs(&s.data_dir, 120, 256 * 1024);
    let mut seed = seed();
    let names = |suffix: &str| -> Vec<PathBuf> {
        std::fs::read_dir(&backups)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect()
    };
    for round in 0..3 {
        // Wait for a scheduled backup to be under way, then kill -9 the server at a random
        // moment inside it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while names(".partial").is_empty() {
            assert!(
                Instant::now() < deadline,
                "round {round}: no backup started"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(lcg(&mut seed) % 400));
        s.kill9();
        for done in names(".tar") {
            assert!(
                restores(&done),
                "round {round}: {} verifies",
                done.display()
            );
        }
        for p in names(".partial") {
            std::fs::remove_file(p).unwrap();
        }
        s = Server::start_in(&data_dir, "127.0.0.1:0", &env, true);
    }
    // After all that, a scheduled backup still completes.
    let before = names(".tar").len();
    let deadline = Instant::now() + Duration::from_secs(30);
    while names(".tar").len() <= before {
        assert!(
            Instant::now() < deadline,
            "a backup completes after the kills"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let newest = names(".tar").into_iter().max().unwrap();
    assert!(restores(&newest));
    drop(s);
    let _ = std::fs::remove_dir_all(&data_dir);
}
