// parley web client: wiring of REST, WebSocket, model and UI.

import { Api } from './api.js';
import { Connection } from './conn.js';
import { SendQueue } from './sendqueue.js';
import { Store, loadSession, saveSession, clearSession, isChange } from './store.js';
import {
  h, $, utf8Length, formatTime, formatDateTime, formatDay, dayKey, formatListTime, formatLastSeen,
  avatar, setPictureLinks, colorFor, debounce, uuid, truncate, UI_LOCALE, markedSnippet, richText, findMentions, queryTerms,
} from './dom.js';
import { openPopover, closePopover, replacePopover, justClosedBy, bindPopovers } from './popover.js';
import { openEmojiPicker, emojiName, QUICK_REACTIONS } from './emoji.js';
import { applyTheme, createSettings, previewsOn } from './settings.js';
import {
  MediaClient, VoiceRecorder, attachmentsEl, attachmentsSummary, openLightbox, formatDuration, formatSize,
  MAX_ATTACHMENTS, MAX_UPLOAD_BYTES,
} from './media.js';
import { PictureEditor } from './avatars.js';

const MAX_CONTENT_BYTES = 64 * 1024;
const PAGE = 50;
const TYPING_TTL_MS = 5000;
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const USERNAME_RE = /^[a-z0-9_.]{3,32}$/;
/** At most this many history pages (of 100) are loaded to reach a first unread or a quote. */
const MAX_BACKFILL_PAGES = 50;
/** Rows of the message list that take part in keyboard navigation. */
const ROW_SELECTOR = '[data-testid="message"], [data-testid="system-message"]';
/** Receipt look-ups for the chat list's ticks that run at once. */
const RECEIPT_FETCHES = 4;
/** How long the sender may edit a message, or delete it for everyone (the server's rule). */
const EDIT_WINDOW_MS = 48 * 3600 * 1000;
/** A searched message further back than this is loaded as a window around it (with a gap). */
const JUMP_BACKFILL_MAX = 200;
/** Profile look-ups (names and pictures of members) that run at once. */
const PROFILE_FETCHES = 4;

const api = new Api({ onUnauthorized: () => signOut({ expired: !ui.revoking, reason: ui.revoking }) });
const mediaClient = new MediaClient(api);
// Avatars show the small version of a picture: one shared, cached link per picture.
setPictureLinks({
  cached: (mediaId) => mediaClient.cachedLink(mediaId, true),
  link: (mediaId) => mediaClient.link(mediaId, true),
});
applyTheme();
let session = null;
let store = null;
let conn = null;
let sendQueue = null;

const ui = {
  activeId: null,
  search: '',
  replyTo: null, // {seq, sender_id, text}
  editing: null, // {seq, draft}: the composer edits one of my messages (draft: what it held before)
  drafts: new Map(),
  presence: new Map(), // user_id -> {status, last_seen}
  blocked: new Set(), // user ids I block
  revoking: null, // 'everywhere' | 'deleted' while that request is under way
  syncing: false,
  everReady: false,
  connState: 'idle',
  connInfo: {},
  msgCache: new Map(), // key -> {el, sig}
  typingSentAt: 0,
  typingActive: false,
  typingConv: null,
  typingIdleTimer: null,
  typingExpiryTimer: null,
  pendingConvFetch: new Map(),
  profileFetch: new Set(), // users whose profile was asked for (once a session)
  profileQueue: [],
  profileActive: 0,
  lastAuthCheck: 0,
  ackTimers: new Map(),
  groupPicked: new Map(),
  leaveArmed: false,
  subscribed: '',
  unreadFrom: null, // the open chat's read pointer when it was opened (the "unread" divider goes after it)
  positionPending: false, // the open chat still has to be scrolled to its first unread (or the end)
  rovingKey: null, // the message row that is the message list's one tab stop
  listFocusId: null, // the chat list item that is the list's one tab stop
  showArchived: false, // the list shows the archived chats
  logoutWhenSent: false, // log out as soon as the outbox is empty
  tray: [], // files being attached: {id, name, size, kind, status, progress, controller, media, preview}
  recorder: null, // the VoiceRecorder while a voice note is being recorded
  recordTimer: null,
};

// --------------------------------------------------------------------------- boot

function boot() {
  bindAuth();
  bindApp();
  session = loadSession();
  $('#boot').hidden = true;
  if (session) startApp();
  else showAuth();
}

// --------------------------------------------------------------------------- auth

let authMode = 'login';

function bindAuth() {
  $('#tab-login').addEventListener('click', () => setAuthMode('login'));
  $('#tab-signup').addEventListener('click', () => setAuthMode('signup'));
  $('#auth-form').addEventListener('submit', onAuthSubmit);
}

function setAuthMode(mode) {
  authMode = mode;
  const signup = mode === 'signup';
  $('#tab-login').classList.toggle('active', !signup);
  $('#tab-signup').classList.toggle('active', signup);
  $('#tab-login').setAttribute('aria-selected', String(!signup));
  $('#tab-signup').setAttribute('aria-selected', String(signup));
  for (const el of document.querySelectorAll('.signup-only')) el.hidden = !signup;
  $('#auth-password').autocomplete = signup ? 'new-password' : 'current-password';
  $('#auth-submit').textContent = signup ? 'Create account' : 'Log in';
  showAuthError('');
}

function showAuthError(text) {
  const el = $('#auth-error');
  el.textContent = text;
  el.hidden = !text;
}

function showAuth(message = '') {
  $('#app-view').hidden = true;
  $('#auth-view').hidden = false;
  document.title = 'parley';
  showAuthError(message);
  $('#auth-password').value = '';
  setTimeout(() => $('#auth-username').focus(), 0);
}

async function onAuthSubmit(event) {
  event.preventDefault();
  const username = $('#auth-username').value.trim().toLowerCase();
  const password = $('#auth-password').value;
  const displayName = $('#auth-display-name').value.trim();
  if (!USERNAME_RE.test(username)) {
    showAuthError('Usernames are 3–32 characters: lowercase letters, digits, “_” and “.”.');
    return;
  }
  if (authMode === 'signup' && password.length < 8) {
    showAuthError('Choose a password of at least 8 characters.');
    return;
  }
  if (!password) {
    showAuthError('Enter your password.');
    return;
  }
  const button = $('#auth-submit');
  button.disabled = true;
  showAuthError('');
  try {
    const result = authMode === 'signup'
      ? await api.register(username, password, displayName || undefined)
      : await api.login(username, password);
    session = { token: result.token, user_id: result.user_id, device_id: result.device_id, username };
    if (displayName) session.display_name = displayName;
    saveSession(session);
    $('#auth-password').value = '';
    startApp();
  } catch (err) {
    const messages = {
      invalid_credentials: 'Wrong username or password.',
      username_taken: 'That username is taken. Try another one.',
      network: 'Cannot reach the server. Check your connection.',
      rate_limited: 'Too many attempts. Wait a moment and try again.',
    };
    showAuthError(messages[err.code] || err.message || 'Something went wrong.');
  } finally {
    button.disabled = false;
  }
}

/** The log-out button: asks first when messages are still waiting to be sent. */
function requestLogout() {
  if (!store || !store.outbox.length) {
    signOut();
    return;
  }
  ui.logoutWhenSent = false;
  renderLogoutDialog();
  $('#logout-dialog').showModal();
}

function renderLogoutDialog() {
  const dialog = $('#logout-dialog');
  if (!store) return;
  const waiting = store.outbox.filter((i) => i.status !== 'failed').length;
  const failed = store.outbox.length - waiting;
  if (ui.logoutWhenSent && waiting === 0) {
    closeDialog(dialog);
    signOut();
    return;
  }
  const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;
  let why = '';
  if (waiting) {
    if (!conn || ui.connState === 'offline') why = ' You are offline.';
    else if (!conn.ready) why = ' The connection is not back yet.';
    else if (store.outbox.some((i) => sendQueue && sendQueue.pausedUntil(i.conversation_id))) {
      why = ' Sending is paused for a moment because you sent many messages quickly.';
    }
  }
  const parts = [];
  if (waiting) parts.push(`${plural(waiting, 'message')} ${waiting === 1 ? 'is' : 'are'} still waiting to be sent.${why}`);
  if (failed) parts.push(`${plural(failed, 'message')} could not be sent.`);
  if (!waiting && !failed) parts.push('Everything has been sent.');
  else parts.push('Logging out now deletes them from this browser.');
  if (ui.logoutWhenSent && waiting) parts.push('You will be logged out as soon as they are sent.');
  $('#logout-text').textContent = parts.join(' ');
  const wait = $('#logout-wait');
  wait.hidden = !waiting;
  wait.disabled = ui.logoutWhenSent;
  wait.textContent = ui.logoutWhenSent ? 'Waiting…' : 'Log out when sent';
  $('#logout-discard').textContent = waiting || failed ? 'Discard and log out' : 'Log out';
}

/**
 * Ends the session. `expired`: the server refused the token (no logout call, the outbox
 * kept for the next login); `reason` `everywhere` or `deleted`: this user revoked every
 * token or deleted the account (no logout call, nothing kept).
 */
async function signOut({ expired = false, reason = null } = {}) {
  if (!session) return;
  ui.revoking = null;
  const wasSession = session;
  session = null;
  if (conn) conn.stop();
  conn = null;
  if (sendQueue) sendQueue.clear();
  sendQueue = null;
  clearInterval(ui.resendTimer);
  ui.resendTimer = null;
  closeTabChannel();
  if (!expired) {
    try {
      api.token = wasSession.token;
      if (!reason) await api.logout();
    } catch {
      /* the token is dropped locally either way */
    }
    if (store) {
      store.clearOutbox();
      store.clearDrafts();
    }
  }
  api.token = null;
  clearSession();
  store = null;
  resetUi();
  if (location.hash) history.replaceState(null, '', location.pathname);
  const farewell = {
    everywhere: 'You are logged out of all your devices.',
    deleted: 'Your account was deleted.',
  };
  showAuth(expired ? 'Your session has ended. Please log in again.' : farewell[reason] || '');
}

function resetUi() {
  ui.activeId = null;
  ui.blocked = new Set();
  ui.revoking = null;
  ui.showArchived = false;
  ui.unreadFrom = null;
  ui.positionPending = false;
  ui.rovingKey = null;
  ui.listFocusId = null;
  ui.logoutWhenSent = false;
  if (seenObserver) seenObserver.disconnect();
  hideToast();
  $('#live').replaceChildren();
  ui.search = '';
  ui.replyTo = null;
  ui.editing = null;
  ui.forward = null;
  ui.highlightSeq = null;
  ui.pendingJump = null;
  closePopover({ restoreFocus: false });
  closeMentionPicker();
  $('#edit-bar').hidden = true;
  toggleChatSearch(false);
  ui.drafts.clear();
  ui.presence.clear();
  ui.profileFetch.clear();
  ui.profileQueue = [];
  mediaClient.links.clear(); // signed for the user who leaves
  ui.msgCache.clear();
  ui.everReady = false;
  ui.listLoaded = false;
  ui.subscribed = '';
  $('#search').value = '';
  $('#conv-list').replaceChildren();
  $('#message-items').replaceChildren();
  $('#search-results').hidden = true;
  document.body.classList.remove('chat-open');
  for (const dialog of document.querySelectorAll('dialog[open]')) dialog.close();
}

// --------------------------------------------------------------------------- app start

async function startApp() {
  api.token = session.token;
  store = new Store({
    user_id: session.user_id,
    device_id: session.device_id,
    username: session.username,
    display_name: session.display_name,
  }, { onNeedReactors: fetchReactors });
  sendQueue = new SendQueue({
    items: () => (store ? store.outbox : []),
    transmit,
    canSend: () => !!(conn && conn.ready),
    onChange: () => {
      setBanner();
      scheduleRender({ list: true, chat: true });
    },
  });
  sendQueue.reset(); // a stored outbox has nothing on the wire yet
  ui.drafts = store.loadDrafts();
  $('#auth-view').hidden = true;
  $('#app-view').hidden = false;
  renderMe();
  renderNotifyBanner();
  setBanner();

  try {
    const me = await api.me();
    if (!session) return;
    Object.assign(store.me, { username: me.username, display_name: me.display_name });
    session.username = me.username;
    session.display_name = me.display_name;
    saveSession(session);
    store.rememberProfile(me);
    renderMe();
  } catch (err) {
    if (!session) return; // 401 already signed out
  }

  loadBlocked();
  await loadConversations();
  if (!session) return;
  applyRoute();

  openTabChannel();
  conn = new Connection({
    token: () => session.token,
    onFrame,
    onState: onConnState,
    onDrop: onConnDrop,
  });
  conn.start();
  if (!ui.resendTimer) ui.resendTimer = setInterval(() => sendQueue && sendQueue.pump(), 5000);
}

/** The users I block: the chat menu and the composer of their direct chat follow it. */
async function loadBlocked() {
  try {
    const list = await api.blockedUsers();
    if (!store) return;
    ui.blocked = new Set((list.blocked || []).map((user) => user.user_id));
    scheduleRender({ chat: true });
  } catch {
    /* the menu offers "Block" until it is known; the server decides anyway */
  }
}

async function setBlocked(userId, block) {
  const name = store.userName(userId);
  try {
    if (block) await api.block(userId);
    else await api.unblock(userId);
  } catch (err) {
    if (err.status !== 401) toast(block ? 'Could not block. Try again.' : 'Could not unblock. Try again.');
    return;
  }
  if (block) ui.blocked.add(userId);
  else ui.blocked.delete(userId);
  toast(block ? `${name} blocked` : `${name} unblocked`);
  scheduleRender({ chat: true, list: true, info: true });
}

/** The other member of a direct chat, if I block them. */
function blockedOther(conv) {
  if (!conv || conv.type !== 'direct') return null;
  const other = store.otherMember(conv);
  return other && ui.blocked.has(other.user_id) ? other : null;
}

const settingsScreen = createSettings({
  api,
  media: mediaClient,
  me: () => (store ? store.me : {}),
  userAvatar: (userId, name, extraClass) => userAvatar(userId, name, extraClass),
  onProfile: (profile) => {
    if (!store) return;
    Object.assign(store.me, { username: profile.username, display_name: profile.display_name });
    store.rememberProfile(profile);
    if (session) {
      session.display_name = profile.display_name;
      saveSession(session);
    }
    renderMe();
    // My picture is also in my chat with myself, group member lists and my messages' rows.
    scheduleRender({ list: true, chat: true, info: true });
  },
  blocked: { clear: () => ui.blocked.clear(), add: (id) => ui.blocked.add(id), delete: (id) => ui.blocked.delete(id) },
  onBlockedChanged: () => scheduleRender({ chat: true, list: true }),
  toast: (text) => toast(text),
  revoking: (reason) => { ui.revoking = reason; },
  signOut: (reason) => signOut({ reason }),
});

function renderMe() {
  const name = store.me.display_name || store.me.username || '';
  $('#me-name').textContent = name;
  $('#me-username').textContent = store.me.username ? `@${store.me.username}` : '';
  $('#me-avatar').replaceChildren(avatar(store.me.user_id, name, 'small', { mediaId: store.avatarOf(store.me.user_id) }));
}

/**
 * A person's avatar, with their picture once their profile says they have one. Members
 * carry names, not pictures, so the first avatar of someone asks for their profile.
 */
function userAvatar(userId, name, extraClass = '') {
  ensureProfile(userId);
  return avatar(userId, name, extraClass, { mediaId: store.avatarOf(userId) });
}

/** A chat's avatar: the group's picture, or the other person's in a direct chat. */
function convAvatar(conv, title, extraClass = '') {
  if (conv.type === 'group') {
    return avatar(conv.conversation_id, title, `group ${extraClass}`.trim(), { mediaId: conv.avatar_media_id });
  }
  const other = store.otherMember(conv);
  if (other) return userAvatar(other.user_id, title, extraClass);
  // A chat with myself shows me; a direct chat whose members are not loaded yet, initials.
  if (conv.members && conv.members.length === 1) return userAvatar(store.me.user_id, title, extraClass);
  return avatar(conv.conversation_id, title, extraClass);
}

async function loadConversations() {
  try {
    const [listed, archived] = await Promise.all([
      api.allConversations(),
      api.allConversations({ archived: true }),
    ]);
    if (!store) return;
    const list = [...listed, ...archived];
    ui.listLoaded = true;
    const seen = new Set();
    for (const data of list) {
      seen.add(data.conversation_id);
      const known = store.convs.get(data.conversation_id);
      const localRead = known ? known.last_read_seq : 0;
      const conv = store.upsertConversation(data);
      const serverRead = data.last_read_seq || 0;
      if (localRead > serverRead) {
        // The list predates our latest `read`: count from our own pointer.
        conv.unread_count = localRead >= conv.last_seq
          ? 0
          : Math.max(0, conv.unread_count - othersBetween(conv, serverRead, localRead));
        conv.unread_mentions = localRead >= conv.last_seq
          ? 0
          : Math.max(0, conv.unread_mentions - othersBetween(conv, serverRead, localRead, (m) => mentionsMe(conv, m.seq)));
      }
      if (conv.type === 'direct' && !conv.members) fetchConversation(conv.conversation_id);
    }
    for (const id of [...store.convs.keys()]) {
      if (!seen.has(id) && !store.pendingFor(id).length) {
        store.removeConversation(id);
        if (ui.activeId === id) closeChat();
      }
    }
    for (const conv of store.convs.values()) {
      // A conversation whose history we never opened needs no backlog: jump the cursor.
      if (!conv.historyLoaded && conv.syncedSeq < conv.last_seq) {
        store.forgetMessages(conv);
        conv.syncedSeq = conv.last_seq;
      }
    }
    refreshListReceipts();
  } catch (err) {
    if (err.status === 401) return;
    toast('Could not load your chats. Retrying when the connection is back.');
  }
  scheduleRender({ list: true, chat: true });
}

async function fetchConversation(id) {
  if (ui.pendingConvFetch.has(id)) return ui.pendingConvFetch.get(id);
  const promise = api.conversation(id)
    .then((data) => {
      if (!store) return null;
      const conv = store.upsertConversation(data);
      scheduleRender({ list: true, chat: ui.activeId === id, info: true });
      updatePresenceSubscription();
      return conv;
    })
    .catch(() => null)
    .finally(() => ui.pendingConvFetch.delete(id));
  ui.pendingConvFetch.set(id, promise);
  return promise;
}

/** Someone named by an event (a sender, a system message) whose name is not known yet. */
function ensureUser(userId) {
  if (!userId || !store || store.isKnownUser(userId)) return;
  ensureProfile(userId);
}

/**
 * Asks once a session for a user's profile (their name and picture), a few at a time: a
 * list of fifty direct chats makes no fifty requests at once. Someone's new picture shows
 * after a reload, or as soon as their contact info is opened (it asks again).
 */
function ensureProfile(userId) {
  if (!userId || !store || store.hasProfile(userId) || ui.profileFetch.has(userId)) return;
  ui.profileFetch.add(userId);
  ui.profileQueue.push(userId);
  pumpProfiles();
}

function pumpProfiles() {
  while (ui.profileActive < PROFILE_FETCHES && ui.profileQueue.length) {
    const userId = ui.profileQueue.shift();
    const owner = store;
    ui.profileActive += 1;
    api.user(userId)
      .then((user) => {
        if (!store || store !== owner) return;
        store.rememberProfile(user);
        scheduleRender({ list: true, chat: true, info: true });
      })
      .catch(() => {})
      .finally(() => {
        ui.profileActive -= 1;
        pumpProfiles();
      });
  }
}

// --------------------------------------------------------------------------- other tabs

// Tabs of one browser share a login, hence a device: the server does not echo a device's
// own messages back to it, so tabs tell each other what they sent and read.
let tabChannel = null;

function openTabChannel() {
  if (tabChannel || typeof BroadcastChannel === 'undefined') return;
  tabChannel = new BroadcastChannel(`parley.${session.user_id}`);
  tabChannel.onmessage = (event) => {
    const data = event.data || {};
    if (!store) return;
    if (data.kind === 'message' && data.message) onNewMessage(data.message);
    else if (data.kind === 'read') {
      onReceipt({ conversation_id: data.conversation_id, user_id: store.me.user_id, status: 'read', up_to_seq: data.up_to_seq });
    }
  };
}

function closeTabChannel() {
  if (tabChannel) tabChannel.close();
  tabChannel = null;
}

function tellTabs(data) {
  try {
    if (tabChannel) tabChannel.postMessage(data);
  } catch {
    /* not cloneable or closed */
  }
}

// --------------------------------------------------------------------------- connection

function onConnState(state, info) {
  ui.connState = state;
  ui.connInfo = info;
  setBanner();
}

let bannerTimer = null;
function setBanner() {
  clearInterval(bannerTimer);
  clearTimeout(bannerTimer);
  const banner = $('#conn-banner');
  const text = $('#conn-text');
  const retry = $('#conn-retry');
  const queued = store ? store.outbox.filter((i) => i.status !== 'failed').length : 0;
  const queuedText = queued ? ` ${queued} message${queued > 1 ? 's' : ''} waiting to be sent.` : '';
  const state = ui.connState;
  const show = (kind, message, canRetry = false) => {
    banner.hidden = false;
    banner.dataset.state = kind;
    text.textContent = message;
    retry.hidden = !canRetry;
  };
  if (!store || state === 'ready' || state === 'idle') {
    banner.hidden = true;
    banner.dataset.state = state === 'ready' ? 'online' : 'idle';
    return;
  }
  if (state === 'offline') {
    show('offline', `You are offline.${queuedText || ' Messages you write will be sent when you are back.'}`);
  } else if (state === 'waiting') {
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((ui.connInfo.retryAt - Date.now()) / 1000));
      show('reconnecting', `Connection lost. Reconnecting${seconds ? ` in ${seconds}s` : '…'}.${queuedText}`, true);
    };
    tick();
    bannerTimer = setInterval(tick, 1000);
  } else if (state === 'connecting') {
    if (ui.everReady) {
      show('reconnecting', `Reconnecting…${queuedText}`);
    } else {
      // First connection: say so only if it takes a moment, so the banner does not flash.
      banner.dataset.state = 'connecting';
      bannerTimer = setTimeout(() => {
        if (ui.connState === 'connecting') show('connecting', 'Connecting…');
      }, 700);
    }
  }
}

function onConnDrop({ wasReady }) {
  ui.syncing = false;
  if (sendQueue) sendQueue.reset();
  // Presence is only known while connected; a snapshot comes with the next subscribe.
  if (ui.presence.size) {
    ui.presence.clear();
    scheduleRender({ list: true, header: true, info: true });
  }
  stopTypingOut(false);
  if (!wasReady && session && Date.now() - ui.lastAuthCheck > 10000) {
    // The upgrade may have been refused for a dead token: ask REST, which signs out on 401.
    ui.lastAuthCheck = Date.now();
    api.me().catch(() => {});
  }
}

