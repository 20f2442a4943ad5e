// End-to-end: the demo page in real headless Chromium, served by the real bridge binary,
// fed by a real redis-server.
//
//   node browser_test.mjs --bridge build/bridge/bridge --web-root clients/web
//
// 1. the page loads from the bridge and subscribes (?channel=demo);
// 2. a message published with redis-cli appears on the page;
// 3. a subscription made through the page's form receives, and the form publishes;
// 4. Redis restarts: the page shows the gap and keeps receiving.
// 4b. A durable channel (--history): the page shows each message's offset, keeps the
//    positions in sessionStorage, and a reload resumes: what was published while it
//    reloaded comes once each, in offset order, recovered, with no gap, and so does what
//    is published while its socket reconnects; bridge.js's history() answers in order,
//    and "not_durable" for a plain channel.
// 5. A second bridge with --access_file: bridge.js with the right token (sent as the URL's
//    access_token) opens, receives on allowed channels and patterns, gets "forbidden" for
//    the others and drops them; without a token, with a wrong one, or with a refused
//    ?channel= it never opens and reports "connect_failed", backing off between tries;
//    the page's token field connects.
// Exits 0 on success, 1 on failure, 77 (skipped) when Chromium is not installed.
import { spawn, spawnSync, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const STEP_TIMEOUT_MS = 20000;

const { values: args } = parseArgs({
  options: {
    bridge: { type: "string" },
    "web-root": { type: "string" },
    headed: { type: "boolean", default: false },
  },
});
if (!args.bridge || !args["web-root"]) {
  console.error("usage: node browser_test.mjs --bridge PATH --web-root DIR");
  process.exit(2);
}
if (!existsSync(CHROMIUM)) {
  console.log(`SKIP: ${CHROMIUM} not found (apt-get install chromium)`);
  process.exit(77);
}
let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch {
  console.error("playwright-core is missing: run scripts/npm-deps (npm ci in tests/browser)");
  process.exit(1);
}

const cleanups = [];
const log = (...a) => console.log(`[${new Date().toISOString()}]`, ...a);

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Polls `check` (for states no event announces, like another process being ready).
async function waitFor(what, check, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startProcess(name, cmd, argv) {
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
  const tail = [];
  const keep = (d) => {
    tail.push(d.toString());
    if (tail.length > 50) tail.shift();
  };
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  child.output = () => tail.join("");
  child.exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await child.exited;
  });
  log(`started ${name} (pid ${child.pid})`);
  return child;
}

