// bridge.js: a small, dependency-free browser client for Bridge's WebSocket endpoint.
//
//   import { Bridge } from "./bridge.js";
//   const bridge = new Bridge();                       // ws(s)://<this host>/ws
//   const stop = bridge.subscribe("news", (data, msg) => console.log(data, msg.seq));
//   bridge.on("gap", (gap) => console.warn("lost", gap.dropped, "on", gap.channel));
//   stop();                                            // unsubscribe
//
// The client reconnects by itself (exponential backoff with jitter), subscribes again
// to everything it held, and reports every loss as a "gap": those the server announces
// (slow consumer, Redis reconnect, history lost) and its own reconnects (reason
// "client_reconnect"). A durable channel (the server's --history) loses nothing on a
// reconnect: the client keeps the offset and epoch of the last message of each, and asks
// the server to resume from there. positions() and the "position" event let a page keep
// them across reloads, and new Bridge(url, { resume }) starts from them.
// A server with an access file (--access_file) wants a token: new Bridge(url, { token }).
// See docs/WEBSOCKET.md for the protocol.

const CONNECTING = "connecting";
const OPEN = "open";
const RECONNECTING = "reconnecting";
const CLOSED = "closed";

/** The default endpoint: /ws on the host that served the page. */
export function defaultUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

