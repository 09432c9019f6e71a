//! Malformed HTTP against the real server: every input class of API.md gets its documented
//! status and a JSON error body — never a 500, never a crash (after each class `/healthz`
//! still answers). Also keep-alive on one TCP connection and the static app's headers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{HttpResponse, Server};
use serde_json::json;

fn assert_error(r: &HttpResponse, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("application/json"),
        "{what}: error body is JSON ({:?})",
        r.headers
    );
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{what}: {v}");
    assert!(
        !v["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{what}: error has a message: {v}"
    );
}

fn assert_healthy(s: &Server, after: &str) {
    let r = s.request("GET", "/healthz", &[], None);
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "ok"),
        "server still up after {after}"
    );
}

/// A raw POST with `body` bytes and an exact Content-Length.
fn post_bytes(s: &Server, path: &str, token: Option<&str>, body: &[u8]) -> HttpResponse {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        s.addr,
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    let mut raw = head.into_bytes();
    raw.extend_from_slice(body);
    s.raw(&raw)
}

/// Reads one response (head + Content-Length body) from a keep-alive connection.
fn read_one(stream: &mut TcpStream, buf: &mut Vec<u8>) -> HttpResponse {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = HttpResponse::parse(&buf[..end + 4]);
            let len: usize = head
                .header("content-length")
                .map(|v| v.parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let r = HttpResponse::parse(&buf[..end + 4 + len]);
                buf.drain(..end + 4 + len);
                return r;
            }
        }
        assert!(Instant::now() < deadline, "no full response within 10 s");
        let n = stream.read(&mut chunk).expect("read response");
        assert!(n > 0, "connection closed before a full response");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn connect(s: &Server) -> TcpStream {
    let c = TcpStream::connect_timeout(&s.addr, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

#[test]
fn bad_json_bodies_get_400_bad_request() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    let deep = "[".repeat(10_000);
    let bodies: Vec<(&[u8], &str)> = vec![
        (b"{", "truncated"),
        (b"not json", "not json"),
        (b"{\"username\":\"bob\",}", "trailing comma"),
        (b"{'username':'bob'}", "single quotes"),
        (b"null", "null"),
        (b"123", "number"),
        (deep.as_bytes(), "deeply nested"),
        (
            b"{\"username\":\"bob\",\"password\":\"password123\"} trailing",
            "trailing garbage",
        ),
    ];
    for (body, why) in &bodies {
        for path in ["/api/register", "/api/login"] {
            let r = post_bytes(&s, path, None, body);
            assert_error(&r, 400, "bad_request", &format!("{path} {why}"));
        }
        let r = post_bytes(&s, "/api/channels", Some(&t), body);
        assert_error(&r, 400, "bad_request", &format!("channels {why}"));
    }
    assert_healthy(&s, "bad JSON");
}

#[test]
fn wrong_types_get_400_bad_request() {
    let s = Server::start(&[]);
    s.register("alice");
    s.register("carol");
    let mut accepted = Vec::new();
    for body in [
        json!({"username":1,"password":"password123"}),
        json!({"username":"bob","password":12345678}),
        json!({"username":["bob"],"password":"password123"}),
        json!({"username":{"a":1},"password":"password123"}),
        json!({"username":true,"password":null}),
        json!(["bob", "password123"]),
        json!("bob"),
    ] {
        for path in ["/api/register", "/api/login"] {
            let r = s.request("POST", path, &[], Some(&body));
            if r.status / 100 == 2 {
                accepted.push(format!("{path} {body} -> {} {}", r.status, r.text()));
                continue;
            }
            assert_error(&r, 400, "bad_request", &format!("{path} {body}"));
        }
    }
    let r = s.request(
        "POST",
        "/api/register",
        &[],
        Some(&json!({"username":"bob","password":"password123","invite":5})),
    );
    assert_error(&r, 400, "bad_request", "invite number");
    assert_healthy(&s, "wrong types");
    assert!(
        accepted.is_empty(),
        "wrongly typed bodies were accepted: {accepted:#?}"
    );
}

#[test]
fn missing_fields_and_empty_body_get_400_bad_request() {
    let s = Server::start(&[]);
    s.register("alice");
    for body in [
        json!({}),
        json!({"username":"bob"}),
        json!({"password":"password123"}),
        json!({"user":"bob","pass":"password123"}),
    ] {
        let r = s.request("POST", "/api/register", &[], Some(&body));
        assert_error(&r, 400, "bad_request", &format!("register {body}"));
        let r = s.request("POST", "/api/login", &[], Some(&body));
        assert_error(&r, 400, "bad_request", &format!("login {body}"));
    }
    // Empty body (Content-Length: 0) and no Content-Length at all.
    for path in ["/api/register", "/api/login"] {
        let r = s.request("POST", path, &[], None);
        assert_error(&r, 400, "bad_request", &format!("{path} empty body"));
        let raw = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            s.addr
        );
        let r = s.raw(raw.as_bytes());
        assert_error(&r, 400, "bad_request", &format!("{path} no content-length"));
    }
    assert_healthy(&s, "missing fields");
}