function redisCli(port, ...argv) {
  return execFileSync("redis-cli", ["-h", "127.0.0.1", "-p", String(port), ...argv], {
    encoding: "utf8",
    timeout: 5000,
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

async function startRedis(port, dir) {
  const redis = startProcess("redis-server", "redis-server", [
    "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
    "--dir", dir,
  ]);
  await waitFor("redis PING", () => redisCli(port, "ping") === "PONG");
  return redis;
}

async function main() {
  const tmp = mkdtempSync(path.join(os.tmpdir(), "bridge-browser-"));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));
  const redisPort = await freePort();
  const wsPort = await freePort();
  let redis = await startRedis(redisPort, tmp);

  const bridge = startProcess("bridge", args.bridge, [
    `--redis=redis://127.0.0.1:${redisPort}`,
    "--grpc_addr=127.0.0.1:0",
    `--ws_addr=127.0.0.1:${wsPort}`,
    `--web_root=${path.resolve(args["web-root"])}`,
    "--ws_allow_publish",
    "--ws_threads=2",
    "--shutdown_grace=3s",
    "--history=durable.*=1000/24h",
  ]);
  const base = `http://127.0.0.1:${wsPort}`;
  try {
    await waitFor("bridge /healthz", async () => (await fetch(`${base}/healthz`)).status === 200);
  } catch (e) {
    throw new Error(`${e.message}; bridge output:\n${bridge.output()}`);
  }

  const profile = mkdtempSync(path.join(os.tmpdir(), "bridge-chromium-"));
  cleanups.push(() => rmSync(profile, { recursive: true, force: true }));
  // Playwright passes the profile as --user-data-dir; the other flags keep Chromium off
  // the network and quiet.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: !args.headed,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ].filter((f) => f !== "--headless" || !args.headed),
  });
  cleanups.unshift(() => context.close());
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(m.text());
  });

  // 1. The page comes from the bridge and subscribes from its URL.
  const response = await page.goto(`${base}/?channel=demo`);
  if (response.status() !== 200) throw new Error(`GET / returned ${response.status()}`);
  if (!response.headers()["content-type"].startsWith("text/html")) {
    throw new Error(`GET / content-type ${response.headers()["content-type"]}`);
  }
  await page.locator("#state", { hasText: "open" }).waitFor();
  await page.locator('#subs li[data-key="channel:demo"] .count', { hasText: "0" }).waitFor();
  log("page open and subscribed to demo");

  // 2. redis-cli PUBLISH reaches the page.
  const receivers = redisCli(redisPort, "publish", "demo", "hello from redis-cli");
  if (receivers !== "1") throw new Error(`PUBLISH reached ${receivers} subscribers, want 1`);
  await page.locator("#log .row.message", { hasText: "hello from redis-cli" }).waitFor();
  log("message from redis-cli shown");

  // 3. Subscribe and publish through the page's forms.
  await page.fill("#channel-input", "from-ui");
  await page.click("#subscribe-btn");
  await page.locator('#subs li[data-key="channel:from-ui"] .count', { hasText: "0" }).waitFor();
  await page.fill("#publish-channel", "from-ui");
  await page.fill("#publish-data", "typed in the page");
  await page.click("#publish-btn");
  await page.locator("#log .row.message", { hasText: "typed in the page" }).waitFor();
  await page.locator("#publish-note", { hasText: "Published to 1" }).waitFor();
  log("page subscribed and published through its forms");

  // 3b. bridge.js pairs every answer with its publish: a refusal the server knows at once
  // waits behind a publish still with Redis, and is marked as a publish's answer.
  const answers = await page.evaluate(async () => {
    const { Bridge } = await import("/bridge.js");
    const b = new Bridge();
    await new Promise((resolve) => b.on("open", resolve));
    const outcome = (p) => p.then((n) => `ok:${n}`, (e) => `error:${e.code}`);
    const got = await Promise.all([
      outcome(b.publish("from-ui", "first")),
      outcome(b.publish("bad\u0001name", "refused")),
      outcome(b.publish("from-ui", "third")),
    ]);
    b.close();
    return got;
  });
  const want = ["ok:1", "error:bad_channel", "ok:1"];
  if (JSON.stringify(answers) !== JSON.stringify(want)) {
    throw new Error(`publish answers ${JSON.stringify(answers)}, want ${JSON.stringify(want)}`);
  }
  log("publish answers paired in order, refusal included");

  // 4. Redis restarts: a gap on the page, then messages again.
  redis.kill("SIGKILL");
  await redis.exited;
  redis = await startRedis(redisPort, tmp);
  await page.locator("#log .row.gap", { hasText: "redis_reconnect" }).first().waitFor();
  log("gap shown after the Redis restart");
  await waitFor("resubscription", () => redisCli(redisPort, "pubsub", "numsub", "demo").endsWith("1"));
  redisCli(redisPort, "publish", "demo", "after the restart");
  await page.locator("#log .row.message", { hasText: "after the restart" }).waitFor();
  if ((await page.locator("#state").textContent()) !== "open") {
    throw new Error("the socket did not stay open through the Redis restart");
  }
  log("messages flow again after the restart");

  if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join("; ")}`);

  await durableReload(context, base);

  // SIGTERM: the page hears going-away (1001) and starts reconnecting; exit 0.
  bridge.kill("SIGTERM");
  const { code } = await bridge.exited;
  if (code !== 0) throw new Error(`bridge exited with ${code} after SIGTERM`);
  await page.locator("#state", { hasText: /reconnecting|connecting/ }).waitFor();
  log("bridge drained on SIGTERM; page reconnecting");
  await page.close();

  await accessControl(context, redisPort, tmp);
}

// 4b. The demo page on a durable channel, reloaded while messages are published.
async function durableReload(context, base) {
  const channel = "durable.orders";
  // Another tab publishes, through bridge.js, answering each message's offset.
  const publisher = await context.newPage();
  publisher.setDefaultTimeout(STEP_TIMEOUT_MS);
  await publisher.goto(`${base}/`);
  await publisher.evaluate(async () => {
    const { Bridge } = await import("/bridge.js");
    window.pub = new Bridge();
    await new Promise((resolve) => window.pub.on("open", resolve));
  });
  const publish = (from, to) => publisher.evaluate(async ({ channel, from, to }) => {
    const answers = [];
    for (let i = from; i <= to; i++) {
      answers.push(await window.pub.publish(channel, `d${i}`, { details: true }));
    }
    return answers;
  }, { channel, from, to });

  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(m.text());
  });
  await page.goto(`${base}/?channel=${channel}`);
  await page.locator(`#subs li[data-key="channel:${channel}"] .count`, { hasText: "0" }).waitFor();
  const first = await publish(1, 3);
  const epoch = first[0].epoch;
  if (first.map((a) => a.offset).join() !== "1,2,3" || typeof epoch !== "string") {
    throw new Error(`publish answers ${JSON.stringify(first)}, want offsets 1, 2, 3`);
  }
  const offsets = () => page.locator("#log .row.message").evaluateAll(
    (rows) => rows.map((r) => Number(r.dataset.offset)));
  await page.locator('#log .row.message[data-offset="3"]').waitFor();
  if ((await offsets()).join() !== "1,2,3") throw new Error(`offsets ${await offsets()}`);
  const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem("bridge-demo")));
  if (stored.positions?.[channel]?.offset !== 3 || stored.positions[channel].epoch !== epoch) {
    throw new Error(`sessionStorage holds ${JSON.stringify(stored)}`);
  }
  log("durable channel: offsets 1..3 shown, position 3 stored");

  // The reload is held at bridge.js, the old page gone and the new one not yet connected,
  // while three more messages are published.
  let routeHit;
  const hit = new Promise((resolve) => (routeHit = resolve));
  let release;
  const released = new Promise((resolve) => (release = resolve));
  await page.route("**/bridge.js", async (route) => {
    routeHit();
    await released;
    await route.continue();
  });
  const reload = page.reload();
  await hit;
  const during = await publish(4, 6);
  if (during.map((a) => a.offset).join() !== "4,5,6") {
    throw new Error(`publish answers during the reload ${JSON.stringify(during)}`);
  }
  release();
  await reload;
  await page.unroute("**/bridge.js");
  await page.locator('#log .row.message[data-offset="6"]').waitFor();
  await publish(7, 7);
  await page.locator('#log .row.message[data-offset="7"]').waitFor();
  const after = await offsets();
  if (after.join() !== "4,5,6,7") throw new Error(`offsets after the reload ${after}, want 4..7`);
  const recoveredRows = await page.locator("#log .row.message.recovered").evaluateAll(
    (rows) => rows.map((r) => Number(r.dataset.offset)));
  if (recoveredRows.join() !== "4,5,6") throw new Error(`recovered rows ${recoveredRows}`);
  await page.locator("#stats", { hasText: "3 recovered" }).waitFor();
  if (await page.locator("#log .row.gap").count()) {
    throw new Error(`gap rows after the reload: ${await page.locator("#log .row.gap").allTextContents()}`);
  }
  log("reload resumed: 4..6 recovered, 7 live, each once, no gap");

  // bridge.js's own reconnect (the socket dropped) resumes too: whether each message comes
  // recovered or live depends on when the new socket opens, but each comes once, in order.
  await page.evaluate(() => window.bridgeDemo.bridge._socket.close(4001, "test reconnect"));
  await page.locator("#log .row.info", { hasText: "connection reconnecting" }).waitFor();
  await publish(8, 10);
  await page.locator('#log .row.message[data-offset="10"]').waitFor();
  const again = await offsets();
  if (again.join() !== "4,5,6,7,8,9,10") {
    throw new Error(`offsets after the reconnect ${again}, want 4..10`);
  }
  if (await page.locator("#log .row.gap").count()) {
    throw new Error(`gap rows after the reconnect: ${await page.locator("#log .row.gap").allTextContents()}`);
  }
  log("socket dropped: resumed, 8..10 each once, no gap");

  // history(): answers in the order asked; a plain channel is not durable.
  const answers = await page.evaluate(async ({ channel, epoch }) => {
    const b = window.bridgeDemo.bridge;
    const outcome = (p) => p.then(
      (h) => `${h.offset}:${h.messages.map((m) => `${m.offset}=${m.data}`).join(",")}` +
             `:${h.history_lost}`,
      (e) => `error:${e.code}`);
    return Promise.all([
      outcome(b.history(channel, { limit: 2 })),
      outcome(b.history("demo")),
      outcome(b.history(channel, { since: { offset: 5, epoch } })),
      outcome(b.history(channel, { since: { offset: 5, epoch: "another" }, limit: 1 })),
    ]);
  }, { channel, epoch });
  const want = ["10:9=d9,10=d10:false", "error:not_durable", "10:6=d6,7=d7,8=d8,9=d9,10=d10:false",
                "10:1=d1:true"];
  if (JSON.stringify(answers) !== JSON.stringify(want)) {
    throw new Error(`history answers ${JSON.stringify(answers)}, want ${JSON.stringify(want)}`);
  }
  log("history answers in order, not_durable for a plain channel");
  if (pageErrors.length) throw new Error(`errors in the durable page: ${pageErrors.join("; ")}`);
  await publisher.evaluate(() => window.pub.close());
  await publisher.close();
  await page.close();
}

