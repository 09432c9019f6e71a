//! Input rules of API.md as pure functions: usernames, passwords, channel names, message
//! content, emoji. No I/O; every rule is unit-tested here.

use crate::error::{ApiError, ApiResult};

/// API.md: message content is 1–4000 Unicode scalar values after trimming.
pub const MAX_CONTENT_CHARS: usize = 4000;
/// A channel topic is short text shown in the header.
pub const MAX_TOPIC_CHARS: usize = 256;
/// An emoji reaction is one emoji (possibly with modifiers and joiners): 32 bytes is ample.
pub const MAX_EMOJI_BYTES: usize = 32;

/// 2–32 chars of `[A-Za-z0-9_.-]`.
pub fn username(name: &str) -> ApiResult<()> {
    let ok = (2..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "username must be 2-32 characters of A-Z a-z 0-9 _ . -",
        ))
    }
}

/// 8–128 characters.
pub fn password(pw: &str) -> ApiResult<()> {
    let n = pw.chars().count();
    if (8..=128).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::bad_request("password must be 8-128 characters"))
    }
}

/// 1–32 chars of `[a-z0-9_-]`.
pub fn channel_name(name: &str) -> ApiResult<()> {
    let ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "channel name must be 1-32 characters of a-z 0-9 _ -",
        ))
    }
}

fn no_controls(s: &str, what: &str, allow_newlines: bool) -> ApiResult<()> {
    if s.chars()
        .any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t')))
    {
        return Err(ApiError::bad_request(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(())
}

/// Trims and checks message content; returns the text to store.
pub fn content(raw: &str) -> ApiResult<String> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 {
        return Err(ApiError::bad_request("message is empty"));
    }
    if n > MAX_CONTENT_CHARS {
        return Err(ApiError::bad_request("message is over 4000 characters"));
    }
    no_controls(t, "message", true)?;
    Ok(t.to_string())
}

/// Like [`content`], except that a message carrying files may have no text (API.md: "`content`
/// may then be empty").
pub fn message_content(raw: &str, has_attachments: bool) -> ApiResult<String> {
    if has_attachments && raw.trim().is_empty() {
        return Ok(String::new());
    }
    content(raw)
}

pub fn topic(raw: &str) -> ApiResult<String> {
    let t = raw.trim();
    if t.chars().count() > MAX_TOPIC_CHARS {
        return Err(ApiError::bad_request("topic is over 256 characters"));
    }
    no_controls(t, "topic", false)?;
    Ok(t.to_string())
}

/// An emoji: short, no ASCII letters/digits/punctuation, no controls or spaces.
pub fn emoji(e: &str) -> ApiResult<()> {
    let ok = !e.is_empty()
        && e.len() <= MAX_EMOJI_BYTES
        && !e
            .chars()
            .any(|c| c.is_ascii() || c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request("emoji must be a single emoji"))
    }
}

/// Nonces are client-chosen ids for idempotent sends.
pub fn nonce(n: &str) -> ApiResult<()> {
    if n.is_empty() || n.len() > 64 || n.chars().any(|c| c.is_control()) {
        return Err(ApiError::bad_request(
            "nonce must be 1-64 printable characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        for ok in ["al", "alice", "A.b-c_9", &"x".repeat(32)] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "", "al ice", "ålice", "<script>", &"x".repeat(33)] {
            assert!(username(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channel_names() {
        assert!(channel_name("general").is_ok());
        assert!(channel_name("dev-ops_2").is_ok());
        for bad in ["", "General", "a b", "x/y", &"a".repeat(33)] {
            assert!(channel_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn content_rules() {
        assert_eq!(content("  hi \n").unwrap(), "hi");
        assert!(content("line\nline\ttab").is_ok());
        assert!(content("   ").is_err());
        assert!(content("bell\u{7}").is_err());
        assert!(content("nul\0").is_err());
        assert!(content(&"é".repeat(4000)).is_ok());
        assert!(content(&"é".repeat(4001)).is_err());
    }

    #[test]
    fn passwords_and_emoji() {
        assert!(password("12345678").is_ok());
        assert!(password("1234567").is_err());
        assert!(password(&"p".repeat(129)).is_err());
        assert!(emoji("👍").is_ok());
        assert!(emoji("👍🏽").is_ok());
        assert!(emoji("a").is_err());
        assert!(emoji("").is_err());
        assert!(emoji(&"😀".repeat(9)).is_err());
    }
}