function onFrame(frame) {
  if (!store) return;
  switch (frame.type) {
    case 'ready': return onReady(frame);
    case 'msg_ack': return onMsgAck(frame);
    case 'new_message': return onNewMessage(frame);
    case 'receipt': return onReceipt(frame);
    case 'typing': return onTyping(frame);
    case 'presence': return onPresence(frame);
    case 'conversation_updated': return onConversationUpdated(frame);
    case 'conversation_removed': return onConversationRemoved(frame.conversation_id);
    case 'message_hidden': return onMessageHidden(frame);
    case 'sync_done': return onSyncDone(frame);
    case 'error': return onServerError(frame);
    default: return undefined;
  }
}

async function onReady() {
  const reconnect = ui.everReady;
  ui.everReady = true;
  ui.syncing = true;
  if (!ui.listLoaded) {
    // The list could not be loaded at start (server down): load it before syncing so the
    // cursors cover every conversation and sync does not replay whole histories.
    await loadConversations();
    if (!store || !conn || !conn.ready) return;
  }
  const cursors = {};
  for (const conv of store.convs.values()) cursors[conv.conversation_id] = conv.syncedSeq;
  conn.send({ type: 'sync', cursors });
  ui.subscribed = '';
  updatePresenceSubscription();
  // Resend what is waiting, in order, with the same client_msg_id: the server dedups.
  sendQueue.pump();
  if (reconnect) toast('Back online', 1500);
  setBanner();
}

function onSyncDone(frame) {
  ui.syncing = false;
  const cursors = frame.cursors || {};
  let unknown = false;
  for (const [id, seq] of Object.entries(cursors)) {
    const conv = store.convs.get(id);
    if (!conv) {
      if (!store.removed.has(id)) unknown = true;
      continue;
    }
    if (seq > conv.last_seq) conv.last_seq = seq;
  }
  for (const conv of store.convs.values()) {
    if (conv.last_seq > conv.syncedSeq) fillGap(conv);
    scheduleAck(conv);
  }
  // Refresh metadata (names, unread counts, previews) now that we are current.
  loadConversations().then(() => {
    if (unknown) updatePresenceSubscription();
  });
  scheduleRender({ list: true, chat: true });
}

function onMsgAck(frame) {
  const conv = store.applyAck(frame);
  const stored = conv && conv.msgs.get(frame.seq);
  if (stored && stored.client_msg_id === frame.client_msg_id) tellTabs({ kind: 'message', message: plainMessage(stored) });
  if (conv) {
    scheduleAck(conv);
    // Sending a message (not a change) moves our own read pointer on the server.
    if (!stored || !isChange(stored)) {
      advanceRead(conv, frame.seq);
      conv.readSent = Math.max(conv.readSent, frame.seq);
      // My own message brings an archived chat back too (unless muted), as on the server.
      store.noteArrival(conv);
    }
  }
  sendQueue.onAck(frame.conversation_id);
  setBanner();
  scheduleRender({ list: true, chat: frame.conversation_id === ui.activeId });
}

async function onNewMessage(msg) {
  let conv = store.convs.get(msg.conversation_id);
  if (!conv) {
    if (store.removed.has(msg.conversation_id) && !ui.pendingConvFetch.has(msg.conversation_id)) {
      store.removed.delete(msg.conversation_id);
    }
    conv = await fetchConversation(msg.conversation_id);
    if (!conv || !store) return;
  }
  const isNews = msg.seq > conv.last_seq;
  const mentionedBefore = mentionsMe(conv, msg.target_seq);
  const { fresh } = store.addMessage(msg);
  if (msg.system) applySystemEvent(conv, msg);
  const change = isChange(msg);
  const fromOther = msg.sender_id !== store.me.user_id;
  if (!change && fresh && isNews) store.noteArrival(conv);
  if (fromOther) {
    if (!change) conv.typing.delete(msg.sender_id);
    if (!change && fresh && isNews && msg.seq > conv.last_read_seq) {
      // Unread until its row has been on screen (see observeUnseen).
      conv.unread_count = (conv.unread_count || 0) + 1;
      if ((msg.mentions || []).includes(store.me.user_id)) conv.unread_mentions = (conv.unread_mentions || 0) + 1;
      if (!isReadingNow(conv)) notify(conv, msg);
      if (conv.conversation_id === ui.activeId && !ui.syncing) announce(conv, msg);
    }
    // An unread message that mentioned me was deleted: no longer a mention to read.
    if (change && fresh && msg.content_type === 'delete' && mentionedBefore && msg.target_seq > conv.last_read_seq) {
      conv.unread_mentions = Math.max(0, (conv.unread_mentions || 0) - 1);
    }
  } else {
    // My own message from another device (or tab): sending moved my read pointer.
    if (!change) advanceRead(conv, msg.seq);
    if (fresh) sendQueue.onAck(conv.conversation_id);
  }
  if (change && fresh) onChangeShown(conv, msg);
  if (conv.syncedSeq < msg.seq) {
    if (!conv.historyLoaded) {
      // Not opened yet: keep no sparse backlog, history loads when it opens.
      store.forgetMessages(conv);
      conv.syncedSeq = Math.max(conv.syncedSeq, msg.seq);
      conv.msgs.set(msg.seq, msg);
    } else if (!ui.syncing) {
      fillGap(conv);
    }
  }
  scheduleAck(conv);
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId });
}

function applySystemEvent(conv, msg) {
  const ev = msg.system;
  const ids = [ev.actor_id, ev.user_id, ...(ev.user_ids || [])].filter(Boolean);
  for (const id of ids) ensureUser(id);
  if (ev.event === 'conversation_renamed' && ev.name) conv.name = ev.name;
  if (ev.event === 'disappearing_changed') conv.disappearing_seconds = ev.seconds;
  // Also said by `conversation_updated`; the event alone is enough (e.g. during a sync).
  if (ev.event === 'avatar_changed') conv.avatar_media_id = ev.avatar_media_id || null;
  if (['members_added', 'member_removed', 'member_left', 'role_changed'].includes(ev.event)) {
    fetchConversation(conv.conversation_id);
  }
}

async function fillGap(conv) {
  if (conv.filling) return;
  if (!conv.historyLoaded) {
    store.forgetMessages(conv);
    conv.syncedSeq = conv.last_seq;
    return;
  }
  conv.filling = true;
  try {
    for (let round = 0; round < 20 && conv.last_seq > conv.syncedSeq; round++) {
      const version = conv.last_seq;
      const page = await api.messages(conv.conversation_id, { afterSeq: conv.syncedSeq, limit: 100 });
      if (!store) return;
      for (const msg of page.messages || []) store.addMessage(msg, { version });
      if (!page.messages || !page.messages.length) break;
    }
  } catch {
    /* retried on the next sync */
  } finally {
    conv.filling = false;
  }
  scheduleAck(conv);
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId });
}

function scheduleAck(conv) {
  const id = conv.conversation_id;
  if (ui.ackTimers.has(id)) return;
  ui.ackTimers.set(id, setTimeout(() => {
    ui.ackTimers.delete(id);
    if (!store || !conn) return;
    const current = store.convs.get(id);
    if (!current) return;
    const seq = current.syncedSeq;
    if (seq > current.ackSent && conn.send({ type: 'ack', conversation_id: id, seq })) current.ackSent = seq;
  }, 120));
}

function isReadingNow(conv) {
  return conv.conversation_id === ui.activeId && document.visibilityState === 'visible';
}

/** Messages of others (not changes) that we hold with `from < seq <= to`. */
function othersBetween(conv, from, to, only = () => true) {
  let count = 0;
  for (const m of conv.msgs.values()) {
    if (m.seq > from && m.seq <= to && m.sender_id !== store.me.user_id && !isChange(m) && only(m)) count += 1;
  }
  return count;
}

/** Whether a held message mentions me (and is still there to be read). */
function mentionsMe(conv, seq) {
  const m = seq ? conv.msgs.get(seq) : null;
  return !!(m && !m.deleted && !m.hidden && (m.mentions || []).includes(store.me.user_id));
}

/** Move our read pointer (locally) forward to `seq`; the unread count follows. */
function advanceRead(conv, seq) {
  if (!(seq > conv.last_read_seq)) return false;
  // Reading clears a "mark as unread" (the server clears it too when the pointer moves).
  conv.marked_unread = false;
  const passed = othersBetween(conv, conv.last_read_seq, seq);
  const mentions = othersBetween(conv, conv.last_read_seq, seq, (m) => mentionsMe(conv, m.seq));
  conv.unread_mentions = seq >= conv.last_seq ? 0 : Math.max(0, (conv.unread_mentions || 0) - mentions);
  conv.last_read_seq = seq;
  conv.unread_count = seq >= conv.last_seq ? 0 : Math.max(0, (conv.unread_count || 0) - passed);
  scheduleRender({ list: true });
  return true;
}

/** The user has seen the open chat up to `seq`: move the read pointer and tell the server. */
function markRead(conv, seq) {
  if (!isReadingNow(conv) || seq <= 0) return;
  advanceRead(conv, seq);
  conv.readWanted = Math.max(conv.readWanted || 0, seq);
  if (conv.readWanted <= conv.readSent || conv.readTimer) return;
  // Coalesce: scrolling shows many messages at once; one `read` covers them all.
  conv.readTimer = setTimeout(() => {
    conv.readTimer = null;
    if (!store || store.convs.get(conv.conversation_id) !== conv) return;
    const upTo = conv.readWanted;
    if (upTo <= conv.readSent) return;
    tellTabs({ kind: 'read', conversation_id: conv.conversation_id, up_to_seq: upTo });
    if (conn && conn.send({ type: 'read', conversation_id: conv.conversation_id, up_to_seq: upTo })) {
      conv.readSent = upTo;
    } else {
      api.markRead(conv.conversation_id, upTo).then(() => { conv.readSent = Math.max(conv.readSent, upTo); }).catch(() => {});
    }
  }, 100);
}

// Messages count as read once they have been on screen: every unread row of the open
// chat is watched, and a row at least half visible (or filling half the list) is seen.
let seenObserver = null;

function observeUnseen(conv) {
  if (typeof IntersectionObserver === 'undefined') {
    markRead(conv, conv.syncedSeq); // no way to tell: treat an open chat as read
    return;
  }
  if (!seenObserver) {
    seenObserver = new IntersectionObserver(onSeenEntries, { root: $('#messages'), threshold: [0, 0.5, 1] });
  }
  seenObserver.disconnect();
  // Not before the chat is scrolled to its first unread: what shows while it loads is not read.
  if (!isReadingNow(conv) || ui.positionPending) return;
  for (const row of $('#message-items').querySelectorAll(ROW_SELECTOR)) {
    const seq = Number(row.dataset.seq);
    if (seq > conv.last_read_seq) seenObserver.observe(row);
  }
}

function onSeenEntries(entries) {
  const conv = activeConv();
  if (!conv || !isReadingNow(conv)) return;
  let seen = 0;
  for (const entry of entries) {
    if (!entry.isIntersecting || !entry.target.isConnected) continue;
    const rootHeight = entry.rootBounds ? entry.rootBounds.height : Infinity;
    if (entry.intersectionRatio < 0.5 && entry.intersectionRect.height < rootHeight / 2) continue;
    seen = Math.max(seen, Number(entry.target.dataset.seq) || 0);
    seenObserver.unobserve(entry.target);
  }
  if (seen) markRead(conv, seen);
}

function onReceipt(frame) {
  const conv = store.convs.get(frame.conversation_id);
  if (!conv) return;
  if (frame.user_id === store.me.user_id) {
    // Another of my devices (or tabs) read it.
    if (frame.status === 'read') advanceRead(conv, frame.up_to_seq);
    return;
  }
  store.applyReceipt(conv, frame.user_id, frame.status, frame.up_to_seq);
  // The chat list shows the ticks of every chat's last message, not only the open one's.
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId });
}

function onTyping(frame) {
  if (frame.user_id === store.me.user_id) return;
  const conv = store.convs.get(frame.conversation_id);
  if (!conv) return;
  if (frame.is_typing) conv.typing.set(frame.user_id, Date.now() + TYPING_TTL_MS);
  else conv.typing.delete(frame.user_id);
  ensureUser(frame.user_id);
  scheduleTypingExpiry();
  scheduleRender({ list: true, typing: true });
}

function scheduleTypingExpiry() {
  clearTimeout(ui.typingExpiryTimer);
  let next = Infinity;
  for (const conv of store.convs.values()) for (const until of conv.typing.values()) next = Math.min(next, until);
  if (next === Infinity) return;
  ui.typingExpiryTimer = setTimeout(() => {
    if (!store) return;
    const now = Date.now();
    for (const conv of store.convs.values()) {
      for (const [user, until] of conv.typing) if (until <= now) conv.typing.delete(user);
    }
    scheduleRender({ list: true, typing: true });
    scheduleTypingExpiry();
  }, Math.max(50, next - Date.now() + 20));
}

function onPresence(frame) {
  ui.presence.set(frame.user_id, { status: frame.status, last_seen: frame.last_seen || null });
  scheduleRender({ list: true, header: true, info: true });
}

function onConversationUpdated(frame) {
  // The conversation is nested (its own `type` would collide with the frame's).
  const data = frame.conversation && typeof frame.conversation === 'object' ? frame.conversation : frame;
  if (!data.conversation_id) return;
  const known = store.convs.has(data.conversation_id);
  // Not authoritative for per-member fields: the server sends one view to all members
  // (unread_count 0, no last_message), so keep our own counts.
  const wasCleared = known ? store.convs.get(data.conversation_id).cleared_seq || 0 : 0;
  const conv = store.upsertConversation(data, { authoritative: false });
  if (!known && data.last_seq > 0) fetchConversation(data.conversation_id);
  // Deleted for me on another device while open here: the chat closes here too.
  if ((conv.cleared_seq || 0) > wasCleared && conv.conversation_id === ui.activeId && store.isCleared(conv)) {
    for (const info of ['#info-dialog', '#contact-dialog']) if ($(info).open) closeDialog($(info));
    navigate(null);
  }
  if (!known) updatePresenceSubscription();
  if (conv.conversation_id === ui.activeId) updatePresenceSubscription();
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId, info: true });
}

function onConversationRemoved(id) {
  const conv = store.convs.get(id);
  const title = conv ? store.title(conv) : 'the group';
  store.removeConversation(id);
  if (ui.activeId === id) {
    closeDialog($('#info-dialog'));
    navigate(null);
    toast(`You are no longer a member of ${title}.`);
  }
  scheduleRender({ list: true, chat: true });
}

function onMessageHidden(frame) {
  const known = store.convs.get(frame.conversation_id);
  if (known && mentionsMe(known, frame.seq) && frame.seq > known.last_read_seq) {
    known.unread_mentions = Math.max(0, (known.unread_mentions || 0) - 1);
  }
  const conv = store.hideMessage(frame.conversation_id, frame.seq);
  if (!conv) return;
  if (ui.editing && ui.editing.seq === frame.seq && conv.conversation_id === ui.activeId) setEditing(null);
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId });
}

/** A change entry arrived (from someone else, or from another of my devices). */
function onChangeShown(conv, entry) {
  if (entry.content_type === 'delete' && ui.editing && conv.conversation_id === ui.activeId && ui.editing.seq === entry.target_seq) {
    setEditing(null);
    toast('The message you were editing was deleted.');
  }
}

/** Who reacted with what, for a message whose reactions arrived as counts only. */
function fetchReactors(conv, seq) {
  conv.reactorsFetching = conv.reactorsFetching || new Set();
  if (conv.reactorsFetching.has(seq)) return;
  conv.reactorsFetching.add(seq);
  setTimeout(async () => {
    const version = conv.last_seq;
    try {
      const data = await api.reactions(conv.conversation_id, seq);
      if (!store) return;
      store.setReactors(conv.conversation_id, seq, data.reactions || [], version);
      scheduleRender({ chat: conv.conversation_id === ui.activeId });
    } catch {
      /* the counts stay as they are until the next load */
    } finally {
      conv.reactorsFetching.delete(seq);
    }
  }, 0);
}

/** A message without the model's bookkeeping, for other tabs. */
function plainMessage(msg) {
  const plain = {};
  for (const [key, value] of Object.entries(msg)) if (!key.startsWith('_')) plain[key] = value;
  return plain;
}

const CHANGE_ERRORS = {
  edit_window_passed: 'Messages can only be changed within 48 hours of sending.',
  not_sender: 'Only the sender can do that.',
  target_not_found: 'That message is no longer there.',
  forbidden: 'You may not do that here.',
  not_member: 'You are not a member of this conversation.',
};

function onServerError(frame) {
  if (frame.client_msg_id) {
    const item = store.outbox.find((i) => i.client_msg_id === frame.client_msg_id);
    if (!item) return;
    if (isChange(item) && !['rate_limited', 'unavailable', 'internal'].includes(frame.code)) {
      // A refused change is not kept to retry: it is undone on screen and explained.
      store.dropOutbox(item.client_msg_id);
      toast(CHANGE_ERRORS[frame.code] || frame.message || 'That did not work.');
      sendQueue.pump(item.conversation_id);
      setBanner();
      scheduleRender({ chat: true, list: true });
      return;
    }
    if (frame.code === 'rate_limited' || frame.code === 'unavailable' || frame.code === 'internal') {
      // Refused for now: the whole conversation waits, then goes on in order.
      const wait = frame.retry_after_ms || (frame.code === 'rate_limited' ? 1000 : 3000);
      const paused = sendQueue.onRefused(item.client_msg_id, wait);
      if (paused && frame.code === 'rate_limited') toast('Slow down a little: sending again in a moment.');
      return;
    }
    const reasons = {
      content_too_large: 'Too long to send.',
      not_member: 'You are not a member of this conversation.',
      forbidden: 'You may not send here.',
      not_found: 'This conversation no longer exists.',
      blocked: 'Not sent: one of you blocked the other, or the account was deleted.',
    };
    store.updateOutbox(item.client_msg_id, { status: 'failed', error: reasons[frame.code] || frame.message || 'Not sent.' });
    sendQueue.pump(item.conversation_id); // the ones behind it go on
    setBanner();
    scheduleRender({ chat: true, list: true });
    return;
  }
  if (frame.code === 'unauthorized' || frame.code === 'not_authenticated') {
    api.me().catch(() => {});
    return;
  }
  if (frame.code === 'not_member' || frame.code === 'not_found') return;
  console.warn('parley: server error', frame.code, frame.message);
}

function updatePresenceSubscription() {
  if (!store || !conn || !conn.ready) return;
  const ids = new Set();
  for (const conv of store.convs.values()) {
    if (conv.type === 'direct') {
      const other = store.otherMember(conv);
      if (other) ids.add(other.user_id);
    }
  }
  const active = activeConv();
  if (active && active.type === 'group' && active.members && active.members.length <= 50) {
    for (const m of active.members) if (m.user_id !== store.me.user_id) ids.add(m.user_id);
  }
  const list = [...ids].sort();
  const key = list.join(',');
  if (key === ui.subscribed) return;
  if (conn.send({ type: 'presence_subscribe', user_ids: list })) ui.subscribed = key;
}

// --------------------------------------------------------------------------- sending

function transmit(item) {
  if (!conn) return false;
  const frame = {
    type: 'send_message',
    client_msg_id: item.client_msg_id,
    conversation_id: item.conversation_id,
    content: item.content,
    content_type: item.content_type || 'text',
  };
  if (item.reply_to_seq) frame.reply_to_seq = item.reply_to_seq;
  if (item.target_seq) frame.target_seq = item.target_seq;
  if (item.mentions && item.mentions.length) frame.mentions = item.mentions;
  if (item.attachments && item.attachments.length) frame.attachments = item.attachments.map((a) => a.media_id);
  return conn.send(frame);
}

/**
 * A change to a message (`reaction`, `edit`, `delete`): queued and sent like a message,
 * in order with the conversation's other sends; shown at once, undone if refused.
 */
function sendChange(conv, kind, targetSeq, content = '') {
  store.enqueue({
    client_msg_id: uuid(),
    conversation_id: conv.conversation_id,
    content,
    content_type: kind,
    target_seq: targetSeq,
    created_at: new Date().toISOString(),
  });
  sendQueue.pump(conv.conversation_id);
  setBanner();
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId });
}

/** Members of a group whose `@username` the text mentions (never me, never in direct chats). */
function mentionsIn(conv, text) {
  if (conv.type !== 'group' || !conv.members || !text.includes('@')) return [];
  const ids = [];
  for (const m of conv.members) {
    const username = m.username || store.users.get(m.user_id)?.username;
    if (!username || m.user_id === store.me.user_id) continue;
    if (findMentions(text, [{ text: `@${username}` }]).length) ids.push(m.user_id);
  }
  return ids;
}

function sendMessage(text, { attachments = null } = {}) {
  const conv = activeConv();
  if (!conv) return false;
  const attaching = !ui.editing && (attachments || ui.tray.length > 0);
  if (attaching && !attachments && ui.tray.some((t) => t.status === 'uploading')) {
    showComposerError('Wait for the files to finish uploading (or remove them).');
    return false;
  }
  const media = attachments || (attaching ? ui.tray.filter((t) => t.status === 'ready').map((t) => t.media) : []);
  if (!text.trim() && !media.length) {
    if (ui.editing) showComposerError('A message cannot be empty: delete it instead.');
    if (attaching) showComposerError('None of the files could be uploaded: remove them or try again.');
    return false;
  }
  const bytes = utf8Length(text);
  if (bytes > MAX_CONTENT_BYTES) {
    showComposerError(`This message is too long (${formatBytes(bytes)} of ${formatBytes(MAX_CONTENT_BYTES)}). Split it into smaller ones.`);
    return false;
  }
  if (ui.editing) {
    const target = conv.msgs.get(ui.editing.seq);
    if (target && text !== viewOf(conv, target).content) sendChange(conv, 'edit', ui.editing.seq, text);
    setEditing(null, { restoreDraft: false });
    return true;
  }
  const item = {
    client_msg_id: uuid(),
    conversation_id: conv.conversation_id,
    content: text,
    reply_to_seq: ui.replyTo ? ui.replyTo.seq : null,
    created_at: new Date().toISOString(),
  };
  const mentions = mentionsIn(conv, text);
  if (mentions.length) item.mentions = mentions;
  if (media.length) {
    item.attachments = media;
    if (!text.trim()) item.content = '';
    if (!attachments) clearTray();
  }
  store.enqueue(item);
  sendQueue.pump(conv.conversation_id); // behind whatever of this chat is still waiting
  stopTypingOut(true);
  setReply(null);
  setBanner();
  scheduleRender({ list: true, chat: true, bottom: true });
  return true;
}

