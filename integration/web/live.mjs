// The dashboard in headless Chromium against the REAL mwand on the testbed.
// Driven by integration/tests/mwand_dashboard.rs, which runs this script
// inside the router's namespace (where mwand listens on loopback), cuts and
// restores WANs and checks traffic from the LAN itself. One command a line
// on stdin; each gets one line on stdout: "ok" or "fail: why".
//
//   node live.mjs URL SCREENSHOT_DIR
//
// Commands:
//   open                        load the page; both WAN cards render
//   state WAN STATE             within 3 s the card of WAN shows STATE
//   carries POLICY WAN          within 3 s POLICY's only share is WAN
//   force WAN                   press "Use only this uplink" on WAN's card
//   clear                       press "Clear overrides"
//   shot NAME                   screenshot to SCREENSHOT_DIR/NAME.png
//   console                     no console errors or page errors so far
//   quit
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { chromium } from "playwright-core";

const [base, shots] = process.argv.slice(2);
fs.mkdirSync(shots, { recursive: true });
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "mwan-live-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1100, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const problems = [];
const page = await browser.newPage();
page.on("console", (m) => { if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`); });
page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
page.on("dialog", (d) => d.accept());

// The page's CSP forbids eval, so waitForFunction's strings cannot run:
// poll with evaluate (a CDP call) until `fn` holds or `ms` pass.
async function until(ms, what, fn, ...args) {
  const end = Date.now() + ms;
  for (;;) {
    if (await page.evaluate(fn, args)) return;
    if (Date.now() > end) throw new Error(`${what} not seen within ${ms} ms`);
    await page.waitForTimeout(100);
  }
}
const card = (wan) => `article.wan[data-wan="${wan}"]`;

async function run(words) {
  const [cmd, a, b] = words;
  switch (cmd) {
    case "open":
      await page.goto(`${base}/`);
      await until(10_000, "two WAN cards", () => document.querySelectorAll("article.wan").length === 2);
      await page.waitForSelector(`${card("wan1")} [data-fig="latency"]`);
      return;
    case "state":
      return until(3_000, `${a} ${b}`, ([w, s]) => document.querySelector(`article.wan[data-wan="${w}"]`)?.getAttribute("data-state") === s, a, b);
    case "carries":
      return until(3_000, `policy ${a} on ${b} only`, ([p, w]) => {
        const shares = [...document.querySelectorAll(`article.policy[data-policy="${p}"] .share`)];
        return shares.length === 1 && shares[0].getAttribute("data-wan") === w;
      }, a, b);
    case "force":
      await page.locator(`${card(a)} button`, { hasText: "Use only this uplink" }).click();
      return until(5_000, "the override's answer", () => /now uses/.test(document.getElementById("result").textContent));
    case "clear":
      await page.locator("#clear-all").click();
      return until(5_000, "the clear's answer", () => /cleared/.test(document.getElementById("result").textContent));
    case "shot":
      return page.screenshot({ path: path.join(shots, `${a}.png`), fullPage: true });
    case "console":
      if (problems.length) throw new Error(problems.join(" | "));
      return;
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const words = line.trim().split(/\s+/);
  if (words[0] === "quit") break;
  try {
    await run(words);
    console.log("ok");
  } catch (e) {
    console.log(`fail: ${String(e.message).replace(/\n/g, " ")}`);
  }
}
await browser.close();
fs.rmSync(profile, { recursive: true, force: true });
