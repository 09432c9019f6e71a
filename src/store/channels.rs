//! Channels: the list, one by name, creating and deleting, and each text channel's newest
//! message id (for `ready.last_ids`). A voice channel's stored `voice_mode` (migration 8)
//! is read and written with the rest of the row. Runs on the store thread, inside the batch
//! transaction.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::now_ms;
use crate::error::{ApiError, ApiResult};
use crate::model::{Channel, VoiceMode};

pub fn list_channels(conn: &Connection) -> ApiResult<Vec<Channel>> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {CHANNEL_COLUMNS} FROM channels ORDER BY kind, position, id"
    ))?;
    let rows = st
        .query_map([], |r| channel_row(r, 0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Columns a [`Channel`] is read from, in `channel_row`'s order.
const CHANNEL_COLUMNS: &str = "name, kind, topic, slowmode_s, position, category, voice_mode";

fn channel_row(r: &rusqlite::Row, at: usize) -> rusqlite::Result<Channel> {
    Ok(Channel {
        name: r.get(at)?,
        kind: r.get(at + 1)?,
        topic: r.get(at + 2)?,
        slowmode_s: r.get(at + 3)?,
        position: r.get(at + 4)?,
        category: r.get(at + 5)?,
        // The column has no CHECK (migration 8 could not add one): a value this version does
        // not know reads as "the default" instead of breaking the channel list.
        voice_mode: r
            .get::<_, Option<String>>(at + 6)?
            .as_deref()
            .and_then(VoiceMode::parse),
    })
}

pub fn channel(conn: &Connection, name: &str) -> ApiResult<Option<(i64, Channel)>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT id, {CHANNEL_COLUMNS} FROM channels WHERE name = ?1"
        ))?
        .query_row(params![name], |r| Ok((r.get(0)?, channel_row(r, 1)?)))
        .optional()?)
}

/// The id of a channel that holds messages (text or DM): `NotFound` if unknown,
/// `BadRequest` if it is a voice channel.
pub fn text_channel_id(conn: &Connection, name: &str) -> ApiResult<i64> {
    match channel(conn, name)? {
        None => Err(ApiError::not_found(format!("no channel named {name:?}"))),
        Some((_, c)) if !c.kind.has_messages() => Err(ApiError::bad_request(format!(
            "{name:?} is a voice channel"
        ))),
        Some((id, _)) => Ok(id),
    }
}

pub fn insert_channel(conn: &Connection, c: &Channel) -> ApiResult<()> {
    if channel(conn, &c.name)?.is_some() {
        return Err(ApiError::conflict(format!(
            "a channel named {:?} exists",
            c.name
        )));
    }
    conn.prepare_cached(
        "INSERT INTO channels (name, kind, topic, created_ts, slowmode_s, position, category, voice_mode) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![c.name, c.kind, c.topic, now_ms(), c.slowmode_s, c.position, c.category, c.voice_mode])?;
    Ok(())
}

pub fn delete_channel(conn: &Connection, name: &str) -> ApiResult<Channel> {
    let Some((id, c)) = channel(conn, name)? else {
        return Err(ApiError::not_found(format!("no channel named {name:?}")));
    };
    conn.prepare_cached("DELETE FROM channels WHERE id = ?1")?
        .execute(params![id])?;
    Ok(c)
}

/// The newest message id of every text channel that has messages.
pub fn last_ids(conn: &Connection) -> ApiResult<HashMap<String, i64>> {
    let mut st = conn.prepare_cached(
        "SELECT c.name, (SELECT MAX(m.id) FROM messages m WHERE m.channel_id = c.id) FROM channels c WHERE c.kind IN ('text', 'dm')",
    )?;
    let rows = st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, Option<i64>>(1)?))
    })?;
    let mut out = HashMap::new();
    for row in rows {
        let (name, id) = row?;
        if let Some(id) = id {
            out.insert(name, id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::schema::test_db as db;
    use super::*;
    use crate::model::ChannelKind;

    #[test]
    fn voice_mode_round_trips_and_unknown_reads_as_default() {
        let c = db();
        let mut ch = Channel::new("stage".into(), ChannelKind::Voice, String::new());
        ch.voice_mode = Some(VoiceMode::Sfu);
        insert_channel(&c, &ch).unwrap();
        assert_eq!(
            channel(&c, "stage").unwrap().unwrap().1.voice_mode,
            Some(VoiceMode::Sfu)
        );
        assert_eq!(channel(&c, "lounge").unwrap().unwrap().1.voice_mode, None);
        c.execute(
            "UPDATE channels SET voice_mode = 'p2p' WHERE name = 'stage'",
            [],
        )
        .unwrap();
        assert_eq!(channel(&c, "stage").unwrap().unwrap().1.voice_mode, None);
    }

    #[test]
    fn new_database_has_default_channels() {
        let c = db();
        let names: Vec<_> = list_channels(&c)
            .unwrap()
            .into_iter()
            .map(|c| (c.name, c.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                ("general".into(), ChannelKind::Text),
                ("lounge".into(), ChannelKind::Voice)
            ]
        );
    }
}
