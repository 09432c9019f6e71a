//! Permissions: bit flags in memory, names on the wire (API.md "Roles, permissions and
//! moderation"), the ONE function that decides what a member may do in a channel
//! (`permissions`), and the hierarchy rules every moderation route calls (`may_act_on`,
//! `may_grant`). Pure: no I/O, no state; `snapshot.rs` feeds it what the store committed.

use serde::{Serialize, Serializer};

use crate::error::{ApiError, ApiResult};

/// A set of permissions. The bit of each is its index in `NAMES`, so the numbers in SQLite
/// (`roles.permissions`, `overwrites.allow`/`deny`) never change meaning: a new permission
/// is appended, never inserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Perms(pub u32);

/// The wire names, in bit order (bit 0 first).
pub const NAMES: [&str; 17] = [
    "view_channel",
    "send_messages",
    "attach_files",
    "add_reactions",
    "mention_everyone",
    "manage_messages",
    "manage_channels",
    "manage_roles",
    "kick_members",
    "ban_members",
    "moderate_members",
    "create_invites",
    "view_audit_log",
    "connect",
    "speak",
    "stream",
    "administrator",
];

impl Perms {
    pub const NONE: Perms = Perms(0);
    pub const VIEW_CHANNEL: Perms = Perms(1 << 0);
    pub const SEND_MESSAGES: Perms = Perms(1 << 1);
    pub const ATTACH_FILES: Perms = Perms(1 << 2);
    pub const ADD_REACTIONS: Perms = Perms(1 << 3);
    pub const MENTION_EVERYONE: Perms = Perms(1 << 4);
    pub const MANAGE_MESSAGES: Perms = Perms(1 << 5);
    pub const MANAGE_CHANNELS: Perms = Perms(1 << 6);
    pub const MANAGE_ROLES: Perms = Perms(1 << 7);
    pub const KICK_MEMBERS: Perms = Perms(1 << 8);
    pub const BAN_MEMBERS: Perms = Perms(1 << 9);
    pub const MODERATE_MEMBERS: Perms = Perms(1 << 10);
    pub const CREATE_INVITES: Perms = Perms(1 << 11);
    pub const VIEW_AUDIT_LOG: Perms = Perms(1 << 12);
    pub const CONNECT: Perms = Perms(1 << 13);
    pub const SPEAK: Perms = Perms(1 << 14);
    pub const STREAM: Perms = Perms(1 << 15);
    pub const ADMINISTRATOR: Perms = Perms(1 << 16);
    pub const ALL: Perms = Perms((1 << NAMES.len()) - 1);

    /// API.md: a new database's `everyone` role, which keeps v1 behaviour (everyone reads,
    /// writes, uploads, reacts and talks; invites stay with the admin). Migration 5 writes
    /// this number; a unit test pins that the two agree.
    pub const EVERYONE_DEFAULT: Perms = Perms(
        Self::VIEW_CHANNEL.0
            | Self::SEND_MESSAGES.0
            | Self::ATTACH_FILES.0
            | Self::ADD_REACTIONS.0
            | Self::CONNECT.0
            | Self::SPEAK.0
            | Self::STREAM.0,
    );

    /// What a timed-out member loses (API.md: cannot send or react, nor join voice).
    pub const TIMED_OUT_LOSES: Perms = Perms(
        Self::SEND_MESSAGES.0
            | Self::ATTACH_FILES.0
            | Self::ADD_REACTIONS.0
            | Self::CONNECT.0
            | Self::SPEAK.0
            | Self::STREAM.0,
    );

    pub fn has(self, p: Perms) -> bool {
        self.0 & p.0 == p.0
    }
    pub fn union(self, p: Perms) -> Perms {
        Perms(self.0 | p.0)
    }
    pub fn minus(self, p: Perms) -> Perms {
        Perms(self.0 & !p.0)
    }
    /// Only known bits (a database edited by hand cannot smuggle in unknown ones).
    pub fn from_bits(bits: i64) -> Perms {
        Perms(bits as u32 & Self::ALL.0)
    }
    pub fn bits(self) -> i64 {
        i64::from(self.0)
    }

