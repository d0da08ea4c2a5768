// Client-side model: conversations, messages merged by (conversation_id, seq), users,
// receipts, and the persistent outbox of messages not yet acknowledged by the server.

const SESSION_KEY = 'parley.session';
const outboxKey = (userId) => `parley.outbox.${userId}`;

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
  constructor(me) {
    this.me = me; // {user_id, device_id, username?, display_name?}
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
      members: null,
      member_count: 0,
      last_seq: 0,
      last_message: null,
      unread_count: 0,
      last_read_seq: 0,
      msgs: new Map(),
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
    for (const key of ['type', 'name', 'description', 'member_count', 'created_at', 'muted_until']) {
      if (data[key] !== undefined) conv[key] = data[key];
    }
    if (Array.isArray(data.members)) {
      conv.members = data.members;
      conv.member_count = data.member_count || data.members.length;
      for (const member of data.members) this.rememberUser(member);
    }
    if (typeof data.last_seq === 'number' && data.last_seq >= conv.last_seq) {
      conv.last_seq = data.last_seq;
      if (data.last_message) conv.last_message = data.last_message;
      if (data.last_activity_at) conv.last_activity_at = data.last_activity_at;
    } else if (data.last_activity_at && !conv.last_activity_at) {
      conv.last_activity_at = data.last_activity_at;
    }
    if (!conv.last_activity_at) conv.last_activity_at = data.created_at || new Date().toISOString();
    if (typeof data.last_read_seq === 'number') conv.last_read_seq = Math.max(conv.last_read_seq, data.last_read_seq);
    if (authoritative && typeof data.unread_count === 'number') conv.unread_count = data.unread_count;
    if (isNew) conv.syncedSeq = conv.last_seq;
    if (data.last_message) this._learnFromMessage(data.last_message);
    return conv;
  }

  removeConversation(id) {
    this.convs.delete(id);
    this.removed.add(id);
    const before = this.outbox.length;
    for (const item of this.outbox) if (item.conversation_id === id) this.dropped.add(item.client_msg_id);
    this.outbox = this.outbox.filter((item) => item.conversation_id !== id);
    if (this.outbox.length !== before) this._saveOutbox();
  }

  sortedConversations() {
    const time = (conv) => {
      const pending = this.pendingFor(conv.conversation_id);
      const last = pending.length ? pending[pending.length - 1].created_at : null;
      const t = Date.parse(conv.last_activity_at || conv.created_at || 0) || 0;
      return Math.max(t, last ? Date.parse(last) : 0);
    };
    return [...this.convs.values()].sort((a, b) => time(b) - time(a));
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
   * Merge one stored message. Returns {conv, fresh} where fresh is true if this seq
   * was not known before. Resolves a pending outbox entry with the same client_msg_id.
   */
  addMessage(msg) {
    let conv = this.convs.get(msg.conversation_id);
    if (!conv) return { conv: null, fresh: false };
    const fresh = !conv.msgs.has(msg.seq);
    conv.msgs.set(msg.seq, msg);
    if (msg.sender_id === this.me.user_id && msg.client_msg_id) this._resolveOutbox(msg.client_msg_id);
    if (msg.seq > conv.last_seq) {
      conv.last_seq = msg.seq;
      conv.last_message = msg;
      conv.last_activity_at = msg.created_at;
    } else if (conv.last_message && conv.last_message.seq === msg.seq) {
      conv.last_message = msg;
    } else if (!conv.last_message && msg.seq === conv.last_seq) {
      conv.last_message = msg;
    }
    this.advanceSynced(conv);
    return { conv, fresh };
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
    this.addMessage({
      message_id: ack.message_id,
      conversation_id: ack.conversation_id,
      seq: ack.seq,
      sender_id: this.me.user_id,
      sender_device_id: this.me.device_id,
      client_msg_id: ack.client_msg_id,
      content: item.content,
      content_type: 'text',
      reply_to_seq: item.reply_to_seq ?? null,
      created_at: ack.created_at,
    });
    return conv;
  }

  pendingFor(conversationId) {
    return this.outbox.filter((i) => i.conversation_id === conversationId);
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
}