// Tokens hold characters that a URL query must escape ('+' would read as a space).
const UI_TOKEN = "ui+token/0123456789=&%#?";
const WRONG_TOKEN = "wrong-token-0123456789";

// 5. The same page and bridge.js against a bridge that wants tokens.
async function accessControl(context, redisPort, tmp) {
  const help = spawnSync(args.bridge, ["--help"], { encoding: "utf8", timeout: 10000 });
  if (!`${help.stdout}${help.stderr}`.includes("access_file")) {
    throw new Error(`${args.bridge} has no --access_file flag: the server side of access ` +
                    "control is not built in");
  }
  const accessFile = path.join(tmp, "access.json");
  writeFileSync(accessFile, JSON.stringify({
    clients: [
      { name: "ui", token: UI_TOKEN, subscribe: ["prices.*", "news"], publish: ["prices.*"] },
      { name: "other", token: "other-token-0123456789", subscribe: ["*"] },
    ],
  }));
  const wsPort = await freePort();
  const bridge = startProcess("bridge (access file)", args.bridge, [
    `--redis=redis://127.0.0.1:${redisPort}`,
    "--grpc_addr=127.0.0.1:0",
    `--ws_addr=127.0.0.1:${wsPort}`,
    `--web_root=${path.resolve(args["web-root"])}`,
    `--access_file=${accessFile}`,
    "--ws_allow_publish",
    "--ws_threads=2",
    "--shutdown_grace=3s",
  ]);
  const base = `http://127.0.0.1:${wsPort}`;
  try {
    await waitFor("bridge /healthz", async () => (await fetch(`${base}/healthz`)).status === 200);
  } catch (e) {
    throw new Error(`${e.message}; bridge output:\n${bridge.output()}`);
  }

  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => {
    // Chromium logs every refused WebSocket handshake (401, 403) as an error; those are
    // expected here.
    if (m.type() === "error" && !/^WebSocket connection to .* failed/.test(m.text())) {
      pageErrors.push(m.text());
    }
  });
  const response = await page.goto(`${base}/`);
  if (response.status() !== 200) throw new Error(`GET / returned ${response.status()}`);

  // 5a. Refused at the upgrade (no token, a wrong one, the right one with a ?channel= it may
  // not subscribe to): the socket never opens; after three tries bridge.js says so, having
  // backed off between them (250 ms doubling, at least half of each step), not looped.
  const refused = async (url, token) => page.evaluate(async ({ url, token, timeoutMs }) => {
    const { Bridge } = await import("/bridge.js");
    const b = new Bridge(url ?? undefined, token ? { token } : {});
    let opened = false;
    const closes = [];
    b.on("open", () => (opened = true));
    b.on("close", (c) => closes.push({ code: c.code, at: performance.now() }));
    try {
      const err = await new Promise((resolve, reject) => {
        b.on("error", (e) => e.code === "connect_failed" && resolve(e));
        setTimeout(() => reject(new Error("no connect_failed in time")), timeoutMs);
      });
      return { opened, closes, err, state: b.state };
    } finally {
      b.close();
    }
  }, { url, token, timeoutMs: STEP_TIMEOUT_MS });
  const wsUrl = `ws://127.0.0.1:${wsPort}/ws`;
  for (const [what, url, token] of [
    ["no token", null, null],
    ["a wrong token", null, WRONG_TOKEN],
    ["a refused ?channel=", `${wsUrl}?channel=secret`, UI_TOKEN],
  ]) {
    const r = await refused(url, token);
    if (r.opened) throw new Error(`with ${what} the socket opened`);
    if (r.err.attempts !== 3 || r.closes.length !== 3) {
      throw new Error(`with ${what}: connect_failed after ${r.err.attempts} tries, ` +
                      `${r.closes.length} closes; want 3`);
    }
    if (r.closes.some((c) => c.code !== 1006)) {
      throw new Error(`with ${what}: close codes ${r.closes.map((c) => c.code)}, want 1006`);
    }
    if (r.state !== "reconnecting") throw new Error(`with ${what}: state ${r.state}`);
    for (let i = 1; i < r.closes.length; i++) {
      const waited = r.closes[i].at - r.closes[i - 1].at;
      const least = (250 * 2 ** (i - 1)) / 2 - 10;
      if (waited < least) {
        throw new Error(`with ${what}: retry ${i} after ${waited.toFixed(0)} ms, want >= ${least}`);
      }
    }
    log(`${what}: never opened, connect_failed after 3 tries with backoff`);
  }
  // The control: the same URL form with an allowed ?channel= opens (the token joins the
  // query with '&').
  const joined = await page.evaluate(async ({ url, token, timeoutMs }) => {
    const { Bridge } = await import("/bridge.js");
    const b = new Bridge(url, { token });
    try {
      return await new Promise((resolve, reject) => {
        b.on("subscribed", resolve);
        b.on("error", (e) => reject(new Error(`${e.code}: ${e.message}`)));
        setTimeout(() => reject(new Error("no subscribed in time")), timeoutMs);
      });
    } finally {
      b.close();
    }
  }, { url: `${wsUrl}?channel=news`, token: UI_TOKEN, timeoutMs: STEP_TIMEOUT_MS });
  if (joined.channel !== "news") throw new Error(`subscribed ${JSON.stringify(joined)}`);
  log("an allowed ?channel= with the token opens and subscribes");

  // 5b. The right token: subscriptions made before the socket opens go out as one frame
  // with a refused channel in it; the server refuses that channel alone and subscribes the
  // rest, and bridge.js drops the refused channel.
  await page.evaluate(async (token) => {
    const { Bridge } = await import("/bridge.js");
    const t = (window.acl = { events: [], got: [] });
    t.bridge = new Bridge(undefined, { token });
    t.forbidden = () => t.events.filter((e) => e.ev === "error" && e.code === "forbidden");
    for (const ev of ["open", "subscribed", "error", "close"]) {
      t.bridge.on(ev, (v) => t.events.push({ ev, ...v }));
    }
    const got = (data, msg) => t.got.push(`${msg.channel}:${data}`);
    t.bridge.subscribe("news", got);
    t.bridge.subscribe("secret", got);
    t.bridge.subscribePattern("prices.*", got);
  }, UI_TOKEN);
  // Waits (bounded) for `check` to hold in the page; says what failed, with the events.
  const until = async (what, check, arg) => {
    try {
      await page.waitForFunction(check, arg);
    } catch (e) {
      const seen = await page.evaluate(() => ({ events: window.acl.events, got: window.acl.got }));
      throw new Error(`${what}: ${e.message}\nevents ${JSON.stringify(seen.events)}\n` +
                      `messages ${JSON.stringify(seen.got)}`);
    }
  };
  const subscribedAfterOpen = (n) => {
    const after = [];
    let opens = 0;
    for (const e of window.acl.events) {
      if (e.ev === "open") opens++;
      else if (opens === n) after.push(e);
    }
    const subscribed = (key, name) => after.some((e) => e.ev === "subscribed" && e[key] === name);
    return subscribed("channel", "news") && subscribed("pattern", "prices.*");
  };
  await until("news and prices.* subscribed", subscribedAfterOpen, 1);
  let errors = await page.evaluate(() => window.acl.events.filter((e) => e.ev === "error"));
  if (errors.length !== 1 || errors[0].code !== "forbidden" || errors[0].channel !== "secret" ||
      errors[0].request !== "subscribe") {
    throw new Error(`errors ${JSON.stringify(errors)}, want one forbidden for secret`);
  }
  log("right token: open; secret refused, news and prices.* subscribed");

  // Messages: what the token may subscribe to arrives; nobody subscribed to secret.
  if (redisCli(redisPort, "publish", "secret", "hidden") !== "0") {
    throw new Error("something subscribed to secret");
  }
  redisCli(redisPort, "publish", "news", "headline");
  redisCli(redisPort, "publish", "prices.eur", "1.08");
  await until("messages on news and prices.eur",
    () => ["news:headline", "prices.eur:1.08"].every((m) => window.acl.got.includes(m)));
  log("messages on news and prices.eur received");

  // Refused once open: a channel and a pattern, each its own error; the socket stays open.
  await page.evaluate(() => {
    window.acl.bridge.subscribe("secret2", () => {});
    window.acl.bridge.subscribePattern("secret.*", () => {});
  });
  await until("forbidden for secret2 and secret.*", () => window.acl.forbidden().length >= 3);
  errors = await page.evaluate(() => window.acl.forbidden().slice(1));
  if (!errors.some((e) => e.code === "forbidden" && e.channel === "secret2") ||
      !errors.some((e) => e.code === "forbidden" && e.pattern === "secret.*")) {
    throw new Error(`errors ${JSON.stringify(errors)}, want forbidden secret2 and secret.*`);
  }

  // Publishing: allowed on prices.*, publish_forbidden on news (subscribe-only).
  const published = await page.evaluate(async () => {
    const outcome = (p) => p.then(() => "ok", (e) => `error:${e.code}`);
    return Promise.all([
      outcome(window.acl.bridge.publish("prices.usd", "1.00")),
      outcome(window.acl.bridge.publish("news", "not mine")),
    ]);
  });
  if (JSON.stringify(published) !== JSON.stringify(["ok", "error:publish_forbidden"])) {
    throw new Error(`publish answers ${JSON.stringify(published)}`);
  }
  await until("the page's own publish", () => window.acl.got.includes("prices.usd:1.00"));
  if ((await page.evaluate(() => window.acl.bridge.state)) !== "open") {
    throw new Error("the socket did not stay open through the refusals");
  }
  log("forbidden subscribe and publish answered; socket still open");

  // A reconnect asks only for what was allowed: no refusal comes before the confirmations.
  await page.evaluate(() => window.acl.bridge._socket.close(4001, "test reconnect"));
  await until("resubscribed after the reconnect", subscribedAfterOpen, 2);
  errors = await page.evaluate(() => window.acl.forbidden());
  if (errors.length !== 3) {
    throw new Error(`refusals beyond the three expected: ${JSON.stringify(errors.slice(3))}`);
  }
  await page.evaluate(() => window.acl.bridge.close());
  log("reconnect resubscribed only the allowed names");

  // 5c. The page: without a token it says it cannot connect; the token field connects.
  await page.locator("#connect-note.bad", { hasText: "Cannot connect" }).waitFor();
  if ((await page.locator("#state").textContent()) === "open") {
    throw new Error("the page is open without a token");
  }
  await page.fill("#token-input", UI_TOKEN);
  await page.click("#connect-btn");
  await page.locator("#state", { hasText: "open" }).waitFor();
  await page.locator("#connect-note", { hasText: "Connected with the access token" }).waitFor();
  await page.fill("#channel-input", "news");
  await page.click("#subscribe-btn");
  await page.locator('#subs li[data-key="channel:news"] .count', { hasText: "0" }).waitFor();
  await page.fill("#channel-input", "secret");
  await page.click("#subscribe-btn");
  await page.locator("#log .row.error", { hasText: "forbidden" }).waitFor();
  await page.locator('#subs li[data-key="channel:secret"]').waitFor({ state: "detached" });
  redisCli(redisPort, "publish", "news", "shown with a token");
  await page.locator("#log .row.message", { hasText: "shown with a token" }).waitFor();
  log("page: token field connects, forbidden channel shown and dropped, messages arrive");

  if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join("; ")}`);
  bridge.kill("SIGTERM");
  const { code } = await bridge.exited;
  if (code !== 0) throw new Error(`bridge (access file) exited with ${code} after SIGTERM`);
}

let failed = false;
const guard = setTimeout(() => {
  console.error("FAIL: the whole test took more than 120 s");
  process.exit(1);
}, 120000);
try {
  await main();
  console.log("PASS");
} catch (e) {
  failed = true;
  console.error(`FAIL: ${e.stack ?? e}`);
} finally {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      // best effort
    }
  }
  clearTimeout(guard);
}
process.exit(failed ? 1 : 0);
