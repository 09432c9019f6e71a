//! The in-memory picture of who may do what: roles, who holds which, channel overwrites,
//! timeouts, bans and the owner(s). Built on the store thread from what it just committed
//! (`Snapshot::load`, inside the job that changed it) and published after the COMMIT
//! (`Community::publish`), so no path asks SQLite about permissions per message: readers,
//! routes and the router read an `Arc<Snapshot>` and call `perms::permissions` with it.
//! Also the wire objects built from it (role, member, the per-user channel view).

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use serde::Serialize;

use super::perms::{self, Member, Overwrite, Perms, Rank};
use crate::error::ApiResult;
use crate::model::{Channel, User, VoiceMode};
use crate::store::now_ms;

/// The `everyone` role's id (migration 5 creates it; it cannot be deleted).
pub const EVERYONE: i64 = 1;

/// A role as `GET /api/roles` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Role {
    pub id: i64,
    pub name: String,
    pub color: Option<String>,
    pub position: i64,
    pub hoist: bool,
    pub permissions: Perms,
}

/// A member as `GET /api/members` (and `ready.members`, `member_update`) shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MemberView {
    pub user: User,
    /// Role ids, without `everyone`, highest first.
    pub roles: Vec<i64>,
    /// When a running timeout ends (Unix ms); null when none.
    pub timeout_until_ts: Option<i64>,
}

/// A channel as one user sees it: the channel, whether the `everyone` role is kept out
/// (`private`), and that user's effective permissions in it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChannelView {
    #[serde(flatten)]
    pub channel: Channel,
    pub private: bool,
    pub permissions: Perms,
    /// A voice channel's effective mode (API.md v2, issue 16: `VoiceMode::effective`);
    /// absent for text and DM channels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice_mode: Option<VoiceMode>,
    /// A DM's members' usernames, in the order they joined (docs/DMS.md); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
    /// The channel's overwrites, only for a user with `manage_roles` here (the channel
    /// settings dialog starts from them); absent for everyone else, who may not read them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overwrites: Option<Vec<OverwriteView>>,
}

/// One overwrite as the channel object carries it: names on the wire, as everywhere.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OverwriteView {
    pub role_id: i64,
    pub allow: Perms,
    pub deny: Perms,
}

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every role, highest position first (`everyone` last).
    pub roles: Vec<Role>,
    /// user id → their role ids (without `everyone`).
    pub member_roles: HashMap<i64, Vec<i64>>,
    /// user id → timeout end (Unix ms), possibly already past.
    pub timeouts: HashMap<i64, i64>,
    /// The first account(s) (`users.admin`).
    pub owners: HashSet<i64>,
    pub banned: HashSet<i64>,
    /// channel name → (channel id, its overwrites).
    pub channels: HashMap<String, (i64, Vec<Overwrite>)>,
    /// channel name → its slow mode in seconds (only channels that have one).
    pub slowmode: HashMap<String, u32>,
    /// DM channel name → its members (id, username). A DM is seen by these and nobody
    /// else, whatever their roles (the owner included): docs/DMS.md.
    pub dms: HashMap<String, Vec<(i64, String)>>,
}

/// What a DM member may do there: everything a text channel offers a member, and nothing
/// of moderation (nobody moderates a private conversation; each deletes their own).
const DM_PERMS: Perms = Perms(
    Perms::VIEW_CHANNEL.0 | Perms::SEND_MESSAGES.0 | Perms::ATTACH_FILES.0 | Perms::ADD_REACTIONS.0,
);

