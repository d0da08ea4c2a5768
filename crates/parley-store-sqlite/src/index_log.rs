//! The commits' side of the search index: what a commit writes to `index_log` (the
//! changes it makes due, see `index.rs`), and the row ids and documents both sides agree
//! on.

use super::*;

/// A message's row id in `message_index`: its conversation's `search_key` in the high 32
/// bits, its `seq` in the low ones (a conversation is one range of row ids).
pub(crate) fn index_rowid(search_key: i64, seq: i64) -> i64 {
    (search_key << 32) | (seq & 0xFFFF_FFFF)
}

/// The row id range `[first, last]` of one conversation's messages in `message_index`.
pub(crate) fn index_range(search_key: i64) -> (i64, i64) {
    (
        index_rowid(search_key, 0),
        index_rowid(search_key, 0xFFFF_FFFF),
    )
}

/// Whether a message is indexed for search: ordinary text, not deleted, with a `seq` that
/// fits its row id.
pub(crate) fn is_indexed(message: &Message) -> bool {
    message.content_type == ContentType::TEXT && !message.deleted && message.seq <= 0xFFFF_FFFF
}

/// A text's terms as the index takes them: parley-core's folded words, space separated
/// (made before a commit begins: it is the costly part of a document).
pub(crate) fn index_terms(content: &str) -> String {
    parley_core::search::index_terms(content).join(" ")
}

/// What `message_index` indexes for a message of the conversation `search_key`: its
/// conversation's token, then its terms (`index_terms`).
pub(crate) fn index_document(search_key: i64, terms: &str) -> String {
    let token = conversation_token(search_key);
    let mut document = String::with_capacity(token.len() + 1 + terms.len());
    document.push_str(&token);
    if !terms.is_empty() {
        document.push(' ');
        document.push_str(terms);
    }
    document
}

/// The index token every message of a conversation carries (`_c<search_key>`, which no
/// query word can match or be a prefix of: words are letters and digits only).
pub(crate) fn conversation_token(search_key: i64) -> String {
    format!("_c{search_key}")
}

/// One change to the index, logged in the commit that makes it due. Without terms at all
/// it is a new message's: the indexer makes its document from the stored text.
pub(crate) struct IndexChange {
    pub(crate) rowid: i64,
    /// The document to take out (the text before an edit or a delete).
    pub(crate) old_terms: Option<String>,
    /// The document to put in (an edit's new text).
    pub(crate) new_terms: Option<String>,
}

/// Logs index changes in the commit that makes them due, and returns their log ids, in
/// order. (This connection is the only writer and the ids are `AUTOINCREMENT`ed, so a
/// multi-row insert's ids are consecutive, ending at its last row id.)
pub(crate) async fn log_for_index(
    transaction: &mut Transaction<'_, Sqlite>,
    changes: &[IndexChange],
) -> StoreResult<Vec<i64>> {
    let mut ids = Vec::with_capacity(changes.len());
    for chunk in changes.chunks(INSERT_CHUNK) {
        let mut insert = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO index_log (index_rowid, old_terms, new_terms) ",
        );
        insert.push_values(chunk, |mut row, change| {
            row.push_bind(change.rowid)
                .push_bind(change.old_terms.as_deref())
                .push_bind(change.new_terms.as_deref());
        });
        let last = insert
            .build()
            .execute(&mut **transaction)
            .await
            .map_err(unavailable)?
            .last_insert_rowid();
        let first = last - chunk.len() as i64 + 1;
        ids.extend(first..=last);
    }
    Ok(ids)
}
