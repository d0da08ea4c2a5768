//! Conformance suites: one `pub async fn` per behaviour, run against every backend.
//!
//! A backend's `tests/conformance.rs` calls [`store_conformance!`] with a function that
//! makes a fresh, empty store; the macro turns each behaviour into a named test. The
//! behaviours are `protocol.md`'s guarantees as the `Store` trait states them: gap-free
//! `seq` under concurrency, dedup of `(sender_id, client_msg_id)`, exact history ranges,
//! receipts that never go back, membership changes that commit with their system message.

pub mod store;

/// Defines one `#[tokio::test]` per store behaviour. `$new_store` is an async fn returning
/// `(Arc<dyn Store>, Guard)`; the guard (a temp dir, a database name) lives for the test.
#[macro_export]
macro_rules! store_conformance {
    ($new_store:path) => {
        $crate::store_conformance!(@tests $new_store;
            users_are_unique_and_searchable,
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
