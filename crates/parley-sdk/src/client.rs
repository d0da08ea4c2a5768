//! The REST client: one method per call of `/api/v1`, typed with `parley_proto::rest`.
//!
//! [`Client`] is a cheap-to-clone handle over one HTTP connection pool and the session
//! token; `register`/`login` store the token, `logout` forgets it. Error statuses become
//! [`SdkError::Api`] from the `{"error":{…}}` body. It does not retry, and it opens
//! WebSockets only through [`Client::connect`], which hands over to `Connection`.

use crate::{Connection, ConnectionConfig, SdkError};
use parley_proto::rest::{
    AddMembersRequest, AuthResponse, ConversationList, CreateConversationRequest, LoginRequest,
    MemberList, MessagePage, ReadRequest, ReceiptsResponse, RegisterRequest, SendMessageRequest,
    UnreadSummary, UpdateConversationRequest, UpdateProfileRequest, UserList,
};
use parley_proto::{
    Conversation, ConversationId, ErrorBody, Member, Message, Profile, PublicProfile, UserId,
};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::{Arc, RwLock};

mod changes;
mod media;
mod push;
mod settings;
/// The session a successful `register` or `login` established.
#[derive(Clone, Debug, Default)]
struct SessionState {
    token: Option<String>,
    user_id: Option<UserId>,
}

#[derive(Debug)]
struct ClientInner {
    http: reqwest::Client,
    /// `scheme://host[:port][/base]`, without a trailing slash.
    base_url: String,
    /// `base_url` + `/api/v1`, parsed once.
    api_base: url::Url,
    session: RwLock<SessionState>,
}