#[test]
fn body_not_utf8_gets_400_bad_request() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    let mut bad = b"{\"username\":\"b".to_vec();
    bad.extend_from_slice(&[0xff, 0xfe, 0xc0, 0xaf]);
    bad.extend_from_slice(b"b\",\"password\":\"password123\"}");
    for (path, tok) in [
        ("/api/register", None),
        ("/api/login", None),
        ("/api/channels", Some(t.as_str())),
    ] {
        let r = post_bytes(&s, path, tok, &bad);
        assert_error(&r, 400, "bad_request", path);
        let r = post_bytes(&s, path, tok, &[0x80, 0x81, 0x82]);
        assert_error(&r, 400, "bad_request", path);
    }
    // A header value that is not UTF-8.
    let mut raw = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Bad: ", s.addr).into_bytes();
    raw.extend_from_slice(&[0xff, 0xfe]);
    raw.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
    let r = s.raw(&raw);
    assert!(
        r.status == 400 || r.status == 200,
        "non-UTF-8 header value: {} {}",
        r.status,
        r.text()
    );
    if r.status == 400 {
        assert_error(&r, 400, "bad_request", "non-UTF-8 header");
    }
    assert_healthy(&s, "non-UTF-8 bodies");
}

#[test]
fn bad_names_get_400_bad_request() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    for name in [
        "x",
        "",
        "has space",
        "tab\tname",
        "nul\u{0}",
        "émile",
        "a;b",
    ] {
        let r = s.request(
            "POST",
            "/api/register",
            &[],
            Some(&json!({"username":name,"password":"password123"})),
        );
        assert_error(&r, 400, "bad_request", &format!("username {name:?}"));
    }
    for name in ["", "UPPER", "new\nline", "semi;colon", "../etc"] {
        let r = s.call(
            "POST",
            "/api/channels",
            &t,
            Some(&json!({"name":name,"kind":"text"})),
        );
        assert_error(&r, 400, "bad_request", &format!("channel {name:?}"));
    }
    assert_healthy(&s, "bad names");
}

#[test]
fn head_over_16_kib_gets_431() {
    let s = Server::start(&[]);
    // One huge header.
    let raw = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        s.addr,
        "a".repeat(17 * 1024)
    );
    let r = s.raw(raw.as_bytes());
    assert_eq!(r.status, 431, "one 17 KiB header: {}", r.text());
    assert!(!r.json()["error"]["code"].as_str().unwrap().is_empty());
    assert_healthy(&s, "a 17 KiB header");
    // A long request target.
    let raw = format!(
        "GET /api/history?channel={} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        "g".repeat(20 * 1024),
        s.addr
    );
    let r = s.raw(raw.as_bytes());
    assert_eq!(r.status, 431, "20 KiB request line: {}", r.text());
    assert_healthy(&s, "a 20 KiB request line");
    // Many small headers adding up past 16 KiB (and past any header-count limit).
    let mut raw = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n", s.addr);
    for i in 0..200 {
        raw.push_str(&format!("X-H{i}: {}\r\n", "v".repeat(100)));
    }
    raw.push_str("Connection: close\r\n\r\n");
    let r = s.raw(raw.as_bytes());
    assert_eq!(r.status, 431, "200 headers, ~20 KiB: {}", r.text());
    assert!(!r.json()["error"]["code"].as_str().unwrap().is_empty());
    assert_healthy(&s, "many headers");
    // Just under the limit is fine.
    let raw = format!(
        "GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        s.addr,
        "a".repeat(15 * 1024)
    );
    assert_eq!(s.raw(raw.as_bytes()).status, 200, "15 KiB header");
}

