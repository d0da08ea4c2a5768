//! A cache of who is in which conversation, for the hot paths (send, typing, fan-out).
//!
//! Filled from the `Store` on a miss and dropped on every membership change, here and, via
//! `BusEvent::MembershipChanged`, on every other node. A stale entry can only live for the
//! time a bus event takes; the store stays the authority.

use parking_lot::RwLock;
use parley_proto::{ConversationId, ConversationType, Member, Role, UserId};
use std::collections::HashMap;
use std::sync::Arc;

/// The members of one conversation, as fan-out needs them.
#[derive(Debug)]
pub struct ConversationMembers {
    pub kind: ConversationType,
    pub members: Vec<Member>,
    /// The same users, shared with every `BusEvent::Deliver` without copying.
    pub user_ids: Arc<[UserId]>,
    /// The conversation's `members_version` when these members were read.
    pub version: i64,
}

impl ConversationMembers {
    pub fn new(kind: ConversationType, members: Vec<Member>, version: i64) -> Self {
        let user_ids = members
            .iter()
            .map(|member| member.user_id.clone())
            .collect();
        Self {
            kind,
            members,
            user_ids,
            version,
        }
    }

    pub fn role_of(&self, user_id: &UserId) -> Option<Role> {
        self.members
            .iter()
            .find(|member| &member.user_id == user_id)
            .map(|member| member.role)
    }

    pub fn is_member(&self, user_id: &UserId) -> bool {
        self.user_ids.iter().any(|member_id| member_id == user_id)
    }

    /// Everyone but `user_id`.
    pub fn others(&self, user_id: &UserId) -> Arc<[UserId]> {
        self.user_ids
            .iter()
            .filter(|member_id| *member_id != user_id)
            .cloned()
            .collect()
    }
}

/// Most conversations cached at once; past it the cache starts over.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct MembershipCache {
    entries: RwLock<HashMap<ConversationId, Arc<ConversationMembers>>>,
    /// Bumped by every invalidation. A loader notes it before reading the store and may
    /// only insert if it has not moved: otherwise it could put back a list read before a
    /// change committed (a removed member would keep receiving).
    generation: std::sync::atomic::AtomicU64,
}

impl MembershipCache {
    pub fn get(&self, conversation_id: &ConversationId) -> Option<Arc<ConversationMembers>> {
        self.entries.read().get(conversation_id).cloned()
    }

    /// The generation to pass to [`MembershipCache::insert_if_current`].
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Caches a list read from the store, unless an invalidation happened since
    /// `generation` was taken.
    pub fn insert_if_current(
        &self,
        conversation_id: ConversationId,
        members: Arc<ConversationMembers>,
        generation: u64,
    ) {
        let mut entries = self.entries.write();
        if self.generation() != generation {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(conversation_id, members);
    }

    pub fn insert(&self, conversation_id: ConversationId, members: Arc<ConversationMembers>) {
        let mut entries = self.entries.write();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(conversation_id, members);
    }

    pub fn invalidate(&self, conversation_id: &ConversationId) {
        let mut entries = self.entries.write();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        entries.remove(conversation_id);
    }
}