function formatBytes(bytes) {
  return bytes >= 1024 ? `${(bytes / 1024).toFixed(1)} KiB` : `${bytes} bytes`;
}

// --------------------------------------------------------------------------- typing out

/** Keep the open chat's draft (in the list as "Draft: …", and across reloads). */
function rememberDraft() {
  if (!ui.activeId || ui.editing || !store) return;
  const text = $('#composer').value;
  const before = ui.drafts.get(ui.activeId) || '';
  if (text.trim()) ui.drafts.set(ui.activeId, text);
  else ui.drafts.delete(ui.activeId);
  if (before !== text) {
    clearTimeout(ui.draftTimer);
    ui.draftTimer = setTimeout(() => { if (store) store.saveDrafts(ui.drafts); }, 300);
  }
}

function onComposerInput() {
  const composer = $('#composer');
  rememberDraft();
  autoGrow(composer);
  updateCounter();
  updateMentionPicker();
  const conv = activeConv();
  if (!conv || !conn) return;
  if (!composer.value.trim()) {
    stopTypingOut(true);
    return;
  }
  const now = Date.now();
  if (!ui.typingActive || ui.typingConv !== conv.conversation_id || now - ui.typingSentAt > TYPING_SEND_EVERY_MS) {
    if (ui.typingActive && ui.typingConv !== conv.conversation_id) stopTypingOut(true);
    if (conn.send({ type: 'typing', conversation_id: conv.conversation_id, is_typing: true })) {
      ui.typingSentAt = now;
      ui.typingActive = true;
      ui.typingConv = conv.conversation_id;
    }
  }
  clearTimeout(ui.typingIdleTimer);
  ui.typingIdleTimer = setTimeout(() => stopTypingOut(true), TYPING_IDLE_MS);
}

function stopTypingOut(send) {
  clearTimeout(ui.typingIdleTimer);
  if (ui.typingActive && send && conn) {
    conn.send({ type: 'typing', conversation_id: ui.typingConv, is_typing: false });
  }
  ui.typingActive = false;
  ui.typingConv = null;
}

function autoGrow(textarea) {
  textarea.style.height = 'auto';
  if (!textarea.scrollHeight) {
    textarea.style.height = ''; // hidden: measure again when shown
    return;
  }
  textarea.style.height = `${Math.min(textarea.scrollHeight, 180)}px`;
}

function updateCounter() {
  const value = $('#composer').value;
  const bytes = value.length > 16000 ? utf8Length(value) : value.length * 3 > MAX_CONTENT_BYTES ? utf8Length(value) : value.length;
  const counter = $('#composer-count');
  const over = bytes > MAX_CONTENT_BYTES;
  if (bytes > MAX_CONTENT_BYTES * 0.8) {
    counter.hidden = false;
    counter.textContent = `${formatBytes(bytes)} / ${formatBytes(MAX_CONTENT_BYTES)}`;
    counter.classList.toggle('over', over);
  } else {
    counter.hidden = true;
  }
  $('#send').disabled = over;
  if (!over) showComposerError('');
}

function showComposerError(text) {
  const el = $('#composer-error');
  el.textContent = text;
  el.hidden = !text;
}

// --------------------------------------------------------------------------- navigation

function activeConv() {
  return store && ui.activeId ? store.convs.get(ui.activeId) || null : null;
}

function navigate(id) {
  const target = id ? `#/c/${encodeURIComponent(id)}` : '';
  if (location.hash === target || (!id && !location.hash)) {
    applyRoute();
    return;
  }
  if (id) location.hash = target;
  else history.pushState(null, '', location.pathname + location.search);
  if (!id) applyRoute();
}

function applyRoute() {
  if (!store) return;
  const match = location.hash.match(/^#\/c\/(.+)$/);
  const id = match ? decodeURIComponent(match[1]) : null;
  if (id && store.convs.has(id)) openConversation(id);
  else closeChat();
}

function openConversation(id) {
  const conv = store.convs.get(id);
  if (!conv) return;
  const composer = $('#composer');
  if (ui.activeId && ui.activeId !== id) {
    if (ui.editing) setEditing(null);
    clearTray();
    finishVoiceNote(false);
    rememberDraft();
    store.saveDrafts(ui.drafts);
    stopTypingOut(true);
  }
  const switching = ui.activeId !== id;
  ui.activeId = id;
  document.body.classList.add('chat-open');
  if (switching) {
    closePopover({ restoreFocus: false });
    closeMentionPicker();
    if (!$('#chat-search').hidden) toggleChatSearch(false);
    setReply(null);
    composer.value = ui.drafts.get(id) || '';
    autoGrow(composer);
    updateCounter();
    showComposerError('');
    ui.msgCache.clear();
    $('#message-items').replaceChildren();
    $('#live').replaceChildren();
    // Open at the first unread message, under an "Unread messages" divider.
    ui.unreadFrom = conv.unread_count > 0 ? conv.last_read_seq : null;
    ui.positionPending = true;
    ui.rovingKey = null;
  }
  if (!conv.members) fetchConversation(id);
  // Opening a chat marked as unread reads it: the mark goes, on every device.
  if (switching && conv.marked_unread) changeSettings(conv, { marked_unread: false });
  updatePresenceSubscription();
  scheduleRender({ list: true, chat: true });
  if (!conv.historyLoaded) loadLatest(conv);
  else {
    fetchReceiptsFor(conv);
    if (switching && needsBackfill(conv)) loadUnread(conv);
  }
  if (window.matchMedia('(pointer: fine)').matches && ui.pendingJump !== id) setTimeout(() => composer.focus(), 0);
}

function closeChat() {
  if (ui.activeId) {
    if (ui.editing) setEditing(null);
    closePopover({ restoreFocus: false });
    closeMentionPicker();
    if (!$('#chat-search').hidden) toggleChatSearch(false);
    clearTray();
    finishVoiceNote(false);
    rememberDraft();
    if (store) store.saveDrafts(ui.drafts);
    stopTypingOut(true);
  }
  ui.activeId = null;
  ui.unreadFrom = null;
  ui.positionPending = false;
  if (seenObserver) seenObserver.disconnect();
  document.body.classList.remove('chat-open');
  setReply(null);
  updatePresenceSubscription();
  scheduleRender({ list: true, chat: true });
}

// --------------------------------------------------------------------------- history

async function loadLatest(conv) {
  if (conv.loadingHistory) return;
  conv.loadingHistory = true;
  renderHistoryStatus(conv);
  try {
    const version = conv.last_seq;
    const page = await api.messages(conv.conversation_id, { beforeSeq: conv.syncedSeq + 1, limit: PAGE });
    if (!store) return;
    for (const msg of page.messages || []) store.addMessage(msg, { version });
    conv.historyLoaded = true;
    conv.hasMoreBefore = !!page.has_more && (store.minSeq(conv) || 1) > 1;
    if (conv.last_seq > conv.syncedSeq) fillGap(conv);
    // Many unread: load back to the first of them, so the chat can open there.
    if (needsBackfill(conv)) await loadBackTo(conv, ui.unreadFrom);
  } catch {
    conv.historyError = true;
  } finally {
    conv.loadingHistory = false;
  }
  if (!store) return;
  scheduleAck(conv);
  fetchReceiptsFor(conv);
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId, fill: true });
}

/** The open chat's first unread message is older than what is loaded. */
function needsBackfill(conv) {
  if (conv.conversation_id !== ui.activeId || ui.unreadFrom === null || !conv.hasMoreBefore) return false;
  const min = store.minSeq(conv);
  return !!min && min > ui.unreadFrom;
}

async function loadUnread(conv) {
  if (conv.loadingHistory) return;
  conv.loadingHistory = true;
  renderHistoryStatus(conv);
  try {
    await loadBackTo(conv, ui.unreadFrom);
  } catch {
    /* opens at what is loaded */
  } finally {
    conv.loadingHistory = false;
  }
  scheduleRender({ chat: conv.conversation_id === ui.activeId });
}

/**
 * Load older pages until `seq` is loaded (or the beginning, or MAX_BACKFILL_PAGES pages).
 * The caller holds conv.loadingHistory. Messages stay contiguous: pages are fetched
 * backwards from the oldest loaded one.
 */
async function loadBackTo(conv, seq) {
  for (let round = 0; round < MAX_BACKFILL_PAGES; round++) {
    const min = store.minSeq(conv);
    if (!min || min <= Math.max(1, seq) || !conv.hasMoreBefore) return true;
    const version = conv.last_seq;
    const page = await api.messages(conv.conversation_id, { beforeSeq: min, limit: 100 });
    if (!store) return false;
    for (const msg of page.messages || []) store.addMessage(msg, { version });
    conv.hasMoreBefore = !!page.has_more && (page.messages || []).length > 0 && (store.minSeq(conv) || 1) > 1;
  }
  return (store.minSeq(conv) || 0) <= seq;
}

async function loadOlder(conv) {
  if (conv.loadingHistory || !conv.hasMoreBefore || !conv.historyLoaded) return;
  const min = store.minSeq(conv);
  if (!min || min <= 1) {
    conv.hasMoreBefore = false;
    renderHistoryStatus(conv);
    return;
  }
  conv.loadingHistory = true;
  renderHistoryStatus(conv);
  const box = $('#messages');
  try {
    const version = conv.last_seq;
    const page = await api.messages(conv.conversation_id, { beforeSeq: min, limit: PAGE });
    if (!store) return;
    const before = box.scrollHeight;
    const top = box.scrollTop;
    for (const msg of page.messages || []) store.addMessage(msg, { version });
    conv.hasMoreBefore = !!page.has_more && (page.messages || []).length > 0 && (store.minSeq(conv) || 1) > 1;
    conv.loadingHistory = false;
    if (conv.conversation_id === ui.activeId) {
      renderMessages(conv, { keep: true });
      box.scrollTop = top + (box.scrollHeight - before);
      fillViewport(conv);
    }
  } catch {
    conv.loadingHistory = false;
  }
  renderHistoryStatus(conv);
}

function fillViewport(conv) {
  const box = $('#messages');
  if (conv.hasMoreBefore && !conv.loadingHistory && box.scrollHeight <= box.clientHeight + 40) loadOlder(conv);
}

async function fetchReceiptsFor(conv) {
  const mine = store.sortedMessages(conv)
    .filter((m) => m.sender_id === store.me.user_id && m.content_type !== 'system' && !isChange(m))
    .slice(-10)
    .filter((m) => !conv.receiptsFetched.has(m.seq));
  if (!mine.length) return;
  await Promise.all(mine.map((m) => fetchReceipt(conv, m.seq)));
  if (store && conv.conversation_id === ui.activeId) scheduleRender({ chat: true, list: true });
}

/** Who has received and read one of my messages (`GET …/messages/{seq}/receipts`). */
async function fetchReceipt(conv, seq) {
  conv.receiptsLoading = conv.receiptsLoading || new Set();
  if (conv.receiptsLoading.has(seq)) return;
  conv.receiptsLoading.add(seq);
  conv.receiptsFetched.add(seq);
  try {
    const r = await api.receipts(conv.conversation_id, seq);
    if (!store) return;
    for (const id of r.read_by || []) if (id !== store.me.user_id) store.applyReceipt(conv, id, 'read', seq);
    for (const id of r.delivered_to || []) if (id !== store.me.user_id) store.applyReceipt(conv, id, 'delivered', seq);
  } catch {
    conv.receiptsFetched.delete(seq);
  } finally {
    conv.receiptsLoading.delete(seq);
  }
}

/**
 * The chat list shows ticks on every chat whose last message is mine. Receipts that moved
 * while this page was not listening (before a reload, while offline) are fetched for those
 * not yet known to be read, a few at a time.
 */
async function refreshListReceipts() {
  if (!store) return;
  const now = Date.now();
  const mine = (conv) => {
    const last = conv.last_message;
    if (!last || last.sender_id !== store.me.user_id || last.content_type === 'system') return false;
    if (store.messageStatus(conv, last.seq).status === 'read') return false;
    // The list loads twice on start (then after the first sync): ask once for both.
    const checked = conv.listReceiptChecked;
    return !checked || checked.seq !== last.seq || now - checked.at > 10000;
  };
  const todo = store.sortedConversations().filter(mine);
  for (const conv of todo) conv.listReceiptChecked = { seq: conv.last_message.seq, at: now };
  let next = 0;
  const worker = async () => {
    while (store && next < todo.length) {
      const conv = todo[next++];
      if (conv.last_message) await fetchReceipt(conv, conv.last_message.seq);
      scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId });
    }
  };
  await Promise.all(Array.from({ length: RECEIPT_FETCHES }, worker));
}

// --------------------------------------------------------------------------- rendering

const pending = { list: false, chat: false, bottom: false, typing: false, header: false, info: false, fill: false };
let frameRequested = false;

function scheduleRender(parts) {
  Object.keys(parts).forEach((k) => { if (parts[k]) pending[k] = true; });
  if (frameRequested) return;
  frameRequested = true;
  const run = () => {
    frameRequested = false;
    if (!store) return;
    const todo = { ...pending };
    Object.keys(pending).forEach((k) => { pending[k] = false; });
    if (todo.list) renderList();
    if (todo.chat) renderChat({ bottom: todo.bottom });
    else {
      if (todo.header) renderHeader();
      if (todo.typing) renderTyping();
    }
    if (todo.info && $('#info-dialog').open) renderInfo();
    if (todo.info && $('#contact-dialog').open) renderContact();
    if ($('#logout-dialog').open) renderLogoutDialog();
    if (todo.fill) {
      const conv = activeConv();
      if (conv) fillViewport(conv);
    }
  };
  // rAF does not run in hidden tabs; a timeout does (throttled), so state stays current.
  if (document.visibilityState === 'visible') requestAnimationFrame(run);
  else setTimeout(run, 0);
}

function renderList() {
  const list = $('#conv-list');
  const query = ui.search.trim().toLocaleLowerCase(UI_LOCALE);
  const archiveView = ui.showArchived && !query;
  // Searching by name looks through the archive too.
  const shownConvs = query
    ? [...store.sortedConversations(), ...store.sortedConversations({ archived: true })]
    : store.sortedConversations({ archived: archiveView });
  const convs = shownConvs.filter((conv) => {
    if (!query) return true;
    const title = store.title(conv).toLocaleLowerCase(UI_LOCALE);
    // A direct chat is also found by the other person's username; a group only by its name.
    const other = conv.type === 'direct' ? store.otherMember(conv) : null;
    const username = other ? (store.users.get(other.user_id)?.username || '') : '';
    return title.includes(query) || username.includes(query);
  });
  const focused = document.activeElement && document.activeElement.closest
    ? document.activeElement.closest('#conv-list .conv-item')
    : null;
  if (focused) ui.listFocusId = focused.dataset.conversationId;
  const items = convs.map((conv) => renderListItem(conv));
  const archivedCount = store.archivedCount();
  if (archiveView) {
    list.replaceChildren(archiveHeader(archivedCount), ...items);
  } else if (archivedCount > 0 && !query) {
    list.replaceChildren(archiveEntry(archivedCount), ...items);
  } else {
    list.replaceChildren(...items);
  }
  // One tab stop for the whole list (roving tabindex); arrow keys move between chats.
  const stop = items.find((el) => el.dataset.conversationId === ui.listFocusId)
    || items.find((el) => el.dataset.conversationId === ui.activeId)
    || items[0];
  if (stop) {
    stop.tabIndex = 0;
    if (focused) stop.focus({ preventScroll: true });
  }
  $('#conv-empty').hidden = store.convs.size > 0 || !!query;
  list.setAttribute('aria-label', archiveView ? 'Archived chats' : 'Chats');
  const total = store.totalUnread();
  document.title = total > 0 ? `(${total}) parley` : 'parley';
}

function renderListItem(conv) {
  const title = store.title(conv);
  const other = conv.type === 'direct' ? store.otherMember(conv) : null;
  const online = other && ui.presence.get(other.user_id)?.status === 'online';
  const pendingItems = store.pendingMessages(conv.conversation_id);
  const lastPending = pendingItems[pendingItems.length - 1];
  const typingNames = typingUsers(conv);
  const shown = store.previewMessage(conv);
  let preview;
  let previewClass = 'preview';
  if (typingNames.length) {
    preview = conv.type === 'group' ? `${firstName(typingNames[0])} is typing…` : 'typing…';
    previewClass += ' typing-preview';
  } else if (ui.drafts.get(conv.conversation_id) && conv.conversation_id !== ui.activeId) {
    preview = `Draft: ${oneLine(ui.drafts.get(conv.conversation_id))}`;
    previewClass += ' draft-preview';
  } else if (lastPending) {
    preview = `You: ${oneLine(lastPending.content)}`;
  } else if (shown) {
    preview = previewText(conv, shown);
  } else if (conv.last_message) {
    preview = '';
  } else {
    preview = conv.type === 'group' ? 'Group created' : 'Say hello 👋';
  }
  const when = lastPending ? new Date(lastPending.created_at) : new Date(conv.last_activity_at || conv.created_at || Date.now());
  const unread = conv.unread_count > 0 ? conv.unread_count : 0;
  const mentioned = conv.unread_mentions > 0;
  const muted = store.isMuted(conv);
  const pinned = !!conv.pinned_at;
  const marked = !!conv.marked_unread && !unread;
  const typing = typingNames.length > 0;
  const ownLast = !typing && !lastPending && shown && shown.sender_id === store.me.user_id
    && shown.content_type !== 'system' && !shown.deleted;
  const status = ownLast ? store.messageStatus(conv, shown.seq).status : null;
  return h('li', {
    class: `conv-item${conv.conversation_id === ui.activeId ? ' active' : ''}${unread || marked ? ' has-unread' : ''}${muted ? ' muted' : ''}`,
    testid: 'conversation-item',
    dataset: { conversationId: conv.conversation_id, type: conv.type },
    role: 'button',
    tabindex: '-1',
    'aria-current': conv.conversation_id === ui.activeId ? 'true' : null,
    'aria-label': `${title}${pinned ? ', pinned' : ''}${muted ? ', muted' : ''}${unread ? `, ${unread} unread` : ''}${marked ? ', marked unread' : ''}${mentioned ? ', you were mentioned' : ''}: ${preview}${status ? ` (${status})` : ''}`,
    'aria-haspopup': 'menu',
    onclick: (e) => {
      if (e.target.closest('.conv-menu-btn')) return;
      navigate(conv.conversation_id);
    },
    onkeydown: (e) => {
      if (e.target !== e.currentTarget) return;
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); navigate(conv.conversation_id); }
      if (e.key === 'ContextMenu' || (e.key === 'F10' && e.shiftKey)) {
        e.preventDefault();
        openChatMenu(conv, { anchor: e.currentTarget, opener: e.currentTarget });
      }
    },
    oncontextmenu: (e) => {
      e.preventDefault();
      const point = e.clientX || e.clientY ? { x: e.clientX, y: e.clientY } : e.currentTarget;
      openChatMenu(conv, { anchor: point, opener: e.currentTarget });
    },
  },
  h('div', { class: 'avatar-wrap' },
    convAvatar(conv, title),
    online ? h('span', { class: 'online-dot', testid: 'online-dot', title: 'online' }) : null),
  h('div', { class: 'conv-body' },
    h('div', { class: 'conv-top' },
      h('span', { class: 'conv-title', testid: 'conversation-title', dir: 'auto', text: title }),
      muted ? h('span', { class: 'conv-flag', testid: 'muted-icon', title: 'Muted' }, icon(ICONS.bellOff)) : null,
      h('time', { class: 'conv-time', datetime: when.toISOString(), text: formatListTime(when) }),
      h('button', {
        type: 'button', class: 'icon-btn small conv-menu-btn', testid: 'conversation-menu-button', tabindex: '-1',
        title: 'Chat options', 'aria-label': `Options for ${title}`, 'aria-haspopup': 'menu',
        onclick: (e) => {
          e.stopPropagation();
          if (justClosedBy(e.currentTarget)) return;
          openChatMenu(conv, { anchor: e.currentTarget, opener: e.currentTarget.closest('.conv-item') });
        },
      }, icon(ICONS.chevron))),
    h('div', { class: 'conv-bottom' },
      ownLast ? ticksEl(status, true) : null,
      lastPending && !typing ? ticksEl(lastPending.status === 'failed' ? 'failed' : 'sending', true) : null,
      h('span', { class: previewClass, testid: 'conversation-preview', dir: 'auto', text: preview }),
      mentioned ? h('span', { class: 'badge mention-badge', testid: 'mention-badge', title: 'You were mentioned', text: '@' }) : null,
      unread ? h('span', { class: 'badge', testid: 'unread-badge', text: unread > 999 ? '999+' : String(unread) }) : null,
      marked ? h('span', { class: 'badge marked-badge', testid: 'marked-unread-badge', title: 'Marked as unread' }) : null,
      pinned ? h('span', { class: 'conv-flag pin-flag', testid: 'pinned-icon', title: 'Pinned' }, icon(ICONS.pin)) : null)));
}

// --------------------------------------------------------------------------- chat settings

/** The "Archived" row at the top of the list, opening the archive. */
function archiveEntry(count) {
  return h('li', {
    class: 'conv-item archive-entry', testid: 'archived-entry', role: 'button', tabindex: '-1',
    'aria-label': `Archived chats, ${count}`,
    onclick: () => showArchive(true),
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); showArchive(true); } },
  },
  h('span', { class: 'archive-icon' }, icon(ICONS.archive)),
  h('span', { class: 'conv-title', text: 'Archived' }),
  h('span', { class: 'archive-count', testid: 'archived-count', text: String(count) }));
}

/** The head of the archive view, with the way back to the chats. */
function archiveHeader(count) {
  return h('li', { class: 'archive-head', testid: 'archive-header' },
    h('button', {
      type: 'button', class: 'icon-btn small', testid: 'archive-back', 'aria-label': 'Back to chats',
      onclick: () => showArchive(false),
    }, icon(ICONS.back)),
    h('span', { class: 'conv-title', text: `Archived (${count})` }),
    count === 0 ? h('span', { class: 'archive-empty', text: 'Nothing archived' }) : null);
}

function showArchive(show) {
  ui.showArchived = show;
  ui.listFocusId = null;
  scheduleRender({ list: true });
  setTimeout(() => {
    const target = show ? $('[data-testid="archive-back"]') : $('[data-testid="archived-entry"]') || $('#conv-list .conv-item');
    if (target) target.focus({ preventScroll: true });
  }, 0);
}

const MUTE_CHOICES = [
  ['Mute for 8 hours', 'mute-8h', 8 * 3600 * 1000],
  ['Mute for 1 week', 'mute-1w', 7 * 24 * 3600 * 1000],
  ['Mute always', 'mute-forever', null],
];

