// parley web client: wiring of REST, WebSocket, model and UI.

import { Api } from './api.js';
import { Connection } from './conn.js';
import { Store, loadSession, saveSession, clearSession } from './store.js';
import {
  h, $, linkify, utf8Length, formatTime, formatDay, dayKey, formatListTime, formatLastSeen,
  avatar, colorFor, debounce, uuid,
} from './dom.js';

const MAX_CONTENT_BYTES = 64 * 1024;
const PAGE = 50;
const TYPING_TTL_MS = 5000;
const TYPING_SEND_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;
const USERNAME_RE = /^[a-z0-9_.]{3,32}$/;

const api = new Api({ onUnauthorized: () => signOut({ expired: true }) });
let session = null;
let store = null;
let conn = null;

const ui = {
  activeId: null,
  search: '',
  replyTo: null, // {seq, sender_id, text}
  drafts: new Map(),
  presence: new Map(), // user_id -> {status, last_seen}
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
  userFetch: new Set(),
  lastAuthCheck: 0,
  ackTimers: new Map(),
  groupPicked: new Map(),
  leaveArmed: false,
  subscribed: '',
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

async function signOut({ expired = false } = {}) {
  if (!session) return;
  const wasSession = session;
  session = null;
  if (conn) conn.stop();
  conn = null;
  closeTabChannel();
  if (!expired) {
    try {
      api.token = wasSession.token;
      await api.logout();
    } catch {
      /* the token is dropped locally either way */
    }
    if (store) store.clearOutbox();
  }
  api.token = null;
  clearSession();
  store = null;
  resetUi();
  if (location.hash) history.replaceState(null, '', location.pathname);
  showAuth(expired ? 'Your session has ended. Please log in again.' : '');
}

function resetUi() {
  ui.activeId = null;
  ui.search = '';
  ui.replyTo = null;
  ui.drafts.clear();
  ui.presence.clear();
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
  });
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
    store.rememberUser(me);
    renderMe();
  } catch (err) {
    if (!session) return; // 401 already signed out
  }

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
  if (!ui.resendTimer) ui.resendTimer = setInterval(resendStale, 5000);
}

function renderMe() {
  const name = store.me.display_name || store.me.username || '';
  $('#me-name').textContent = name;
  $('#me-username').textContent = store.me.username ? `@${store.me.username}` : '';
  $('#me-avatar').replaceChildren(avatar(store.me.user_id, name, 'small'));
}

async function loadConversations() {
  try {
    const list = await api.allConversations();
    if (!store) return;
    ui.listLoaded = true;
    const seen = new Set();
    for (const data of list) {
      seen.add(data.conversation_id);
      const conv = store.upsertConversation(data);
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
        conv.msgs.clear();
        conv.syncedSeq = conv.last_seq;
      }
    }
    // The list may predate our latest `read`: the open chat stays read.
    const active = activeConv();
    if (active) maybeSendRead(active);
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

function ensureUser(userId) {
  if (!userId || !store || store.isKnownUser(userId) || ui.userFetch.has(userId)) return;
  ui.userFetch.add(userId);
  api.user(userId)
    .then((user) => {
      if (!store) return;
      store.rememberUser(user);
      scheduleRender({ list: true, chat: true, info: true });
    })
    .catch(() => {});
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
  for (const item of store.outbox) if (item.status !== 'failed') transmit(item);
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
  const active = activeConv();
  if (active) maybeSendRead(active);
  scheduleRender({ list: true, chat: true });
}

function onMsgAck(frame) {
  const conv = store.applyAck(frame);
  const stored = conv && conv.msgs.get(frame.seq);
  if (stored && stored.client_msg_id === frame.client_msg_id) tellTabs({ kind: 'message', message: stored });
  if (conv) {
    scheduleAck(conv);
    if (conv.conversation_id === ui.activeId) maybeSendRead(conv);
  }
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
  const { fresh } = store.addMessage(msg);
  if (msg.system) applySystemEvent(conv, msg);
  const fromOther = msg.sender_id !== store.me.user_id;
  if (fromOther) {
    conv.typing.delete(msg.sender_id);
    if (fresh && isNews && msg.seq > conv.last_read_seq) {
      if (!isReadingNow(conv)) {
        conv.unread_count = (conv.unread_count || 0) + 1;
        notify(conv, msg);
      }
    }
  }
  if (conv.syncedSeq < msg.seq) {
    if (!conv.historyLoaded) {
      // Not opened yet: keep no sparse backlog, history loads when it opens.
      conv.msgs.clear();
      conv.syncedSeq = Math.max(conv.syncedSeq, msg.seq);
      conv.msgs.set(msg.seq, msg);
    } else if (!ui.syncing) {
      fillGap(conv);
    }
  }
  scheduleAck(conv);
  if (conv.conversation_id === ui.activeId) maybeSendRead(conv);
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId });
}