    pub fn names(self) -> Vec<&'static str> {
        NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect()
    }

    /// The set the wire names; an unknown name is a 400 (a typo must not silently grant less).
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> ApiResult<Perms> {
        let mut p = Perms::NONE;
        for n in names {
            let i = NAMES.iter().position(|k| *k == n.as_ref()).ok_or_else(|| {
                ApiError::bad_request(format!("unknown permission {:?}", n.as_ref()))
            })?;
            p.0 |= 1 << i;
        }
        Ok(p)
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, p: Perms) -> Perms {
        self.union(p)
    }
}

impl Serialize for Perms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

/// One channel overwrite: for the members of `role`, `deny` removes and `allow` adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overwrite {
    pub role: i64,
    pub allow: Perms,
    pub deny: Perms,
}

/// Who is asking, as far as permissions go.
#[derive(Debug, Clone, Copy)]
pub struct Member<'a> {
    /// The first account (`admin: true`): every permission, always.
    pub owner: bool,
    /// The `everyone` role's id and permissions (every member has it).
    pub everyone: (i64, Perms),
    /// The member's other roles: (id, permissions).
    pub roles: &'a [(i64, Perms)],
    /// A timeout is running (`until_ts` in the future).
    pub timed_out: bool,
}

/// THE permission rule (API.md): the owner and `administrator` get everything; otherwise
/// the union of the member's roles (everyone's included), then the channel's overwrites —
/// `everyone`'s first, then those of the member's roles taken together: deny removes, allow
/// adds (so a role's allow beats everyone's deny, as in Discord). A timeout then takes away
/// sending, reacting and voice. `overwrites` empty (or the server-wide question) gives the
/// role permissions alone. Every path — REST, `/ws` ops, the voice handshake, file serving,
/// history, search, `ready` and fan-out — asks this function and nothing else.
pub fn permissions(member: &Member, overwrites: &[Overwrite]) -> Perms {
    if member.owner {
        return Perms::ALL;
    }
    let mut p = member
        .roles
        .iter()
        .fold(member.everyone.1, |p, (_, r)| p.union(*r));
    if p.has(Perms::ADMINISTRATOR) {
        return Perms::ALL;
    }
    if let Some(o) = overwrites.iter().find(|o| o.role == member.everyone.0) {
        p = p.minus(o.deny).union(o.allow);
    }
    let (mut allow, mut deny) = (Perms::NONE, Perms::NONE);
    for o in overwrites {
        if member.roles.iter().any(|(id, _)| *id == o.role) {
            allow = allow.union(o.allow);
            deny = deny.union(o.deny);
        }
    }
    p = p.minus(deny).union(allow);
    if member.timed_out {
        p = p.minus(Perms::TIMED_OUT_LOSES);
    }
    p
}

/// Where someone stands in the role order: the owner above everyone, else the position of
/// their highest role (`everyone` is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    Position(i64),
    Owner,
}

/// The hierarchy rule for acting on another member (kick, ban, timeout, their roles): never
/// on the owner, and only on members strictly below your own highest role.
pub fn may_act_on(actor: Rank, target: Rank) -> ApiResult<()> {
    if target == Rank::Owner {
        return Err(ApiError::forbidden("nobody can act on the owner"));
    }
    if actor <= target {
        return Err(ApiError::forbidden(
            "you can only act on members below your highest role",
        ));
    }
    Ok(())
}

/// The hierarchy rule for a role (editing, deleting, assigning it, its overwrites): only
/// roles strictly below your own highest one. `everyone` (position 0) is below every role.
pub fn may_manage_role(actor: Rank, role_position: i64) -> ApiResult<()> {
    if actor <= Rank::Position(role_position) {
        return Err(ApiError::forbidden(
            "you can only manage roles below your highest role",
        ));
    }
    Ok(())
}

