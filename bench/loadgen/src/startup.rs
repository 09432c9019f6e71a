//! `startup`: exec the server binary R times on a fresh DATA_DIR and a free loopback port,
//! time exec → first `GET /healthz` 200, then read its idle RSS one second later.

use crate::util::*;
use serde_json::json;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

fn healthz_ok(port: u16) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").is_err() {
        return false;
    }
    let mut b = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut b[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got >= 12 && &b[9..12] == b"200"
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
}

pub fn run(args: Args) {
    let bin = std::fs::canonicalize(args.opt("bin").expect("--bin PATH")).expect("--bin: no such file");
    let runs: usize = args.num("runs", 5);
    let label = args.str("label", "");
    let mut times = Vec::new();
    let mut rss = Vec::new();
    let mut threads = 0;
    for r in 0..runs {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir().join(format!("lg-startup-{}-{}-{r}", std::process::id(), now_micros()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut cmd = std::process::Command::new(&bin);
        cmd.envs(args.envs.iter().cloned())
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("DATA_DIR", dir.join("data"))
            .current_dir(&dir)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let t0 = Instant::now();
        let mut child = cmd.spawn().expect("spawn server");
        let mut ok = None;
        while t0.elapsed() < Duration::from_secs(10) {
            if healthz_ok(port) {
                ok = Some(t0.elapsed().as_secs_f64() * 1000.0);
                break;
            }
            if let Ok(Some(st)) = child.try_wait() {
                panic!("server exited during start: {st}; log in {}", dir.display());
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        let pid = child.id() as i32;
        if let Some(t) = ok {
            times.push(t);
            std::thread::sleep(Duration::from_secs(1));
            if let Some(k) = status_field(pid, "VmRSS") {
                rss.push(k as f64);
            }
            threads = status_field(pid, "Threads").unwrap_or(0);
        }
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let dl = Instant::now() + Duration::from_secs(3);
        while Instant::now() < dl {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if child.try_wait().ok().flatten().is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("# startup run {r}: {:?} ms, rss {:?} kB", ok, rss.last());
    }
    let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
    let all = times.clone();
    emit(&args, json!({
        "mode": "startup", "label": label, "runs": runs, "ok": times.len(), "startup_ms_all": all.iter().map(|t| r2(*t)).collect::<Vec<_>>(),
        "startup_ms": r2(median(&mut times)), "idle_rss_kb": r2(median(&mut rss)), "idle_threads": threads, "binary_bytes": size,
    }));
}
