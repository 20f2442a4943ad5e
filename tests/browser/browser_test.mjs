// End-to-end: the demo page in real headless Chromium, served by the real bridge binary,
// fed by a real redis-server.
//
//   node browser_test.mjs --bridge build/bridge/bridge --web-root clients/web
//
// 1. the page loads from the bridge and subscribes (?channel=demo);
// 2. a message published with redis-cli appears on the page;
// 3. a subscription made through the page's form receives, and the form publishes;
// 4. Redis restarts: the page shows the gap and keeps receiving.
// Exits 0 on success, 1 on failure, 77 (skipped) when Chromium is not installed.
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
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
  ]);
  const base = `http://127.0.0.1:${wsPort}`;
  await waitFor("bridge /healthz", async () => (await fetch(`${base}/healthz`)).status === 200);

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

  // SIGTERM: the page hears going-away (1001) and starts reconnecting; exit 0.
  bridge.kill("SIGTERM");
  const { code } = await bridge.exited;
  if (code !== 0) throw new Error(`bridge exited with ${code} after SIGTERM`);
  await page.locator("#state", { hasText: /reconnecting|connecting/ }).waitFor();
  log("bridge drained on SIGTERM; page reconnecting");
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
