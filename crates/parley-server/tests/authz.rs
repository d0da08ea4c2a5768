//! The authorization matrix (issue 6), kept as a standing defence: every REST route and
//! every WebSocket frame type, for every kind of caller, with the exact answer each must
//! get.
//!
//! Callers: a **stranger** (logged in, never in the conversation), a **member**, an
//! **admin**, the **owner**, a **removed** member (was in the group until an admin took
//! them out) and a **logged-out device** (the member's second device, whose token was
//! revoked). On the WebSocket there is one more column: the removed member's socket that
//! was already open when they were removed.
//!
//! The tables are the specification: `docs/protocol.md` and `parley-core::rules`. Every
//! cell runs; every cell that differs is listed, and one run shows the whole matrix.
//! Sockets of callers who must not hear about a conversation also fail the run if any
//! frame about it reaches them (messages, typing, receipts, updates, sync cursors).

#[path = "it/backends.rs"]
#[allow(dead_code)]
mod backends;
#[path = "it/harness.rs"]
#[allow(dead_code)]
mod harness;

use futures::{SinkExt, StreamExt};
use harness::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio_tungstenite::tungstenite::{self, Message};

/// A well-formed conversation id that names nothing.
const MISSING: &str = "c_01JD3ZA0B1C2D3E4F5G6H7J8K9";
const PASSWORD: &str = "password-123";

// ---- callers and outcomes ------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Caller {
    Stranger,
    Member,
    Admin,
    Owner,
    Removed,
    /// The removed member's socket, opened while they were still a member (WS only).
    RemovedLive,
    /// The member's second device after `POST /auth/logout`.
    LoggedOut,
}

use Caller::*;

/// Column order of the REST tables.
const REST_CALLERS: [Caller; 6] = [Stranger, Member, Admin, Owner, Removed, LoggedOut];
/// Column order of the WebSocket tables.
const WS_CALLERS: [Caller; 7] = [
    Stranger,
    Member,
    Admin,
    Owner,
    Removed,
    RemovedLive,
    LoggedOut,
];

impl Caller {
    fn label(self) -> &'static str {
        match self {
            Stranger => "stranger",
            Member => "member",
            Admin => "admin",
            Owner => "owner",
            Removed => "removed member",
            RemovedLive => "removed member (socket open at removal)",
            LoggedOut => "logged-out device",
        }
    }

    /// In the fixture's group now (the logged-out device's user still is).
    fn in_group(self) -> bool {
        matches!(self, Member | Admin | Owner | LoggedOut)
    }

    /// In the fixture's direct chat (owner ↔ member).
    fn in_direct(self) -> bool {
        matches!(self, Member | Owner | LoggedOut)
    }
}

/// What one cell answered, or must answer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// REST success with this status.
    Status(u16),
    /// REST `{"error":{"code"}}` with this status.
    Refused(u16, String),
    /// The socket opened and said `ready`.
    Ready,
    /// `msg_ack` for the send.
    Acked,
    /// A frame with no answer was taken: no `error` before the following `pong`.
    Accepted,
    /// `presence_subscribe` answered with a snapshot of every named user, no `error`.
    Presence,
    /// `ping` answered with `pong`.
    Pong,
    /// `sync` with the conversation's cursor 0: all its messages, no error, and
    /// `sync_done` lists it.
    Synced,
    /// `sync` with a foreign cursor: one `error` `not_member` naming it, none of its
    /// messages, and `sync_done` without it.
    SyncRefused,
    /// An `error` frame with this code.
    WsError(String),
    /// The socket was closed with this code, after an `error` frame with this code.
    Closed(Option<String>, Option<u16>),
    /// The WebSocket upgrade was refused with this HTTP status and error code.
    UpgradeRefused(u16, String),
    /// Anything else, described.
    Unexpected(String),
    /// The cell does not exist (e.g. the owner removing the owner: that is leaving).
    NotApplicable,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Status(status) => write!(f, "{status}"),
            Outcome::Refused(status, code) => write!(f, "{status} {code}"),
            Outcome::Ready => write!(f, "ready"),
            Outcome::Acked => write!(f, "msg_ack"),
            Outcome::Accepted => write!(f, "accepted (no error before pong)"),
            Outcome::Presence => write!(f, "presence snapshot"),
            Outcome::Pong => write!(f, "pong"),
            Outcome::Synced => write!(f, "synced (all messages, listed in sync_done)"),
            Outcome::SyncRefused => write!(
                f,
                "error not_member naming the cursor, nothing of it, sync_done without it"
            ),
            Outcome::WsError(code) => write!(f, "error frame {code}"),
            Outcome::Closed(error, code) => {
                write!(f, "closed {code:?}")?;
                match error {
                    Some(error) => write!(f, " after error frame {error}"),
                    None => Ok(()),
                }
            }
            Outcome::UpgradeRefused(status, code) => {
                write!(f, "upgrade refused: HTTP {status} {code}")
            }
            Outcome::Unexpected(what) => write!(f, "{what}"),
            Outcome::NotApplicable => write!(f, "n/a"),
        }
    }
}

fn ok(status: u16) -> Outcome {
    Outcome::Status(status)
}
fn refused(status: u16, code: &str) -> Outcome {
    Outcome::Refused(status, code.to_owned())
}
fn nm() -> Outcome {
    refused(403, "not_member")
}
fn forbidden() -> Outcome {
    refused(403, "forbidden")
}
fn not_found() -> Outcome {
    refused(404, "not_found")
}
fn not_sender() -> Outcome {
    refused(403, "not_sender")
}
fn unauthorized() -> Outcome {
    refused(401, "unauthorized")
}
fn na() -> Outcome {
    Outcome::NotApplicable
}
fn ws_nm() -> Outcome {
    Outcome::WsError("not_member".into())
}
fn upgrade_401() -> Outcome {
    Outcome::UpgradeRefused(401, "unauthorized".into())
}

/// A short, one-line rendering of a JSON value for failure reports.
fn excerpt(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 240 {
        let mut end = 240;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &text[..end])
    } else {
        text
    }
}

fn report(what: &str, cells: usize, mismatches: &[String]) {
    eprintln!(
        "{what} authorization matrix: {cells} cells, {} not as specified",
        mismatches.len()
    );
    assert!(
        mismatches.is_empty(),
        "{what} authorization matrix: {} of {cells} cells are not as specified:\n  {}",
        mismatches.len(),
        mismatches.join("\n  ")
    );
}

// ---- the fixture ---------------------------------------------------------------------

/// Limits high enough that no cell is refused for speed.
async fn generous_server() -> TestServer {
    TestServer::start_with(|config| {
        let limits = &mut config.limits;
        limits.writes_per_minute = 1_000_000;
        limits.searches_per_minute = 1_000_000;
        limits.user_messages_per_minute = 1_000_000;
        limits.group_messages_per_minute = 1_000_000;
        limits.new_account_hours = 0;
        limits.new_account_direct_chats_per_hour = 1_000_000;
        limits.new_account_groups_per_day = 1_000_000;
        limits.frames_per_second = 100_000;
        limits.max_sockets_per_user = 1024;
        limits.max_sockets_per_device = 1024;
    })
    .await
}

/// One group (owner, admin, member; a member an admin removed), one direct chat (owner
/// ↔ member), a stranger, and a second device of the member that gets logged out.
struct Fixture {
    server: TestServer,
    http: reqwest::Client,
    stranger: TestUser,
    member: TestUser,
    admin: TestUser,
    owner: TestUser,
    removed: TestUser,
    /// The member's second device: logged out by [`Fixture::revoke`].
    second_device: String,
    group: String,
    direct: String,
    counter: AtomicU32,
}

