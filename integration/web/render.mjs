// Render test of the dashboard page in headless Chromium: the page's files
// as mwand embeds them (web/*.gz) and the same response headers, but the
// API answered with canned JSON by this script. It checks the page, not
// mwand: the end-to-end browser test against the real mwand on the testbed
// is still to come (docs/dashboard.md, "What remains").
//
//   make web-test     (installs playwright-core here; needs Debian's chromium)
//
// Screenshots go to target/screenshots/dashboard-*.png.
import http from "node:http";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
const shots = path.join(root, "target/screenshots");
fs.mkdirSync(shots, { recursive: true });

// The headers mwand sends (crates/mwand/src/http/response.rs, CSP and friends).
const rs = fs.readFileSync(path.join(root, "crates/mwand/src/http/response.rs"), "utf8");
const csp = /pub const CSP: &str = "([^"]*)\\\n([^"]*)";/.exec(rs);
assert.ok(csp, "CSP constant not found in http/response.rs");
const CSP = csp[1] + csp[2];
const headers = (type) => ({
  "Content-Type": type, "Cache-Control": "no-store", "Content-Security-Policy": CSP,
  "X-Content-Type-Options": "nosniff", "Connection": "close",
});

const assets = { "/": ["index.html", "text/html; charset=utf-8"], "/mwan.css": ["mwan.css", "text/css"], "/mwan.js": ["mwan.js", "text/javascript"] };

// Canned mwand: wan1 online then cut (offline) on the third history poll.
let polls = 0;
const writes = [];
const NOW = 10_000;
function status() {
  const cut = polls >= 3;
  return {
    config: "/etc/config/mwan", dataplane_error: null, uptime_s: 3725,
    interfaces: [
      { name: "wan1", device: "eth1", state: cut ? "offline" : "online", state_age_s: cut ? 1 : 3600,
        latency_ms: cut ? null : 12.3, jitter_ms: cut ? null : 1.1, loss_pct: cut ? 100 : 0, score: cut ? null : 13.4,
        tracker: { pid: 42, restarts: 0, uptime_s: 3725, connected: true }, reason: null },
      { name: "wan2", device: "eth2", state: "online", state_age_s: 3725, latency_ms: 31.5, jitter_ms: 4.2,
        loss_pct: 1.0, score: 36.7, tracker: { pid: 43, restarts: 1, uptime_s: 3700, connected: true }, reason: null },
    ],
    policies: [
      { name: "balanced", active: cut ? [{ interface: "wan2", weight: 1, share_pct: 100 }]
          : [{ interface: "wan1", weight: 3, share_pct: 75 }, { interface: "wan2", weight: 1, share_pct: 25 }], last_resort: null },
      { name: "failover", active: [{ interface: cut ? "wan2" : "wan1", weight: 1, share_pct: 100 }], last_resort: null },
    ],
    override: null, overrides: [], dataplane: { route_dumps: 1, restored_objects: 0, nft_installs: 1, conntrack_pending: [] },
  };
}
function explain() {
  return { explain: [
    { policy: "balanced", lines: ["policy balanced uses wan1 (weight 3) and wan2 (weight 1) for IPv4"] },
    { policy: "failover", lines: ["policy failover uses wan1 (metric 1) for IPv4; wan2 is standby"] },
  ] };
}
// After a reboot mwand's monotonic clock starts again near 0.
let rebooted = false;
function historyAfterReboot(since) {
  const next = 50 + polls, reset = since > next;
  const from = reset ? 0 : since;
  const wan = (name) => ({ name, t0: from, latency_ms: [], jitter_ms: [], loss_pct: [], score: [], state: [] });
  const wans = [wan("wan1"), wan("wan2")];
  for (let t = from; t <= next; t++) for (const w of wans) {
    w.latency_ms.push(9); w.jitter_ms.push(1); w.loss_pct.push(0); w.score.push(10); w.state.push(1);
  }
  const events = [{ seq: 1, t: 40, at_ms: 40_000, kind: "state", subject: "wan1", text: "unknown -> online", reason: "after boot" }];
  return { next, reset, step_s: 1, states: ["unknown", "online", "disconnecting", "offline", "connecting", "disabled"], wans,
    events: events.filter((e) => e.t >= from) };
}

// An hour of wan1 with a dip, and wan2 with some loss and a gap.
function history(since) {
  if (rebooted) return historyAfterReboot(since);
  const cut = polls >= 3;
  const next = NOW + polls;
  const from = Math.max(since, next - 3599);
  const wan = (name, f) => {
    const w = { name, t0: from, latency_ms: [], jitter_ms: [], loss_pct: [], score: [], state: [] };
    for (let t = from; t <= next; t++) {
      const p = f(t);
      w.latency_ms.push(p && p[0]); w.jitter_ms.push(p && p[0] / 10); w.loss_pct.push(p && p[1]);
      w.score.push(p && p[0] + 1); w.state.push(p && p[2]);
    }
    return w;
  };
  const wans = [
    wan("wan1", (t) => (cut && t >= NOW + 3) ? [null, 100, 3] : (t > NOW - 1800 && t < NOW - 1500) ? [80 + (t % 7), 20, 2] : [12 + (t % 5), 0, 1]),
    wan("wan2", (t) => (t > NOW - 900 && t < NOW - 840) ? null : [30 + (t % 11), t % 97 === 0 ? 10 : 0, 1]),
  ];
  const events = [
    { seq: 1, t: NOW - 1800, at_ms: (NOW - 1800) * 1000, kind: "state", subject: "wan1", text: "online -> disconnecting", reason: "2 of 5 probes lost" },
    { seq: 2, t: NOW - 1500, at_ms: (NOW - 1500) * 1000, kind: "state", subject: "wan1", text: "disconnecting -> online", reason: "5 of 5 probes answered" },
  ];
  if (cut) events.push({ seq: 3, t: NOW + 3, at_ms: (NOW + 3) * 1000, kind: "state", subject: "wan1", text: "online -> offline", reason: "<b>no</b> reply from 192.0.2.1 for 3 rounds" },
    { seq: 4, t: NOW + 3, at_ms: (NOW + 3) * 1000 + 5, kind: "policy", subject: "balanced", text: "wan2 100%", reason: "wan1 is offline" });
  return { next, step_s: 1, states: ["unknown", "online", "disconnecting", "offline", "connecting", "disabled"], wans,
    events: events.filter((e) => e.t >= since) };
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (assets[url.pathname] && req.method === "GET") {
    const [file, type] = assets[url.pathname];
    res.writeHead(200, { ...headers(type), "Content-Encoding": "gzip" });
    return res.end(fs.readFileSync(path.join(root, "web", file + ".gz")));
  }
  const json = (v, code = 200) => { res.writeHead(code, headers("application/json")); res.end(JSON.stringify(v)); };
  if (url.pathname === "/favicon.ico") { res.writeHead(204, headers("text/plain")); return res.end(); }
  if (req.method === "GET" && url.pathname === "/api/status") return json(status());
  if (req.method === "GET" && url.pathname === "/api/explain") return json(explain());
  if (req.method === "GET" && url.pathname === "/api/history") {
    const since = Number(url.searchParams.get("since") || 0);
    const h = history(since);
    polls++;
    return json(h);
  }
  if (req.method === "POST" && url.pathname.startsWith("/api/")) {
    let body = "";
    req.on("data", (c) => { body += c; });
    req.on("end", () => {
      writes.push({ path: url.pathname, type: req.headers["content-type"], token: req.headers["x-mwan-token"], body: JSON.parse(body || "{}") });
      if (url.pathname === "/api/restart" && writes.filter((w) => w.path === "/api/restart").length > 1) {
        return json({ ok: false, error: "no interface 'wan9'" }, 400);
      }
      json({ ok: true, message: `done: ${url.pathname}` });
    });
    return;
  }
  res.writeHead(404, headers("text/plain")); res.end("no such page\n");
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mwan-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1100, height: 900 },
  colorScheme: "light",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
// waitForFunction evaluates strings, which the page's CSP forbids: poll
// with evaluate (a CDP call, not eval) instead.
async function until(page, fn, arg) {
  for (let i = 0; i < 100; i++) {
    if (await page.evaluate(fn, arg)) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`timed out waiting for ${fn}`);
}
let failed = false;
try {
  const page = await browser.newPage();
  page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("dialog", (d) => d.accept());

  await page.goto(`${base}/#token=t0ken`);
  await page.waitForSelector('article.wan[data-wan="wan2"] svg.graph path.lat');
  assert.equal(await page.locator("article.wan").count(), 2, "two WAN cards");
  assert.equal(await page.locator('article.wan[data-wan="wan1"] .badge').textContent(), "online");
  assert.equal(await page.locator('article.wan[data-wan="wan1"] [data-fig="latency"]').textContent(), "12.3 ms");
  assert.ok(!page.url().includes("t0ken"), "token left in the address bar");
  assert.ok(Number(await page.locator('article.wan[data-wan="wan1"] svg.graph').getAttribute("data-points")) > 3000);
  assert.ok(Number(await page.locator('article.wan[data-wan="wan1"] svg.graph').getAttribute("data-marks")) >= 2, "state changes marked");
  await page.waitForSelector('article.policy[data-policy="balanced"] .explain li');
  assert.match(await page.locator('article.policy[data-policy="balanced"] .explain').textContent(), /uses wan1 \(weight 3\)/);
  assert.equal(await page.locator('article.policy[data-policy="balanced"] .share').count(), 2);
  assert.equal(await page.locator("#events li").count(), 2);
  await page.screenshot({ path: path.join(shots, "dashboard-1-online.png"), fullPage: true });

  // wan1 is cut: the card, the shares and the timeline follow without a reload.
  await page.waitForSelector('article.wan[data-wan="wan1"][data-state="offline"]', { timeout: 10_000 });
  await until(page, () => document.querySelectorAll('article.policy[data-policy="balanced"] .share').length === 1);
  await until(page, () => document.querySelectorAll("#events li").length === 4);
  const first = await page.locator("#events li").first().textContent();
  assert.match(first, /balanced wan2 100%/);
  assert.ok(await page.locator("#events b").count() === 0, "event text was rendered as markup");
  assert.match(await page.locator("#events").textContent(), /<b>no<\/b> reply/);
  await page.screenshot({ path: path.join(shots, "dashboard-2-wan1-cut.png"), fullPage: true });

  // Writes: confirmation accepted, JSON with the token, result shown.
  await page.locator('article.wan[data-wan="wan1"] button', { hasText: "Restart tracker" }).click();
  await until(page, () => !document.getElementById("result").hidden);
  assert.equal(await page.locator("#result").textContent(), "done: /api/restart");
  await page.locator('article.policy[data-policy="balanced"] select').selectOption("wan2");
  await page.locator('article.policy[data-policy="balanced"] button', { hasText: "Override" }).click();
  await until(page, () => document.getElementById("result").textContent === "done: /api/override");
  await page.locator('article.policy[data-policy="balanced"] button', { hasText: "Clear" }).click();
  await until(page, () => document.getElementById("result").textContent === "done: /api/override/clear");
  await page.locator("#reload").click();
  await until(page, () => document.getElementById("result").textContent === "done: /api/reload");
  assert.deepEqual(writes.map((w) => [w.path, w.body]), [
    ["/api/restart", { interface: "wan1" }],
    ["/api/override", { interface: "wan2", policy: "balanced" }],
    ["/api/override/clear", { policy: "balanced" }],
    ["/api/reload", {}],
  ]);
  assert.ok(writes.every((w) => w.type === "application/json" && w.token === "t0ken"), JSON.stringify(writes));
  // A refusal is shown as such.
  await page.locator('article.wan[data-wan="wan2"] button', { hasText: "Restart tracker" }).click();
  await until(page, () => !document.getElementById("error").hidden);
  assert.equal(await page.locator("#error").textContent(), "no interface 'wan9'");
  // Chromium logs the provoked 400 itself; that one is expected.
  // Its console event may arrive after the DOM changed: wait for it.
  let logged = -1;
  for (let i = 0; i < 50 && logged < 0; i++) {
    logged = problems.findIndex((p) => p.includes("status of 400"));
    if (logged < 0) await page.waitForTimeout(100);
  }
  assert.ok(logged >= 0, "the refusal was not even requested");
  problems.splice(logged, 1);
  // Declining the confirmation sends nothing.
  page.removeAllListeners("dialog");
  page.on("dialog", (d) => d.dismiss());
  const before = writes.length;
  await page.locator("#reload").click();
  await page.waitForTimeout(300);
  assert.equal(writes.length, before, "a declined confirmation still wrote");

  // A reboot: the page's cursor is from another timeline; it starts over.
  rebooted = true;
  await until(page, () => document.querySelectorAll("#events li").length === 1);
  assert.match(await page.locator("#events li").first().textContent(), /wan1 unknown -> online/);
  await until(page, () => Number(document.querySelector('article.wan[data-wan="wan1"] svg.graph').getAttribute("data-points")) < 100);
  rebooted = false;

  // A phone, in the dark.
  const phone = await browser.newPage();
  await phone.setViewportSize({ width: 390, height: 844 });
  await phone.emulateMedia({ colorScheme: "dark" });
  phone.on("pageerror", (e) => problems.push(`phone page error: ${e.message}`));
  await phone.goto(base);
  await phone.waitForSelector('article.wan[data-wan="wan2"] svg.graph path.lat');
  const widths = await phone.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(widths[0] <= widths[1], `page wider than the phone: ${widths}`);
  const bg = await phone.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, "rgb(13, 17, 23)", "dark scheme not followed");
  await phone.screenshot({ path: path.join(shots, "dashboard-3-phone-dark.png"), fullPage: true });

  assert.deepEqual(problems, [], "console errors");
  console.log(`ok: dashboard render test; screenshots in ${shots}`);
} catch (e) {
  failed = true;
  console.error(e);
  if (problems.length) console.error(problems.join("\n"));
} finally {
  await browser.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