impl Snapshot {
    /// Reads the whole picture; runs on the store thread inside the job that changed it.
    pub fn load(conn: &Connection) -> ApiResult<Snapshot> {
        let mut s = Snapshot::default();
        let mut st = conn.prepare_cached(
            "SELECT id, name, color, position, hoist, permissions FROM roles ORDER BY position DESC, id",
        )?;
        s.roles = st
            .query_map([], |r| {
                Ok(Role {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    color: r.get(2)?,
                    position: r.get(3)?,
                    hoist: r.get(4)?,
                    permissions: Perms::from_bits(r.get(5)?),
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut st = conn.prepare_cached(
            "SELECT mr.user_id, mr.role_id FROM member_roles mr JOIN roles r ON r.id = mr.role_id
             ORDER BY r.position DESC",
        )?;
        for row in st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
            let (u, role) = row?;
            s.member_roles.entry(u).or_default().push(role);
        }
        let mut st = conn.prepare_cached("SELECT user_id, until_ts FROM timeouts")?;
        for row in st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))? {
            let (u, until) = row?;
            s.timeouts.insert(u, until);
        }
        let mut st = conn.prepare_cached("SELECT id FROM users WHERE admin = 1")?;
        s.owners = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let mut st = conn.prepare_cached("SELECT user_id FROM bans")?;
        s.banned = st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        let mut st = conn.prepare_cached("SELECT id, name, slowmode_s FROM channels")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
            ))
        })?;
        for row in rows {
            let (id, name, slowmode) = row?;
            if slowmode > 0 {
                s.slowmode.insert(name.clone(), slowmode);
            }
            s.channels.insert(name, (id, Vec::new()));
        }
        let mut st = conn.prepare_cached(
            "SELECT c.name, o.role_id, o.allow, o.deny FROM overwrites o JOIN channels c ON c.id = o.channel_id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                Overwrite {
                    role: r.get(1)?,
                    allow: Perms::from_bits(r.get(2)?),
                    deny: Perms::from_bits(r.get(3)?),
                },
            ))
        })?;
        for row in rows {
            let (name, o) = row?;
            if let Some((_, list)) = s.channels.get_mut(&name) {
                list.push(o);
            }
        }
        s.dms = crate::store::dms::all_dm_members(conn)?;
        Ok(s)
    }

    pub fn role(&self, id: i64) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }

    fn everyone_perms(&self) -> Perms {
        self.role(EVERYONE).map_or(Perms::NONE, |r| r.permissions)
    }

    /// The end of `user_id`'s timeout, if one is running at `now`.
    pub fn timeout_until(&self, user_id: i64, now: i64) -> Option<i64> {
        self.timeouts.get(&user_id).copied().filter(|&t| t > now)
    }

    fn perms_at(&self, user_id: i64, overwrites: &[Overwrite], now: i64) -> Perms {
        let roles: Vec<(i64, Perms)> = self
            .member_roles
            .get(&user_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.role(*id).map(|r| (r.id, r.permissions)))
            .collect();
        perms::permissions(
            &Member {
                owner: self.owners.contains(&user_id),
                everyone: (EVERYONE, self.everyone_perms()),
                roles: &roles,
                timed_out: self.timeout_until(user_id, now).is_some(),
            },
            overwrites,
        )
    }

    /// `user_id`'s server-wide permissions (no channel's overwrites).
    pub fn server(&self, user_id: i64) -> Perms {
        self.perms_at(user_id, &[], now_ms())
    }

    /// `user_id`'s permissions in `channel`; `None` for a channel that does not exist.
    pub fn in_channel(&self, user_id: i64, channel: &str) -> Option<Perms> {
        let (_, overwrites) = self.channels.get(channel)?;
        if let Some(members) = self.dms.get(channel) {
            return Some(self.dm_perms(user_id, members));
        }
        Some(self.perms_at(user_id, overwrites, now_ms()))
    }

    /// A DM's rule: members get `DM_PERMS` (less what a timeout or ban takes), others none.
    fn dm_perms(&self, user_id: i64, members: &[(i64, String)]) -> Perms {
        if self.banned.contains(&user_id) || !members.iter().any(|(id, _)| *id == user_id) {
            return Perms::NONE;
        }
        if self.timeout_until(user_id, now_ms()).is_some() {
            return DM_PERMS.minus(Perms::TIMED_OUT_LOSES);
        }
        DM_PERMS
    }

    /// Whether `user_id` may see `channel` at all (false for an unknown channel).
    pub fn can_view(&self, user_id: i64, channel: &str) -> bool {
        self.in_channel(user_id, channel)
            .is_some_and(|p| p.has(Perms::VIEW_CHANNEL))
    }

    /// As `can_view`, by channel id (file serving knows the id).
    pub fn can_view_id(&self, user_id: i64, channel_id: i64) -> bool {
        self.channels
            .iter()
            .find(|(_, (id, _))| *id == channel_id)
            .is_some_and(|(name, _)| self.can_view(user_id, name))
    }

    /// The ids of the channels `user_id` may not see (search leaves them out).
    pub fn hidden_channel_ids(&self, user_id: i64) -> Vec<i64> {
        self.channels
            .iter()
            .filter(|(name, _)| !self.can_view(user_id, name))
            .map(|(_, (id, _))| *id)
            .collect()
    }

    /// Whether the `everyone` role alone cannot see `channel` (the lock icon).
    pub fn private(&self, channel: &str) -> bool {
        let Some((_, overwrites)) = self.channels.get(channel) else {
            return false;
        };
        if self.dms.contains_key(channel) {
            return true;
        }
        let everyone = Member {
            owner: false,
            everyone: (EVERYONE, self.everyone_perms()),
            roles: &[],
            timed_out: false,
        };
        !perms::permissions(&everyone, overwrites).has(Perms::VIEW_CHANNEL)
    }

    /// `channel` as `user_id` sees it, or `None` when they may not see it. `media_port`:
    /// whether this server has a media server (`Config::media_port`), for the effective
    /// `voice_mode` of a voice channel.
    pub fn view(&self, user_id: i64, channel: &Channel, media_port: bool) -> Option<ChannelView> {
        let p = self.in_channel(user_id, &channel.name)?;
        let overwrites = p.has(Perms::MANAGE_ROLES).then(|| {
            let (_, list) = &self.channels[&channel.name];
            let mut v: Vec<OverwriteView> = list
                .iter()
                .map(|o| OverwriteView {
                    role_id: o.role,
                    allow: o.allow,
                    deny: o.deny,
                })
                .collect();
            v.sort_by_key(|o| o.role_id);
            v
        });
        p.has(Perms::VIEW_CHANNEL).then(|| ChannelView {
            channel: channel.clone(),
            private: self.private(&channel.name),
            permissions: p,
            voice_mode: channel.effective_voice_mode(media_port),
            overwrites,
            members: self
                .dms
                .get(&channel.name)
                .map(|m| m.iter().map(|(_, name)| name.clone()).collect()),
        })
    }

    /// Where `user_id` stands in the role order (hierarchy rules).
    pub fn rank(&self, user_id: i64) -> Rank {
        if self.owners.contains(&user_id) {
            return Rank::Owner;
        }
        Rank::Position(
            self.member_roles
                .get(&user_id)
                .into_iter()
                .flatten()
                .filter_map(|id| self.role(*id))
                .map(|r| r.position)
                .max()
                .unwrap_or(0),
        )
    }

    pub fn member(&self, user: &User) -> MemberView {
        MemberView {
            user: user.clone(),
            roles: self.member_roles.get(&user.id).cloned().unwrap_or_default(),
            timeout_until_ts: self.timeout_until(user.id, now_ms()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_database_behaves_as_v1() {
        let c = crate::store::test_db();
        let owner = crate::store::insert_user(&c, "alice", "h", true).unwrap();
        let bob = crate::store::insert_user(&c, "bob", "h", false).unwrap();
        let s = Snapshot::load(&c).unwrap();
        assert_eq!(s.roles.len(), 1);
        assert_eq!(s.roles[0].name, "everyone");
        assert_eq!(s.server(bob.id), Perms::EVERYONE_DEFAULT);
        assert_eq!(s.server(owner.id), Perms::ALL);
        assert!(s.can_view(bob.id, "general") && s.can_view(bob.id, "lounge"));
        assert!(!s.can_view(bob.id, "nope"));
        assert!(!s.private("general"));
        assert_eq!(s.rank(owner.id), Rank::Owner);
        assert_eq!(s.rank(bob.id), Rank::Position(0));
    }
}