/** Change my own settings of `conv` (all my devices follow through conversation_updated). */
async function changeSettings(conv, settings, done = '') {
  try {
    const data = await api.updateSettings(conv.conversation_id, settings);
    if (!store) return;
    store.upsertConversation(data, { authoritative: false });
    if (done) toast(done);
  } catch (err) {
    if (err.status === 401) return;
    toast(err.code === 'too_many_pinned' ? 'You can pin up to 5 chats.' : 'Could not change the chat. Try again.');
  }
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId, info: true });
}

/**
 * A chat's menu in the list (its ⌄ button, a right click, a long press, or the context
 * menu key): mute for a while or unmute, pin, archive, mark as read or unread.
 */
function openChatMenu(conv, { anchor = null, opener = null } = {}) {
  const menu = $('#chat-menu');
  const items = [];
  const act = (settings, done) => () => {
    closePopover();
    changeSettings(conv, settings, done);
  };
  if (store.isMuted(conv)) {
    items.push(menuItem('Unmute', 'chat-menu-unmute', ICONS.bell, act({ muted_until: null })));
  } else {
    for (const [label, testid, span] of MUTE_CHOICES) {
      const until = span ? new Date(Date.now() + span).toISOString() : 'forever';
      items.push(menuItem(label, testid, ICONS.bellOff, act({ muted_until: until })));
    }
  }
  items.push(conv.pinned_at
    ? menuItem('Unpin', 'chat-menu-pin', ICONS.pin, act({ pinned: false }))
    : menuItem('Pin to top', 'chat-menu-pin', ICONS.pin, act({ pinned: true })));
  items.push(conv.archived
    ? menuItem('Unarchive', 'chat-menu-archive', ICONS.archive, act({ archived: false }, 'Chat unarchived'))
    : menuItem('Archive', 'chat-menu-archive', ICONS.archive, act({ archived: true }, 'Chat archived')));
  if (conv.unread_count > 0 || conv.marked_unread) {
    items.push(menuItem('Mark as read', 'chat-menu-read', ICONS.read, () => {
      closePopover();
      if (conv.unread_count > 0) markAllRead(conv);
      if (conv.marked_unread) changeSettings(conv, { marked_unread: false });
    }));
  } else {
    items.push(menuItem('Mark as unread', 'chat-menu-unread', ICONS.unread, act({ marked_unread: true })));
  }
  const other = conv.type === 'direct' ? store.otherMember(conv) : null;
  if (other) {
    const blocked = ui.blocked.has(other.user_id);
    items.push(menuItem(blocked ? 'Unblock' : 'Block', 'chat-menu-block', ICONS.block, () => {
      closePopover();
      setBlocked(other.user_id, !blocked);
    }, blocked ? '' : 'danger-text'));
  }
  items.push(menuItem('Delete chat', 'chat-menu-delete', ICONS.trash, () => {
    closePopover();
    openClearChat(conv, opener);
  }, 'danger-text'));
  menu.replaceChildren(...items);
  openPopover(menu, { anchor, opener });
}

/** "Delete chat" (for me), confirmed first: the others keep the chat as it is. */
function openClearChat(conv, opener) {
  const dialog = $('#clear-dialog');
  const who = conv.type === 'group' ? 'The other members keep theirs, and you stay in the group.' : `${store.title(conv)} keeps theirs.`;
  $('#clear-text').textContent = `The messages of this chat will be deleted from all your devices. ${who} A new message brings the chat back.`;
  dialog.dataset.id = conv.conversation_id;
  ui.clearReturn = opener;
  dialog.showModal();
  $('#clear-confirm').focus();
}

async function confirmClearChat() {
  const dialog = $('#clear-dialog');
  const id = dialog.dataset.id;
  ui.clearReturn = null;
  closeDialog(dialog);
  const conv = id && store.convs.get(id);
  if (!conv) return;
  try {
    const data = await api.clearConversation(id);
    if (!store) return;
    store.upsertConversation(data, { authoritative: true });
  } catch (err) {
    if (err.status !== 401) toast(err.status === 0 ? 'Could not delete the chat: you are offline.' : 'Could not delete the chat. Try again.');
    return;
  }
  toast('Chat deleted');
  if (ui.activeId === id) {
    for (const info of ['#info-dialog', '#contact-dialog']) if ($(info).open) closeDialog($(info));
    navigate(null);
  }
  scheduleRender({ list: true, chat: true, info: true });
}

/** "Mark as read" from the list: the read pointer to the end, on every device. */
function markAllRead(conv) {
  const upTo = conv.last_seq;
  if (!(upTo > conv.last_read_seq)) return;
  advanceRead(conv, upTo);
  tellTabs({ kind: 'read', conversation_id: conv.conversation_id, up_to_seq: upTo });
  if (!(conn && conn.send({ type: 'read', conversation_id: conv.conversation_id, up_to_seq: upTo }))) {
    api.markRead(conv.conversation_id, upTo).catch(() => {});
  }
  conv.readSent = Math.max(conv.readSent || 0, upTo);
}

