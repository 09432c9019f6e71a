//! Voice rooms as plain state: who is in which voice channel, with mute/deafen flags, and
//! the rules of API.md — a room holds at most `VOICE_MAX_PEERS` in `mesh` mode and
//! `SFU_MAX_PEERS` in `sfu` mode (`RoomLimits`), a user is in at most one room (joining
//! another leaves the first), signaling reaches only peers of the same room.
//! No I/O: the router owns one `VoiceRooms` and turns its answers into events.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::error::{ApiError, Code};
use crate::model::VoiceMode;
use crate::realtime::protocol::{Peer, VoiceMember};

/// What decides a room's mode and its cap, from the settings read at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomLimits {
    /// `SFU_UDP_PORT` is set (`Config::media_port`): `sfu` rooms exist, and are the default.
    pub media_port: bool,
    /// `VOICE_MAX_PEERS`: people per `mesh` room (each sends to every other).
    pub mesh_max_peers: usize,
    /// `SFU_MAX_PEERS`: people per `sfu` room (each sends once, to the server).
    pub sfu_max_peers: usize,
}

impl RoomLimits {
    pub fn from_config(c: &Config) -> RoomLimits {
        RoomLimits {
            media_port: c.media_port(),
            mesh_max_peers: c.voice_max_peers,
            sfu_max_peers: c.sfu_max_peers,
        }
    }

    /// The most people a room of `mode` holds.
    pub fn max_peers(&self, mode: VoiceMode) -> usize {
        match mode {
            VoiceMode::Mesh => self.mesh_max_peers,
            VoiceMode::Sfu => self.sfu_max_peers,
        }
    }
}

/// A peer's (muted, deafened, video, screen).
pub type Flags = (bool, bool, bool, bool);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoicePeer {
    /// The peer id other clients address signaling to.
    pub id: String,
    /// The `/ws/voice` connection of this peer.
    pub conn: u64,
    pub user_id: i64,
    pub user: String,
    pub muted: bool,
    pub deafened: bool,
    /// Camera on / screen share on, as the peer's client last said (`state`).
    pub video: bool,
    pub screen: bool,
}

impl VoicePeer {
    pub fn flags(&self) -> Flags {
        (self.muted, self.deafened, self.video, self.screen)
    }

    pub fn wire(&self) -> Peer {
        Peer {
            id: self.id.clone(),
            user: self.user.clone(),
            muted: self.muted,
            deafened: self.deafened,
            video: self.video,
            screen: self.screen,
        }
    }
}

#[derive(Debug, Default)]
pub struct VoiceRooms {
    rooms: BTreeMap<String, Vec<VoicePeer>>,
}

impl VoiceRooms {
    /// Adds `peer` to `room`. Returns the peers of the same user that had to leave (their
    /// old room is given with each). Fails with `room_full` when the room is at `max`.
    pub fn join(
        &mut self,
        room: &str,
        peer: VoicePeer,
        max: usize,
    ) -> Result<Vec<(String, VoicePeer)>, ApiError> {
        let others = self.rooms.get(room).map_or(0, |r| {
            r.iter().filter(|p| p.user_id != peer.user_id).count()
        });
        if others >= max {
            return Err(ApiError::new(
                Code::RoomFull,
                format!("the room is full ({max} people)"),
            ));
        }
        let mut displaced = Vec::new();
        for (name, peers) in self.rooms.iter_mut() {
            while let Some(i) = peers.iter().position(|p| p.user_id == peer.user_id) {
                displaced.push((name.clone(), peers.remove(i)));
            }
        }
        self.rooms.retain(|_, p| !p.is_empty());
        self.rooms.entry(room.to_string()).or_default().push(peer);
        Ok(displaced)
    }

    /// Removes the peer of connection `conn`, if it is in a room.
    pub fn leave(&mut self, conn: u64) -> Option<(String, VoicePeer)> {
        let (name, i) = self.rooms.iter().find_map(|(name, peers)| {
            peers
                .iter()
                .position(|p| p.conn == conn)
                .map(|i| (name.clone(), i))
        })?;
        let peers = self.rooms.get_mut(&name)?;
        let peer = peers.remove(i);
        if peers.is_empty() {
            self.rooms.remove(&name);
        }
        Some((name, peer))
    }

    /// The room and peer of user `user_id` (a user is in at most one room).
    pub fn find_user(&self, user_id: i64) -> Option<(&str, &VoicePeer)> {
        self.rooms.iter().find_map(|(name, peers)| {
            peers
                .iter()
                .find(|p| p.user_id == user_id)
                .map(|p| (name.as_str(), p))
        })
    }

