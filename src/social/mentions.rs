//! What a mention is (API.md: "`@username` of a member who can see the channel, or an
//! allowed `@everyone` / `@here` / `@role`"). Pure text rules; the store turns the names into
//! rows (`store/social.rs` `record_mentions`). The group mentions need the permission
//! snapshot and who is online, so `community/chat.rs` `settle_mentions` writes theirs (and
//! drops the `@username` rows of members who cannot see the channel).

/// At most this many distinct names of one message are looked up: a 4000-character message
/// could name about 1,300 users, and each costs a lookup on the store thread. Past 50 it is
/// a roll call, not a conversation.
pub const MAX_MENTIONS_PER_MESSAGE: usize = 50;

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-'
}

/// The lowercased usernames `@named` in `content`: an `@` at the start or after a character
/// that cannot be in a username (so `a@b.com` names nobody), then 2–32 username characters.
/// A name followed by a full stop (`@bob.`) is also tried without it.
pub fn usernames(content: &str) -> Vec<String> {
    let b = content.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < MAX_MENTIONS_PER_MESSAGE {
        if b[i] != b'@' || (i > 0 && (name_byte(b[i - 1]) || b[i - 1] == b'@')) {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < b.len() && name_byte(b[end]) {
            end += 1;
        }
        let word = &content[start..end];
        for candidate in [word, word.trim_end_matches(['.', '-'])] {
            let n = candidate.len();
            let lc = candidate.to_ascii_lowercase();
            if (2..=32).contains(&n) && !out.contains(&lc) {
                out.push(lc);
            }
        }
        i = end.max(i + 1);
    }
    out.truncate(MAX_MENTIONS_PER_MESSAGE);
    out
}

/// Whether `content` mentions `username` (the same rule, for one name).
pub fn mentions(content: &str, username: &str) -> bool {
    let lc = username.to_ascii_lowercase();
    usernames(content).contains(&lc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_after_an_at_sign_count_emails_do_not() {
        assert_eq!(usernames("hi @Bob and @carol."), ["bob", "carol.", "carol"]);
        assert!(usernames("mail a@bob.com or @@bob").is_empty());
        assert_eq!(usernames("@x @ab"), ["ab"]);
        assert!(mentions("(@alice)", "Alice"));
        assert!(!mentions("@alicex", "alice"));
        let many: String = (0..200).map(|i| format!("@user{i} ")).collect();
        assert_eq!(usernames(&many).len(), MAX_MENTIONS_PER_MESSAGE);
    }
}
