// The web HMI in a real browser: headless Debian Chromium driven by playwright-core, against a
// running `petra run` of the quickstart. Run by crates/petra/tests/it/hmi.rs:
//
//   PETRA_ADMIN_PASSWORD=… PETRA_VIEWER_PASSWORD=… node hmi.mjs URL SCREENSHOT_DIR
//
// URL is Petra's base URL (http://127.0.0.1:PORT/); the viewer user is `viewer` (or
// PETRA_VIEWER_USER). Screenshots of every view (1280×720, and the signals at tablet width) go
// to SCREENSHOT_DIR as hmi-*.png. Every wait polls with a deadline (playwright's waitFor*).
// Exit status 0 when every check passed; the failing step otherwise.

import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const INSTALL = 'npm install --prefix /var/tmp/petra-peers/npm playwright-core@1.65.2 '
  + '(or run scripts/test, which installs every test peer)';

function loadPlaywright() {
  const dirs = [process.env.PETRA_NPM_PEERS || '/var/tmp/petra-peers/npm'];
  try {
    dirs.push(path.dirname(execFileSync('npm', ['root', '-g'], { encoding: 'utf8' }).trim()));
  } catch { /* no npm: only the peers directory */ }
  for (const dir of dirs) {
    try {
      return createRequire(path.join(dir, 'node_modules', 'noop.js'))('playwright-core');
    } catch { /* try the next */ }
  }
  console.error(`test peer playwright-core is not installed. Install it with \`${INSTALL}\``);
  process.exit(2);
}

const [url, shots] = process.argv.slice(2);
const adminPassword = process.env.PETRA_ADMIN_PASSWORD;
const viewerPassword = process.env.PETRA_VIEWER_PASSWORD;
const viewerUser = process.env.PETRA_VIEWER_USER || 'viewer';
if (!url || !shots || !adminPassword || !viewerPassword) {
  console.error('usage: PETRA_ADMIN_PASSWORD=… PETRA_VIEWER_PASSWORD=… node hmi.mjs URL SCREENSHOT_DIR');
  process.exit(2);
}
const CHROMIUM = process.env.PETRA_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM)) {
  console.error(`test peer chromium is not installed. Install it with \`apt-get install -y chromium\` (or run scripts/test)`);
  process.exit(2);
}
fs.mkdirSync(shots, { recursive: true });

const { chromium } = loadPlaywright();
const results = {};
const problems = [];
let step = 'start';
const t0 = Date.now();

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

async function run(name, f) {
  step = name;
  const started = Date.now();
  await f();
  console.log(`ok   ${name} (${Date.now() - started} ms)`);
}