    /// The room and peer of connection `conn`.
    pub fn find(&self, conn: u64) -> Option<(&str, &VoicePeer)> {
        self.rooms.iter().find_map(|(name, peers)| {
            peers
                .iter()
                .find(|p| p.conn == conn)
                .map(|p| (name.as_str(), p))
        })
    }

    /// The peer with id `peer_id` in `room` only: signaling never crosses rooms.
    pub fn peer_in(&self, room: &str, peer_id: &str) -> Option<&VoicePeer> {
        self.rooms.get(room)?.iter().find(|p| p.id == peer_id)
    }

    pub fn peers(&self, room: &str) -> &[VoicePeer] {
        self.rooms.get(room).map_or(&[], |v| v.as_slice())
    }

    /// Sets the flags (muted, deafened, video, screen) of connection `conn`'s peer.
    pub fn set_state(&mut self, conn: u64, flags: Flags) -> Option<(String, VoicePeer)> {
        for (name, peers) in self.rooms.iter_mut() {
            if let Some(p) = peers.iter_mut().find(|p| p.conn == conn) {
                (p.muted, p.deafened, p.video, p.screen) = flags;
                return Some((name.clone(), p.clone()));
            }
        }
        None
    }

    /// Empties a room (its channel was deleted); returns who was in it.
    pub fn close_room(&mut self, room: &str) -> Vec<VoicePeer> {
        self.rooms.remove(room).unwrap_or_default()
    }

    /// Everyone in every room, for the `ready` snapshot.
    pub fn members(&self) -> Vec<VoiceMember> {
        self.rooms
            .iter()
            .flat_map(|(name, peers)| {
                peers.iter().map(move |p| VoiceMember {
                    channel: name.clone(),
                    user: p.user.clone(),
                    muted: p.muted,
                    deafened: p.deafened,
                    video: p.video,
                    screen: p.screen,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(conn: u64, user_id: i64) -> VoicePeer {
        VoicePeer {
            id: conn.to_string(),
            conn,
            user_id,
            user: format!("u{user_id}"),
            muted: false,
            deafened: false,
            video: false,
            screen: false,
        }
    }

    #[test]
    fn room_cap() {
        let mut r = VoiceRooms::default();
        r.join("lounge", peer(1, 1), 2).unwrap();
        r.join("lounge", peer(2, 2), 2).unwrap();
        let e = r.join("lounge", peer(3, 3), 2).unwrap_err();
        assert_eq!(e.code, Code::RoomFull);
        assert_eq!(r.peers("lounge").len(), 2);
    }

    #[test]
    fn cap_per_mode() {
        let l = RoomLimits {
            media_port: true,
            mesh_max_peers: 10,
            sfu_max_peers: 50,
        };
        assert_eq!(l.max_peers(VoiceMode::Mesh), 10);
        assert_eq!(l.max_peers(VoiceMode::Sfu), 50);
        let c =
            Config::from_map(&[("SFU_MAX_PEERS".to_string(), "30".to_string())].into()).unwrap();
        let l = RoomLimits::from_config(&c);
        assert_eq!(
            (l.media_port, l.mesh_max_peers, l.sfu_max_peers),
            (false, 10, 30)
        );
    }

    #[test]
    fn one_room_per_user() {
        let mut r = VoiceRooms::default();
        r.join("a", peer(1, 1), 10).unwrap();
        let displaced = r.join("b", peer(2, 1), 10).unwrap();
        assert_eq!(displaced, vec![("a".to_string(), peer(1, 1))]);
        assert!(r.peers("a").is_empty());
        assert_eq!(r.find(2).unwrap().0, "b");
        // A second tab re-joining the same full room replaces itself instead of being refused.
        r.join("b", peer(3, 2), 2).unwrap();
        assert!(r.join("b", peer(4, 1), 2).is_ok());
    }

    #[test]
    fn signaling_stays_in_the_room() {
        let mut r = VoiceRooms::default();
        r.join("a", peer(1, 1), 10).unwrap();
        r.join("b", peer(2, 2), 10).unwrap();
        assert!(r.peer_in("a", "1").is_some());
        assert!(r.peer_in("a", "2").is_none());
        assert_eq!(r.leave(2).unwrap().0, "b");
        assert!(r.leave(2).is_none());
        assert_eq!(r.members().len(), 1);
        assert!(r.set_state(1, (true, false, true, false)).unwrap().1.muted);
        assert_eq!(
            r.find_user(1).map(|(room, p)| (room, p.conn)),
            Some(("a", 1))
        );
        assert!(r.find_user(2).is_none());
        assert_eq!(r.close_room("a").len(), 1);
    }
}
