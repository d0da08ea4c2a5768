//! WebSocket client frames: `parley-gateway/src/ws.rs` decodes every text frame with
//! `serde_json::from_str::<ClientFrame>`. Arbitrary bytes must never panic; the byte and
//! text paths must agree (the error category picks the error code); whatever decodes
//! must survive encode → decode unchanged.

#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use parley_proto::ClientFrame;

fuzz_target!(|data: &[u8]| {
    let from_bytes = serde_json::from_slice::<ClientFrame>(data);
    // A WebSocket text frame is UTF-8 by construction; that is the server's path.
    if let Ok(text) = std::str::from_utf8(data) {
        let from_text = serde_json::from_str::<ClientFrame>(text);
        match (&from_text, &from_bytes) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "from_str and from_slice disagree"),
            (Err(a), Err(b)) => assert_eq!(
                a.classify(),
                b.classify(),
                "from_str and from_slice fail differently: {a} / {b}"
            ),
            _ => panic!("from_str {from_text:?} but from_slice {from_bytes:?}"),
        }
    }
    if let Ok(frame) = from_bytes {
        common::round_trip_eq(&frame);
        // The server reads the tag back to name unknown types: it is always a string.
        let value: serde_json::Value = serde_json::to_value(&frame).expect("encodes");
        assert!(value.get("type").is_some_and(|kind| kind.is_string()));
    }
});
