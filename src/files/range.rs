//! `Range` requests (RFC 9110 §14) for stored files, and the bounded copy that serves them.
//!
//! One range is honoured (`bytes=a-b`, `bytes=a-`, `bytes=-n`): that is what players send to
//! seek. A header we do not understand, or a list of ranges, is ignored and the whole file is
//! sent, which RFC 9110 §14.2 allows ("A server MAY ignore the Range header field").

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes copied per read when serving a file: memory per download stays this, whatever the size.
pub const COPY_CHUNK: usize = 64 * 1024;

/// What a `Range` header asks of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range: 200 with the whole file.
    Full,
    /// 206 with `Content-Range: bytes start-end/size` (`end` inclusive).
    Partial { start: u64, end: u64 },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

impl ByteRange {
    /// `(offset, length)` to send from a file of `size` bytes (nothing for 416).
    pub fn span(self, size: u64) -> Option<(u64, u64)> {
        match self {
            ByteRange::Full => Some((0, size)),
            ByteRange::Partial { start, end } => Some((start, end - start + 1)),
            ByteRange::Unsatisfiable => None,
        }
    }
}

/// Reads a `Range` header for a file of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.map(str::trim).and_then(|h| h.strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), number(first), number(last)) {
        // bytes=-n: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || size == 0 {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Partial {
                    start: size.saturating_sub(n),
                    end: size - 1,
                }
            }
        }
        (false, Some(start), last) if last.is_some() || last_is_empty(last, spec) => {
            if start >= size {
                return ByteRange::Unsatisfiable;
            }
            match last {
                Some(end) if end < start => ByteRange::Full,
                Some(end) => ByteRange::Partial {
                    start,
                    end: end.min(size - 1),
                },
                None => ByteRange::Partial {
                    start,
                    end: size - 1,
                },
            }
        }
        _ => ByteRange::Full,
    }
}

/// `bytes=a-`: the part after the dash is empty (not junk).
fn last_is_empty(last: Option<u64>, spec: &str) -> bool {
    last.is_none() && spec.trim().ends_with('-')
}

/// Sends `len` bytes of `file` from `offset` to `out` through one [`COPY_CHUNK`] buffer.
/// A file that is shorter than promised is an error: the response would be cut short.
pub fn copy_range(file: &mut File, offset: u64, len: u64, out: &mut impl Write) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; COPY_CHUNK.min(len.max(1) as usize)];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ByteRange::*;

    #[test]
    fn single_ranges() {
        assert_eq!(
            parse_range(Some("bytes=0-99"), 1000),
            Partial { start: 0, end: 99 }
        );
        assert_eq!(
            parse_range(Some("bytes=500-"), 1000),
            Partial {
                start: 500,
                end: 999
            }
        );
        assert_eq!(
            parse_range(Some("bytes=-100"), 1000),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse_range(Some("bytes=-5000"), 1000),
            Partial { start: 0, end: 999 }
        );
        assert_eq!(
            parse_range(Some("bytes=900-5000"), 1000),
            Partial {
                start: 900,
                end: 999
            }
        );
        assert_eq!(
            parse_range(Some("bytes=999-999"), 1000),
            Partial {
                start: 999,
                end: 999
            }
        );
    }

    #[test]
    fn unsatisfiable_ranges_are_416() {
        assert_eq!(parse_range(Some("bytes=1000-"), 1000), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=1000-2000"), 1000), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 1000), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-0"), 0), Unsatisfiable);
    }

    #[test]
    fn anything_else_is_the_whole_file() {
        for h in [
            None,
            Some("bytes=0-1,5-6"),
            Some("items=0-1"),
            Some("bytes=abc"),
            Some("bytes=5-1"),
            Some("bytes=-"),
            Some("bytes=1-x"),
            Some("bytes=+1-2"),
            Some("bytes=99999999999999999999999-"),
        ] {
            assert_eq!(parse_range(h, 1000), Full, "{h:?}");
        }
    }

    #[test]
    fn span_gives_offset_and_length() {
        assert_eq!(Full.span(10), Some((0, 10)));
        assert_eq!(Partial { start: 2, end: 5 }.span(10), Some((2, 4)));
        assert_eq!(Unsatisfiable.span(10), None);
    }

    #[test]
    fn copy_range_sends_exactly_the_span() {
        let dir = std::env::temp_dir().join(format!("md-range-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let mut f = File::open(&path).unwrap();
        let mut out = Vec::new();
        copy_range(&mut f, 70_000, 100_000, &mut out).unwrap();
        assert_eq!(out, &data[70_000..170_000]);
        let mut out = Vec::new();
        assert!(copy_range(&mut f, 150_000, 100_000, &mut out).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
