//! Presence and typing as plain state, no I/O: who is online (a user with at least one open
//! `/ws` connection) and with which status (issue 14: online, idle, dnd, or invisible, which
//! others see as offline), and when a user's typing in a channel may be announced again. The
//! router thread owns one of each and turns their answers into events; time is passed in,
//! so the rules are tested without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::protocol::Presence;
use crate::social::Status;

/// One typing event per user and channel is forwarded at most this often (API.md: clients
/// send `typing` on keystrokes; this keeps a fast typist from flooding everyone).
pub const TYPING_INTERVAL: Duration = Duration::from_millis(2500);

/// Who is online: user id → (username, number of open `/ws` connections), and the status
/// each online user chose (absent: online).
#[derive(Debug, Default)]
pub struct Online {
    users: HashMap<i64, (String, usize)>,
    status: HashMap<i64, Status>,
}

impl Online {
    /// A `/ws` connection of user `id` opened; `true` if that brought them online.
    pub fn connect(&mut self, id: i64, username: &str) -> bool {
        let entry = self
            .users
            .entry(id)
            .or_insert_with(|| (username.to_string(), 0));
        entry.1 += 1;
        entry.1 == 1
    }

    /// A `/ws` connection of user `id` closed; `true` if that was their last one.
    pub fn disconnect(&mut self, id: i64) -> bool {
        let gone = match self.users.get_mut(&id) {
            Some(e) => {
                e.1 -= 1;
                e.1 == 0
            }
            None => false,
        };
        if gone {
            self.users.remove(&id);
            self.status.remove(&id);
        }
        gone
    }

    /// User `id` chose `status` (while online; it is forgotten with their last socket).
    pub fn set_status(&mut self, id: i64, status: Status) {
        if self.users.contains_key(&id) {
            self.status.insert(id, status);
        }
    }

    /// The status user `id` has chosen, while they are online.
    pub fn status(&self, id: i64) -> Option<Status> {
        self.users
            .get(&id)
            .map(|_| self.status.get(&id).copied().unwrap_or(Status::Online))
    }

    /// What others are shown of user `id`: their name and status, or `None` for offline
    /// (no socket open, or invisible).
    pub fn shown(&self, id: i64) -> Option<(&str, &'static str)> {
        let status = self.status(id)?.shown();
        let name = self.name(id)?;
        (status != "offline").then_some((name, status))
    }

    /// The username of user `id` while they are online.
    pub fn name(&self, id: i64) -> Option<&str> {
        self.users.get(&id).map(|(name, _)| name.as_str())
    }

    /// Everyone others can see online, with their status, for the `ready` snapshot.
    pub fn snapshot(&self) -> Vec<Presence> {
        self.users
            .keys()
            .filter_map(|id| self.shown(*id))
            .map(|(name, status)| Presence {
                user: name.to_string(),
                status,
            })
            .collect()
    }

    /// The ids of every user with an open `/ws`, invisible ones included (the push worker
    /// sends nothing to them: they have a tab open).
    pub fn connected(&self) -> std::collections::HashSet<i64> {
        self.users.keys().copied().collect()
    }
}

/// When each (username, channel) last had a typing event announced.
#[derive(Debug, Default)]
pub struct Typing {
    last: HashMap<(String, String), Instant>,
}

impl Typing {
    /// Whether `user` typing in `channel` at `now` is announced: not if it was less than
    /// `TYPING_INTERVAL` ago. An announcement is remembered.
    pub fn announce(&mut self, user: &str, channel: &str, now: Instant) -> bool {
        let key = (user.to_string(), channel.to_string());
        if self
            .last
            .get(&key)
            .is_some_and(|t| now.duration_since(*t) < TYPING_INTERVAL)
        {
            return false;
        }
        self.last.insert(key, now);
        true
    }

    /// `user` sent a message in `channel`: that ends "typing", so their next keystroke may
    /// be announced at once.
    pub fn message_sent(&mut self, user: &str, channel: &str) {
        self.last.remove(&(user.to_string(), channel.to_string()));
    }

    /// `user` went offline: forget them everywhere.
    pub fn forget(&mut self, user: &str) {
        self.last.retain(|(name, _), _| name != user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_while_any_connection_is_open() {
        let mut o = Online::default();
        assert!(o.connect(1, "alice"), "first tab brings her online");
        assert!(!o.connect(1, "alice"), "second tab does not announce again");
        assert!(o.connect(2, "bob"));
        assert_eq!(o.snapshot().len(), 2);
        assert!(!o.disconnect(1), "one tab still open");
        assert!(o.disconnect(1), "last tab closed");
        assert_eq!(o.name(1), None);
        assert_eq!(o.name(2), Some("bob"));
        assert!(!o.disconnect(1), "an unknown close changes nothing");
        let names: Vec<_> = o.snapshot().into_iter().map(|p| p.user).collect();
        assert_eq!(names, vec!["bob".to_string()]);
    }

    #[test]
    fn status_is_shown_to_others_and_invisible_looks_offline() {
        let mut o = Online::default();
        o.set_status(1, Status::Dnd);
        assert_eq!(
            o.status(1),
            None,
            "nothing is kept for a user who is not online"
        );
        o.connect(1, "alice");
        o.connect(2, "bob");
        assert_eq!(o.shown(1), Some(("alice", "online")));
        o.set_status(1, Status::Dnd);
        assert_eq!(o.shown(1), Some(("alice", "dnd")));
        o.set_status(2, Status::Invisible);
        assert_eq!(o.shown(2), None);
        let snap = o.snapshot();
        assert_eq!(snap.len(), 1);
        assert_eq!(snap[0].status, "dnd");
        assert_eq!(o.connected().len(), 2, "invisible still has a socket open");
        o.disconnect(1);
        o.connect(1, "alice");
        assert_eq!(
            o.status(1),
            Some(Status::Online),
            "forgotten with the last socket"
        );
    }

    #[test]
    fn typing_is_announced_once_per_interval_per_user_and_channel() {
        let mut t = Typing::default();
        let t0 = Instant::now();
        assert!(t.announce("alice", "general", t0));
        assert!(!t.announce("alice", "general", t0 + Duration::from_millis(100)));
        assert!(t.announce("alice", "random", t0), "another channel");
        assert!(t.announce("bob", "general", t0), "another user");
        assert!(t.announce("alice", "general", t0 + TYPING_INTERVAL));
    }

    #[test]
    fn a_sent_message_or_going_offline_ends_typing() {
        let mut t = Typing::default();
        let t0 = Instant::now();
        assert!(t.announce("alice", "general", t0));
        t.message_sent("alice", "general");
        assert!(t.announce("alice", "general", t0));
        t.forget("alice");
        assert!(t.announce("alice", "general", t0));
    }
}
