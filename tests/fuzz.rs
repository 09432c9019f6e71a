//! Fuzzing on the stable toolchain with `proptest` (issue 7): the three decoders that read
//! bytes an attacker controls before anything is authenticated.
//!
//! - the HTTP head parser, `http::parse_head` (pure; the server feeds it every read);
//! - the asset path mapping, `assets::asset_key` (request path -> embedded file name);
//! - the WebSocket message decoder: tungstenite's frame reader configured exactly as the
//!   server configures it (`ws::ws_config()`, server role, writes dropped), then the depth
//!   guard `protocol::too_deep` and serde into `ClientText` / `ClientVoice`, on a thread
//!   with the server's connection stack size (`limits::CONNECTION_STACK_BYTES`), so a
//!   recursion the guard misses overflows here as it would in the server.
//!
//! Budget: `MD_FUZZ_CASES` cases per target (default 2000; tests/attack/full.sh uses more).
//! Corpus (kept in the repo, tests/fuzz-corpus/): hand-written seeds, each run as a fixed
//! case and used as the base of the mutation strategies, and proptest's failure seeds in
//! tests/fuzz-corpus/regressions/ (replayed first on every run). "Crash" means a panic, an
//! abort (stack overflow, allocation failure) or a broken invariant; the run must have 0.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use mini_discord::assets::asset_key;
use mini_discord::http::{parse_head, percent_decode, MAX_BODY_BYTES, MAX_HEAD_BYTES};
use mini_discord::limits::CONNECTION_STACK_BYTES;
use mini_discord::protocol::{too_deep, ClientText, ClientVoice, MAX_JSON_DEPTH};
use mini_discord::ws::{ws_config, MAX_MESSAGE_BYTES};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::Value;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

// ------------------------------------------------------------------------------ corpus

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-corpus")
}