/** A long press on a chat in the list opens its menu (touch). */
function bindChatListGestures(list) {
  let press = null;
  let suppressClickUntil = 0;
  const cancel = () => {
    if (press) clearTimeout(press.timer);
    press = null;
  };
  list.addEventListener('pointerdown', (e) => {
    if (e.pointerType === 'mouse' || !e.isPrimary) return;
    const item = e.target.closest('.conv-item[data-conversation-id]');
    if (!item) return;
    cancel();
    press = { x: e.clientX, y: e.clientY };
    press.timer = setTimeout(() => {
      const conv = store && store.convs.get(item.dataset.conversationId);
      press = null;
      if (!conv) return;
      suppressClickUntil = Date.now() + 800;
      if (navigator.vibrate) navigator.vibrate(10);
      openChatMenu(conv, { anchor: item, opener: item });
    }, 500);
  });
  list.addEventListener('pointermove', (e) => {
    if (press && (Math.abs(e.clientX - press.x) > 10 || Math.abs(e.clientY - press.y) > 10)) cancel();
  });
  list.addEventListener('pointerup', cancel);
  list.addEventListener('pointercancel', cancel);
  list.addEventListener('click', (e) => {
    if (Date.now() < suppressClickUntil) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);
  list.addEventListener('contextmenu', (e) => {
    if (Date.now() < suppressClickUntil) e.preventDefault();
  }, true);
}

/** Arrow keys, Home and End move between chats; the focused one becomes the tab stop. */
function onChatListKey(event) {
  const item = event.target.closest && event.target.closest('.conv-item');
  if (!item || event.target !== item || event.altKey || event.ctrlKey || event.metaKey) return;
  const items = [...$('#conv-list').querySelectorAll('.conv-item')];
  const index = items.indexOf(item);
  let target;
  if (event.key === 'ArrowDown') target = index + 1;
  else if (event.key === 'ArrowUp') target = index - 1;
  else if (event.key === 'Home') target = 0;
  else if (event.key === 'End') target = items.length - 1;
  else return;
  event.preventDefault();
  if (target < 0) {
    $('#search').focus(); // up from the first chat: back to the search box
    return;
  }
  focusListItem(items[Math.min(items.length - 1, target)]);
}

function focusListItem(item) {
  for (const other of $('#conv-list').querySelectorAll('.conv-item')) if (other !== item) other.tabIndex = -1;
  item.tabIndex = 0;
  ui.listFocusId = item.dataset.conversationId;
  item.focus();
}

function previewText(conv, msg) {
  if (msg.content_type === 'system') return systemText(msg);
  if (msg.deleted) return msg.sender_id === store.me.user_id ? 'You: This message was deleted' : 'This message was deleted';
  const text = oneLine(msg.content) || attachmentsSummary(msg.attachments);
  if (msg.sender_id === store.me.user_id) return `You: ${text}`;
  if (conv.type === 'group') return `${firstName(store.userName(msg.sender_id))}: ${text}`;
  return text;
}

function oneLine(text) {
  return truncate(String(text || '').replace(/\s+/g, ' ').trim(), 140);
}

function firstName(name) {
  return String(name || '').split(/\s+/)[0];
}

function nameOrYou(userId, capital = true) {
  if (userId === store.me.user_id) return capital ? 'You' : 'you';
  ensureUser(userId);
  return store.userName(userId);
}

function joinNames(ids) {
  const names = ids.map((id) => nameOrYou(id, false));
  if (names.length <= 1) return names.join('');
  return `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

const DISAPPEARING_CHOICES = [[0, 'Off'], [86400, '24 hours'], [604800, '7 days'], [7776000, '90 days']];

function disappearingLabel(seconds) {
  const known = DISAPPEARING_CHOICES.find(([value]) => value === seconds);
  if (known) return known[1];
  if (seconds % 86400 === 0) return `${seconds / 86400} days`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hours`;
  return `${seconds} seconds`;
}

function systemText(msg) {
  const ev = msg.system;
  if (!ev) return msg.content || 'Update';
  switch (ev.event) {
    case 'group_created': return `${nameOrYou(ev.actor_id)} created the group “${ev.name}”`;
    case 'members_added': return `${nameOrYou(ev.actor_id)} added ${joinNames(ev.user_ids || [])}`;
    case 'member_removed': return `${nameOrYou(ev.actor_id)} removed ${nameOrYou(ev.user_id, false)}`;
    case 'member_left': return `${nameOrYou(ev.user_id)} left`;
    case 'role_changed': {
      const what = { owner: 'the owner', admin: 'an admin', member: 'a member' }[ev.role] || ev.role;
      return `${nameOrYou(ev.actor_id)} made ${nameOrYou(ev.user_id, false)} ${what}`;
    }
    case 'disappearing_changed':
      return ev.seconds
        ? `${nameOrYou(ev.actor_id)} turned on disappearing messages: new messages disappear after ${disappearingLabel(ev.seconds)}`
        : `${nameOrYou(ev.actor_id)} turned off disappearing messages`;
    case 'conversation_renamed':
      return ev.name
        ? `${nameOrYou(ev.actor_id)} renamed the group to “${ev.name}”`
        : `${nameOrYou(ev.actor_id)} changed the group description`;
    case 'avatar_changed':
      return ev.avatar_media_id
        ? `${nameOrYou(ev.actor_id)} changed the group picture`
        : `${nameOrYou(ev.actor_id)} removed the group picture`;
    default: return msg.content || 'Update';
  }
}

function typingUsers(conv) {
  const now = Date.now();
  const names = [];
  for (const [userId, until] of conv.typing) if (until > now) names.push(store.userName(userId));
  return names;
}

function renderChat({ bottom = false } = {}) {
  const conv = activeConv();
  $('#chat-placeholder').hidden = !!conv;
  $('#chat-main').hidden = !conv;
  if (!conv) return;
  renderHeader();
  const blocked = blockedOther(conv);
  $('.composer').hidden = !!blocked;
  const note = $('#chat-blocked');
  note.hidden = !blocked;
  if (blocked) $('#chat-blocked-text').textContent = `You blocked ${store.userName(blocked.user_id)}. Unblock to send messages.`;
  const composer = $('#composer');
  if (!composer.style.height) autoGrow(composer);
  renderMessages(conv, { bottom });
  renderTyping();
  renderHistoryStatus(conv);
}

function renderHeader() {
  const conv = activeConv();
  if (!conv) return;
  const title = store.title(conv);
  $('#chat-title').textContent = title;
  const other = conv.type === 'direct' ? store.otherMember(conv) : null;
  $('#chat-avatar').replaceChildren(convAvatar(conv, title));
  let subtitle = '';
  const sub = $('#chat-subtitle');
  sub.classList.remove('online');
  if (conv.type === 'group') {
    const count = conv.member_count || (conv.members || []).length;
    const online = (conv.members || []).filter((m) => m.user_id !== store.me.user_id && ui.presence.get(m.user_id)?.status === 'online').length;
    subtitle = `${count} member${count === 1 ? '' : 's'}${online ? `, ${online} online` : ''}`;
  } else if (other) {
    const p = ui.presence.get(other.user_id);
    const username = store.users.get(other.user_id)?.username;
    if (p && p.status === 'online') {
      subtitle = 'online';
      sub.classList.add('online');
    } else if (p && p.last_seen) subtitle = formatLastSeen(new Date(p.last_seen));
    else if (p) subtitle = 'last seen recently';
    else subtitle = username ? `@${username}` : '';
  }
  sub.textContent = subtitle;
  sub.dataset.presence = other ? (ui.presence.get(other.user_id)?.status || 'unknown') : '';
  $('#chat-info').hidden = conv.type !== 'group';
  $('#chat-head-info').title = conv.type === 'group' ? 'Group info' : 'Contact info';
}

/** Put a new incoming message of the open chat into the screen reader's live region. */
function announce(conv, msg) {
  const live = $('#live');
  const text = msg.content_type === 'system'
    ? systemText(msg)
    : `${store.userName(msg.sender_id)}: ${truncate(oneLine(msg.content), 300)}`;
  live.appendChild(h('p', { dir: 'auto', text }));
  while (live.childElementCount > 5) live.firstElementChild.remove();
}

function renderTyping() {
  const conv = activeConv();
  const el = $('#typing');
  if (!conv) { el.textContent = ''; return; }
  const names = typingUsers(conv);
  let text = '';
  if (names.length === 1) text = conv.type === 'group' ? `${firstName(names[0])} is typing…` : `${names[0]} is typing…`;
  else if (names.length === 2) text = `${firstName(names[0])} and ${firstName(names[1])} are typing…`;
  else if (names.length > 2) text = `${names.length} people are typing…`;
  el.textContent = text;
  el.classList.toggle('active', !!text);
}

function renderHistoryStatus(conv) {
  if (!conv || conv.conversation_id !== ui.activeId) return;
  const el = $('#history-status');
  if (conv.loadingHistory) el.textContent = 'Loading messages…';
  else if (conv.historyLoaded && !conv.hasMoreBefore) el.textContent = conv.msgs.size ? 'This is the beginning of the conversation.' : 'No messages yet. Say hello!';
  else el.textContent = '';
}

function renderMessages(conv, { bottom = false, keep = false } = {}) {
  const box = $('#messages');
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  const stored = store.sortedMessages(conv);
  const pendingItems = store.pendingMessages(conv.conversation_id);
  // Change entries and messages hidden for me take no row; a hole in what is loaded (after
  // a jump to a far message) gets a row that loads it.
  const all = [];
  let prevSeq = 0;
  const now = Date.now();
  let nextExpiry = Infinity;
  for (const m of stored) {
    if (prevSeq && m.seq > prevSeq + 1 && m.seq <= conv.syncedSeq) all.push({ kind: 'gap', after: prevSeq, before: m.seq });
    prevSeq = m.seq;
    if (isChange(m) || m.hidden) continue;
    // Disappearing messages leave the screen when they expire, without waiting for the server.
    const expiresAt = m.expires_at ? Date.parse(m.expires_at) : Infinity;
    if (expiresAt <= now) continue;
    nextExpiry = Math.min(nextExpiry, expiresAt);
    all.push({ kind: 'stored', m, date: new Date(m.created_at) });
  }
  scheduleExpiry(nextExpiry);
  for (const p of pendingItems) all.push({ kind: 'pending', m: p, date: new Date(p.created_at) });
  const myId = store.me.user_id;
  let lastOwnSeq = 0;
  for (const m of stored) {
    if (m.sender_id === myId && m.content_type !== 'system' && !isChange(m) && !m.hidden) lastOwnSeq = m.seq;
  }

  const nodes = [];
  const nextCache = new Map();
  let prevDay = null;
  let prev = null;
  let dividerPlaced = false;
  for (const item of all) {
    if (item.kind === 'gap') {
      const key = `g:${item.after}:${item.before}`;
      nodes.push(cached(key, key, () => gapEl(conv, item), nextCache));
      prev = null;
      continue;
    }
    const day = dayKey(item.date);
    if (day !== prevDay) {
      const key = `d:${day}`;
      const label = formatDay(item.date);
      if (!nextCache.has(key)) {
        nodes.push(cached(key, label, () => h('div', { class: 'day-sep', testid: 'day-separator', role: 'separator' }, h('span', { text: label })), nextCache));
      }
      prevDay = day;
      prev = null;
    }
    const m = item.m;
    if (!dividerPlaced && ui.unreadFrom !== null && item.kind === 'stored' && m.seq > ui.unreadFrom && m.sender_id !== myId) {
      nodes.push(cached('unread', 'unread', () => h('div', {
        class: 'unread-sep', testid: 'unread-divider', role: 'separator', 'aria-label': 'Unread messages',
      }, h('span', { text: 'Unread messages' })), nextCache));
      dividerPlaced = true;
      prev = null;
    }
    if (item.kind === 'stored' && m.content_type === 'system') {
      const text = systemText(m);
      nodes.push(cached(`s:${m.seq}`, text, () => h('div', {
        class: 'system-msg', testid: 'system-message', dataset: { seq: String(m.seq) }, tabindex: '-1',
        role: 'article', 'aria-label': text,
      }, h('span', { text, dir: 'auto' })), nextCache));
      prev = null;
      continue;
    }
    const own = item.kind === 'pending' || m.sender_id === myId;
    const senderId = item.kind === 'pending' ? myId : m.sender_id;
    const grouped = prev && prev.senderId === senderId && item.date - prev.date < 5 * 60 * 1000;
    let status;
    let readInfo = null;
    if (item.kind === 'pending') status = m.status === 'failed' ? 'failed' : 'sending';
    else if (own) {
      readInfo = store.messageStatus(conv, m.seq);
      status = readInfo.status;
    } else status = 'received';
    const showReadBy = own && item.kind === 'stored' && conv.type === 'group' && m.seq === lastOwnSeq;
    const replySeq = m.reply_to_seq;
    const quote = replySeq ? quoteFor(conv, replySeq) : null;
    const senderName = store.userName(senderId);
    const view = item.kind === 'stored' ? viewOf(conv, m) : { content: m.content, edited: false, deleted: false, reactions: [] };
    const tokens = view.deleted ? [] : mentionTokens(conv, m.mentions);
    const sig = JSON.stringify([view.content, view.edited, view.deleted, view.reactions, !!m.forwarded, tokens, status,
      (m.attachments || []).map((a) => a.media_id),
      readInfo && readInfo.read, readInfo && readInfo.total, showReadBy, grouped, senderName, quote && [quote.name, quote.text],
      conv.type === 'group' && !own ? store.avatarOf(senderId) : null,
      m.error, conv.type, item.kind === 'stored' && canEdit(conv, m), item.kind === 'stored' && m.seq === ui.highlightSeq]);
    const key = item.kind === 'pending' ? `p:${m.client_msg_id}` : `m:${m.seq}`;
    nodes.push(cached(key, sig, () => messageEl(conv, item, {
      own, status, readInfo, showReadBy, grouped, quote, senderName, senderId, view, tokens,
    }), nextCache));
    prev = { senderId, date: item.date };
  }
  ui.msgCache = nextCache;
  const container = $('#message-items');
  // Only touch the DOM when the sequence of nodes changed.
  const current = container.children;
  let same = current.length === nodes.length;
  for (let i = 0; same && i < nodes.length; i++) same = current[i] === nodes[i];
  const focusedRow = document.activeElement && container.contains(document.activeElement)
    ? document.activeElement.closest(ROW_SELECTOR)
    : null;
  if (!same) container.replaceChildren(...nodes);
  updateRoving(container, focusedRow);
  let positioned = false;
  if (ui.positionPending && (conv.historyLoaded || conv.historyError) && !conv.loadingHistory) {
    ui.positionPending = false;
    positioned = true;
    positionAtFirstUnread(box, container);
  } else if (bottom || (!keep && atBottom)) box.scrollTop = box.scrollHeight;
  if (!same || positioned) observeUnseen(conv);
  updateJumpButton();
  if (!same && container.querySelector('[data-testid="history-gap"]')) setTimeout(checkGaps, 0);
}

/** Scroll a freshly opened chat to its "Unread messages" divider, or else to the end. */
function positionAtFirstUnread(box, container) {
  const divider = container.querySelector('[data-testid="unread-divider"]');
  if (!divider) {
    box.scrollTop = box.scrollHeight;
    return;
  }
  box.scrollTop += divider.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
}

/**
 * The message list is one tab stop: exactly one row has tabindex 0 (the last one focused,
 * else the first unread, else the newest), the others -1. A row's buttons and links are
 * reachable by Tab only while focus is inside that row. A row rebuilt while it had focus
 * (its ticks changed, say) gets the focus back.
 */
function updateRoving(container, focusedRow) {
  const rows = container.querySelectorAll(ROW_SELECTOR);
  if (!rows.length) return;
  const byKey = (key) => (key ? [...rows].find((row) => row.dataset.key === key) : null);
  const divider = container.querySelector('[data-testid="unread-divider"]');
  let firstUnread = null;
  if (divider) {
    for (let el = divider.nextElementSibling; el && !firstUnread; el = el.nextElementSibling) {
      if (el.matches(ROW_SELECTOR)) firstUnread = el;
    }
  }
  const stop = byKey(ui.rovingKey) || firstUnread || rows[rows.length - 1];
  for (const row of rows) {
    const tabIndex = row === stop ? 0 : -1;
    if (row.tabIndex !== tabIndex) row.tabIndex = tabIndex;
  }
  if (focusedRow && !focusedRow.isConnected) {
    const again = byKey(focusedRow.dataset.key);
    if (again) again.focus({ preventScroll: true });
  }
}

function setRowControlsTabbable(row, tabbable) {
  // A row's toolbar is one stop of its own (arrow keys move inside it).
  for (const el of row.querySelectorAll('button, a[href]')) el.tabIndex = tabbable && !el.dataset.toolbarRest ? 0 : -1;
}

/** Make a row the message list's tab stop. */
function makeRowStop(row) {
  for (const other of $('#message-items').querySelectorAll(ROW_SELECTOR)) {
    if (other !== row && other.tabIndex === 0) other.tabIndex = -1;
  }
  row.tabIndex = 0;
  ui.rovingKey = row.dataset.key;
}

function focusRow(row) {
  makeRowStop(row);
  row.focus({ preventScroll: true });
  row.scrollIntoView({ block: 'nearest' });
}

function onMessageListKey(event) {
  const row = event.target.closest && event.target.closest(ROW_SELECTOR);
  if (!row || event.target !== row || event.altKey || event.ctrlKey || event.metaKey) return;
  if ((event.key === 'Enter' || event.key === 'ContextMenu' || (event.key === 'F10' && event.shiftKey)) && row.dataset.seq
    && row.matches('[data-testid="message"]')) {
    event.preventDefault();
    openMessageMenu(Number(row.dataset.seq), { anchor: row.querySelector('.bubble'), opener: row });
    return;
  }
  const rows = [...$('#message-items').querySelectorAll(ROW_SELECTOR)];
  const index = rows.indexOf(row);
  const moves = { ArrowUp: -1, ArrowDown: 1, PageUp: -10, PageDown: 10 };
  let target;
  if (event.key in moves) target = index + moves[event.key];
  else if (event.key === 'Home') target = 0;
  else if (event.key === 'End') target = rows.length - 1;
  else return;
  event.preventDefault();
  target = Math.max(0, Math.min(rows.length - 1, target));
  focusRow(rows[target]);
  const conv = activeConv();
  if (conv && target === 0 && event.key !== 'End') loadOlder(conv);
}

function cached(key, sig, build, nextCache) {
  const hit = ui.msgCache.get(key);
  if (hit && hit.sig === sig) {
    nextCache.set(key, hit);
    return hit.el;
  }
  const el = build();
  el.dataset.key = key;
  if (el.matches(ROW_SELECTOR)) setRowControlsTabbable(el, false);
  nextCache.set(key, { el, sig });
  return el;
}

/** Renders the open chat again when its next disappearing message expires. */
function scheduleExpiry(at) {
  clearTimeout(ui.expiryTimer);
  if (!Number.isFinite(at)) return;
  // setTimeout's limit is about 24.8 days; a later expiry is checked again then.
  const delay = Math.min(Math.max(at - Date.now(), 0) + 50, 2 ** 31 - 1);
  ui.expiryTimer = setTimeout(() => scheduleRender({ chat: true, list: true }), delay);
}

function quoteFor(conv, seq) {
  const msg = store.findBySeq(conv.conversation_id, seq) || (conv.quotes && conv.quotes.get(seq));
  if (!msg) {
    fetchQuote(conv, seq);
    return { name: '', text: 'Original message', seq };
  }
  let text = msg.content_type === 'system' ? systemText(msg) : oneLine(msg.content);
  if (msg.deleted) text = 'This message was deleted';
  else if (msg.hidden) text = 'Deleted for you';
  return { name: msg.sender_id === store.me.user_id ? 'You' : store.userName(msg.sender_id), text, seq };
}

function fetchQuote(conv, seq) {
  conv.quotes = conv.quotes || new Map();
  conv.quoteFetching = conv.quoteFetching || new Set();
  if (conv.quoteFetching.has(seq)) return;
  conv.quoteFetching.add(seq);
  api.messages(conv.conversation_id, { afterSeq: seq - 1, limit: 1 })
    .then((page) => {
      const msg = (page.messages || []).find((m) => m.seq === seq);
      if (msg) {
        conv.quotes.set(seq, msg);
        scheduleRender({ chat: conv.conversation_id === ui.activeId });
      }
    })
    .catch(() => {});
}

const TICK_LABELS = { sending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent' };

/**
 * The status glyph of one of my messages. Each status has its own shape, so they differ
 * without colour: a clock (sending), one tick (sent), two ticks (delivered), two filled
 * discs with ticks cut out (read), "!" (not sent).
 */
function ticksEl(status, small = false) {
  const ns = 'http://www.w3.org/2000/svg';
  const wrap = document.createElement('span');
  wrap.className = `ticks ticks-${status}${small ? ' small' : ''}`;
  wrap.dataset.testid = 'message-ticks';
  wrap.dataset.status = status;
  wrap.setAttribute('role', 'img');
  wrap.setAttribute('aria-label', TICK_LABELS[status] || status);
  wrap.title = TICK_LABELS[status] || status;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', { delivered: '0 0 20 12', read: '0 0 24 12' }[status] || '0 0 14 12');
  svg.setAttribute('aria-hidden', 'true');
  const path = (d, cls) => {
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    if (cls) p.setAttribute('class', cls);
    svg.appendChild(p);
  };
  const disc = (cx) => {
    const c = document.createElementNS(ns, 'circle');
    c.setAttribute('cx', String(cx)); c.setAttribute('cy', '6'); c.setAttribute('r', '5.6');
    c.setAttribute('class', 'disc');
    svg.appendChild(c);
  };
  if (status === 'sending') {
    const c = document.createElementNS(ns, 'circle');
    c.setAttribute('cx', '7'); c.setAttribute('cy', '6'); c.setAttribute('r', '4.5');
    svg.appendChild(c);
    path('M7 3.5V6l1.8 1.2');
  } else if (status === 'failed') {
    path('M7 1.5v6M7 9.5v1');
  } else if (status === 'sent') {
    path('M1.5 6.5 5 10l7.5-8');
  } else if (status === 'delivered') {
    path('M1.5 6.5 5 10l7.5-8');
    path('M8.5 9.2 9.3 10l7.5-8');
  } else {
    disc(6);
    disc(18);
    path('M3.4 6.2 5.3 8.1 8.7 4.3', 'cut');
    path('M15.4 6.2 17.3 8.1 20.7 4.3', 'cut');
  }
  wrap.appendChild(svg);
  return wrap;
}

function messageEl(conv, item, opts) {
  const m = item.m;
  const { own, status, readInfo, showReadBy, grouped, quote, senderName, senderId, view, tokens } = opts;
  const isGroup = conv.type === 'group';
  const stored = item.kind === 'stored';
  const content = view.deleted
    ? h('div', { class: 'msg-content deleted', testid: 'message-content', dataset: { deleted: 'true' } },
      icon(ICONS.block), h('span', { text: 'This message was deleted' }))
    : view.content || !(m.attachments && m.attachments.length)
      ? h('div', { class: 'msg-content', testid: 'message-content', dir: 'auto' }, richText(view.content || '', tokens))
      : null;
  const attached = !view.deleted && m.attachments && m.attachments.length
    ? attachmentsEl(m.attachments, { media: mediaClient, onOpen: (photos, index) => openLightbox(photos, index, mediaClient) })
    : null;
  const time = h('time', {
    class: 'msg-time', testid: 'message-time', datetime: item.date.toISOString(),
    title: formatDateTime(item.date), text: formatTime(item.date),
  });
  const edited = view.edited && !view.deleted
    ? h('span', {
      class: 'msg-edited', testid: 'edited-label',
      title: m.edited_at ? `Edited ${formatDateTime(new Date(m.edited_at))}` : 'Edited', text: 'edited',
    })
    : null;
  const expiring = m.expires_at && !view.deleted
    ? h('span', {
      class: 'msg-expiry', testid: 'expiry-mark', title: `Disappears ${formatDateTime(new Date(m.expires_at))}`,
    }, icon(ICONS.timer))
    : null;
  const meta = h('span', { class: 'msg-meta' }, expiring, edited, time, own && !view.deleted ? ticksEl(status) : null);
  if (own && readInfo && isGroup) {
    meta.title = `Read by ${readInfo.read} of ${readInfo.total}, delivered to ${readInfo.delivered} of ${readInfo.total}`;
  }
  const quoteEl = quote && !view.deleted ? h('button', {
    type: 'button', class: 'quote', testid: 'reply-quote', dataset: { seq: String(quote.seq) },
    'aria-label': `Go to the quoted message${quote.name ? ` from ${quote.name}` : ''}: ${quote.text}`,
    onclick: () => jumpTo(quote.seq),
  }, quote.name ? h('span', { class: 'quote-name', dir: 'auto', text: quote.name }) : null,
  h('span', { class: 'quote-text', dir: 'auto', text: quote.text })) : null;
  const forwarded = m.forwarded && !view.deleted
    ? h('div', { class: 'msg-forwarded', testid: 'forwarded-label' }, icon(ICONS.forward), h('span', { text: 'Forwarded' }))
    : null;
  const bubble = h('div', { class: 'bubble' },
    isGroup && !own && !grouped ? h('div', {
      class: 'msg-sender', testid: 'message-sender', dir: 'auto', text: senderName, style: { color: colorFor(senderId) },
    }) : null,
    forwarded,
    quoteEl,
    attached,
    content,
    meta);
  const toolbar = stored ? messageToolbar(conv, m, view) : null;
  const reactions = stored && view.reactions.length ? reactionsEl(conv, m, view) : null;
  const failed = item.kind === 'pending' && status === 'failed'
    ? h('div', { class: 'msg-failed', testid: 'message-failed' },
      h('span', { text: m.error || 'Not sent.' }), ' ',
      h('button', { type: 'button', class: 'link-btn', text: 'Retry', onclick: () => retryFailed(m.client_msg_id) }), ' · ',
      h('button', { type: 'button', class: 'link-btn', text: 'Delete', onclick: () => deleteFailed(m.client_msg_id) }))
    : null;
  // What a screen reader says when the row gets the focus (arrow keys in the list).
  const text = view.deleted ? 'This message was deleted'
    : [truncate(oneLine(view.content), 300), attachmentsSummary(m.attachments)].filter(Boolean).join('. ');
  const reactionText = view.reactions.length
    ? ` Reactions: ${view.reactions.map((r) => `${r.emoji} ${r.count}${r.me ? ' including yours' : ''}`).join(', ')}.`
    : '';
  const label = `${own ? 'You' : senderName}${forwarded ? ', forwarded' : ''}${quote ? `, replying to ${quote.name || 'a message'}` : ''}: `
    + `${text}. ${formatTime(item.date)}${edited ? ', edited' : ''}${own && !view.deleted ? `, ${TICK_LABELS[status] || status}` : ''}.${reactionText}`;
  const row = h('div', {
    class: `msg ${own ? 'own' : 'other'}${grouped ? ' grouped' : ''}${isGroup ? ' in-group' : ''}${view.deleted ? ' is-deleted' : ''}`
      + `${attached ? ' has-media' : ''}`
      + `${stored && m.seq === ui.highlightSeq ? ' highlighted' : ''}`,
    testid: 'message',
    role: 'article',
    'aria-label': label,
    tabindex: '-1',
    dataset: {
      seq: stored ? String(m.seq) : '',
      status,
      own: String(own),
      sender: senderName,
      clientMsgId: m.client_msg_id || '',
      deleted: String(!!view.deleted),
      edited: String(!!edited),
    },
  },
  isGroup && !own ? (grouped ? h('div', { class: 'avatar-spacer' }) : userAvatar(senderId, senderName, 'tiny')) : null,
  h('div', { class: 'msg-col' },
    h('div', { class: 'bubble-row' }, toolbar, bubble),
    reactions,
    failed,
    showReadBy && readInfo ? h('div', {
      class: `read-by${readInfo.read >= readInfo.total && readInfo.total > 0 ? ' all' : ''}`,
      testid: 'read-by', dataset: { read: String(readInfo.read), total: String(readInfo.total) },
      text: `Read by ${readInfo.read} of ${readInfo.total}`,
    }) : null));
  return row;
}


// --------------------------------------------------------------------------- message state

/**
 * How a message looks now: its stored state with my changes still waiting to be sent on
 * top (a reaction, an edit, a delete show at once; a refused one is undone).
 */
function viewOf(conv, m) {
  const view = {
    content: m.content || '', edited: !!m.edited_at, deleted: !!m.deleted, reactions: m.reactions || [], pending: false,
  };
  if (view.deleted) {
    view.reactions = [];
    return view;
  }
  for (const change of store.pendingChanges(conv.conversation_id, m.seq)) {
    view.pending = true;
    if (change.content_type === 'delete') {
      view.deleted = true;
      view.content = '';
      view.reactions = [];
      break;
    }
    if (change.content_type === 'edit') {
      view.content = change.content;
      view.edited = true;
    } else if (change.content_type === 'reaction') {
      const counts = view.reactions.map((r) => ({ ...r }));
      const old = counts.find((r) => r.me);
      if (old) {
        old.count -= 1;
        old.me = false;
      }
      if (change.content) {
        const hit = counts.find((r) => r.emoji === change.content);
        if (hit) {
          hit.count += 1;
          hit.me = true;
        } else counts.push({ emoji: change.content, count: 1, me: true });
      }
      view.reactions = counts.filter((r) => r.count > 0);
    }
  }
  return view;
}

/** The words that mark a message's mentions in its text: `@username` (and `@Display Name`). */
function mentionTokens(conv, ids) {
  if (!ids || !ids.length) return [];
  const tokens = [];
  for (const id of ids) {
    const member = (conv.members || []).find((m) => m.user_id === id);
    const user = store.users.get(id) || {};
    const username = (member && member.username) || user.username;
    const me = id === store.me.user_id;
    const name = (member && member.display_name) || user.display_name;
    if (username) tokens.push({ text: `@${username}`, userId: id, me });
    if (name && name !== username) tokens.push({ text: `@${name}`, userId: id, me });
    if (!username && !name) ensureUser(id);
  }
  return tokens;
}

function isOrdinary(m) {
  return !!m && !isChange(m) && m.content_type !== 'system' && !m.hidden;
}

function withinWindow(m) {
  return Date.now() - Date.parse(m.created_at) < EDIT_WINDOW_MS;
}

/** My own message, not deleted, still within the edit window. */
function canEdit(conv, m) {
  return isOrdinary(m) && m.sender_id === store.me.user_id && !viewOf(conv, m).deleted && withinWindow(m);
}

/** The sender within the window, or a group's admin or owner at any time. */
function canDeleteForEveryone(conv, m) {
  if (!isOrdinary(m) || viewOf(conv, m).deleted) return false;
  if (m.sender_id === store.me.user_id && withinWindow(m)) return true;
  const role = store.myRole(conv);
  return conv.type === 'group' && (role === 'admin' || role === 'owner');
}

const ICONS = {
  timer: 'M15 1H9v2h6V1Zm-4 13h2V8h-2v6Zm8-6.6 1.4-1.4A11 11 0 0 0 19 4.6l-1.4 1.4A9 9 0 1 0 21 13a8.9 8.9 0 0 0-2-5.6ZM12 20a7 7 0 1 1 7-7 7 7 0 0 1-7 7Z',
  reply: 'M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11Z',
  smile: 'M12 2a10 10 0 1 0 10 10A10 10 0 0 0 12 2Zm0 18a8 8 0 1 1 8-8 8 8 0 0 1-8 8Zm-3.5-9A1.5 1.5 0 1 0 7 9.5 1.5 1.5 0 0 0 8.5 11Zm7 0A1.5 1.5 0 1 0 14 9.5a1.5 1.5 0 0 0 1.5 1.5ZM12 17.5a5.5 5.5 0 0 0 5.1-3.5H6.9a5.5 5.5 0 0 0 5.1 3.5Z',
  more: 'M6 10a2 2 0 1 0 2 2 2 2 0 0 0-2-2Zm6 0a2 2 0 1 0 2 2 2 2 0 0 0-2-2Zm6 0a2 2 0 1 0 2 2 2 2 0 0 0-2-2Z',
  copy: 'M16 1H4a2 2 0 0 0-2 2v14h2V3h12V1Zm3 4H8a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h11a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2Zm0 16H8V7h11v14Z',
  edit: 'M3 17.2V21h3.8l11-11.1-3.7-3.7L3 17.2Zm17.7-10.1a1 1 0 0 0 0-1.4l-2.3-2.3a1 1 0 0 0-1.4 0l-1.8 1.8 3.7 3.7 1.8-1.8Z',
  forward: 'M14 9V5l7 7-7 7v-4.1c-5 0-8.5 1.6-11 5.1 1-5 4-10 11-11Z',
  trash: 'M6 19a2 2 0 0 0 2 2h8a2 2 0 0 0 2-2V7H6v12ZM19 4h-3.5l-1-1h-5l-1 1H5v2h14V4Z',
  people: 'M16 11a3 3 0 1 0-3-3 3 3 0 0 0 3 3Zm-8 0a3 3 0 1 0-3-3 3 3 0 0 0 3 3Zm0 2c-2.3 0-7 1.2-7 3.5V19h14v-2.5C15 14.2 10.3 13 8 13Zm8 0c-.3 0-.7 0-1.1.1a4.3 4.3 0 0 1 2.1 3.4V19h6v-2.5c0-2.3-4.7-3.5-7-3.5Z',
  plus: 'M19 13h-6v6h-2v-6H5v-2h6V5h2v6h6v2Z',
  block: 'M12 2a10 10 0 1 0 10 10A10 10 0 0 0 12 2Zm0 2a8 8 0 0 1 6.3 12.9L7.1 5.7A8 8 0 0 1 12 4Zm0 16a8 8 0 0 1-6.3-12.9l11.2 11.2A8 8 0 0 1 12 20Z',
  bell: 'M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2Zm6-6v-5c0-3.1-1.6-5.6-4.5-6.3V4a1.5 1.5 0 0 0-3 0v.7C7.6 5.4 6 7.9 6 11v5l-2 2v1h16v-1l-2-2Z',
  bellOff: 'M20 18.7 5.3 4 4 5.3l3 3A6.9 6.9 0 0 0 6 11v5l-2 2v1h13.7l1 1 1.3-1.3ZM12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2Zm6-7.2V11c0-3.1-1.6-5.6-4.5-6.3V4a1.5 1.5 0 0 0-3 0v.7c-.5.1-1 .3-1.4.5L18 14.8Z',
  pin: 'M16 3v2h-1v6l2 3v2h-4.2v5h-1.6v-5H7v-2l2-3V5H8V3h8Z',
  archive: 'M20.5 5.2 19.1 3.5A1.5 1.5 0 0 0 18 3H6a1.5 1.5 0 0 0-1.2.5L3.5 5.2A2 2 0 0 0 3 6.5V19a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2V6.5a2 2 0 0 0-.5-1.3ZM12 17.5 6.5 12H10v-2h4v2h3.5L12 17.5ZM5.1 5l.8-1h12l.9 1H5.1Z',
  read: 'M18 7l-1.4-1.4-6.3 6.3 1.4 1.4L18 7Zm4.2-1.4L11.7 16.2 7.5 12l-1.4 1.4 5.6 5.6 12-12-1.5-1.4ZM.4 13.4 6 19l1.4-1.4L1.8 12 .4 13.4Z',
  unread: 'M20 6.5a3.5 3.5 0 1 1-3.5-3.5A3.5 3.5 0 0 1 20 6.5ZM18 10.9V18H4V8h8.1A5.5 5.5 0 0 1 12 6H4a2 2 0 0 0-2 2v10a2 2 0 0 0 2 2h14a2 2 0 0 0 2-2v-8a5.5 5.5 0 0 1-2 .9Z',
  chevron: 'M7.4 8.6 12 13.2l4.6-4.6L18 10l-6 6-6-6 1.4-1.4Z',
  back: 'M20 11H7.8l5.6-5.6L12 4l-8 8 8 8 1.4-1.4L7.8 13H20v-2Z',
};

function icon(d) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', 'icon');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', d);
  svg.appendChild(p);
  return svg;
}

/**
 * The actions by a message, shown on hover and focus: reply, a few quick reactions, more
 * reactions, and the menu. One tab stop (reply); the arrow keys move inside.
 */
function messageToolbar(conv, m, view) {
  const buttons = [];
  const rest = { toolbarRest: '1' };
  if (!view.deleted) {
    buttons.push(h('button', {
      type: 'button', class: 'msg-action', testid: 'reply-button', title: 'Reply', 'aria-label': 'Reply',
      onclick: () => startReply(conv, m),
    }, icon(ICONS.reply)));
    const mine = (view.reactions.find((r) => r.me) || {}).emoji;
    for (const emoji of QUICK_REACTIONS.slice(0, 3)) {
      buttons.push(h('button', {
        type: 'button', class: 'msg-action emoji', testid: 'toolbar-reaction', dataset: { emoji, ...rest },
        title: `React with ${emojiName(emoji)}`, 'aria-label': `React with ${emojiName(emoji)}`, 'aria-pressed': String(mine === emoji),
        text: emoji, onclick: () => toggleReaction(conv, m.seq, emoji),
      }));
    }
    buttons.push(h('button', {
      type: 'button', class: 'msg-action', testid: 'react-button', dataset: rest, title: 'Add a reaction', 'aria-label': 'Add a reaction',
      'aria-haspopup': 'dialog', 'aria-expanded': 'false',
      onclick: (e) => { if (!justClosedBy(e.currentTarget)) openPickerFor(conv, m.seq, { anchor: e.currentTarget, opener: e.currentTarget }); },
    }, icon(ICONS.smile)));
  }
  buttons.push(h('button', {
    type: 'button', class: 'msg-action', testid: 'message-menu-button', dataset: view.deleted ? {} : rest,
    title: 'More actions', 'aria-label': 'More actions', 'aria-haspopup': 'menu', 'aria-expanded': 'false',
    onclick: (e) => { if (!justClosedBy(e.currentTarget)) openMessageMenu(m.seq, { anchor: e.currentTarget, opener: e.currentTarget }); },
  }, icon(ICONS.more)));
  return h('div', {
    class: 'msg-actions', testid: 'message-actions', role: 'toolbar', 'aria-label': 'Message actions',
    onkeydown: onToolbarKey,
  }, buttons);
}

function onToolbarKey(event) {
  const keys = { ArrowRight: 1, ArrowLeft: -1, Home: -Infinity, End: Infinity };
  if (!(event.key in keys)) return;
  const buttons = [...event.currentTarget.querySelectorAll('button')];
  const index = buttons.indexOf(document.activeElement);
  if (index < 0) return;
  event.preventDefault();
  event.stopPropagation();
  const step = keys[event.key];
  let next;
  if (step === -Infinity) next = 0;
  else if (step === Infinity) next = buttons.length - 1;
  else next = (index + step + buttons.length) % buttons.length;
  // The focused one becomes the toolbar's tab stop.
  for (const b of buttons) {
    if (b === buttons[next]) delete b.dataset.toolbarRest;
    else b.dataset.toolbarRest = '1';
    b.tabIndex = b === buttons[next] ? 0 : -1;
  }
  buttons[next].focus();
}

/** Reaction counts under a bubble: mine highlighted (a click takes it back), others show who. */
function reactionsEl(conv, m, view) {
  return h('div', { class: 'reactions', testid: 'reactions', role: 'group', 'aria-label': 'Reactions' },
    view.reactions.map((r) => h('button', {
      type: 'button', class: `reaction-chip${r.me ? ' mine' : ''}`, testid: 'reaction-chip',
      dataset: { emoji: r.emoji, count: String(r.count), mine: String(!!r.me) },
      'aria-pressed': String(!!r.me),
      'aria-label': `${emojiName(r.emoji)}: ${r.count} ${r.count === 1 ? 'reaction' : 'reactions'}${r.me ? ', including yours. Remove yours' : '. See who reacted'}`,
      title: r.me ? 'You reacted. Click to take it back' : 'See who reacted',
      onclick: (e) => {
        if (r.me) toggleReaction(conv, m.seq, r.emoji);
        else if (!justClosedBy(e.currentTarget)) openWhoReacted(conv, m.seq, { anchor: e.currentTarget, opener: e.currentTarget, emoji: r.emoji });
      },
      oncontextmenu: (e) => {
        e.preventDefault();
        e.stopPropagation();
        openWhoReacted(conv, m.seq, { anchor: e.currentTarget, opener: e.currentTarget, emoji: r.emoji });
      },
    }, h('span', { class: 'reaction-emoji', 'aria-hidden': 'true', text: r.emoji }),
    h('span', { class: 'reaction-count', 'aria-hidden': 'true', text: String(r.count) }))));
}

