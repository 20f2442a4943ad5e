// bridge.js's bookkeeping of durable channels, in Node with a stand-in for the browser's
// WebSocket that records the frames sent and lets the test play the server's part:
// positions from options.resume, from messages, across a reconnect and an unsubscribe;
// the "position" event; history() pairing and refusals; publish details.
//
//   node --test tests/browser/bridge_js_test.mjs
import assert from "node:assert/strict";
import { test } from "node:test";

class FakeSocket {
  static CONNECTING = 0;
  static OPEN = 1;
  static CLOSED = 3;
  static all = [];

  constructor(url) {
    this.url = url;
    this.readyState = FakeSocket.CONNECTING;
    this.sent = [];
    FakeSocket.all.push(this);
  }

  send(text) {
    this.sent.push(JSON.parse(text));
  }

  close(code = 1000, reason = "") {
    if (this.readyState === FakeSocket.CLOSED) return;
    this.readyState = FakeSocket.CLOSED;
    this.onclose?.({ code, reason });
  }

  // The server's side.
  open() {
    this.readyState = FakeSocket.OPEN;
    this.onopen?.();
  }

  frame(obj) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
}
globalThis.WebSocket = FakeSocket;
const { Bridge } = await import("../../clients/web/bridge.js");

const last = () => FakeSocket.all[FakeSocket.all.length - 1];
const message = (channel, offset, extra = {}) =>
  ({ op: "message", channel, seq: 1, data: `m${offset}`, offset, epoch: "e1", ...extra });

// A client whose reconnects happen when the test says so, not on a timer.
function client(options = {}) {
  const b = new Bridge("ws://bridge.test/ws", { pingIntervalMs: 0, ...options });
  b._scheduleReconnect = () => b._setState("reconnecting");
  return b;
}

test("a reconnect resumes each durable channel from the last message handled", () => {
  const b = client();
  const gaps = [];
  const positions = [];
  b.on("gap", (g) => gaps.push(g));
  b.on("position", (p) => positions.push(p));
  const got = [];
  b.subscribe("orders", (data) => got.push(data));
  b.subscribe("news", () => {});
  b.subscribePattern("orders.*", () => {});
  const first = last();
  first.open();
  assert.deepEqual(first.sent, [
    { op: "subscribe", channels: ["orders", "news"], patterns: ["orders.*"] },
  ]);
  first.frame(message("orders", 4));
  first.frame(message("orders", 5));
  first.frame({ op: "message", channel: "news", seq: 1, data: "plain" });
  // A pattern's match has no position: resuming would subscribe its channel by name.
  first.frame(message("orders.eu", 9, { pattern: "orders.*" }));
  assert.deepEqual(got, ["m4", "m5"]);
  assert.deepEqual(positions, [
    { channel: "orders", offset: 4, epoch: "e1" },
    { channel: "orders", offset: 5, epoch: "e1" },
  ]);
  assert.deepEqual(b.positions(), { orders: { offset: 5, epoch: "e1" } });

  first.close(1006);
  b._connect();
  const second = last();
  second.open();
  assert.deepEqual(second.sent, [{
    op: "subscribe", channels: ["news"], patterns: ["orders.*"],
    resume: { orders: { offset: 5, epoch: "e1" } },
  }]);
  // The client's own gap for what it cannot resume, none for the resumed channel.
  assert.deepEqual(gaps.map((g) => g.channel ?? g.pattern), ["news", "orders.*"]);
  second.frame(message("orders", 6, { recovered: true, seq: 0 }));
  assert.deepEqual(b.positions(), { orders: { offset: 6, epoch: "e1" } });
  b.close();
});

test("positions move forward within an epoch, follow a new one, and go with unsubscribe", () => {
  const b = client();
  const stop = b.subscribe("orders", () => {});
  last().open();
  last().frame(message("orders", 7));
  last().frame(message("orders", 6)); // older: kept at 7
  assert.deepEqual(b.positions(), { orders: { offset: 7, epoch: "e1" } });
  last().frame({ ...message("orders", 1), epoch: "e2" }); // the history began again
  assert.deepEqual(b.positions(), { orders: { offset: 1, epoch: "e2" } });
  stop();
  assert.deepEqual(b.positions(), {});
  assert.deepEqual(last().sent.at(-1), { op: "unsubscribe", channels: ["orders"] });
  b.close();
});

test("options.resume starts from given positions, at open and on a later subscribe", () => {
  const b = client({
    resume: { orders: { offset: 12, epoch: "e1" }, later: { offset: 3, epoch: "e9" } },
  });
  b.subscribe("orders", () => {});
  last().open();
  assert.deepEqual(last().sent, [{
    op: "subscribe", channels: [], patterns: [], resume: { orders: { offset: 12, epoch: "e1" } },
  }]);
  b.subscribe("later", () => {});
  assert.deepEqual(last().sent.at(-1),
                   { op: "subscribe", channels: [], resume: { later: { offset: 3, epoch: "e9" } } });
  b.close();
});

test("history() pairs answers in order, rejects refusals and pending ones on close", async () => {
  const b = client();
  last().open();
  const a = b.history("orders", { limit: 2 });
  const refused = b.history("news");
  const since = b.history("orders", { since: { offset: 5, epoch: "e1" } });
  const sent = last().sent;
  assert.deepEqual(sent[0], { op: "history", channel: "orders", id: "h1", limit: 2 });
  assert.deepEqual(sent[2],
                   { op: "history", channel: "orders", id: "h3", since: { offset: 5, epoch: "e1" } });
  last().frame({
    op: "history", channel: "orders", id: "h1", epoch: "e1", offset: 7,
    messages: [{ offset: 6, epoch: "e1", data: "six" }, { offset: 7, epoch: "e1", data_b64: "AP8=" }],
    history_lost: false, lost: 0,
  });
  last().frame({ op: "error", code: "not_durable", request: "history", channel: "news",
                 message: "news keeps no history" });
  const answer = await a;
  assert.equal(answer.offset, 7);
  assert.equal(answer.messages[0].data, "six");
  assert.deepEqual([...answer.messages[1].data], [0, 255]);
  await assert.rejects(refused, { code: "not_durable" });
  last().close(1006);
  await assert.rejects(since, { code: "closed" });
  b.close();
});

test("publish with details resolves with the offset and epoch", async () => {
  const b = client();
  last().open();
  const plain = b.publish("news", "x");
  const detailed = b.publish("orders", "y", { details: true });
  last().frame({ op: "published", channel: "news", receivers: 2 });
  last().frame({ op: "published", channel: "orders", receivers: 1, offset: 8, epoch: "e1" });
  assert.equal(await plain, 2);
  assert.deepEqual(await detailed, { receivers: 1, offset: 8, epoch: "e1" });
  b.close();
});
