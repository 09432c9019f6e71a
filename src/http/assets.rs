//! The browser app, embedded at compile time from `assets/` with `include_dir`.
//!
//! Requests are answered from the embedded map only — a path is a key, never a filesystem
//! path — so no request can reach the disk, whatever `..`, `%2e`, `\` or NUL it carries.
//! Responses carry a content type, an `ETag` (the file's hash, fixed per build), `nosniff`
//! and the Content-Security-Policy (no inline script, no inline style).

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};

use crate::http::{Request, Response};

static ASSETS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/assets");

/// The one policy for every page: everything from our own origin, WebSockets to ourselves.
pub const CSP: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; \
frame-ancestors 'none'; form-action 'self'";

/// Maps a request path to an embedded file name, or `None`. Only plain names made of
/// `[A-Za-z0-9._-]` segments are keys; anything else (`..`, `%`, `\`, NUL, `//`) is refused.
pub fn asset_key(path: &str) -> Option<&str> {
    let key = if path == "/" {
        "index.html"
    } else {
        path.strip_prefix('/')?
    };
    let ok = !key.is_empty()
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        });
    ok.then_some(key)
}

pub fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "wav" => "audio/wav",
        "ogg" => "audio/ogg",
        "mp3" => "audio/mpeg",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Adds the headers every page and API answer carries.
pub fn security_headers(r: Response) -> Response {
    r.with_header("X-Content-Type-Options", "nosniff")
        .with_header("Content-Security-Policy", CSP)
        .with_header("Referrer-Policy", "no-referrer")
        .with_header("X-Frame-Options", "DENY")
}

/// Serves an embedded asset for GET/HEAD, with `ETag` / `If-None-Match`.
pub fn serve(req: &Request) -> Option<Response> {
    let key = asset_key(&req.path)?;
    let file = ASSETS.get_file(key)?;
    let etag = format!(
        "\"{}\"",
        crate::http::auth::hex(&Sha256::digest(file.contents())[..8])
    );
    // Revalidate every time: the ETag makes that a cheap 304, and a new build is seen at once.
    let cache = "no-cache";
    if req.header("if-none-match") == Some(etag.as_str()) {
        return Some(
            Response {
                status: 304,
                headers: vec![("ETag", etag)],
                body: Vec::new(),
                stream: None,
            }
            .with_header("Cache-Control", cache),
        );
    }
    Some(
        Response::new(200, content_type(key), file.contents().to_vec())
            .with_header("ETag", etag)
            .with_header("Cache-Control", cache),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_map_to_keys() {
        assert_eq!(asset_key("/"), Some("index.html"));
        assert_eq!(asset_key("/app.js"), Some("app.js"));
        assert_eq!(asset_key("/img/logo.svg"), Some("img/logo.svg"));
        for bad in [
            "/../etc/passwd",
            "/..%2fetc",
            "/%2e%2e/x",
            "//etc/passwd",
            "/a\\b",
            "/a%00.js",
            "/.env",
            "/a/../b",
            "/a//b",
            "",
            "x",
            "/%c0%ae%c0%ae/",
            "/a/",
            "/.git/config",
        ] {
            assert_eq!(asset_key(bad), None, "{bad}");
        }
    }
}