#[test]
fn body_over_1_mib_gets_413_too_large() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    for (path, len) in [
        ("/api/register", 2_000_000usize),
        ("/api/login", 1024 * 1024 + 1),
        ("/api/channels", 2_000_000),
    ] {
        let raw = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {t}\r\nContent-Type: application/json\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n",
            s.addr
        );
        let r = s.raw(raw.as_bytes());
        assert_error(
            &r,
            413,
            "too_large",
            &format!("{path} Content-Length {len}"),
        );
    }
    assert_healthy(&s, "oversized bodies");
    // Exactly 1 MiB is read (and then refused as bad JSON, not as too large).
    let body = vec![b' '; 1024 * 1024];
    let r = post_bytes(&s, "/api/login", None, &body);
    assert_error(&r, 400, "bad_request", "1 MiB of spaces");
    assert_healthy(&s, "a 1 MiB body");
}

#[test]
fn unknown_route_gets_404_not_found() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    for p in [
        "/api/nope",
        "/api/",
        "/api",
        "/api/me/extra",
        "/api/channelsx",
        "/nope.html",
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/.env",
        "/assets/../src/main.rs",
    ] {
        let r = s.call("GET", p, &t, None);
        assert_error(&r, 404, "not_found", p);
    }
    let r = s.call("POST", "/api/nope", &t, Some(&json!({})));
    assert_error(&r, 404, "not_found", "POST /api/nope");
    assert_healthy(&s, "unknown routes");
}

#[test]
fn wrong_method_gets_405() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    for (m, p) in [
        ("PUT", "/api/channels"),
        ("DELETE", "/api/channels"),
        ("PATCH", "/api/channels"),
        ("GET", "/api/login"),
        ("GET", "/api/register"),
        ("GET", "/api/logout"),
        // GET /api/invites lists invites since v2.
        ("PUT", "/api/invites"),
        ("GET", "/api/invites/abc"),
        ("POST", "/api/me"),
        ("POST", "/api/history?channel=general"),
        ("DELETE", "/api/users"),
        ("POST", "/healthz"),
        ("GET", "/api/channels/general"),
        ("PUT", "/api/channels/general"),
    ] {
        let r = s.call(m, p, &t, None);
        assert_eq!(r.status, 405, "{m} {p}: {}", r.text());
        assert!(!r.json()["error"]["code"].as_str().unwrap().is_empty());
    }
    assert_healthy(&s, "wrong methods");
}

#[test]
fn transfer_encoding_chunked_gets_400() {
    let s = Server::start(&[]);
    let raw = format!(
        "POST /api/login HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{{}}\r\n0\r\n\r\n",
        s.addr
    );
    let r = s.raw(raw.as_bytes());
    assert_error(&r, 400, "bad_request", "chunked");
    // Both Content-Length and Transfer-Encoding (request smuggling shape).
    let raw = format!(
        "POST /api/login HTTP/1.1\r\nHost: {}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        s.addr
    );
    let r = s.raw(raw.as_bytes());
    assert_error(&r, 400, "bad_request", "CL + TE");
    assert_healthy(&s, "chunked");
}

#[test]
fn two_or_bad_content_lengths_get_400() {
    let s = Server::start(&[]);
    for cl in [
        "Content-Length: 2\r\nContent-Length: 2\r\n",
        "Content-Length: 2\r\nContent-Length: 5\r\n",
        "Content-Length: abc\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 1 2\r\n",
    ] {
        let raw = format!(
            "POST /api/login HTTP/1.1\r\nHost: {}\r\n{cl}Connection: close\r\n\r\n{{}}",
            s.addr
        );
        let r = s.raw(raw.as_bytes());
        assert_error(&r, 400, "bad_request", cl);
    }
    assert_healthy(&s, "bad content-length");
}

