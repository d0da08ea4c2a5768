//! `parley_proto` types with their own string parsing: `Timestamp` (RFC 3339, checked by
//! `Timestamp::parse` and its `Deserialize`), `Role::parse`, the enums the wire spells as
//! snake-case strings, and the id newtypes.
//!
//! The first input byte picks the check (`'0'` + index; any other byte wraps around),
//! the rest is its input.

#![no_main]

mod common;

use common::round_trip_eq;
use libfuzzer_sys::fuzz_target;
use parley_proto::{
    ConversationId, ConversationType, DeviceId, ErrorCode, MessageId, PresenceStatus,
    ReceiptStatus, Role, Timestamp, UserId,
};

const CHECKS: usize = 7;

/// `0000-01-01T00:00:00.000Z` and `9999-12-31T23:59:59.999Z`: the instants RFC 3339 (four
/// digit years) can write in UTC, so the ones `Timestamp` can round-trip.
const RFC3339_MIN_MILLIS: i64 = -62_167_219_200_000;
const RFC3339_MAX_MILLIS: i64 = 253_402_300_799_999;

fn writable(stamp: Timestamp) -> bool {
    (RFC3339_MIN_MILLIS..=RFC3339_MAX_MILLIS).contains(&stamp.millis())
}

/// A timestamp that `Timestamp::parse` (or its `Deserialize`) accepted: it must be one
/// RFC 3339 can write back (the fuzzer once found `0000-01-01T00:00:00+00:01` and a leap
/// second in 9999, which parsed to instants outside years 0000-9999; `parse` refuses them
/// now), and it must round-trip.
fn check_parsed_timestamp(text: &str, stamp: Timestamp) {
    assert!(
        writable(stamp),
        "Timestamp::parse accepted {text:?} as {stamp:?}, which is written as {:?}",
        stamp.to_rfc3339()
    );
    check_timestamp_round_trip(stamp);
}

/// A timestamp written and read back is the same instant (for writable instants).
fn check_timestamp_round_trip(stamp: Timestamp) {
    let text = stamp.to_rfc3339();
    assert_eq!(stamp.to_string(), text, "Display and to_rfc3339 differ");
    if writable(stamp) {
        assert_eq!(
            Timestamp::parse(&text),
            Some(stamp),
            "{stamp:?} is written as {text:?}, which does not parse back"
        );
        assert!(
            text.ends_with('Z') && text.len() == 24,
            "not canonical: {text:?}"
        );
        round_trip_eq(&stamp);
    }
}

fn check_string_enum<T>(body: &[u8], as_str: impl Fn(&T) -> &'static str)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        round_trip_eq(&value);
        assert_eq!(
            serde_json::to_string(&value).expect("encodes"),
            format!("\"{}\"", as_str(&value)),
            "as_str and the serde name differ"
        );
    }
}

fn check_id<T>(body: &[u8], inner: impl Fn(&T) -> &str)
where
    T: serde::Serialize
        + serde::de::DeserializeOwned
        + PartialEq
        + std::fmt::Debug
        + std::fmt::Display,
{
    if let Ok(id) = serde_json::from_slice::<T>(body) {
        round_trip_eq(&id);
        // Transparent on the wire: the same JSON as the bare string.
        let string: String = serde_json::from_slice(body).expect("an id is a string");
        assert_eq!(inner(&id), string);
        assert_eq!(id.to_string(), string);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match usize::from(selector.wrapping_sub(b'0')) % CHECKS {
        // Timestamp::parse on text (e.g. a stored or query value).
        0 => {
            if let Ok(text) = std::str::from_utf8(body) {
                if let Some(stamp) = Timestamp::parse(text) {
                    check_parsed_timestamp(text, stamp);
                }
            }
        }
        // Timestamp from JSON (a JSON string, as in messages and conversations).
        1 => {
            let from_json = serde_json::from_slice::<Timestamp>(body);
            if let Ok(stamp) = from_json {
                // Deserialize is exactly Timestamp::parse of the JSON string.
                let text: String = serde_json::from_slice(body).expect("was a string");
                assert_eq!(Timestamp::parse(&text), Some(stamp));
                check_parsed_timestamp(&text, stamp);
            }
        }
        // Any millisecond count: writing never panics; writable ones parse back.
        2 => {
            let mut bytes = [0u8; 8];
            let n = body.len().min(8);
            bytes[..n].copy_from_slice(&body[..n]);
            check_timestamp_round_trip(Timestamp::from_millis(i64::from_le_bytes(bytes)));
        }
        // Role: `Role::parse` (the store's) agrees with serde (the wire's).
        3 => {
            if let Ok(text) = std::str::from_utf8(body) {
                let parsed = Role::parse(text);
                let json = serde_json::to_string(text).expect("a str encodes");
                let from_json = serde_json::from_str::<Role>(&json).ok();
                assert_eq!(
                    parsed, from_json,
                    "Role::parse and serde disagree on {text:?}"
                );
                if let Some(role) = parsed {
                    assert_eq!(role.as_str(), text);
                }
            }
            check_string_enum::<Role>(body, |role| role.as_str());
        }
        // The other snake-case enums.
        4 => {
            check_string_enum::<ErrorCode>(body, |code| code.as_str());
            if let Ok(code) = serde_json::from_slice::<ErrorCode>(body) {
                assert!((400..600).contains(&code.http_status()));
            }
            check_string_enum::<ConversationType>(body, |kind| kind.as_str());
            if let Ok(status) = serde_json::from_slice::<ReceiptStatus>(body) {
                round_trip_eq(&status);
            }
            if let Ok(status) = serde_json::from_slice::<PresenceStatus>(body) {
                round_trip_eq(&status);
            }
        }
        // Id newtypes.
        5 => {
            check_id::<UserId>(body, UserId::as_str);
            check_id::<DeviceId>(body, DeviceId::as_str);
            check_id::<ConversationId>(body, ConversationId::as_str);
            check_id::<MessageId>(body, MessageId::as_str);
        }
        // Sync cursors: a JSON object of conversation id → seq.
        6 => {
            if let Ok(cursors) = serde_json::from_slice::<parley_proto::frames::Cursors>(body) {
                round_trip_eq(&cursors);
            }
        }
        _ => unreachable!(),
    }
});