impl Fixture {
    /// Everything but the revocations: `removed` is still in the group and the second
    /// device still logged in, so sockets can be opened before [`Fixture::revoke`].
    async fn new(server: TestServer) -> Self {
        let stranger = server.user("stranger").await;
        let member = server.user("member").await;
        let admin = server.user("admin").await;
        let owner = server.user("owner").await;
        let removed = server.user("removed").await;
        let mut fixture = Fixture {
            http: reqwest::Client::builder().timeout(WAIT).build().unwrap(),
            server,
            stranger,
            member,
            admin,
            owner,
            removed,
            second_device: String::new(),
            group: String::new(),
            direct: String::new(),
            counter: AtomicU32::new(0),
        };
        let login = fixture
            .expect(
                "",
                Method::POST,
                "/auth/login",
                Some(json!({"username": "member", "password": PASSWORD})),
                200,
            )
            .await;
        fixture.second_device = login["token"].as_str().unwrap().to_owned();
        fixture.group = fixture.make_group("Matrix").await;
        // History with a message from the member who is about to be removed, so a
        // pointer that passes it would owe them a receipt if membership were forgotten.
        for user in [&fixture.member, &fixture.owner, &fixture.removed] {
            fixture
                .expect(
                    &user.token(),
                    Method::POST,
                    &format!("/conversations/{}/messages", fixture.group),
                    Some(json!({"client_msg_id": format!("setup-{}", user.username), "content": "hello"})),
                    201,
                )
                .await;
        }
        let direct = fixture
            .expect(
                &fixture.owner.token(),
                Method::POST,
                "/conversations",
                Some(json!({"type": "direct", "participant_ids": [fixture.member.user_id]})),
                201,
            )
            .await;
        fixture.direct = direct["conversation_id"].as_str().unwrap().to_owned();
        fixture
            .expect(
                &fixture.owner.token(),
                Method::POST,
                &format!("/conversations/{}/messages", fixture.direct),
                Some(json!({"client_msg_id": "setup-direct", "content": "hi"})),
                201,
            )
            .await;
        fixture
    }

    /// The admin removes `removed` from the group; the second device logs out.
    async fn revoke(&self) {
        self.expect(
            &self.admin.token(),
            Method::DELETE,
            &format!(
                "/conversations/{}/members/{}",
                self.group, self.removed.user_id
            ),
            None,
            204,
        )
        .await;
        self.expect(&self.second_device, Method::POST, "/auth/logout", None, 204)
            .await;
    }

    /// A group of the owner with the admin, the member and `removed` (not yet removed).
    async fn make_group(&self, name: &str) -> String {
        let created = self
            .expect(
                &self.owner.token(),
                Method::POST,
                "/conversations",
                Some(json!({
                    "type": "group",
                    "name": name,
                    "member_ids": [self.admin.user_id, self.member.user_id, self.removed.user_id],
                })),
                201,
            )
            .await;
        let id = created["conversation_id"].as_str().unwrap().to_owned();
        self.expect(
            &self.owner.token(),
            Method::PATCH,
            &format!("/conversations/{id}/members/{}", self.admin.user_id),
            Some(json!({"role": "admin"})),
            200,
        )
        .await;
        id
    }

    /// A group shaped like the fixture's, for a cell that may change who is who.
    async fn fresh_group(&self) -> String {
        let id = self.make_group("Fresh").await;
        self.expect(
            &self.admin.token(),
            Method::DELETE,
            &format!("/conversations/{id}/members/{}", self.removed.user_id),
            None,
            204,
        )
        .await;
        id
    }

    fn next(&self) -> u32 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }

    async fn fresh_user(&self) -> String {
        let name = format!("fresh_{}", self.next());
        self.server.user(&name).await.user_id.to_string()
    }

    fn user_of(&self, caller: Caller) -> &TestUser {
        match caller {
            Stranger => &self.stranger,
            Member | LoggedOut => &self.member,
            Admin => &self.admin,
            Owner => &self.owner,
            Removed | RemovedLive => &self.removed,
        }
    }

    fn token_of(&self, caller: Caller) -> String {
        match caller {
            LoggedOut => self.second_device.clone(),
            other => self.user_of(other).token(),
        }
    }

    /// The conversations this caller must never hear about.
    fn forbidden_for(&self, caller: Caller) -> Vec<String> {
        let mut forbidden = Vec::new();
        if !caller.in_group() {
            forbidden.push(self.group.clone());
        }
        if !caller.in_direct() {
            forbidden.push(self.direct.clone());
        }
        forbidden
    }

    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.server.url));
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.expect("HTTP request");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// A setup call that must succeed with `status`.
    async fn expect(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
    ) -> Value {
        let (got, value) = self
            .call(
                token,
                method.clone(),
                path,
                body.map(|body| body.to_string()),
            )
            .await;
        assert_eq!(got, status, "setup: {method} {path}: {value}");
        value
    }

    fn ws_url(&self, token: &str) -> String {
        self.server.ws_url(token)
    }

    fn bare_ws_url(&self) -> String {
        format!("{}/ws", self.server.url.replacen("http", "ws", 1))
    }
}

// ---- REST ----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Conv {
    /// The route names no conversation.
    None,
    /// The fixture's group (or a fresh copy of it, see `RestRow::fresh`).
    Group,
    /// The fixture's direct chat.
    Direct,
    /// An id that names nothing.
    Missing,
}

/// Who `{target}` is in a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    None,
    Caller,
    Owner,
    Admin,
    Stranger,
    /// The other side of the direct chat (for callers outside it: the member).
    Peer,
    /// A newly registered user, in nothing.
    FreshUser,
    /// A newly registered user the owner has just added (a member).
    FreshMember,
    /// A newly registered user the owner has just added and made admin.
    FreshAdmin,
}

/// What a success body must (not) show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    None,
    /// The list shows the group and the direct chat exactly to their members.
    ListsOwnConversations,
    /// The body mentions no conversation the caller is not in.
    NothingForeign,
    /// After the call the token no longer works.
    TokenRevoked,
}

struct RestRow {
    what: &'static str,
    method: Method,
    /// `{conv}`, `{target}`, `{uniq}` and `{username}` are filled in per cell; `{group}` and
    /// `{direct}` are the fixture's group and direct chat.
    path: &'static str,
    body: Option<&'static str>,
    conv: Conv,
    /// Each cell gets its own copy of the group: the cell changes who is who.
    fresh: bool,
    target: Target,
    check: Check,
    /// In [`REST_CALLERS`] order: stranger, member, admin, owner, removed, logged out.
    want: [Outcome; 6],
}

fn rest(
    what: &'static str,
    method: Method,
    path: &'static str,
    body: Option<&'static str>,
    want: [Outcome; 6],
) -> RestRow {
    RestRow {
        what,
        method,
        path,
        body,
        conv: Conv::None,
        fresh: false,
        target: Target::None,
        check: Check::None,
        want,
    }
}

impl RestRow {
    fn on(mut self, conv: Conv) -> Self {
        self.conv = conv;
        self
    }
    fn target(mut self, target: Target) -> Self {
        self.target = target;
        self
    }
    fn fresh(mut self) -> Self {
        self.fresh = true;
        self
    }
    fn check(mut self, check: Check) -> Self {
        self.check = check;
        self
    }
}