/** A hole in the loaded history (after jumping to a far message): loads itself when near. */
function gapEl(conv, gap) {
  return h('div', {
    class: 'history-gap', testid: 'history-gap', dataset: { after: String(gap.after), before: String(gap.before) },
  }, h('button', {
    type: 'button', class: 'link-btn', tabindex: '-1', text: 'Load more messages',
    onclick: () => loadGap(conv, gap, 'down'),
  }));
}

/**
 * Load a hole that is on screen or nearly (on scroll, after rendering): seen in the upper
 * half, the reader comes from the newer side, so its newer end is loaded; else its older end.
 */
function checkGaps() {
  const conv = activeConv();
  if (!conv || conv.gapLoading) return;
  const box = $('#messages');
  const view = box.getBoundingClientRect();
  for (const el of $('#message-items').querySelectorAll('[data-testid="history-gap"]')) {
    const rect = el.getBoundingClientRect();
    if (rect.bottom < view.top - 300 || rect.top > view.bottom + 300) continue;
    const gap = { after: Number(el.dataset.after), before: Number(el.dataset.before) };
    loadGap(conv, gap, rect.top < view.top + view.height / 2 ? 'up' : 'down');
    return;
  }
}

/** Load part of a hole: 'down' the messages after its older side, 'up' those before its newer side. */
async function loadGap(conv, gap, direction) {
  if (conv.gapLoading || Date.now() - (conv.gapFailedAt || 0) < 2000) return;
  conv.gapLoading = true;
  const box = $('#messages');
  const anchorRow = direction === 'up' ? messageRow(gap.before) : null;
  const anchorTop = anchorRow ? anchorRow.getBoundingClientRect().top : 0;
  try {
    const version = conv.last_seq;
    const page = direction === 'up'
      ? await api.messages(conv.conversation_id, { beforeSeq: gap.before, limit: PAGE })
      : await api.messages(conv.conversation_id, { afterSeq: gap.after, limit: PAGE });
    if (!store) return;
    for (const msg of page.messages || []) store.addMessage(msg, { version });
    if (conv.conversation_id === ui.activeId) {
      renderMessages(conv, { keep: true });
      const again = anchorRow ? messageRow(gap.before) : null;
      if (again) box.scrollTop += again.getBoundingClientRect().top - anchorTop;
    }
  } catch {
    conv.gapFailedAt = Date.now(); // tried again on the next scroll
    return;
  } finally {
    conv.gapLoading = false;
  }
  setTimeout(checkGaps, 50); // still on screen: go on
}

function messageRow(seq) {
  return [...$('#message-items').querySelectorAll(ROW_SELECTOR)].find((row) => row.dataset.seq === String(seq)) || null;
}

/**
 * Scroll to a message of the open chat (a quote's original, a search hit), loading history
 * back to it if needed. With `around` (search), a message far back or in a hole is loaded
 * with the messages around it (`before_seq`/`after_seq`) instead of every page up to it,
 * and stays highlighted for a moment.
 */
async function jumpTo(seq, { around = false } = {}) {
  const conv = activeConv();
  if (!conv) return;
  let el = messageRow(seq);
  const min = store.minSeq(conv) || Infinity;
  const far = !conv.msgs.has(seq) && (seq < min - JUMP_BACKFILL_MAX || (seq > min && seq <= store.maxSeq(conv)));
  if (!el && around && conv.historyLoaded && far) {
    const id = conv.conversation_id;
    for (let waited = 0; conv.loadingHistory && waited < 100; waited++) await sleep(50);
    if (conv.loadingHistory || ui.activeId !== id) return;
    conv.loadingHistory = true;
    renderHistoryStatus(conv);
    try {
      await loadAround(conv, seq);
    } catch {
      /* said below */
    } finally {
      conv.loadingHistory = false;
    }
    if (!store || ui.activeId !== id) return;
    renderMessages(conv, { keep: true });
    renderHistoryStatus(conv);
    el = messageRow(seq);
  }
  if (!el && conv.historyLoaded && (store.minSeq(conv) || Infinity) > seq && conv.hasMoreBefore) {
    const id = conv.conversation_id;
    // Wait for a page that is already on its way, then load back to the message.
    for (let waited = 0; conv.loadingHistory && waited < 100; waited++) await sleep(50);
    if (conv.loadingHistory || ui.activeId !== id) return;
    conv.loadingHistory = true;
    renderHistoryStatus(conv);
    let loaded = false;
    try {
      loaded = await loadBackTo(conv, seq);
    } catch {
      loaded = false;
    } finally {
      conv.loadingHistory = false;
    }
    if (!store || ui.activeId !== id) return;
    renderMessages(conv, { keep: true });
    renderHistoryStatus(conv);
    el = messageRow(seq);
    if (!el && !loaded) {
      toast('Could not load that message. Try again in a moment.');
      return;
    }
  }
  if (!el) {
    toast('That message is no longer available.');
    return;
  }
  el.scrollIntoView({ block: 'center' });
  if (around) highlight(seq);
  else {
    el.classList.add('flash');
    setTimeout(() => el.classList.remove('flash'), 1200);
  }
  focusRow(el);
}

/** A found message keeps a highlight for a few seconds (it survives re-rendering). */
function highlight(seq) {
  clearTimeout(ui.highlightTimer);
  ui.highlightSeq = seq;
  const row = messageRow(seq);
  if (row) row.classList.add('highlighted');
  ui.highlightTimer = setTimeout(() => {
    ui.highlightSeq = null;
    const current = messageRow(seq);
    if (current) current.classList.remove('highlighted');
  }, 4000);
}

