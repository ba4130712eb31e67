// dashboard.mjs drives Podium's dashboard in Debian's Chromium (through
// playwright-core; no browser is ever downloaded) for e2e/dashboard_test.go.
//
// Usage: node dashboard.mjs flow|measure BASE_URL PASSWORD SCREENSHOT [ROWS]
//
// It talks to the Go test in JSON lines: events on stdout, and in "flow"
// mode it waits for the test's cues on stdin ("published", "slave-up",
// "kick").
//
// flow: log in; on "published", time until the stream's row shows and
// report the input/output codecs and the forward's state; on "slave-up",
// wait for the forward to show "forwarding" without a reload (a
// MutationObserver records every state the chip showed); play the HLS
// preview until its clock passes 1 s; screenshot;
// on "kick", kick the publisher from its button and time until the row
// goes.
//
// measure: log in, then load the dashboard and report first paint, first
// contentful paint and the time until ROWS stream rows are drawn.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const [mode, base, password, screenshot, rowsArg] = process.argv.slice(2);
if (!mode || !base || !password || !screenshot) {
  console.error('usage: node dashboard.mjs flow|measure BASE_URL PASSWORD SCREENSHOT [ROWS]');
  process.exit(2);
}

const emit = (ev) => process.stdout.write(JSON.stringify(ev) + '\n');
const cues = [];
const waiters = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  const w = waiters.shift();
  if (w) w(line.trim()); else cues.push(line.trim());
});
function cue(want, timeoutMs = 60000) {
  return new Promise((resolve, reject) => {
    const got = (line) => (line === want ? resolve() : reject(new Error(`cue ${line}, want ${want}`)));
    if (cues.length) { got(cues.shift()); return; }
    const t = setTimeout(() => reject(new Error(`no cue ${want}`)), timeoutMs);
    waiters.push((line) => { clearTimeout(t); got(line); });
  });
}

