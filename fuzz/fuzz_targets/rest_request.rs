//! REST request bodies (`parley_proto::rest::*Request`), decoded by the gateway through
//! axum's `Json` (`serde_json` from the body bytes).
//!
//! The first input byte picks the type (`'0'` + index below; any other byte wraps
//! around), the rest is the body. Whatever decodes must survive encode → decode.

#![no_main]

mod common;

use common::decode_and_round_trip;
use libfuzzer_sys::fuzz_target;
use parley_proto::rest::{
    AddMembersRequest, CreateConversationRequest, LoginRequest, ReadRequest, RegisterRequest,
    SendMessageRequest, UpdateConversationRequest, UpdateMemberRequest, UpdateProfileRequest,
};

/// Every body type the server deserializes, in selector order.
const TYPES: usize = 9;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match usize::from(selector.wrapping_sub(b'0')) % TYPES {
        // POST /auth/register
        0 => {
            decode_and_round_trip::<RegisterRequest>(body);
        }
        // POST /auth/login
        1 => {
            decode_and_round_trip::<LoginRequest>(body);
        }
        // PATCH /users/me
        2 => {
            decode_and_round_trip::<UpdateProfileRequest>(body);
        }
        // POST /conversations
        3 => {
            decode_and_round_trip::<CreateConversationRequest>(body);
        }
        // PATCH /conversations/{id}
        4 => {
            decode_and_round_trip::<UpdateConversationRequest>(body);
        }
        // POST /conversations/{id}/members
        5 => {
            decode_and_round_trip::<AddMembersRequest>(body);
        }
        // PATCH /conversations/{id}/members/{user_id}
        6 => {
            if let Some(request) = decode_and_round_trip::<UpdateMemberRequest>(body) {
                // The wire name and the store's parser agree.
                let role = request.role;
                assert_eq!(parley_proto::Role::parse(role.as_str()), Some(role));
            }
        }
        // POST /conversations/{id}/messages
        7 => {
            decode_and_round_trip::<SendMessageRequest>(body);
        }
        // POST /conversations/{id}/read
        8 => {
            decode_and_round_trip::<ReadRequest>(body);
        }
        _ => unreachable!(),
    }
});
