//! Checks shared by the targets: a value that decoded must survive encode → decode.

#![allow(dead_code)]

use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// For types with `PartialEq`: `decode(encode(v)) == v`, and encoding twice gives the
/// same text.
pub fn round_trip_eq<T>(value: &T)
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let json = serde_json::to_string(value)
        .unwrap_or_else(|error| panic!("a decoded value does not encode: {error}\n{value:?}"));
    let again: T = serde_json::from_str(&json).unwrap_or_else(|error| {
        panic!("the re-encoded value does not decode: {error}\njson: {json}\nvalue: {value:?}")
    });
    assert_eq!(
        &again, value,
        "the round trip changed the value; json: {json}"
    );
    let json_again = serde_json::to_string(&again).expect("encodes");
    assert_eq!(json, json_again, "encoding is not stable");
}

/// For types without `PartialEq` (the REST request bodies): the encoding and the `Debug`
/// form must be the same after encode → decode.
pub fn round_trip_debug<T>(value: &T)
where
    T: Serialize + DeserializeOwned + Debug,
{
    let json = serde_json::to_string(value)
        .unwrap_or_else(|error| panic!("a decoded value does not encode: {error}\n{value:?}"));
    let again: T = serde_json::from_str(&json).unwrap_or_else(|error| {
        panic!("the re-encoded value does not decode: {error}\njson: {json}\nvalue: {value:?}")
    });
    assert_eq!(
        format!("{again:?}"),
        format!("{value:?}"),
        "the round trip changed the value; json: {json}"
    );
    let json_again = serde_json::to_string(&again).expect("encodes");
    assert_eq!(json, json_again, "encoding is not stable");
}

/// Decodes `bytes` as `T` the way the server does (`serde_json` from a byte slice, as
/// axum's `Json` and the WebSocket text path do) and, if that works, checks the round
/// trip. Returns the value for further checks.
pub fn decode_and_round_trip<T>(bytes: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + Debug,
{
    let value = serde_json::from_slice::<T>(bytes).ok()?;
    round_trip_debug(&value);
    Some(value)
}
