// Client-side model: conversations, messages merged by (conversation_id, seq), users,
// receipts, and the persistent outbox of messages not yet acknowledged by the server.
//
// Changes to messages (`reaction`, `edit`, `delete`) are entries of the same seq stream:
// they are held like any message (so cursors and gap detection count them) and applied to
// their target, last writer (highest seq) wins. A message from the server carries its state
// as of a "version" (the conversation's last seq when it was asked for); entries after that
// version are applied on top of it, older ones are already in it. Reactions are kept per
// user (`_reactors`: user_id -> {emoji, seq}); for a message that arrived with counts only,
// whose is which is asked for (`onNeedReactors`) when someone else's reaction must be applied.

const SESSION_KEY = 'parley.session';
/** Content types of the entries that change another message. */
export const CHANGE_TYPES = new Set(['reaction', 'edit', 'delete']);
export const isChange = (msg) => !!msg && CHANGE_TYPES.has(msg.content_type);
const outboxKey = (userId) => `parley.outbox.${userId}`;
const draftsKey = (userId) => `parley.drafts.${userId}`;

export function loadSession() {
  try {
    const session = JSON.parse(localStorage.getItem(SESSION_KEY) || 'null');
    return session && session.token && session.user_id ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  localStorage.setItem(SESSION_KEY, JSON.stringify(session));
}

export function clearSession() {
  localStorage.removeItem(SESSION_KEY);
}

export class Store {
  constructor(me, { onNeedReactors = () => {} } = {}) {
    this.me = me; // {user_id, device_id, username?, display_name?}
    this.onNeedReactors = onNeedReactors; // (conv, seq): who reacted with what is needed
    this.users = new Map();
    this.convs = new Map();
    this.removed = new Set();
    this.dropped = new Set(); // client_msg_ids this tab resolved or deleted
    this.outbox = this._loadOutbox();
  }

  // ---- users ------------------------------------------------------------------------

  rememberUser(user) {
    if (!user || !user.user_id) return;
    const known = this.users.get(user.user_id) || { user_id: user.user_id };
    if (user.username) known.username = user.username;
    if (user.display_name) known.display_name = user.display_name;
    if (user.status_message !== undefined) known.status_message = user.status_message;
    this.users.set(user.user_id, known);
  }

  /**
   * A profile (`GET /users/me`, `/users/{id}`, a people search): besides the name it says
   * whether the user has a picture. Members of a conversation carry names only, so their
   * pictures are known once their profile has been fetched (`hasProfile`).
   */
  rememberProfile(profile) {
    if (!profile || !profile.user_id) return;
    this.rememberUser(profile);
    const known = this.users.get(profile.user_id);
    known.avatar_media_id = profile.avatar_media_id || null;
    known.profile = true;
    if (profile.user_id === this.me.user_id) this.me.avatar_media_id = known.avatar_media_id;
  }

  hasProfile(userId) {
    return !!this.users.get(userId)?.profile;
  }

  /** The media id of the user's picture: null when they have none or it is not known yet. */
  avatarOf(userId) {
    if (userId === this.me.user_id && this.me.avatar_media_id !== undefined) return this.me.avatar_media_id;
    return this.users.get(userId)?.avatar_media_id || null;
  }

  userName(userId) {
    if (userId === this.me.user_id) return this.me.display_name || this.me.username || 'You';
    const user = this.users.get(userId);
    return (user && (user.display_name || user.username)) || 'Someone';
  }

  isKnownUser(userId) {
    const user = this.users.get(userId);
    return !!(user && (user.display_name || user.username));
  }

  // ---- conversations ----------------------------------------------------------------

  _blank(id) {
    return {
      conversation_id: id,
      type: 'direct',
      name: null,
      avatar_media_id: null, // a group's picture
      members: null,
      member_count: 0,
      last_seq: 0,
      last_message: null,
      unread_count: 0,
      unread_mentions: 0,
      last_read_seq: 0,
      msgs: new Map(),
      changes: new Map(), // target seq -> change entries held for it
      syncedSeq: 0,
      historyLoaded: false,
      hasMoreBefore: true,
      loadingHistory: false,
      receipts: new Map(),
      typing: new Map(),
      readSent: 0,
      ackSent: 0,
      receiptsFetched: new Set(),
    };
  }

  /** Merge a server conversation object, keeping local message state. */
  upsertConversation(data, { authoritative = true } = {}) {
    const id = data.conversation_id;
    this.removed.delete(id);
    let conv = this.convs.get(id);
    const isNew = !conv;
    if (!conv) {
      conv = this._blank(id);
      this.convs.set(id, conv);
    }
    for (const key of ['type', 'name', 'description', 'member_count', 'created_at', 'disappearing_seconds']) {
      if (data[key] !== undefined) conv[key] = data[key];
    }
    // A whole conversation object (it has its type) states the group's picture: no
    // `avatar_media_id` there means none. Partial updates (a new last message) leave it.
    if (data.type === 'group' || data.type === 'direct') conv.avatar_media_id = data.avatar_media_id || null;
    // This user's own settings come only in their own views of the conversation (the
    // list, GET, a settings change); a frame every member receives carries none of them.
    if (data.archived !== undefined) {
      conv.muted_until = data.muted_until ?? null;
      conv.archived = !!data.archived;
      conv.pinned_at = data.pinned ? (data.pinned_at || conv.pinned_at || new Date().toISOString()) : null;
      conv.marked_unread = !!data.marked_unread;
    }
    if (Array.isArray(data.members)) {
      conv.members = data.members;
      conv.member_count = data.member_count || data.members.length;
      for (const member of data.members) this.rememberUser(member);
    }
    if (typeof data.last_seq === 'number' && data.last_seq >= conv.last_seq) {
      conv.last_seq = data.last_seq;
      if (data.last_message && !isChange(data.last_message)) {
        // The held message is kept current by the change entries that arrive.
        const held = conv.msgs.get(data.last_message.seq);
        if (held) conv.last_message = held;
        else {
          data.last_message._v = data.last_seq;
          conv.last_message = data.last_message;
        }
      }
      if (data.last_activity_at) conv.last_activity_at = data.last_activity_at;
    } else if (data.last_activity_at && !conv.last_activity_at) {
      conv.last_activity_at = data.last_activity_at;
    }
    if (!conv.last_activity_at) conv.last_activity_at = data.created_at || new Date().toISOString();
    if (typeof data.last_read_seq === 'number') conv.last_read_seq = Math.max(conv.last_read_seq, data.last_read_seq);
    if (authoritative && typeof data.unread_count === 'number') conv.unread_count = data.unread_count;
    if (authoritative && typeof data.unread_mentions === 'number') conv.unread_mentions = data.unread_mentions;
    if (isNew) conv.syncedSeq = conv.last_seq;
    if (typeof data.cleared_seq === 'number' && data.cleared_seq > (conv.cleared_seq || 0)) {
      this.clearUpTo(conv, data.cleared_seq, data);
    }
    if (data.last_message) this._learnFromMessage(data.last_message);
    return conv;
  }

  /**
   * I deleted the chat for me up to `seq` (on this device or another): nothing up to it
   * stays, the history starts after it, and the counts are the server's as of the clear.
   */
  clearUpTo(conv, seq, data = {}) {
    conv.cleared_seq = seq;
    for (const held of [...conv.msgs.keys()]) if (held <= seq) conv.msgs.delete(held);
    for (const target of [...conv.changes.keys()]) if (target <= seq) conv.changes.delete(target);
    conv.syncedSeq = Math.max(conv.syncedSeq, seq);
    conv.readSent = Math.max(conv.readSent || 0, seq);
    if (conv.last_message && conv.last_message.seq <= seq) conv.last_message = null;
    conv.unread_count = typeof data.unread_count === 'number' ? data.unread_count : 0;
    conv.unread_mentions = typeof data.unread_mentions === 'number' ? data.unread_mentions : 0;
    conv.hasMoreBefore = false;
    this.advanceSynced(conv);
  }

  /** A chat I deleted for me, with nothing since: it stays out of the list. */
  isCleared(conv) {
    if (!conv.cleared_seq) return false;
    if (conv.last_message && conv.last_message.seq > conv.cleared_seq) return false;
    for (const [seq, msg] of conv.msgs) if (seq > conv.cleared_seq && !msg.hidden && !isChange(msg)) return false;
    return this.pendingMessages(conv.conversation_id).length === 0;
  }

  removeConversation(id) {
    this.convs.delete(id);
    this.removed.add(id);
    const before = this.outbox.length;
    for (const item of this.outbox) if (item.conversation_id === id) this.dropped.add(item.client_msg_id);
    this.outbox = this.outbox.filter((item) => item.conversation_id !== id);
    if (this.outbox.length !== before) this._saveOutbox();
  }

  /**
   * The chat list as the server orders it: pinned first (newest pin first), then newest
   * activity first. `archived`: the archive instead of the list.
   */
  sortedConversations({ archived = false } = {}) {
    const time = (conv) => {
      const pending = this.pendingMessages(conv.conversation_id);
      const last = pending.length ? pending[pending.length - 1].created_at : null;
      const t = Date.parse(conv.last_activity_at || conv.created_at || 0) || 0;
      return Math.max(t, last ? Date.parse(last) : 0);
    };
    const pin = (conv) => (conv.pinned_at ? Date.parse(conv.pinned_at) || 1 : 0);
    return [...this.convs.values()]
      .filter((conv) => !!conv.archived === archived && !this.isCleared(conv))
      .sort((a, b) => pin(b) - pin(a) || time(b) - time(a));
  }

  archivedCount() {
    let count = 0;
    for (const conv of this.convs.values()) if (conv.archived && !this.isCleared(conv)) count += 1;
    return count;
  }

  /** Whether notifications of `conv` are silenced now ("forever" or a time to come). */
  isMuted(conv, now = Date.now()) {
    const until = conv.muted_until;
    if (!until) return false;
    return until === 'forever' || Date.parse(until) > now;
  }

  /**
   * A new message (not a change) arrived: an archived chat comes back to the list unless
   * it is muted, as the server decides it too.
   */
  noteArrival(conv) {
    if (conv.archived && !this.isMuted(conv)) conv.archived = false;
  }

  otherMember(conv) {
    if (!conv.members) return null;
    return conv.members.find((m) => m.user_id !== this.me.user_id) || null;
  }

  title(conv) {
    if (conv.type === 'group') return conv.name || 'Unnamed group';
    const other = this.otherMember(conv);
    if (other) return this.userName(other.user_id);
    if (conv.members && conv.members.length === 1) return `${this.userName(this.me.user_id)} (you)`;
    return conv.name || 'Direct chat';
  }

  myRole(conv) {
    const me = conv.members && conv.members.find((m) => m.user_id === this.me.user_id);
    return me ? me.role : 'member';
  }

  totalUnread() {
    let total = 0;
    for (const conv of this.convs.values()) total += Math.max(0, conv.unread_count || 0);
    return total;
  }

  // ---- messages ---------------------------------------------------------------------

  _learnFromMessage(msg) {
    if (msg.system) {
      // Names arrive with conversation members; nothing to learn from ids alone.
    }
  }

  /**
   * Merge one stored message. Returns {conv, fresh, target} where fresh is true if this seq
   * was not known before, and target is the message a change entry changed (if held).
   * Resolves a pending outbox entry with the same client_msg_id. `version`: the
   * conversation's last seq when the message was asked for (its state includes every
   * change up to there); a message delivered live is current as of its own seq.
   */
  addMessage(msg, { version = 0 } = {}) {
    const conv = this.convs.get(msg.conversation_id);
    if (!conv) return { conv: null, fresh: false, target: null };
    if (msg.sender_id === this.me.user_id && msg.client_msg_id) this._resolveOutbox(msg.client_msg_id);
    // Deleted with the chat (a late page, a frame that crossed the clear): not ours any
    // more. A change to such a message keeps its seq but applies to nothing.
    const cleared = conv.cleared_seq || 0;
    if (msg.seq <= cleared) return { conv, fresh: false, target: null };
    if (isChange(msg) && msg.target_seq <= cleared) {
      const fresh = !conv.msgs.has(msg.seq);
      conv.msgs.set(msg.seq, { ...msg, hidden: true, content: '' });
      this.advanceSynced(conv);
      return { conv, fresh, target: null };
    }
    if (isChange(msg)) return this._addChange(conv, msg);
    const held = conv.msgs.get(msg.seq);
    const fresh = !held;
    const stored = this._merge(conv, held, msg, Math.max(version, msg.seq));
    if (msg.seq > conv.last_seq) {
      conv.last_seq = msg.seq;
      conv.last_message = stored;
      conv.last_activity_at = msg.created_at;
    } else if (conv.last_message && conv.last_message.seq === msg.seq) {
      conv.last_message = stored;
    } else if (!conv.last_message && msg.seq === conv.last_seq) {
      conv.last_message = stored;
    }
    this.advanceSynced(conv);
    return { conv, fresh, target: null };
  }

  /** The newer state of a message: what we hold, or what arrived plus later changes. */
  _merge(conv, held, msg, version) {
    if (held && (held._v || 0) >= version) {
      if (msg.hidden && !held.hidden) this._hideMessage(held);
      return held;
    }
    msg._v = version;
    msg.reactions = Array.isArray(msg.reactions) ? msg.reactions : [];
    msg.deleted = !!msg.deleted;
    // Whose reaction is which is known when there are none yet.
    msg._reactors = msg.reactions.length ? null : new Map();
    if (held && held.hidden) this._hideMessage(msg);
    conv.msgs.set(msg.seq, msg);
    this._replay(conv, msg, version);
    return msg;
  }

  _addChange(conv, entry) {
    const fresh = !conv.msgs.has(entry.seq);
    conv.msgs.set(entry.seq, entry);
    if (fresh) {
      const list = conv.changes.get(entry.target_seq) || [];
      list.push(entry);
      conv.changes.set(entry.target_seq, list);
    }
    // A change moves the cursors, never the preview or the list's order.
    if (entry.seq > conv.last_seq) conv.last_seq = entry.seq;
    let target = conv.msgs.get(entry.target_seq);
    if (!target && conv.last_message && conv.last_message.seq === entry.target_seq) target = conv.last_message;
    if (target && !isChange(target)) this._applyChange(conv, target, entry);
    else target = null;
    this.advanceSynced(conv);
    return { conv, fresh, target };
  }

  /** Apply the held changes of a message newer than `after`, oldest first. */
  _replay(conv, target, after, only = null) {
    const list = conv.changes.get(target.seq);
    if (!list) return;
    for (const entry of [...list].sort((a, b) => a.seq - b.seq)) {
      if (entry.seq > after && (!only || entry.content_type === only)) this._applyChange(conv, target, entry);
    }
  }

  /** One change entry on its target; entries already in the target's state do nothing. */
  _applyChange(conv, target, entry) {
    if (entry.seq <= (target._v || 0)) return false;
    if (entry.content_type === 'delete') {
      if (target.deleted) return false;
      target.deleted = true;
      target.content = '';
      target.mentions = [];
      target.reactions = [];
      target._reactors = new Map();
      return true;
    }
    if (target.deleted) return false;
    if (entry.content_type === 'edit') {
      if (entry.seq <= (target._editSeq || 0)) return false;
      target._editSeq = entry.seq;
      target.content = entry.content;
      target.edited_at = entry.created_at;
      return true;
    }
    if (entry.content_type === 'reaction') return this._applyReaction(conv, target, entry.sender_id, entry.content, entry.seq);
    return false;
  }

  _applyReaction(conv, target, userId, emoji, seq) {
    const mine = userId === this.me.user_id;
    if (!target._reactors) {
      if (!mine) {
        // Counts only, and this person may have reacted before: ask who reacted with what.
        this.onNeedReactors(conv, target.seq);
        return false;
      }
      // Mine is known from the `me` flags.
      if (seq <= (target._mySeq || 0)) return false;
      target._mySeq = seq;
      const counts = target.reactions.map((r) => ({ ...r }));
      const old = counts.find((r) => r.me);
      if (old) {
        old.count -= 1;
        old.me = false;
      }
      if (emoji) {
        const hit = counts.find((r) => r.emoji === emoji);
        if (hit) {
          hit.count += 1;
          hit.me = true;
        } else counts.push({ emoji, count: 1, me: true });
      }
      target.reactions = counts.filter((r) => r.count > 0);
      return true;
    }
    const current = target._reactors.get(userId);
    if (current && current.seq >= seq) return false;
    target._reactors.set(userId, { emoji, seq });
    target.reactions = this._countReactions(target);
    return true;
  }

  /** Counts per emoji from the per-user reactions, in the order the emoji were first shown. */
  _countReactions(target, order = target.reactions.map((r) => r.emoji)) {
    const counts = new Map(order.map((emoji) => [emoji, { emoji, count: 0, me: false }]));
    for (const [userId, { emoji }] of target._reactors) {
      if (!emoji) continue;
      if (!counts.has(emoji)) counts.set(emoji, { emoji, count: 0, me: false });
      const entry = counts.get(emoji);
      entry.count += 1;
      if (userId === this.me.user_id) entry.me = true;
    }
    return [...counts.values()].filter((r) => r.count > 0);
  }

  /**
   * Who reacted with what (`GET …/reactions`), as of `version` (the conversation's last
   * seq when it was asked for); reactions that arrived after it are applied again on top.
   */
  setReactors(conversationId, seq, reactions, version) {
    const conv = this.convs.get(conversationId);
    const target = conv && conv.msgs.get(seq);
    if (!target || isChange(target) || target.deleted) return false;
    if ((target._reactorsV || 0) > version) return false;
    target._reactorsV = version;
    const map = new Map();
    for (const { emoji, user_ids: userIds } of reactions || []) {
      for (const userId of userIds || []) map.set(userId, { emoji, seq: version });
    }
    target._reactors = map;
    target.reactions = this._countReactions(target, (reactions || []).map((r) => r.emoji));
    this._replay(conv, target, version, 'reaction');
    return true;
  }

  /** Delete for me: the message is not shown any more (it keeps its seq). */
  hideMessage(conversationId, seq) {
    const conv = this.convs.get(conversationId);
    if (!conv) return null;
    const msg = conv.msgs.get(seq);
    if (msg && !isChange(msg)) this._hideMessage(msg);
    if (conv.last_message && conv.last_message.seq === seq) this._hideMessage(conv.last_message);
    return conv;
  }

  _hideMessage(msg) {
    msg.hidden = true;
    msg.content = '';
    msg.mentions = [];
    msg.reactions = [];
  }

  /** The message the chat list previews: the last one, or the newest held one still shown. */
  previewMessage(conv, now = Date.now()) {
    // An expired disappearing message is gone before the server says so.
    const shown = (msg) => !msg.hidden && !isChange(msg) && !(msg.expires_at && Date.parse(msg.expires_at) <= now);
    const last = conv.last_message;
    if (last && shown(last)) return last;
    let best = null;
    for (const msg of conv.msgs.values()) {
      if (shown(msg) && (!best || msg.seq > best.seq)) best = msg;
    }
    return best;
  }

  /** Forget the messages of a chat not open (it loads history when opened). */
  forgetMessages(conv) {
    conv.msgs.clear();
    conv.changes.clear();
  }

  /** Move the contiguous cursor forward over messages we hold. */
  advanceSynced(conv) {
    while (conv.msgs.has(conv.syncedSeq + 1)) conv.syncedSeq += 1;
  }

  hasGap(conv) {
    return conv.last_seq > conv.syncedSeq;
  }

  sortedMessages(conv) {
    return [...conv.msgs.values()].sort((a, b) => a.seq - b.seq);
  }

  minSeq(conv) {
    let min = Infinity;
    for (const seq of conv.msgs.keys()) if (seq < min) min = seq;
    return min === Infinity ? null : min;
  }

  maxSeq(conv) {
    let max = 0;
    for (const seq of conv.msgs.keys()) if (seq > max) max = seq;
    return max;
  }

  findBySeq(conversationId, seq) {
    const conv = this.convs.get(conversationId);
    return conv ? conv.msgs.get(seq) || null : null;
  }

  // ---- receipts ---------------------------------------------------------------------

  applyReceipt(conv, userId, status, upToSeq) {
    const current = conv.receipts.get(userId) || { delivered: 0, read: 0 };
    if (status === 'read') {
      current.read = Math.max(current.read, upToSeq);
      current.delivered = Math.max(current.delivered, upToSeq);
    } else {
      current.delivered = Math.max(current.delivered, upToSeq);
    }
    conv.receipts.set(userId, current);
  }

  /** Status of one of my messages: sent | delivered | read, and the read count. */
  messageStatus(conv, seq) {
    const others = this.otherMemberIds(conv);
    const total = others.length || Math.max(0, (conv.member_count || 2) - 1);
    let read = 0;
    let delivered = 0;
    for (const userId of others) {
      const r = conv.receipts.get(userId);
      if (!r) continue;
      if (r.read >= seq) read++;
      if (r.delivered >= seq) delivered++;
    }
    if (!others.length) {
      // Members unknown: use whatever receipts arrived.
      for (const [userId, r] of conv.receipts) {
        if (userId === this.me.user_id) continue;
        if (r.read >= seq) read++;
        if (r.delivered >= seq) delivered++;
      }
    }
    let status = 'sent';
    if (total > 0 && read >= total) status = 'read';
    else if (total > 0 && delivered >= total) status = 'delivered';
    else if (conv.type === 'group' && delivered > 0) status = 'delivered';
    return { status, read, delivered, total };
  }

  otherMemberIds(conv) {
    return (conv.members || []).map((m) => m.user_id).filter((id) => id !== this.me.user_id);
  }

  // ---- outbox -----------------------------------------------------------------------

  _loadOutbox() {
    try {
      const items = JSON.parse(localStorage.getItem(outboxKey(this.me.user_id)) || '[]');
      return Array.isArray(items) ? items : [];
    } catch {
      return [];
    }
  }

  _saveOutbox() {
    try {
      // Other tabs of this browser share the key: keep their entries, drop only ours.
      let stored = [];
      try {
        stored = JSON.parse(localStorage.getItem(outboxKey(this.me.user_id)) || '[]');
        if (!Array.isArray(stored)) stored = [];
      } catch {
        stored = [];
      }
      const mine = new Set(this.outbox.map((i) => i.client_msg_id));
      const others = stored.filter((i) => i && !mine.has(i.client_msg_id) && !this.dropped.has(i.client_msg_id));
      localStorage.setItem(outboxKey(this.me.user_id), JSON.stringify([...others, ...this.outbox]));
    } catch {
      /* storage full or disabled: the outbox still lives in memory */
    }
  }

  enqueue(item) {
    this.outbox.push({ status: 'sending', ...item });
    this._saveOutbox();
  }

  updateOutbox(clientMsgId, patch) {
    const item = this.outbox.find((i) => i.client_msg_id === clientMsgId);
    if (item) {
      Object.assign(item, patch);
      this._saveOutbox();
    }
    return item;
  }

  _resolveOutbox(clientMsgId) {
    const index = this.outbox.findIndex((i) => i.client_msg_id === clientMsgId);
    this.dropped.add(clientMsgId);
    if (index >= 0) {
      const [item] = this.outbox.splice(index, 1);
      this._saveOutbox();
      return item;
    }
    return null;
  }

  /** A msg_ack: turn the pending entry into a stored message. */
  applyAck(ack) {
    const item = this._resolveOutbox(ack.client_msg_id);
    const conv = this.convs.get(ack.conversation_id);
    if (!conv) return null;
    const existing = conv.msgs.get(ack.seq);
    if (existing) return conv;
    if (!item) return conv; // acked by another path already, or not ours to render
    const msg = {
      message_id: ack.message_id,
      conversation_id: ack.conversation_id,
      seq: ack.seq,
      sender_id: this.me.user_id,
      sender_device_id: this.me.device_id,
      client_msg_id: ack.client_msg_id,
      content: item.content,
      content_type: item.content_type || 'text',
      reply_to_seq: item.reply_to_seq ?? null,
      created_at: ack.created_at,
      deleted: false,
      reactions: [],
    };
    if (item.target_seq) msg.target_seq = item.target_seq;
    if (item.mentions && item.mentions.length) msg.mentions = item.mentions;
    this.addMessage(msg);
    return conv;
  }

  pendingFor(conversationId) {
    return this.outbox.filter((i) => i.conversation_id === conversationId);
  }

  /** Waiting messages of a conversation that are shown as bubbles (not changes). */
  pendingMessages(conversationId) {
    return this.outbox.filter((i) => i.conversation_id === conversationId && !CHANGE_TYPES.has(i.content_type));
  }

  /** Waiting changes of one message, oldest first (failed ones left out). */
  pendingChanges(conversationId, targetSeq) {
    return this.outbox.filter((i) => i.conversation_id === conversationId && i.target_seq === targetSeq
      && CHANGE_TYPES.has(i.content_type) && i.status !== 'failed');
  }

  /** Forget a failed message the user deleted. */
  dropOutbox(clientMsgId) {
    this.dropped.add(clientMsgId);
    this.outbox = this.outbox.filter((i) => i.client_msg_id !== clientMsgId);
    this._saveOutbox();
  }

  clearOutbox() {
    this.outbox = [];
    localStorage.removeItem(outboxKey(this.me.user_id));
  }

  // ---- drafts: what was typed and not sent, per chat, kept across reloads -------------

  /** The stored drafts, as a Map of conversation id to text. */
  loadDrafts() {
    try {
      const stored = JSON.parse(localStorage.getItem(draftsKey(this.me.user_id)) || '{}');
      return new Map(Object.entries(stored).filter(([, text]) => typeof text === 'string' && text.trim()));
    } catch {
      return new Map();
    }
  }

  saveDrafts(drafts) {
    const kept = [...drafts].filter(([, text]) => text && text.trim());
    try {
      if (kept.length) localStorage.setItem(draftsKey(this.me.user_id), JSON.stringify(Object.fromEntries(kept)));
      else localStorage.removeItem(draftsKey(this.me.user_id));
    } catch {
      /* storage full or unavailable: the drafts stay in this tab */
    }
  }

  clearDrafts() {
    localStorage.removeItem(draftsKey(this.me.user_id));
  }
}
