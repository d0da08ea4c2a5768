//! Full-text search over the messages a user may see: terms folded by `crate::search`,
//! access checked by the store inside its query, snippets cut here.

use super::*;
use crate::search::{query_terms, snippet};
use crate::store::SearchQuery;
use parley_proto::MessageId;

/// One hit: the message in its current state and an excerpt with the matches marked.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchHit {
    pub message: Message,
    pub snippet: String,
}

/// A page of hits, newest first, and where the next (older) page starts.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    pub next_cursor: Option<String>,
}

/// Hits per page when the caller names no limit.
pub const DEFAULT_SEARCH_PAGE: u32 = 20;

impl Chat {
    /// Searches the user's conversations (or one of them) for messages with a word
    /// starting with each word of `query`, ignoring case and accents. `cursor` is the
    /// `next_cursor` of the previous page.
    pub async fn search_messages(
        &self,
        session: &Session,
        query: &str,
        conversation_id: Option<&ConversationId>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<SearchPage> {
        let max_chars = parley_proto::limits::MAX_SEARCH_QUERY;
        if query.chars().count() > max_chars {
            return Err(Error::Invalid(format!(
                "q must be at most {max_chars} characters"
            )));
        }
        let terms = query_terms(query);
        if terms.is_empty() {
            return Err(Error::Invalid(
                "q must contain at least one word (letters or digits)".into(),
            ));
        }
        let before = match cursor {
            None => None,
            Some(cursor) if is_cursor(cursor) => Some(MessageId(cursor.to_owned())),
            Some(_) => return Err(Error::Invalid("cursor is not one this server gave".into())),
        };
        let max_page = parley_proto::limits::MAX_SEARCH_PAGE;
        let limit = limit.unwrap_or(DEFAULT_SEARCH_PAGE);
        if limit == 0 || limit > max_page {
            return Err(Error::Invalid(format!("limit must be 1-{max_page}")));
        }
        if let Some(conversation_id) = conversation_id {
            self.members_for(conversation_id, &session.user_id).await?;
        }
        self.check_search_rate(session).await?;
        let mut messages = self
            .inner
            .store
            .search_messages(SearchQuery {
                user_id: &session.user_id,
                terms: &terms,
                conversation_id,
                before: before.as_ref(),
                limit: limit + 1,
            })
            .await?;
        let next_cursor = if messages.len() > limit as usize {
            messages.truncate(limit as usize);
            messages.last().map(|last| last.message_id.to_string())
        } else {
            None
        };
        let hits = messages
            .into_iter()
            .map(|message| SearchHit {
                snippet: snippet(&message.content, &terms),
                message,
            })
            .collect();
        Ok(SearchPage { hits, next_cursor })
    }
}

/// A search cursor is a message id: 26 characters of Crockford base32 (a ULID).
fn is_cursor(cursor: &str) -> bool {
    cursor.len() == 26 && cursor.bytes().all(|byte| byte.is_ascii_alphanumeric())
}