/// Nobody can hand out a permission they do not have themselves (`actor` is their
/// server-wide set; an administrator or the owner has all).
pub fn may_grant(actor: Perms, granted: Perms) -> ApiResult<()> {
    let missing = granted.minus(actor);
    if missing != Perms::NONE {
        return Err(ApiError::forbidden(format!(
            "you cannot grant permissions you do not have: {}",
            missing.names().join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERYONE: i64 = 1;
    const MOD: i64 = 2;
    const VIP: i64 = 3;

    fn member(roles: &[(i64, Perms)]) -> Member<'_> {
        Member {
            owner: false,
            everyone: (EVERYONE, Perms::EVERYONE_DEFAULT),
            roles,
            timed_out: false,
        }
    }

    fn ow(role: i64, allow: Perms, deny: Perms) -> Overwrite {
        Overwrite { role, allow, deny }
    }

    #[test]
    fn names_round_trip_for_every_permission_and_unknown_ones_are_refused() {
        for (i, name) in NAMES.iter().enumerate() {
            let p = Perms::from_names(&[name]).unwrap();
            assert_eq!(p, Perms(1 << i));
            assert_eq!(p.names(), vec![*name]);
        }
        assert_eq!(Perms::from_names(&NAMES).unwrap(), Perms::ALL);
        assert!(Perms::from_names(&["view_channels"]).is_err());
        assert_eq!(
            serde_json::to_string(&Perms::EVERYONE_DEFAULT).unwrap(),
            r#"["view_channel","send_messages","attach_files","add_reactions","connect","speak","stream"]"#
        );
        assert_eq!(Perms::from_bits(-1), Perms::ALL, "unknown bits are dropped");
    }

    #[test]
    fn everyone_default_is_the_number_migration_5_writes() {
        assert_eq!(Perms::EVERYONE_DEFAULT.bits(), 57359);
    }

    #[test]
    fn no_overwrites_means_the_union_of_the_roles() {
        assert_eq!(permissions(&member(&[]), &[]), Perms::EVERYONE_DEFAULT);
        let roles = [
            (MOD, Perms::MANAGE_MESSAGES),
            (VIP, Perms::MENTION_EVERYONE),
        ];
        let p = permissions(&member(&roles), &[]);
        assert_eq!(
            p,
            Perms::EVERYONE_DEFAULT
                .union(Perms::MANAGE_MESSAGES)
                .union(Perms::MENTION_EVERYONE)
        );
    }

    #[test]
    fn every_single_permission_granted_by_a_role_is_exactly_added() {
        for (i, name) in NAMES.iter().enumerate().take(NAMES.len() - 1) {
            let one = Perms(1 << i);
            let roles = [(MOD, one)];
            let m = Member {
                everyone: (EVERYONE, Perms::NONE),
                ..member(&roles)
            };
            assert_eq!(permissions(&m, &[]), one, "{name}");
            let none = Member {
                everyone: (EVERYONE, Perms::NONE),
                ..member(&[])
            };
            assert_eq!(permissions(&none, &[]), Perms::NONE);
        }
    }

    #[test]
    fn owner_and_administrator_get_everything_whatever_the_overwrites() {
        let deny_all = [
            ow(EVERYONE, Perms::NONE, Perms::ALL),
            ow(MOD, Perms::NONE, Perms::ALL),
        ];
        let owner = Member {
            owner: true,
            timed_out: true,
            ..member(&[])
        };
        assert_eq!(permissions(&owner, &deny_all), Perms::ALL);
        let roles = [(MOD, Perms::ADMINISTRATOR)];
        assert_eq!(permissions(&member(&roles), &deny_all), Perms::ALL);
        let everyone_admin = Member {
            everyone: (EVERYONE, Perms::ADMINISTRATOR),
            ..member(&[])
        };
        assert_eq!(permissions(&everyone_admin, &deny_all), Perms::ALL);
    }

    #[test]
    fn everyone_overwrite_first_then_the_members_roles_deny_removes_allow_adds() {
        // A private channel: everyone denied view, the moderators allowed.
        let private = [
            ow(EVERYONE, Perms::NONE, Perms::VIEW_CHANNEL),
            ow(MOD, Perms::VIEW_CHANNEL, Perms::NONE),
        ];
        assert!(!permissions(&member(&[]), &private).has(Perms::VIEW_CHANNEL));
        let roles = [(MOD, Perms::NONE)];
        assert!(permissions(&member(&roles), &private).has(Perms::VIEW_CHANNEL));
        // A role's deny beats everyone's allow; a role's allow beats another role's deny
        // only when... it does not: role overwrites are taken together, allow wins.
        let read_only = [
            ow(EVERYONE, Perms::MENTION_EVERYONE, Perms::NONE),
            ow(
                MOD,
                Perms::NONE,
                Perms::SEND_MESSAGES | Perms::MENTION_EVERYONE,
            ),
            ow(VIP, Perms::SEND_MESSAGES, Perms::NONE),
        ];
        let m = permissions(&member(&[(MOD, Perms::NONE)]), &read_only);
        assert!(!m.has(Perms::SEND_MESSAGES) && !m.has(Perms::MENTION_EVERYONE));
        let both = permissions(
            &member(&[(MOD, Perms::NONE), (VIP, Perms::NONE)]),
            &read_only,
        );
        assert!(both.has(Perms::SEND_MESSAGES), "allow of any role adds");
        assert!(!both.has(Perms::MENTION_EVERYONE));
        let plain = permissions(&member(&[]), &read_only);
        assert!(plain.has(Perms::MENTION_EVERYONE) && plain.has(Perms::SEND_MESSAGES));
        // An overwrite of a role the member does not have does nothing.
        let other = [ow(VIP, Perms::MANAGE_MESSAGES, Perms::VIEW_CHANNEL)];
        assert_eq!(permissions(&member(&[]), &other), Perms::EVERYONE_DEFAULT);
    }

    #[test]
    fn overwrites_can_take_away_what_a_role_gives_server_wide() {
        let roles = [(MOD, Perms::MANAGE_MESSAGES)];
        let o = [ow(MOD, Perms::NONE, Perms::MANAGE_MESSAGES)];
        assert!(!permissions(&member(&roles), &o).has(Perms::MANAGE_MESSAGES));
        let e = [ow(EVERYONE, Perms::NONE, Perms::MANAGE_MESSAGES)];
        assert!(
            !permissions(&member(&roles), &e).has(Perms::MANAGE_MESSAGES),
            "everyone's deny applies to the role's server-wide grant too"
        );
    }

    #[test]
    fn a_timeout_takes_sending_reacting_and_voice_but_not_reading() {
        let m = Member {
            timed_out: true,
            ..member(&[])
        };
        let p = permissions(&m, &[]);
        assert!(p.has(Perms::VIEW_CHANNEL));
        for lost in [
            Perms::SEND_MESSAGES,
            Perms::ADD_REACTIONS,
            Perms::CONNECT,
            Perms::SPEAK,
            Perms::STREAM,
            Perms::ATTACH_FILES,
        ] {
            assert!(!p.has(lost));
        }
        let allow_all = [ow(
            EVERYONE,
            Perms::ALL.minus(Perms::ADMINISTRATOR),
            Perms::NONE,
        )];
        assert!(!permissions(&m, &allow_all).has(Perms::SEND_MESSAGES));
    }

    #[test]
    fn hierarchy_rules() {
        let (owner, top, mid, none) = (
            Rank::Owner,
            Rank::Position(3),
            Rank::Position(2),
            Rank::Position(0),
        );
        assert!(may_act_on(top, mid).is_ok());
        assert!(may_act_on(top, none).is_ok());
        assert!(may_act_on(mid, top).is_err(), "not above yourself");
        assert!(may_act_on(mid, mid).is_err(), "not your equal");
        assert!(may_act_on(top, owner).is_err(), "never the owner");
        assert!(may_act_on(owner, owner).is_err());
        assert!(may_act_on(owner, top).is_ok());
        assert!(may_manage_role(mid, 1).is_ok());
        assert!(may_manage_role(mid, 2).is_err());
        assert!(may_manage_role(none, 0).is_err());
        assert!(may_manage_role(owner, 99).is_ok());
        let have = Perms::MANAGE_ROLES | Perms::SEND_MESSAGES;
        assert!(may_grant(have, Perms::SEND_MESSAGES).is_ok());
        assert!(may_grant(have, Perms::NONE).is_ok());
        assert!(may_grant(have, Perms::BAN_MEMBERS).is_err());
        assert!(may_grant(Perms::ALL, Perms::ADMINISTRATOR).is_ok());
    }
}