/** The messages around `seq`, which then sit apart from the rest, with a hole between. */
async function loadAround(conv, seq) {
  const version = conv.last_seq;
  const [older, newer] = await Promise.all([
    api.messages(conv.conversation_id, { beforeSeq: seq + 1, limit: 25 }),
    api.messages(conv.conversation_id, { afterSeq: seq, limit: 25 }),
  ]);
  if (!store) return;
  const wasMin = store.minSeq(conv) || Infinity;
  for (const msg of [...(older.messages || []), ...(newer.messages || [])]) store.addMessage(msg, { version });
  if ((store.minSeq(conv) || Infinity) < wasMin) {
    conv.hasMoreBefore = !!older.has_more && (store.minSeq(conv) || 1) > 1;
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function retryFailed(clientMsgId) {
  const item = store.updateOutbox(clientMsgId, { status: 'sending', error: null, sentAt: 0 });
  if (item) sendQueue.pump(item.conversation_id);
  setBanner();
  scheduleRender({ chat: true, list: true });
}

function deleteFailed(clientMsgId) {
  store.dropOutbox(clientMsgId);
  scheduleRender({ chat: true, list: true });
}

function setReply(reply) {
  ui.replyTo = reply;
  const bar = $('#reply-bar');
  bar.hidden = !reply;
  if (reply) {
    $('#reply-bar-name').textContent = `Replying to ${reply.sender_id === store.me.user_id ? 'yourself' : store.userName(reply.sender_id)}`;
    $('#reply-bar-snippet').textContent = reply.text;
    $('#composer').focus();
  }
}

function updateJumpButton() {
  const box = $('#messages');
  $('#jump').hidden = box.scrollHeight - box.scrollTop - box.clientHeight < 200;
}

// --------------------------------------------------------------------------- message actions

function startReply(conv, m) {
  if (ui.editing) setEditing(null);
  setReply({ seq: m.seq, sender_id: m.sender_id, text: oneLine(viewOf(conv, m).content) });
}

/** React with `emoji`, or take my reaction back when it is that one already. */
function toggleReaction(conv, seq, emoji) {
  const m = conv.msgs.get(seq);
  if (!isOrdinary(m)) return;
  const view = viewOf(conv, m);
  if (view.deleted) return;
  const mine = view.reactions.find((r) => r.me);
  sendChange(conv, 'reaction', seq, mine && mine.emoji === emoji ? '' : emoji);
}

function openPickerFor(conv, seq, { anchor, opener = null, replace = false }) {
  // By the message (bubble and reactions) when opened from its toolbar, so that it stays in sight.
  const row = messageRow(seq);
  const bubble = row && row.querySelector('.msg-col');
  const by = anchor && anchor.getBoundingClientRect && bubble && row.contains(anchor) ? bubble : anchor || bubble;
  openEmojiPicker({
    anchor: by, opener, replace, label: 'Choose a reaction',
    onChoose: (emoji) => toggleReaction(conv, seq, emoji),
  });
}

function menuItem(label, testid, path, onSelect, extraClass = '') {
  return h('button', {
    type: 'button', role: 'menuitem', class: `menu-item ${extraClass}`.trim(), testid, tabindex: '-1', onclick: onSelect,
  }, icon(path), h('span', { text: label }));
}

/**
 * The menu of one message (the ⋯ button, a right click, a long press, Enter or the context
 * menu key on a focused message): quick reactions, reply, copy, edit, forward, who
 * reacted, delete.
 */
function openMessageMenu(seq, { anchor = null, opener = null } = {}) {
  const conv = activeConv();
  const m = conv && conv.msgs.get(seq);
  if (!isOrdinary(m)) return;
  const view = viewOf(conv, m);
  const row = messageRow(seq);
  const menu = $('#message-menu');
  const items = [];
  const again = () => messageRow(seq) || row;
  if (!view.deleted) {
    const mine = (view.reactions.find((r) => r.me) || {}).emoji;
    items.push(h('div', { class: 'menu-reactions', role: 'group', 'aria-label': 'React' },
      QUICK_REACTIONS.map((emoji) => h('button', {
        type: 'button', role: 'menuitemcheckbox', class: `menu-emoji${mine === emoji ? ' mine' : ''}`, testid: 'quick-reaction',
        dataset: { emoji }, tabindex: '-1', 'aria-checked': String(mine === emoji), title: emojiName(emoji),
        'aria-label': `React with ${emojiName(emoji)}`, text: emoji,
        onclick: () => {
          closePopover();
          toggleReaction(conv, seq, emoji);
        },
      })),
      h('button', {
        type: 'button', role: 'menuitem', class: 'menu-emoji more', testid: 'quick-reaction-more', tabindex: '-1',
        title: 'More reactions', 'aria-label': 'More reactions', 'aria-haspopup': 'dialog',
        onclick: () => openPickerFor(conv, seq, { anchor: anchor || again(), replace: true }),
      }, icon(ICONS.plus))));
    items.push(menuItem('Reply', 'menu-reply', ICONS.reply, () => {
      closePopover({ restoreFocus: false });
      startReply(conv, m);
    }));
    if (view.content) {
      items.push(menuItem('Copy text', 'menu-copy', ICONS.copy, () => {
        closePopover();
        copyText(view.content);
      }));
    }
    if (canEdit(conv, m)) {
      items.push(menuItem('Edit', 'menu-edit', ICONS.edit, () => {
        closePopover({ restoreFocus: false });
        startEdit(conv, m);
      }));
    }
    items.push(menuItem('Forward', 'menu-forward', ICONS.forward, () => {
      closePopover({ restoreFocus: false });
      openForward(conv, m, again());
    }));
    if (view.reactions.length) {
      items.push(menuItem('See who reacted', 'menu-reactions', ICONS.people, () => {
        openWhoReacted(conv, seq, { anchor: anchor || again(), replace: true });
      }));
    }
  }
  items.push(menuItem('Delete…', 'menu-delete', ICONS.trash, () => {
    closePopover({ restoreFocus: false });
    openDelete(conv, m, again());
  }, 'danger-text'));
  menu.replaceChildren(...items);
  menu.dataset.seq = String(seq);
  // By the message (bubble and reactions, not the button over it), so that it stays in sight.
  const bubble = row && row.querySelector('.msg-col');
  const by = anchor && anchor.getBoundingClientRect && bubble && row.contains(anchor) ? bubble : anchor || bubble;
  if (row) row.classList.add('menu-target');
  openPopover(menu, {
    anchor: by,
    opener: opener || row,
    onClose: () => { for (const el of document.querySelectorAll('.menu-target')) el.classList.remove('menu-target'); },
  });
}

/** Who reacted with what (`GET …/reactions`), names from the members; add mine from here. */
async function openWhoReacted(conv, seq, { anchor = null, opener = null, emoji = null, replace = false } = {}) {
  const box = $('#reactions-popover');
  const title = h('h2', { id: 'reactions-title', class: 'popover-title', text: 'Reactions' });
  const close = h('button', {
    type: 'button', class: 'icon-btn small', 'aria-label': 'Close', testid: 'reactions-close', onclick: () => closePopover(),
  }, icon('M19 6.4 17.6 5 12 10.6 6.4 5 5 6.4l5.6 5.6L5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6Z'));
  const list = h('div', { class: 'who-list', testid: 'reactions-list', role: 'status', text: 'Loading…' });
  box.replaceChildren(h('div', { class: 'popover-head' }, title, close), list);
  if (replace) replacePopover(box, { anchor, focus: close });
  else openPopover(box, { anchor, opener, focus: close });
  try {
    const version = conv.last_seq;
    const data = await api.reactions(conv.conversation_id, seq);
    if (!store || box.hidden) return;
    store.setReactors(conv.conversation_id, seq, data.reactions || [], version);
    scheduleRender({ chat: conv.conversation_id === ui.activeId });
    const groups = (data.reactions || []).filter((r) => (r.user_ids || []).length);
    if (!groups.length) {
      list.textContent = 'No reactions any more.';
      return;
    }
    const me = store.me.user_id;
    const rows = groups.map((r) => {
      const ids = [...r.user_ids].sort((a, b) => (a === me ? -1 : b === me ? 1 : 0));
      for (const id of ids) if (id !== me) ensureUser(id);
      const names = ids.map((id) => (id === me ? 'You' : store.userName(id)));
      return h('div', { class: `who-row${r.emoji === emoji ? ' current' : ''}`, testid: 'reactions-who-row', dataset: { emoji: r.emoji } },
        h('span', { class: 'who-emoji', role: 'img', 'aria-label': emojiName(r.emoji), text: r.emoji }),
        h('span', { class: 'who-names', dir: 'auto', text: names.join(', ') }),
        h('span', { class: 'who-count', text: String(ids.length) }));
    });
    list.removeAttribute('role');
    list.replaceChildren(...rows);
    const mine = groups.find((r) => r.user_ids.includes(me));
    if (emoji && (!mine || mine.emoji !== emoji)) {
      list.appendChild(h('button', {
        type: 'button', class: 'btn small primary who-add', testid: 'reactions-add', text: `React with ${emoji}`,
        onclick: () => {
          closePopover();
          toggleReaction(conv, seq, emoji);
        },
      }));
    }
  } catch (err) {
    if (!box.hidden) list.textContent = err.message || 'Could not load the reactions.';
  }
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission (or an old browser): the selection way.
    const area = h('textarea', { class: 'visually-hidden', 'aria-hidden': 'true' });
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try {
      document.execCommand('copy');
    } catch {
      /* nothing more to try */
    }
    area.remove();
  }
  toast('Copied to the clipboard', 1800);
}

// ---- edit

function startEdit(conv, m) {
  const composer = $('#composer');
  if (!ui.editing) ui.editing = { draft: composer.value };
  ui.editing.seq = m.seq;
  setReply(null);
  const text = viewOf(conv, m).content;
  $('#edit-bar-snippet').textContent = oneLine(text);
  $('#edit-bar').hidden = false;
  composer.value = text;
  autoGrow(composer);
  updateCounter();
  composer.focus();
  composer.setSelectionRange(text.length, text.length);
}

/** Leave edit mode; the draft written before editing comes back unless the edit was sent. */
function setEditing(editing, { restoreDraft = true } = {}) {
  const was = ui.editing;
  ui.editing = editing;
  $('#edit-bar').hidden = !editing;
  if (!editing && was) {
    const composer = $('#composer');
    composer.value = was.draft || '';
    autoGrow(composer);
    updateCounter();
    const row = messageRow(was.seq);
    if (restoreDraft && row && !window.matchMedia('(pointer: fine)').matches) focusRow(row);
  }
}

// ---- delete

function openDelete(conv, m, row) {
  const dialog = $('#delete-dialog');
  const everyone = canDeleteForEveryone(conv, m);
  const own = m.sender_id === store.me.user_id;
  $('#delete-everyone').hidden = !everyone;
  $('#delete-text').textContent = everyone
    ? `Delete for everyone removes it for all ${conv.type === 'group' ? 'members of the group' : 'people in this chat'}${own ? '' : ' (as an admin)'}. Delete for me removes it only from your devices.`
    : 'This removes it only from your devices; the others still see it.';
  dialog.dataset.seq = String(m.seq);
  ui.deleteReturn = row;
  dialog.showModal();
  $(everyone ? '#delete-everyone' : '#delete-me').focus();
}

async function onDeleteChoice(forEveryone) {
  const dialog = $('#delete-dialog');
  const conv = activeConv();
  const seq = Number(dialog.dataset.seq);
  closeDialog(dialog);
  if (!conv || !seq) return;
  if (ui.editing && ui.editing.seq === seq) setEditing(null);
  if (forEveryone) {
    sendChange(conv, 'delete', seq);
    return;
  }
  try {
    await api.hideMessage(conv.conversation_id, seq);
    if (!store) return;
    onMessageHidden({ conversation_id: conv.conversation_id, seq }); // before the frame that says so
  } catch (err) {
    toast(err.status === 0 ? 'Could not delete it for you: you are offline.' : err.message || 'Could not delete the message.');
  }
}

// ---- forward

const MAX_FORWARD = 5;

function openForward(conv, m, row) {
  const dialog = $('#forward-dialog');
  ui.forward = { from: conv.conversation_id, seq: m.seq, picked: new Set(), row };
  $('#forward-preview').textContent = oneLine(viewOf(conv, m).content);
  $('#forward-search').value = '';
  $('#forward-error').hidden = true;
  renderForwardList();
  dialog.showModal();
  $('#forward-search').focus();
}

function renderForwardList() {
  if (!ui.forward) return;
  const query = $('#forward-search').value.trim().toLocaleLowerCase(UI_LOCALE);
  const picked = ui.forward.picked;
  const full = picked.size >= MAX_FORWARD;
  const convs = store.sortedConversations().filter((c) => !query || store.title(c).toLocaleLowerCase(UI_LOCALE).includes(query)
    || picked.has(c.conversation_id));
  $('#forward-list').replaceChildren(...(convs.length ? convs.map((c) => {
    const title = store.title(c);
    const checked = picked.has(c.conversation_id);
    const input = h('input', {
      type: 'checkbox', class: 'forward-check', testid: 'forward-checkbox',
      checked, disabled: full && !checked,
      onchange: (e) => {
        if (e.target.checked) picked.add(c.conversation_id);
        else picked.delete(c.conversation_id);
        renderForwardList();
        const again = $(`#forward-list [data-conversation-id="${CSS.escape(c.conversation_id)}"] input`);
        if (again) again.focus();
      },
    });
    return h('label', {
      class: `forward-option${checked ? ' picked' : ''}${full && !checked ? ' disabled' : ''}`, testid: 'forward-option',
      dataset: { conversationId: c.conversation_id },
    }, input,
    convAvatar(c, title, 'small'),
    h('span', { class: 'forward-title', dir: 'auto', text: title }));
  }) : [h('p', { class: 'muted pad', text: 'No chat found.' })]));
  const n = picked.size;
  $('#forward-hint').textContent = n >= MAX_FORWARD
    ? `${MAX_FORWARD} of ${MAX_FORWARD} chosen: that is the most at once.`
    : n ? `${n} of ${MAX_FORWARD} chosen.` : `Pick up to ${MAX_FORWARD} chats.`;
  const submit = $('#forward-submit');
  submit.disabled = n === 0;
  submit.textContent = n > 1 ? `Forward to ${n} chats` : 'Forward';
}

async function submitForward(event) {
  event.preventDefault();
  const state = ui.forward;
  if (!state || !state.picked.size) return;
  const submit = $('#forward-submit');
  submit.disabled = true;
  try {
    const ids = [...state.picked];
    const data = await api.forward(state.from, state.seq, ids, uuid());
    if (!store) return;
    for (const msg of (data && data.messages) || []) {
      const conv = store.convs.get(msg.conversation_id);
      if (!conv) continue;
      if (conv.historyLoaded || conv.conversation_id === ui.activeId) store.addMessage(msg);
      else store.upsertConversation({ conversation_id: conv.conversation_id, last_seq: msg.seq, last_message: msg, last_activity_at: msg.created_at }, { authoritative: false });
      advanceRead(conv, msg.seq);
    }
    closeDialog($('#forward-dialog'));
    toast(ids.length === 1 ? `Forwarded to ${store.title(store.convs.get(ids[0]) || { type: 'group', name: 'the chat' })}.` : `Forwarded to ${ids.length} chats.`);
    scheduleRender({ list: true, chat: true });
  } catch (err) {
    const error = $('#forward-error');
    error.textContent = err.status === 0 ? 'You are offline. Forward again when you are back.' : err.message || 'Could not forward the message.';
    error.hidden = false;
  } finally {
    submit.disabled = !(ui.forward && ui.forward.picked.size);
  }
}

// --------------------------------------------------------------------------- touch

/**
 * Touch: a long press on a message opens its menu; swiping a message to the right replies
 * to it. A right click opens the menu too.
 */
function bindMessageGestures(items) {
  let press = null;
  let suppressClickUntil = 0;
  const reset = () => {
    if (!press) return;
    clearTimeout(press.timer);
    const moved = press.row.querySelector('.bubble-row');
    if (moved) {
      moved.style.transform = '';
      moved.classList.remove('swiping');
    }
    press = null;
  };
  items.addEventListener('pointerdown', (e) => {
    if (e.pointerType === 'mouse' || !e.isPrimary) return;
    const row = e.target.closest('[data-testid="message"]');
    if (!row || !row.dataset.seq || e.target.closest('.msg-actions, .reactions')) return;
    reset();
    const seq = Number(row.dataset.seq);
    press = { row, seq, x: e.clientX, y: e.clientY, swiping: false, fired: false };
    press.timer = setTimeout(() => {
      if (!press || press.swiping) return;
      press.fired = true;
      suppressClickUntil = Date.now() + 800;
      if (navigator.vibrate) navigator.vibrate(10);
      openMessageMenu(seq, { anchor: row.querySelector('.bubble'), opener: row });
    }, 500);
  });
  items.addEventListener('pointermove', (e) => {
    if (!press || press.fired) return;
    const dx = e.clientX - press.x;
    const dy = e.clientY - press.y;
    if (!press.swiping) {
      if (Math.abs(dy) > 10 || dx < -10) {
        reset(); // scrolling, or a swipe the other way
        return;
      }
      if (dx > 12 && Math.abs(dy) < 10) {
        press.swiping = true;
        clearTimeout(press.timer);
      }
    }
    if (press.swiping) {
      const bubbleRow = press.row.querySelector('.bubble-row');
      bubbleRow.classList.add('swiping');
      bubbleRow.style.transform = `translateX(${Math.min(80, Math.max(0, dx))}px)`;
      press.dx = dx;
    }
  });
  const end = () => {
    if (!press) return;
    const { swiping, dx, seq, fired } = press;
    reset();
    if (fired) return;
    if (swiping && dx > 60) {
      suppressClickUntil = Date.now() + 400;
      const conv = activeConv();
      const m = conv && conv.msgs.get(seq);
      if (isOrdinary(m) && !viewOf(conv, m).deleted) startReply(conv, m);
    }
  };
  items.addEventListener('pointerup', end);
  items.addEventListener('pointercancel', reset);
  items.addEventListener('click', (e) => {
    if (Date.now() < suppressClickUntil) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);
  items.addEventListener('contextmenu', (e) => {
    const row = e.target.closest('[data-testid="message"]');
    if (!row || !row.dataset.seq) return;
    if (e.target.closest('a[href]') && e.pointerType === 'mouse') return; // the browser's link menu
    e.preventDefault();
    if (Date.now() < suppressClickUntil) return; // the long press opened it already
    const seq = Number(row.dataset.seq);
    const point = e.clientX || e.clientY ? { x: e.clientX, y: e.clientY } : row.querySelector('.bubble');
    openMessageMenu(seq, { anchor: point, opener: row });
  });
}

// --------------------------------------------------------------------------- search

/** The chat header's search: the open chat's messages, newest first. */
function toggleChatSearch(open) {
  const bar = $('#chat-search');
  const show = open === undefined ? bar.hidden : open;
  bar.hidden = !show;
  $('#chat-search-toggle').setAttribute('aria-expanded', String(show));
  $('#chat-search-toggle').classList.toggle('active', show);
  if (show) {
    $('#chat-search-input').focus();
    $('#chat-search-input').select();
  } else {
    ui.chatSearch = null;
    $('#chat-search-input').value = '';
    $('#chat-search-results').replaceChildren();
    $('#chat-search-status').textContent = '';
  }
}

/** At least one word of two characters (the server wants a word of letters or digits). */
function searchable(query) {
  return /[\p{L}\p{N}]{2,}/u.test(query) || /[\p{L}\p{N}]/u.test(query) && query.trim().length >= 2;
}

const runChatSearch = debounce((query) => chatSearch(query), 250);

async function chatSearch(query, { more = false } = {}) {
  const conv = activeConv();
  const status = $('#chat-search-status');
  const results = $('#chat-search-results');
  if (!conv) return;
  if (!searchable(query)) {
    ui.chatSearch = null;
    results.replaceChildren();
    status.textContent = query.trim() ? 'Type at least two letters.' : '';
    return;
  }
  const cursor = more && ui.chatSearch ? ui.chatSearch.next : null;
  const token = {};
  ui.chatSearchToken = token;
  if (!more) status.textContent = 'Searching…';
  try {
    const data = await api.search(query.trim(), { conversationId: conv.conversation_id, cursor });
    if (!store || ui.chatSearchToken !== token || $('#chat-search').hidden) return;
    const found = (data && data.results) || [];
    const list = more && ui.chatSearch ? [...ui.chatSearch.results, ...found] : found;
    ui.chatSearch = { query, conversationId: conv.conversation_id, results: list, next: data.next_cursor || null };
    status.textContent = list.length
      ? `${list.length}${data.next_cursor ? '+' : ''} ${list.length === 1 ? 'message' : 'messages'} found`
      : 'No messages found.';
    results.hidden = false;
    const moreButton = data.next_cursor ? [h('button', {
      type: 'button', class: 'link-btn search-more', testid: 'chat-search-more', text: 'More results',
      onclick: () => chatSearch(query, { more: true }),
    })] : [];
    results.replaceChildren(...list.map((r) => searchHitEl(r, { chat: false, testid: 'chat-search-result', query })), ...moreButton);
  } catch (err) {
    if (ui.chatSearchToken !== token) return;
    status.textContent = err.code === 'rate_limited' ? 'Searching too fast: wait a moment.' : err.message || 'Search failed.';
  }
}

/** One search hit: where (chat, sender, time) and the snippet with its matches marked. */
function searchHitEl(result, { chat, testid, query }) {
  const m = result.message || {};
  const conv = store.convs.get(result.conversation_id);
  const sender = m.sender_id === store.me.user_id ? 'You' : store.userName(m.sender_id);
  if (m.sender_id && m.sender_id !== store.me.user_id) ensureUser(m.sender_id);
  const when = m.created_at ? new Date(m.created_at) : null;
  const title = conv ? store.title(conv) : 'Chat';
  const snippet = h('span', { class: 'hit-snippet', testid: 'search-snippet', dir: 'auto' },
    markedSnippet(result.snippet || m.content || '', queryTerms(query)));
  const button = h('button', {
    type: 'button', class: 'search-hit', testid, dataset: { conversationId: result.conversation_id, seq: String(result.seq) },
    onclick: () => openAt(result.conversation_id, result.seq),
  },
  chat ? (conv ? convAvatar(conv, title, 'small') : avatar(result.conversation_id, title, 'small')) : null,
  h('span', { class: 'hit-text' },
    h('span', { class: 'hit-top' },
      chat ? h('span', { class: 'hit-chat', testid: 'search-hit-chat', dir: 'auto', text: title }) : null,
      h('span', { class: 'hit-sender', dir: 'auto', text: chat && conv && conv.type === 'direct' ? '' : sender }),
      when ? h('time', { class: 'hit-time', datetime: when.toISOString(), text: formatListTime(when) }) : null),
    chat && conv && (conv.type === 'group' || m.sender_id === store.me.user_id)
      ? h('span', { class: 'hit-line' }, h('span', { class: 'hit-from', text: `${firstName(sender)}: ` }), snippet)
      : snippet));
  return button;
}

function onSearchResultsKey(event) {
  const hits = [...event.currentTarget.querySelectorAll('.search-hit, .user-row')];
  const index = hits.indexOf(document.activeElement);
  if (index < 0) return;
  let next = null;
  if (event.key === 'ArrowDown') next = hits[index + 1];
  else if (event.key === 'ArrowUp') next = hits[index - 1] || null;
  else return;
  event.preventDefault();
  if (next) next.focus();
  else if (event.key === 'ArrowUp') (event.currentTarget.id === 'chat-search-results' ? $('#chat-search-input') : $('#search')).focus();
}

/** Open a chat at one of its messages (a search hit): loaded around it, highlighted. */
async function openAt(conversationId, seq) {
  const conv = store.convs.get(conversationId);
  if (!conv) return;
  if (ui.activeId !== conversationId) {
    ui.pendingJump = conversationId;
    navigate(conversationId);
    if (ui.activeId !== conversationId) openConversation(conversationId);
  } else if ($('#chat-search').hidden) {
    // From the sidebar into the chat that is open already.
  } else {
    $('#chat-search-results').hidden = true;
  }
  for (let waited = 0; waited < 200 && (!conv.historyLoaded || conv.loadingHistory) && !conv.historyError; waited++) await sleep(50);
  if (!store || ui.activeId !== conversationId) return;
  ui.pendingJump = null;
  ui.positionPending = false;
  await jumpTo(seq, { around: true });
}

// ---- the sidebar's global search: messages in every chat

async function searchAllMessages(query) {
  if (!searchable(query)) return null;
  const data = await api.search(query.trim(), { limit: 20 });
  return (data && data.results) || [];
}

// --------------------------------------------------------------------------- mentions

/** `@` and what follows it before the caret, in a group: who to offer. */
function mentionQuery() {
  const composer = $('#composer');
  const conv = activeConv();
  if (!conv || conv.type !== 'group' || ui.editing || composer.selectionStart !== composer.selectionEnd) return null;
  const before = composer.value.slice(0, composer.selectionStart);
  const match = before.match(/(^|[\s([{"'])@([\p{L}\p{N}_.]{0,32})$/u);
  return match ? { query: match[2], start: before.length - match[2].length - 1, end: before.length } : null;
}

function mentionCandidates(conv, query) {
  const q = query.toLocaleLowerCase(UI_LOCALE);
  const list = [];
  for (const m of conv.members || []) {
    if (m.user_id === store.me.user_id) continue;
    const username = m.username || store.users.get(m.user_id)?.username || '';
    const name = store.userName(m.user_id);
    if (!username) continue;
    const lowerName = name.toLocaleLowerCase(UI_LOCALE);
    const rank = !q ? 1
      : username.startsWith(q) || lowerName.startsWith(q) ? 0
        : lowerName.split(/\s+/).some((w) => w.startsWith(q)) ? 1
          : username.includes(q) || lowerName.includes(q) ? 2 : -1;
    if (rank >= 0) list.push({ user_id: m.user_id, username, name, rank });
  }
  list.sort((a, b) => a.rank - b.rank || a.name.localeCompare(b.name, UI_LOCALE));
  return list.slice(0, 8);
}

function updateMentionPicker() {
  const found = mentionQuery();
  const conv = activeConv();
  const candidates = found && conv ? mentionCandidates(conv, found.query) : [];
  if (!candidates.length) {
    closeMentionPicker();
    return;
  }
  const keep = ui.mention && ui.mention.options[ui.mention.index];
  let index = keep ? candidates.findIndex((c) => c.user_id === keep.user_id) : 0;
  if (index < 0) index = 0;
  ui.mention = { ...found, options: candidates, index };
  renderMentionPicker();
}

function renderMentionPicker() {
  const picker = $('#mention-picker');
  const composer = $('#composer');
  const { options, index } = ui.mention;
  picker.replaceChildren(...options.map((c, i) => h('div', {
    id: `mention-option-${i}`, class: `mention-option${i === index ? ' active' : ''}`, role: 'option', testid: 'mention-option',
    'aria-selected': String(i === index), dataset: { userId: c.user_id, username: c.username },
    onmousedown: (e) => e.preventDefault(), // keep the focus in the composer
    onclick: () => pickMention(i),
  }, userAvatar(c.user_id, c.name, 'tiny'),
  h('span', { class: 'mention-name', dir: 'auto', text: c.name }),
  h('span', { class: 'mention-username', text: `@${c.username}` }))));
  picker.hidden = false;
  composer.setAttribute('aria-expanded', 'true');
  composer.setAttribute('aria-activedescendant', `mention-option-${index}`);
}

function closeMentionPicker() {
  ui.mention = null;
  const picker = $('#mention-picker');
  if (!picker.hidden) picker.hidden = true;
  picker.replaceChildren();
  const composer = $('#composer');
  composer.removeAttribute('aria-expanded');
  composer.removeAttribute('aria-activedescendant');
}

function pickMention(i) {
  if (!ui.mention) return;
  const choice = ui.mention.options[i];
  const composer = $('#composer');
  const { start, end } = ui.mention;
  const after = composer.value.slice(end);
  const insert = `@${choice.username}${after.startsWith(' ') ? '' : ' '}`;
  composer.value = composer.value.slice(0, start) + insert + after;
  const caret = start + insert.length + (after.startsWith(' ') ? 1 : 0);
  composer.setSelectionRange(caret, caret);
  closeMentionPicker();
  composer.focus();
  onComposerInput();
}

/** Keys for the open mention picker; true when the key was for it. */
function onMentionKey(e) {
  if (!ui.mention) return false;
  const n = ui.mention.options.length;
  if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
    e.preventDefault();
    ui.mention.index = (ui.mention.index + (e.key === 'ArrowDown' ? 1 : -1) + n) % n;
    renderMentionPicker();
    return true;
  }
  if ((e.key === 'Enter' && !e.shiftKey) || e.key === 'Tab') {
    e.preventDefault();
    pickMention(ui.mention.index);
    return true;
  }
  if (e.key === 'Escape') {
    e.preventDefault();
    e.stopPropagation();
    closeMentionPicker();
    return true;
  }
  return false;
}

// --------------------------------------------------------------------------- notifications

function renderNotifyBanner() {
  const supported = 'Notification' in window;
  const dismissed = localStorage.getItem('parley.notify.dismissed') === '1';
  $('#notify-banner').hidden = !supported || Notification.permission !== 'default' || dismissed;
}

function notify(conv, msg) {
  if (document.visibilityState !== 'hidden') return;
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  if (Date.now() - Date.parse(msg.created_at) > 120000) return; // old backlog from a sync
  // A muted chat stays silent, except for a message that mentions me.
  if (store.isMuted(conv) && !(msg.mentions || []).includes(store.me.user_id)) return;
  const title = conv.type === 'group' ? `${store.userName(msg.sender_id)} · ${store.title(conv)}` : store.title(conv);
  const body = !previewsOn(store.me.user_id) ? 'New message'
    : msg.content_type === 'system' ? systemText(msg) : oneLine(msg.content) || attachmentsSummary(msg.attachments);
  try {
    const n = new Notification(title, { body, tag: conv.conversation_id, icon: 'icon.svg' });
    n.onclick = () => {
      window.focus();
      navigate(conv.conversation_id);
      n.close();
    };
  } catch {
    /* some platforms only allow notifications from a service worker */
  }
}

// --------------------------------------------------------------------------- dialogs

function closeDialog(dialog) {
  if (dialog.open) dialog.close();
}

function userRow(user, onPick, testid) {
  const name = user.display_name || user.username;
  return h('button', {
    type: 'button', class: 'user-row', testid, dataset: { userId: user.user_id, username: user.username },
    onclick: onPick,
  }, avatar(user.user_id, name, 'small', { mediaId: user.avatar_media_id }),
  h('span', { class: 'user-row-text' },
    h('span', { class: 'user-row-name', dir: 'auto', text: name }),
    h('span', { class: 'user-row-username', text: `@${user.username}` })));
}

async function searchPeople(query) {
  const q = query.trim();
  if (!q) return [];
  const result = await api.searchUsers(q);
  const users = (result && result.users) || [];
  for (const u of users) store.rememberProfile(u);
  return users.filter((u) => u.user_id !== store.me.user_id);
}

const runSidebarSearch = debounce(async (query) => {
  const box = $('#search-results');
  if (!query.trim()) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  // People (to start a chat) and messages in every chat, side by side.
  const [people, messages] = await Promise.allSettled([searchPeople(query), searchAllMessages(query)]);
  if (!store || ui.search !== query) return;
  if (people.status === 'rejected' && messages.status === 'rejected') return; // keep the old results
  const users = people.status === 'fulfilled' ? people.value : [];
  const hits = messages.status === 'fulfilled' ? messages.value : null;
  box.hidden = false;
  box.replaceChildren(
    h('div', { class: 'section-label', text: 'People' }),
    ...(users.length
      ? users.map((u) => userRow(u, () => startDirect(u), 'user-result'))
      : [h('div', { class: 'muted pad', text: 'Nobody found.' })]),
    ...(hits === null ? [] : [
      h('div', { class: 'section-label', id: 'message-results-label', text: 'Messages' }),
      h('div', { class: 'message-results', testid: 'message-results', role: 'group', 'aria-labelledby': 'message-results-label' },
        hits.length
          ? hits.map((r) => searchHitEl(r, { chat: true, testid: 'message-result', query }))
          : h('div', { class: 'muted pad', text: 'No messages found.' })),
    ]),
  );
}, 250);

async function startDirect(user) {
  try {
    const data = await api.createDirect(user.user_id);
    store.upsertConversation(data);
    ui.search = '';
    $('#search').value = '';
    $('#search-results').hidden = true;
    updatePresenceSubscription();
    navigate(data.conversation_id);
  } catch (err) {
    toast(err.message || 'Could not start the chat.');
  }
}

function openGroupDialog() {
  ui.groupPicked.clear();
  $('#group-name').value = '';
  $('#group-search').value = '';
  $('#group-search-results').replaceChildren();
  $('#group-error').hidden = true;
  renderGroupChips();
  $('#group-dialog').showModal();
  $('#group-name').focus();
}

function renderGroupChips() {
  const chips = [...ui.groupPicked.values()].map((u) => h('span', { class: 'chip', testid: 'group-chip', dataset: { userId: u.user_id } },
    h('span', { dir: 'auto', text: u.display_name || u.username }),
    h('button', {
      type: 'button', class: 'chip-x', 'aria-label': `Remove ${u.display_name || u.username}`, text: '×',
      onclick: () => { ui.groupPicked.delete(u.user_id); renderGroupChips(); },
    })));
  $('#group-chips').replaceChildren(...chips);
}

const runGroupSearch = debounce(async (query) => {
  const box = $('#group-search-results');
  try {
    const users = (await searchPeople(query)).filter((u) => !ui.groupPicked.has(u.user_id));
    box.replaceChildren(...users.map((u) => userRow(u, () => {
      ui.groupPicked.set(u.user_id, u);
      $('#group-search').value = '';
      box.replaceChildren();
      renderGroupChips();
      $('#group-search').focus();
    }, 'group-user-result')));
  } catch {
    box.replaceChildren();
  }
}, 200);

async function submitGroup(event) {
  event.preventDefault();
  const name = $('#group-name').value.trim();
  const error = $('#group-error');
  if (!name) {
    error.textContent = 'Give the group a name.';
    error.hidden = false;
    return;
  }
  $('#group-create').disabled = true;
  try {
    const data = await api.createGroup(name, [...ui.groupPicked.keys()]);
    store.upsertConversation(data);
    closeDialog($('#group-dialog'));
    navigate(data.conversation_id);
  } catch (err) {
    error.textContent = err.message || 'Could not create the group.';
    error.hidden = false;
  } finally {
    $('#group-create').disabled = false;
  }
}

// The group's picture in its info panel, for its admins. One editor, kept across redraws
// of the panel (a focused button stays focused, an upload survives a presence update).
const groupPicture = new PictureEditor({
  media: mediaClient,
  noun: 'group picture',
  testid: 'group-picture',
  save: (mediaId, conversationId) => api.setGroupAvatar(conversationId, mediaId),
  onSaved: (data, mediaId) => {
    if (!store) return;
    if (data && data.conversation_id) store.upsertConversation(data, { authoritative: false });
    toast(mediaId ? 'Group picture changed' : 'Group picture removed');
    scheduleRender({ list: true, chat: true, info: true });
  },
});
$('#info-picture').appendChild(groupPicture.el);

function openInfo() {
  const conv = activeConv();
  if (!conv) return;
  if (conv.type !== 'group') {
    openContact(conv);
    return;
  }
  ui.leaveArmed = false;
  groupPicture.showError('');
  $('#info-error').hidden = true;
  $('#add-search').value = '';
  $('#add-results').replaceChildren();
  $('#rename-input').value = conv.name || '';
  renderInfo();
  $('#info-dialog').showModal();
  fetchConversation(conv.conversation_id);
}

function renderInfo() {
  const conv = activeConv();
  const dialog = $('#info-dialog');
  if (!conv || conv.type !== 'group') {
    closeDialog(dialog);
    return;
  }
  const title = store.title(conv);
  $('#info-title').textContent = title;
  $('#info-avatar').replaceChildren(convAvatar(conv, title));
  const members = conv.members || [];
  $('#info-count').textContent = `${conv.member_count || members.length} members`;
  const myRole = store.myRole(conv);
  const isAdmin = myRole === 'admin' || myRole === 'owner';
  for (const el of dialog.querySelectorAll('.admin-only')) el.hidden = !isAdmin;
  groupPicture.update({ hasPicture: !!conv.avatar_media_id, target: conv.conversation_id });
  const rank = { owner: 0, admin: 1, member: 2 };
  const sorted = [...members].sort((a, b) => (rank[a.role] ?? 3) - (rank[b.role] ?? 3)
    || store.userName(a.user_id).localeCompare(store.userName(b.user_id), UI_LOCALE));
  $('#member-list').replaceChildren(...sorted.map((m) => {
    const me = m.user_id === store.me.user_id;
    const name = me ? `${store.userName(m.user_id)} (you)` : store.userName(m.user_id);
    const p = ui.presence.get(m.user_id);
    const canRemove = isAdmin && !me && (m.role === 'member' || (myRole === 'owner' && m.role !== 'owner'));
    return h('li', { class: 'member-row', testid: 'member-row', dataset: { userId: m.user_id, role: m.role } },
      userAvatar(m.user_id, store.userName(m.user_id), 'small'),
      h('span', { class: 'member-text' },
        h('span', { class: 'member-name', dir: 'auto', text: name }),
        h('span', { class: 'member-sub', text: p && p.status === 'online' ? 'online' : (m.username ? `@${m.username}` : '') })),
      m.role !== 'member' ? h('span', { class: `role role-${m.role}`, testid: 'member-role', text: m.role }) : null,
      myRole === 'owner' && !me ? h('button', {
        type: 'button', class: 'btn small ghost', testid: m.role === 'admin' ? 'member-demote' : 'member-promote',
        text: m.role === 'admin' ? 'Dismiss admin' : 'Make admin',
        onclick: () => setRole(conv, m.user_id, m.role === 'admin' ? 'member' : 'admin'),
      }) : null,
      canRemove ? h('button', {
        type: 'button', class: 'btn small ghost danger-text', testid: 'member-remove', text: 'Remove',
        onclick: () => removeMember(conv, m.user_id),
      }) : null);
  }));
  renderChatSettings($('#info-settings'), conv);
  const leave = $('#leave');
  leave.textContent = ui.leaveArmed ? 'Click again to leave' : 'Leave group';
  leave.classList.toggle('armed', ui.leaveArmed);
}

/** Contact info of a direct chat's other member (or of yourself, in a chat with yourself). */
function openContact(conv) {
  renderContact();
  $('#contact-dialog').showModal();
  const other = store.otherMember(conv);
  const userId = other ? other.user_id : store.me.user_id;
  // Asked again even when known: the status message (and picture) may have changed.
  api.user(userId)
    .then((user) => {
      if (!store) return;
      store.rememberProfile(user);
      scheduleRender({ list: true, chat: true, info: true });
    })
    .catch(() => {});
}

function renderContact() {
  const conv = activeConv();
  const dialog = $('#contact-dialog');
  if (!conv || conv.type === 'group') {
    closeDialog(dialog);
    return;
  }
  const other = store.otherMember(conv);
  const userId = other ? other.user_id : store.me.user_id;
  const user = store.users.get(userId) || {};
  const name = store.userName(userId);
  $('#contact-name').textContent = other ? name : `${name} (you)`;
  $('#contact-avatar').replaceChildren(userAvatar(userId, name));
  const username = user.username || (other ? other.username : store.me.username);
  $('#contact-username').textContent = username ? `@${username}` : '';
  const p = ui.presence.get(userId);
  let presence = '';
  if (!other) presence = 'This is your own chat: notes to yourself.';
  else if (p && p.status === 'online') presence = 'online';
  else if (p && p.last_seen) presence = formatLastSeen(new Date(p.last_seen));
  else if (p) presence = 'last seen recently';
  $('#contact-presence').textContent = presence;
  const statusEl = $('#contact-status');
  statusEl.textContent = user.status_message || '';
  statusEl.hidden = !user.status_message;
  renderChatSettings($('#contact-settings'), conv);
}

/**
 * My own settings of the open chat in its info panel: notifications (mute for a while,
 * always, or not), pinned, archived. The same calls as the list's chat menu.
 */
function renderChatSettings(box, conv) {
  const muted = store.isMuted(conv);
  const mute = h('select', {
    id: `${box.id}-mute`, testid: 'settings-mute',
    onchange: (e) => {
      const choice = e.target.value;
      const span = { '8h': 8 * 3600 * 1000, '1w': 7 * 24 * 3600 * 1000 }[choice];
      const until = choice === 'off' ? null : choice === 'forever' ? 'forever' : new Date(Date.now() + span).toISOString();
      changeSettings(conv, { muted_until: until });
    },
  },
  h('option', { value: 'off', text: 'On' }),
  h('option', { value: '8h', text: 'Muted for 8 hours' }),
  h('option', { value: '1w', text: 'Muted for 1 week' }),
  h('option', { value: 'forever', text: 'Muted always' }),
  muted && conv.muted_until !== 'forever'
    ? h('option', { value: 'until', disabled: '', text: `Muted until ${formatListTime(new Date(conv.muted_until))}` })
    : null);
  mute.value = !muted ? 'off' : conv.muted_until === 'forever' ? 'forever' : 'until';
  const toggle = (label, testid, checked, settings) => h('label', { class: 'settings-toggle' },
    h('input', {
      type: 'checkbox', testid, checked: checked ? '' : null,
      onchange: (e) => changeSettings(conv, settings(e.target.checked)),
    }),
    h('span', { text: label }));
  // Disappearing messages: any member of a direct chat, a group's admins.
  const role = store.myRole(conv);
  const mayDisappear = conv.type === 'direct' || role === 'admin' || role === 'owner';
  const current = conv.disappearing_seconds || 0;
  const disappear = h('select', {
    id: `${box.id}-disappear`, testid: 'settings-disappearing', disabled: mayDisappear ? null : '',
    onchange: (e) => setDisappearing(conv, Number(e.target.value)),
  }, ...DISAPPEARING_CHOICES.map(([value, label]) => h('option', { value: String(value), text: label })),
  DISAPPEARING_CHOICES.some(([value]) => value === current)
    ? null : h('option', { value: String(current), text: disappearingLabel(current) }));
  disappear.value = String(current);
  box.replaceChildren(
    h('label', { class: 'settings-row', for: mute.id },
      h('span', { text: 'Notifications' }), mute),
    h('label', { class: 'settings-row', for: disappear.id, title: mayDisappear ? '' : 'Only admins can change this' },
      h('span', { text: 'Disappearing messages' }), disappear),
    toggle('Pin to top', 'settings-pin', !!conv.pinned_at, (on) => ({ pinned: on })),
    toggle('Archived', 'settings-archive', !!conv.archived, (on) => ({ archived: on })),
    h('button', {
      type: 'button', class: 'btn ghost danger-text settings-clear', testid: 'settings-clear', text: 'Delete chat for me',
      onclick: (e) => openClearChat(conv, e.currentTarget),
    }));
}

async function setDisappearing(conv, seconds) {
  try {
    const data = await api.setDisappearing(conv.conversation_id, seconds);
    if (!store) return;
    store.upsertConversation(data, { authoritative: false });
    toast(seconds ? `New messages disappear after ${disappearingLabel(seconds)}` : 'Disappearing messages off');
  } catch (err) {
    if (err.status !== 401) toast(err.code === 'forbidden' ? 'Only group admins can change this.' : 'Could not change it. Try again.');
  }
  scheduleRender({ chat: conv.conversation_id === ui.activeId, info: true });
}

function infoError(text) {
  const el = $('#info-error');
  el.textContent = text;
  el.hidden = !text;
}

async function setRole(conv, userId, role) {
  try {
    const result = await api.setRole(conv.conversation_id, userId, role);
    if (result && Array.isArray(result.members)) {
      conv.members = result.members;
      conv.member_count = result.members.length;
    }
    renderInfo();
    fetchConversation(conv.conversation_id);
  } catch (err) {
    infoError(err.message || 'Could not change the role.');
  }
}

async function removeMember(conv, userId) {
  try {
    await api.removeMember(conv.conversation_id, userId);
    if (conv.members) conv.members = conv.members.filter((m) => m.user_id !== userId);
    conv.member_count = Math.max(0, (conv.member_count || 1) - 1);
    renderInfo();
    fetchConversation(conv.conversation_id);
  } catch (err) {
    infoError(err.message || 'Could not remove the member.');
  }
}

const runAddSearch = debounce(async (query) => {
  const conv = activeConv();
  const box = $('#add-results');
  if (!conv) return;
  try {
    const present = new Set((conv.members || []).map((m) => m.user_id));
    const users = (await searchPeople(query)).filter((u) => !present.has(u.user_id));
    box.replaceChildren(...users.map((u) => userRow(u, () => addMember(conv, u), 'add-user-result')));
  } catch {
    box.replaceChildren();
  }
}, 200);

async function addMember(conv, user) {
  try {
    const result = await api.addMembers(conv.conversation_id, [user.user_id]);
    if (result && Array.isArray(result.members)) {
      conv.members = result.members;
      conv.member_count = result.members.length;
      for (const m of result.members) store.rememberUser(m);
    }
    store.rememberProfile(user);
    $('#add-search').value = '';
    $('#add-results').replaceChildren();
    renderInfo();
    fetchConversation(conv.conversation_id);
  } catch (err) {
    infoError(err.message || 'Could not add the member.');
  }
}

async function renameGroup(event) {
  event.preventDefault();
  const conv = activeConv();
  const name = $('#rename-input').value.trim();
  if (!conv || !name || name === conv.name) return;
  try {
    const data = await api.renameConversation(conv.conversation_id, name);
    if (data && data.conversation_id) store.upsertConversation(data, { authoritative: false });
    else conv.name = name;
    renderInfo();
    scheduleRender({ list: true, chat: true });
  } catch (err) {
    infoError(err.message || 'Could not rename the group.');
  }
}

async function leaveGroup() {
  const conv = activeConv();
  if (!conv) return;
  if (!ui.leaveArmed) {
    ui.leaveArmed = true;
    renderInfo();
    setTimeout(() => { ui.leaveArmed = false; if ($('#info-dialog').open) renderInfo(); }, 4000);
    return;
  }
  try {
    await api.removeMember(conv.conversation_id, store.me.user_id);
    const title = store.title(conv);
    closeDialog($('#info-dialog'));
    store.removeConversation(conv.conversation_id);
    navigate(null);
    toast(`You left ${title}.`);
    scheduleRender({ list: true, chat: true });
  } catch (err) {
    infoError(err.message || 'Could not leave the group.');
  }
}

// --------------------------------------------------------------------------- toast

let toastTimer = null;
function toast(text, ms = 3500) {
  if (!store) return; // signed out: nothing of the app leaks onto the login screen
  const el = $('#toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, ms);
}

function hideToast() {
  clearTimeout(toastTimer);
  const el = $('#toast');
  el.hidden = true;
  el.textContent = '';
}

// --------------------------------------------------------------------------- bindings

function bindApp() {
  bindAttachments();
  $('#logout').addEventListener('click', requestLogout);
  $('#settings-open').addEventListener('click', () => settingsScreen.open());
  $('#chat-unblock').addEventListener('click', () => {
    const blocked = blockedOther(activeConv());
    if (blocked) setBlocked(blocked.user_id, false);
  });
  $('#logout-discard').addEventListener('click', () => {
    closeDialog($('#logout-dialog'));
    signOut();
  });
  $('#logout-wait').addEventListener('click', () => {
    ui.logoutWhenSent = true;
    renderLogoutDialog();
  });
  $('#logout-dialog').addEventListener('close', () => { ui.logoutWhenSent = false; });
  $('#new-group').addEventListener('click', openGroupDialog);
  $('#back').addEventListener('click', () => navigate(null));
  $('#chat-info').addEventListener('click', openInfo);
  $('#chat-head-info').addEventListener('click', openInfo);
  $('#conn-retry').addEventListener('click', () => conn && conn.connectNow());
  $('#jump').addEventListener('click', () => {
    const box = $('#messages');
    box.scrollTo({ top: box.scrollHeight, behavior: 'smooth' });
  });
  $('#notify-enable').addEventListener('click', async () => {
    try {
      await Notification.requestPermission();
    } catch {
      /* ignored */
    }
    renderNotifyBanner();
  });
  $('#notify-dismiss').addEventListener('click', () => {
    localStorage.setItem('parley.notify.dismissed', '1');
    renderNotifyBanner();
  });

  const search = $('#search');
  search.addEventListener('input', () => {
    ui.search = search.value;
    scheduleRender({ list: true });
    runSidebarSearch(search.value);
  });
  search.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') {
      // Into the people found, if any are shown, else into the chat list.
      const person = $('#search-results').hidden ? null : $('#search-results .user-row, #search-results .search-hit');
      const first = $('#conv-list .conv-item');
      if (person || first) {
        e.preventDefault();
        if (person) person.focus();
        else focusListItem(first);
      }
      return;
    }
    if (e.key === 'Escape' && search.value) {
      e.preventDefault();
      search.value = '';
      ui.search = '';
      $('#search-results').hidden = true;
      scheduleRender({ list: true });
    }
  });

  const composer = $('#composer');
  composer.addEventListener('input', onComposerInput);
  // A reload or a closed tab within the draft's save delay keeps it too.
  window.addEventListener('pagehide', () => { if (store) store.saveDrafts(ui.drafts); });
  composer.addEventListener('keydown', (e) => {
    if (!e.isComposing && onMentionKey(e)) return;
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      submitComposer();
    } else if (e.key === 'Escape' && ui.editing) {
      e.preventDefault();
      setEditing(null);
    } else if (e.key === 'Escape' && ui.replyTo) {
      e.preventDefault();
      setReply(null);
    } else if (e.key === 'ArrowUp' && !composer.value && !ui.editing && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey) {
      // ↑ in an empty composer edits my last message (while it may still be edited).
      const conv = activeConv();
      const last = conv && [...store.sortedMessages(conv)].reverse().find((m) => isOrdinary(m) && m.sender_id === store.me.user_id);
      if (last && canEdit(conv, last)) {
        e.preventDefault();
        startEdit(conv, last);
      }
    }
  });
  composer.addEventListener('keyup', (e) => {
    if (['ArrowLeft', 'ArrowRight', 'Home', 'End'].includes(e.key)) updateMentionPicker();
  });
  composer.addEventListener('click', updateMentionPicker);
  composer.addEventListener('blur', () => {
    stopTypingOut(true);
    setTimeout(() => { if (document.activeElement !== composer) closeMentionPicker(); }, 150);
  });
  $('#edit-cancel').addEventListener('click', () => {
    setEditing(null);
    $('#composer').focus();
  });

  // Message menus, pickers, dialogs of message actions, search.
  bindPopovers();
  bindMessageGestures($('#message-items'));
  bindChatListGestures($('#conv-list'));
  $('#clear-confirm').addEventListener('click', confirmClearChat);
  $('#clear-dialog').addEventListener('close', () => {
    const opener = ui.clearReturn;
    ui.clearReturn = null;
    if (opener && opener.isConnected) opener.focus();
  });
  $('#delete-everyone').addEventListener('click', () => onDeleteChoice(true));
  $('#delete-me').addEventListener('click', () => onDeleteChoice(false));
  $('#delete-dialog').addEventListener('close', () => {
    const row = ui.deleteReturn;
    ui.deleteReturn = null;
    const again = row && (row.isConnected ? row : messageRow(row.dataset.seq));
    if (again && again.isConnected) focusRow(again);
  });
  $('#forward-form').addEventListener('submit', submitForward);
  $('#forward-search').addEventListener('input', renderForwardList);
  $('#forward-dialog').addEventListener('close', () => {
    const row = ui.forward && ui.forward.row;
    ui.forward = null;
    const again = row && (row.isConnected ? row : messageRow(row.dataset.seq));
    if (again && again.isConnected) focusRow(again);
  });
  $('#chat-search-toggle').addEventListener('click', () => toggleChatSearch());
  $('#chat-search-close').addEventListener('click', () => {
    toggleChatSearch(false);
    $('#chat-search-toggle').focus();
  });
  const chatSearchInput = $('#chat-search-input');
  chatSearchInput.addEventListener('input', () => runChatSearch(chatSearchInput.value));
  chatSearchInput.addEventListener('focus', () => { $('#chat-search-results').hidden = false; });
  chatSearchInput.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      toggleChatSearch(false);
      $('#chat-search-toggle').focus();
    } else if (e.key === 'ArrowDown') {
      const first = $('#chat-search-results .search-hit');
      if (first) {
        e.preventDefault();
        $('#chat-search-results').hidden = false;
        first.focus();
      }
    } else if (e.key === 'Enter') {
      e.preventDefault();
      chatSearch(chatSearchInput.value);
    }
  });
  $('#chat-search-results').addEventListener('keydown', onSearchResultsKey);
  $('#search-results').addEventListener('keydown', onSearchResultsKey);
  $('#composer-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitComposer();
  });
  $('#reply-cancel').addEventListener('click', () => setReply(null));

  $('#conv-list').addEventListener('keydown', onChatListKey);
  const items = $('#message-items');
  items.addEventListener('keydown', onMessageListKey);
  items.addEventListener('focusin', (e) => {
    const row = e.target.closest(ROW_SELECTOR);
    if (!row) return;
    makeRowStop(row);
    setRowControlsTabbable(row, true);
  });
  items.addEventListener('focusout', (e) => {
    const row = e.target.closest(ROW_SELECTOR);
    if (!row || (e.relatedTarget && row.contains(e.relatedTarget))) return;
    setRowControlsTabbable(row, false);
  });

  const box = $('#messages');
  box.addEventListener('scroll', () => {
    updateJumpButton();
    const conv = activeConv();
    if (conv && box.scrollTop < 200) loadOlder(conv);
    checkGaps();
  }, { passive: true });

  for (const dialog of document.querySelectorAll('dialog')) {
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog) dialog.close(); // backdrop
      if (e.target.closest('[data-close]')) dialog.close();
    });
  }
  $('#group-form').addEventListener('submit', submitGroup);
  $('#group-search').addEventListener('input', (e) => runGroupSearch(e.target.value));
  $('#rename-form').addEventListener('submit', renameGroup);
  $('#add-search').addEventListener('input', (e) => runAddSearch(e.target.value));
  $('#leave').addEventListener('click', leaveGroup);

  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape' || document.querySelector('dialog[open]')) return;
    if (ui.replyTo) {
      setReply(null);
    }
  });
  document.addEventListener('visibilitychange', () => {
    const conv = activeConv();
    if (conv && document.visibilityState === 'visible') {
      observeUnseen(conv); // what is on screen now counts as seen
      scheduleRender({ list: true, chat: true });
    }
  });
  window.addEventListener('hashchange', applyRoute);
  window.addEventListener('popstate', applyRoute);
  window.addEventListener('storage', (e) => {
    // Logged out in another tab.
    if (e.key === 'parley.session' && !e.newValue && session) signOut({ expired: true });
  });
}

