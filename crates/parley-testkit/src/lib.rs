//! Conformance suites: one `pub async fn` per behaviour, run against every backend.
//!
//! A backend's `tests/conformance.rs` calls the suite's macro with a factory that makes a
//! fresh backend; the macro turns each behaviour into a named `#[tokio::test]`:
//!
//! - [`store_conformance!`] ([`store`]): `protocol.md`'s guarantees as the `Store` trait
//!   states them: gap-free `seq` under concurrency, dedup of `(sender_id, client_msg_id)`,
//!   exact history ranges, receipts that never go back, membership changes that commit
//!   with their system message and at the `members_version` they were decided on.
//! - [`bus_conformance!`] ([`bus`]), [`presence_conformance!`] ([`presence`]): the
//!   behaviour *between nodes* of one backend (addressing, per-publisher order, leases,
//!   exactly-once departures), so the factory hands out handles for several nodes.
//! - [`rate_limiter_conformance!`] ([`ratelimit`]): bursts, refill, all-or-none, refunds,
//!   no over-grant under concurrency.
//! - [`media_conformance!`] ([`media`]): signed uploads and downloads over real HTTP
//!   (exact lengths, headers, ranges, expiry, one object and method per signature), and
//!   the server's reads, writes and deletes.
//!
//! `tests/local.rs` runs the port suites against `parley_core::local`, the reference; the
//! cluster adapters run the same ones. Timing cases use the real clock with short
//! periods, never paused time (a network backend keeps its own), and prove an absence
//! with a marker or a short quiet period rather than a long sleep.

pub mod bus;
pub mod media;
pub mod presence;
pub mod ratelimit;
pub mod services;
pub mod store;

/// Defines one `#[tokio::test]` per store behaviour. `$new_store` is an async fn returning
/// `(Arc<dyn Store>, Guard)`; the guard (a temp dir, a database name) lives for the test.
#[macro_export]
macro_rules! store_conformance {
    ($new_store:path) => {
        $crate::store_conformance!(@tests $new_store;
            users_are_unique_and_searchable,
            counts_follow_the_rule_they_are_given,
            joiners_start_with_the_history_read,
            sessions_resolve_until_revoked,
            direct_conversations_are_created_once,
            groups_start_with_their_system_message,
            seq_is_gap_free_under_concurrent_appends,
            duplicates_return_the_first_message,
            duplicates_within_one_batch_store_once,
            a_client_id_reused_in_another_conversation_is_refused,
            history_ranges_are_exact,
            membership_changes_commit_with_their_system_message,
            changes_apply_only_at_the_expected_members_version,
            only_members_append,
            list_is_newest_first_with_cursor_and_unread,
            receipts_never_go_back_or_past_the_end,
            non_members_see_nothing,
            a_ready_store_answers_ping,
            last_seen_is_stored_and_read_back,
            members_are_ordered_owner_admins_then_by_join_time,
            rename_changes_only_what_it_names,
            owner_succession_is_a_change_the_store_is_given,
            appends_carry_the_members_version_they_were_stored_at,
            reactions_are_one_per_user_and_counted_per_viewer,
            fetch_reactions_groups_by_emoji_in_order_of_first_use,
            reactions_are_never_unread_nor_the_preview,
            an_edit_replaces_the_text_and_every_earlier_edit,
            an_edited_message_is_found_by_its_new_words_only,
            a_delete_empties_the_target_and_its_edits,
            a_deleted_message_leaves_search_and_mentions,
            changes_to_a_deleted_message_are_refused_and_use_no_seq,
            only_ordinary_messages_of_the_conversation_are_targets,
            a_target_appended_earlier_in_the_batch_is_valid,
            a_delete_then_an_edit_in_one_batch_refuses_the_edit,
            change_entries_move_last_seq_but_not_last_activity,
            mentions_are_stored_and_counted_after_the_read_pointer,
            hidden_or_deleted_mentions_do_not_count,
            hide_message_is_for_the_hider_only_and_idempotent,
            hidden_messages_leave_the_hiders_preview,
            search_matches_whole_word_prefixes,
            search_ignores_case_and_accents,
            search_requires_every_term,
            search_is_newest_first_and_pages_without_gaps,
            search_is_restricted_to_the_given_conversation,
            search_covers_only_conversations_the_user_is_in_now,
            search_skips_system_messages_and_change_entries,
            search_leaves_out_only_what_the_searcher_hid,
            forwarded_copies_are_marked,
            fetch_message_reads_one_message_in_its_current_state,
            pinned_conversations_come_first_and_page_through,
            pins_are_limited_and_a_refused_pin_changes_nothing,
            a_message_brings_an_archived_chat_back_unless_muted,
            settings_read_back_and_reading_clears_the_unread_mark,
            clearing_a_chat_hides_its_past_from_that_user_only,
            clearing_resets_the_list_settings_and_needs_membership,
            a_block_stops_the_direct_chat_both_ways,
            blocks_both_ways_and_new_direct_chats,
            expired_messages_leave_every_read_at_once,
            the_purge_deletes_expired_messages_and_what_hangs_off_them,
            logging_out_everywhere_revokes_every_token,
            a_deleted_account_leaves_a_tombstone,
            an_export_reads_only_what_the_user_sent,
            media_records_complete_once,
            the_media_quota_holds_under_concurrent_uploads,
            one_completion_claims_an_upload,
            attachments_make_media_readable_to_members,
            collection_takes_unsent_and_released_media,
            avatars_are_readable_and_kept_while_shown,
            push_subscriptions_follow_their_devices,
            push_previews_and_server_secrets_keep,
        );
    };
    (@tests $new_store:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $new_store().await;
                $crate::store::$name(store).await;
            }
        )*
    };
}

