//! Who may change a group, and what a change becomes: the authorization of membership
//! and metadata changes as one pure function of the members at the moment of commit.
//!
//! [`plan_change`] takes the conversation's members (with their `members_version`) and
//! what an actor asked for, and returns the store changes and the system events that
//! describe them, or the refusal. The committer runs it against members read at commit
//! time and the store applies the plan only if `members_version` has not moved, so a
//! request checked against an older state (a removed admin renaming, two hand-overs at
//! once) is decided again, never applied blindly. Invariant: while a group has members it
//! has exactly one owner; when the owner leaves, the succession is its own system event.

use crate::error::{Error, Result};
use crate::membership::ConversationMembers;
use crate::store::{ConversationChange, Counting};
use parley_proto::{
    ContentType, ConversationType, MediaId, Member, Role, SystemEvent, Timestamp, UserId,
};
use std::collections::HashSet;

/// What is unread for a member: the messages after their read pointer, except their own
/// and change entries (system messages count: "bob added carol" is news; "bob reacted"
/// is not).
pub const UNREAD: Counting<'static> = Counting {
    except_types: &ContentType::CHANGES,
    except_own: true,
};

/// Who hears that a pointer passed some messages in a group: their senders, except the
/// senders of system messages and of changes (an announcement or a reaction is nobody's
/// message to have read).
pub const RECEIPT_SENDERS: Counting<'static> = Counting {
    except_types: &[
        ContentType::SYSTEM,
        ContentType::REACTION,
        ContentType::EDIT,
        ContentType::DELETE,
    ],
    except_own: false,
};

/// A change as its actor asked for it, before it is authorized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeIntent {
    /// New name and/or description (admins).
    Rename {
        name: Option<String>,
        description: Option<String>,
    },
    /// Add users (admins); users already in are skipped.
    AddMembers(Vec<UserId>),
    /// Set a member's role (the owner); `Owner` hands ownership over.
    SetRole { user_id: UserId, role: Role },
    /// Remove a member (admins, over lower roles), or leave (`user_id` is the actor).
    Remove { user_id: UserId },
    /// Disappearing messages on (seconds) or off (0): any member of a direct chat, group
    /// admins. The value was checked against the configured choices.
    SetDisappearing(u32),
    /// A new group picture (checked: the actor's own, ready picture) or none (admins).
    SetAvatar(Option<MediaId>),
}

/// What an authorized change does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChangePlan {
    /// Store changes, applied in order in one transaction.
    pub changes: Vec<ConversationChange>,
    /// System events, one system message each, in this order after the changes.
    pub events: Vec<SystemEvent>,
    /// Users who are no longer members afterwards.
    pub removed: Vec<UserId>,
}

