//! The HTTP side of files, on the connection thread: `POST /api/attachments` and
//! `PUT /api/me/avatar` (the body streamed from the socket, never held whole), and
//! `GET /api/attachments/{id}[/thumb]` (streamed from disk). They write to the socket
//! themselves, which is why `server.rs` hands them the stream rather than a parsed body.
//! The storage and serving rules are `files/`'s; this is only the routes' HTTP.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::files::serve::{self, Part};
use crate::files::upload::{self, Purpose};
use crate::http::{self, api, assets, Request, Response};
use crate::store::attachments as rows;
use crate::App;

/// A read that brings nothing for this long ends the upload (as `BODY_TIMEOUT` does for JSON).
const UPLOAD_STALL: Duration = http::BODY_TIMEOUT;
/// Slowest average an upload may keep up, on top of a minute's grace: 25 MiB at this rate
/// is about half an hour. A slower client is holding a thread for nothing.
const UPLOAD_MIN_BYTES_PER_SEC: u64 = 16 * 1024;

/// Answers an upload route. Returns the response and whether the connection may carry
/// another request (only when the whole body was read).
pub fn upload(
    app: &App,
    req: &Request,
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> (Response, bool) {
    let purpose = if req.path == "/api/me/avatar" {
        Purpose::Avatar
    } else {
        Purpose::Message
    };
    let mut body_read = false;
    let result = (|| -> ApiResult<Response> {
        let (mut user, _) = api::signed_in(req, app)?;
        let len = match req.header("content-length") {
            Some(v) => Some(
                v.parse::<u64>()
                    .map_err(|_| ApiError::bad_request("bad content-length"))?,
            ),
            None => None,
        };
        let raw_name = req.query_param("filename");
        let (name, len, _slot) = upload::admit(
            &app.files,
            &app.store,
            user.id,
            raw_name.as_deref(),
            len,
            purpose,
        )?;
        if req
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            // curl and others wait for this before sending a large body (RFC 9110 §10.1.1).
            let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let mut body = BodyReader::new(stream, buf, len);
        let attachment = upload::receive(app, user.id, name, len, &mut body, purpose);
        body_read = body.left == 0;
        let attachment = attachment?;
        Ok(match purpose {
            Purpose::Message => Response::json(201, &json!({ "attachment": attachment })),
            Purpose::Avatar => {
                user.avatar_url = attachment.thumb_url;
                Response::json(200, &json!({ "user": user }))
            }
        })
    })();
    match result {
        Ok(r) => (r, body_read),
        Err(e) => (Response::error(&e), false),
    }
}

/// Answers `GET`/`HEAD /api/attachments/{id}[/thumb]`, writing the head and the streamed
/// body to `stream`. Returns whether the connection may carry another request.
pub fn download(app: &App, req: &Request, stream: &mut TcpStream) -> bool {
    let head_only = req.method == "HEAD";
    let answer = (|| -> ApiResult<serve::FileResponse> {
        let (user, _) = api::signed_in(req, app)?;
        let rest = req.path.trim_start_matches("/api/attachments/");
        let (id, part) = match rest.split_once('/') {
            None => (rest, Part::Original),
            Some((id, "thumb")) => (id, Part::Thumb),
            Some(_) => return Err(not_found()),
        };
        let id = id.to_string();
        let snapshot = app.community.snapshot();
        let file = app
            .store
            .read(move |c| {
                rows::readable(c, user.id, &id, &|ch| snapshot.can_view_id(user.id, ch))
            })?
            .ok_or_else(not_found)?;
        let path = match part {
            Part::Original => app.files.blobs.blob_path(&file.hash),
            Part::Thumb if file.has_thumb => app.files.blobs.thumb_path(&file.hash),
            Part::Thumb => return Err(not_found()),
        };
        serve::respond(
            &path,
            part,
            file.kind,
            &file.filename,
            &file.hash,
            req.header("range"),
            req.header("if-none-match"),
        )
        .map_err(|e| {
            log::warn!("files: a stored file cannot be opened: {e}");
            not_found()
        })
    })();
    let file = match answer {
        Ok(f) => f,
        Err(e) => {
            let r = assets::security_headers(Response::error(&e));
            return r.write_to(stream, req.keep_alive, head_only).is_ok() && req.keep_alive;
        }
    };
    let mut head = format!("HTTP/1.1 {} {}\r\n", file.status, http::reason(file.status));
    for (k, v) in &file.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if file.status != 304 {
        head.push_str(&format!("Content-Length: {}\r\n", file.content_length()));
    }
    head.push_str(if req.keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    // A large file takes as long as the client reads; each write must still progress.
    let _ = stream.set_write_timeout(Some(http::WRITE_TIMEOUT));
    let sent = stream.write_all(head.as_bytes()).is_ok()
        && (head_only || file.write_body(&mut *stream).is_ok())
        && stream.flush().is_ok();
    sent && req.keep_alive
}

fn not_found() -> ApiError {
    ApiError::not_found("no such file")
}

/// A request body of known length: first what is already buffered, then the socket, each
/// read bounded by [`UPLOAD_STALL`] and the whole by a rate floor. Never reads past the body,
/// so a pipelined next request stays in the buffer.
struct BodyReader<'a> {
    stream: &'a mut TcpStream,
    buffered: &'a mut Vec<u8>,
    left: u64,
    deadline: Instant,
}

impl<'a> BodyReader<'a> {
    fn new(stream: &'a mut TcpStream, buffered: &'a mut Vec<u8>, len: u64) -> Self {
        let secs = 60 + len / UPLOAD_MIN_BYTES_PER_SEC;
        BodyReader {
            stream,
            buffered,
            left: len,
            deadline: Instant::now() + Duration::from_secs(secs),
        }
    }
}

impl Read for BodyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let want = out.len().min(self.left.min(usize::MAX as u64) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = if !self.buffered.is_empty() {
            let n = want.min(self.buffered.len());
            out[..n].copy_from_slice(&self.buffered[..n]);
            self.buffered.drain(..n);
            n
        } else {
            let now = Instant::now();
            if now >= self.deadline {
                return Err(io::ErrorKind::TimedOut.into());
            }
            let wait = UPLOAD_STALL.min(self.deadline - now);
            self.stream.set_read_timeout(Some(wait))?;
            self.stream.read(&mut out[..want])?
        };
        self.left -= n as u64;
        Ok(n)
    }
}
