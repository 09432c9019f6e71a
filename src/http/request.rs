//! HTTP/1.1 on a plain `TcpStream`: reading one request (head parsed by `httparse`, body by
//! `Content-Length`), and writing one response. No routing here (see `api.rs`) and no
//! threads (see `server.rs`).
//!
//! Every read runs against a deadline, not just a per-read timeout, so a client that trickles
//! one byte at a time (slowloris) is still cut off when the head's deadline passes. Writes
//! do too: a whole response must be taken within `RESPONSE_DEADLINE`, however slowly the
//! client reads. A big body can be a `BodyStream`, made piece by piece while it is written
//! (`Transfer-Encoding: chunked`), so a 3 MB history page is never whole in memory.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::error::{ApiError, ApiResult, Code};

/// Request heads above this are refused with 431 (API.md).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Request bodies above this are refused with 413 (API.md), except the uploads that
/// [`streams_body`] names: those are streamed to disk under their own limit (`MAX_UPLOAD_MB`).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The whole head must arrive within this long of its first byte.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole body must arrive within this long of the end of the head.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// A keep-alive connection may sit idle this long between requests.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// The 101 of a WebSocket handshake must be taken by the client within this long.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole response must be taken by the client within this long of its first byte: a
/// deadline, not a per-write timeout, which a client reading a trickle at a time (each
/// write making a little progress) would stretch forever (issue 19: stalled pages held for
/// 31 s and more). 30 s carries the largest page of the API (3.2 MB) at about 1 Mbit/s.
pub const RESPONSE_DEADLINE: Duration = Duration::from_secs(30);
/// A streamed body is gathered up to this size before anything is written: an answer that
/// ends within it goes out whole with a `Content-Length`, like any other (most pages do);
/// a longer one goes out chunked, one chunk per piece after this first one.
pub const STREAM_CHUNK_BYTES: usize = 64 * 1024;
/// More headers than this in one request is refused (httparse needs a fixed array).
const MAX_HEADERS: usize = 64;

/// One parsed request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path without the query, still percent-encoded.
    pub path: String,
    /// The raw query string (after `?`), if any.
    pub query: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// True for the routes of [`streams_body`]: `body` is empty and the `Content-Length`
    /// bytes are still to be read (after any already in the connection's buffer).
    pub streamed: bool,
    pub peer: IpAddr,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// One query parameter, percent-decoded (`None` when absent or not valid UTF-8).
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k).as_deref() == Some(name))
                .then(|| percent_decode(v))
                .flatten()
        })
    }

    /// The value of one cookie.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "cookie")
            .find_map(|(_, v)| {
                v.split(';').find_map(|c| {
                    let (k, val) = c.trim().split_once('=')?;
                    (k == name).then(|| val.to_string())
                })
            })
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed or went idle before sending anything: just close.
    Closed,
    /// The request is bad in a way that deserves an answer before closing.
    Reply(ApiError),
}

/// A complete request head, parsed and checked, before its body is read.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub keep_alive: bool,
    pub content_length: usize,
    /// Bytes of `buf` the head took.
    pub len: usize,
}