/// Every file of one corpus folder, sorted by name: `(name, bytes)`.
fn seeds(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(corpus_dir().join(dir))
        .unwrap_or_else(|e| panic!("corpus folder {dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "corpus folder {dir} is empty");
    out
}

/// tests/fuzz-corpus/asset-paths.txt: one path per line, `\0` standing for NUL.
fn seed_paths() -> Vec<String> {
    std::fs::read_to_string(corpus_dir().join("asset-paths.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.replace("\\0", "\0"))
        .collect()
}

fn cases() -> u32 {
    std::env::var("MD_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// The budget and where failures are kept (a path relative to the package root, where
/// cargo runs integration tests).
fn config(regressions: &'static str) -> Config {
    Config {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(regressions))),
        ..Config::default()
    }
}

// -------------------------------------------------------------------------- mutations

/// Tokens that tend to matter to the decoders, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b": ",
    b" ",
    b"\0",
    b"%",
    b"%2e",
    b"%2f",
    b"..",
    b"/",
    b"\\",
    b"?",
    b"Content-Length: 1048577\r\n",
    b"Content-Length: 99999999999999999999999\r\n",
    b"Content-Length: 0\r\nContent-Length: 0\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"\xff",
    b"\xc0\xae",
    b"\xe2\x82",
    b"[",
    b"{",
    b"\"",
    b"\\u",
    b"\x81\xfe\xff\xff",
    b"\x81\xff\x7f\xff\xff\xff\xff\xff\xff\xff",
    b"\x89\x80",
    b"\x08",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Delete(usize, usize),
    Token(usize, usize),
    Repeat(usize, usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::Flip(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        (any::<usize>(), 1usize..32).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(p, t)| Mutation::Token(p, t)),
        (any::<usize>(), 1usize..16, 1usize..2000).prop_map(|(p, n, k)| Mutation::Repeat(p, n, k)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut v: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let at = |p: usize, v: &Vec<u8>| if v.is_empty() { 0 } else { p % (v.len() + 1) };
        match *m {
            Mutation::Flip(p, b) if !v.is_empty() => {
                let i = p % v.len();
                v[i] ^= 1 << b;
            }
            Mutation::Set(p, b) if !v.is_empty() => {
                let i = p % v.len();
                v[i] = b;
            }
            Mutation::Delete(p, n) => {
                let i = at(p, &v);
                let j = (i + n).min(v.len());
                v.drain(i..j);
            }
            Mutation::Token(p, t) => {
                let i = at(p, &v);
                v.splice(i..i, TOKENS[t].iter().copied());
            }
            Mutation::Repeat(p, n, k) => {
                let i = at(p, &v);
                let j = (i + n).min(v.len());
                let piece = v[i..j].to_vec();
                let rep: Vec<u8> = piece
                    .iter()
                    .copied()
                    .cycle()
                    .take(piece.len() * k)
                    .collect();
                v.splice(j..j, rep);
                v.truncate(200_000);
            }
            Mutation::Truncate(p) => {
                let i = at(p, &v);
                v.truncate(i);
            }
            _ => {}
        }
    }
    v
}

/// A seed of `dir` with up to 8 mutations.
fn mutated(dir: &str) -> impl Strategy<Value = Vec<u8>> {
    let s: Vec<Vec<u8>> = seeds(dir).into_iter().map(|(_, b)| b).collect();
    (0..s.len(), prop::collection::vec(mutation(), 0..8))
        .prop_map(move |(i, muts)| apply(s[i].clone(), &muts))
}

// ------------------------------------------------------------------ 1. HTTP head parser

/// What `parse_head` promises, on any input.
fn check_head(buf: &[u8]) {
    match parse_head(buf) {
        Ok(Some(h)) => {
            assert!(h.len <= buf.len(), "head longer than the input");
            assert!(h.len <= MAX_HEAD_BYTES, "a head over 16 KiB was accepted");
            assert!(
                h.content_length <= MAX_BODY_BYTES,
                "a body over 1 MiB was accepted"
            );
            assert!(h.path.starts_with('/'), "path {:?}", h.path);
            assert!(!h.path.contains('?'), "the query stays out of the path");
            assert!(!h.method.is_empty());
            for (k, _) in &h.headers {
                assert_eq!(*k, k.to_ascii_lowercase(), "header names are lower-cased");
            }
            // The head stands alone: the bytes after it (a body, a pipelined request, the
            // first WebSocket frames) change nothing.
            let alone = parse_head(&buf[..h.len])
                .expect("the same head")
                .expect("complete");
            assert_eq!(
                (alone.len, &alone.path, alone.content_length),
                (h.len, &h.path, h.content_length)
            );
            let mut more = buf[..h.len].to_vec();
            more.extend_from_slice(b"\x81\xfe\xff\xffGET / HTTP/1.1\r\n\r\n");
            assert_eq!(parse_head(&more).unwrap().unwrap().len, h.len);
            // A good head that arrives in pieces is never refused or cut short early.
            for cut in [
                0,
                1,
                h.len / 3,
                h.len / 2,
                h.len.saturating_sub(2),
                h.len - 1,
            ] {
                if cut < h.len {
                    assert!(
                        matches!(parse_head(&buf[..cut]), Ok(None)),
                        "a prefix of {cut} bytes of a good head was not 'incomplete'"
                    );
                }
            }
        }
        Ok(None) => assert!(buf.len() <= MAX_HEAD_BYTES, "incomplete past 16 KiB"),
        Err(e) => assert!(
            matches!(e.code.status(), 400 | 413 | 431),
            "unexpected status {} for a bad head",
            e.code.status()
        ),
    }
}

/// Request heads put together from plausible and implausible parts.
fn head_like() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("POST".to_string()),
        Just("HEAD".to_string()),
        "[A-Z]{0,8}",
        "[ -~]{0,6}",
    ];
    let target = prop_oneof![
        "/[a-z0-9/._%?&=-]{0,40}",
        "(/|\\.\\.|%2e|%2f|%00|\\\\|\\?|#|;)*",
        "[ -~]{0,30}",
        "http://[a-z.]{1,10}/[a-z]{0,5}",
    ];
    let version = prop_oneof![
        Just("HTTP/1.1"),
        Just("HTTP/1.0"),
        Just("HTTP/2.0"),
        Just("HTTP/1.1 "),
        Just(""),
    ];
    let header = prop_oneof![
        ("[A-Za-z-]{1,20}", "[ -~]{0,40}").prop_map(|(k, v)| format!("{k}: {v}")),
        "(Content-Length|content-length|CONTENT-LENGTH): ([0-9]{1,7}| ?[0-9]{1,3} ?|[ 0-9+-]{0,25})"
            .prop_map(String::from),
        "(Connection: (close|keep-alive|Upgrade|[a-z, ]{0,20}))".prop_map(String::from),
        "Transfer-Encoding: [a-z]{0,10}".prop_map(String::from),
        "[ -~]{0,30}".prop_map(String::from),
    ];
    let eol = prop_oneof![Just("\r\n"), Just("\n"), Just("\r"), Just("")];
    (
        method,
        target,
        version,
        prop::collection::vec((header, eol.clone()), 0..12),
        eol,
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(m, t, v, hs, end, tail)| {
            let mut s = format!("{m} {t} {v}\r\n");
            for (h, e) in hs {
                s.push_str(&h);
                s.push_str(e);
            }
            s.push_str(end);
            s.push_str("\r\n");
            let mut b = s.into_bytes();
            b.extend(tail);
            b
        })
}

#[test]
fn http_seed_corpus() {
    for (name, bytes) in seeds("http") {
        let r = std::panic::catch_unwind(|| check_head(&bytes));
        assert!(r.is_ok(), "seed http/{name}");
    }
    // The seeds cover the interesting outcomes.
    let ok = |n: &str| {
        let s = seeds("http");
        parse_head(&s.iter().find(|x| x.0 == n).unwrap().1).map(|h| h.is_some())
    };
    assert!(matches!(ok("get-root.http"), Ok(true)));
    assert!(matches!(ok("partial.http"), Ok(false)));
    assert!(ok("chunked.http").is_err());
}

proptest! {
    #![proptest_config(config("tests/fuzz-corpus/regressions/http_head.txt"))]

    #[test]
    fn http_head_arbitrary_bytes(buf in prop::collection::vec(any::<u8>(), 0..20_000)) {
        check_head(&buf);
    }

    #[test]
    fn http_head_generated(buf in head_like()) {
        check_head(&buf);
    }

    #[test]
    fn http_head_mutated_seeds(buf in mutated("http")) {
        check_head(&buf);
    }

    #[test]
    fn percent_decode_never_panics(s in "(%[0-9a-fA-F]{0,2}|%[^0-9a-fA-F]|[+a-z/.]|\\PC)*") {
        if let Some(d) = percent_decode(&s) {
            prop_assert!(d.len() <= s.len());
        }
    }
}

// -------------------------------------------------------------- 2. asset path mapping

/// What `asset_key` promises: a key is a plain relative name in the embedded map, and can
/// never climb out of it under any reading (no `..` or `.` segment, no empty segment, no
/// escape, separator or NUL that a later decoding could turn into one).
fn check_asset_key(path: &str) {
    let Some(k) = asset_key(path) else { return };
    assert!(!k.is_empty(), "{path:?}: empty key");
    assert!(
        !k.starts_with('/') && !k.starts_with('.'),
        "{path:?} -> {k:?}"
    );
    for bad in ["\\", "%", "\0", "//", "/."] {
        assert!(!k.contains(bad), "{path:?} -> {k:?} contains {bad:?}");
    }
    assert!(
        k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b)),
        "{path:?} -> {k:?}: only [A-Za-z0-9._-/]"
    );
    for seg in k.split('/') {
        assert!(
            !seg.is_empty() && seg != "." && seg != ".." && !seg.starts_with('.'),
            "{path:?} -> {k:?}: segment {seg:?}"
        );
    }
    assert!(
        (path == "/" && k == "index.html") || path.strip_prefix('/') == Some(k),
        "{path:?} -> {k:?}: the key is the path itself, nothing decoded"
    );
}