function applySystemEvent(conv, msg) {
  const ev = msg.system;
  const ids = [ev.actor_id, ev.user_id, ...(ev.user_ids || [])].filter(Boolean);
  for (const id of ids) ensureUser(id);
  if (ev.event === 'conversation_renamed' && ev.name) conv.name = ev.name;
  if (['members_added', 'member_removed', 'member_left', 'role_changed'].includes(ev.event)) {
    fetchConversation(conv.conversation_id);
  }
}

async function fillGap(conv) {
  if (conv.filling) return;
  if (!conv.historyLoaded) {
    conv.msgs.clear();
    conv.syncedSeq = conv.last_seq;
    return;
  }
  conv.filling = true;
  try {
    for (let round = 0; round < 20 && conv.last_seq > conv.syncedSeq; round++) {
      const page = await api.messages(conv.conversation_id, { afterSeq: conv.syncedSeq, limit: 100 });
      if (!store) return;
      for (const msg of page.messages || []) store.addMessage(msg);
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

function maybeSendRead(conv) {
  if (!isReadingNow(conv)) return;
  const upTo = conv.syncedSeq;
  if (upTo <= 0) return;
  if (upTo > conv.last_read_seq || conv.unread_count > 0) {
    conv.last_read_seq = Math.max(conv.last_read_seq, upTo);
    conv.unread_count = 0;
    scheduleRender({ list: true });
  }
  if (upTo <= conv.readSent || conv.readTimer) return;
  // Coalesce: a sync can bring many messages at once; one `read` covers them all.
  conv.readTimer = setTimeout(() => {
    conv.readTimer = null;
    if (!store || store.convs.get(conv.conversation_id) !== conv) return;
    const seq = conv.syncedSeq;
    if (seq <= conv.readSent) return;
    tellTabs({ kind: 'read', conversation_id: conv.conversation_id, up_to_seq: seq });
    if (conn && conn.send({ type: 'read', conversation_id: conv.conversation_id, up_to_seq: seq })) {
      conv.readSent = seq;
    } else {
      api.markRead(conv.conversation_id, seq).then(() => { conv.readSent = Math.max(conv.readSent, seq); }).catch(() => {});
    }
  }, 100);
}

function onReceipt(frame) {
  const conv = store.convs.get(frame.conversation_id);
  if (!conv) return;
  if (frame.user_id === store.me.user_id) {
    if (frame.status === 'read') {
      // Another of my devices read it.
      conv.last_read_seq = Math.max(conv.last_read_seq, frame.up_to_seq);
      conv.unread_count = frame.up_to_seq >= conv.last_seq
        ? 0
        : Math.min(conv.unread_count, conv.last_seq - frame.up_to_seq);
      scheduleRender({ list: true });
    }
    return;
  }
  store.applyReceipt(conv, frame.user_id, frame.status, frame.up_to_seq);
  if (conv.conversation_id === ui.activeId) scheduleRender({ chat: true });
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
  const conv = store.upsertConversation(data, { authoritative: false });
  if (!known && data.last_seq > 0) fetchConversation(data.conversation_id);
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

function onServerError(frame) {
  if (frame.client_msg_id) {
    const item = store.outbox.find((i) => i.client_msg_id === frame.client_msg_id);
    if (!item) return;
    if (frame.code === 'rate_limited' || frame.code === 'unavailable' || frame.code === 'internal') {
      const delay = frame.retry_after_ms || 3000;
      item.retryAt = Date.now() + delay;
      setTimeout(() => {
        if (store && store.outbox.includes(item) && item.status !== 'failed') transmit(item);
      }, delay);
      if (frame.code === 'rate_limited') toast('Slow down a little: sending again in a moment.');
      return;
    }
    const reasons = {
      content_too_large: 'Too long to send.',
      not_member: 'You are not a member of this conversation.',
      forbidden: 'You may not send here.',
      not_found: 'This conversation no longer exists.',
    };
    store.updateOutbox(item.client_msg_id, { status: 'failed', error: reasons[frame.code] || frame.message || 'Not sent.' });
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
    content_type: 'text',
  };
  if (item.reply_to_seq) frame.reply_to_seq = item.reply_to_seq;
  const ok = conn.send(frame);
  if (ok) item.sentAt = Date.now();
  return ok;
}

function resendStale() {
  if (!store || !conn || !conn.ready) return;
  const now = Date.now();
  for (const item of store.outbox) {
    if (item.status === 'failed') continue;
    if (item.retryAt && item.retryAt > now) continue;
    if (!item.sentAt || now - item.sentAt > 15000) transmit(item);
  }
}

function sendMessage(text) {
  const conv = activeConv();
  if (!conv) return false;
  if (!text.trim()) return false;
  const bytes = utf8Length(text);
  if (bytes > MAX_CONTENT_BYTES) {
    showComposerError(`This message is too long (${formatBytes(bytes)} of ${formatBytes(MAX_CONTENT_BYTES)}). Split it into smaller ones.`);
    return false;
  }
  const item = {
    client_msg_id: uuid(),
    conversation_id: conv.conversation_id,
    content: text,
    reply_to_seq: ui.replyTo ? ui.replyTo.seq : null,
    created_at: new Date().toISOString(),
  };
  store.enqueue(item);
  const stored = store.outbox[store.outbox.length - 1];
  transmit(stored);
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

function onComposerInput() {
  const composer = $('#composer');
  autoGrow(composer);
  updateCounter();
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
    ui.drafts.set(ui.activeId, composer.value);
    stopTypingOut(true);
  }
  const switching = ui.activeId !== id;
  ui.activeId = id;
  document.body.classList.add('chat-open');
  if (switching) {
    setReply(null);
    composer.value = ui.drafts.get(id) || '';
    autoGrow(composer);
    updateCounter();
    showComposerError('');
    ui.msgCache.clear();
    $('#message-items').replaceChildren();
  }
  if (!conv.members) fetchConversation(id);
  updatePresenceSubscription();
  scheduleRender({ list: true, chat: true, bottom: switching });
  if (!conv.historyLoaded) loadLatest(conv);
  else fetchReceiptsFor(conv);
  maybeSendRead(conv);
  if (window.matchMedia('(pointer: fine)').matches) setTimeout(() => composer.focus(), 0);
}

function closeChat() {
  if (ui.activeId) {
    ui.drafts.set(ui.activeId, $('#composer').value);
    stopTypingOut(true);
  }
  ui.activeId = null;
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
    const page = await api.messages(conv.conversation_id, { beforeSeq: conv.syncedSeq + 1, limit: PAGE });
    if (!store) return;
    for (const msg of page.messages || []) store.addMessage(msg);
    conv.historyLoaded = true;
    conv.hasMoreBefore = !!page.has_more && (store.minSeq(conv) || 1) > 1;
    if (conv.last_seq > conv.syncedSeq) fillGap(conv);
  } catch {
    conv.historyError = true;
  } finally {
    conv.loadingHistory = false;
  }
  scheduleAck(conv);
  maybeSendRead(conv);
  fetchReceiptsFor(conv);
  scheduleRender({ list: true, chat: conv.conversation_id === ui.activeId, bottom: true, fill: true });
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
    const page = await api.messages(conv.conversation_id, { beforeSeq: min, limit: PAGE });
    if (!store) return;
    const before = box.scrollHeight;
    const top = box.scrollTop;
    for (const msg of page.messages || []) store.addMessage(msg);
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
    .filter((m) => m.sender_id === store.me.user_id && m.content_type !== 'system')
    .slice(-10)
    .filter((m) => !conv.receiptsFetched.has(m.seq));
  if (!mine.length) return;
  for (const m of mine) conv.receiptsFetched.add(m.seq);
  await Promise.all(mine.map(async (m) => {
    try {
      const r = await api.receipts(conv.conversation_id, m.seq);
      for (const id of r.read_by || []) if (id !== store.me.user_id) store.applyReceipt(conv, id, 'read', m.seq);
      for (const id of r.delivered_to || []) if (id !== store.me.user_id) store.applyReceipt(conv, id, 'delivered', m.seq);
    } catch {
      conv.receiptsFetched.delete(m.seq);
    }
  }));
  if (store && conv.conversation_id === ui.activeId) scheduleRender({ chat: true });
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
  const query = ui.search.trim().toLowerCase();
  const convs = store.sortedConversations().filter((conv) => {
    if (!query) return true;
    const title = store.title(conv).toLowerCase();
    const other = store.otherMember(conv);
    const username = other ? (store.users.get(other.user_id)?.username || '') : '';
    return title.includes(query) || username.includes(query);
  });
  const items = convs.map((conv) => renderListItem(conv));
  list.replaceChildren(...items);
  $('#conv-empty').hidden = store.convs.size > 0 || !!query;
  const total = store.totalUnread();
  document.title = total > 0 ? `(${total}) parley` : 'parley';
}

function renderListItem(conv) {
  const title = store.title(conv);
  const other = conv.type === 'direct' ? store.otherMember(conv) : null;
  const online = other && ui.presence.get(other.user_id)?.status === 'online';
  const pendingItems = store.pendingFor(conv.conversation_id);
  const lastPending = pendingItems[pendingItems.length - 1];
  const typingNames = typingUsers(conv);
  let preview;
  let previewClass = 'preview';
  if (typingNames.length) {
    preview = conv.type === 'group' ? `${firstName(typingNames[0])} is typing…` : 'typing…';
    previewClass += ' typing-preview';
  } else if (lastPending) {
    preview = `You: ${oneLine(lastPending.content)}`;
  } else if (conv.last_message) {
    preview = previewText(conv, conv.last_message);
  } else {
    preview = conv.type === 'group' ? 'Group created' : 'Say hello 👋';
  }
  const when = lastPending ? new Date(lastPending.created_at) : new Date(conv.last_activity_at || conv.created_at || Date.now());
  const unread = conv.unread_count > 0 ? conv.unread_count : 0;
  const ownLast = !lastPending && conv.last_message && conv.last_message.sender_id === store.me.user_id && conv.last_message.content_type !== 'system';
  return h('li', {
    class: `conv-item${conv.conversation_id === ui.activeId ? ' active' : ''}${unread ? ' has-unread' : ''}`,
    testid: 'conversation-item',
    dataset: { conversationId: conv.conversation_id, type: conv.type },
    role: 'button',
    tabindex: '0',
    'aria-label': `${title}${unread ? `, ${unread} unread` : ''}`,
    onclick: () => navigate(conv.conversation_id),
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); navigate(conv.conversation_id); } },
  },
  h('div', { class: 'avatar-wrap' },
    conv.type === 'group' ? avatar(conv.conversation_id, title, 'group') : avatar(other ? other.user_id : conv.conversation_id, title),
    online ? h('span', { class: 'online-dot', testid: 'online-dot', title: 'online' }) : null),
  h('div', { class: 'conv-body' },
    h('div', { class: 'conv-top' },
      h('span', { class: 'conv-title', testid: 'conversation-title', text: title }),
      h('time', { class: 'conv-time', datetime: when.toISOString(), text: formatListTime(when) })),
    h('div', { class: 'conv-bottom' },
      ownLast ? ticksEl(store.messageStatus(conv, conv.last_message.seq).status, true) : null,
      lastPending ? ticksEl(lastPending.status === 'failed' ? 'failed' : 'sending', true) : null,
      h('span', { class: previewClass, testid: 'conversation-preview', text: preview }),
      unread ? h('span', { class: 'badge', testid: 'unread-badge', text: unread > 999 ? '999+' : String(unread) }) : null)));
}

