// The send queue: puts the outbox on the wire first in, first out per conversation.
//
// While the server takes them, a conversation's messages are pipelined (sent without
// waiting for acks; one connection's sends get `seq`s in the order they were sent). When
// the server refuses one for now (`rate_limited`, `unavailable`: an `error` frame naming its
// `client_msg_id`, usually with `retry_after_ms`), that conversation is paused: nothing of
// it goes out until the wait is over, then the refused message and everything behind it
// are sent again in order, one at a time (each after the previous one's ack), until the
// conversation's queue is empty. Other conversations keep going.

/** An unacknowledged send older than this is sent again (same client_msg_id). */
const STALE_MS = 15000;
/** Wait when the server gives no retry_after_ms. */
const DEFAULT_WAIT_MS = 1000;

export class SendQueue {
  /**
   * @param {object} opts
   * @param {() => object[]} opts.items the outbox, oldest first ({client_msg_id, conversation_id, status, sentAt})
   * @param {(item: object) => boolean} opts.transmit puts one `send_message` on the wire
   * @param {() => boolean} opts.canSend whether the connection is ready
   * @param {(conversationId: string) => void} [opts.onChange] a conversation was paused or resumed
   * @param {() => number} [opts.now]
   */
  constructor({ items, transmit, canSend, onChange = () => {}, now = () => Date.now() }) {
    this.items = items;
    this.transmit = transmit;
    this.canSend = canSend;
    this.onChange = onChange;
    this.now = now;
    this.lanes = new Map(); // conversation_id -> {pausedUntil, oneByOne, timer}
  }

  /** Until when (ms since the epoch) a conversation's sending is paused, or 0. */
  pausedUntil(conversationId) {
    const lane = this.lanes.get(conversationId);
    return lane && lane.pausedUntil > this.now() ? lane.pausedUntil : 0;
  }

  /** Messages of a conversation still to be sent, in order (failed ones stay out of the way). */
  queued(conversationId) {
    return this.items().filter((i) => i.conversation_id === conversationId && i.status !== 'failed');
  }

  /** Send whatever may go now: of one conversation, or of all. */
  pump(conversationId = null) {
    if (conversationId) {
      this._pumpOne(conversationId);
      return;
    }
    const ids = new Set(this.items().map((i) => i.conversation_id));
    for (const id of this.lanes.keys()) ids.add(id);
    for (const id of ids) this._pumpOne(id);
  }

  /** A message of this conversation was acknowledged: the next one may go. */
  onAck(conversationId) {
    this._pumpOne(conversationId);
  }

  /**
   * The server refused a send for now. Pauses its conversation; the refused message and
   * those queued behind it go again, in order, after the wait. Returns true when this
   * starts a new episode of waiting (false while the conversation is still working through
   * an earlier one, or for an unknown id), so the user is told once.
   */
  onRefused(clientMsgId, retryAfterMs) {
    const all = this.items();
    const item = all.find((i) => i.client_msg_id === clientMsgId);
    if (!item) return false;
    const id = item.conversation_id;
    const lane = this._lane(id);
    const now = this.now();
    // A new episode: not paused, and not still working through an earlier one.
    const fresh = lane.pausedUntil <= now && !lane.oneByOne;
    const wait = retryAfterMs > 0 ? retryAfterMs : DEFAULT_WAIT_MS;
    lane.pausedUntil = Math.max(lane.pausedUntil, now + wait);
    lane.oneByOne = true;
    // Sends behind it that were already on the wire may be refused too; either way they
    // go again after the refused one. Sends before it keep waiting for their acks.
    let behind = false;
    for (const i of all) {
      if (i === item) behind = true;
      if (behind && i.conversation_id === id) i.sentAt = 0;
    }
    this._arm(id, lane);
    this.onChange(id);
    return fresh;
  }

  /** The connection dropped: nothing is on the wire any more. Pauses stay. */
  reset() {
    for (const item of this.items()) item.sentAt = 0;
  }

  /** Forget all state and timers (sign out). */
  clear() {
    for (const lane of this.lanes.values()) clearTimeout(lane.timer);
    this.lanes.clear();
  }

  _lane(id) {
    let lane = this.lanes.get(id);
    if (!lane) {
      lane = { pausedUntil: 0, oneByOne: false, timer: null };
      this.lanes.set(id, lane);
    }
    return lane;
  }

  _arm(id, lane) {
    clearTimeout(lane.timer);
    lane.timer = setTimeout(() => {
      lane.timer = null;
      this._pumpOne(id);
      this.onChange(id);
    }, Math.max(0, lane.pausedUntil - this.now()) + 5);
  }

  _pumpOne(id) {
    const lane = this.lanes.get(id);
    const now = this.now();
    if (lane && lane.pausedUntil > now) {
      if (!lane.timer) this._arm(id, lane);
      return;
    }
    const queue = this.queued(id);
    if (!queue.length) {
      if (lane && !lane.timer) this.lanes.delete(id);
      return;
    }
    if (!this.canSend()) return;
    const due = (item) => !item.sentAt || now - item.sentAt > STALE_MS;
    if (lane && lane.oneByOne) {
      // After a refusal: one message on the wire at a time, so order cannot slip again.
      if (due(queue[0])) this._send(queue[0]);
      return;
    }
    for (const item of queue) if (due(item)) this._send(item);
  }

  _send(item) {
    if (this.transmit(item)) item.sentAt = this.now();
  }
}