/// Parses the request head at the start of `buf`: `Ok(None)` while it is incomplete, an
/// error (with the status to answer) when it is bad. Pure, so it can be fuzzed.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, ApiError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n <= MAX_HEAD_BYTES => n,
        Ok(httparse::Status::Complete(_)) => {
            return Err(ApiError::new(
                Code::HeadTooLarge,
                "request head is over 16 KiB",
            ))
        }
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(ApiError::new(
                Code::HeadTooLarge,
                "request head is over 16 KiB",
            ))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ApiError::new(Code::HeadTooLarge, "too many headers"))
        }
        Err(e) => return Err(ApiError::bad_request(format!("malformed request: {e}"))),
    };
    let method = req.method.unwrap_or("").to_string();
    let mut target = req.path.unwrap_or("/");
    // RFC 9112 §3.2.2: a server MUST accept the absolute form (`GET http://host/path`); we
    // keep only its path. Anything else that is not a path is refused.
    for scheme in ["http://", "https://"] {
        if let Some(rest) = target.strip_prefix(scheme) {
            target = rest.find('/').map_or("/", |i| &rest[i..]);
        }
    }
    if !target.starts_with('/') {
        return Err(ApiError::bad_request("request target must be a path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let (path, query) = (path.to_string(), query.to_string());
    let http11 = req.version == Some(1);
    let mut hdrs = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let Ok(v) = std::str::from_utf8(h.value) else {
            return Err(ApiError::bad_request("header values must be UTF-8"));
        };
        hdrs.push((h.name.to_ascii_lowercase(), v.trim().to_string()));
    }
    let connection = hdrs
        .iter()
        .find(|(k, _)| k == "connection")
        .map(|(_, v)| v.to_ascii_lowercase());
    let keep_alive = match connection.as_deref() {
        Some(c) if c.contains("close") => false,
        Some(c) if c.contains("keep-alive") => true,
        _ => http11,
    };
    if hdrs.iter().any(|(k, _)| k == "transfer-encoding") {
        // Chunked bodies are not needed by any client of ours; refusing them closes the door
        // on request smuggling between a proxy and us.
        return Err(ApiError::bad_request(
            "transfer-encoding is not supported; send content-length",
        ));
    }
    let lengths: Vec<&String> = hdrs
        .iter()
        .filter(|(k, _)| k == "content-length")
        .map(|(_, v)| v)
        .collect();
    let content_length = match lengths.as_slice() {
        [] => 0,
        [v] if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) => v
            .parse::<usize>()
            .map_err(|_| ApiError::new(Code::TooLarge, "request body is too large"))?,
        [_] => return Err(ApiError::bad_request("bad content-length")),
        _ => return Err(ApiError::bad_request("more than one content-length")),
    };
    if content_length > MAX_BODY_BYTES && !streams_body(&method, &path) {
        return Err(ApiError::new(Code::TooLarge, "request body is over 1 MiB"));
    }
    Ok(Some(Head {
        method,
        path,
        query,
        headers: hdrs,
        keep_alive,
        content_length,
        len,
    }))
}

/// The routes whose body is a file, streamed to disk by its handler instead of read here.
pub fn streams_body(method: &str, path: &str) -> bool {
    matches!(
        (method, path),
        ("POST", "/api/attachments") | ("PUT", "/api/me/avatar")
    )
}

/// Reads one request from `stream`. `buf` holds bytes already read past the previous request
/// (pipelining, or the start of a WebSocket stream); on return it holds what follows this one.
pub fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    peer: IpAddr,
) -> Result<Request, ReadError> {
    let mut deadline: Option<Instant> = None;
    let head = loop {
        if !buf.is_empty() {
            deadline.get_or_insert_with(|| Instant::now() + HEAD_TIMEOUT);
            if let Some(head) = parse_head(buf).map_err(ReadError::Reply)? {
                break head;
            }
        }
        let timeout = match deadline {
            None => IDLE_TIMEOUT,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(t) if !t.is_zero() => t,
                _ => return Err(ReadError::Closed),
            },
        };
        match read_some(stream, buf, timeout) {
            Ok(0) | Err(_) => return Err(ReadError::Closed),
            Ok(_) => {}
        }
    };
    buf.drain(..head.len);
    if streams_body(&head.method, &head.path) {
        return Ok(Request {
            method: head.method,
            path: head.path,
            query: head.query,
            headers: head.headers,
            body: Vec::new(),
            streamed: true,
            peer,
            keep_alive: head.keep_alive,
        });
    }
    let deadline = Instant::now() + BODY_TIMEOUT;
    while buf.len() < head.content_length {
        let timeout = match deadline.checked_duration_since(Instant::now()) {
            Some(t) if !t.is_zero() => t,
            _ => return Err(ReadError::Closed),
        };
        match read_some(stream, buf, timeout) {
            Ok(0) | Err(_) => return Err(ReadError::Closed),
            Ok(_) => {}
        }
    }
    let body: Vec<u8> = buf.drain(..head.content_length).collect();
    Ok(Request {
        method: head.method,
        path: head.path,
        query: head.query,
        headers: head.headers,
        body,
        streamed: false,
        peer,
        keep_alive: head.keep_alive,
    })
}

