// rollout.test.mjs - a staged rollout driven from the console in Debian's
// chromium against a real fotad and five fota-sim devices (NONOS profile,
// waiting for the server's pushes): two of them healthy, three whose
// downloads break off (--faults drop@N). Started from the product page in
// two stages (the healthy pair listed, then the rest) with an approval, a
// health time and a failure limit; stage 1 upgrades and stays healthy (its
// health time passed by fotad's test clock, POST /v1/test/clock, which only
// the sanitizer trees have), the next stage is approved on the rollout page,
// its failures pause the rollout by themselves, and "Roll back upgraded
// devices" brings the healthy pair back to the version they ran. One device
// at a time, so that stage 2's third device still waits when its first two
// failures pause the rollout. What the page shows and what the API says are
// both checked; the times of the steps are printed. The page of the paused
// rollout (its stages, its progress chart, its members by name) goes to
// $FOTA_E2E_SHOTS, and to $FOTA_E2E_DOC_DIR (docs/img) when set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startFotad, makeImage, launchBrowser, tempDir, rmrf, missingPrerequisite, BIN } from './harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const missing = missingPrerequisite() || (fs.existsSync(path.join(BIN, 'fota-sim')) ? '' : `no fota-sim in ${BIN}`);
if (missing) {
  console.error('FAIL: ' + missing);
  process.exit(1);
}
const SHOTS = process.env.FOTA_E2E_SHOTS || path.resolve(HERE, '../../build/e2e-screenshots');
const DOC_DIR = process.env.FOTA_E2E_DOC_DIR || '';
const T = 15000;
const V1 = 'v1.0', V2 = 'v1.1';
const HEALTH = 60;

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