#[test]
fn asset_seed_corpus() {
    let paths = seed_paths();
    assert!(paths.len() >= 20);
    for p in &paths {
        check_asset_key(p);
    }
    assert_eq!(asset_key("/"), Some("index.html"));
    assert_eq!(asset_key("/views/login.js"), Some("views/login.js"));
    for p in [
        "/../etc/passwd",
        "/%2e%2e/x",
        "//etc/passwd",
        "/a\\b",
        "/a\0b",
        "/.env",
    ] {
        assert_eq!(asset_key(p), None, "{p:?}");
    }
}

proptest! {
    #![proptest_config(config("tests/fuzz-corpus/regressions/asset_key.txt"))]

    #[test]
    fn asset_key_arbitrary(path in "\\PC{0,80}") {
        check_asset_key(&path);
    }

    #[test]
    fn asset_key_path_like(path in "(/|\\.|\\.\\.|%2e|%2E|%2f|%5c|%00|%c0%ae|%252e|\\\\|\u{0}|;|\u{ff0e}|\u{2024}|a|b\\.js|index\\.html|-|_| |~|:)*") {
        check_asset_key(&path);
        let slashed = format!("/{path}");
        check_asset_key(&slashed);
    }

    #[test]
    fn asset_key_mutated_seeds(i in 0usize..64, muts in prop::collection::vec(mutation(), 0..6)) {
        let paths = seed_paths();
        let base = paths[i % paths.len()].clone().into_bytes();
        let p = String::from_utf8_lossy(&apply(base, &muts)).to_string();
        check_asset_key(&p);
    }
}