function decodePayload(msg) {
  if (typeof msg.data === "string") return msg.data;
  if (typeof msg.data_b64 === "string") {
    const bin = atob(msg.data_b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }
  return undefined;
}

export class Bridge {
  /**
   * @param {string} [url] WebSocket URL; defaults to /ws on the page's host.
   * @param {object} [options]
   * @param {number} [options.minBackoffMs=250]  first reconnect delay
   * @param {number} [options.maxBackoffMs=15000] longest reconnect delay
   * @param {number} [options.pingIntervalMs=25000] application pings; 0 disables
   * @param {number} [options.pongTimeoutMs=10000] no pong by then: reconnect
   * @param {number} [options.publishTimeoutMs=10000]
   * @param {string} [options.token] access token of a server run with --access_file; sent
   *   as the URL's `access_token` query parameter (a browser cannot set headers on a
   *   WebSocket) on every connect. `url` itself never shows it.
   * @param {Object<string, {offset: number, epoch: string}>} [options.resume] positions
   *   to start from, per durable channel (what positions() returned earlier): when the
   *   channel is subscribed, the server first sends what was published after it.
   * @param {number} [options.historyTimeoutMs=10000]
   * @param {number} [options.failedOpensBeforeError=3] after this many attempts in a row
   *   whose socket never opened, emit the error "connect_failed" (once, until a socket
   *   opens again); 0 disables. A browser cannot tell a refused token (HTTP 401) or a
   *   refused channel (403) from a server that is down: both are a close with code 1006.
   */
  constructor(url = defaultUrl(), options = {}) {
    this.url = url;
    this.options = {
      minBackoffMs: 250,
      maxBackoffMs: 15000,
      pingIntervalMs: 25000,
      pongTimeoutMs: 10000,
      publishTimeoutMs: 10000,
      historyTimeoutMs: 10000,
      token: undefined,
      resume: undefined,
      failedOpensBeforeError: 3,
      ...options,
    };
    this.state = CONNECTING;
    this._channels = new Map(); // name -> Set of handlers
    this._patterns = new Map();
    this._listeners = new Map(); // event -> Set of handlers
    this._pendingPublishes = [];
    this._pendingHistory = []; // answered in the order asked, like publishes
    this._historyIds = 0;
    // channel -> { offset, epoch } of the last message seen on a durable channel.
    this._positions = new Map();
    for (const [channel, p] of Object.entries(this.options.resume ?? {})) {
      if (p && Number(p.offset) > 0 && typeof p.epoch === "string") {
        this._positions.set(channel, { offset: Number(p.offset), epoch: p.epoch });
      }
    }
    this._attempt = 0;
    this._failedOpens = 0; // attempts in a row whose socket never opened
    this._everOpened = false;
    this._closedByUser = false;
    this._socket = null;
    this._socketOpened = false; // whether this._socket ever opened
    this._reconnectTimer = null;
    this._pingTimer = null;
    this._pongTimer = null;
    this._connect();
  }

  /**
   * Calls onMessage(data, message) for every message on `channel`; data is a string, or
   * a Uint8Array when the payload is not UTF-8. Returns a function that unsubscribes.
   */
  subscribe(channel, onMessage) {
    return this._add(this._channels, "channels", channel, onMessage);
  }

  /** Like subscribe, for a Redis glob pattern ("news.*"). */
  subscribePattern(pattern, onMessage) {
    return this._add(this._patterns, "patterns", pattern, onMessage);
  }

  /**
   * Publishes (when the server allows it). Resolves with the number of Redis
   * receivers, or with { details: true } with the server's answer: { receivers, offset,
   * epoch } (offset and epoch on a durable channel; duplicate: true for a repeated
   * idempotency key); rejects with an Error whose `code` is the server's error code.
   */
  publish(channel, data, { details = false } = {}) {
    return new Promise((resolve, reject) => {
      if (this.state !== OPEN) {
        reject(Object.assign(new Error("not connected"), { code: "not_connected" }));
        return;
      }
      const frame = { op: "publish", channel };
      if (data instanceof Uint8Array) {
        let bin = "";
        for (const b of data) bin += String.fromCharCode(b);
        frame.data_b64 = btoa(bin);
      } else {
        frame.data = String(data);
      }
      const pending = { resolve, reject, settled: false };
      pending.timer = setTimeout(() => {
        // Stays in the list: the server answers every publish, and the late answer must
        // still be paired with this one, not with the next.
        pending.settled = true;
        reject(Object.assign(new Error("publish timed out"), { code: "timeout" }));
      }, this.options.publishTimeoutMs);
      pending.details = details;
      // The server answers publishes in order: the oldest pending gets the next answer.
      this._pendingPublishes.push(pending);
      this._send(frame);
    });
  }

  /**
   * Reads the kept history of a durable channel: the latest `limit` messages (0 or none:
   * the server's limit), or with `since` ({offset, epoch}) those after it. Resolves with
   * the server's answer: { channel, epoch, offset (the latest), messages: [{ offset,
   * epoch, data }] (oldest first; data decoded as for subscribe), history_lost, lost };
   * rejects with an Error whose `code` is the server's ("not_durable" for a channel
   * without history), or "timeout", "closed", "not_connected".
   */
  history(channel, { limit, since } = {}) {
    return new Promise((resolve, reject) => {
      if (this.state !== OPEN) {
        reject(Object.assign(new Error("not connected"), { code: "not_connected" }));
        return;
      }
      const id = `h${++this._historyIds}`;
      const frame = { op: "history", channel, id };
      if (limit) frame.limit = limit;
      if (since) frame.since = { offset: Number(since.offset), epoch: since.epoch };
      const pending = { resolve, reject, settled: false };
      pending.timer = setTimeout(() => {
        // Stays in the list, as a publish does: the late answer is still this one's.
        pending.settled = true;
        reject(Object.assign(new Error("history timed out"), { code: "timeout" }));
      }, this.options.historyTimeoutMs);
      this._pendingHistory.push(pending);
      this._send(frame);
    });
  }

  /**
   * The last position seen (or given as options.resume) on each durable channel:
   * { channel: { offset, epoch } }, fit for JSON and for options.resume.
   */
  positions() {
    return Object.fromEntries([...this._positions].map(([c, p]) => [c, { ...p }]));
  }

  /**
   * Events: "state" (state string), "open", "subscribed" ({channel|pattern}),
   * "position" ({channel, offset, epoch}: a durable channel's message was handled),
   * "gap" ({channel|pattern, reason, dropped}), "error" ({code, message}; "forbidden"
   * also names the channel or pattern refused, by the token's access rules or by Redis,
   * whose handlers are dropped; "connect_failed" ({code, message, attempts}) comes from
   * the client itself, see options.failedOpensBeforeError), "close" ({code, reason}).
   * Returns a function that removes the listener.
   */
  on(event, handler) {
    if (!this._listeners.has(event)) this._listeners.set(event, new Set());
    this._listeners.get(event).add(handler);
    return () => this._listeners.get(event)?.delete(handler);
  }

  /** Closes for good; no reconnect. */
  close() {
    this._closedByUser = true;
    clearTimeout(this._reconnectTimer);
    this._stopPings();
    if (this._socket) this._socket.close(1000, "bye");
    this._setState(CLOSED);
  }

  // ---- internals ----

  _add(map, field, name, handler) {
    let handlers = map.get(name);
    const isNew = !handlers;
    if (isNew) {
      handlers = new Set();
      map.set(name, handlers);
    }
    handlers.add(handler);
    if (isNew && this.state === OPEN) {
      const position = field === "channels" ? this._positions.get(name) : undefined;
      this._send(position
        ? { op: "subscribe", channels: [], resume: { [name]: position } }
        : { op: "subscribe", [field]: [name] });
    }
    return () => {
      const set = map.get(name);
      if (!set || !set.delete(handler) || set.size > 0) return;
      map.delete(name);
      // Subscribing again later starts afresh, not from messages long gone by.
      if (field === "channels") this._positions.delete(name);
      if (this.state === OPEN) this._send({ op: "unsubscribe", [field]: [name] });
    };
  }

  _emit(event, value) {
    for (const handler of this._listeners.get(event) ?? []) {
      try {
        handler(value);
      } catch (e) {
        console.error("bridge.js listener failed", e);
      }
    }
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", state);
  }

  _send(frame) {
    if (this._socket && this._socket.readyState === WebSocket.OPEN) {
      this._socket.send(JSON.stringify(frame));
    }
  }

  /** The URL to connect to: `url`, plus the token when there is one. */
  _socketUrl() {
    const url = String(this.url);
    const { token } = this.options;
    if (token === undefined || token === null || token === "") return url;
    const hash = url.indexOf("#");
    const base = hash < 0 ? url : url.slice(0, hash);
    const sep = !base.includes("?") ? "?" : /[?&]$/.test(base) ? "" : "&";
    return `${base}${sep}access_token=${encodeURIComponent(token)}`;
  }

  _connect() {
    // The first try is "connecting" (the constructor's state); every retry stays
    // "reconnecting", whether or not a socket ever opened.
    let socket;
    try {
      socket = new WebSocket(this._socketUrl());
    } catch (e) {
      this._openFailed();
      this._scheduleReconnect();
      return;
    }
    this._socket = socket;
    this._socketOpened = false;
    socket.onopen = () => this._onOpen(socket);
    socket.onmessage = (ev) => this._onFrame(ev.data);
    socket.onclose = (ev) => this._onClose(socket, ev);
    // onclose follows every error; nothing more to do here.
    socket.onerror = () => {};
  }

  _onOpen(socket) {
    if (socket !== this._socket) return;
    const wasReconnect = this._everOpened;
    this._everOpened = true;
    this._socketOpened = true;
    this._failedOpens = 0;
    this._setState(OPEN);
    // Durable channels with a position resume from it (a resume key is subscribed too):
    // the server sends what they missed first. The others start from now. (No prototype:
    // a channel may be called "__proto__".)
    const resume = Object.create(null);
    const channels = [];
    for (const channel of this._channels.keys()) {
      const position = this._positions.get(channel);
      if (position) resume[channel] = { ...position };
      else channels.push(channel);
    }
    const patterns = [...this._patterns.keys()];
    if (channels.length || patterns.length || Object.keys(resume).length) {
      const frame = { op: "subscribe", channels, patterns };
      if (Object.keys(resume).length) frame.resume = resume;
      this._send(frame);
    }
    if (wasReconnect) {
      // What was published while we were away is lost (unless resumed): say so, per
      // subscription.
      for (const channel of channels) {
        this._emit("gap", { channel, reason: "client_reconnect", dropped: 0 });
      }
      for (const pattern of patterns) {
        this._emit("gap", { pattern, reason: "client_reconnect", dropped: 0 });
      }
    }
    this._startPings();
    this._emit("open", { reconnect: wasReconnect });
  }

  _onFrame(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    // Anything from the server proves the connection alive.
    clearTimeout(this._pongTimer);
    this._pongTimer = null;
    switch (msg.op) {
      case "message": {
        // A connection that carries messages is healthy: the next outage starts afresh.
        this._attempt = 0;
        const handlers = msg.pattern !== undefined
          ? this._patterns.get(msg.pattern)
          : this._channels.get(msg.channel);
        if (!handlers) return;
        const data = decodePayload(msg);
        for (const handler of handlers) {
          try {
            handler(data, msg);
          } catch (e) {
            console.error("bridge.js handler failed", e);
          }
        }
        if (msg.pattern === undefined && this._advance(msg)) {
          this._emit("position", { channel: msg.channel, offset: msg.offset, epoch: msg.epoch });
        }
        return;
      }
      case "subscribed":
        this._attempt = 0;
        this._emit("subscribed", msg);
        return;
      case "unsubscribed":
        this._emit("unsubscribed", msg);
        return;
      case "gap":
        this._emit("gap", msg);
        return;
      case "published":
        this._answerPublish((p) => {
          if (!p.details) return p.resolve(msg.receivers);
          const { op: _op, channel: _channel, ...answer } = msg;
          return p.resolve(answer);
        });
        return;
      case "history":
        this._answerHistory((p) => p.resolve({
          ...msg,
          messages: (msg.messages ?? []).map((m) => ({
            offset: m.offset, epoch: m.epoch, data: decodePayload(m),
          })),
        }));
        return;
      case "error": {
        // An error that answers a publish says so ("request"); servers before that
        // field answered publishes only with these two codes.
        if (
          msg.request === "publish" ||
          (msg.request === undefined &&
            (msg.code === "publish_forbidden" || msg.code === "publish_failed"))
        ) {
          this._answerPublish((p) =>
            p.reject(Object.assign(new Error(msg.message), { code: msg.code })),
          );
        }
        if (msg.request === "history") {
          this._answerHistory((p) =>
            p.reject(Object.assign(new Error(msg.message ?? msg.code), { code: msg.code })),
          );
        }
        if (msg.code === "forbidden") {
          // The token's access rules or Redis refused the channel: the server does not
          // hold it (the rest of the frame went ahead), and the client drops it too,
          // rather than ask again on every reconnect.
          if (msg.channel !== undefined) {
            this._channels.delete(msg.channel);
            this._positions.delete(msg.channel);
          }
          if (msg.pattern !== undefined) this._patterns.delete(msg.pattern);
        }
        this._emit("error", msg);
        return;
      }
      default:
        return; // "pong", and ops of newer servers
    }
  }

  /**
   * Moves a durable channel's position to `msg`'s (a message of a channel held); true
   * when it moved. Within an epoch only forward; a new epoch (the history was lost and
   * began again) replaces it.
   */
  _advance(msg) {
    if (typeof msg.offset !== "number" || typeof msg.epoch !== "string") return false;
    if (!this._channels.has(msg.channel)) return false;
    const known = this._positions.get(msg.channel);
    if (known && known.epoch === msg.epoch && known.offset >= msg.offset) return false;
    this._positions.set(msg.channel, { offset: msg.offset, epoch: msg.epoch });
    return true;
  }

  /** Settles the oldest pending history request, unless its timeout already did. */
  _answerHistory(settle) {
    const pending = this._pendingHistory.shift();
    if (!pending || pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    settle(pending);
  }

  /** Settles the oldest pending publish, unless its timeout already did. */
  _answerPublish(settle) {
    const pending = this._pendingPublishes.shift();
    if (!pending || pending.settled) return;
    pending.settled = true;
    clearTimeout(pending.timer);
    settle(pending);
  }

  _onClose(socket, ev) {
    if (socket !== this._socket) return;
    const opened = this._socketOpened;
    this._socket = null;
    this._stopPings();
    for (const pending of [...this._pendingPublishes.splice(0),
                           ...this._pendingHistory.splice(0)]) {
      if (pending.settled) continue;
      clearTimeout(pending.timer);
      pending.reject(Object.assign(new Error("connection closed"), { code: "closed" }));
    }
    this._emit("close", { code: ev.code, reason: ev.reason });
    if (this._closedByUser) return;
    if (!opened) this._openFailed();
    this._scheduleReconnect();
  }

  /** One more attempt whose socket never opened; say so once there are enough in a row. */
  _openFailed() {
    this._failedOpens++;
    const { failedOpensBeforeError } = this.options;
    if (!failedOpensBeforeError || this._failedOpens !== failedOpensBeforeError) return;
    const message = this.options.token
      ? "the WebSocket did not open: the server is unreachable or refused the access token"
      : "the WebSocket did not open: the server is unreachable or wants an access token";
    this._emit("error", { code: "connect_failed", message, attempts: this._failedOpens });
  }

  _scheduleReconnect() {
    this._setState(RECONNECTING);
    const { minBackoffMs, maxBackoffMs } = this.options;
    const ceiling = Math.min(maxBackoffMs, minBackoffMs * 2 ** this._attempt);
    this._attempt = Math.min(this._attempt + 1, 30);
    // "Equal jitter": at least half the backoff, so that a restarted server is not hit
    // by every browser at once, nor in lockstep.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = setTimeout(() => this._connect(), delay);
  }

  _startPings() {
    this._stopPings();
    const { pingIntervalMs, pongTimeoutMs } = this.options;
    if (!pingIntervalMs) return;
    // The server pings too, but a browser cannot see those; this finds a dead path
    // (a sleeping laptop, a silent proxy) from our side.
    this._pingTimer = setInterval(() => {
      this._send({ op: "ping" });
      if (this._pongTimer === null) {
        this._pongTimer = setTimeout(() => {
          this._pongTimer = null;
          if (this._socket) this._socket.close(4000, "no pong");
        }, pongTimeoutMs);
      }
    }, pingIntervalMs);
  }

  _stopPings() {
    clearInterval(this._pingTimer);
    clearTimeout(this._pongTimer);
    this._pingTimer = null;
    this._pongTimer = null;
  }
}

let defaultBridge = null;

/** subscribe(channel, onMessage) on a shared client for /ws of this page's host. */
export function subscribe(channel, onMessage) {
  defaultBridge ??= new Bridge();
  return defaultBridge.subscribe(channel, onMessage);
}

/** The shared client that subscribe() uses. */
export function bridge() {
  defaultBridge ??= new Bridge();
  return defaultBridge;
}
