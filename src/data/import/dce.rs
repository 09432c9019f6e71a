//! The DiscordChatExporter JSON format as `import-discord` reads it: the types of one
//! message (only the fields we keep; every other field is skipped unread), a streaming scan
//! of one file that hands each message to a callback as soon as it is parsed, and the
//! ISO 8601 timestamps it writes.
//!
//! Streaming: serde_json reads the file through a buffer and our visitor walks the top-level
//! object itself, so `messages` is never held as a whole: memory is one message at a time,
//! whatever the file's size (DiscordChatExporter files reach gigabytes).

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

/// Read buffer for an export file: large sequential reads, and still nothing next to a
/// message's own allocations.
const READ_BUFFER: usize = 256 * 1024;
/// Discord ids are snowflakes: u64, at most 20 decimal digits.
const MAX_SNOWFLAKE_DIGITS: usize = 20;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Guild {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct Channel {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Author {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub nickname: Option<String>,
    #[serde(default, rename = "avatarUrl")]
    pub avatar_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Attachment {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default, rename = "fileName")]
    pub file_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Emoji {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Reaction {
    pub emoji: Emoji,
    /// Older exports list only a count; then no one can be credited and the reaction is
    /// left out.
    #[serde(default)]
    pub users: Vec<Author>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Reference {
    #[serde(default, rename = "messageId")]
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Sticker {
    #[serde(default)]
    pub name: Option<String>,
}

/// One message of `messages[]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Message {
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub timestamp: String,
    #[serde(default, rename = "timestampEdited")]
    pub timestamp_edited: Option<String>,
    #[serde(default, rename = "isPinned")]
    pub is_pinned: bool,
    #[serde(default)]
    pub content: Option<String>,
    pub author: Author,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    #[serde(default)]
    pub reference: Option<Reference>,
    #[serde(default)]
    pub stickers: Vec<Sticker>,
}

impl Message {
    /// Checks what the import relies on; returns (timestamp ms, snowflake) for ordering.
    pub fn validate(&self) -> Result<(i64, u64), String> {
        let sf =
            snowflake(&self.id).ok_or_else(|| format!("id {:?} is not a Discord id", self.id))?;
        let ts = parse_ts(&self.timestamp)
            .ok_or_else(|| format!("timestamp {:?} is not an ISO 8601 date", self.timestamp))?;
        if let Some(e) = self.timestamp_edited.as_deref().filter(|e| !e.is_empty()) {
            parse_ts(e).ok_or_else(|| format!("timestampEdited {e:?} is not an ISO 8601 date"))?;
        }
        if self.author.id.is_empty() {
            return Err("author has an empty id".into());
        }
        for r in &self.reactions {
            if r.users.iter().any(|u| u.id.is_empty()) {
                return Err("a reaction's user has an empty id".into());
            }
        }
        Ok((ts, sf))
    }

    /// Unix milliseconds of `timestampEdited`, when it has one.
    pub fn edited_ms(&self) -> Option<i64> {
        self.timestamp_edited.as_deref().and_then(parse_ts)
    }
}

/// A snowflake's value: 1–20 ASCII digits that fit in a u64.
pub fn snowflake(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > MAX_SNOWFLAKE_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What a scan found besides the messages.
#[derive(Debug, Default)]
pub struct Head {
    pub guild: Option<Guild>,
    pub channel: Option<Channel>,
    /// Whether a `messages` array was there at all.
    pub saw_messages: bool,
    pub messages: u64,
}

/// Streams `path`, calling `on_message(index, message)` for each message as it is parsed.
/// An error names the file and the place: the message index when inside `messages`, and
/// serde_json's line and column.
pub fn scan(
    path: &Path,
    mut on_message: impl FnMut(usize, Message) -> Result<(), String>,
) -> Result<Head, String> {
    let file = File::open(path).map_err(|e| format!("{}: cannot open: {e}", path.display()))?;
    let mut de = serde_json::Deserializer::from_reader(BufReader::with_capacity(READ_BUFFER, file));
    let at = Cell::new(None);
    let mut head = Head::default();
    let result = DocSeed {
        head: &mut head,
        at: &at,
        on_message: &mut on_message,
    }
    .deserialize(&mut de)
    .and_then(|()| de.end());
    match result {
        Ok(()) if head.channel.is_none() => Err(format!(
            "{}: not a DiscordChatExporter JSON export (no \"channel\" object)",
            path.display()
        )),
        Ok(()) if !head.saw_messages => Err(format!(
            "{}: not a DiscordChatExporter JSON export (no \"messages\" array)",
            path.display()
        )),
        Ok(()) => Ok(head),
        Err(e) => Err(format!(
            "{}: {}{e}",
            path.display(),
            at.get()
                .map(|i| format!("messages[{i}]: "))
                .unwrap_or_default()
        )),
    }
}

struct DocSeed<'a, F> {
    head: &'a mut Head,
    at: &'a Cell<Option<usize>>,
    on_message: &'a mut F,
}

impl<'de, F: FnMut(usize, Message) -> Result<(), String>> DeserializeSeed<'de> for DocSeed<'_, F> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(usize, Message) -> Result<(), String>> Visitor<'de> for DocSeed<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a DiscordChatExporter JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "guild" => self.head.guild = Some(map.next_value()?),
                "channel" => {
                    let c: Channel = map.next_value()?;
                    if snowflake(&c.id).is_none() {
                        return Err(de::Error::custom(format!(
                            "channel.id {:?} is not a Discord id",
                            c.id
                        )));
                    }
                    self.head.channel = Some(c);
                }
                "messages" => {
                    self.head.saw_messages = true;
                    self.head.messages = map.next_value_seed(MessagesSeed {
                        at: self.at,
                        on_message: &mut *self.on_message,
                    })?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct MessagesSeed<'a, F> {
    at: &'a Cell<Option<usize>>,
    on_message: &'a mut F,
}

impl<'de, F: FnMut(usize, Message) -> Result<(), String>> DeserializeSeed<'de>
    for MessagesSeed<'_, F>
{
    type Value = u64;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F: FnMut(usize, Message) -> Result<(), String>> Visitor<'de> for MessagesSeed<'_, F> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of messages")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut i = 0;
        loop {
            self.at.set(Some(i));
            let Some(m) = seq.next_element::<Message>()? else {
                break;
            };
            (self.on_message)(i, m).map_err(de::Error::custom)?;
            i += 1;
        }
        self.at.set(None);
        Ok(i as u64)
    }
}

/// DiscordChatExporter's timestamps as Unix milliseconds: `2020-09-08T20:18:23.123+00:00`,
/// any number of fraction digits (or none), `Z`, `±HH:MM`, `±HHMM` or no offset (UTC).
pub fn parse_ts(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut ms = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
        let frac = &s[start..i.min(start + 3)];
        ms = frac.parse::<i64>().ok()? * 10_i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match &s[i..] {
        "" | "Z" | "z" => 0,
        rest => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let (oh, om) = (
                digits[..2].parse::<i64>().ok()?,
                digits[2..].parse::<i64>().ok()?,
            );
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo)
        || d < 1
        || d > month_days[(mo - 1) as usize]
        || h > 23
        || mi > 59
        || sec > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), the inverse of export.rs's.
    let yy = if mo <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_form_discord_chat_exporter_writes() {
        assert_eq!(parse_ts("1970-01-01T00:00:00+00:00"), Some(0));
        assert_eq!(parse_ts("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(
            parse_ts("2020-09-08T20:18:23.123+00:00"),
            Some(1_599_596_303_123)
        );
        assert_eq!(
            parse_ts("2020-09-08T22:18:23.1234567+02:00"),
            Some(1_599_596_303_123)
        );
        assert_eq!(
            parse_ts("2020-09-08T15:18:23.123-0500"),
            Some(1_599_596_303_123)
        );
        assert_eq!(parse_ts("2024-02-29T00:00:00"), Some(1_709_164_800_000));
        for bad in [
            "",
            "yesterday",
            "2020-13-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2020-09-08T20:18:23.+00:00",
            "2020-09-08T20:18:23+0",
            "2020-09-08T25:18:23Z",
            "2020-09-08T20:18:23 UTC",
        ] {
            assert_eq!(parse_ts(bad), None, "{bad}");
        }
    }

    #[test]
    fn snowflakes() {
        assert_eq!(
            snowflake("175928847299117063"),
            Some(175_928_847_299_117_063)
        );
        for bad in ["", "12a", "-1", "99999999999999999999999"] {
            assert_eq!(snowflake(bad), None, "{bad}");
        }
    }
}
