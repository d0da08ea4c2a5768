//! End-to-end tests: the real server on a random port, driven over real sockets by the SDK
//! (and by raw WebSocket/HTTP clients where a test must send what the SDK never would).
//!
//! Scenarios are functions over a [`harness::TestServer`], so the same ones can run
//! against every deployment mode.

mod backends;
mod binary;
mod harness;
mod raw;

mod account_data;
mod accounts;
mod avatars;
mod blocking;
mod chat_settings;
mod cli;
mod cluster;
mod conversations;
mod crash;
mod disappearing;
mod faults;
mod group_races;
mod hardening;
mod media;
mod media_parts;
mod message_changes;
mod messaging;
mod nodes;
mod postgres;
mod presence;
mod push;
mod receipts;
mod refusals;
mod sync;
mod tls;