/// A REST client for one server and (after login) one session. Clones share both.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl Client {
    /// A client for the server at `base_url` (e.g. `http://127.0.0.1:8080`), not logged in.
    pub fn new(base_url: &str) -> Result<Self, SdkError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("parley-sdk/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Self::with_http_client(base_url, http)
    }

    /// Like [`Client::new`] with a caller-built `reqwest::Client` (timeouts, proxies…).
    pub fn with_http_client(base_url: &str, http: reqwest::Client) -> Result<Self, SdkError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let api_base = url::Url::parse(&format!("{base_url}/api/v1"))
            .map_err(|error| SdkError::InvalidUrl(format!("{base_url}: {error}")))?;
        if !matches!(api_base.scheme(), "http" | "https") {
            return Err(SdkError::InvalidUrl(format!(
                "{base_url}: expected http:// or https://"
            )));
        }
        Ok(Self {
            inner: Arc::new(ClientInner {
                http,
                base_url,
                api_base,
                session: RwLock::new(SessionState::default()),
            }),
        })
    }

    /// A client for the same server sharing the connection pool, using `token`
    /// (e.g. one saved from an earlier login).
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        let client = self.new_session();
        client.set_token(Some(token.into()));
        client
    }

    /// A client for the same server sharing the connection pool, not logged in: for
    /// acting as several users from one process.
    pub fn new_session(&self) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                http: self.inner.http.clone(),
                base_url: self.inner.base_url.clone(),
                api_base: self.inner.api_base.clone(),
                session: RwLock::new(SessionState::default()),
            }),
        }
    }

    /// The server's base URL, as given (without a trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// The bearer token, once logged in.
    pub fn token(&self) -> Option<String> {
        self.session().token
    }

    /// Replaces (or clears) the bearer token.
    pub fn set_token(&self, token: Option<String>) {
        let mut session = self
            .inner
            .session
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        session.token = token;
        session.user_id = None;
    }

    /// The logged-in user, when known from `register`/`login`.
    pub fn user_id(&self) -> Option<UserId> {
        self.session().user_id
    }

    fn session(&self) -> SessionState {
        self.inner
            .session
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn remember(&self, auth: &AuthResponse) {
        let mut session = self
            .inner
            .session
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        session.token = Some(auth.token.clone());
        session.user_id = Some(auth.user_id.clone());
    }

    /// `api_base` with the given path segments appended, each percent-encoded.
    fn url(&self, segments: &[&str]) -> url::Url {
        let mut url = self.inner.api_base.clone();
        url.path_segments_mut()
            .expect("http(s) URLs have path segments")
            .extend(segments);
        url
    }

    fn request(&self, method: Method, url: url::Url) -> RequestBuilder {
        let request = self.inner.http.request(method, url);
        match self.session().token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    async fn call<Answer: DeserializeOwned>(
        &self,
        request: RequestBuilder,
    ) -> Result<Answer, SdkError> {
        let response = checked(request.send().await?).await?;
        let bytes = response.bytes().await?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    async fn call_empty(&self, request: RequestBuilder) -> Result<(), SdkError> {
        checked(request.send().await?).await?;
        Ok(())
    }

    async fn get<Answer: DeserializeOwned>(&self, segments: &[&str]) -> Result<Answer, SdkError> {
        self.call(self.request(Method::GET, self.url(segments)))
            .await
    }

    async fn with_body<Body: Serialize + ?Sized, Answer: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &Body,
    ) -> Result<Answer, SdkError> {
        self.call(self.request(method, self.url(segments)).json(body))
            .await
    }

    /// `POST /auth/register`: creates the account and its first session (stored).
    pub async fn register(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<AuthResponse, SdkError> {
        let body = RegisterRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            display_name: display_name.map(str::to_owned),
            device_name: None,
        };
        let auth: AuthResponse = self
            .with_body(Method::POST, &["auth", "register"], &body)
            .await?;
        self.remember(&auth);
        Ok(auth)
    }

    /// `POST /auth/login`: a new device and session (stored).
    pub async fn login(&self, username: &str, password: &str) -> Result<AuthResponse, SdkError> {
        self.login_device(username, password, None).await
    }

    /// `POST /auth/login` naming the device (shown in the user's device list).
    pub async fn login_device(
        &self,
        username: &str,
        password: &str,
        device_name: Option<&str>,
    ) -> Result<AuthResponse, SdkError> {
        let body = LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            device_name: device_name.map(str::to_owned),
        };
        let auth: AuthResponse = self
            .with_body(Method::POST, &["auth", "login"], &body)
            .await?;
        self.remember(&auth);
        Ok(auth)
    }

    /// `POST /auth/logout`: revokes the token everywhere, then forgets it.
    pub async fn logout(&self) -> Result<(), SdkError> {
        self.require_token()?;
        self.call_empty(self.request(Method::POST, self.url(&["auth", "logout"])))
            .await?;
        self.set_token(None);
        Ok(())
    }

    fn require_token(&self) -> Result<String, SdkError> {
        self.token().ok_or(SdkError::NotLoggedIn)
    }

    /// `GET /users/me`: the own profile with privacy settings.
    pub async fn me(&self) -> Result<Profile, SdkError> {
        self.get(&["users", "me"]).await
    }

    /// `PATCH /users/me`.
    pub async fn update_me(&self, update: &UpdateProfileRequest) -> Result<Profile, SdkError> {
        self.with_body(Method::PATCH, &["users", "me"], update)
            .await
    }

    /// `GET /users/{id}`.
    pub async fn user(&self, user_id: &UserId) -> Result<PublicProfile, SdkError> {
        self.get(&["users", user_id.as_str()]).await
    }

    /// `GET /users?query=`: users whose username or display name match.
    pub async fn search_users(&self, query: &str) -> Result<Vec<PublicProfile>, SdkError> {
        let mut url = self.url(&["users"]);
        url.query_pairs_mut().append_pair("query", query);
        let list: UserList = self.call(self.request(Method::GET, url)).await?;
        Ok(list.users)
    }

    /// `POST /conversations` (direct): created once per pair, returned again after.
    pub async fn create_direct(&self, user_id: &UserId) -> Result<Conversation, SdkError> {
        let body = CreateConversationRequest::Direct {
            participant_ids: vec![user_id.clone()],
        };
        self.with_body(Method::POST, &["conversations"], &body)
            .await
    }

    /// `POST /conversations` (group): the caller becomes its owner.
    pub async fn create_group(
        &self,
        name: &str,
        member_ids: &[UserId],
    ) -> Result<Conversation, SdkError> {
        let body = CreateConversationRequest::Group {
            name: name.to_owned(),
            member_ids: member_ids.to_vec(),
            description: None,
        };
        self.with_body(Method::POST, &["conversations"], &body)
            .await
    }

    /// `GET /conversations?cursor=&limit=`: pinned first, then newest activity first;
    /// archived conversations left out (see [`Client::archived_conversations`]).
    pub async fn conversations(
        &self,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ConversationList, SdkError> {
        self.list_conversations(false, cursor, limit).await
    }

    /// One page of the list, or of the archive with `archived`.
    async fn list_conversations(
        &self,
        archived: bool,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ConversationList, SdkError> {
        let mut url = self.url(&["conversations"]);
        {
            let mut query = url.query_pairs_mut();
            if archived {
                query.append_pair("archived", "true");
            }
            if let Some(cursor) = cursor {
                query.append_pair("cursor", cursor);
            }
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
        }
        strip_empty_query(&mut url);
        self.call(self.request(Method::GET, url)).await
    }

    /// `GET /conversations/{id}`: with members and roles.
    pub async fn conversation(
        &self,
        conversation_id: &ConversationId,
    ) -> Result<Conversation, SdkError> {
        self.get(&["conversations", conversation_id.as_str()]).await
    }

    /// `PATCH /conversations/{id}` (group admins).
    pub async fn update_conversation(
        &self,
        conversation_id: &ConversationId,
        update: &UpdateConversationRequest,
    ) -> Result<Conversation, SdkError> {
        self.with_body(
            Method::PATCH,
            &["conversations", conversation_id.as_str()],
            update,
        )
        .await
    }

    /// `POST /conversations/{id}/members` (group admins): the members afterwards.
    pub async fn add_members(
        &self,
        conversation_id: &ConversationId,
        user_ids: &[UserId],
    ) -> Result<Vec<Member>, SdkError> {
        let body = AddMembersRequest {
            user_ids: user_ids.to_vec(),
        };
        let list: MemberList = self
            .with_body(
                Method::POST,
                &["conversations", conversation_id.as_str(), "members"],
                &body,
            )
            .await?;
        Ok(list.members)
    }

    /// `DELETE /conversations/{id}/members/{user_id}` (admins, or oneself to leave).
    pub async fn remove_member(
        &self,
        conversation_id: &ConversationId,
        user_id: &UserId,
    ) -> Result<(), SdkError> {
        let url = self.url(&[
            "conversations",
            conversation_id.as_str(),
            "members",
            user_id.as_str(),
        ]);
        self.call_empty(self.request(Method::DELETE, url)).await
    }

    /// Leaves a conversation (removes oneself; looks the own id up if not known).
    pub async fn leave(&self, conversation_id: &ConversationId) -> Result<(), SdkError> {
        let own_user_id = match self.user_id() {
            Some(user_id) => user_id,
            None => self.me().await?.user_id,
        };
        self.remove_member(conversation_id, &own_user_id).await
    }

    /// `GET /conversations/{id}/messages?before_seq=&after_seq=&limit=`: ascending `seq`,
    /// at most 100 per page.
    pub async fn history(
        &self,
        conversation_id: &ConversationId,
        before_seq: Option<i64>,
        after_seq: Option<i64>,
        limit: Option<u32>,
    ) -> Result<MessagePage, SdkError> {
        let mut url = self.url(&["conversations", conversation_id.as_str(), "messages"]);
        {
            let mut query = url.query_pairs_mut();
            if let Some(before_seq) = before_seq {
                query.append_pair("before_seq", &before_seq.to_string());
            }
            if let Some(after_seq) = after_seq {
                query.append_pair("after_seq", &after_seq.to_string());
            }
            if let Some(limit) = limit {
                query.append_pair("limit", &limit.to_string());
            }
        }
        strip_empty_query(&mut url);
        self.call(self.request(Method::GET, url)).await
    }

    /// `POST /conversations/{id}/messages`: the send fallback; the stored message.
    pub async fn send_rest(
        &self,
        conversation_id: &ConversationId,
        message: &SendMessageRequest,
    ) -> Result<Message, SdkError> {
        self.with_body(
            Method::POST,
            &["conversations", conversation_id.as_str(), "messages"],
            message,
        )
        .await
    }

    /// `POST /conversations/{id}/read`.
    pub async fn mark_read(
        &self,
        conversation_id: &ConversationId,
        up_to_seq: i64,
    ) -> Result<(), SdkError> {
        let url = self.url(&["conversations", conversation_id.as_str(), "read"]);
        self.call_empty(
            self.request(Method::POST, url)
                .json(&ReadRequest { up_to_seq }),
        )
        .await
    }

    /// `GET /conversations/{id}/messages/{seq}/receipts`.
    pub async fn receipts(
        &self,
        conversation_id: &ConversationId,
        seq: i64,
    ) -> Result<ReceiptsResponse, SdkError> {
        self.get(&[
            "conversations",
            conversation_id.as_str(),
            "messages",
            &seq.to_string(),
            "receipts",
        ])
        .await
    }

    /// `GET /unread`: unread counts over all conversations.
    pub async fn unread(&self) -> Result<UnreadSummary, SdkError> {
        self.get(&["unread"]).await
    }

    /// A [`ConnectionConfig`] for this server and token, to adjust before connecting.
    pub fn connection_config(&self) -> Result<ConnectionConfig, SdkError> {
        Ok(ConnectionConfig::new(
            self.base_url(),
            self.require_token()?,
        ))
    }

    /// Opens a real-time connection with the default configuration.
    pub async fn connect(&self) -> Result<Connection, SdkError> {
        Connection::connect(self.connection_config()?).await
    }
}

fn strip_empty_query(url: &mut url::Url) {
    if url.query() == Some("") {
        url.set_query(None);
    }
}

/// Passes a success through; turns an error status into [`SdkError`].
async fn checked(response: Response) -> Result<Response, SdkError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(error_from_body(status.as_u16(), &body))
}

/// The error an error status and its body stand for.
pub(crate) fn error_from_body(status: u16, body: &str) -> SdkError {
    match serde_json::from_str::<ErrorBody>(body) {
        Ok(ErrorBody { error }) => SdkError::Api {
            status,
            code: error.code,
            message: error.message,
            retry_after_ms: error.retry_after_ms,
        },
        Err(_) => SdkError::UnexpectedStatus {
            status,
            body: body.chars().take(500).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_proto::ErrorCode;

    /// The protocol's error body becomes `Api` with its code and retry hint.
    #[test]
    fn error_body_is_parsed() {
        let error = error_from_body(
            429,
            r#"{"error":{"code":"rate_limited","message":"slow down","retry_after_ms":1500}}"#,
        );
        let SdkError::Api {
            status,
            code,
            message,
            retry_after_ms,
        } = error
        else {
            panic!("expected Api, got {error:?}");
        };
        assert_eq!(
            (status, code, message.as_str(), retry_after_ms),
            (429, ErrorCode::RateLimited, "slow down", Some(1500))
        );
    }

    /// Anything else (a proxy's HTML page) is kept, shortened, as `UnexpectedStatus`.
    #[test]
    fn other_bodies_are_unexpected_status() {
        let error = error_from_body(502, &"<html>".repeat(200));
        assert!(
            matches!(error, SdkError::UnexpectedStatus { status: 502, ref body } if body.len() == 500)
        );
        assert_eq!(error.status(), Some(502));
        assert_eq!(error.code(), None);
    }

    /// Ids are percent-encoded as path segments; base paths and trailing slashes work.
    #[test]
    fn urls_are_built_from_segments() {
        let client = Client::new("http://127.0.0.1:8080/").unwrap();
        assert_eq!(client.base_url(), "http://127.0.0.1:8080");
        assert_eq!(
            client.url(&["conversations", "c/1 x", "messages"]).as_str(),
            "http://127.0.0.1:8080/api/v1/conversations/c%2F1%20x/messages"
        );
        let prefixed = Client::new("https://host/chat").unwrap();
        assert_eq!(
            prefixed.url(&["unread"]).as_str(),
            "https://host/chat/api/v1/unread"
        );
        assert!(Client::new("ws://host").is_err());
        assert!(Client::new("not a url").is_err());
    }

    /// The token set on a client is what `with_token` clones carry, independently.
    #[test]
    fn tokens_are_per_client() {
        let client = Client::new("http://h").unwrap();
        assert!(matches!(
            client.connection_config(),
            Err(SdkError::NotLoggedIn)
        ));
        let other = client.with_token("abc");
        assert_eq!(other.token().as_deref(), Some("abc"));
        assert_eq!(client.token(), None);
        assert_eq!(other.connection_config().unwrap().token, "abc");
    }
}
