// fleet.test.mjs - the console with a fleet of 20,000 devices, in Debian's
// chromium against a real fotad: the devices (four versions, 15,000 online)
// and a day of activity (upgrades, failures, downloads per minute) are
// written straight into fotad's SQLite (sqlite3, one transaction: seconds,
// not 20,000 simulators). The product page's first meaningful paint (the
// overview's numbers and the first page of devices) is measured and printed,
// never asserted; the overview's numbers and both charts' data are checked
// against what was seeded, the canvases against being blank; the device
// table pages, sorts, searches and filters through the server; a rollout
// of 1,000 devices has its page (counters, members in pages); all in English
// and Chinese, at desktop and phone widths. Screenshots of the overview and
// the rollout go to $FOTA_E2E_SHOTS, the overview's also to $FOTA_E2E_DOC_DIR
// (docs/img) when set (rollout.test.mjs writes the rollout's there).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFotad, makeImage, launchBrowser, tempDir, rmrf, missingPrerequisite } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const missing = missingPrerequisite();
if (missing) {
  console.error('FAIL: ' + missing);
  process.exit(1);
}
const SHOTS = process.env.FOTA_E2E_SHOTS || path.resolve(HERE, '../../build/e2e-screenshots');
const DOC_DIR = process.env.FOTA_E2E_DOC_DIR || '';
const T = 15000;
const N = 20000;

// The seeded fleet: device i (1..N) runs VERSIONS[i % 20] and is offline when i % 4 == 0.
const version = (i) => (i % 20 < 12 ? 'v1.1' : i % 20 < 18 ? 'v1.0' : i % 20 === 18 ? 'v0.9' : '');
const expectVersions = () => {
  const m = new Map();
  for (let i = 1; i <= N; i++) {
    const v = version(i), e = m.get(v) || { devices: 0, online: 0 };
    e.devices += 1;
    if (i % 4 !== 0) e.online += 1;
    m.set(v, e);
  }
  return m;
};

