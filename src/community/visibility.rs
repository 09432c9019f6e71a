//! Who may see which channel, as the router fans out: per channel, the `/ws` connections
//! allowed to see it. Owned by the **router thread**. Recomputed only when a snapshot or
//! the channel list changes (`update`), never per message, so a message still costs one
//! serialization and one push per allowed socket (encode-once). `update` also says what
//! each connection must be told: `channel_create` for a channel it now sees,
//! `channel_delete` for one it no longer sees, `channel_update` for one whose view by that
//! user changed in any field (permissions, `private`, overwrites, name, topic…), so the
//! owner sees the lock icon appear even though their own access did not change.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::snapshot::{ChannelView, Snapshot};
use super::ChannelChange;
use crate::model::Channel;
use crate::realtime::frame::{self, Frame};
use crate::realtime::protocol::ServerEvent;
use crate::realtime::writer::Outbox;

struct Seen {
    user_id: i64,
    outbox: Arc<Outbox>,
    /// The channels this connection was told of, by the name it knows, as it was told
    /// them: any field that differs later (permissions, `private`, overwrites) is an update.
    told: HashMap<String, ChannelView>,
}

/// What `update` found: the frames each connection must be sent, in order, and the channels
/// each connection newly sees (the router then tells it who is in them, for voice).
#[derive(Default)]
pub struct Changed {
    pub frames: Vec<(Arc<Outbox>, Frame)>,
    pub gained: Vec<(Arc<Outbox>, String)>,
}

pub struct Visibility {
    snapshot: Arc<Snapshot>,
    /// Whether the server has a media port (`Config::media_port`): voice channels' views
    /// carry their effective `voice_mode` from it.
    media_port: bool,
    /// channel name → the connections that may see it (conn id → user id, outbox).
    viewers: HashMap<String, HashMap<u64, (i64, Arc<Outbox>)>>,
    conns: HashMap<u64, Seen>,
}

impl Visibility {
    pub fn new(snapshot: Arc<Snapshot>, media_port: bool) -> Visibility {
        Visibility {
            snapshot,
            media_port,
            viewers: HashMap::new(),
            conns: HashMap::new(),
        }
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// A `/ws` connection opened: the channels it may see, as its `ready` lists them.
    pub fn join(
        &mut self,
        conn: u64,
        user_id: i64,
        outbox: Arc<Outbox>,
        channels: &[Channel],
    ) -> Vec<ChannelView> {
        let views: Vec<ChannelView> = channels
            .iter()
            .filter_map(|c| self.snapshot.view(user_id, c, self.media_port))
            .collect();
        for v in &views {
            self.viewers
                .entry(v.channel.name.clone())
                .or_default()
                .insert(conn, (user_id, outbox.clone()));
        }
        let told = views
            .iter()
            .map(|v| (v.channel.name.clone(), v.clone()))
            .collect();
        self.conns.insert(
            conn,
            Seen {
                user_id,
                outbox,
                told,
            },
        );
        views
    }

    pub fn leave(&mut self, conn: u64) {
        if let Some(seen) = self.conns.remove(&conn) {
            for name in seen.told.keys() {
                if let Some(set) = self.viewers.get_mut(name) {
                    set.remove(&conn);
                }
            }
        }
    }

    /// The connections that may see `channel`: (user id, outbox).
    pub fn viewers(&self, channel: &str) -> impl Iterator<Item = &(i64, Arc<Outbox>)> {
        self.viewers
            .get(channel)
            .into_iter()
            .flat_map(|m| m.values())
    }

    /// Applies a new snapshot (if any) and the channel list after `change`; returns the
    /// frames each connection must be sent, in order, so that it sees exactly the channels
    /// it may. A user's views are computed once, for all of their connections.
    pub fn update(
        &mut self,
        snapshot: Option<Arc<Snapshot>>,
        channels: &[Channel],
        change: Option<&ChannelChange>,
    ) -> Changed {
        if let Some(s) = snapshot {
            self.snapshot = s;
        }
        let (renamed_to, renamed_from) = match change {
            Some(ChannelChange::Updated {
                channel,
                renamed_from: Some(from),
            }) => (Some(channel.name.as_str()), Some(from.as_str())),
            _ => (None, None),
        };
        let updated = match change {
            Some(ChannelChange::Updated { channel, .. }) => Some(channel.name.as_str()),
            _ => None,
        };
        let mut per_user: HashMap<i64, Vec<ChannelView>> = HashMap::new();
        let mut out = Changed::default();
        self.viewers.clear();
        for (conn, seen) in self.conns.iter_mut() {
            let views = per_user
                .entry(seen.user_id)
                .or_insert_with(|| {
                    channels
                        .iter()
                        .filter_map(|c| self.snapshot.view(seen.user_id, c, self.media_port))
                        .collect()
                })
                .clone();
            let mut events = Vec::new();
            let mut matched = HashSet::new();
            let mut told = HashMap::new();
            for v in views {
                let name = v.channel.name.clone();
                let known_as = if Some(name.as_str()) == renamed_to {
                    renamed_from.unwrap_or(&name).to_string()
                } else {
                    name.clone()
                };
                match seen.told.get(&known_as) {
                    None => {
                        out.gained.push((seen.outbox.clone(), name.clone()));
                        events.push(ServerEvent::ChannelCreate { channel: v.clone() })
                    }
                    Some(was) if *was != v || updated == Some(name.as_str()) => {
                        events.push(ServerEvent::ChannelUpdate {
                            channel: v.clone(),
                            renamed_from: (known_as != name).then(|| known_as.clone()),
                        })
                    }
                    Some(_) => {}
                }
                matched.insert(known_as);
                told.insert(name.clone(), v.clone());
                self.viewers
                    .entry(name)
                    .or_default()
                    .insert(*conn, (seen.user_id, seen.outbox.clone()));
            }
            let mut gone: Vec<&String> =
                seen.told.keys().filter(|k| !matched.contains(*k)).collect();
            gone.sort();
            for name in gone {
                events.push(ServerEvent::ChannelDelete { name: name.clone() });
            }
            seen.told = told;
            // Rare (a role or channel change), so built per connection.
            for e in &events {
                out.frames.push((seen.outbox.clone(), frame::json(e)));
            }
        }
        out
    }
}