fn read_some(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> std::io::Result<usize> {
    stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// One response, built with plain constructors (`Response::json`, `Response::error`, …).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// The whole body, unless `stream` is set.
    pub body: Vec<u8>,
    /// A body made while it is written (`Response::stream`).
    pub stream: Option<BodyStream>,
}

/// The pieces of a body, each made when the writer needs it. An `Err` before anything was
/// written becomes the response (its status and JSON body); after that, it ends the
/// connection without the last chunk, so the client knows the body is cut short.
pub struct BodyStream(pub Box<dyn Iterator<Item = ApiResult<Vec<u8>>> + Send>);

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyStream")
    }
}

/// Writes all of `bytes` by `deadline`: each write call may wait only for what is left of it.
fn write_by(stream: &mut TcpStream, mut bytes: &[u8], deadline: Instant) -> std::io::Result<()> {
    while !bytes.is_empty() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::TimedOut))?;
        stream.set_write_timeout(Some(left))?;
        match stream.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One chunk of a chunked body (RFC 9112 §7.1): its size in hex, CRLF, the data, CRLF.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    out
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body,
            stream: None,
        }
    }
    pub fn json(status: u16, value: &serde_json::Value) -> Response {
        Response::new(status, "application/json", value.to_string().into_bytes())
    }
    pub fn text(status: u16, body: &str) -> Response {
        Response::new(
            status,
            "text/plain; charset=utf-8",
            body.as_bytes().to_vec(),
        )
    }
    pub fn no_content() -> Response {
        Response {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
            stream: None,
        }
    }
    /// A body made piece by piece while it is written (see `BodyStream`).
    pub fn stream(
        status: u16,
        content_type: &str,
        pieces: impl Iterator<Item = ApiResult<Vec<u8>>> + Send + 'static,
    ) -> Response {
        let mut r = Response::new(status, content_type, Vec::new());
        r.stream = Some(BodyStream(Box::new(pieces)));
        r
    }
    pub fn error(err: &ApiError) -> Response {
        let mut r = Response::new(
            err.code.status(),
            "application/json",
            err.body().into_bytes(),
        );
        if let Some(ms) = err.retry_after_ms {
            r.headers
                .push(("Retry-After", ms.div_ceil(1000).max(1).to_string()));
        }
        r
    }
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The status line and headers; `length` is the body's `Content-Length`, or `None` for
    /// a chunked body.
    fn head_bytes(&self, keep_alive: bool, length: Option<usize>) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(
            format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status)).as_bytes(),
        );
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        match length {
            _ if self.status == 204 || self.status == 304 => {}
            Some(n) => out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes()),
            None => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        out.extend_from_slice(if keep_alive {
            b"Connection: keep-alive\r\n"
        } else {
            b"Connection: close\r\n"
        });
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Serializes the status line, headers and body (a `stream` is not included).
    pub fn to_bytes(&self, keep_alive: bool, head_only: bool) -> Vec<u8> {
        let mut out = self.head_bytes(keep_alive, Some(self.body.len()));
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }

    /// Writes the response within `RESPONSE_DEADLINE`. A streamed body that ends within
    /// `STREAM_CHUNK_BYTES` goes out whole with a length; a longer one in chunks, each made
    /// only when the one before it has been taken by the kernel. A response that fails or
    /// misses the deadline resets the connection (`SO_LINGER` 0): a plain close would leave
    /// the kernel trickling what it has buffered (up to megabytes) to the client for minutes
    /// more, and the client must not take a cut-short body for a whole one.
    pub fn write_to(
        self,
        stream: &mut TcpStream,
        keep_alive: bool,
        head_only: bool,
    ) -> std::io::Result<()> {
        let result = self.write_within_deadline(stream, keep_alive, head_only);
        if result.is_err() {
            let _ = socket2::SockRef::from(&*stream).set_linger(Some(Duration::ZERO));
        }
        result
    }

    fn write_within_deadline(
        mut self,
        stream: &mut TcpStream,
        keep_alive: bool,
        head_only: bool,
    ) -> std::io::Result<()> {
        let deadline = Instant::now() + RESPONSE_DEADLINE;
        let Some(BodyStream(mut pieces)) = self.stream.take() else {
            return write_by(stream, &self.to_bytes(keep_alive, head_only), deadline);
        };
        let mut first = Vec::new();
        let mut ended = false;
        while first.len() < STREAM_CHUNK_BYTES {
            match pieces.next() {
                None => {
                    ended = true;
                    break;
                }
                Some(Ok(piece)) => first.extend_from_slice(&piece),
                Some(Err(e)) => {
                    // Nothing is written yet, so the failure can still be the answer.
                    self.status = e.code.status();
                    self.body = e.body().into_bytes();
                    if let Some(ms) = e.retry_after_ms {
                        self.headers
                            .push(("Retry-After", ms.div_ceil(1000).max(1).to_string()));
                    }
                    return write_by(stream, &self.to_bytes(keep_alive, head_only), deadline);
                }
            }
        }
        if ended {
            self.body = first;
            return write_by(stream, &self.to_bytes(keep_alive, head_only), deadline);
        }
        write_by(stream, &self.head_bytes(keep_alive, None), deadline)?;
        if head_only {
            return Ok(());
        }
        write_by(stream, &chunk(&first), deadline)?;
        drop(first);
        for piece in pieces {
            let piece = piece.map_err(|e| std::io::Error::other(e.to_string()))?;
            if !piece.is_empty() {
                write_by(stream, &chunk(&piece), deadline)?;
            }
        }
        write_by(stream, b"0\r\n\r\n", deadline)?;
        stream.flush()
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        416 => "Range Not Satisfiable",
        421 => "Misdirected Request",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// Percent-decodes `s` (and `+` as space, as forms do); `None` if the result is not UTF-8
/// or an escape is broken.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_parsing() {
        assert!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x\r\n")
                .unwrap()
                .is_none(),
            "partial"
        );
        let h = parse_head(b"POST /api/x?a=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.method.as_str(), h.path.as_str(), h.query.as_str()),
            ("POST", "/api/x", "a=1")
        );
        assert_eq!((h.content_length, h.keep_alive), (3, true));
        let h = parse_head(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let code = |raw: &[u8]| parse_head(raw).unwrap_err().code;
        assert_eq!(
            code(b"GET / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n"),
            Code::TooLarge
        );
        assert_eq!(
            code(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            Code::BadRequest
        );
        assert_eq!(
            code(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
            Code::BadRequest
        );
        assert_eq!(
            code(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            Code::BadRequest
        );
        assert_eq!(
            parse_head(b"GET http://x/a?b HTTP/1.1\r\n\r\n")
                .unwrap()
                .unwrap()
                .path,
            "/a"
        );
        assert_eq!(code(b"GET * HTTP/1.1\r\n\r\n"), Code::BadRequest);
        assert_eq!(code(b"\x00\x01 nonsense\r\n\r\n"), Code::BadRequest);
        let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(17 * 1024));
        assert_eq!(code(big.as_bytes()), Code::HeadTooLarge);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c").as_deref(), Some("a b c"));
        assert_eq!(percent_decode("%F0%9F%91%8D").as_deref(), Some("👍"));
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(
            percent_decode("%C0%AF"),
            None,
            "overlong UTF-8 is not UTF-8"
        );
    }

    #[test]
    fn response_bytes_have_length_and_connection() {
        let r = Response::text(200, "ok");
        let s = String::from_utf8(r.to_bytes(true, false)).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(s.contains("Content-Length: 2\r\n"));
        assert!(s.contains("Connection: keep-alive\r\n"));
        assert!(s.ends_with("\r\n\r\nok"));
    }

    #[test]
    fn rate_limited_error_has_retry_after_seconds() {
        let r = Response::error(&ApiError::rate_limited(1500));
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| *k == "Retry-After" && v == "2"));
        assert_eq!(r.status, 429);
    }
}
