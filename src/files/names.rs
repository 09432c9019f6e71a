//! What an uploaded file's name becomes (API.md: "path parts, control and bidi characters
//! removed, cut to 128 chars; never refused for its name unless nothing is left").
//!
//! The name is only ever a label: files are stored under their hash, so a name cannot reach
//! the disk. It is still cleaned, because it ends up in `Content-Disposition` headers, in
//! download dialogs and on screen, where `../`, NUL or a right-to-left override
//! (`invoice\u{202E}gpj.exe`) would mislead a person or a client.

/// Longest kept name, in Unicode scalar values: room for any real file name, small in a header.
pub const MAX_FILENAME_CHARS: usize = 128;

/// The safe form of `raw`, or `None` when nothing usable is left.
pub fn sanitize_filename(raw: &str) -> Option<String> {
    // Only the last path part counts, whichever separator the client's system uses.
    let last = raw
        .split(['/', '\\'])
        .rev()
        .find(|part| !part.trim().is_empty())
        .unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|&c| !c.is_control() && !is_bidi_control(c))
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '.') {
        return None;
    }
    let cut: String = trimmed.chars().take(MAX_FILENAME_CHARS).collect();
    Some(cut.trim_end().to_string())
}

/// The Unicode bidirectional formatting characters (UAX #9): embeddings, overrides, isolates
/// and the implicit marks. None belongs in a file name; each can make one read backwards.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parts_are_removed() {
        assert_eq!(sanitize_filename("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(
            sanitize_filename("C:\\Users\\me\\cat.png").unwrap(),
            "cat.png"
        );
        assert_eq!(sanitize_filename("photos/").unwrap(), "photos");
        assert_eq!(sanitize_filename("..\\..\\x.txt").unwrap(), "x.txt");
    }

    #[test]
    fn control_and_bidi_characters_are_removed() {
        assert_eq!(sanitize_filename("a\0b\r\n.txt").unwrap(), "ab.txt");
        assert_eq!(
            sanitize_filename("invoice\u{202E}gpj.exe").unwrap(),
            "invoicegpj.exe"
        );
        assert_eq!(sanitize_filename("\u{2066}x\u{2069}.png").unwrap(), "x.png");
    }

    #[test]
    fn long_names_are_cut_to_128_chars() {
        let long = "é".repeat(300) + ".png";
        let cut = sanitize_filename(&long).unwrap();
        assert_eq!(cut.chars().count(), MAX_FILENAME_CHARS);
    }

    #[test]
    fn nothing_left_is_refused() {
        for raw in ["", "   ", "/", "..", "../..", "\0\u{202E}", "a/./"] {
            assert_eq!(sanitize_filename(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn ordinary_names_are_kept() {
        assert_eq!(
            sanitize_filename("Screenshot 2026-12-01 at 10.00.png").unwrap(),
            "Screenshot 2026-12-01 at 10.00.png"
        );
        assert_eq!(sanitize_filename("日本語.txt").unwrap(), "日本語.txt");
    }
}