function previewText(conv, msg) {
  if (msg.content_type === 'system') return systemText(msg);
  const text = oneLine(msg.content);
  if (msg.sender_id === store.me.user_id) return `You: ${text}`;
  if (conv.type === 'group') return `${firstName(store.userName(msg.sender_id))}: ${text}`;
  return text;
}

function oneLine(text) {
  const line = String(text || '').replace(/\s+/g, ' ').trim();
  return line.length > 140 ? `${line.slice(0, 140)}…` : line;
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
    case 'conversation_renamed':
      return ev.name
        ? `${nameOrYou(ev.actor_id)} renamed the group to “${ev.name}”`
        : `${nameOrYou(ev.actor_id)} changed the group description`;
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
  $('#chat-avatar').replaceChildren(conv.type === 'group'
    ? avatar(conv.conversation_id, title, 'group')
    : avatar(other ? other.user_id : conv.conversation_id, title));
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
  const pendingItems = store.pendingFor(conv.conversation_id);
  const all = [
    ...stored.map((m) => ({ kind: 'stored', m, date: new Date(m.created_at) })),
    ...pendingItems.map((p) => ({ kind: 'pending', m: p, date: new Date(p.created_at) })),
  ];
  const myId = store.me.user_id;
  let lastOwnSeq = 0;
  for (const m of stored) if (m.sender_id === myId && m.content_type !== 'system') lastOwnSeq = m.seq;

  const nodes = [];
  const nextCache = new Map();
  let prevDay = null;
  let prev = null;
  for (const item of all) {
    const day = dayKey(item.date);
    if (day !== prevDay) {
      const key = `d:${day}`;
      const label = formatDay(item.date);
      nodes.push(cached(key, label, () => h('div', { class: 'day-sep', testid: 'day-separator', role: 'separator' }, h('span', { text: label })), nextCache));
      prevDay = day;
      prev = null;
    }
    const m = item.m;
    if (item.kind === 'stored' && m.content_type === 'system') {
      const text = systemText(m);
      nodes.push(cached(`s:${m.seq}`, text, () => h('div', {
        class: 'system-msg', testid: 'system-message', dataset: { seq: String(m.seq) },
      }, h('span', { text })), nextCache));
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
    const sig = JSON.stringify([m.content, status, readInfo && readInfo.read, readInfo && readInfo.total, showReadBy,
      grouped, senderName, quote && [quote.name, quote.text], m.error, conv.type]);
    const key = item.kind === 'pending' ? `p:${m.client_msg_id}` : `m:${m.seq}`;
    nodes.push(cached(key, sig, () => messageEl(conv, item, { own, status, readInfo, showReadBy, grouped, quote, senderName, senderId }), nextCache));
    prev = { senderId, date: item.date };
  }
  ui.msgCache = nextCache;
  const container = $('#message-items');
  // Only touch the DOM when the sequence of nodes changed.
  const current = container.children;
  let same = current.length === nodes.length;
  for (let i = 0; same && i < nodes.length; i++) same = current[i] === nodes[i];
  if (!same) container.replaceChildren(...nodes);
  if (bottom || (!keep && atBottom)) box.scrollTop = box.scrollHeight;
  updateJumpButton();
}

function cached(key, sig, build, nextCache) {
  const hit = ui.msgCache.get(key);
  if (hit && hit.sig === sig) {
    nextCache.set(key, hit);
    return hit.el;
  }
  const el = build();
  nextCache.set(key, { el, sig });
  return el;
}

function quoteFor(conv, seq) {
  const msg = store.findBySeq(conv.conversation_id, seq) || (conv.quotes && conv.quotes.get(seq));
  if (!msg) {
    fetchQuote(conv, seq);
    return { name: '', text: 'Original message', seq };
  }
  const text = msg.content_type === 'system' ? systemText(msg) : oneLine(msg.content);
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

function ticksEl(status, small = false) {
  const ns = 'http://www.w3.org/2000/svg';
  const wrap = document.createElement('span');
  wrap.className = `ticks ticks-${status}${small ? ' small' : ''}`;
  wrap.dataset.testid = 'message-ticks';
  wrap.dataset.status = status;
  const labels = { sending: 'Sending', sent: 'Sent', delivered: 'Delivered', read: 'Read', failed: 'Not sent' };
  wrap.setAttribute('aria-label', labels[status] || status);
  wrap.title = labels[status] || status;
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', status === 'delivered' || status === 'read' ? '0 0 20 12' : '0 0 14 12');
  svg.setAttribute('aria-hidden', 'true');
  const path = (d) => {
    const p = document.createElementNS(ns, 'path');
    p.setAttribute('d', d);
    svg.appendChild(p);
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
  } else {
    path('M1.5 6.5 5 10l7.5-8');
    path('M8.5 9.2 9.3 10l7.5-8');
  }
  wrap.appendChild(svg);
  return wrap;
}

function messageEl(conv, item, opts) {
  const m = item.m;
  const { own, status, readInfo, showReadBy, grouped, quote, senderName, senderId } = opts;
  const isGroup = conv.type === 'group';
  const content = h('div', { class: 'msg-content', testid: 'message-content' });
  content.appendChild(linkify(m.content || ''));
  const time = h('time', {
    class: 'msg-time', testid: 'message-time', datetime: item.date.toISOString(),
    title: item.date.toLocaleString(), text: formatTime(item.date),
  });
  const meta = h('span', { class: 'msg-meta' }, time, own ? ticksEl(status) : null);
  if (own && readInfo && isGroup) {
    meta.title = `Read by ${readInfo.read} of ${readInfo.total}, delivered to ${readInfo.delivered} of ${readInfo.total}`;
  }
  const quoteEl = quote ? h('button', {
    type: 'button', class: 'quote', testid: 'reply-quote', dataset: { seq: String(quote.seq) },
    onclick: () => jumpTo(quote.seq),
  }, quote.name ? h('span', { class: 'quote-name', text: quote.name }) : null, h('span', { class: 'quote-text', text: quote.text })) : null;
  const bubble = h('div', { class: 'bubble' },
    isGroup && !own && !grouped ? h('div', {
      class: 'msg-sender', testid: 'message-sender', text: senderName, style: { color: colorFor(senderId) },
    }) : null,
    quoteEl,
    content,
    meta);
  const actions = item.kind === 'stored'
    ? h('div', { class: 'msg-actions' }, h('button', {
      type: 'button', class: 'msg-action', testid: 'reply-button', title: 'Reply', 'aria-label': 'Reply',
      onclick: () => setReply({ seq: m.seq, sender_id: m.sender_id, text: oneLine(m.content) }),
    }, replyIcon()))
    : null;
  const failed = item.kind === 'pending' && status === 'failed'
    ? h('div', { class: 'msg-failed', testid: 'message-failed' },
      h('span', { text: m.error || 'Not sent.' }), ' ',
      h('button', { type: 'button', class: 'link-btn', text: 'Retry', onclick: () => retryFailed(m.client_msg_id) }), ' · ',
      h('button', { type: 'button', class: 'link-btn', text: 'Delete', onclick: () => deleteFailed(m.client_msg_id) }))
    : null;
  const row = h('div', {
    class: `msg ${own ? 'own' : 'other'}${grouped ? ' grouped' : ''}${isGroup ? ' in-group' : ''}`,
    testid: 'message',
    dataset: {
      seq: item.kind === 'stored' ? String(m.seq) : '',
      status,
      own: String(own),
      sender: senderName,
      clientMsgId: m.client_msg_id || '',
    },
  },
  isGroup && !own ? (grouped ? h('div', { class: 'avatar-spacer' }) : avatar(senderId, senderName, 'tiny')) : null,
  h('div', { class: 'msg-col' },
    h('div', { class: 'bubble-row' }, own ? actions : null, bubble, own ? null : actions),
    failed,
    showReadBy && readInfo ? h('div', {
      class: `read-by${readInfo.read >= readInfo.total && readInfo.total > 0 ? ' all' : ''}`,
      testid: 'read-by', dataset: { read: String(readInfo.read), total: String(readInfo.total) },
      text: `Read by ${readInfo.read} of ${readInfo.total}`,
    }) : null));
  return row;
}

function replyIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const p = document.createElementNS(ns, 'path');
  p.setAttribute('d', 'M10 9V5l-7 7 7 7v-4.1c5 0 8.5 1.6 11 5.1-1-5-4-10-11-11Z');
  svg.appendChild(p);
  return svg;
}

function jumpTo(seq) {
  const el = document.querySelector(`#message-items [data-testid="message"][data-seq="${seq}"]`);
  if (!el) {
    toast('That message is further back in the history.');
    return;
  }
  el.scrollIntoView({ block: 'center', behavior: 'smooth' });
  el.classList.add('flash');
  setTimeout(() => el.classList.remove('flash'), 1200);
}

function retryFailed(clientMsgId) {
  const item = store.updateOutbox(clientMsgId, { status: 'sending', error: null });
  if (item) transmit(item);
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
  if (conv.muted_until && Date.parse(conv.muted_until) > Date.now()) return;
  const title = conv.type === 'group' ? `${store.userName(msg.sender_id)} · ${store.title(conv)}` : store.title(conv);
  const body = msg.content_type === 'system' ? systemText(msg) : oneLine(msg.content);
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
  }, avatar(user.user_id, name, 'small'),
  h('span', { class: 'user-row-text' },
    h('span', { class: 'user-row-name', text: name }),
    h('span', { class: 'user-row-username', text: `@${user.username}` })));
}