// ------------------------------------------------------- 3. WebSocket message decoder

/// Depth of a JSON value as the guard counts it (each array or object is one level).
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// What the server does with one text message, on a thread with the server's stack size.
fn decode_like_the_server(text: String) {
    std::thread::Builder::new()
        .stack_size(CONNECTION_STACK_BYTES)
        .spawn(move || {
            if !too_deep(&text) {
                let _ = serde_json::from_str::<ClientText>(&text);
                let _ = serde_json::from_str::<ClientVoice>(&text);
            }
        })
        .expect("spawn")
        .join()
        .expect("the decoder panicked");
}

/// The depth guard agrees with the real nesting of every valid document.
fn check_guard(text: &str) {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        assert_eq!(
            too_deep(text),
            depth(&v) > MAX_JSON_DEPTH,
            "guard wrong for depth {}: {text:.200}",
            depth(&v)
        );
    }
}

/// The server's read half: reads come from the input in the given chunk sizes, writes
/// (tungstenite's own pongs and close replies) are dropped, as in ws.rs.
struct Feed {
    data: Vec<u8>,
    pos: usize,
    chunks: Vec<usize>,
    n: usize,
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self
            .chunks
            .get(self.n % self.chunks.len().max(1))
            .copied()
            .unwrap_or(4096);
        self.n += 1;
        let k = want.max(1).min(buf.len()).min(self.data.len() - self.pos);
        buf[..k].copy_from_slice(&self.data[self.pos..self.pos + k]);
        self.pos += k;
        Ok(k)
    }
}

impl Write for Feed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Feeds `bytes` (the first `split` of them as the bytes read with the HTTP head) to
/// tungstenite as the server configures it, reading until it errs; every message it hands
/// over goes through the rest of the server's decoder. Returns the messages read.
fn read_frames(bytes: Vec<u8>, split: usize, chunks: Vec<usize>) -> usize {
    let split = split.min(bytes.len());
    let leftover = bytes[..split].to_vec();
    let feed = Feed {
        data: bytes[split..].to_vec(),
        pos: 0,
        chunks,
        n: 0,
    };
    let mut ws = WebSocket::from_partially_read(feed, leftover, Role::Server, Some(ws_config()));
    let mut messages = 0;
    for _ in 0..100_000 {
        match ws.read() {
            Ok(Message::Text(t)) => {
                assert!(t.len() <= MAX_MESSAGE_BYTES, "a text message over 64 KiB");
                check_guard(t.as_str());
                decode_like_the_server(t.as_str().to_owned());
                messages += 1;
            }
            Ok(Message::Binary(b)) => {
                assert!(b.len() <= MAX_MESSAGE_BYTES, "a binary message over 64 KiB");
                messages += 1;
            }
            Ok(Message::Ping(p)) | Ok(Message::Pong(p)) => {
                assert!(p.len() <= 125, "a control frame over 125 bytes");
                messages += 1;
            }
            Ok(_) => messages += 1,
            Err(_) => return messages,
        }
    }
    panic!("tungstenite kept reading past the end of the input");
}

/// One client frame as the fuzzer builds it.
#[derive(Debug, Clone)]
struct FrameSpec {
    fin: bool,
    rsv: u8,
    opcode: u8,
    masked: bool,
    /// 0: exact length; 1: 16-bit form; 2: 64-bit form; 3: a declared length of its own.
    len_form: u8,
    declared: u64,
    payload: Vec<u8>,
}

