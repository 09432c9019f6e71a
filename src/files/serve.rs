//! Serving a stored file: the response head (type, disposition, caching, range) and the
//! streamed body. Runs on the downloader's connection thread, after `store::attachments::readable`
//! said yes.
//!
//! Every file response carries `X-Content-Type-Options: nosniff` and a sandboxing CSP, so even
//! a file a browser is tricked into rendering runs no script and reaches nothing. The type is
//! the one sniffed at upload; only [`Kind::disposition`]'s inline kinds are shown inline.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use super::range::{copy_range, parse_range, ByteRange};
use super::sniff::{sniff, Disposition, Kind};

/// Stored files never change (their name is their hash), so they may be cached for a year;
/// `private` because each is behind a session.
const CACHE_CONTROL: &str = "private, max-age=31536000, immutable";
/// No script, no plugins, no loads, no forms: a file is data, never a page (GitHub's raw
/// content uses the same).
const FILE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

/// Which bytes of an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Original,
    Thumb,
}

/// A response head for a file, and which bytes of it follow.
#[derive(Debug)]
pub struct FileResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    /// `(file, offset, length)` to send after the head; `None` for 304 and 416.
    pub body: Option<(File, u64, u64)>,
}

/// Builds the response for `path` (a blob or thumbnail), honouring `Range` and
/// `If-None-Match`. `kind` and `filename` come from the attachment's row.
pub fn respond(
    path: &Path,
    part: Part,
    kind: Kind,
    filename: &str,
    hash: &str,
    range: Option<&str>,
    if_none_match: Option<&str>,
) -> io::Result<FileResponse> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let kind = match part {
        Part::Original => kind,
        // Thumbnails are JPEG or PNG, whichever the pool wrote.
        Part::Thumb => {
            let mut head = [0u8; 8];
            let n = file.read(&mut head)?;
            sniff(&head[..n])
        }
    };
    let etag = match part {
        Part::Original => format!("\"{hash}\""),
        Part::Thumb => format!("\"{hash}-thumb\""),
    };
    let mut headers = vec![
        ("Content-Type", kind.content_type().to_string()),
        ("X-Content-Type-Options", "nosniff".to_string()),
        ("Content-Security-Policy", FILE_CSP.to_string()),
        ("Cache-Control", CACHE_CONTROL.to_string()),
        ("ETag", etag.clone()),
        ("Accept-Ranges", "bytes".to_string()),
        (
            "Content-Disposition",
            content_disposition(kind.disposition(), filename),
        ),
    ];
    if if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return Ok(FileResponse {
            status: 304,
            headers,
            body: None,
        });
    }
    let range = parse_range(range, size);
    let status = match range {
        ByteRange::Full => 200,
        ByteRange::Partial { start, end } => {
            headers.push(("Content-Range", format!("bytes {start}-{end}/{size}")));
            206
        }
        ByteRange::Unsatisfiable => {
            headers.push(("Content-Range", format!("bytes */{size}")));
            416
        }
    };
    let body = range.span(size).map(|(offset, len)| (file, offset, len));
    Ok(FileResponse {
        status,
        headers,
        body,
    })
}

impl FileResponse {
    /// Bytes of body that follow the head.
    pub fn content_length(&self) -> u64 {
        self.body.as_ref().map_or(0, |(_, _, len)| *len)
    }

    /// Writes the body through one bounded buffer.
    pub fn write_body(self, out: &mut impl Write) -> io::Result<()> {
        match self.body {
            Some((mut file, offset, len)) => copy_range(&mut file, offset, len, out),
            None => Ok(()),
        }
    }
}

/// `Content-Disposition` (RFC 6266): `inline` or `attachment`, with the name as an ASCII
/// fallback and as UTF-8 (RFC 8187). The name was cleaned at upload; quotes and backslashes
/// are still kept out of the quoted form.
pub fn content_disposition(disposition: Disposition, filename: &str) -> String {
    let kind = match disposition {
        Disposition::Inline => "inline",
        Disposition::Attachment => "attachment",
    };
    let ascii: String = filename
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let encoded: String = filename
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a FileResponse, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn disposition_names_are_quoted_safely() {
        assert_eq!(
            content_disposition(Disposition::Attachment, "a \"b\".html"),
            "attachment; filename=\"a _b_.html\"; filename*=UTF-8''a%20%22b%22.html"
        );
        assert_eq!(
            content_disposition(Disposition::Inline, "é.png"),
            "inline; filename=\"_.png\"; filename*=UTF-8''%C3%A9.png"
        );
    }

    #[test]
    fn heads_for_full_range_unsatisfiable_and_not_modified() {
        let dir = std::env::temp_dir().join(format!("md-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("blob");
        std::fs::write(&path, b"<html><script>alert(1)</script>").unwrap();
        let r = respond(
            &path,
            Part::Original,
            Kind::Other,
            "x.html",
            "ab",
            None,
            None,
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(header(&r, "Content-Type"), Some("application/octet-stream"));
        assert_eq!(header(&r, "X-Content-Type-Options"), Some("nosniff"));
        assert!(header(&r, "Content-Disposition")
            .unwrap()
            .starts_with("attachment"));
        assert!(header(&r, "Content-Security-Policy")
            .unwrap()
            .contains("sandbox"));
        assert_eq!(r.content_length(), 31);

        let r = respond(
            &path,
            Part::Original,
            Kind::Png,
            "x.png",
            "ab",
            Some("bytes=2-5"),
            None,
        )
        .unwrap();
        assert_eq!(r.status, 206);
        assert_eq!(header(&r, "Content-Range"), Some("bytes 2-5/31"));
        assert!(header(&r, "Content-Disposition")
            .unwrap()
            .starts_with("inline"));
        let mut out = Vec::new();
        r.write_body(&mut out).unwrap();
        assert_eq!(out, b"tml>");

        let r = respond(
            &path,
            Part::Original,
            Kind::Png,
            "x",
            "ab",
            Some("bytes=99-"),
            None,
        )
        .unwrap();
        assert_eq!((r.status, r.content_length()), (416, 0));
        assert_eq!(header(&r, "Content-Range"), Some("bytes */31"));

        let r = respond(
            &path,
            Part::Original,
            Kind::Png,
            "x",
            "ab",
            None,
            Some("\"ab\""),
        )
        .unwrap();
        assert_eq!(r.status, 304);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