#[test]
fn garbage_request_line_gets_400() {
    let s = Server::start(&[]);
    for raw in [
        b"HELLO\r\n\r\n".to_vec(),
        b"GET\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
        b"GET / FTP/1.1\r\n\r\n".to_vec(),
        b"G@T / HTTP/1.1\r\n\r\n".to_vec(),
        b"\x00\x01\x02\x03\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n".to_vec(),
    ] {
        let r = s.raw(&raw);
        assert_error(
            &r,
            400,
            "bad_request",
            &format!("{:?}", String::from_utf8_lossy(&raw)),
        );
    }
    assert_healthy(&s, "garbage request lines");
}

#[test]
fn truncated_body_and_early_close_do_not_hurt_the_server() {
    let s = Server::start(&[]);
    // Promise 100 bytes, send 5, hang up.
    {
        let mut c = connect(&s);
        let raw = format!(
            "POST /api/login HTTP/1.1\r\nHost: {}\r\nContent-Length: 100\r\n\r\n{{\"us",
            s.addr
        );
        c.write_all(raw.as_bytes()).unwrap();
    }
    // Half a head, hang up.
    {
        let mut c = connect(&s);
        c.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    }
    // Connect and hang up at once.
    drop(connect(&s));
    assert_healthy(&s, "early closes");
}

#[test]
fn keep_alive_answers_two_requests_on_one_connection() {
    let s = Server::start(&[]);
    let t = s.register("alice");
    let mut c = connect(&s);
    let mut buf = Vec::new();
    c.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", s.addr).as_bytes())
        .unwrap();
    let r1 = read_one(&mut c, &mut buf);
    assert_eq!((r1.status, r1.text().as_str()), (200, "ok"));
    assert_ne!(r1.header("connection"), Some("close"));
    c.write_all(
        format!(
            "GET /api/me HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {t}\r\n\r\n",
            s.addr
        )
        .as_bytes(),
    )
    .unwrap();
    let r2 = read_one(&mut c, &mut buf);
    assert_eq!(r2.status, 200, "{}", r2.text());
    assert_eq!(r2.json()["user"]["username"], "alice");

    // A POST with a body, then two pipelined requests in one write.
    let body = json!({"username":"alice","password":"wrongpassword"}).to_string();
    let pipelined = format!(
        "POST /api/login HTTP/1.1\r\nHost: {a}\r\nContent-Length: {}\r\n\r\n{body}GET /api/nope HTTP/1.1\r\nHost: {a}\r\nAuthorization: Bearer {t}\r\n\r\nGET /healthz HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n",
        body.len(),
        a = s.addr
    );
    c.write_all(pipelined.as_bytes()).unwrap();
    assert_error(
        &read_one(&mut c, &mut buf),
        401,
        "unauthorized",
        "pipelined 1",
    );
    assert_error(&read_one(&mut c, &mut buf), 404, "not_found", "pipelined 2");
    let last = read_one(&mut c, &mut buf);
    assert_eq!(last.status, 200);
    assert_eq!(last.header("connection"), Some("close"));
    // The server closes after `Connection: close`.
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    assert!(rest.is_empty() && buf.is_empty());
}

#[test]
fn static_index_has_html_csp_nosniff_etag_and_304() {
    let s = Server::start(&[]);
    let r = s.request("GET", "/", &[], None);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type").unwrap().starts_with("text/html"),
        "{:?}",
        r.headers
    );
    let csp = r
        .header("content-security-policy")
        .expect("Content-Security-Policy");
    assert!(csp.contains("default-src"), "{csp}");
    assert!(
        !csp.contains("'unsafe-inline'"),
        "no inline script allowed: {csp}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let etag = r.header("etag").expect("ETag").to_string();
    assert!(!r.body.is_empty());
    assert!(r.text().to_ascii_lowercase().contains("<html"));

    let r = s.request("GET", "/", &[("If-None-Match", &etag)], None);
    assert_eq!(r.status, 304, "{:?}", r.headers);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));

    let r = s.request("GET", "/", &[("If-None-Match", "\"stale\"")], None);
    assert_eq!(r.status, 200);
    // API answers carry nosniff too.
    let r = s.request("GET", "/api/nope", &[], None);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}