impl ChangePlan {
    /// Nothing to do (adding people already in, giving a role someone has).
    pub fn is_noop(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Decides `intent` by `actor` against `members` as they are now.
pub fn plan_change(
    members: &ConversationMembers,
    actor: &UserId,
    intent: &ChangeIntent,
    max_group_members: usize,
) -> Result<ChangePlan> {
    let Some(actor_role) = members.role_of(actor) else {
        return Err(Error::NotMember);
    };
    if members.kind == ConversationType::Direct
        && !matches!(intent, ChangeIntent::SetDisappearing(_))
    {
        return Err(Error::Forbidden(
            "direct conversations have fixed members and no roles".into(),
        ));
    }
    match intent {
        ChangeIntent::SetDisappearing(seconds) => {
            if members.kind == ConversationType::Group {
                require_admin(actor_role)?;
            }
            Ok(ChangePlan {
                changes: vec![ConversationChange::SetDisappearing(*seconds)],
                events: vec![SystemEvent::DisappearingChanged {
                    actor_id: actor.clone(),
                    seconds: *seconds,
                }],
                removed: Vec::new(),
            })
        }
        ChangeIntent::Rename { name, description } => {
            require_admin(actor_role)?;
            Ok(ChangePlan {
                changes: vec![ConversationChange::Rename {
                    name: name.clone(),
                    description: description.clone(),
                }],
                events: vec![SystemEvent::ConversationRenamed {
                    actor_id: actor.clone(),
                    name: name.clone(),
                    description: description.clone(),
                }],
                removed: Vec::new(),
            })
        }
        ChangeIntent::SetAvatar(media_id) => {
            require_admin(actor_role)?;
            Ok(ChangePlan {
                changes: vec![ConversationChange::SetAvatar(media_id.clone())],
                events: vec![SystemEvent::AvatarChanged {
                    actor_id: actor.clone(),
                    avatar_media_id: media_id.clone(),
                }],
                removed: Vec::new(),
            })
        }
        ChangeIntent::AddMembers(user_ids) => {
            require_admin(actor_role)?;
            let mut seen = HashSet::new();
            let joining: Vec<UserId> = user_ids
                .iter()
                .filter(|user_id| !members.is_member(user_id) && seen.insert((*user_id).clone()))
                .cloned()
                .collect();
            if joining.is_empty() {
                return Ok(ChangePlan::default());
            }
            if members.members.len() + joining.len() > max_group_members {
                return Err(Error::GroupFull {
                    limit: max_group_members,
                });
            }
            Ok(ChangePlan {
                changes: vec![ConversationChange::AddMembers(
                    joining
                        .iter()
                        .map(|user_id| (user_id.clone(), Role::Member))
                        .collect(),
                )],
                events: vec![SystemEvent::MembersAdded {
                    actor_id: actor.clone(),
                    user_ids: joining,
                }],
                removed: Vec::new(),
            })
        }
        ChangeIntent::SetRole { user_id, role } => {
            if actor_role != Role::Owner {
                return Err(Error::Forbidden("only the owner sets roles".into()));
            }
            let Some(current) = members.role_of(user_id) else {
                return Err(Error::NotFound("member"));
            };
            if user_id == actor || current == *role {
                return Ok(ChangePlan::default());
            }
            let mut roles = vec![(user_id.clone(), *role)];
            if *role == Role::Owner {
                roles.push((actor.clone(), Role::Admin));
            }
            Ok(ChangePlan {
                changes: vec![ConversationChange::SetRoles(roles)],
                events: vec![SystemEvent::RoleChanged {
                    actor_id: actor.clone(),
                    user_id: user_id.clone(),
                    role: *role,
                }],
                removed: Vec::new(),
            })
        }
        ChangeIntent::Remove { user_id } if user_id == actor => {
            let mut plan = ChangePlan {
                changes: vec![ConversationChange::RemoveMember(actor.clone())],
                events: vec![SystemEvent::MemberLeft {
                    user_id: actor.clone(),
                }],
                removed: vec![actor.clone()],
            };
            if actor_role == Role::Owner {
                if let Some(successor) = successor(&members.members, actor) {
                    plan.changes.push(ConversationChange::SetRoles(vec![(
                        successor.clone(),
                        Role::Owner,
                    )]));
                    plan.events.push(SystemEvent::RoleChanged {
                        actor_id: actor.clone(),
                        user_id: successor,
                        role: Role::Owner,
                    });
                }
            }
            Ok(plan)
        }
        ChangeIntent::Remove { user_id } => {
            let Some(target_role) = members.role_of(user_id) else {
                return Err(Error::NotFound("member"));
            };
            if !actor_role.is_admin() || target_role >= actor_role {
                return Err(Error::Forbidden(
                    "only admins remove members, and only the owner removes admins".into(),
                ));
            }
            Ok(ChangePlan {
                changes: vec![ConversationChange::RemoveMember(user_id.clone())],
                events: vec![SystemEvent::MemberRemoved {
                    actor_id: actor.clone(),
                    user_id: user_id.clone(),
                }],
                removed: vec![user_id.clone()],
            })
        }
    }
}

/// Whether a conversation the user archived at `archived_at` is still in their archive:
/// a message arriving since (`last_activity_at` moves with messages, not with reactions
/// or edits) brings it back, unless the conversation is muted. (The stores filter the
/// list by the same rule.)
pub fn is_archived(
    archived_at: Option<Timestamp>,
    last_activity_at: Timestamp,
    muted: bool,
) -> bool {
    archived_at.is_some_and(|archived_at| last_activity_at <= archived_at || muted)
}

/// When a message appended now expires, in a conversation whose disappearing messages are
/// set to `disappearing_seconds` (0: off): ordinary messages only. System messages stay,
/// and change entries go with their target when it is purged.
pub fn expires_at(
    content_type: &ContentType,
    created_at: Timestamp,
    disappearing_seconds: u32,
) -> Option<Timestamp> {
    (disappearing_seconds > 0 && !content_type.is_system() && !content_type.is_change()).then(
        || {
            Timestamp(
                created_at
                    .millis()
                    .saturating_add(i64::from(disappearing_seconds) * 1000),
            )
        },
    )
}

/// How a disappearing duration reads: "24 hours", "7 days", "90 days", or in seconds.
pub fn disappearing_label(seconds: u32) -> String {
    match seconds {
        0 => "off".to_owned(),
        seconds if seconds % 86_400 == 0 && seconds >= 2 * 86_400 => {
            format!("{} days", seconds / 86_400)
        }
        seconds if seconds % 3600 == 0 => format!("{} hours", seconds / 3600),
        seconds => format!("{seconds} seconds"),
    }
}

/// Who owns a group after its owner leaves: the longest-standing admin, else the
/// longest-standing member (ties by user id, so every node picks the same one).
pub fn successor(members: &[Member], leaving: &UserId) -> Option<UserId> {
    members
        .iter()
        .filter(|member| &member.user_id != leaving)
        .min_by(|a, b| {
            let rank = |member: &Member| u8::from(member.role != Role::Admin);
            (rank(a), a.joined_at, &a.user_id).cmp(&(rank(b), b.joined_at, &b.user_id))
        })
        .map(|member| member.user_id.clone())
}

fn require_admin(role: Role) -> Result<()> {
    if role.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(
            "only group owners and admins can do this".into(),
        ))
    }
}

