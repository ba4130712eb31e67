// run-page.mjs opens one test page in Debian's Chromium (driven by
// playwright-core; no browser is ever downloaded) and prints the page's
// result as one JSON line on stdout.
//
// Usage: node run-page.mjs URL [timeout-seconds]
//
// Contract with the page: it sets window.__result (any JSON value) as it
// goes, and window.__done = true when it has its answer. The exit status
// is 0 when the page finished with __result.ok === true, 1 otherwise
// (a failure, or the timeout: then __result is whatever the page had).
// Browser console lines and page errors are added as "console" and
// "pageErrors".
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const url = process.argv[2];
const timeoutMs = Number(process.argv[3] || 60) * 1000;
if (!url) {
  console.error('usage: node run-page.mjs URL [timeout-seconds]');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const userDataDir = mkdtempSync(join(tmpdir(), 'podium-chromium-'));
const consoleLines = [];
const pageErrors = [];
let result = null;
let done = false;
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', '--mute-audio',
    ],
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('console', (m) => { if (consoleLines.length < 200) consoleLines.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  await page.goto(url, { timeout: timeoutMs });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const s = await page.evaluate(() => ({ done: window.__done === true, result: window.__result ?? null }));
    result = s.result;
    if (s.done) { done = true; break; }
    await new Promise((r) => setTimeout(r, 250));
  }
} catch (e) {
  pageErrors.push(`driver: ${e && e.stack ? e.stack : e}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
const ok = done && result !== null && result.ok === true;
process.stdout.write(JSON.stringify({ ok, done, result, console: consoleLines, pageErrors }) + '\n');
process.exit(ok ? 0 : 1);