#[rustfmt::skip]
fn rest_rows() -> Vec<RestRow> {
    use Conv::{Direct, Group, Missing};
    use Method as M;
    let u = unauthorized;
    //                                                                     stranger  member       admin        owner        removed  logged out
    let mut rows = vec![
        // ---- accounts, users, lists: any live token, never a revoked one ----
        rest("who am I", M::GET, "/users/me", None,                          [ok(200), ok(200),     ok(200),     ok(200),     ok(200), u()]),
        rest("edit own profile", M::PATCH, "/users/me", Some(r#"{"status_message":"in the matrix"}"#),
                                                                             [ok(200), ok(200),     ok(200),     ok(200),     ok(200), u()]),
        rest("search users", M::GET, "/users?query=own", None,               [ok(200), ok(200),     ok(200),     ok(200),     ok(200), u()]),
        rest("a public profile", M::GET, "/users/{target}", None,            [ok(200), ok(200),     ok(200),     ok(200),     ok(200), u()])
            .target(Target::Owner),
        // Blocks are one's own: any live token blocks or unblocks anyone, for themselves.
        rest("block a user", M::POST, "/users/{target}/block", None,          [ok(204), ok(204),     ok(204),     ok(204),     ok(204), u()])
            .target(Target::FreshUser),
        rest("unblock a user", M::DELETE, "/users/{target}/block", None,      [ok(204), ok(204),     ok(204),     ok(204),     ok(204), u()])
            .target(Target::FreshUser),
        rest("own blocked list", M::GET, "/users/me/blocked", None,           [ok(200), ok(200),     ok(200),     ok(200),     ok(200), u()]),
        // One's own account only; the real deletion and logging out everywhere would
        // end the matrix's callers, and have end-to-end tests of their own.
        // (The removed member's export names the group: their own messages there are theirs.)
        rest("export own data", M::GET, "/users/me/export", None,             [ok(200), ok(200),     ok(200),     ok(200),     ok(200), u()]),
        rest("delete own account, wrong password", M::DELETE, "/users/me", Some(r#"{"password":"not-the-password"}"#),
                                                                             [forbidden(), forbidden(), forbidden(), forbidden(), forbidden(), u()]),
        rest("list own conversations", M::GET, "/conversations", None,       [ok(200), ok(200),     ok(200),     ok(200),     ok(200), u()])
            .check(Check::ListsOwnConversations),
        rest("unread counts", M::GET, "/unread", None,                       [ok(200), ok(200),     ok(200),     ok(200),     ok(200), u()])
            .check(Check::NothingForeign),
        // Everyone said "hello" in the group, the removed member too: only members find it.
        rest("search messages everywhere", M::GET, "/search?q=hello", None,  [ok(200), ok(200),     ok(200),     ok(200),     ok(200), u()])
            .check(Check::NothingForeign),
        rest("open a direct chat", M::POST, "/conversations", Some(r#"{"type":"direct","participant_ids":["{target}"]}"#),
                                                                             [ok(201), ok(201),     ok(201),     ok(201),     ok(201), u()])
            .target(Target::FreshUser),
        rest("create a group", M::POST, "/conversations", Some(r#"{"type":"group","name":"Own group","member_ids":["{target}"]}"#),
                                                                             [ok(201), ok(201),     ok(201),     ok(201),     ok(201), u()])
            .target(Target::FreshUser),
        // Public routes: a (revoked) bearer token is ignored.
        rest("the OpenAPI document (public)", M::GET, "/openapi.json", None, [ok(200), ok(200),     ok(200),     ok(200),     ok(200), ok(200)]),
        rest("log in again (public)", M::POST, "/auth/login", Some(r#"{"username":"{username}","password":"password-123"}"#),
                                                                             [ok(200), ok(200),     ok(200),     ok(200),     ok(200), ok(200)]),
        rest("register (public)", M::POST, "/auth/register", Some(r#"{"username":"{uniq}","password":"password-123"}"#),
                                                                             [ok(201), ok(201),     ok(201),     ok(201),     ok(201), ok(201)]),
        // ---- the group ----
        rest("read the group", M::GET, "/conversations/{conv}", None,        [nm(),    ok(200),     ok(200),     ok(200),     nm(),    u()])
            .on(Group),
        rest("rename the group", M::PATCH, "/conversations/{conv}", Some(r#"{"name":"Renamed","description":"by the matrix"}"#),
                                                                             [nm(),    forbidden(), ok(200),     ok(200),     nm(),    u()])
            .on(Group),
        rest("add a new user", M::POST, "/conversations/{conv}/members", Some(r#"{"user_ids":["{target}"]}"#),
                                                                             [nm(),    forbidden(), ok(200),     ok(200),     nm(),    u()])
            .on(Group).target(Target::FreshUser),
        rest("add oneself (back)", M::POST, "/conversations/{conv}/members", Some(r#"{"user_ids":["{target}"]}"#),
                                                                             [nm(),    forbidden(), ok(200),     ok(200),     nm(),    u()])
            .on(Group).target(Target::Caller),
        rest("remove a member", M::DELETE, "/conversations/{conv}/members/{target}", None,
                                                                             [nm(),    forbidden(), ok(204),     ok(204),     nm(),    u()])
            .on(Group).target(Target::FreshMember),
        rest("remove an admin", M::DELETE, "/conversations/{conv}/members/{target}", None,
                                                                             [nm(),    forbidden(), forbidden(), ok(204),     nm(),    u()])
            .on(Group).target(Target::FreshAdmin),
        // The owner's own cell is leaving, a row of its own.
        rest("remove the owner", M::DELETE, "/conversations/{conv}/members/{target}", None,
                                                                             [nm(),    forbidden(), forbidden(), na(),        nm(),    u()])
            .on(Group).target(Target::Owner),
        rest("remove a non-member", M::DELETE, "/conversations/{conv}/members/{target}", None,
                                                                             [nm(),    not_found(), not_found(), not_found(), nm(),    u()])
            .on(Group).target(Target::Stranger),
        rest("leave", M::DELETE, "/conversations/{conv}/members/{target}", None,
                                                                             [nm(),    ok(204),     ok(204),     ok(204),     nm(),    u()])
            .on(Group).target(Target::Caller).fresh(),
        rest("make a member admin", M::PATCH, "/conversations/{conv}/members/{target}", Some(r#"{"role":"admin"}"#),
                                                                             [nm(),    forbidden(), forbidden(), ok(200),     nm(),    u()])
            .on(Group).target(Target::FreshMember),
        rest("demote an admin", M::PATCH, "/conversations/{conv}/members/{target}", Some(r#"{"role":"member"}"#),
                                                                             [nm(),    forbidden(), forbidden(), ok(200),     nm(),    u()])
            .on(Group).target(Target::FreshAdmin),
        rest("hand ownership to the admin", M::PATCH, "/conversations/{conv}/members/{target}", Some(r#"{"role":"owner"}"#),
                                                                             [nm(),    forbidden(), forbidden(), ok(200),     nm(),    u()])
            .on(Group).target(Target::Admin).fresh(),
        // The owner's cell is a no-op (200): the owner already is.
        rest("take ownership for oneself", M::PATCH, "/conversations/{conv}/members/{target}", Some(r#"{"role":"owner"}"#),
                                                                             [nm(),    forbidden(), forbidden(), ok(200),     nm(),    u()])
            .on(Group).target(Target::Caller).fresh(),
        rest("make oneself admin", M::PATCH, "/conversations/{conv}/members/{target}", Some(r#"{"role":"admin"}"#),
                                                                             [nm(),    forbidden(), forbidden(), ok(200),     nm(),    u()])
            .on(Group).target(Target::Caller).fresh(),
        rest("set a non-member's role", M::PATCH, "/conversations/{conv}/members/{target}", Some(r#"{"role":"admin"}"#),
                                                                             [nm(),    forbidden(), forbidden(), not_found(), nm(),    u()])
            .on(Group).target(Target::Stranger),
        rest("read history", M::GET, "/conversations/{conv}/messages", None,
                                                                             [nm(),    ok(200),     ok(200),     ok(200),     nm(),    u()])
            .on(Group),
        rest("send (REST)", M::POST, "/conversations/{conv}/messages", Some(r#"{"client_msg_id":"{uniq}","content":"hello"}"#),
                                                                             [nm(),    ok(201),     ok(201),     ok(201),     nm(),    u()])
            .on(Group),
        // A retry of one's own earlier send is answered with the first message (200),
        // even after a removal (protocol: "a retry is answered, not refused"); the
        // admin never sent `setup-admin`, so theirs is new; the stranger's is refused.
        rest("retry one's own earlier send", M::POST, "/conversations/{conv}/messages", Some(r#"{"client_msg_id":"setup-{username}","content":"hello"}"#),
                                                                             [nm(),    ok(200),     ok(201),     ok(200),     ok(200), u()])
            .on(Group),
        rest("mark read", M::POST, "/conversations/{conv}/read", Some(r#"{"up_to_seq":1000}"#),
                                                                             [nm(),    ok(204),     ok(204),     ok(204),     nm(),    u()])
            .on(Group),
        rest("receipts of message 1", M::GET, "/conversations/{conv}/messages/1/receipts", None,
                                                                             [nm(),    ok(200),     ok(200),     ok(200),     nm(),    u()])
            .on(Group),
        rest("receipts of a message that does not exist", M::GET, "/conversations/{conv}/messages/999999/receipts", None,
                                                                             [nm(),    not_found(), not_found(), not_found(), nm(),    u()])
            .on(Group),
        rest("who reacted to message 1", M::GET, "/conversations/{conv}/messages/1/reactions", None,
                                                                             [nm(),    ok(200),     ok(200),     ok(200),     nm(),    u()])
            .on(Group),
        rest("reactions of a message that does not exist", M::GET, "/conversations/{conv}/messages/999999/reactions", None,
                                                                             [nm(),    not_found(), not_found(), not_found(), nm(),    u()])
            .on(Group),
        rest("hide message 1 (for oneself)", M::POST, "/conversations/{conv}/messages/1/hide", None,
                                                                             [nm(),    ok(204),     ok(204),     ok(204),     nm(),    u()])
            .on(Group),
        rest("hide a message that does not exist", M::POST, "/conversations/{conv}/messages/999999/hide", None,
                                                                             [nm(),    not_found(), not_found(), not_found(), nm(),    u()])
            .on(Group),
        // One's own settings: any member, for themselves only.
        rest("mute the group for oneself", M::PATCH, "/conversations/{conv}/settings", Some(r#"{"muted_until":"forever","marked_unread":true}"#),
                                                                             [nm(),    ok(200),     ok(200),     ok(200),     nm(),    u()])
            .on(Group),
        rest("search the group", M::GET, "/search?q=hello&conversation_id={conv}", None,
                                                                             [nm(),    ok(200),     ok(200),     ok(200),     nm(),    u()])
            .on(Group).check(Check::NothingForeign),
        // Changes are sent like messages (seq 3 is the member's "hello", 4 the owner's, 5 the
        // removed member's): any member reacts; only the sender edits.
        rest("react to message 4", M::POST, "/conversations/{conv}/messages", Some(r#"{"client_msg_id":"{uniq}","content_type":"reaction","target_seq":4,"content":"👍"}"#),
                                                                             [nm(),    ok(201),     ok(201),     ok(201),     nm(),    u()])
            .on(Group),
        rest("edit the owner's message 4", M::POST, "/conversations/{conv}/messages", Some(r#"{"client_msg_id":"{uniq}","content_type":"edit","target_seq":4,"content":"hello, edited"}"#),
                                                                             [nm(),    not_sender(), not_sender(), ok(201),     nm(),    u()])
            .on(Group),
        rest("forward message 3 within the group", M::POST, "/messages/forward", Some(r#"{"from_conversation_id":"{conv}","seq":3,"to_conversation_ids":["{conv}"]}"#),
                                                                             [nm(),    ok(201),     ok(201),     ok(201),     nm(),    u()])
            .on(Group),
        // The admin is in the group but not in the direct chat: refused, nothing sent.
        rest("forward from the group into the direct chat", M::POST, "/messages/forward", Some(r#"{"from_conversation_id":"{conv}","seq":3,"to_conversation_ids":["{direct}"]}"#),
                                                                             [nm(),    ok(201),     nm(),        ok(201),     nm(),    u()])
            .on(Group),
        // Group admins (and the owner) delete anyone's message at any time. The admin's cell
        // deletes message 5, so the owner's finds it gone: a deleted message takes no change.
        rest("delete another's message 5", M::POST, "/conversations/{conv}/messages", Some(r#"{"client_msg_id":"{uniq}","content_type":"delete","target_seq":5,"content":""}"#),
                                                                             [nm(),    not_sender(), ok(201),     refused(404, "target_not_found"), nm(), u()])
            .on(Group),
        // ---- the direct chat (owner ↔ member; the admin is outside it) ----
        rest("read the direct chat", M::GET, "/conversations/{conv}", None,  [nm(),    ok(200),     nm(),        ok(200),     nm(),    u()])
            .on(Direct),
        rest("rename a direct chat", M::PATCH, "/conversations/{conv}", Some(r#"{"name":"Ours"}"#),
                                                                             [nm(),    forbidden(), nm(),        forbidden(), nm(),    u()])
            .on(Direct),
        rest("add to a direct chat", M::POST, "/conversations/{conv}/members", Some(r#"{"user_ids":["{target}"]}"#),
                                                                             [nm(),    forbidden(), nm(),        forbidden(), nm(),    u()])
            .on(Direct).target(Target::FreshUser),
        rest("set a role in a direct chat", M::PATCH, "/conversations/{conv}/members/{target}", Some(r#"{"role":"admin"}"#),
                                                                             [nm(),    forbidden(), nm(),        forbidden(), nm(),    u()])
            .on(Direct).target(Target::Peer),
        rest("remove the other side of a direct chat", M::DELETE, "/conversations/{conv}/members/{target}", None,
                                                                             [nm(),    forbidden(), nm(),        forbidden(), nm(),    u()])
            .on(Direct).target(Target::Peer),
        rest("direct history", M::GET, "/conversations/{conv}/messages", None,
                                                                             [nm(),    ok(200),     nm(),        ok(200),     nm(),    u()])
            .on(Direct),
        rest("send to a direct chat (REST)", M::POST, "/conversations/{conv}/messages", Some(r#"{"client_msg_id":"{uniq}","content":"hello"}"#),
                                                                             [nm(),    ok(201),     nm(),        ok(201),     nm(),    u()])
            .on(Direct),
        rest("mark a direct chat read", M::POST, "/conversations/{conv}/read", Some(r#"{"up_to_seq":1000}"#),
                                                                             [nm(),    ok(204),     nm(),        ok(204),     nm(),    u()])
            .on(Direct),
        rest("direct receipts of message 1", M::GET, "/conversations/{conv}/messages/1/receipts", None,
                                                                             [nm(),    ok(200),     nm(),        ok(200),     nm(),    u()])
            .on(Direct),
        rest("who reacted in a direct chat", M::GET, "/conversations/{conv}/messages/1/reactions", None,
                                                                             [nm(),    ok(200),     nm(),        ok(200),     nm(),    u()])
            .on(Direct),
        rest("hide in a direct chat", M::POST, "/conversations/{conv}/messages/1/hide", None,
                                                                             [nm(),    ok(204),     nm(),        ok(204),     nm(),    u()])
            .on(Direct),
        rest("pin a direct chat for oneself", M::PATCH, "/conversations/{conv}/settings", Some(r#"{"pinned":true}"#),
                                                                             [nm(),    ok(200),     nm(),        ok(200),     nm(),    u()])
            .on(Direct),
        rest("search the direct chat", M::GET, "/search?q=hi&conversation_id={conv}", None,
                                                                             [nm(),    ok(200),     nm(),        ok(200),     nm(),    u()])
            .on(Direct).check(Check::NothingForeign),
        rest("react in a direct chat", M::POST, "/conversations/{conv}/messages", Some(r#"{"client_msg_id":"{uniq}","content_type":"reaction","target_seq":1,"content":"❤️"}"#),
                                                                             [nm(),    ok(201),     nm(),        ok(201),     nm(),    u()])
            .on(Direct),
        // The admin is in the group but not in the direct chat (the source): refused.
        rest("forward from the direct chat into the group", M::POST, "/messages/forward", Some(r#"{"from_conversation_id":"{conv}","seq":1,"to_conversation_ids":["{group}"]}"#),
                                                                             [nm(),    ok(201),     nm(),        ok(201),     nm(),    u()])
            .on(Direct),
        // A direct chat has no admins: only the sender (the owner wrote message 1) deletes.
        rest("delete in a direct chat", M::POST, "/conversations/{conv}/messages", Some(r#"{"client_msg_id":"{uniq}","content_type":"delete","target_seq":1,"content":""}"#),
                                                                             [nm(),    not_sender(), nm(),        ok(201),     nm(),    u()])
            .on(Direct),
        rest("delete a direct chat for oneself", M::POST, "/conversations/{conv}/clear", None,
                                                                             [nm(),    ok(200),     nm(),        ok(200),     nm(),    u()])
            .on(Direct),
        // Last of the direct rows: if it wrongly succeeded it would end the chat.
        rest("leave a direct chat", M::DELETE, "/conversations/{conv}/members/{target}", None,
                                                                             [nm(),    forbidden(), nm(),        forbidden(), nm(),    u()])
            .on(Direct).target(Target::Caller),
    ];
    // ---- a conversation that does not exist answers exactly like a foreign one ----
    let missing: [(&'static str, Method, &'static str, Option<&'static str>, Target); 16] = [
        ("read a missing conversation", M::GET, "/conversations/{conv}", None, Target::None),
        ("rename a missing conversation", M::PATCH, "/conversations/{conv}", Some(r#"{"name":"Mine"}"#), Target::None),
        ("add to a missing conversation", M::POST, "/conversations/{conv}/members", Some(r#"{"user_ids":["{target}"]}"#), Target::Caller),
        ("leave a missing conversation", M::DELETE, "/conversations/{conv}/members/{target}", None, Target::Caller),
        ("set a role in a missing conversation", M::PATCH, "/conversations/{conv}/members/{target}", Some(r#"{"role":"owner"}"#), Target::Caller),
        ("history of a missing conversation", M::GET, "/conversations/{conv}/messages", None, Target::None),
        ("send to a missing conversation", M::POST, "/conversations/{conv}/messages", Some(r#"{"client_msg_id":"{uniq}","content":"hello"}"#), Target::None),
        ("mark a missing conversation read", M::POST, "/conversations/{conv}/read", Some(r#"{"up_to_seq":1}"#), Target::None),
        ("receipts in a missing conversation", M::GET, "/conversations/{conv}/messages/1/receipts", None, Target::None),
        ("reactions in a missing conversation", M::GET, "/conversations/{conv}/messages/1/reactions", None, Target::None),
        ("hide in a missing conversation", M::POST, "/conversations/{conv}/messages/1/hide", None, Target::None),
        ("settings of a missing conversation", M::PATCH, "/conversations/{conv}/settings", Some(r#"{"archived":true}"#), Target::None),
        ("delete a missing conversation for oneself", M::POST, "/conversations/{conv}/clear", None, Target::None),
        ("search a missing conversation", M::GET, "/search?q=hello&conversation_id={conv}", None, Target::None),
        ("forward from a missing conversation", M::POST, "/messages/forward", Some(r#"{"from_conversation_id":"{conv}","seq":1,"to_conversation_ids":["{group}"]}"#), Target::None),
        ("forward into a missing conversation", M::POST, "/messages/forward", Some(r#"{"from_conversation_id":"{group}","seq":3,"to_conversation_ids":["{conv}"]}"#), Target::None),
    ];
    for (what, method, path, body, target) in missing {
        rows.push(rest(what, method, path, body, [nm(), nm(), nm(), nm(), nm(), u()]).on(Missing).target(target));
    }
    // Last of all: it ends every caller's session.
    rows.push(
        rest("log out", M::POST, "/auth/logout", None,                       [ok(204), ok(204),     ok(204),     ok(204),     ok(204), u()])
            .check(Check::TokenRevoked),
    );
    rows
}

impl Fixture {
    async fn target(&self, target: Target, caller: Caller, conv: &str) -> String {
        match target {
            Target::None => String::new(),
            Target::Caller => self.user_of(caller).user_id.to_string(),
            Target::Owner => self.owner.user_id.to_string(),
            Target::Admin => self.admin.user_id.to_string(),
            Target::Stranger => self.stranger.user_id.to_string(),
            Target::Peer => match caller {
                Member | LoggedOut => self.owner.user_id.to_string(),
                _ => self.member.user_id.to_string(),
            },
            Target::FreshUser => self.fresh_user().await,
            Target::FreshMember | Target::FreshAdmin => {
                let user_id = self.fresh_user().await;
                self.expect(
                    &self.owner.token(),
                    Method::POST,
                    &format!("/conversations/{conv}/members"),
                    Some(json!({"user_ids": [user_id]})),
                    200,
                )
                .await;
                if target == Target::FreshAdmin {
                    self.expect(
                        &self.owner.token(),
                        Method::PATCH,
                        &format!("/conversations/{conv}/members/{user_id}"),
                        Some(json!({"role": "admin"})),
                        200,
                    )
                    .await;
                }
                user_id
            }
        }
    }

    /// Runs one REST cell: its outcome and the body, for the report.
    async fn rest_cell(&self, row: &RestRow, caller: Caller) -> (Outcome, String) {
        let conv = match row.conv {
            Conv::None => String::new(),
            Conv::Group if row.fresh => self.fresh_group().await,
            Conv::Group => self.group.clone(),
            Conv::Direct => self.direct.clone(),
            Conv::Missing => MISSING.to_owned(),
        };
        let target = self.target(row.target, caller, &conv).await;
        let uniq = format!("cell_{}", self.next());
        let username = self.user_of(caller).username.clone();
        let fill = |template: &str| {
            template
                .replace("{conv}", &conv)
                .replace("{target}", &target)
                .replace("{uniq}", &uniq)
                .replace("{username}", &username)
                .replace("{group}", &self.group)
                .replace("{direct}", &self.direct)
        };
        let token = self.token_of(caller);
        let (status, body) = self
            .call(
                &token,
                row.method.clone(),
                &fill(row.path),
                row.body.map(fill),
            )
            .await;
        let outcome = match body["error"]["code"].as_str() {
            Some(code) => Outcome::Refused(status, code.to_owned()),
            None => self.check(row.check, caller, &token, status, &body).await,
        };
        (outcome, excerpt(&body))
    }

    async fn check(
        &self,
        check: Check,
        caller: Caller,
        token: &str,
        status: u16,
        body: &Value,
    ) -> Outcome {
        let text = body.to_string();
        let mentions = |id: &str| text.contains(id);
        match check {
            Check::None => Outcome::Status(status),
            Check::ListsOwnConversations => {
                let group = mentions(&self.group);
                let direct = mentions(&self.direct);
                if group == caller.in_group() && direct == caller.in_direct() {
                    Outcome::Status(status)
                } else {
                    Outcome::Unexpected(format!(
                        "{status}, but the list shows the group: {group}, the direct chat: {direct}"
                    ))
                }
            }
            Check::NothingForeign => {
                let group = mentions(&self.group) && !caller.in_group();
                let direct = mentions(&self.direct) && !caller.in_direct();
                if group || direct {
                    Outcome::Unexpected(format!(
                        "{status}, but it mentions a foreign conversation (group: {group}, direct: {direct})"
                    ))
                } else {
                    Outcome::Status(status)
                }
            }
            Check::TokenRevoked => {
                let (after, _) = self.call(token, Method::GET, "/users/me", None).await;
                if after == 401 {
                    Outcome::Status(status)
                } else {
                    Outcome::Unexpected(format!(
                        "{status}, but the token still works: GET /users/me answered {after}"
                    ))
                }
            }
        }
    }
}

/// Every REST route × every caller.
#[tokio::test]
async fn rest_authorization_matrix() {
    let fixture = Fixture::new(generous_server().await).await;
    fixture.revoke().await;
    let mut cells = 0;
    let mut mismatches = Vec::new();
    for row in rest_rows() {
        for (caller, want) in REST_CALLERS.iter().zip(&row.want) {
            if *want == Outcome::NotApplicable {
                continue;
            }
            cells += 1;
            let (got, body) = fixture.rest_cell(&row, *caller).await;
            if &got != want {
                mismatches.push(format!(
                    "{} {} ({}) as {}: want {want}, got {got}; body {body}",
                    row.method,
                    row.path,
                    row.what,
                    caller.label()
                ));
            }
        }
    }
    report("REST", cells, &mismatches);
}

// ---- WebSocket -----------------------------------------------------------------------

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

enum Frame {
    Json(Value),
    Closed(Option<u16>),
    Gone(String),
}

/// A raw socket that watches for frames about conversations its user is not in.
struct Ws {
    label: &'static str,
    socket: Socket,
    forbidden: Vec<String>,
    leaks: Vec<String>,
}

/// Upgrades, or tells how the upgrade was refused.
async fn upgrade(url: &str) -> Result<Socket, Outcome> {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await {
        Err(_) => Err(Outcome::Unexpected("upgrade timed out".into())),
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let code = response
                .body()
                .as_deref()
                .and_then(|body| serde_json::from_slice::<Value>(body).ok())
                .and_then(|body| body["error"]["code"].as_str().map(str::to_owned))
                .unwrap_or_default();
            Err(Outcome::UpgradeRefused(response.status().as_u16(), code))
        }
        Ok(Err(error)) => Err(Outcome::Unexpected(format!("upgrade failed: {error}"))),
    }
}

impl Ws {
    fn new(label: &'static str, socket: Socket, forbidden: Vec<String>) -> Self {
        Ws {
            label,
            socket,
            forbidden,
            leaks: Vec::new(),
        }
    }

    async fn send(&mut self, frame: Value) {
        // A failed send shows up as the socket's end on the next read.
        let _ = self
            .socket
            .send(Message::Text(frame.to_string().into()))
            .await;
    }

    async fn next(&mut self) -> Frame {
        let read = async {
            loop {
                match self.socket.next().await {
                    Some(Ok(Message::Text(text))) => {
                        return Frame::Json(
                            serde_json::from_str(&text)
                                .unwrap_or_else(|_| Value::String(text.to_string())),
                        )
                    }
                    Some(Ok(Message::Close(frame))) => {
                        return Frame::Closed(frame.map(|frame| u16::from(frame.code)))
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => return Frame::Gone(error.to_string()),
                    None => return Frame::Gone("socket ended".into()),
                }
            }
        };
        let frame = match tokio::time::timeout(WAIT, read).await {
            Ok(frame) => frame,
            Err(_) => Frame::Gone("timed out waiting for a frame".into()),
        };
        if let Frame::Json(value) = &frame {
            self.watch(value);
        }
        frame
    }

    /// Notes any frame about a conversation this socket must not hear about.
    fn watch(&mut self, frame: &Value) {
        let named = [
            frame["conversation_id"].as_str(),
            frame["conversation"]["conversation_id"].as_str(),
        ];
        let cursors = frame["cursors"].as_object();
        let leaked = self.forbidden.iter().any(|id| {
            named.contains(&Some(id.as_str())) || cursors.is_some_and(|c| c.contains_key(id))
        });
        if leaked {
            self.leaks.push(format!(
                "LEAK: the {} socket received {}",
                self.label,
                excerpt(frame)
            ));
        }
    }

    /// Pings and reads up to the `pong`: the frames before it.
    async fn settle(&mut self) -> Result<Vec<Value>, String> {
        self.send(json!({"type": "ping"})).await;
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                Frame::Json(value) if value["type"] == "pong" => return Ok(seen),
                Frame::Json(value) => seen.push(value),
                Frame::Closed(code) => return Err(format!("socket closed ({code:?})")),
                Frame::Gone(why) => return Err(why),
            }
        }
    }

    async fn expect_ready(&mut self) -> Outcome {
        match self.next().await {
            Frame::Json(value) if value["type"] == "ready" => Outcome::Ready,
            Frame::Json(value) if value["type"] == "error" => {
                let code = value["code"].as_str().map(str::to_owned);
                match self.next().await {
                    Frame::Closed(close) => Outcome::Closed(code, close),
                    _ => Outcome::Unexpected(format!("error {code:?} without a close")),
                }
            }
            Frame::Json(value) => Outcome::Unexpected(format!("first frame {}", excerpt(&value))),
            Frame::Closed(code) => Outcome::Closed(None, code),
            Frame::Gone(why) => Outcome::Unexpected(why),
        }
    }

    async fn close(mut self) -> Vec<String> {
        let _ = self.socket.close(None).await;
        self.leaks
    }
}

/// What a WebSocket row does.
#[derive(Clone, Copy, Debug)]
enum WsAction {
    /// The device's socket that was open when it logged out.
    OpenAtLogout,
    /// `GET /ws?token=`.
    ConnectWithQuery,
    /// `GET /ws`, then an `auth` frame.
    ConnectWithAuthFrame,
    SendMessage(Conv),
    /// A frame with no answer on success; `{conv}` is filled in.
    Fire(&'static str, Conv),
    Sync(Conv),
    PresenceSubscribe,
    Ping,
}

struct WsRow {
    what: &'static str,
    action: WsAction,
    /// In [`WS_CALLERS`] order: stranger, member, admin, owner, removed, removed (socket
    /// open at removal), logged out.
    want: [Outcome; 7],
}

#[rustfmt::skip]
fn ws_rows() -> Vec<WsRow> {
    use Conv::{Direct, Group, Missing};
    use Outcome::{Accepted, Acked, Pong, Presence, Ready, SyncRefused, Synced};
    let row = |what, action, want| WsRow { what, action, want };
    let ack = r#"{"type":"ack","conversation_id":"{conv}","seq":1000}"#;
    let read = r#"{"type":"read","conversation_id":"{conv}","up_to_seq":1000}"#;
    let typing = r#"{"type":"typing","conversation_id":"{conv}","is_typing":true}"#;
    let u = upgrade_401;
    let closed_4001 = || Outcome::Closed(None, Some(4001));
    let refused_4001 = || Outcome::Closed(Some("unauthorized".into()), Some(4001));
    //                                               stranger     member    admin     owner     removed      removed live logged out
    vec![
        row("the socket open at logout", WsAction::OpenAtLogout,
                                                    [na(),        na(),     na(),     na(),     na(),        na(),        closed_4001()]),
        row("connect with ?token=", WsAction::ConnectWithQuery,
                                                    [Ready,       Ready,    Ready,    Ready,    Ready,       na(),        u()]),
        row("connect with an auth frame", WsAction::ConnectWithAuthFrame,
                                                    [Ready,       Ready,    Ready,    Ready,    Ready,       na(),        refused_4001()]),
        row("send_message to the group", WsAction::SendMessage(Group),
                                                    [ws_nm(),     Acked,    Acked,    Acked,    ws_nm(),     ws_nm(),     u()]),
        row("send_message to the direct chat", WsAction::SendMessage(Direct),
                                                    [ws_nm(),     Acked,    ws_nm(),  Acked,    ws_nm(),     ws_nm(),     u()]),
        row("send_message to a missing conversation", WsAction::SendMessage(Missing),
                                                    [ws_nm(),     ws_nm(),  ws_nm(),  ws_nm(),  ws_nm(),     ws_nm(),     u()]),
        row("ack in the group", WsAction::Fire(ack, Group),
                                                    [ws_nm(),     Accepted, Accepted, Accepted, ws_nm(),     ws_nm(),     u()]),
        row("read in the group", WsAction::Fire(read, Group),
                                                    [ws_nm(),     Accepted, Accepted, Accepted, ws_nm(),     ws_nm(),     u()]),
        row("typing in the group", WsAction::Fire(typing, Group),
                                                    [ws_nm(),     Accepted, Accepted, Accepted, ws_nm(),     ws_nm(),     u()]),
        row("ack in the direct chat", WsAction::Fire(ack, Direct),
                                                    [ws_nm(),     Accepted, ws_nm(),  Accepted, ws_nm(),     ws_nm(),     u()]),
        row("read in the direct chat", WsAction::Fire(read, Direct),
                                                    [ws_nm(),     Accepted, ws_nm(),  Accepted, ws_nm(),     ws_nm(),     u()]),
        row("typing in the direct chat", WsAction::Fire(typing, Direct),
                                                    [ws_nm(),     Accepted, ws_nm(),  Accepted, ws_nm(),     ws_nm(),     u()]),
        row("ack in a missing conversation", WsAction::Fire(ack, Missing),
                                                    [ws_nm(),     ws_nm(),  ws_nm(),  ws_nm(),  ws_nm(),     ws_nm(),     u()]),
        row("read in a missing conversation", WsAction::Fire(read, Missing),
                                                    [ws_nm(),     ws_nm(),  ws_nm(),  ws_nm(),  ws_nm(),     ws_nm(),     u()]),
        row("typing in a missing conversation", WsAction::Fire(typing, Missing),
                                                    [ws_nm(),     ws_nm(),  ws_nm(),  ws_nm(),  ws_nm(),     ws_nm(),     u()]),
        row("sync with a cursor for the group", WsAction::Sync(Group),
                                                    [SyncRefused, Synced,   Synced,   Synced,   SyncRefused, SyncRefused, u()]),
        row("sync with a cursor for the direct chat", WsAction::Sync(Direct),
                                                    [SyncRefused, Synced,   SyncRefused, Synced, SyncRefused, SyncRefused, u()]),
        row("sync with a cursor for a missing conversation", WsAction::Sync(Missing),
                                                    [SyncRefused, SyncRefused, SyncRefused, SyncRefused, SyncRefused, SyncRefused, u()]),
        // Anyone may watch anyone's online status (protocol: Presence).
        row("presence_subscribe", WsAction::PresenceSubscribe,
                                                    [Presence,    Presence, Presence, Presence, Presence,    Presence,    u()]),
        row("ping", WsAction::Ping,                 [Pong,        Pong,     Pong,     Pong,     Pong,        Pong,        u()]),
    ]
}

impl Fixture {
    fn conv_id(&self, conv: Conv) -> String {
        match conv {
            Conv::None => String::new(),
            Conv::Group => self.group.clone(),
            Conv::Direct => self.direct.clone(),
            Conv::Missing => MISSING.to_owned(),
        }
    }

    /// Opens a socket for a connect row: its outcome and any leaks it saw.
    async fn ws_connect_cell(&self, action: WsAction, caller: Caller) -> (Outcome, Vec<String>) {
        let token = self.token_of(caller);
        let forbidden = self.forbidden_for(caller);
        let (socket, auth) = match action {
            WsAction::ConnectWithQuery => (upgrade(&self.ws_url(&token)).await, false),
            _ => (upgrade(&self.bare_ws_url()).await, true),
        };
        let mut ws = match socket {
            Ok(socket) => Ws::new(caller.label(), socket, forbidden),
            Err(outcome) => return (outcome, Vec::new()),
        };
        if auth {
            ws.send(json!({"type": "auth", "token": token})).await;
        }
        let outcome = ws.expect_ready().await;
        (outcome, ws.close().await)
    }

    /// The revoked token on any frame row: the upgrade must be refused.
    async fn ws_revoked_cell(&self) -> (Outcome, Vec<String>) {
        match upgrade(&self.ws_url(&self.second_device)).await {
            Err(outcome) => (outcome, Vec::new()),
            Ok(socket) => {
                let mut ws = Ws::new("logged-out device", socket, Vec::new());
                let first = ws.expect_ready().await;
                ws.close().await;
                (
                    Outcome::Unexpected(format!("the revoked token upgraded ({first})")),
                    Vec::new(),
                )
            }
        }
    }

    /// One frame row on a caller's open socket.
    async fn ws_frame_cell(&self, ws: &mut Ws, action: WsAction) -> Outcome {
        if let Err(why) = ws.settle().await {
            return Outcome::Unexpected(format!("socket unusable before the cell: {why}"));
        }
        match action {
            WsAction::SendMessage(conv) => {
                let client_msg_id = format!("ws_{}", self.next());
                ws.send(json!({
                    "type": "send_message",
                    "client_msg_id": client_msg_id,
                    "conversation_id": self.conv_id(conv),
                    "content": "hello",
                }))
                .await;
                loop {
                    match ws.next().await {
                        Frame::Json(value)
                            if value["type"] == "msg_ack"
                                && value["client_msg_id"] == client_msg_id.as_str() =>
                        {
                            return Outcome::Acked
                        }
                        Frame::Json(value) if value["type"] == "error" => {
                            let code = value["code"].as_str().unwrap_or("?").to_owned();
                            if value["client_msg_id"] != client_msg_id.as_str() {
                                return Outcome::Unexpected(format!(
                                    "error {code} without the send's client_msg_id: {}",
                                    excerpt(&value)
                                ));
                            }
                            return Outcome::WsError(code);
                        }
                        Frame::Json(_) => continue,
                        Frame::Closed(code) => return Outcome::Closed(None, code),
                        Frame::Gone(why) => return Outcome::Unexpected(why),
                    }
                }
            }
            WsAction::Fire(template, conv) => {
                let text = template.replace("{conv}", &self.conv_id(conv));
                ws.send(serde_json::from_str(&text).unwrap()).await;
                match ws.settle().await {
                    Ok(seen) => errors_only(&seen, Outcome::Accepted),
                    Err(why) => Outcome::Unexpected(why),
                }
            }
            WsAction::PresenceSubscribe => {
                let watched = [
                    self.owner.user_id.to_string(),
                    self.member.user_id.to_string(),
                ];
                ws.send(json!({"type": "presence_subscribe", "user_ids": watched}))
                    .await;
                match ws.settle().await {
                    Ok(seen) => {
                        let snapshot: BTreeSet<&str> = seen
                            .iter()
                            .filter(|frame| frame["type"] == "presence")
                            .filter_map(|frame| frame["user_id"].as_str())
                            .collect();
                        let all = watched.iter().all(|id| snapshot.contains(id.as_str()));
                        match errors_only(&seen, Outcome::Presence) {
                            Outcome::Presence if !all => Outcome::Unexpected(format!(
                                "presence snapshot for {snapshot:?} only"
                            )),
                            other => other,
                        }
                    }
                    Err(why) => Outcome::Unexpected(why),
                }
            }
            WsAction::Ping => match ws.settle().await {
                Ok(seen) => errors_only(&seen, Outcome::Pong),
                Err(why) => Outcome::Unexpected(why),
            },
            WsAction::Sync(conv) => {
                let conv = self.conv_id(conv);
                let mut cursors = serde_json::Map::new();
                cursors.insert(conv.clone(), json!(0));
                ws.send(json!({"type": "sync", "cursors": cursors})).await;
                let mut errors = Vec::new();
                let mut seqs = BTreeSet::new();
                let done = loop {
                    match ws.next().await {
                        Frame::Json(value) if value["type"] == "sync_done" => break value,
                        Frame::Json(value) if value["type"] == "error" => errors.push(value),
                        Frame::Json(value)
                            if value["type"] == "new_message"
                                && value["conversation_id"] == conv.as_str() =>
                        {
                            seqs.insert(value["seq"].as_i64().unwrap_or(-1));
                        }
                        Frame::Json(_) => continue,
                        Frame::Closed(code) => return Outcome::Closed(None, code),
                        Frame::Gone(why) => return Outcome::Unexpected(why),
                    }
                };
                let listed = done["cursors"][conv.as_str()].as_i64();
                match (errors.as_slice(), listed) {
                    ([], Some(last)) if last > 0 && (1..=last).all(|seq| seqs.contains(&seq)) => {
                        Outcome::Synced
                    }
                    ([error], None)
                        if error["code"] == "not_member"
                            && error["message"]
                                .as_str()
                                .is_some_and(|message| message.contains(&conv))
                            && seqs.is_empty() =>
                    {
                        Outcome::SyncRefused
                    }
                    _ => Outcome::Unexpected(format!(
                        "sync: errors {:?}, {} of its messages, sync_done lists it at {listed:?}",
                        errors
                            .iter()
                            .map(|error| error["code"].as_str().unwrap_or("?"))
                            .collect::<Vec<_>>(),
                        seqs.len(),
                    )),
                }
            }
            WsAction::OpenAtLogout
            | WsAction::ConnectWithQuery
            | WsAction::ConnectWithAuthFrame => unreachable!("not a frame row"),
        }
    }
}

/// `success` if no `error` frame is among `seen`, else the error.
fn errors_only(seen: &[Value], success: Outcome) -> Outcome {
    let errors: Vec<&Value> = seen
        .iter()
        .filter(|frame| frame["type"] == "error")
        .collect();
    match errors.as_slice() {
        [] => success,
        [error] => Outcome::WsError(error["code"].as_str().unwrap_or("?").to_owned()),
        many => Outcome::Unexpected(format!(
            "{} error frames: {}",
            many.len(),
            many.iter()
                .map(|error| excerpt(error))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Every WebSocket frame type × every caller.
#[tokio::test]
async fn websocket_authorization_matrix() {
    let fixture = Fixture::new(generous_server().await).await;
    // Sockets already open when the revocations happen.
    let mut removed_live = Ws::new(
        RemovedLive.label(),
        upgrade(&fixture.ws_url(&fixture.removed.token()))
            .await
            .unwrap_or_else(|outcome| panic!("setup: {outcome}")),
        Vec::new(),
    );
    assert_eq!(removed_live.expect_ready().await, Outcome::Ready);
    let mut at_logout = Ws::new(
        "logged-out device (socket open at logout)",
        upgrade(&fixture.ws_url(&fixture.second_device))
            .await
            .unwrap_or_else(|outcome| panic!("setup: {outcome}")),
        Vec::new(),
    );
    assert_eq!(at_logout.expect_ready().await, Outcome::Ready);
    fixture.revoke().await;
    // The removal itself is news to the removed member; nothing after it is.
    loop {
        match removed_live.next().await {
            Frame::Json(value)
                if value["type"] == "conversation_removed"
                    && value["conversation_id"] == fixture.group.as_str() =>
            {
                break
            }
            Frame::Json(_) => continue,
            Frame::Closed(code) => panic!("setup: the removed member's socket closed ({code:?})"),
            Frame::Gone(why) => panic!("setup: no conversation_removed: {why}"),
        }
    }
    removed_live.forbidden = fixture.forbidden_for(RemovedLive);

    // One socket per caller, in WS_CALLERS order (the logged-out device's is the one
    // open at logout).
    let mut sockets = Vec::new();
    for caller in WS_CALLERS {
        let ws = match caller {
            RemovedLive => None,
            LoggedOut => None,
            _ => {
                let socket = upgrade(&fixture.ws_url(&fixture.token_of(caller)))
                    .await
                    .unwrap_or_else(|outcome| panic!("setup: {}: {outcome}", caller.label()));
                let mut ws = Ws::new(caller.label(), socket, fixture.forbidden_for(caller));
                assert_eq!(
                    ws.expect_ready().await,
                    Outcome::Ready,
                    "{}",
                    caller.label()
                );
                Some(ws)
            }
        };
        sockets.push(ws);
    }
    sockets[5] = Some(removed_live);
    sockets[6] = Some(at_logout);

    let mut cells = 0;
    let mut mismatches = Vec::new();
    for row in ws_rows() {
        for (index, (caller, want)) in WS_CALLERS.iter().zip(&row.want).enumerate() {
            if *want == Outcome::NotApplicable {
                continue;
            }
            cells += 1;
            let got = match (row.action, *caller) {
                (WsAction::OpenAtLogout, _) => {
                    let ws = sockets[index].as_mut().unwrap();
                    let mut error = None;
                    loop {
                        match ws.next().await {
                            Frame::Json(value) if value["type"] == "error" => {
                                error = value["code"].as_str().map(str::to_owned)
                            }
                            Frame::Json(_) => continue,
                            Frame::Closed(code) => break Outcome::Closed(error, code),
                            Frame::Gone(why) => {
                                break Outcome::Unexpected(format!("no close frame: {why}"))
                            }
                        }
                    }
                }
                (WsAction::ConnectWithAuthFrame, LoggedOut) => {
                    let (outcome, leaks) = fixture.ws_connect_cell(row.action, *caller).await;
                    mismatches.extend(leaks);
                    outcome
                }
                (_, LoggedOut) => {
                    let (outcome, leaks) = fixture.ws_revoked_cell().await;
                    mismatches.extend(leaks);
                    outcome
                }
                (WsAction::ConnectWithQuery | WsAction::ConnectWithAuthFrame, _) => {
                    let (outcome, leaks) = fixture.ws_connect_cell(row.action, *caller).await;
                    mismatches.extend(leaks);
                    outcome
                }
                (action, _) => {
                    let ws = sockets[index].as_mut().unwrap();
                    fixture.ws_frame_cell(ws, action).await
                }
            };
            if &got != want {
                mismatches.push(format!(
                    "WS {} as {}: want {want}, got {got}",
                    row.what,
                    caller.label()
                ));
            }
        }
    }
    // Membership and metadata changes while everyone listens: they are announced to
    // the members (and a removed user) only.
    let group_path = format!("/conversations/{}", fixture.group);
    let newcomer = fixture
        .target(Target::FreshAdmin, Owner, &fixture.group)
        .await;
    fixture
        .expect(
            &fixture.owner.token(),
            Method::PATCH,
            &group_path,
            Some(json!({"name": "Renamed while watched"})),
            200,
        )
        .await;
    fixture
        .expect(
            &fixture.owner.token(),
            Method::DELETE,
            &format!("{group_path}/members/{newcomer}"),
            None,
            204,
        )
        .await;
    // Let receipts flush (every 250 ms) and typing expire into frames, then read what
    // every socket was sent: nothing may concern a conversation its user is not in.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    for (caller, ws) in WS_CALLERS.iter().zip(sockets) {
        let Some(mut ws) = ws else { continue };
        if *caller != LoggedOut {
            if let Err(why) = ws.settle().await {
                mismatches.push(format!(
                    "WS final read as {}: socket unusable: {why}",
                    caller.label()
                ));
            }
        }
        mismatches.extend(ws.close().await);
    }
    report("WebSocket", cells, &mismatches);
}