let page = null;
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu'],
});
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  context.setDefaultTimeout(20_000);
  page = await context.newPage();
  // Every script error and CSP violation fails the test; refusals the test provokes (401, 403,
  // 422) show up as "Failed to load resource" and are expected.
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      problems.push(`console error: ${m.text()}`);
    }
  });
  const shot = (name) => page.screenshot({ path: path.join(shots, `hmi-${name}.png`) });
  const cell = (signal) => page.locator(`tr[data-signal="${signal}"] td.value`);
  const alarmState = (alarm) => page.locator(`tr[data-alarm="${alarm}"] td.state`);
  const dialog = page.locator('dialog[open]');

  /** Opens the Set dialog of `signal`, writes `value`; returns the dialog's error text ('' if
   *  the write was accepted and the dialog closed). */
  async function setSignal(signal, value) {
    await page.getByRole('button', { name: `Set ${signal}`, exact: true }).click();
    await dialog.locator('#set-value').fill(String(value));
    await dialog.getByRole('button', { name: 'Write' }).click();
    const error = dialog.locator('.error');
    // Whichever comes first; the other wait is abandoned (and its timeout ignored).
    const outcome = await Promise.race([
      dialog.waitFor({ state: 'detached' }).then(() => 'closed', () => null),
      error.filter({ hasText: /\S/ }).waitFor().then(() => 'refused', () => null),
    ]);
    check(outcome !== null, `the Set dialog of ${signal} neither closed nor showed an error`);
    if (outcome === 'refused') {
      const text = await error.textContent();
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'detached' });
      return text;
    }
    return '';
  }

  async function waitText(locator, text, timeout) {
    await locator.filter({ hasText: text }).first().waitFor({ timeout });
  }

  await run('first paint of the login page', async () => {
    const started = Date.now();
    await page.goto(url);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    const visibleMs = Date.now() - started;
    const paint = await page.evaluate(() => Object.fromEntries(
      performance.getEntriesByType('paint').map((e) => [e.name, Math.round(e.startTime)])));
    const firstPaint = paint['first-contentful-paint'] ?? paint['first-paint'] ?? visibleMs;
    results.first_paint_ms = firstPaint;
    results.login_form_visible_ms = visibleMs;
    console.log(`     first contentful paint ${firstPaint} ms, login form visible after ${visibleMs} ms`);
    check(firstPaint <= 1000, `first paint ${firstPaint} ms ≤ 1000 ms`);
    // The login field has the focus: a keyboard user types at once.
    check(await page.evaluate(() => document.activeElement?.id === 'login-user'), 'the user field has the focus');
    await shot('login');
  });

  await run('a wrong password is refused with the server\'s message', async () => {
    await page.fill('#login-user', 'admin');
    await page.fill('#login-password', 'not the password at all');
    await page.click('#login-submit');
    await waitText(page.locator('#login-error'), 'wrong user name or password');
  });

  await run('log in as admin and see tank.level change live', async () => {
    await page.fill('#login-password', adminPassword);
    await page.click('#login-submit');
    await page.waitForURL(/#\/signals/);
    await cell('tank.level').waitFor();
    await waitText(page.locator('#conn'), 'live');
    const before = await cell('tank.level').textContent();
    await page.waitForFunction(
      ([sel, b]) => document.querySelector(sel)?.textContent !== b,
      ['tr[data-signal="tank.level"] td.value', before],
    );
    results.tank_level = [before, await cell('tank.level').textContent()];
    check(await page.evaluate(() => JSON.parse(sessionStorage.getItem('petra.session')).token.length > 20),
      'the token is kept in sessionStorage');
  });

  await run('filter signals by name pattern', async () => {
    await page.fill('#sig-match', 'level.*');
    await page.waitForFunction(() => document.querySelectorAll('tr[data-signal]').length === 4);
    const names = await page.locator('tr[data-signal]').evaluateAll((rows) => rows.map((r) => r.dataset.signal));
    check(names.every((n) => n.startsWith('level.')), `filtered rows ${names}`);
    await page.fill('#sig-match', '');
    await page.waitForFunction(() => document.querySelectorAll('tr[data-signal]').length === 9);
  });

  await run('write demand.flow and see the new value', async () => {
    check(await setSignal('demand.flow', 0.25) === '', 'the write was accepted');
    await waitText(cell('demand.flow'), /^0\.25$/);
    await waitText(page.locator('.note.ok'), 'demand.flow set to 0.25');
  });

  await run('an out-of-range write shows the server\'s 422 message', async () => {
    const error = await setSignal('level.high_sp', 12);
    check(/12 is outside the range of `level.high_sp` \(0 to 10\)/.test(error), `422 message: ${error}`);
  });

  await run('raise the setpoints and stop the draw (as the alarm test does)', async () => {
    for (const [signal, value, shown] of [['level.high_sp', 10, /^10$/], ['level.low_sp', 9.9, /^9\.9$/], ['demand.flow', 0, /^0$/]]) {
      check(await setSignal(signal, value) === '', `write ${signal}`);
      await waitText(cell(signal), shown);
    }
    await shot('signals');
  });

  await run('the layout holds at tablet width (768 px)', async () => {
    await page.setViewportSize({ width: 768, height: 1024 });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    check(overflow <= 0, `no horizontal page scroll at 768 px (overflow ${overflow} px)`);
    await page.screenshot({ path: path.join(shots, 'hmi-tablet.png') });
    await page.setViewportSize({ width: 1280, height: 720 });
  });

  await run('tank_high appears in the alarm console; Ack makes it active_acked', async () => {
    await page.getByRole('link', { name: /^Alarms/ }).click();
    await page.waitForURL(/#\/alarms/);
    await waitText(alarmState('tank_high'), 'active_unacked', 90_000);
    await waitText(page.locator('#alarm-count'), '1');
    await waitText(page.locator('.kpis').first(), 'high 1');
    await page.getByRole('button', { name: 'Acknowledge tank_high' }).click();
    await waitText(alarmState('tank_high'), 'active_acked');
    await waitText(page.locator('tr[data-alarm="tank_high"]'), 'admin');
    await waitText(page.locator('.journal tbody tr'), 'active_unacked → active_acked');
    await page.locator('#alarm-count').waitFor({ state: 'hidden' });
    await shot('alarms');
  });

  await run('a Reset of the latched tank_high is refused while its condition holds', async () => {
    // The test's quickstart makes tank_high latch: acknowledged while active, it waits for a
    // reset; the tank is still full, so the server refuses and the console says why.
    await page.getByRole('button', { name: 'Reset tank_high', exact: true }).click();
    await waitText(page.locator('.note.error'), 'its condition is still active');
    await waitText(alarmState('tank_high'), 'active_acked');
  });

  await run('shelve and unshelve tank_high', async () => {
    await page.getByRole('button', { name: 'Shelve tank_high', exact: true }).click();
    await dialog.locator('#shelve-duration').selectOption('1h');
    await dialog.locator('#shelve-reason').fill('level sensor being replaced');
    await dialog.getByRole('button', { name: 'Shelve' }).click();
    await dialog.waitFor({ state: 'detached' });
    await waitText(page.locator('tr[data-alarm="tank_high"]'), 'level sensor being replaced');
    await page.getByRole('button', { name: 'Unshelve tank_high', exact: true }).click();
    await page.getByRole('button', { name: 'Shelve tank_high', exact: true }).waitFor();
  });

  await run('open a trend of tank.level and demand.flow, following live values', async () => {
    await page.getByRole('link', { name: 'Signals', exact: true }).click();
    await page.getByRole('link', { name: 'Trend of tank.level' }).click();
    await page.waitForURL(/#\/trends\?s=tank\.level/);
    await page.locator('#trend-range').selectOption('1m');
    await page.getByRole('checkbox', { name: /^demand\.flow/ }).check();
    await page.locator('li[data-series="demand.flow"]').waitFor();
    // Draw the tank down so the trend shows a step and a slope.
    const status = await page.evaluate(async () => {
      const { token } = JSON.parse(sessionStorage.getItem('petra.session'));
      const r = await fetch('api/v1/signals/demand.flow', {
        method: 'PUT',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ value: 1.5 }),
      });
      return r.status;
    });
    check(status === 200, `write demand.flow for the trend: ${status}`);
    // Ten seconds of live values (tank.level changes every 100 ms) (the history's Parquet files complete later, docs/history.md).
    await page.waitForFunction(() => {
      const li = document.querySelector('li[data-series="tank.level"]');
      return li && Number(li.dataset.points) >= 100;
    }, null, { timeout: 60_000 });
    await page.waitForFunction(() => Number(document.querySelector('li[data-series="demand.flow"]')?.dataset.points) >= 2);
    const note = await page.locator('.note').first().textContent();
    results.trend_note = note;
    await shot('trends');
  });

  await run('the chart draws 100,000 points fast (min/max decimation)', async () => {
    const bench = await page.evaluate(async () => {
      const { LineChart } = await import('./assets/chart.js');
      const canvas = document.createElement('canvas');
      canvas.className = 'chart';
      document.querySelector('.chart-box').append(canvas);
      const chart = new LineChart(canvas);
      const n = 100_000, t = new Array(n), v = new Array(n), from = Date.now() - 86_400_000;
      for (let i = 0; i < n; i++) { t[i] = from + i * 864; v[i] = Math.sin(i / 500) * 5 + (i % 97) / 50; }
      chart.setSeries([{ name: 'bench', t, v }]);
      chart.setRange(from, from + 86_400_000);
      const times = [];
      for (let i = 0; i < 10; i++) { chart.draw(); times.push(chart.lastDrawMs); }
      chart.destroy();
      canvas.remove();
      times.sort((a, b) => a - b);
      return { median: times[5], max: times[9], width: canvas.width };
    });
    results.chart_100k_draw_ms = bench;
    console.log(`     100,000 points: median draw ${bench.median.toFixed(1)} ms, worst ${bench.max.toFixed(1)} ms`);
    check(bench.median <= 50, `median draw of 100,000 points ${bench.median} ms ≤ 50 ms`);
  });

  await run('the latched tank_high is reset once its condition has cleared', async () => {
    await page.getByRole('link', { name: /^Alarms/ }).click();
    await page.waitForURL(/#\/alarms/);
    // The trend step drew the tank down; the condition clears after its 2 s off-delay, which
    // the API shows (`condition_active`) while the latched alarm stays active_acked.
    // (waitForFunction does not await an async predicate: poll the API from here instead.)
    const deadline = Date.now() + 60_000;
    for (;;) {
      const a = await page.evaluate(async () => {
        const { token } = JSON.parse(sessionStorage.getItem('petra.session'));
        const r = await fetch('api/v1/alarms', { headers: { Authorization: `Bearer ${token}` } });
        return r.ok ? (await r.json()).find((x) => x.name === 'tank_high') : null;
      });
      if (a && a.latch && a.state === 'active_acked' && !a.condition_active) break;
      check(Date.now() < deadline, `tank_high's condition did not clear within 60 s: ${JSON.stringify(a)}`);
      await page.waitForTimeout(200);
    }
    await page.getByRole('button', { name: 'Reset tank_high', exact: true }).click();
    await waitText(page.locator('.note.ok'), 'tank_high reset.');
    await page.locator('tr[data-alarm="tank_high"]').waitFor({ state: 'detached' });
  });

  await run('the event-stream parser and the name glob', async () => {
    const failures = await page.evaluate(async () => {
      const { SseParser } = await import('./assets/api.js');
      const { glob } = await import('./assets/util.js');
      const bad = [];
      // Split at every byte: CRLF, LF and CR line ends, comments, two data lines, UTF-8.
      const text = ': keep-alive\r\nevent: signal\r\ndata: {"v":"é€"}\r\n\r\n'
        + 'event: alarm\ndata: a\ndata:b\n\n: x\rdata: m\r\r';
      const bytes = new TextEncoder().encode(text);
      const want = JSON.stringify([['signal', '{"v":"é€"}'], ['alarm', 'a\nb'], ['message', 'm']]);
      for (let cut = 0; cut <= bytes.length; cut++) {
        const got = [];
        const p = new SseParser((type, data) => got.push([type, data]));
        p.push(bytes.slice(0, cut));
        p.push(new Uint8Array(0)); // as a partial UTF-8 character decodes to nothing
        p.push(bytes.slice(cut));
        if (JSON.stringify(got) !== want) bad.push(`cut ${cut}: ${JSON.stringify(got)}`);
      }
      for (const [pattern, name, match] of [['tank.*', 'tank.level', true], ['tank.*', 'tank', false],
        ['*', '', true], ['?', '', false], ['t?nk*', 'tank.level', true], ['*level', 'tank.level', true],
        ['*.*.*', 'a.b', false], ['a*b*c', 'abxbc', true], ['', 'x', true]]) {
        if (glob(pattern, name) !== match) bad.push(`glob(${pattern}, ${name}) is not ${match}`);
      }
      return bad;
    });
    check(failures.length === 0, failures.join('\n'));
  });

  await run('the status page shows readiness, scan times and the WAL lag', async () => {
    await page.getByRole('link', { name: 'Status', exact: true }).click();
    await page.waitForURL(/#\/status/);
    await page.locator('[data-component="engine"]').waitFor();
    await page.locator('tr[data-task="control"]').waitFor();
    await page.locator('tr[data-task="plant"]').waitFor();
    await page.locator('tr[data-sink="parquet"]').waitFor();
    const p99 = await page.locator('tr[data-task="control"] td').nth(2).textContent();
    check(/^≤ [\d.,]+ (µs|ms|s)$/.test(p99), `p99 scan time shown: ${p99}`);
    await shot('status');
  });

  await run('log out', async () => {
    await page.click('#logout');
    await page.locator('#login-form').waitFor({ state: 'visible' });
    check(await page.evaluate(() => sessionStorage.getItem('petra.session') === null), 'the token is gone');
    check(await page.locator('#top').isHidden(), 'the header is hidden');
  });

  await run('log in as the viewer with the keyboard only', async () => {
    check(await page.evaluate(() => document.activeElement?.id === 'login-user'), 'the user field has the focus');
    await page.keyboard.type(viewerUser);
    await page.keyboard.press('Tab');
    await page.keyboard.type(viewerPassword);
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/signals/);
    await cell('demand.flow').waitFor();
  });

  await run('a viewer\'s write is refused with the server\'s message', async () => {
    const error = await setSignal('demand.flow', 0.5);
    check(error.includes('may be written by operator; you are viewer'), `403 message: ${error}`);
    await waitText(cell('demand.flow'), /^1\.5$/);
  });

  await run('a viewer\'s shelve is refused with the server\'s message (keyboard to the alarms)', async () => {
    // From the page's first stop (the skip link), Tab to the Alarms link and follow it.
    await page.locator('.skip').focus();
    for (let i = 0; i < 10; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate(() => document.activeElement?.getAttribute('href') === '#/alarms')) break;
    }
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/alarms/);
    // tank_high may have cleared by now (the trend step drew the tank down): show all alarms.
    await page.getByRole('checkbox', { name: 'Show alarms in normal state too' }).check();
    await page.getByRole('button', { name: 'Shelve tank_high', exact: true }).click();
    await dialog.locator('#shelve-reason').fill('not mine to shelve');
    await dialog.getByRole('button', { name: 'Shelve' }).click();
    await waitText(dialog.locator('.error'), 'needs role operator; you are viewer');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  await run('the login ends when its token expires, and comes back to the same view', async () => {
    check(await page.evaluate(() => JSON.parse(sessionStorage.getItem('petra.session')).until > Date.now() + 60_000),
      'the session knows when its token ends');
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('petra.session'));
      s.until = Date.now() + 300;
      sessionStorage.setItem('petra.session', JSON.stringify(s));
    });
    await page.reload();
    await waitText(page.locator('#login-error'), 'session has expired');
    await page.fill('#login-user', viewerUser);
    await page.fill('#login-password', viewerPassword);
    await page.click('#login-submit');
    await page.waitForURL(/#\/alarms/);
    await page.locator('.kpis b').first().waitFor();
  });

  await run('an invalid token brings the login back', async () => {
    await page.evaluate(() => {
      const s = JSON.parse(sessionStorage.getItem('petra.session'));
      s.token = 'no-longer-valid';
      sessionStorage.setItem('petra.session', JSON.stringify(s));
    });
    await page.reload();
    await waitText(page.locator('#login-error'), 'session has ended');
    check(await page.evaluate(() => sessionStorage.getItem('petra.session') === null), 'the bad token is dropped');
  });

  check(problems.length === 0, `no script errors or CSP violations:\n${problems.join('\n')}`);
  results.total_ms = Date.now() - t0;
  console.log(`HMI-RESULT ${JSON.stringify(results)}`);
  console.log('all HMI checks passed');
} catch (e) {
  console.error(`FAILED at step "${step}": ${e.message}`);
  if (problems.length) console.error(problems.join('\n'));
  if (page) {
    const where = path.join(shots, 'hmi-failure.png');
    await page.screenshot({ path: where }).then(() => console.error(`screenshot of the failure: ${where}`), () => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