const userDataDir = mkdtempSync(join(tmpdir(), 'podium-chromium-'));
const pageErrors = [];
let context;
let code = 0;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', '--mute-audio',
    ],
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() !== 'error' || pageErrors.length >= 50) return;
    const at = m.location() && m.location().url;
    pageErrors.push('console: ' + m.text() + (at ? ' (' + at + ')' : ''));
  });

  // Log in through the form, as a person would.
  await page.goto(base + '/', { timeout: 30000 });
  if (!page.url().endsWith('/login')) throw new Error('anonymous dashboard did not go to /login: ' + page.url());
  await page.fill('#password', 'wrong-' + password);
  await page.click('#submit');
  await page.waitForSelector('#login-error:not([hidden])', { timeout: 10000 });
  const wrongMsg = await page.textContent('#login-error');
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(base + '/', { timeout: 15000 }), page.click('#submit')]);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === 'podium_session') || {};
  emit({ event: 'login', wrongMsg, httpOnly: session.httpOnly === true, sameSite: session.sameSite || '' });
  pageErrors.length = 0; // the wrong password's 401 was on purpose

  if (mode === 'measure') {
    const want = Number(rowsArg || 200);
    const runs = [];
    let last;
    for (let i = 0; i < 3; i++) {
      // A fresh tab each time: paint timing is per document load.
      const tab = await context.newPage();
      tab.on('pageerror', (e) => pageErrors.push(String(e)));
      await tab.goto(base + '/', { timeout: 30000 });
      await tab.waitForFunction((n) => document.querySelectorAll('#stream-rows tr[data-id]').length >= n, want, { timeout: 30000, polling: 'raf' });
      const r = await tab.evaluate(() => {
        const paint = {};
        for (const e of performance.getEntriesByType('paint')) paint[e.name] = e.startTime;
        return {
          rowsMs: performance.now(),
          rows: document.querySelectorAll('#stream-rows tr[data-id]').length,
          firstPaint: paint['first-paint'] ?? -1,
          firstContentfulPaint: paint['first-contentful-paint'] ?? -1,
          domContentLoaded: performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd,
        };
      });
      // The next two live updates: how long does redrawing every row take?
      const renders = await tab.evaluate(() => new Promise((resolve) => {
        const start = window.podiumUpdates;
        const iv = setInterval(() => {
          if (window.podiumUpdates >= start + 2) { clearInterval(iv); resolve(window.podiumRenderMs); }
        }, 20);
      }));
      runs.push({ ...r, updateRenderMs: renders });
      if (last) await last.close();
      last = tab;
    }
    await last.screenshot({ path: screenshot, fullPage: false });
    emit({ event: 'measure', runs, pageErrors });
  } else {
    await page.waitForSelector('#conn.live', { timeout: 15000 });
    await page.evaluate(() => { window.__noReload = true; });
    emit({ event: 'ready' });

    await cue('published');
    const t0 = Date.now();
    const inRow = 'tr[data-stream="__defaultVhost__/live/cam1"]';
    const outRow = 'tr[data-stream="transcode/live/cam1"]';
    await page.waitForSelector(inRow, { timeout: 20000 });
    const streamMs = Date.now() - t0;
    // Codecs in -> out once the transcode's output is live.
    await page.waitForFunction((sel) => {
      const td = document.querySelector(sel + ' td:nth-child(4)');
      return td && /→ .*aac/.test(td.textContent);
    }, inRow, { timeout: 20000 });
    const codecs = await page.textContent(inRow + ' td:nth-child(4)');
    const publisher = await page.textContent(inRow + ' td:nth-child(2)');
    const transcode = await page.textContent(inRow + ' td:nth-child(9)');
    // Record every state the forward chip shows from now on.
    await page.waitForSelector(outRow + ' .chip', { timeout: 20000 });
    await page.evaluate((sel) => {
      window.__states = [];
      const note = () => {
        const chip = document.querySelector(sel + ' .chip');
        const s = chip && chip.dataset.state;
        if (s && window.__states[window.__states.length - 1] !== s) window.__states.push(s);
      };
      note();
      new MutationObserver(note).observe(document.getElementById('stream-rows'), { subtree: true, childList: true, attributes: true, characterData: true });
    }, outRow);
    const firstState = await page.getAttribute(outRow + ' .chip', 'data-state');
    emit({ event: 'stream', streamMs, codecs, publisher, transcode, firstState });

    await cue('slave-up');
    const t1 = Date.now();
    await page.waitForSelector(outRow + ' .chip[data-state="forwarding"]', { timeout: 45000 });
    const states = await page.evaluate(() => window.__states);
    const noReload = await page.evaluate(() => window.__noReload === true);
    // Open the details row: the forward's table and the transcode panel.
    await page.click(outRow + ' .details-btn');
    await page.waitForSelector('tr.detail table.inner', { timeout: 5000 });
    const detail = await page.textContent('tr.detail');
    await page.click(outRow + ' .details-btn');
    const hw = await page.textContent('#hw');
    const host = await page.textContent('#host');
    emit({ event: 'forwarding', ms: Date.now() - t1, states, noReload, detail, hw, host });

    // The HLS preview plays (hls.js, lazily loaded, under the page's CSP).
    await page.click(outRow + ' .preview-btn');
    await page.waitForFunction(() => {
      const v = document.getElementById('player');
      return v && v.currentTime > 1;
    }, null, { timeout: 30000, polling: 250 });
    const previewTime = await page.evaluate(() => document.getElementById('player').currentTime);
    const previewMsg = await page.textContent('#preview-msg');
    emit({ event: 'preview', currentTime: previewTime, msg: previewMsg });

    await page.screenshot({ path: screenshot, fullPage: true });
    emit({ event: 'screenshot', path: screenshot });

    await cue('kick');
    page.once('dialog', (d) => d.accept());
    const t2 = Date.now();
    await page.click(inRow + ' .kick-btn');
    await page.waitForSelector(inRow, { state: 'detached', timeout: 15000 });
    emit({ event: 'kicked', ms: Date.now() - t2, pageErrors });
  }
} catch (e) {
  emit({ event: 'error', error: String(e && e.stack ? e.stack : e), pageErrors });
  code = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(code);