/// Defines one `#[tokio::test]` per bus behaviour. `$new_buses` is an async fn taking
/// `&[NodeId]` (see [`bus::node_ids`]) and returning `(Vec<Arc<dyn Bus>>, Guard)`: one
/// handle per node, in that order, all on one fresh bus that no other test shares (a
/// subject prefix per call on a shared server), none subscribed yet. `$when_full` is the
/// backend's [`bus::WhenFull`]: what it does while a node does not read.
#[macro_export]
macro_rules! bus_conformance {
    ($new_buses:path, $when_full:expr) => {
        $crate::bus_conformance!(@tests $new_buses;
            deliver_reaches_only_nodes_interested_in_one_of_its_users,
            presence_reaches_only_its_watchers,
            membership_changes_reach_every_node,
            a_node_interested_in_several_users_receives_an_event_once,
            one_publishers_events_arrive_in_publish_order,
            remove_interest_stops_delivery,
            add_interest_is_effective_when_it_returns,
            events_round_trip_unchanged,
            subscribing_twice_is_refused,
            publishing_nothing_is_ok,
            a_dropped_stream_does_not_stall_publishers,
            a_ready_bus_answers_ping,
        );

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_node_that_does_not_read() {
            let (buses, _guard) = $new_buses(&$crate::bus::node_ids()).await;
            $crate::bus::a_node_that_does_not_read(buses, $when_full).await;
        }
    };
    (@tests $new_buses:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (buses, _guard) = $new_buses(&$crate::bus::node_ids()).await;
                $crate::bus::$name(buses).await;
            }
        )*
    };
}

/// Defines one `#[tokio::test]` per presence behaviour. `$new_registries` is an async fn
/// taking `&[NodeId]` and the lease ([`presence::LEASE`]) and returning
/// `(Vec<Arc<dyn PresenceRegistry>>, Guard)`: one handle per node, in that order, on one
/// fresh registry that no other test shares.
#[macro_export]
macro_rules! presence_conformance {
    ($new_registries:path) => {
        $crate::presence_conformance!(@tests $new_registries;
            connect_reports_only_the_first_live_connection,
            disconnect_reports_only_the_last_live_connection,
            disconnecting_an_unknown_connection_is_not_an_error,
            online_answers_in_the_order_asked,
            online_devices_lists_each_device_once,
            heartbeats_keep_connections_alive_past_the_lease,
            a_silent_nodes_users_are_offline_after_its_lease,
            reap_reports_each_departure_once,
            a_departure_is_reported_by_disconnect_or_reap_not_both,
            a_lapsed_node_gets_lost_then_a_new_lease,
            a_connect_after_a_lapse_makes_the_next_heartbeat_lost,
            a_new_lease_does_not_revive_old_connections,
            an_offline_is_announced_once_with_a_dead_connection_left,
        );
    };
    (@tests $new_registries:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let lease = $crate::presence::LEASE;
                let (registries, _guard) =
                    $new_registries(&$crate::bus::node_ids(), lease).await;
                $crate::presence::$name(registries, lease).await;
            }
        )*
    };
}

/// Defines one `#[tokio::test]` per rate-limit behaviour. `$new_limiter` is an async fn
/// returning `(Arc<dyn RateLimiter>, Guard)`: a fresh limiter no other test shares.
#[macro_export]
macro_rules! rate_limiter_conformance {
    ($new_limiter:path) => {
        $crate::rate_limiter_conformance!(@tests $new_limiter;
            a_burst_up_to_the_quota_then_denied,
            keys_and_limits_are_independent,
            acquire_is_all_or_none,
            retry_after_is_the_longest_wait,
            refund_restores_one_token_up_to_capacity,
            concurrent_acquires_never_exceed_capacity,
            tokens_refill_over_time,
        );
    };
    (@tests $new_limiter:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (limiter, _guard) = $new_limiter().await;
                $crate::ratelimit::$name(limiter).await;
            }
        )*
    };
}

/// Defines one `#[tokio::test]` per media behaviour. `$new_media` is an async fn returning
/// `(Arc<dyn MediaStore>, Guard)`: a backend whose keys no other test shares, and what
/// keeps it alive (a temp dir and the server answering its URLs, a key prefix).
#[macro_export]
macro_rules! media_conformance {
    ($new_media:path) => {
        $crate::media_conformance!(@tests $new_media;
            an_upload_request_stores_the_bytes,
            an_upload_of_another_length_is_refused_or_seen,
            a_download_request_serves_the_bytes_as_asked,
            signed_requests_bind_their_object_method_and_time,
            objects_are_written_read_and_deleted,
            ranges_of_an_object_read_back,
            objects_move,
            parts_concatenate_into_one_object,
        );
    };
    (@tests $new_media:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (media, _guard) = $new_media().await;
                $crate::media::$name(media).await;
            }
        )*
    };
}