async function api(fotad, method, p, body) {
  const r = await fetch(fotad.http + p, { method, headers: { Authorization: 'token ' + fotad.key,
    'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

async function release(fotad, pid, v, dir) {
  const fd = new FormData();
  fd.append('version', v);
  for (const [slot, name] of [[1, 'user1.bin'], [2, 'user2.bin']]) {
    fd.append('file', new Blob([fs.readFileSync(makeImage(dir, slot, v, name))]), name);
  }
  const r = await fetch(`${fotad.http}/v1/products/${pid}/roms/`, { method: 'POST',
    headers: { Authorization: 'token ' + fotad.key }, body: fd });
  assert.equal(r.status, 200, `release ${v}: ${await r.text()}`);
}

// N devices and a day of activity, in one sqlite3 transaction while fotad
// runs (WAL: fotad reads them at its next query). Returns the seeded totals.
function seed(fotad, pid, now) {
  const hourRows = [];
  const tot = { upgraded: 0, failed: 0, downloads: 0, bytes: 0 };
  for (let h = 1; h <= 23; h++) {   // one row an hour back for 23 hours: inside any 24 h window
    const row = { minute: (Math.floor(now / 3600) - h) * 60, upgraded: h, failed: h % 3, downloads: h + 1,
      bytes: (h + 1) * 400000 };
    hourRows.push(row);
    for (const k of Object.keys(tot)) tot[k] += row[k];
  }
  const nowMin = Math.floor(now / 60);
  for (let k = 1; k <= 5; k++) {    // 6 downloads a minute for the five minutes before this one
    hourRows.push({ minute: nowMin - k, upgraded: 0, failed: 0, downloads: 6, bytes: 6 * 300000 });
    tot.downloads += 6;
    tot.bytes += 6 * 300000;
  }
  const sql = [
    '.timeout 20000', 'BEGIN;',
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${N})
     INSERT INTO devices (id, product_id, name, bssid, activated, activated_at, rom_version, running_slot,
                          last_active, online, created, key_generation)
     SELECT 1000 + i, ${pid}, printf('sensor-%05d', i),
            printf('18:fe:34:%02x:%02x:%02x', i / 65536, (i / 256) % 256, i % 256), 1, ${now - 86400},
            CASE WHEN i % 20 < 12 THEN 'v1.1' WHEN i % 20 < 18 THEN 'v1.0' WHEN i % 20 = 18 THEN 'v0.9' ELSE '' END,
            CASE WHEN i % 20 < 12 THEN 2 ELSE 1 END, ${now} - i, CASE WHEN i % 4 = 0 THEN 0 ELSE 1 END,
            ${now - 86400} - i, 0 FROM n;`,
    ...hourRows.map((r) => `INSERT INTO product_minutes (product_id, minute, upgraded, failed, downloads, bytes)
      VALUES (${pid}, ${r.minute}, ${r.upgraded}, ${r.failed}, ${r.downloads}, ${r.bytes});`),
    'COMMIT;',
  ].join('\n');
  execFileSync('sqlite3', [path.join(fotad.data, 'fota.db')], { input: sql, stdio: ['pipe', 'pipe', 'pipe'] });
  return tot;
}

const fmt = (n) => n.toLocaleString('en');

test('a fleet of 20,000 devices in the console', { timeout: 150000 }, async (t) => {
  const work = tempDir('fleet');
  const fotad = await startFotad();
  const browser = await launchBrowser();
  const page = await browser.ctx.newPage();
  page.setDefaultTimeout(T);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const step = async (name, fn) => t.test(name, async () => {
    try { await fn(); } catch (e) {
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'fleet-' + name.replace(/\W+/g, '_') + '.png'), fullPage: true }).catch(() => {});
      throw e;
    }
  });
  let pid, seeded, rolloutId;
  try {
    await step('seed 20,000 devices and a day of activity', async () => {
      pid = (await api(fotad, 'POST', '/v1/products/', { name: 'sensors', flash_map: 2 })).product.id;
      for (const v of ['v0.9', 'v1.0', 'v1.1']) await release(fotad, pid, v, work);
      await api(fotad, 'POST', `/v1/products/${pid}/roms/v1.1/current`);
      const t0 = Date.now();
      seeded = seed(fotad, pid, Math.floor(Date.now() / 1000));
      console.log(`# seeded ${N} devices in ${Date.now() - t0} ms`);
      const o = (await api(fotad, 'GET', `/v1/products/${pid}/overview`)).overview;
      assert.equal(o.devices, N);
      assert.equal(o.online, 15000);
    });

    await step('the product page: first meaningful paint measured, the overview right', async () => {
      await page.goto(fotad.http + '/');
      await page.getByLabel('API key').fill(fotad.key);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(/#\/products$/);
      // A fresh load of the product page, timed in the page itself: from
      // navigation start until the overview's numbers and the first page
      // of devices are in the document (an observer installed before any
      // script of the page runs).
      await page.addInitScript(() => {
        const done = () => document.querySelector('#overview[data-loaded] [data-stat=devices]') &&
          document.querySelectorAll('#devices tbody tr[data-device]').length > 0;
        new MutationObserver((_, mo) => {
          if (!window.fotaFmp && done()) { window.fotaFmp = performance.now(); mo.disconnect(); }
        }).observe(document, { childList: true, subtree: true, attributes: true });
      });
      await page.goto(fotad.http + '/#/products/' + pid);
      await page.reload();
      await page.waitForFunction(() => window.fotaFmp > 0);
      const paint = await page.evaluate(() => {
        const fcp = performance.getEntriesByName('first-contentful-paint')[0];
        return { meaningful: Math.round(window.fotaFmp), fcp: fcp ? Math.round(fcp.startTime) : null };
      });
      console.log(`# product page with ${N} devices: first contentful paint ${paint.fcp} ms, ` +
        `first meaningful paint (overview and first page of devices) ${paint.meaningful} ms`);
      const stat = (k) => page.locator(`[data-stat=${k}] .stat-value`).innerText();
      assert.equal(await stat('devices'), fmt(N));
      assert.equal(await stat('online'), fmt(15000));
      assert.equal(await stat('offline'), fmt(5000));
      assert.equal(await stat('upgraded'), fmt(seeded.upgraded));
      assert.equal(await stat('failed'), fmt(seeded.failed));
      assert.match(await page.locator('[data-stat=online] .stat-label').innerText(), /Online \(75 %\)/);
      // six downloads a minute were seeded for the five minutes before now
      // (4.8 when a minute turned between the seed and the page)
      assert.match(await stat('dpm'), /^(6|4\.8)$/);
    });

    await step('the charts render with the seeded numbers', async () => {
      const want = expectVersions();
      const order = [...want.entries()].sort((a, b) => b[1].devices - a[1].devices || (a[0] < b[0] ? -1 : 1));
      await page.locator('#chart-versions canvas').waitFor();
      const ver = await page.evaluate(() => {
        const c = document.querySelector('#chart-versions').chart;
        const cv = c.ctx.canvas, px = c.ctx.getImageData(0, 0, cv.width, cv.height).data;
        let ink = 0;
        for (let i = 3; i < px.length; i += 4) if (px[i] > 0) ink += 1;
        return { data: c.data.map((s) => Array.from(s)), ink };
      });
      assert.deepEqual(ver.data[1], order.map(([, e]) => e.devices));
      assert.deepEqual(ver.data[2], order.map(([, e]) => e.online));
      assert.ok(ver.ink > 500, 'the version chart drew bars: ' + ver.ink + ' pixels');
      const legend = await page.locator('#versions-legend li').allInnerTexts();
      assert.match(legend[0], /^v1\.1\s+12,000 devices \(60 %\), 9,000 online\s+Current version/);
      assert.match(legend[1], /^v1\.0\s+6,000 devices \(30 %\), 4,000 online/);
      assert.equal(legend.length, 4);
      const act = await page.evaluate(() => {
        const c = document.querySelector('#chart-activity').chart;
        const sum = (s) => Array.from(c.data[s]).reduce((a, b) => a + (b || 0), 0);
        return { n: c.data[0].length, upgraded: sum(1), failed: sum(2), downloads: sum(3) };
      });
      assert.equal(act.n, 96, '24 h in 15-minute buckets');
      assert.deepEqual([act.upgraded, act.failed], [seeded.upgraded, seeded.failed]);
      assert.ok(act.downloads === seeded.downloads, `downloads ${act.downloads} vs ${seeded.downloads}`);
      // another range: 7 days in hours, the same totals
      await page.locator('#overview-range').selectOption('7d');
      await page.locator('[data-stat=upgraded] .stat-label', { hasText: 'last 7 days' }).waitFor();
      const week = await page.evaluate(() => document.querySelector('#chart-activity').chart.data[0].length);
      assert.equal(week, 168);
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.locator('#overview-range').selectOption('24h');
      await page.locator('[data-stat=upgraded] .stat-label', { hasText: 'last 24 hours' }).waitFor();
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.setViewportSize({ width: 1280, height: 1000 });
      await page.screenshot({ path: path.join(SHOTS, 'console-overview.png') });
      if (DOC_DIR) await page.screenshot({ path: path.join(DOC_DIR, 'console-overview.png') });
    });

    await step('the device table pages, sorts, searches and filters on the server', async () => {
      const info = page.locator('#devices-info');
      await info.filter({ hasText: `1–50 of ${fmt(N)}` }).waitFor();
      assert.equal(await page.locator('#devices tbody tr[data-device]').count(), 50);
      assert.equal(await page.locator('#devices tbody tr').first().getAttribute('data-device'), '1001');
      await page.locator('#devices-next').click();
      await info.filter({ hasText: `51–100 of ${fmt(N)}` }).waitFor();
      assert.equal(await page.locator('#devices tbody tr').first().getAttribute('data-device'), '1051');
      await page.locator('#devices-prev').click();
      await info.filter({ hasText: `1–50 of ${fmt(N)}` }).waitFor();
      // sort by name, descending on the second click
      await page.locator('#devices th[data-col=name] button').click();
      await page.locator('#devices th[data-col=name][aria-sort=ascending]').waitFor();
      await page.locator('#devices th[data-col=name] button').click();
      await page.locator('#devices th[data-col=name][aria-sort=descending]').waitFor();
      await page.locator('#devices tbody tr').first().filter({ hasText: 'sensor-20000' }).waitFor();
      // search: ten names contain sensor-1234 (sensor-12340 … 12349)
      await page.getByLabel('Search devices').fill('sensor-1234');
      await info.filter({ hasText: '1–10 of 10' }).waitFor();
      const names = await page.locator('#devices tbody tr td:nth-child(2) a').allInnerTexts();
      assert.deepEqual(names, Array.from({ length: 10 }, (_, k) => 'sensor-1234' + (9 - k)));
      await page.getByLabel('Search devices').fill('');
      // filters: a version, offline devices
      await page.locator('#device-version').selectOption('v0.9');
      await info.filter({ hasText: `of ${fmt(1000)}` }).waitFor();
      await page.locator('#device-online').selectOption('false');
      await info.filter({ hasText: `of ${fmt(0)}` }).or(page.locator('#devices tbody td', { hasText: 'None yet.' })).first().waitFor();
      await page.locator('#device-version').selectOption('*');
      await info.filter({ hasText: `1–50 of ${fmt(5000)}` }).waitFor();
      const offline = await page.locator('#devices tbody tr td:nth-child(5)').allInnerTexts();
      assert.ok(offline.every((x) => x === 'Offline'), 'only offline devices listed');
      await page.locator('#device-online').selectOption('');
      await info.filter({ hasText: `1–50 of ${fmt(N)}` }).waitFor();
    });

    await step('a rollout of 1,000 devices has its page', async () => {
      const r = await api(fotad, 'POST', '/v1/rollouts/', { product_id: pid, version: 'v1.1', filter: { rom_version: 'v0.9' },
        window: 64 });
      rolloutId = r.rollout.id;
      assert.equal(r.rollout.total, 1000);
      await page.reload();
      await page.locator(`#live-rollouts li[data-rollout="${rolloutId}"] a`).click({ timeout: 20000 });
      await page.waitForURL(new RegExp(`#/rollouts/${rolloutId}$`));
      await page.getByRole('heading', { name: `Rollout ${rolloutId} · v1.1` }).waitFor();
      await page.locator('#rollout-counters [data-count=total]', { hasText: '1,000' }).waitFor();
      await page.locator('#rollout-members a.member-name', { hasText: /^sensor-/ }).first().waitFor();
      assert.equal(await page.locator('#rollout-members tbody tr[data-device]').count(), 50);
      await page.locator('#members-info', { hasText: '1–50' }).waitFor();
      await page.locator('#members-next').click();
      await page.locator('#members-info', { hasText: '51–100' }).waitFor();
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(SHOTS, 'console-rollout.png') });
    });

    await step('Chinese, then a phone-sized screen', async () => {
      await page.goto(fotad.http + '/#/products/' + pid);
      await page.locator('#lang').click();
      await page.getByRole('heading', { name: '设备概览' }).waitFor();
      await page.locator('#devices-info', { hasText: `第 1–50 个，共 ${fmt(N)} 个` }).waitFor();
      assert.match(await page.locator('[data-stat=online] .stat-label').innerText(), /在线（75%）/);
      await page.locator('#versions-legend li', { hasText: '12,000 台设备（60%），9,000 台在线' }).waitFor();
      await page.getByRole('button', { name: '下一页 →' }).waitFor();
      await page.goto(fotad.http + '/#/rollouts/' + rolloutId);
      await page.getByRole('heading', { name: '批量升级的设备' }).waitFor();
      await page.locator('#lang').click();
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(fotad.http + '/#/products/' + pid);
      await page.locator('#overview[data-loaded]').waitFor();
      await page.locator('#chart-activity canvas').waitFor();
      await page.locator('#devices tbody tr[data-device]').first().waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, 'no sideways scrolling on a phone: ' + overflow + 'px');
      const w = await page.evaluate(() => document.querySelector('#chart-versions canvas').getBoundingClientRect().width);
      assert.ok(w <= 390, 'the chart fits the phone: ' + w);
      await page.screenshot({ path: path.join(SHOTS, 'console-overview-phone.png'), fullPage: false });
    });

    await step('no script errors', async () => { assert.deepEqual(errors, []); });
  } finally {
    await browser.ctx.close().catch(() => {});
    rmrf(browser.profile);
    const code = await fotad.stop();
    const log = fotad.log();
    rmrf(fotad.data);
    rmrf(work);
    assert.ok(!/ERROR|AddressSanitizer|runtime error:/.test(log), 'fotad logged an error:\n' + log.slice(-3000));
    assert.equal(code, 0, 'fotad exit status');
  }
});