fn frame_spec() -> impl Strategy<Value = FrameSpec> {
    let opcode = prop_oneof![
        6 => Just(0x1u8),
        2 => Just(0x0u8),
        2 => Just(0x2u8),
        2 => Just(0x8u8),
        2 => Just(0x9u8),
        1 => Just(0xAu8),
        1 => 0u8..16,
    ];
    let payload = prop_oneof![
        6 => "\\PC{0,60}".prop_map(String::into_bytes),
        3 => json_text().prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 0..200),
        1 => (any::<u8>(), 60_000usize..70_000).prop_map(|(b, n)| vec![b; n]),
    ];
    (
        prop::bool::weighted(0.8),
        prop_oneof![9 => Just(0u8), 1 => 0u8..8],
        opcode,
        prop::bool::weighted(0.95),
        prop_oneof![8 => Just(0u8), 1 => 1u8..3, 1 => Just(3u8)],
        any::<u64>(),
        payload,
    )
        .prop_map(
            |(fin, rsv, opcode, masked, len_form, declared, payload)| FrameSpec {
                fin,
                rsv,
                opcode,
                masked,
                len_form,
                declared,
                payload,
            },
        )
}

fn encode(f: &FrameSpec) -> Vec<u8> {
    let mut out = vec![(if f.fin { 0x80 } else { 0 }) | (f.rsv << 4) | f.opcode];
    let m = if f.masked { 0x80 } else { 0 };
    let len = if f.len_form == 3 {
        f.declared >> (f.declared % 64)
    } else {
        f.payload.len() as u64
    };
    match (f.len_form, len) {
        (0 | 3, l) if l < 126 => out.push(m | l as u8),
        (0 | 1 | 3, l) if l <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(l as u16).to_be_bytes());
        }
        (_, l) => {
            out.push(m | 127);
            out.extend_from_slice(&l.to_be_bytes());
        }
    }
    let key = [0xa1, 0x5b, 0x00, 0xfe];
    if f.masked {
        out.extend_from_slice(&key);
    }
    out.extend(
        f.payload
            .iter()
            .enumerate()
            .map(|(i, b)| if f.masked { b ^ key[i % 4] } else { *b }),
    );
    out
}

/// The client ops of API.md and the fields each needs ("nope" is an unknown type).
const OPS: &[(&str, &[&str])] = &[
    ("send", &["channel", "content", "nonce", "reply_to"]),
    ("edit", &["id", "content"]),
    ("delete", &["id"]),
    ("react", &["id", "emoji"]),
    ("typing", &["channel"]),
    ("ping", &[]),
    ("offer", &["to", "sdp"]),
    ("answer", &["to", "sdp"]),
    ("candidate", &["to", "candidate"]),
    ("state", &["muted", "deafened"]),
    ("speaking", &["speaking"]),
    ("watch", &["id", "on"]),
    ("nope", &["channel"]),
];
const FIELDS: &[&str] = &[
    "channel",
    "content",
    "nonce",
    "reply_to",
    "id",
    "emoji",
    "to",
    "sdp",
    "candidate",
    "muted",
    "deafened",
    "speaking",
    "on",
    "video",
    "screen",
];

/// JSON-ish text: real documents (often op-shaped), deep nests, and near-JSON junk.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(24, 256, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    // Op-shaped objects: the fields each type needs, mostly well typed, sometimes not,
    // plus stray fields.
    let op = (
        0..OPS.len(),
        prop::collection::vec(
            (
                prop::bool::weighted(0.9),
                prop::bool::weighted(0.85),
                "\\PC{0,30}",
                any::<i64>(),
                any::<bool>(),
                value.clone(),
            ),
            FIELDS.len(),
        ),
    )
        .prop_map(|(t, vals)| {
            let (ty, needs) = OPS[t];
            let mut m = serde_json::Map::new();
            m.insert("type".into(), Value::String(ty.into()));
            for (i, (name, (include, typed, s, n, b, v))) in FIELDS.iter().zip(vals).enumerate() {
                let wanted = needs.contains(name);
                // fields the type does not need appear now and then (stray or misplaced)
                if !(include && (wanted || i % 5 == 0)) {
                    continue;
                }
                let value = match (typed, *name) {
                    (false, _) => v,
                    (_, "id" | "reply_to") => Value::from(n % 1000),
                    (_, "muted" | "deafened" | "speaking") => Value::Bool(b),
                    (_, "candidate") => serde_json::json!({"candidate": s}),
                    _ => Value::String(s),
                };
                m.insert((*name).into(), value);
            }
            Value::Object(m).to_string()
        });
    let deep = (
        prop_oneof![
            Just("["),
            Just("{\"a\":"),
            Just("[{\"b\":"),
            Just("\"\\\"[")
        ],
        0usize..70_000,
        prop::bool::ANY,
    )
        .prop_map(|(open, n, close)| {
            let mut s = open.repeat(n);
            if close && open == "[" {
                s.push_str(&"]".repeat(n));
            }
            s
        });
    prop_oneof![
        4 => op,
        3 => value.prop_map(|v| v.to_string()),
        2 => "[\\[\\]{}\":,a-z0-9\\\\ .eE+-]{0,300}",
        1 => deep,
        1 => "\\PC{0,200}",
    ]
}

