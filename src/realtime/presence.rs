//! Presence and typing as plain state, no I/O: who is online (a user with at least one open
//! `/ws` connection), and when a user's typing in a channel may be announced again. The
//! router thread owns one of each and turns their answers into events; time is passed in,
//! so the rules are tested without waiting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::protocol::Presence;

/// One typing event per user and channel is forwarded at most this often (API.md: clients
/// send `typing` on keystrokes; this keeps a fast typist from flooding everyone).
pub const TYPING_INTERVAL: Duration = Duration::from_millis(2500);

/// Who is online: user id → (username, number of open `/ws` connections).
#[derive(Debug, Default)]
pub struct Online {
    users: HashMap<i64, (String, usize)>,
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
        }
        gone
    }

    /// The username of user `id` while they are online.
    pub fn name(&self, id: i64) -> Option<&str> {
        self.users.get(&id).map(|(name, _)| name.as_str())
    }

    /// Everyone online, for the `ready` snapshot.
    pub fn snapshot(&self) -> Vec<Presence> {
        self.users
            .values()
            .map(|(name, _)| Presence {
                user: name.clone(),
                status: "online",
            })
            .collect()
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