// Polls fn (async, truthy when done) every 100 ms until the deadline.
async function until(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// fota-sim for the devices whose master keys are given, on `from`, waiting
// for pushes (to `to`) and staying connected; faults as fota-sim takes them.
function sim(fotad, keys, dir, name, faults) {
  const file = path.join(dir, name + '-keys.txt');
  fs.writeFileSync(file, keys.join('\n') + '\n');
  const args = ['--server', '127.0.0.1', '--http-port', new URL(fotad.http).port, '--device-port',
    String(fotad.device.port), '--keys', file, '--profile', 'nonos', '--devices', String(keys.length),
    '--initial-version', V1, '--upgrade-to', V2, '--await-push', '--map', '2', '--time-scale', '20',
    '--timeout', '120', '--hold', '120'];
  if (faults) args.push('--faults', faults);
  const proc = spawn(path.join(BIN, 'fota-sim'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d.toString(); });
  proc.stderr.on('data', (d) => { out += d.toString(); });
  return { proc, out: () => out, stop() { if (proc.exitCode === null) proc.kill('SIGKILL'); } };
}

test('a staged rollout from the console: approval, auto-pause, roll back', { timeout: 120000 }, async (t) => {
  const work = tempDir('rollout');
  const fotad = await startFotad();
  assert.ok(fotad.device, 'fotad has a device channel');
  const browser = await launchBrowser();
  const page = await browser.ctx.newPage();
  page.setDefaultTimeout(T);
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const sims = [];
  const step = async (name, fn) => t.test(name, async () => {
    try { await fn(); } catch (e) {
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'rollout-' + name.replace(/\W+/g, '_') + '.png'), fullPage: true }).catch(() => {});
      for (const s of sims) console.error('fota-sim:\n' + s.out().slice(-3000));
      if (rid) {
        console.error('rollout: ' + JSON.stringify(await rollout(rid).catch((x) => String(x))));
        console.error('members: ' + JSON.stringify(await members(rid).catch((x) => String(x))));
      }
      console.error('fotad:\n' + fotad.log().slice(-4000));
      throw e;
    }
  });
  const t0 = Date.now();
  const mark = (what) => console.log(`# ${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  let pid, rid, good, bad;
  const rollout = async (id) => (await api(fotad, 'GET', `/v1/rollouts/${id}/`)).rollout;
  const members = async (id) => (await api(fotad, 'GET', `/v1/rollouts/${id}/devices/?limit=100`)).devices;
  const devices = async () => (await api(fotad, 'GET', `/v1/products/${pid}/devices/?limit=100`)).devices;
  try {
    await step('five simulated devices online on v1.0', async () => {
      pid = (await api(fotad, 'POST', '/v1/products/', { name: 'lamps', flash_map: 2 })).product.id;
      for (const v of [V1, V2]) await release(fotad, pid, v, work);
      const made = [];
      for (let i = 0; i < 5; i++) made.push(await api(fotad, 'POST', `/v1/products/${pid}/devices/`, { name: 'lamp-' + i }));
      good = made.slice(0, 2).map((m) => m.device.id);
      bad = made.slice(2).map((m) => m.device.id);
      sims.push(sim(fotad, made.slice(0, 2).map((m) => m.master_device_key), work, 'good', ''));
      sims.push(sim(fotad, made.slice(2).map((m) => m.master_device_key), work, 'bad', 'drop@700'));
      await until(async () => (await devices()).filter((d) => d.online && d.rom_version === V1).length === 5,
        30000, 'five devices online on v1.0');
      mark('devices online');
    });

    await step('start it from the product page in two stages with an approval', async () => {
      await page.goto(fotad.http + '/');
      await page.getByLabel('API key').fill(fotad.key);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(/#\/products$/);
      await page.goto(`${fotad.http}/#/products/${pid}`);
      const form = page.locator('#rollout-form');
      await form.locator(`#rollout-version option[value="${V2}"]`).waitFor({ state: 'attached' });
      await form.getByLabel('Version').selectOption(V2);
      // refusals on the page, nothing sent
      await form.getByLabel('Stages').fill('50%, 20%x');
      await form.getByRole('button', { name: 'Roll out' }).click();
      await page.locator('#rollout-status', { hasText: 'Stages: each a percent' }).waitFor();
      await form.getByLabel('Stages').fill(`@${good.join('+')}, 100%`);
      await form.getByLabel('Pushes from (UTC)').fill('22:00');
      await form.getByRole('button', { name: 'Roll out' }).click();
      await page.locator('#rollout-status', { hasText: 'Maintenance window: give both times' }).waitFor();
      await form.getByLabel('Pushes from (UTC)').fill('');
      await form.getByLabel('Success threshold (%)').fill('101');
      await form.getByRole('button', { name: 'Roll out' }).click();
      await page.locator('#rollout-status', { hasText: 'Success threshold: a number from 0 to 100' }).waitFor();
      await form.getByLabel('Success threshold (%)').fill('100');
      await form.getByLabel('Each stage after the first waits for an approval').check();
      await form.getByLabel('Stop after failures').fill('1');
      await form.getByLabel('At most at once').fill('1');   // stage 2's third device waits behind two failures
      await form.getByLabel('Health time (s)').fill(String(HEALTH));
      let text = '';
      page.once('dialog', (d) => { text = d.message(); d.accept(); });
      const resp = page.waitForResponse((r) => r.request().method() === 'POST' && /\/v1\/rollouts\/$/.test(r.url()));
      await form.getByRole('button', { name: 'Roll out' }).click();
      const r = await resp;
      assert.equal(r.status(), 202);
      assert.match(text, /v1\.1 .* in 2 stages/);
      assert.deepEqual(r.request().postDataJSON(), { product_id: pid, version: V2, filter: {}, reboot: true, window: 1,
        max_failures: 1, stages: [{ device_ids: good, success: 100 }, { percent: 100, success: 100 }], approval: true,
        health: HEALTH });
      rid = (await r.json()).rollout.id;
      const item = page.locator(`#rollouts li[data-rollout="${rid}"]`);
      await item.waitFor();
      assert.match(await item.innerText(), /stage 1 of 2/);
      mark('rollout started');
      await item.getByRole('link').click();
      await page.waitForURL(new RegExp(`#/rollouts/${rid}$`));
      await page.locator('#rollout-stages tr[data-stage="1"] td', { hasText: '2 listed' }).waitFor();
      await page.locator('#rollout-meta', { hasText: `health ${HEALTH} s` }).waitFor();
      for (const [i, d] of good.entries()) {
        await page.locator(`#rollout-members tr[data-device="${d}"] a.member-name`, { hasText: `lamp-${i}` }).waitFor();
      }
      assert.equal(await page.locator('#rollout-members a.member-name').count(), 5);
      const x = await rollout(rid);
      assert.deepEqual(x.stages.map((g) => g.total), [2, 3]);
      assert.equal(x.stages[1].approval, true);
    });

    await step('stage 1 upgrades, stays healthy and waits for the approval', async () => {
      // both back after fotad's reboot, in their health time
      await until(async () => {
        const m = (await members(rid)).filter((d) => good.includes(d.device_id));
        return m.length === 2 && m.every((d) => d.state === 'verifying' && d.health && d.health.boots >= 1);
      }, 30000, 'stage 1 verifying after its reboot');
      await page.locator('#rollout-counters dd[data-count="verifying"]', { hasText: '2' }).waitFor();
      mark('stage 1 reported and rebooted');
      await api(fotad, 'POST', '/v1/test/clock', { advance_ms: (HEALTH + 1) * 1000 });
      await until(async () => (await rollout(rid)).state === 'awaiting_approval', 10000, 'awaiting approval');
      await page.locator('#rollout-state', { hasText: 'awaiting approval' }).waitFor();
      await page.locator('#rollout-stages tr[data-stage="1"][data-state="passed"]').waitFor();
      await page.locator('#rollout-stages tr[data-stage="2"][data-state="awaiting_approval"]').waitFor();
      await page.locator('#rollout-counters dd[data-count="succeeded"]', { hasText: /^2$/ }).waitFor();
      const x = await rollout(rid);
      assert.equal(x.succeeded, 2);
      assert.equal(x.stages[1].succeeded + x.stages[1].failed, 0, 'nothing of stage 2 pushed before the approval');
      assert.ok((await devices()).filter((d) => good.includes(d.id)).every((d) => d.rom_version === V2));
      mark('stage 1 passed');
    });

    await step('approved on the page, stage 2 fails and pauses the rollout', async () => {
      let text = '';
      page.once('dialog', (d) => { text = d.message(); d.accept(); });
      await page.locator('#rollout-actions button[data-action="approve"]').click();
      assert.match(text, /Start stage 2/);
      await page.locator('#rollout-page-status', { hasText: 'the next stage starts' }).waitFor();
      const x = await until(async () => { const y = await rollout(rid); return y.state === 'paused' && y; },
        30000, 'the rollout paused by its failures');
      assert.equal(x.halted, true);
      assert.equal(x.paused.auto, true);
      assert.equal(x.failed, 2);
      assert.equal(x.waiting + x.queued, 1, 'the third device of stage 2 not pushed');
      assert.ok(x.stages[1].approved, 'stage 2 approved');
      await page.locator('#rollout-state', { hasText: 'paused' }).waitFor();
      await page.locator('#rollout-paused').waitFor();
      await page.locator('#rollout-actions button[data-action="resume"]').waitFor();
      assert.equal(await page.locator('#rollout-actions button[data-action="approve"]').count(), 0);
      await page.locator('#rollout-members tr[data-state="failed"]', { hasText: 'reported a failure' }).first().waitFor();
      await page.locator('#rollout-members a.member-name', { hasText: 'lamp-4' }).waitFor();
      assert.deepEqual(await page.locator('#rollout-members a.member-name').allInnerTexts(),
        ['lamp-0', 'lamp-1', 'lamp-2', 'lamp-3', 'lamp-4']);
      await page.locator('#chart-progress canvas').waitFor();
      await until(async () => Number(((await page.locator('#progress-note').innerText()).match(/\d+/) || [0])[0]) >= 2,
        10000, 'a progress chart of two samples or more');
      await page.evaluate(() => window.scrollTo(0, 0));
      fs.mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'console-rollout.png'), fullPage: true });
      if (DOC_DIR) await page.screenshot({ path: path.join(DOC_DIR, 'console-rollout.png'), fullPage: true });
      mark('stage 2 paused');
    });

    await step('roll back the upgraded devices from the page: back on v1.0', async () => {
      let text = '';
      page.once('dialog', (d) => { text = d.message(); d.accept(); });
      const resp = page.waitForResponse((r) => r.request().method() === 'POST' && /\/rollback$/.test(r.url()));
      await page.locator('#rollout-actions button[data-action="rp_done_rollback_upgraded"]').click();
      const r = await resp;
      assert.equal(r.status(), 202);
      assert.match(text, /Roll back the 2 upgraded devices/);
      assert.deepEqual(r.request().postDataJSON(), { devices: 'upgraded' });
      const j = await r.json();
      assert.equal(j.devices, 2);
      assert.deepEqual(j.rollouts.map((x) => x.version), [V1]);
      const back = j.rollouts[0].id;
      await page.locator('#rollout-page-status', { hasText: 'its upgraded devices are rolled back' }).waitFor();
      await page.locator('#rollout-state', { hasText: /cancell/ }).waitFor();
      await until(async () => {
        const m = await members(back);
        return m.length === 2 && m.every((d) => d.state === 'verifying' && d.health && d.health.boots >= 1);
      }, 30000, 'the rollback verifying after its reboot');
      assert.ok((await devices()).filter((d) => good.includes(d.id)).every((d) => d.rom_version === V1));
      await api(fotad, 'POST', '/v1/test/clock', { advance_ms: (HEALTH + 1) * 1000 });
      await until(async () => (await rollout(back)).state === 'finished', 10000, 'the rollback finished');
      await page.locator(`#rollout-rollbacks a[data-rollout="${back}"]`).click();
      await page.waitForURL(new RegExp(`#/rollouts/${back}$`));
      await page.locator('#rollout-rolls-back', { hasText: `rolls back rollout ${rid}` }).waitFor();
      await page.locator('#rollout-state', { hasText: 'finished' }).waitFor();
      await page.locator('#rollout-counters dd[data-count="succeeded"]', { hasText: /^2$/ }).waitFor();
      const ds = await devices();
      assert.deepEqual(ds.map((d) => d.rom_version), ds.map(() => V1), 'every device on v1.0');
      assert.equal((await rollout(rid)).state, 'cancelled');
      mark('rolled back');
    });

    await step('the rollout page in Chinese; no script errors', async () => {
      await page.evaluate(() => localStorage.setItem('fota.lang', 'zh'));
      await page.goto(`${fotad.http}/#/rollouts/${rid}`);
      await page.reload();
      await page.locator('#rollout-state', { hasText: '已取消' }).waitFor();
      await page.locator('#rollout-stages th', { hasText: '阶段' }).first().waitFor();
      assert.deepEqual(errors, []);
    });
  } finally {
    for (const s of sims) s.stop();
    await browser.ctx.close().catch(() => {});
    rmrf(browser.profile);
    const code = await fotad.stop();
    const log = fotad.log();
    rmrf(fotad.data);
    rmrf(work);
    assert.equal(code, 0, 'fotad exit status\n' + log.slice(-3000));
    assert.doesNotMatch(log, /ERROR|AddressSanitizer|runtime error/, log.slice(-3000));
  }
});
