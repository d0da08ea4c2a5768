//! REST bodies ⇄ the core's types: the wire's shapes stay in `parley-proto`, the
//! domain's in `parley-core::chat`, and this file is the one place they meet.

use parley_core::chat::{
    ConversationPage, Credentials, GroupDetails, HistoryPage, NewChat, ProfileChanges, UnreadCounts,
};
use parley_core::store::MessageReceipts;
use parley_proto::rest::{
    AuthResponse, ConversationList, CreateConversationRequest, MessagePage, ReceiptsResponse,
    UnreadCount, UnreadSummary, UpdateConversationRequest, UpdateProfileRequest,
};
use parley_proto::LastSeenPrivacy;

pub fn auth_response(credentials: Credentials) -> AuthResponse {
    AuthResponse {
        user_id: credentials.user_id,
        device_id: credentials.device_id,
        token: credentials.token,
    }
}

pub fn profile_changes(request: UpdateProfileRequest) -> ProfileChanges {
    ProfileChanges {
        display_name: request.display_name,
        status_message: request.status_message,
        avatar_url: request.avatar_url,
        avatar_media_id: request.avatar_media_id,
        push_previews: request.push_previews,
        last_seen_privacy: request
            .last_seen_privacy
            .or(request.last_seen_visible.map(|visible| {
                if visible {
                    LastSeenPrivacy::Everyone
                } else {
                    LastSeenPrivacy::Nobody
                }
            })),
    }
}

pub fn new_chat(request: CreateConversationRequest) -> NewChat {
    match request {
        CreateConversationRequest::Direct { participant_ids } => {
            NewChat::Direct { participant_ids }
        }
        CreateConversationRequest::Group {
            name,
            member_ids,
            description,
        } => NewChat::Group {
            name,
            member_ids,
            description,
        },
    }
}

pub fn group_details(request: UpdateConversationRequest) -> GroupDetails {
    GroupDetails {
        name: request.name,
        description: request.description,
        disappearing_seconds: request.disappearing_seconds,
        avatar_media_id: request.avatar_media_id,
    }
}

pub fn conversation_list(page: ConversationPage) -> ConversationList {
    ConversationList {
        conversations: page.conversations,
        next_cursor: page.next_cursor,
    }
}

pub fn message_page(page: HistoryPage) -> MessagePage {
    MessagePage {
        messages: page.messages,
        has_more: page.has_more,
    }
}

pub fn receipts_response(receipts: MessageReceipts) -> ReceiptsResponse {
    ReceiptsResponse {
        delivered_to: receipts.delivered_to,
        read_by: receipts.read_by,
    }
}

pub fn unread_summary(counts: UnreadCounts) -> UnreadSummary {
    UnreadSummary {
        total: counts.total,
        conversations: counts
            .conversations
            .into_iter()
            .map(|(conversation_id, unread_count)| UnreadCount {
                conversation_id,
                unread_count,
            })
            .collect(),
    }
}