// --------------------------------------------------------------------------- attachments

/** Starts uploading files picked, dropped or pasted into the open chat's tray. */
function addFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length || !activeConv() || ui.editing) return;
  const room = MAX_ATTACHMENTS - ui.tray.length;
  if (files.length > room) showComposerError(`A message carries at most ${MAX_ATTACHMENTS} files.`);
  for (const file of files.slice(0, Math.max(0, room))) {
    if (file.size > MAX_UPLOAD_BYTES) {
      showComposerError(`${file.name} is too large: files are at most ${formatSize(MAX_UPLOAD_BYTES)}.`);
      continue;
    }
    if (file.size === 0) {
      showComposerError(`${file.name} is empty.`);
      continue;
    }
    startUpload(file);
  }
}

function startUpload(file, { durationMs = null, filename = null } = {}) {
  const entry = {
    id: uuid(),
    name: filename || file.name || 'file',
    size: file.size,
    kind: (file.type || '').split('/')[0],
    status: 'uploading',
    progress: 0,
    controller: new AbortController(),
    media: null,
    preview: (file.type || '').startsWith('image/') ? URL.createObjectURL(file) : null,
  };
  ui.tray.push(entry);
  renderTray();
  const promise = mediaClient.upload(file, {
    signal: entry.controller.signal,
    durationMs,
    filename,
    onProgress: (fraction) => {
      entry.progress = fraction;
      const bar = document.querySelector(`[data-tray-id="${entry.id}"] progress`);
      if (bar) bar.value = Math.round(fraction * 100);
    },
  }).then((media) => {
    entry.status = 'ready';
    entry.media = media;
    renderTray();
    return media;
  }).catch((err) => {
    if (err && err.name === 'AbortError') return null;
    entry.status = 'failed';
    entry.error = err && err.code === 'media_too_large' ? 'Too large' : (err && err.code === 'rate_limited' ? 'Too many uploads, try again soon' : 'Upload failed');
    renderTray();
    return null;
  });
  entry.done = promise;
  return entry;
}

function removeFromTray(id) {
  const index = ui.tray.findIndex((t) => t.id === id);
  if (index < 0) return;
  const [entry] = ui.tray.splice(index, 1);
  entry.controller.abort();
  if (entry.preview) URL.revokeObjectURL(entry.preview);
  renderTray();
  $('#composer').focus();
}

function clearTray() {
  for (const entry of ui.tray) {
    if (entry.status === 'uploading') entry.controller.abort();
    if (entry.preview) URL.revokeObjectURL(entry.preview);
  }
  ui.tray = [];
  renderTray();
}

function renderTray() {
  const tray = $('#attach-tray');
  tray.replaceChildren(...ui.tray.map((entry) => h('div', {
    class: `tray-item ${entry.status}`, testid: 'tray-item', dataset: { trayId: entry.id, status: entry.status },
  },
  entry.preview ? h('img', { class: 'tray-preview', src: entry.preview, alt: '' })
    : h('span', { class: 'tray-icon', 'aria-hidden': 'true', text: entry.kind === 'audio' ? '🎤' : entry.kind === 'video' ? '🎬' : '📄' }),
  h('span', { class: 'tray-text' },
    h('span', { class: 'tray-name', dir: 'auto', text: entry.name }),
    entry.status === 'uploading'
      ? h('progress', { max: '100', value: String(Math.round(entry.progress * 100)), testid: 'upload-progress', 'aria-label': `Uploading ${entry.name}` })
      : h('span', { class: 'tray-size', text: entry.status === 'failed' ? entry.error : formatSize(entry.media ? entry.media.size : entry.size) })),
  h('button', {
    type: 'button', class: 'icon-btn small tray-remove', testid: 'tray-remove',
    'aria-label': entry.status === 'uploading' ? `Cancel uploading ${entry.name}` : `Remove ${entry.name}`,
    text: '✕', onclick: () => removeFromTray(entry.id),
  }))));
  tray.hidden = ui.tray.length === 0;
  const uploading = ui.tray.some((t) => t.status === 'uploading');
  $('#send').setAttribute('aria-busy', String(uploading));
}

/** Records a voice note; a second press stops and sends it. */
async function toggleVoiceNote() {
  if (ui.recorder) {
    await finishVoiceNote(true);
    return;
  }
  if (!VoiceRecorder.supported()) {
    showComposerError('This browser cannot record audio.');
    return;
  }
  const recorder = new VoiceRecorder();
  try {
    await recorder.start();
  } catch {
    showComposerError('No microphone, or no permission to use it.');
    return;
  }
  ui.recorder = recorder;
  const button = $('#voice');
  button.classList.add('recording');
  button.setAttribute('aria-label', 'Stop and send the voice message');
  button.setAttribute('aria-pressed', 'true');
  $('#voice-status').hidden = false;
  const tick = () => { $('#voice-time').textContent = formatDuration(recorder.elapsed()); };
  tick();
  ui.recordTimer = setInterval(tick, 250);
}

async function finishVoiceNote(send) {
  const recorder = ui.recorder;
  if (!recorder) return;
  ui.recorder = null;
  clearInterval(ui.recordTimer);
  const button = $('#voice');
  button.classList.remove('recording');
  button.setAttribute('aria-label', 'Record a voice message');
  button.setAttribute('aria-pressed', 'false');
  $('#voice-status').hidden = true;
  if (!send) {
    recorder.cancel();
    return;
  }
  const conv = activeConv();
  const { blob, durationMs } = await recorder.stop();
  if (!conv || blob.size === 0) return;
  const extension = blob.type.includes('ogg') ? 'ogg' : 'webm';
  const entry = startUpload(blob, { durationMs, filename: `voice-message.${extension}` });
  const media = await entry.done;
  const index = ui.tray.indexOf(entry);
  if (index >= 0) ui.tray.splice(index, 1);
  renderTray();
  if (media && activeConv() === conv) sendMessage('', { attachments: [media] });
  else if (!media) showComposerError('The voice message could not be sent.');
}

function bindAttachments() {
  const input = $('#attach-input');
  $('#attach').addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    addFiles(input.files);
    input.value = '';
  });
  $('#voice').addEventListener('click', () => toggleVoiceNote());
  $('#voice-cancel').addEventListener('click', () => finishVoiceNote(false));
  const pane = $('#chat');
  pane.addEventListener('dragover', (event) => {
    if (!event.dataTransfer || !Array.from(event.dataTransfer.types || []).includes('Files')) return;
    event.preventDefault();
    pane.classList.add('dropping');
  });
  pane.addEventListener('dragleave', (event) => {
    if (!pane.contains(event.relatedTarget)) pane.classList.remove('dropping');
  });
  pane.addEventListener('drop', (event) => {
    pane.classList.remove('dropping');
    if (!event.dataTransfer || !event.dataTransfer.files.length) return;
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  });
  $('#composer').addEventListener('paste', (event) => {
    const files = event.clipboardData ? Array.from(event.clipboardData.files || []) : [];
    if (!files.length) return;
    event.preventDefault();
    addFiles(files);
  });
}

function submitComposer() {
  const composer = $('#composer');
  const editing = !!ui.editing;
  if (sendMessage(composer.value)) {
    if (!editing) {
      // (An edit that was sent gave the composer back what it held before.)
      composer.value = '';
      ui.drafts.delete(ui.activeId);
      store.saveDrafts(ui.drafts);
    }
    autoGrow(composer);
    updateCounter();
    showComposerError('');
  }
}

boot();