/// Whether `actor` may apply a change of `kind` to a message of `sender` that is `age`
/// old: anyone in the conversation may react; only the sender may edit, within
/// `edit_window`; the sender may delete within the window, and a group's admins and owner
/// at any time. (Membership and the target's state are checked before.)
pub fn may_change(
    kind: &ContentType,
    members: &ConversationMembers,
    actor: &UserId,
    sender: &UserId,
    age: std::time::Duration,
    edit_window: std::time::Duration,
) -> Result<()> {
    if *kind == ContentType::REACTION {
        return Ok(());
    }
    let group_admin = members.kind == ConversationType::Group
        && members.role_of(actor).is_some_and(Role::is_admin);
    if *kind == ContentType::DELETE && group_admin {
        return Ok(());
    }
    if actor != sender {
        return Err(Error::NotSender);
    }
    if age > edit_window {
        return Err(Error::EditWindowPassed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_proto::Timestamp;

    fn member(id: &str, role: Role, joined_at: i64) -> Member {
        Member {
            user_id: UserId::from(id),
            role,
            joined_at: Timestamp(joined_at),
            username: None,
            display_name: None,
        }
    }

    fn group(members: Vec<Member>) -> ConversationMembers {
        ConversationMembers::new(ConversationType::Group, members, 1)
    }

    /// Edits: the sender only, within 48 h; deletes: the sender within 48 h or a group
    /// admin or owner at any age; reactions: anyone.
    #[test]
    fn who_may_react_edit_and_delete() {
        use std::time::Duration;
        let window = Duration::from_secs(48 * 3600);
        let fresh = Duration::from_secs(47 * 3600);
        let old = Duration::from_secs(48 * 3600 + 1);
        let members = group(vec![
            member("u_owner", Role::Owner, 1),
            member("u_admin", Role::Admin, 2),
            member("u_sender", Role::Member, 3),
            member("u_other", Role::Member, 4),
        ]);
        let id = |name: &str| UserId::from(name);
        let sender = id("u_sender");
        let check = |kind: &ContentType, actor: &str, age| {
            may_change(kind, &members, &id(actor), &sender, age, window)
        };
        assert!(check(&ContentType::EDIT, "u_sender", fresh).is_ok());
        assert!(matches!(
            check(&ContentType::EDIT, "u_sender", old),
            Err(Error::EditWindowPassed)
        ));
        assert!(matches!(
            check(&ContentType::EDIT, "u_other", fresh),
            Err(Error::NotSender)
        ));
        assert!(matches!(
            check(&ContentType::EDIT, "u_owner", fresh),
            Err(Error::NotSender)
        ));
        assert!(check(&ContentType::DELETE, "u_sender", fresh).is_ok());
        assert!(matches!(
            check(&ContentType::DELETE, "u_sender", old),
            Err(Error::EditWindowPassed)
        ));
        assert!(check(&ContentType::DELETE, "u_admin", old).is_ok());
        assert!(check(&ContentType::DELETE, "u_owner", old).is_ok());
        assert!(matches!(
            check(&ContentType::DELETE, "u_other", fresh),
            Err(Error::NotSender)
        ));
        assert!(check(&ContentType::REACTION, "u_other", old).is_ok());
        // In a direct chat nobody is an admin: only the sender deletes.
        let direct = ConversationMembers::new(
            ConversationType::Direct,
            vec![
                member("u_sender", Role::Member, 1),
                member("u_other", Role::Member, 1),
            ],
            1,
        );
        assert!(matches!(
            may_change(
                &ContentType::DELETE,
                &direct,
                &id("u_other"),
                &sender,
                fresh,
                window
            ),
            Err(Error::NotSender)
        ));
    }

    #[test]
    fn the_owner_leaving_hands_over_to_the_oldest_admin_as_its_own_event() {
        let members = group(vec![
            member("u_owner", Role::Owner, 1),
            member("u_member", Role::Member, 2),
            member("u_admin", Role::Admin, 3),
        ]);
        let owner = UserId::from("u_owner");
        let plan = plan_change(
            &members,
            &owner,
            &ChangeIntent::Remove {
                user_id: owner.clone(),
            },
            10,
        )
        .unwrap();
        assert_eq!(plan.removed, vec![owner.clone()]);
        assert_eq!(
            plan.events.last(),
            Some(&SystemEvent::RoleChanged {
                actor_id: owner,
                user_id: UserId::from("u_admin"),
                role: Role::Owner,
            })
        );
    }

    #[test]
    fn a_removed_admin_can_no_longer_rename() {
        let members = group(vec![member("u_owner", Role::Owner, 1)]);
        let refusal = plan_change(
            &members,
            &UserId::from("u_gone"),
            &ChangeIntent::Rename {
                name: Some("x".into()),
                description: None,
            },
            10,
        );
        assert!(matches!(refusal, Err(Error::NotMember)));
    }

    #[test]
    fn only_the_owner_hands_over_and_then_is_an_admin() {
        let members = group(vec![
            member("u_owner", Role::Owner, 1),
            member("u_admin", Role::Admin, 2),
        ]);
        let hand_over = ChangeIntent::SetRole {
            user_id: UserId::from("u_owner"),
            role: Role::Owner,
        };
        assert!(matches!(
            plan_change(&members, &UserId::from("u_admin"), &hand_over, 10),
            Err(Error::Forbidden(_))
        ));
        let plan = plan_change(
            &members,
            &UserId::from("u_owner"),
            &ChangeIntent::SetRole {
                user_id: UserId::from("u_admin"),
                role: Role::Owner,
            },
            10,
        )
        .unwrap();
        assert_eq!(
            plan.changes,
            vec![ConversationChange::SetRoles(vec![
                (UserId::from("u_admin"), Role::Owner),
                (UserId::from("u_owner"), Role::Admin),
            ])]
        );
    }

    /// Disappearing messages: any member of a direct chat, admins of a group; a system
    /// event either way. Only ordinary messages sent while it is on expire.
    #[test]
    fn disappearing_messages_rules() {
        let set = ChangeIntent::SetDisappearing(86_400);
        let direct = ConversationMembers::new(
            ConversationType::Direct,
            vec![
                member("u_a", Role::Member, 1),
                member("u_b", Role::Member, 1),
            ],
            1,
        );
        let plan = plan_change(&direct, &UserId::from("u_b"), &set, 10).unwrap();
        assert_eq!(
            plan.changes,
            vec![ConversationChange::SetDisappearing(86_400)]
        );
        assert_eq!(
            plan.events,
            vec![SystemEvent::DisappearingChanged {
                actor_id: UserId::from("u_b"),
                seconds: 86_400
            }]
        );
        let members = group(vec![
            member("u_owner", Role::Owner, 1),
            member("u_member", Role::Member, 2),
        ]);
        assert!(plan_change(&members, &UserId::from("u_owner"), &set, 10).is_ok());
        assert!(matches!(
            plan_change(&members, &UserId::from("u_member"), &set, 10),
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            plan_change(&members, &UserId::from("u_stranger"), &set, 10),
            Err(Error::NotMember)
        ));

        let at = Timestamp(1_000);
        assert_eq!(
            expires_at(&ContentType::TEXT, at, 86_400),
            Some(Timestamp(1_000 + 86_400_000))
        );
        assert_eq!(expires_at(&ContentType::TEXT, at, 0), None);
        assert_eq!(expires_at(&ContentType::SYSTEM, at, 86_400), None);
        assert_eq!(expires_at(&ContentType::REACTION, at, 86_400), None);
        assert_eq!(disappearing_label(86_400), "24 hours");
        assert_eq!(disappearing_label(604_800), "7 days");
        assert_eq!(disappearing_label(7_776_000), "90 days");
    }
}