#[test]
fn ws_text_seed_corpus() {
    for (name, bytes) in seeds("ws-text") {
        let text = String::from_utf8(bytes).unwrap_or_else(|_| panic!("ws-text/{name} is UTF-8"));
        check_guard(&text);
        decode_like_the_server(text);
    }
    // The guard against the deepest input a 64 KiB frame can carry, on the server's stack.
    for open in ["[", "{\"a\":", "[{\"b\":"] {
        let text = open.repeat(MAX_MESSAGE_BYTES / open.len());
        assert!(too_deep(&text));
        decode_like_the_server(text);
    }
    let ok = seeds("ws-text");
    let get = |n: &str| String::from_utf8(ok.iter().find(|x| x.0 == n).unwrap().1.clone()).unwrap();
    assert!(serde_json::from_str::<ClientText>(&get("send.json")).is_ok());
    assert!(serde_json::from_str::<ClientVoice>(&get("candidate.json")).is_ok());
    assert!(too_deep(&get("deep-17.json")) && !too_deep(&get("deep-16.json")));
}

#[test]
fn ws_frame_seed_corpus() {
    let mut read = 0;
    for (_, bytes) in seeds("ws-frames") {
        for split in [0, 1, bytes.len() / 2, bytes.len()] {
            for chunks in [vec![4096], vec![1], vec![3, 7, 1]] {
                read += read_frames(bytes.clone(), split, chunks);
            }
        }
    }
    assert!(read > 0, "the valid seeds decode to messages");
}

proptest! {
    #![proptest_config(config("tests/fuzz-corpus/regressions/ws_text.txt"))]

    #[test]
    fn ws_text_decoder(text in json_text()) {
        check_guard(&text);
        decode_like_the_server(text);
    }

    #[test]
    fn ws_text_arbitrary(text in "\\PC{0,400}") {
        check_guard(&text);
        decode_like_the_server(text);
    }

    #[test]
    fn ws_text_mutated_seeds(bytes in mutated("ws-text")) {
        let text = String::from_utf8_lossy(&bytes).to_string();
        check_guard(&text);
        decode_like_the_server(text);
    }
}

proptest! {
    #![proptest_config(config("tests/fuzz-corpus/regressions/ws_frames.txt"))]

    #[test]
    fn ws_frames_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..4096),
        split in any::<usize>(),
        chunks in prop::collection::vec(1usize..5000, 1..4),
    ) {
        let split = split % (bytes.len() + 1);
        read_frames(bytes, split, chunks);
    }

    #[test]
    fn ws_frames_structured(
        frames in prop::collection::vec(frame_spec(), 1..8),
        split in any::<usize>(),
        chunks in prop::collection::vec(1usize..5000, 1..4),
    ) {
        let bytes: Vec<u8> = frames.iter().flat_map(encode).collect();
        let split = split % (bytes.len() + 1);
        read_frames(bytes, split, chunks);
    }

    #[test]
    fn ws_frames_mutated_seeds(
        bytes in mutated("ws-frames"),
        split in any::<usize>(),
        chunks in prop::collection::vec(1usize..5000, 1..4),
    ) {
        let split = split % (bytes.len() + 1);
        read_frames(bytes, split, chunks);
    }
}
