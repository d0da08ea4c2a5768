// The WebSocket connection: authentication by ?token=, heartbeat, reconnect with
// exponential backoff and jitter, and awareness of the browser's online/offline state.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 30000;

export class Connection {
  /**
   * @param {object} opts
   * @param {() => string} opts.token
   * @param {(frame: object) => void} opts.onFrame
   * @param {(state: string, info: object) => void} opts.onState
   * @param {(info: {wasReady: boolean, code: number}) => void} opts.onDrop
   */
  constructor({ token, onFrame, onState, onDrop }) {
    this.token = token;
    this.onFrame = onFrame;
    this.onState = onState;
    this.onDrop = onDrop || (() => {});
    this.ws = null;
    this.state = 'idle';
    this.attempts = 0;
    this.retryTimer = null;
    this.heartbeatTimer = null;
    this.heartbeatMs = 30000;
    this.lastReceived = 0;
    this.stopped = true;
    this.retryAt = 0;

    this._online = () => {
      if (this.stopped) return;
      this.attempts = 0;
      this.connectNow();
    };
    this._offline = () => {
      if (this.stopped) return;
      this._drop(false);
      this._setState('offline');
    };
    this._visible = () => {
      if (this.stopped || document.visibilityState !== 'visible') return;
      if (this.state === 'waiting') this.connectNow();
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this._online);
    window.addEventListener('offline', this._offline);
    document.addEventListener('visibilitychange', this._visible);
    this.connectNow();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this._online);
    window.removeEventListener('offline', this._offline);
    document.removeEventListener('visibilitychange', this._visible);
    clearTimeout(this.retryTimer);
    this._drop(false);
    this._setState('idle');
  }

  get ready() {
    return this.state === 'ready';
  }

  send(frame) {
    if (this.state !== 'ready' || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    try {
      this.ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  connectNow() {
    if (this.stopped) return;
    clearTimeout(this.retryTimer);
    this._drop(false);
    if (navigator.onLine === false) {
      this._setState('offline');
      return;
    }
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const url = `${scheme}://${location.host}/ws?token=${encodeURIComponent(this.token())}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this._scheduleRetry();
      return;
    }
    this.ws = ws;
    let wasReady = false;
    this._setState('connecting');
    ws.onmessage = (event) => {
      if (this.ws !== ws) return;
      this.lastReceived = Date.now();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (!frame || typeof frame.type !== 'string') return;
      if (frame.type === 'ready') {
        wasReady = true;
        this.attempts = 0;
        if (frame.heartbeat_interval_ms > 0) this.heartbeatMs = Math.min(frame.heartbeat_interval_ms, 60000);
        this._startHeartbeat();
        this._setState('ready');
      }
      this.onFrame(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this._stopHeartbeat();
      this.onDrop({ wasReady, code: event.code });
      if (this.stopped) return;
      if (navigator.onLine === false) this._setState('offline');
      else this._scheduleRetry();
    };
    ws.onerror = () => {
      // onclose follows and handles it.
    };
  }

  _drop() {
    this._stopHeartbeat();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try {
        ws.close(1000, 'bye');
      } catch {
        /* already closed */
      }
      this.onDrop({ wasReady: this.state === 'ready', code: 1000 });
    }
  }

  _scheduleRetry() {
    const base = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempts);
    const delay = Math.round(base / 2 + Math.random() * (base / 2));
    this.attempts += 1;
    this.retryAt = Date.now() + delay;
    this._setState('waiting', { retryAt: this.retryAt, attempts: this.attempts });
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connectNow(), delay);
  }

  _startHeartbeat() {
    this._stopHeartbeat();
    this.lastReceived = Date.now();
    this.heartbeatTimer = setInterval(() => {
      if (!this.ws) return;
      // A connection that has been silent for two heartbeats (and a margin) is dead even
      // if the browser has not noticed yet: drop it and reconnect.
      if (Date.now() - this.lastReceived > this.heartbeatMs * 2 + 10000) {
        this._drop();
        this._scheduleRetry();
        return;
      }
      try {
        this.ws.send(JSON.stringify({ type: 'ping' }));
      } catch {
        /* onclose will follow */
      }
    }, this.heartbeatMs);
  }

  _stopHeartbeat() {
    clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  _setState(state, info = {}) {
    this.state = state;
    this.onState(state, info);
  }
}
