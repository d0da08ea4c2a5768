//! The payload of a bus message: the JSON of the `BusEvent`, with a `Deliver`'s
//! `user_ids` left empty, because the subject names the one user a copy is for.
//!
//! A `Deliver` to a group is published once per member, each copy on its member's
//! subject. Leaving the users out of the payload makes every copy the same bytes, so the
//! event is encoded once and the one buffer is handed to every publish (a group of 1000
//! does not carry 1000 member lists 1000 times). The receiver puts the subject's user
//! back. The same identical bytes let a receiver decode a group message once for all the
//! copies it gets in a row ([`Decoder`]), and keep one `Arc` of the frame for all of them.
//!
//! Nodes of one cluster must agree on this shape. serde ignores fields it does not know,
//! so adding an optional field to an event is a rolling upgrade; renaming one is not.

use crate::subject::Target;
use bytes::Bytes;
use parley_core::bus::{BusError, BusEvent};
use parley_proto::UserId;
use std::sync::Arc;

/// A message that is not an event of the subject it came on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("payload is not a bus event")]
    Json(#[from] serde_json::Error),
    #[error("{event} event on a {subject} subject")]
    Misaddressed {
        event: &'static str,
        subject: &'static str,
    },
}

/// Whether `event` goes whole to every node rather than to each user's subject (see
/// `NatsOptions::broadcast_at`).
pub(crate) fn is_broadcast(event: &BusEvent, broadcast_at: usize) -> bool {
    matches!(event, BusEvent::Deliver { user_ids, .. } if user_ids.len() >= broadcast_at.max(1))
}

/// `event`'s payload, the same for every subject it is published on; a `broadcast`
/// `Deliver` keeps its users (every node picks out its own).
pub(crate) fn encode(event: &BusEvent, broadcast: bool) -> Result<Bytes, BusError> {
    let encoded = match event {
        BusEvent::Deliver { .. } if broadcast => serde_json::to_vec(event),
        BusEvent::Deliver {
            except_connection,
            frame,
            created_at_ms,
            ..
        } => serde_json::to_vec(&BusEvent::Deliver {
            user_ids: Arc::from([]),
            except_connection: except_connection.clone(),
            frame: frame.clone(),
            created_at_ms: *created_at_ms,
        }),
        other => serde_json::to_vec(other),
    };
    encoded.map(Bytes::from).map_err(|error| BusError::Codec {
        source: Box::new(error),
    })
}

/// Decodes payloads, remembering the last one: the copies of a group message reach a node
/// one after another with equal bytes, and comparing bytes is far cheaper than parsing
/// JSON again.
#[derive(Default)]
pub(crate) struct Decoder {
    last: Option<(Bytes, BusEvent)>,
}

impl Decoder {
    /// The event a message on `target`'s subject carries, addressed to `user` (for user
    /// subjects: a slice of the one user, shared by every event of that subscription).
    pub(crate) fn decode(
        &mut self,
        payload: &Bytes,
        target: &Target,
        user: &Arc<[UserId]>,
    ) -> Result<BusEvent, WireError> {
        let event = match &self.last {
            Some((bytes, event)) if bytes == payload => event.clone(),
            _ => {
                let event: BusEvent = serde_json::from_slice(payload)?;
                self.last = Some((payload.clone(), event.clone()));
                event
            }
        };
        address(event, target, user)
    }
}

