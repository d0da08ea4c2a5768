//! Where an event goes on NATS: the subjects of one deployment, and the checks that keep
//! an id from becoming a wildcard or a second token.
//!
//! A subject is tokens separated by `.`; `*` and `>` are wildcards when they are a whole
//! token, and whitespace ends the subject in the protocol. A user id is put into a subject
//! as one token, so an id with any of these would address other users' subjects or break
//! the protocol line: such ids are refused before anything is published or subscribed,
//! never escaped (an escape scheme is one more thing every node must agree on).

use parley_core::bus::{BusError, BusEvent, Interest};
use parley_proto::UserId;

/// Longest user id put into a subject. Server-made ids are about 30 bytes; this only stops
/// a runaway id from making protocol lines long.
const MAX_TOKEN_BYTES: usize = 256;

/// A deployment name that cannot be used as a subject token.
#[derive(Debug, thiserror::Error)]
#[error("invalid NATS subject prefix {0:?}: use 1-64 characters of a-z A-Z 0-9 - _")]
pub struct InvalidPrefix(String);

/// A user id that is not exactly one subject token.
#[derive(Debug, thiserror::Error)]
#[error("user id {0:?} cannot be a NATS subject token (empty, too long, or has '.', '*', '>', whitespace or a control character)")]
pub(crate) struct InvalidToken(String);

/// What a subscription of this node is for: the kind of its subject and, for the
/// per-user kinds, the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// `u.<user_id>`: `Deliver` and `CloseDevice` for the user's sockets.
    User(UserId),
    /// `p.<user_id>`: changes of the user's presence.
    Presence(UserId),
    /// `all`: events for every node.
    All,
}

impl From<&Interest> for Target {
    fn from(interest: &Interest) -> Self {
        match interest {
            Interest::User(user_id) => Target::User(user_id.clone()),
            Interest::Presence(user_id) => Target::Presence(user_id.clone()),
        }
    }
}

/// The subjects of one deployment: every one starts with `parley.<prefix>.`.
#[derive(Clone, Debug)]
pub(crate) struct Subjects {
    /// `parley.<prefix>.`
    space: String,
}

impl Subjects {
    pub(crate) fn new(prefix: &str) -> Result<Self, InvalidPrefix> {
        let valid = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'));
        if valid {
            Ok(Self {
                space: format!("parley.{prefix}."),
            })
        } else {
            Err(InvalidPrefix(prefix.chars().take(80).collect()))
        }
    }

    /// The subject of `target`, or `Codec` if its user id is not one token.
    pub(crate) fn of(&self, target: &Target) -> Result<String, BusError> {
        match target {
            Target::User(user_id) => self.user(user_id),
            Target::Presence(user_id) => Ok(format!("{}p.{}", self.space, token(user_id)?)),
            Target::All => Ok(self.all()),
        }
    }

    pub(crate) fn user(&self, user_id: &UserId) -> Result<String, BusError> {
        Ok(format!("{}u.{}", self.space, token(user_id)?))
    }

    pub(crate) fn all(&self) -> String {
        format!("{}all", self.space)
    }

    /// A subject of this node's own, for one round trip through the server (`barrier`):
    /// nobody else subscribes to it.
    pub(crate) fn barrier(&self, node: &str, serial: u64) -> String {
        format!("{}barrier.{node}.{serial}", self.space)
    }

    /// Whether every subject of `event` can be made, without making them.
    pub(crate) fn check(&self, event: &BusEvent) -> Result<(), BusError> {
        match event {
            BusEvent::Deliver { user_ids, .. } => user_ids
                .iter()
                .try_for_each(|user_id| token(user_id).map(drop)),
            BusEvent::CloseDevice { user_id, .. } | BusEvent::Presence { user_id, .. } => {
                token(user_id).map(drop)
            }
            BusEvent::MembershipChanged { .. } => Ok(()),
        }
    }

    /// The subjects `event` is published on, checked before anything is sent: one per user
    /// of a `Deliver`, in its order (so one user's events keep their order on their
    /// subject), or the one every node reads for a `broadcast` one; one for the others.
    pub(crate) fn for_event(
        &self,
        event: &BusEvent,
        broadcast: bool,
    ) -> Result<Vec<String>, BusError> {
        match event {
            BusEvent::Deliver { user_ids, .. } if broadcast => {
                for user_id in user_ids.iter() {
                    token(user_id)?;
                }
                Ok(vec![self.all()])
            }
            BusEvent::Deliver { user_ids, .. } => {
                user_ids.iter().map(|user_id| self.user(user_id)).collect()
            }
            BusEvent::CloseDevice { user_id, .. } => Ok(vec![self.user(user_id)?]),
            BusEvent::Presence { user_id, .. } => {
                Ok(vec![self.of(&Target::Presence(user_id.clone()))?])
            }
            BusEvent::MembershipChanged { .. } => Ok(vec![self.all()]),
        }
    }
}

/// `user_id` as it stands in a subject, if it is exactly one token.
fn token(user_id: &UserId) -> Result<&str, BusError> {
    let id = user_id.as_str();
    let valid = !id.is_empty()
        && id.len() <= MAX_TOKEN_BYTES
        && !id
            .chars()
            .any(|c| matches!(c, '.' | '*' | '>') || c.is_whitespace() || c.is_control());
    if valid {
        Ok(id)
    } else {
        Err(BusError::Codec {
            source: Box::new(InvalidToken(id.chars().take(80).collect())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_one_plain_token() {
        assert_eq!(
            Subjects::new("prod-1_a").unwrap().all(),
            "parley.prod-1_a.all"
        );
        for prefix in ["", "a.b", "a*", ">", "a b", "é", &"x".repeat(65)] {
            assert!(Subjects::new(prefix).is_err(), "{prefix:?}");
        }
    }

    #[test]
    fn user_ids_become_one_token_or_are_refused() {
        let subjects = Subjects::new("p").unwrap();
        let user = |id: &str| UserId::from(id);
        assert_eq!(
            subjects.user(&user("u_01HXYZ")).unwrap(),
            "parley.p.u.u_01HXYZ"
        );
        assert_eq!(
            subjects.of(&Target::Presence(user("u_1"))).unwrap(),
            "parley.p.p.u_1"
        );
        let long = "x".repeat(MAX_TOKEN_BYTES + 1);
        for id in [
            "", "u.1", "u_*", "*", ">", "u_>", "a b", "a\tb", "a\r\n", "\u{0}", &long,
        ] {
            assert!(
                matches!(subjects.user(&user(id)), Err(BusError::Codec { .. })),
                "{id:?}"
            );
        }
    }

    #[test]
    fn a_deliver_goes_on_each_users_subject_in_order() {
        let subjects = Subjects::new("p").unwrap();
        let event = BusEvent::Deliver {
            user_ids: vec![UserId::from("u_b"), UserId::from("u_a")].into(),
            except_connection: None,
            frame: std::sync::Arc::new(parley_proto::ServerFrame::Pong {}),
            created_at_ms: None,
        };
        assert_eq!(
            subjects.for_event(&event, false).unwrap(),
            ["parley.p.u.u_b", "parley.p.u.u_a"]
        );
    }
}
