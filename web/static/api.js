// REST client for /api/v1. Errors come back as ApiError with the server's code.

export class ApiError extends Error {
  constructor(status, code, message, retryAfterMs) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

export class Api {
  constructor({ base = '/api/v1', onUnauthorized = () => {} } = {}) {
    this.base = base;
    this.token = null;
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body, { auth = true } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth && this.token) headers.Authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (err) {
      throw new ApiError(0, 'network', 'Cannot reach the server');
    }
    if (response.status === 204) return null;
    let data = null;
    const text = await response.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const err = data && data.error ? data.error : {};
      const error = new ApiError(response.status, err.code, err.message, err.retry_after_ms);
      if (response.status === 401 && auth && this.token) this.onUnauthorized(error);
      throw error;
    }
    return data;
  }

  get(path) { return this.request('GET', path); }
  post(path, body) { return this.request('POST', path, body === undefined ? {} : body); }
  patch(path, body) { return this.request('PATCH', path, body); }
  del(path, body) { return this.request('DELETE', path, body); }

  register(username, password, displayName) {
    const body = { username, password, device_name: deviceName() };
    if (displayName) body.display_name = displayName;
    return this.request('POST', '/auth/register', body, { auth: false });
  }
  login(username, password) {
    return this.request('POST', '/auth/login', { username, password, device_name: deviceName() }, { auth: false });
  }
  logout() { return this.request('POST', '/auth/logout', undefined); }
  me() { return this.get('/users/me'); }
  updateMe(changes) { return this.patch('/users/me', changes); }
  blockedUsers() { return this.get('/users/me/blocked'); }
  block(userId) { return this.post(`/users/${encodeURIComponent(userId)}/block`); }
  unblock(userId) { return this.del(`/users/${encodeURIComponent(userId)}/block`); }
  logoutEverywhere() { return this.del('/users/me/devices'); }
  deleteAccount(password) { return this.del('/users/me', { password }); }
  exportData() { return this.get('/users/me/export'); }
  user(id) { return this.get(`/users/${encodeURIComponent(id)}`); }
  searchUsers(query) { return this.get(`/users?query=${encodeURIComponent(query)}`); }

  /** Every conversation of the list, or with `archived` every archived one. */
  async allConversations({ archived = false } = {}) {
    const all = [];
    let cursor = null;
    for (let page = 0; page < 50; page++) {
      const q = new URLSearchParams({ limit: '100' });
      if (archived) q.set('archived', 'true');
      if (cursor) q.set('cursor', cursor);
      const data = await this.get(`/conversations?${q}`);
      all.push(...(data.conversations || []));
      cursor = data.next_cursor;
      if (!cursor) break;
    }
    return all;
  }
  conversation(id) { return this.get(`/conversations/${encodeURIComponent(id)}`); }
  /** This user's own settings: `{muted_until?, archived?, pinned?, marked_unread?}`. */
  updateSettings(id, settings) { return this.patch(`/conversations/${encodeURIComponent(id)}/settings`, settings); }
  createDirect(userId) { return this.post('/conversations', { type: 'direct', participant_ids: [userId] }); }
  createGroup(name, memberIds) { return this.post('/conversations', { type: 'group', name, member_ids: memberIds }); }
  renameConversation(id, name) { return this.patch(`/conversations/${encodeURIComponent(id)}`, { name }); }
  /** A group's picture (admins): a completed picture's media id, or null to remove it. */
  setGroupAvatar(id, mediaId) {
    return this.patch(`/conversations/${encodeURIComponent(id)}`, { avatar_media_id: mediaId });
  }
  setDisappearing(id, seconds) {
    return this.patch(`/conversations/${encodeURIComponent(id)}`, { disappearing_seconds: seconds });
  }
  addMembers(id, userIds) { return this.post(`/conversations/${encodeURIComponent(id)}/members`, { user_ids: userIds }); }
  setRole(id, userId, role) {
    return this.patch(`/conversations/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`, { role });
  }
  removeMember(id, userId) {
    return this.del(`/conversations/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`);
  }
  messages(id, { beforeSeq, afterSeq, limit = 50 } = {}) {
    const q = new URLSearchParams({ limit: String(limit) });
    if (beforeSeq !== undefined) q.set('before_seq', String(beforeSeq));
    if (afterSeq !== undefined) q.set('after_seq', String(afterSeq));
    return this.get(`/conversations/${encodeURIComponent(id)}/messages?${q}`);
  }
  receipts(id, seq) { return this.get(`/conversations/${encodeURIComponent(id)}/messages/${seq}/receipts`); }
  markRead(id, upToSeq) { return this.post(`/conversations/${encodeURIComponent(id)}/read`, { up_to_seq: upToSeq }); }
  /** Who reacted with what: {reactions: [{emoji, user_ids}]}. */
  reactions(id, seq) { return this.get(`/conversations/${encodeURIComponent(id)}/messages/${seq}/reactions`); }
  /** Delete for me: the message leaves my history on all my devices. */
  clearConversation(id) { return this.post(`/conversations/${encodeURIComponent(id)}/clear`); }
  hideMessage(id, seq) { return this.post(`/conversations/${encodeURIComponent(id)}/messages/${seq}/hide`); }
  /** Copies of a message in up to 5 other chats: {messages: [...]}. */
  forward(fromId, seq, toIds, clientMsgId) {
    const body = { from_conversation_id: fromId, seq, to_conversation_ids: toIds };
    if (clientMsgId) body.client_msg_id = clientMsgId;
    return this.post('/messages/forward', body);
  }
  /** Full-text search, newest first: {results: [{conversation_id, seq, snippet, message}], next_cursor}. */
  search(query, { conversationId, cursor, limit = 20 } = {}) {
    const q = new URLSearchParams({ q: query, limit: String(limit) });
    if (conversationId) q.set('conversation_id', conversationId);
    if (cursor) q.set('cursor', cursor);
    return this.get(`/search?${q}`);
  }
}

function deviceName() {
  const ua = navigator.userAgent;
  const browser = /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrom/.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : '';
  return `Web · ${browser}${os ? ' on ' + os : ''}`;
}