/// Checks that `event` belongs on `target`'s subject and gives a `Deliver` its user.
fn address(event: BusEvent, target: &Target, user: &Arc<[UserId]>) -> Result<BusEvent, WireError> {
    let fits = match (&event, target) {
        (BusEvent::Deliver { .. }, Target::User(_)) => true,
        (BusEvent::CloseDevice { user_id, .. }, Target::User(subject_user))
        | (BusEvent::Presence { user_id, .. }, Target::Presence(subject_user)) => {
            user_id == subject_user
        }
        (BusEvent::MembershipChanged { .. } | BusEvent::Deliver { .. }, Target::All) => true,
        _ => false,
    };
    if !fits {
        return Err(WireError::Misaddressed {
            event: match event {
                BusEvent::Deliver { .. } => "deliver",
                BusEvent::Presence { .. } => "presence",
                BusEvent::CloseDevice { .. } => "close_device",
                BusEvent::MembershipChanged { .. } => "membership_changed",
            },
            subject: match target {
                Target::User(_) => "user",
                Target::Presence(_) => "presence",
                Target::All => "all",
            },
        });
    }
    Ok(match event {
        // A broadcast keeps its users: the receiver keeps those the node holds.
        deliver @ BusEvent::Deliver { .. } if matches!(target, Target::All) => deliver,
        BusEvent::Deliver {
            except_connection,
            frame,
            created_at_ms,
            ..
        } => BusEvent::Deliver {
            user_ids: user.clone(),
            except_connection,
            frame,
            created_at_ms,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_proto::ServerFrame;

    fn deliver(user_ids: &[&str]) -> BusEvent {
        BusEvent::Deliver {
            user_ids: user_ids.iter().map(|id| UserId::from(*id)).collect(),
            except_connection: None,
            frame: Arc::new(ServerFrame::Pong {}),
            created_at_ms: Some(7),
        }
    }

    fn encode_split(event: &BusEvent) -> Result<Bytes, BusError> {
        encode(event, false)
    }

    #[test]
    fn a_broadcast_keeps_its_users_on_the_all_subject() {
        let event = deliver(&["u_a", "u_b"]);
        assert!(is_broadcast(&event, 2) && !is_broadcast(&event, 3));
        let payload = encode(&event, true).unwrap();
        let none: Arc<[UserId]> = Arc::from([]);
        let mut decoder = Decoder::default();
        assert_eq!(
            decoder.decode(&payload, &Target::All, &none).unwrap(),
            event
        );
    }

    #[test]
    fn a_deliver_is_encoded_without_its_users_and_decoded_with_the_subjects() {
        let payload = encode_split(&deliver(&["u_a", "u_b"])).unwrap();
        assert!(!payload.windows(3).any(|window| window == b"u_a"));
        let user: Arc<[UserId]> = Arc::from([UserId::from("u_b")]);
        let target = Target::User(UserId::from("u_b"));
        let mut decoder = Decoder::default();
        assert_eq!(
            decoder.decode(&payload, &target, &user).unwrap(),
            deliver(&["u_b"])
        );
    }

    #[test]
    fn equal_payloads_share_one_decoded_frame() {
        let payload = encode_split(&deliver(&["u_a", "u_b"])).unwrap();
        let copy = Bytes::copy_from_slice(&payload);
        let mut decoder = Decoder::default();
        let frames: Vec<_> = ["u_a", "u_b"]
            .into_iter()
            .zip([payload, copy])
            .map(|(id, payload)| {
                let user: Arc<[UserId]> = Arc::from([UserId::from(id)]);
                let target = Target::User(UserId::from(id));
                match decoder.decode(&payload, &target, &user).unwrap() {
                    BusEvent::Deliver { frame, .. } => frame,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert!(Arc::ptr_eq(&frames[0], &frames[1]));
    }

    #[test]
    fn events_on_the_wrong_subject_or_garbage_are_refused() {
        let user: Arc<[UserId]> = Arc::from([UserId::from("u_a")]);
        let mut decoder = Decoder::default();
        let payload = encode_split(&deliver(&["u_a"])).unwrap();
        let presence = Target::Presence(UserId::from("u_a"));
        assert!(decoder.decode(&payload, &presence, &user).is_err());
        let close = encode_split(&BusEvent::CloseDevice {
            user_id: UserId::from("u_other"),
            device_id: "d_1".into(),
        })
        .unwrap();
        let target = Target::User(UserId::from("u_a"));
        assert!(decoder.decode(&close, &target, &user).is_err());
        let garbage = Bytes::from_static(b"{\"kind\":\"nope\"}");
        assert!(decoder.decode(&garbage, &target, &user).is_err());
    }
}