async function searchPeople(query) {
  const q = query.trim();
  if (!q) return [];
  const result = await api.searchUsers(q);
  const users = (result && result.users) || [];
  for (const u of users) store.rememberUser(u);
  return users.filter((u) => u.user_id !== store.me.user_id);
}

const runSidebarSearch = debounce(async (query) => {
  const box = $('#search-results');
  if (!query.trim()) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  try {
    const users = await searchPeople(query);
    if (ui.search !== query) return;
    box.hidden = false;
    box.replaceChildren(
      h('div', { class: 'section-label', text: 'People' }),
      ...(users.length
        ? users.map((u) => userRow(u, () => startDirect(u), 'user-result'))
        : [h('div', { class: 'muted pad', text: 'Nobody found.' })]),
    );
  } catch {
    /* keep the old results */
  }
}, 200);

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
    h('span', { text: u.display_name || u.username }),
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

function openInfo() {
  const conv = activeConv();
  if (!conv || conv.type !== 'group') return;
  ui.leaveArmed = false;
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
  $('#info-avatar').replaceChildren(avatar(conv.conversation_id, title, 'group'));
  const members = conv.members || [];
  $('#info-count').textContent = `${conv.member_count || members.length} members`;
  const myRole = store.myRole(conv);
  const isAdmin = myRole === 'admin' || myRole === 'owner';
  for (const el of dialog.querySelectorAll('.admin-only')) el.hidden = !isAdmin;
  const rank = { owner: 0, admin: 1, member: 2 };
  const sorted = [...members].sort((a, b) => (rank[a.role] ?? 3) - (rank[b.role] ?? 3)
    || store.userName(a.user_id).localeCompare(store.userName(b.user_id)));
  $('#member-list').replaceChildren(...sorted.map((m) => {
    const me = m.user_id === store.me.user_id;
    const name = me ? `${store.userName(m.user_id)} (you)` : store.userName(m.user_id);
    const p = ui.presence.get(m.user_id);
    const canRemove = isAdmin && !me && (m.role === 'member' || (myRole === 'owner' && m.role !== 'owner'));
    return h('li', { class: 'member-row', testid: 'member-row', dataset: { userId: m.user_id, role: m.role } },
      avatar(m.user_id, store.userName(m.user_id), 'small'),
      h('span', { class: 'member-text' },
        h('span', { class: 'member-name', text: name }),
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
  const leave = $('#leave');
  leave.textContent = ui.leaveArmed ? 'Click again to leave' : 'Leave group';
  leave.classList.toggle('armed', ui.leaveArmed);
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
    store.rememberUser(user);
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
  const el = $('#toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, ms);
}

// --------------------------------------------------------------------------- bindings

function bindApp() {
  $('#logout').addEventListener('click', () => signOut());
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
  composer.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      submitComposer();
    } else if (e.key === 'Escape' && ui.replyTo) {
      e.preventDefault();
      setReply(null);
    }
  });
  composer.addEventListener('blur', () => stopTypingOut(true));
  $('#composer-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitComposer();
  });
  $('#reply-cancel').addEventListener('click', () => setReply(null));

  const box = $('#messages');
  box.addEventListener('scroll', () => {
    updateJumpButton();
    const conv = activeConv();
    if (conv && box.scrollTop < 200) loadOlder(conv);
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
      maybeSendRead(conv);
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

function submitComposer() {
  const composer = $('#composer');
  if (sendMessage(composer.value)) {
    composer.value = '';
    ui.drafts.delete(ui.activeId);
    autoGrow(composer);
    updateCounter();
    showComposerError('');
  }
}

boot();
