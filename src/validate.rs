//! Input rules of API.md as pure functions: usernames, passwords, channel names, message
//! content, emoji. No I/O; every rule is unit-tested here.

use crate::error::{ApiError, ApiResult};

/// API.md: message content is 1–4000 Unicode scalar values after trimming.
pub const MAX_CONTENT_CHARS: usize = 4000;
/// A channel topic is short text shown in the header.
pub const MAX_TOPIC_CHARS: usize = 256;

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

pub(crate) fn no_controls(s: &str, what: &str, allow_newlines: bool) -> ApiResult<()> {
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

/// An emoji reaction is one emoji sequence; the longest in Unicode 15 (a kiss with two skin
/// tones) is 35 bytes of UTF-8, so 64 is ample and still keeps a reaction small.
pub const MAX_EMOJI_BYTES: usize = 64;
/// Elements joined by U+200D in one sequence: the longest real ones (families) have four.
const MAX_ZWJ_ELEMENTS: usize = 5;

const ZWJ: char = '\u{200D}';
const VS16: char = '\u{FE0F}';
const KEYCAP: char = '\u{20E3}';
const TAG_BASE: char = '\u{1F3F4}'; // black flag: subdivision flags are it plus tags
const TAG_CANCEL: char = '\u{E007F}';

/// Extended_Pictographic code points (Unicode emoji-data.txt, grouped into ranges; the
/// unassigned holes inside the emoji blocks are included, as UTS #51 reserves them for future
/// emoji). Skin-tone modifiers, regional indicators, joiners, variation selectors, tags and
/// every letter, space, control and bidi character are outside it.
const PICTOGRAPHIC: &[(u32, u32)] = &[
    (0x00A9, 0x00A9),
    (0x00AE, 0x00AE),
    (0x203C, 0x203C),
    (0x2049, 0x2049),
    (0x2122, 0x2122),
    (0x2139, 0x2139),
    (0x2194, 0x2199),
    (0x21A9, 0x21AA),
    (0x231A, 0x231B),
    (0x2328, 0x2328),
    (0x2388, 0x2388),
    (0x23CF, 0x23CF),
    (0x23E9, 0x23F3),
    (0x23F8, 0x23FA),
    (0x24C2, 0x24C2),
    (0x25AA, 0x25AB),
    (0x25B6, 0x25B6),
    (0x25C0, 0x25C0),
    (0x25FB, 0x25FE),
    (0x2600, 0x2605),
    (0x2607, 0x2612),
    (0x2614, 0x2685),
    (0x2690, 0x2705),
    (0x2708, 0x2712),
    (0x2714, 0x2714),
    (0x2716, 0x2716),
    (0x271D, 0x271D),
    (0x2721, 0x2721),
    (0x2728, 0x2728),
    (0x2733, 0x2734),
    (0x2744, 0x2744),
    (0x2747, 0x2747),
    (0x274C, 0x274C),
    (0x274E, 0x274E),
    (0x2753, 0x2755),
    (0x2757, 0x2757),
    (0x2763, 0x2767),
    (0x2795, 0x2797),
    (0x27A1, 0x27A1),
    (0x27B0, 0x27B0),
    (0x27BF, 0x27BF),
    (0x2934, 0x2935),
    (0x2B05, 0x2B07),
    (0x2B1B, 0x2B1C),
    (0x2B50, 0x2B50),
    (0x2B55, 0x2B55),
    (0x3030, 0x3030),
    (0x303D, 0x303D),
    (0x3297, 0x3297),
    (0x3299, 0x3299),
    (0x1F000, 0x1F0FF),
    (0x1F10D, 0x1F10F),
    (0x1F12F, 0x1F12F),
    (0x1F16C, 0x1F171),
    (0x1F17E, 0x1F17F),
    (0x1F18E, 0x1F18E),
    (0x1F191, 0x1F19A),
    (0x1F1AD, 0x1F1E5),
    (0x1F201, 0x1F20F),
    (0x1F21A, 0x1F21A),
    (0x1F22F, 0x1F22F),
    (0x1F232, 0x1F23A),
    (0x1F23C, 0x1F23F),
    (0x1F249, 0x1F3FA),
    (0x1F400, 0x1F53D),
    (0x1F546, 0x1F64F),
    (0x1F680, 0x1F6FF),
    (0x1F774, 0x1F77F),
    (0x1F7D5, 0x1F7FF),
    (0x1F80C, 0x1F80F),
    (0x1F848, 0x1F84F),
    (0x1F85A, 0x1F85F),
    (0x1F888, 0x1F88F),
    (0x1F8AE, 0x1F8FF),
    (0x1F90C, 0x1F93A),
    (0x1F93C, 0x1F945),
    (0x1F947, 0x1FAFF),
    (0x1FC00, 0x1FFFD),
];

fn pictographic(c: char) -> bool {
    let c = c as u32;
    PICTOGRAPHIC
        .binary_search_by(|&(lo, hi)| {
            if hi < c {
                std::cmp::Ordering::Less
            } else if lo > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

fn skin_tone(c: char) -> bool {
    ('\u{1F3FB}'..='\u{1F3FF}').contains(&c)
}

fn regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

/// Takes one element of an emoji sequence off the front of `chars` (UTS #51 ED-14..ED-17):
/// a keycap, a flag, a tag sequence, or a pictograph with an optional VS16 and skin tone.
fn element(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    let Some(first) = chars.next() else {
        return false;
    };
    if matches!(first, '0'..='9' | '#' | '*') {
        chars.next_if_eq(&VS16);
        return chars.next_if_eq(&KEYCAP).is_some();
    }
    if regional_indicator(first) {
        return chars.next_if(|&c| regional_indicator(c)).is_some();
    }
    if !pictographic(first) {
        return false;
    }
    if first == TAG_BASE
        && chars
            .peek()
            .is_some_and(|&c| ('\u{E0020}'..='\u{E007E}').contains(&c))
    {
        while chars
            .next_if(|&c| ('\u{E0020}'..='\u{E007E}').contains(&c))
            .is_some()
        {}
        return chars.next_if_eq(&TAG_CANCEL).is_some();
    }
    // A skin tone follows its base directly; otherwise one VS16 may ask for emoji style.
    if chars.next_if(|&c| skin_tone(c)).is_none() {
        chars.next_if_eq(&VS16);
    }
    true
}

/// One emoji: a single element, or elements joined by U+200D (a family, a rainbow flag). A
/// joiner is accepted only between two elements, and nothing invisible, no letter, space,
/// control or bidi character can be part of it.
fn is_emoji(e: &str) -> bool {
    if e.is_empty() || e.len() > MAX_EMOJI_BYTES {
        return false;
    }
    let mut chars = e.chars().peekable();
    for _ in 0..MAX_ZWJ_ELEMENTS {
        if !element(&mut chars) {
            return false;
        }
        match chars.next() {
            None => return true,
            Some(ZWJ) => continue,
            Some(_) => return false,
        }
    }
    false
}

/// A reaction's emoji: exactly one emoji sequence (issue 19, finding 7: any short non-ASCII
/// text was accepted, U+202E and lone joiners included).
pub fn emoji(e: &str) -> ApiResult<()> {
    if is_emoji(e) {
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

    #[test]
    fn emoji_are_real_emoji_sequences_only() {
        for ok in [
            "\u{1F44D}",
            "\u{1F44D}\u{1F3FD}",
            "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
            "\u{2764}\u{FE0F}",
            "\u{2764}",
            "\u{1F1EB}\u{1F1F7}",
            "1\u{FE0F}\u{20E3}",
            "#\u{20E3}",
            "\u{1F3F3}\u{FE0F}\u{200D}\u{1F308}",
            "\u{1F3F4}\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
            "\u{1F600}",
            "👩🏻‍❤️‍💋‍👨🏼",
            "🏳️‍⚧️",
            "🧑‍🧑‍🧒‍🧒",
            "🏴",
            "©️",
            "🫠",
        ] {
            assert!(is_emoji(ok), "{ok:?} {}", ok.escape_unicode());
        }
        for bad in [
            "\u{202E}",
            "\u{202E}\u{1F44D}",
            "\u{1F44D}\u{2066}",
            "\u{200D}",
            "\u{1F44D}\u{200D}",
            "\u{200D}\u{1F44D}",
            "\u{200B}",
            "\u{2060}",
            "é",
            "漢字",
            "\u{FE0F}",
            "\u{1F3FD}",
            "\u{1F44D}\u{1F44E}",
            "\u{1F44D}é",
            "\u{E000}",
            "",
            "a",
            "1",
            "11\u{20E3}",
            "\u{1F1EB}",
            "\u{1F44D}\u{200D}\u{200D}\u{1F44D}",
            "\u{1F44D} ",
            "\u{1F3F4}\u{E0067}",
            "\u{1F44D}\u{FE0F}\u{FE0F}",
            "\u{1F44D}\u{1F3FD}\u{1F3FD}",
            &"\u{1F44D}\u{200D}".repeat(5),
            "\u{1F44D}\u{0301}",
            "\u{1F44D}\u{E0067}",
        ] {
            assert!(!is_emoji(bad), "{bad:?} {}", bad.escape_unicode());
        }
        let mut sorted = PICTOGRAPHIC.to_vec();
        sorted.sort();
        assert_eq!(sorted, PICTOGRAPHIC);
        assert!(PICTOGRAPHIC.windows(2).all(|w| w[0].1 < w[1].0));
    }
}
