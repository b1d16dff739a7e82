// console.test.mjs - the web console end to end, in Debian's
// chromium against a real fotad: sign in, create a product, release v1.0
// and v1.1 from images made by fotactl, a wrong-slot upload refused next to
// its file, add a device (keys shown once), set current through the
// confirmation dialog with the live feed showing "has version v1.1 update",
// the device page's Upgrade and Reboot, the RPC form, Chinese labels, a
// phone-sized screen, a rollout of v1.0, its live counters
// and its cancellation, and deleting a release, a device and the product.
// Then an arduino product (ESP8266 Arduino core): created with its fleet
// (gzip, a signing key; a private key refused in the browser), a signed
// gzip release uploaded as firmware.bin and firmware-minimal.bin (an
// unsigned one refused next to its file), the MD5, gzip and signature
// badges, the fleet settings changed, and a device that checked in with the
// core's request bytes shown with its chip id, sketch MD5 and the rest, in
// English and Chinese; the fleet's MQTT broker (a real mosquitto) set with a
// write-only password, connected, a Tasmota topic seen, removed. Screenshots of every open page go to
// $FOTA_E2E_SHOTS (build/…/e2e-screenshots) when a step fails, and of the
// arduino product, MQTT and device views always (arduino-*.png).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { startFotad, startSim, makeImage, makeArduinoImage, signWithFotactl, coreCheckin, startMosquitto, launchBrowser,
  tempDir, rmrf, missingPrerequisite } from './harness.mjs';

// This directory (import.meta.dirname needs Node 20.11; Debian 12 ships 18).
const HERE = path.dirname(fileURLToPath(import.meta.url));

// `make test` installs the browser stack first: a missing piece is a failure.
const missing = missingPrerequisite();
if (missing) {
  console.error('FAIL: ' + missing);
  process.exit(1);
}

const SHOTS = process.env.FOTA_E2E_SHOTS || path.resolve(HERE, '../../build/e2e-screenshots');
const DOC_SHOT = process.env.FOTA_E2E_DOC_SHOT || '';   // e.g. docs/console.png, written on success
const T = 30000;   // every wait is bounded; an ASan fotad beside a -j2 suite needs the room

let fotad, browser, work, sim = null, broker = null;
const pages = [];

async function shootAll(tag) {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const [i, p] of pages.entries()) {
    try { await p.screenshot({ path: path.join(SHOTS, `${tag}-${i}.png`), fullPage: true }); } catch (e) { /* closed */ }
  }
}

// Runs one named step; on failure saves screenshots and the fotad log tail.
async function step(t, name, fn) {
  await t.test(name, async () => {
    try { await fn(); } catch (e) {
      const tag = name.replace(/\W+/g, '_');
      await shootAll(tag);
      if (fotad) fs.writeFileSync(path.join(SHOTS, `${tag}-fotad.log`), fotad.log());
      throw e;
    }
  });
}

test('web console end to end', { timeout: 160000 }, async (t) => {
  work = tempDir('work');
  fotad = await startFotad();
  const base = fotad.http;
  const img = {
    v10u1: makeImage(work, 1, 'v1.0', 'user1.bin'), v10u2: makeImage(work, 2, 'v1.0', 'user2.bin'),
    v11u1: makeImage(work, 1, 'v1.1', 'user1.bin'), v11u2: makeImage(work, 2, 'v1.1', 'user2.bin'),
    bad: makeImage(work, 2, 'v1.2', 'user1.bin'),   // a user2 image under the name user1.bin
    v12u2: makeImage(work, 2, 'v1.2', 'user2.bin'),
  };
  browser = await launchBrowser();
  const page = await browser.ctx.newPage();
  pages.push(page);
  page.setDefaultTimeout(T);
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  try {
    await step(t, 'assets are served with type, etag and no-cache', async () => {
      const r = await fetch(base + '/');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('content-type'), /^text\/html/);
      assert.match(r.headers.get('cache-control') || '', /no-cache/);
      const etag = r.headers.get('etag');
      assert.ok(etag, 'ETag on /');
      assert.match(await r.text(), /<script type="module" src="app.js">/);
      const r304 = await fetch(base + '/index.html', { headers: { 'If-None-Match': etag } });
      assert.equal(r304.status, 304);
      const js = await fetch(base + '/app.js', { method: 'HEAD' });
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type'), /javascript/);
      assert.ok(Number(js.headers.get('content-length')) > 1000);
      assert.equal((await fetch(base + '/nope.js')).status, 404);
    });

    await step(t, 'sign in with a wrong key, then the admin key', async () => {
      await page.goto(base + '/');
      await page.waitForURL(/#\/signin$/);
      await page.getByLabel('API key').fill('0'.repeat(40));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('This key was refused.').waitFor();
      await page.getByLabel('API key').fill('not a key');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByText('A key is 40 hexadecimal characters.').waitFor();
      // Pasted with a newline and spaces around it (cat DATA/owner.key): trimmed.
      await page.getByLabel('API key').fill('  ' + fotad.key.toUpperCase() + ' ');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(/#\/products$/);
      await page.locator('#products').waitFor();
      // The key is kept for this tab only.
      assert.equal(await page.evaluate(() => sessionStorage.getItem('fota.key')), fotad.key);
      assert.equal(await page.evaluate(() => localStorage.getItem('fota.key')), null);
    });

    await step(t, 'create a product', async () => {
      const form = page.locator('#create-product');
      await form.getByLabel('Name').fill('humiture');
      await form.getByLabel('Description').fill('temperature and humidity sensor');
      await form.getByLabel('Flash map').selectOption('2');
      await form.getByRole('button', { name: 'Create' }).click();
      const row = page.locator('#products tbody tr', { hasText: 'humiture' });
      await row.waitFor();
      assert.match(await row.innerText(), /0\s*\/\s*0/);
      // Names are text, never markup.
      await form.getByLabel('Name').fill('<img src=x onerror=window.pwned=1>');
      await form.getByRole('button', { name: 'Create' }).click();
      await page.locator('#products tbody tr', { hasText: '<img src=x' }).waitFor();
      assert.equal(await page.locator('#products img').count(), 0);
      assert.equal(await page.evaluate(() => window.pwned), undefined);
      await row.getByRole('link', { name: 'humiture' }).click();
      await page.waitForURL(/#\/products\/\d+$/);
      await page.getByRole('heading', { name: 'humiture' }).waitFor();
      assert.match(await page.locator('#product-key').innerText(), /^[0-9a-f]{40}$/);
    });

    // files one per row ("+"), or with together all chosen at once in the first row.
    async function release(version, files, codename, together) {
      const form = page.locator('#release-form');
      await form.getByLabel('Version').fill(version);
      if (codename) await form.getByLabel('Codename').fill(codename);
      if (together) await form.getByLabel('File 1', { exact: true }).setInputFiles(files);
      for (let i = 0; i < files.length && !together; i++) {
        if (i > 0) await form.getByRole('button', { name: 'Add a file' }).click();
        await form.getByLabel(`File ${i + 1}`, { exact: true }).setInputFiles(files[i]);
      }
      const resp = page.waitForResponse((r) => r.url().includes('/roms/') && r.request().method() === 'POST');
      await form.getByRole('button', { name: 'Save' }).click();
      return (await resp).status();
    }

    await step(t, 'release v1.0 and v1.1 by uploading images', async () => {
      assert.equal(await release('v1.0', [img.v10u1, img.v10u2], 'beta'), 200);
      await page.locator('#releases li[data-version="v1.0"]').waitFor();
      // both images chosen at once in one file dialog
      assert.equal(await page.locator('#release-form li.file-row').count(), 1);
      assert.equal(await release('v1.1', [img.v11u1, img.v11u2], '', true), 200);
      const v11 = page.locator('#releases li[data-version="v1.1"]');
      await v11.waitFor();
      assert.match(await v11.innerText(), /user1\.bin[\s\S]*user2\.bin/);
    });

    await step(t, 'a wrong-slot upload shows the refusal next to the file', async () => {
      const status = await release('v1.2', [img.bad, img.v12u2]);
      assert.ok(status === 422 || status === 400, 'refused with 422, got ' + status);
      const err = page.locator('#release-form li.file-row.refused .file-error');
      await err.waitFor();
      const rowText = await page.locator('#release-form li.file-row.refused label').innerText();
      assert.equal(rowText, 'File 1', 'the refusal sits next to user1.bin, the first file');
      assert.ok((await err.innerText()).length > 3);
      assert.equal(await page.locator('#releases li[data-version="v1.2"]').count(), 0, 'nothing half-published');
    });

    const deviceName = 'device-name-00000000';
    let ownerKey = '';
    await step(t, 'add a device; its keys are shown once', async () => {
      const form = page.locator('#add-device');
      await form.getByLabel('Name').fill(deviceName);
      await form.getByRole('button', { name: 'Add device' }).click();
      const keys = page.locator('#device-keys');
      await keys.waitFor();
      const master = await keys.locator('[data-key=master]').innerText();
      assert.match(master, /^[0-9a-f]{40}$/);
      ownerKey = await keys.locator('[data-key=owner]').innerText();
      assert.match(ownerKey, /^[0-9a-f]{40}$/);
      await page.locator('#devices tbody tr', { hasText: deviceName }).waitFor();
      // The filter narrows the table as one types.
      await page.getByLabel('Search devices').fill('no-such-device');
      await page.locator('#devices tbody tr', { hasText: 'None yet.' }).waitFor();
      await page.getByLabel('Search devices').fill('NAME-0000');
      await page.locator('#devices tbody tr', { hasText: deviceName }).waitFor();
      await page.getByLabel('Search devices').fill('');
      sim = startSim(fotad, master, 'v1.0', 'v1.1', work);
    });

    if (sim) {
      await step(t, 'the simulated device comes online running v1.0', async () => {
        // The product page refreshes its device list every few seconds.
        const row = page.locator('#devices tbody tr', { hasText: deviceName });
        await row.filter({ hasText: 'Online' }).filter({ hasText: 'v1.0' }).waitFor({ timeout: 20000 });
      });
    }

    // A second tab on the live feed, opened before the change it must show.
    const feed = await browser.ctx.newPage();
    pages.push(feed);
    feed.setDefaultTimeout(T);
    await step(t, 'the messages page goes live', async () => {
      // The key lives in one tab's sessionStorage: a new tab signs in again
      // and lands on the page it asked for.
      await feed.goto(base + '/#/messages');
      await feed.getByLabel('API key').fill(fotad.key);
      await feed.getByRole('button', { name: 'Sign in' }).click();
      await feed.waitForURL(/#\/messages$/);
      await feed.locator('#live-state', { hasText: 'live' }).waitFor();
      // Earlier messages are listed too, named by product.
      await feed.locator('#messages li', { hasText: 'humiture: Version v1.1 released (2 files)' }).waitFor();
    });

    await step(t, 'set v1.1 as current after the confirmation dialog', async () => {
      // Background tabs get no animation frames; playwright's clicks need them.
      await page.bringToFront();
      // Dismissing the dialog changes nothing.
      page.once('dialog', (d) => d.dismiss());
      await page.locator('#releases li[data-version="v1.0"] button[data-set-current]').click();
      assert.equal(await page.locator('#releases li.is-current').count(), 0);
      let text = '';
      page.once('dialog', (d) => { text = d.message(); d.accept(); });
      const resp = page.waitForResponse((r) => /\/roms\/v1\.1\/current$/.test(r.url()));
      await page.locator('#releases li[data-version="v1.1"] button[data-set-current]').click();
      assert.equal((await resp).status(), 200);
      assert.match(text, /v1\.1/);
      await page.locator('#releases li.is-current[data-version="v1.1"]').waitFor();
      assert.equal(await page.locator('#releases li.is-current').count(), 1);
      // The product list has a column of current versions, the date apart from the serial.
      await page.goto(base + '/#/products');
      const row = page.locator('#products tbody tr', { hasText: 'humiture' });
      await row.locator('td[data-col=current]', { hasText: 'v1.1' }).waitFor();
      const heads = await page.locator('#products thead th').allInnerTexts();
      assert.deepEqual(heads, ['Id', 'Name', 'Serial', 'Current version', 'Status', 'Description', 'Activated / Total', 'Created']);
      await page.goBack();
      await page.locator('#releases li.is-current[data-version="v1.1"]').waitFor();
    });

    // fotad tells only devices known to run an older version.
    if (sim || process.env.FOTA_E2E_MOCK) await step(t, 'the live feed shows the update-available message', async () => {
      await feed.locator('#messages li', { hasText: `Device ${deviceName} has version v1.1 update` }).waitFor();
    });

    await step(t, 'device page: upgrade, reboot, RPC form', async () => {
      const t0 = Date.now(); const lap = (w) => process.env.FOTA_E2E_DEBUG && console.log('#', w, Date.now() - t0);
      await page.locator('#devices').getByRole('link', { name: deviceName }).click();
      await page.waitForURL(/#\/devices\/\d+$/);
      await page.getByRole('heading', { name: deviceName }).waitFor();
      // No reply box before a request.
      assert.equal(await page.locator('#rpc-response').isVisible(), false, 'no empty response box');
      lap('const sel = page.loc');
      const sel = page.locator('#upgrade-to');
      await sel.locator('option[value="v1.1"]').waitFor({ state: 'attached' });
      await sel.selectOption('v1.1');
      const up = page.waitForResponse((r) => r.url().includes('/v1/device/rpc/') && r.url().includes('sys_upgrade'));
      lap('await page.getByRole');
      await page.getByRole('button', { name: 'Upgrade' }).click();
      const upResp = await up;
      const upStatus = upResp.status();
      assert.ok(upStatus === 200 || upStatus === 202, 'upgrade accepted: ' + upStatus);
      const upBody = await upResp.json();
      // Offline device: the command waits for it, and the page says so.
      const queued = upStatus === 202 || (upBody.command && upBody.command.state === 'queued');
      assert.equal(upBody.command && upBody.command.action, 'sys_upgrade');
      // (An online device may report success before this check: both say it went out.)
      const expect = queued ? /Queued/ : /Sent to the device|downloaded and checked/;
      await page.locator('#upgrade-status', { hasText: expect }).waitFor();
      if (sim) {
        assert.ok(!queued, 'the online device gets the command at once');
        // The device downloads user2.bin and reports; the message arrives
        // live on the device page and in the feed tab.
        await page.locator('#device-messages li', { hasText: `Device ${deviceName} upgraded to version v1.1` })
          .waitFor({ timeout: 20000 });
        await feed.locator('#messages li', { hasText: `Device ${deviceName} upgraded to version v1.1` }).waitFor();
        await page.locator('#device-info', { hasText: 'v1.1' }).waitFor();
        // Its download shows as a full bar: "x of x · complete".
        const dl = page.locator('#download-progress[data-state="complete"]');
        await dl.waitFor();
        assert.match(await dl.innerText(), /(\S+ \S+) of \1 · complete \(v1\.1\)/);
        assert.match(await page.locator('#device-info').innerText(), /Download user2\.bin/);
        // The page says what is left to do: reboot into the new version.
        await page.locator('#upgrade-status', { hasText: 'Reboot it to run the new version' }).waitFor();
      }

      lap('const rb = page.wait');
      const rb = page.waitForResponse((r) => r.url().includes('sys_reboot'));
      await page.getByRole('button', { name: 'Reboot' }).click();
      assert.ok([200, 202].includes((await rb).status()));
      if (sim) {
        // Rebooted, the device runs v1.1 from the other slot: fota-sim ends ok.
        let timer;
        const r = await Promise.race([sim.done, new Promise((res) => { timer = setTimeout(() => res(null), 20000); })]);
        clearTimeout(timer);
        assert.ok(r, 'fota-sim finished after the reboot:\n' + sim.out());
        assert.equal(r.code, 0, 'fota-sim result:\n' + r.out);
        assert.match(r.out, /upgraded:\s+1/);
        // The history in words, no JSON: "Upgrade to v1.1", done, the report.
        const hrow = page.locator('#history tbody tr', { hasText: 'Upgrade to v1.1' });
        await hrow.filter({ hasText: 'done' }).waitFor();
        assert.match(await hrow.innerText(), /reported v1\.0 → v1\.1/);
        assert.doesNotMatch(await page.locator('#history').innerText(), /[{}]/);
        // The D7 after the download of user2.bin: the new version is in slot user2.
        const info = await page.locator('#device-info').innerText();
        assert.match(info, /v1\.1/);
        assert.match(info, /Slot\s+user2/);
        // On v1.1 nothing is newer; v1.0 is offered apart, as a downgrade.
        await page.locator('#no-newer', { hasText: 'No newer release to upgrade to.' }).waitFor();
        assert.equal(await page.locator('#upgrade').isDisabled(), true);
        await page.locator('#downgrade-to option[value="v1.0"]').waitFor({ state: 'attached' });
        assert.equal(await page.locator('#upgrade-to option').count(), 0, 'no older version under Upgrade');
        let asked = '';
        page.once('dialog', (d) => { asked = d.message(); d.dismiss(); });
        let sent = 0;
        const countRpc = (r) => { if (r.url().includes('/v1/device/rpc/')) sent += 1; };
        page.on('request', countRpc);
        await page.getByRole('button', { name: 'Downgrade' }).click();
        page.off('request', countRpc);
        assert.match(asked, /from v1\.1 to the older version v1\.0/);
        assert.equal(sent, 0, 'a dismissed downgrade sends nothing');
      }

      lap('const form = page.lo');
      const form = page.locator('#rpc-form');
      await form.getByLabel('Action').fill('sys_reboot');
      assert.match(await form.locator('code.preview').innerText(), /deliver_to_device=true&action=sys_reboot/);
      lap('await form.getByRole');
      await form.getByRole('button', { name: 'Request' }).click();
      await page.locator('#rpc-response', { hasText: /HTTP 20[02]/ }).waitFor();
      await form.getByRole('heading', { name: 'Response' }).waitFor();
    });

    await step(t, 'an owner key sees only its device', async () => {
      const own = await browser.ctx.newPage();
      pages.push(own);
      own.setDefaultTimeout(T);
      await own.goto(base + '/');
      await own.getByLabel('API key').fill(ownerKey);
      await own.getByRole('button', { name: 'Sign in' }).click();
      await own.waitForURL(/#\/devices\/\d+$/);
      await own.getByRole('heading', { name: deviceName }).waitFor();
      assert.equal(await own.locator('#nav').isVisible(), false, 'no product navigation for an owner');
      const form = own.locator('#rpc-form');
      await form.getByLabel('Action').fill('sys_reboot');
      const resp = own.waitForResponse((r) => r.url().includes('/v1/device/rpc/'));
      await form.getByRole('button', { name: 'Request' }).click();
      const r = await resp;
      assert.ok([200, 202].includes(r.status()), 'rpc accepted: ' + r.status());
      assert.ok(!r.url().includes('device_id='), 'the owner key names its device itself');
      await own.locator('#rpc-response', { hasText: '"sys_reboot"' }).waitFor();
      // fota-sim has finished: the device is offline and the command waits.
      if (sim) await own.locator('#rpc-form .status', { hasText: 'Queued' }).waitFor();
      await own.close();
      pages.pop();
      await page.bringToFront();
      // The queued reboot, on the admin's device page: Cancel takes it out of the queue.
      if (sim) {
        const queued = page.locator('#history tbody tr[data-state=queued]', { hasText: 'Reboot' }).first();
        await queued.waitFor();
        const cid = await queued.getAttribute('data-command');
        // The live feed may re-render the history between Playwright's hit check and its
        // click, and a click on a row being replaced sends nothing: click again while no
        // DELETE left (the request leaves at once; its answer may take long on a slow build).
        const cancel = page.locator(`#history tbody tr[data-command="${cid}"][data-state=queued]`)
          .getByRole('button', { name: 'Cancel' });
        let req = null;
        for (let i = 0; i < 5 && !req; i++) {
          const sent = page.waitForRequest((x) => x.method() === 'DELETE' && x.url().includes('/commands/' + cid + '/'),
            { timeout: 3000 }).catch(() => null);
          await cancel.click();
          req = await sent;
        }
        assert.ok(req, 'the Cancel click sent the DELETE of command ' + cid);
        const del = await req.response();
        assert.ok(del, 'the DELETE of command ' + cid + ' was answered');
        assert.equal(del.status(), 200);
        await page.locator('#upgrade-status', { hasText: `Command ${cid} cancelled.` }).waitFor();
        await page.locator(`#history tbody tr[data-command="${cid}"][data-state=cancelled]`, { hasText: 'cancelled: by request' }).waitFor();
      }
    });

    await step(t, 'a browser in Chinese gets Chinese labels', async () => {
      const zh = await browser.ctx.newPage();
      pages.push(zh);
      zh.setDefaultTimeout(T);
      await zh.addInitScript(() => {
        Object.defineProperty(navigator, 'language', { get: () => 'zh-CN' });
        localStorage.removeItem('fota.lang');
      });
      await zh.goto(base + '/');
      await zh.getByRole('heading', { name: '登录' }).waitFor();
      assert.equal(await zh.evaluate(() => document.documentElement.lang), 'zh-CN');
      await zh.close();
      pages.pop();
      await page.bringToFront();
    });

    await step(t, 'Chinese labels and a phone-sized screen', async () => {
      const devUrl = page.url();
      const productUrl = devUrl.replace(/#\/devices\/\d+$/, '');
      await page.locator('#lang').click();
      await page.getByRole('link', { name: '产品管理', exact: true }).waitFor();
      await page.getByRole('button', { name: '升级' }).waitFor();
      await page.locator('#rom-line', { hasText: /当前设备的 ROM 版本是 \S+，可以升级到/ }).waitFor();
      // the history's words and the reply's heading in Chinese too
      const zhHist = await page.locator('#history').innerText();
      assert.match(zhHist, /指令/);
      assert.doesNotMatch(zhHist, /\b(queued|done|Command|action)\b/);
      await page.getByRole('link', { name: '产品管理', exact: true }).click();
      await page.locator('#products tbody tr td[data-col=current]').first().waitFor();
      const zhHeads = await page.locator('#products thead th').allInnerTexts();
      assert.deepEqual(zhHeads, ['编号', '名称', '序列号', '当前版本', '状态', '描述', '已激活 / 总数', '创建时间']);
      await page.goBack();
      await page.locator('#rom-line').waitFor();
      await page.locator('#lang').click();
      await page.getByRole('link', { name: 'Products', exact: true }).waitFor();
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(productUrl + '#/products');
      await page.locator('#products tbody tr').first().waitFor();
      await page.locator('#products a').first().click();
      await page.locator('#releases li.is-current').waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, 'no sideways scrolling on a phone: ' + overflow + 'px');
      // Keyboard: Tab from the top reaches the skip link first, and the
      // focused control shows a visible outline.
      await page.evaluate(() => { const a = document.querySelector('.skip'); a.focus(); });
      assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
      // Enter on it moves focus to the content and leaves the route alone.
      const before = page.url();
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
      assert.equal(page.url(), before);
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      assert.notEqual(outline, 'none', 'focus is visible');
    });

    await step(t, 'message sentences for every kind fotad records', async () => {
      const texts = await page.evaluate(async () => {
        const ui = await import('/ui.js');
        const i18n = await import('/i18n.js');
        const msgs = [
          { action: 'rom_update_available', device_id: 9, body: { device: 'd9', version: 'v1.1' } },
          { action: 'device_upgrade_success', device_id: 9, body: { pre_rom_version: 'v1.0', rom_version: 'v1.1' } },
          { action: 'device_upgrade_failed', device_id: 9, body: { pre_rom_version: 'v1.0', rom_version: 'v1.1' } },
          { action: 'rom_released', product_id: 1, device_id: 0, body: { version: 'v1.2', files: 2 } },
          { action: 'datapoint:temperature', device_id: 9, body: { x: 21 } },
        ];
        const out = { en: msgs.map((m) => [ui.messageText(m), ui.messageKind(m)]) };
        i18n.setLang('zh');
        out.zh = msgs.map((m) => ui.messageText(m));
        i18n.setLang('en');
        return out;
      });
      assert.deepEqual(texts.en[0], ['Device d9 has version v1.1 update', '']);
      assert.match(texts.en[1][0], /upgraded to version v1\.1$/);
      assert.equal(texts.en[1][1], 'good');
      assert.match(texts.en[2][0], /failed to upgrade to v1\.1/);
      assert.equal(texts.en[2][1], 'bad');
      assert.match(texts.en[3][0], /Version v1\.2 released \(2 files\)$/);
      assert.match(texts.en[4][0], /datapoint:temperature/);
      assert.equal(texts.zh[0], '设备 d9 有版本 v1.1 更新');
      assert.match(texts.zh[1], /升级到 v1\.1 版本$/);
    });

    await step(t, 'no script errors in the pages', async () => {
      assert.deepEqual(consoleErrors, []);
    });

    if (DOC_SHOT) {
      await page.setViewportSize({ width: 1100, height: 760 });
      await page.evaluate(() => { document.activeElement.blur(); window.scrollTo(0, 0); });
      await page.screenshot({ path: DOC_SHOT });
    }

    await step(t, 'roll out v1.0: the offline device is queued, the rollout runs', async () => {
      await page.setViewportSize({ width: 1100, height: 760 });
      const form = page.locator('#rollout-form');
      await form.locator('#rollout-version option[value="v1.0"]').waitFor({ state: 'attached' });
      await form.getByLabel('Version').selectOption('v1.0');
      await form.getByLabel('Only devices on', { exact: true }).selectOption('v1.1');
      assert.equal(await form.getByLabel('Reboot each device once it reports success').isChecked(), true);
      await form.getByLabel('At most at once').fill('0');
      await form.getByRole('button', { name: 'Roll out' }).click();
      await page.locator('#rollout-status', { hasText: 'At most at once: a number' }).waitFor();
      await form.getByLabel('At most at once').fill('4');
      await form.getByLabel('Stop after failures').fill('-2');
      await form.getByRole('button', { name: 'Roll out' }).click();
      await page.locator('#rollout-status', { hasText: 'Stop after failures: empty, or a number' }).waitFor();
      await form.getByLabel('Stop after failures').fill('3');
      let text = '';
      page.once('dialog', (d) => { text = d.message(); d.accept(); });
      const resp = page.waitForResponse((r) => r.request().method() === 'POST' && /\/v1\/rollouts\/$/.test(r.url()));
      await form.getByRole('button', { name: 'Roll out' }).click();
      const r = await resp;
      assert.equal(r.status(), 202);
      const productId = Number(page.url().match(/#\/products\/(\d+)$/)[1]);
      assert.deepEqual((await r.request().postDataJSON()), { product_id: productId, version: 'v1.0', filter: { rom_version: 'v1.1' }, reboot: true, window: 4, max_failures: 3 });
      assert.match(text, /v1\.0/);
      await page.locator('#rollout-status', { hasText: /Rollout \d+ started: 1 devices \(0 already on it\)/ }).waitFor();
      const item = page.locator('#rollouts li[data-state="running"]', { hasText: 'v1.0' });
      await item.waitFor();
      assert.match(await item.innerText(), /0\/1 upgraded · 1 offline \(queued\)/);
    });

    // Last, so the documentation screenshot above still shows the product.
    await step(t, 'delete a release, a device and the product, each after a confirmation', async () => {
      await page.setViewportSize({ width: 1100, height: 760 });
      const pid = page.url().match(/#\/products\/(\d+)$/)[1];
      await page.locator('#releases li[data-version="v1.0"]').waitFor();
      // The current release of a product with a device: fotad refuses, the reason shows.
      page.once('dialog', (d) => d.accept());
      await page.locator('#releases li[data-version="v1.1"] button[data-delete-release]').click();
      await page.locator('#releases li[data-version="v1.1"] .status', { hasText: /Error: .*current/ }).waitFor();
      let text = '';
      // v1.0 is what the running rollout installs: refused too, naming the rollout.
      page.once('dialog', (d) => d.accept());
      await page.locator('#releases li[data-version="v1.0"] button[data-delete-release]').click();
      await page.locator('#releases li[data-version="v1.0"] .status', { hasText: /Error: .*rollout \d+/ }).waitFor();
      // Cancel the rollout from its list: the queued device is dropped.
      page.once('dialog', (d) => { text = d.message(); d.accept(); });
      await page.locator('#rollouts li[data-state="running"] button[data-cancel-rollout]').click();
      assert.match(text, /Cancel rollout \d+ \(v1\.0\)/);
      await page.locator('#rollout-status', { hasText: /Rollout \d+ cancelled: 1 devices dropped\./ }).waitFor();
      await page.locator('#rollouts li[data-state="cancelled"]', { hasText: '0/1 upgraded · 1 cancelled' }).waitFor();
      assert.equal(await page.locator('#rollouts button[data-cancel-rollout]').count(), 0, 'no Cancel on a cancelled rollout');

      // The device, from its page; then back on the product page, which says so.
      await page.locator('#devices a', { hasText: deviceName }).click();
      await page.waitForURL(/#\/devices\/\d+$/);
      // A member never pushed has no command row: the cancelled rollout left none.
      const rows = await page.evaluate(async (id) => {
        const api = await import('/api.js');
        const r = await api.get('/v1/devices/' + id + '/commands/');
        return (r.body.commands || []).filter((c) => c.action === 'sys_upgrade' && c.state === 'cancelled').length;
      }, page.url().match(/#\/devices\/(\d+)$/)[1]);
      assert.equal(rows, 0, 'no command row for a member never pushed');
      page.once('dialog', (d) => { text = d.message(); d.accept(); });
      const dresp = page.waitForResponse((r) => r.request().method() === 'DELETE' && /\/v1\/devices\/\d+\/$/.test(r.url()));
      await page.locator('#delete-device').click();
      assert.equal((await dresp).status(), 200);
      assert.match(text, new RegExp(deviceName));
      await page.waitForURL(new RegExp('#/products/' + pid + '$'));
      await page.locator('#product-status', { hasText: `Device ${deviceName} deleted.` }).waitFor();
      await page.locator('#devices tbody tr', { hasText: 'None yet.' }).waitFor();
      // Gone for the REST API too.
      const left = await page.evaluate(async (id) => {
        const api = await import('/api.js');
        const r = await api.get('/v1/products/' + id + '/devices/');
        const roms = await api.get('/v1/products/' + id + '/roms/');
        return [r.body.devices.length, roms.body.roms.map((x) => x.version).sort()];
      }, pid);
      assert.deepEqual(left, [0, ['v1.0', 'v1.1']]);
      // The rollout is over: v1.0 may go now.
      // Dismissing the dialog changes nothing.
      page.once('dialog', (d) => d.dismiss());
      await page.locator('#releases li[data-version="v1.0"] button[data-delete-release]').click();
      assert.equal(await page.locator('#releases li[data-version="v1.0"]').count(), 1);
      page.once('dialog', (d) => { text = d.message(); d.accept(); });
      const resp = page.waitForResponse((r) => r.request().method() === 'DELETE' && /\/roms\/v1\.0\/$/.test(r.url()));
      await page.locator('#releases li[data-version="v1.0"] button[data-delete-release]').click();
      assert.equal((await resp).status(), 200);
      assert.match(text, /v1\.0/);
      await page.locator('#releases li[data-version="v1.0"]').waitFor({ state: 'detached' });
      await page.locator('#product-status', { hasText: 'Release v1.0 deleted.' }).waitFor();
      assert.equal(await page.locator('#releases li[data-version="v1.1"]').count(), 1);


      // The product: refused with the counts while it has a release; then the
      // last release (current, but no device is left) and the product go.
      page.once('dialog', (d) => d.accept());
      await page.locator('#delete-product').click();
      await page.locator('#product-status', { hasText: /Error: .*0 device\(s\) and 1 release\(s\)/ }).waitFor();
      page.once('dialog', (d) => d.accept());
      await page.locator('#releases li[data-version="v1.1"] button[data-delete-release]').click();
      await page.locator('#releases li[data-version="v1.1"]').waitFor({ state: 'detached' });
      page.once('dialog', (d) => { text = d.message(); d.accept(); });
      await page.locator('#delete-product').click();
      assert.match(text, /humiture/);
      await page.waitForURL(/#\/products$/);
      await page.locator('#products-status', { hasText: 'Product humiture deleted.' }).waitFor();
      assert.equal(await page.locator('#products a', { hasText: 'humiture' }).count(), 0);
      assert.deepEqual(consoleErrors, []);
    });

    // ---- an arduino product: sketches, Tasmota, ESPHome pull from a URL
    const md5 = (b) => crypto.createHash('md5').update(b).digest('hex');
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
    const privPath = path.join(work, 'private.pem');
    fs.writeFileSync(privPath, privateKey, { mode: 0o600 });
    const full = makeArduinoImage({ mode: 3, irom: 60000, seed: 5 });
    const mini = makeArduinoImage({ mode: 3, irom: 9000, seed: 6 });
    // gzip + signed: the signature covers the compressed bytes (arduino-ota §7.2)
    const signedGz = (img, name) => {
      const gzPath = path.join(work, name);
      fs.writeFileSync(gzPath + '.unsigned', zlib.gzipSync(img, { level: 9 }));
      return { path: gzPath, bytes: signWithFotactl(privPath, gzPath + '.unsigned', gzPath) };
    };
    const fwGz = signedGz(full, 'tasmota.bin.gz');
    const miniGz = signedGz(mini, 'tasmota-minimal.bin.gz');
    const plainPath = path.join(work, 'unsigned', 'firmware.bin');
    fs.mkdirSync(path.dirname(plainPath), { recursive: true });
    fs.writeFileSync(plainPath, full);
    let ardUrl = '', productKey = '';
    fs.mkdirSync(SHOTS, { recursive: true });

    await step(t, 'create an arduino product with its fleet (a private key refused in the browser)', async () => {
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(base + '/#/products');
      const form = page.locator('#create-product');
      await form.getByLabel('Platform').selectOption('arduino');
      await form.locator('#arduino-fleet').waitFor();
      assert.equal(await form.getByLabel('Flash map').isVisible(), false, 'no flash map for an arduino product');
      await form.getByLabel('Name').fill('plugs');
      await form.getByLabel('Serve gzip (devices on core 2.7 or later)').check();
      await form.getByLabel('Core line the devices run').selectOption('3.1');
      await form.getByLabel('Check-in interval (seconds)').fill('600');
      await form.getByLabel('Confirm after (seconds)').fill('30');
      let posts = 0;
      const count = (r) => { if (r.method() === 'POST' && /\/v1\/products\/$/.test(r.url())) posts += 1; };
      page.on('request', count);
      await form.getByLabel('Signing key (RSA public key, PEM)').fill(privateKey);
      await form.getByRole('button', { name: 'Create' }).click();
      await form.locator('.status', { hasText: 'This is a private key' }).waitFor();
      page.off('request', count);
      assert.equal(posts, 0, 'the private key was never sent');
      await form.getByLabel('Signing key (RSA public key, PEM)').fill(publicKey);
      const resp = page.waitForResponse((r) => r.request().method() === 'POST' && /\/v1\/products\/$/.test(r.url()));
      await form.getByRole('button', { name: 'Create' }).click();
      const r = await resp;
      assert.equal(r.status(), 200);
      const sent = r.request().postDataJSON();
      assert.deepEqual({ ...sent, signing_key: sent.signing_key.trim() }, { name: 'plugs', description: '', platform: 'arduino',
        gzip: true, arduino_core: '3.1', flash_mode: null, signing_key: publicKey.trim(), checkin_interval: 600,
        confirm_after: 30 });
      const row = page.locator('#products tbody tr', { hasText: 'plugs' });
      await row.locator('.badge.platform', { hasText: 'Arduino' }).waitFor();
      await row.getByRole('link', { name: 'plugs' }).click();
      await page.getByRole('heading', { name: 'plugs' }).waitFor();
      productKey = await page.locator('#product-key').innerText();
      ardUrl = await page.locator('#device-url').innerText();
      assert.equal(ardUrl, base + '/v1/arduino/' + productKey + '/firmware.bin');
      assert.match(await page.locator('main').innerText(), /ESP8266 Arduino core/);
    });

    await step(t, 'an arduino release: firmware.bin required, an unsigned file refused next to it, badges', async () => {
      const form = page.locator('#release-form');
      assert.equal(await form.locator('li.file-row').count(), 2);
      assert.equal(await form.getByRole('button', { name: 'Add a file' }).isVisible(), false);
      await form.getByLabel('Version').fill('14.4.1');
      await form.getByLabel('firmware-minimal.bin (optional, for Tasmota)').setInputFiles(miniGz.path);
      await form.getByRole('button', { name: 'Save' }).click();
      await form.locator('.status', { hasText: 'Choose firmware.bin.' }).waitFor();
      // unsigned on a signed product: fotad's 422 lands next to firmware.bin
      await form.getByLabel('firmware.bin (required)').setInputFiles(plainPath);
      let resp = page.waitForResponse((r) => r.url().includes('/roms/') && r.request().method() === 'POST');
      await form.getByRole('button', { name: 'Save' }).click();
      assert.equal((await resp).status(), 422);
      const refused = form.locator('li.file-row.refused[data-kind="firmware.bin"] .file-error');
      await refused.waitFor();
      assert.match(await refused.innerText(), /^firmware\.bin/);
      assert.equal(await page.locator('#releases li[data-version="14.4.1"]').count(), 0, 'nothing half-published');
      // signed .gz files: stored as they are
      await form.getByLabel('firmware.bin (required)').setInputFiles(fwGz.path);
      resp = page.waitForResponse((r) => r.url().includes('/roms/') && r.request().method() === 'POST');
      await form.getByRole('button', { name: 'Save' }).click();
      assert.equal((await resp).status(), 200);
      const rel = page.locator('#releases li[data-version="14.4.1"]');
      await rel.waitFor();
      const fw = rel.locator('li[data-file="firmware.bin.gz"]');
      await fw.waitFor();
      assert.equal(await fw.locator('[data-badge=md5] code').innerText(), md5(fwGz.bytes).slice(0, 8));
      assert.equal(await fw.locator('[data-badge=md5]').getAttribute('title'), 'Served with x-MD5 ' + md5(fwGz.bytes));
      const saving = Math.floor((full.length - fwGz.bytes.length) * 100 / full.length);
      assert.equal(await fw.locator('[data-badge=gzip]').innerText(), `gzip −${saving}%`);
      assert.equal(await fw.locator('[data-badge=signature]').innerText(), 'signed (standard)');
      assert.match(await fw.locator('[data-badge=flash]').innerText(), /^dout · 4\.00 MiB$/);
      await rel.locator('li[data-file="firmware-minimal.bin.gz"] [data-badge=signature]').waitFor();
      page.once('dialog', (d) => d.accept());
      await rel.locator('button[data-set-current]').click();
      await page.locator('#releases li.is-current[data-version="14.4.1"]').waitFor();
    });

    await step(t, 'the fleet settings change on the product page', async () => {
      const form = page.locator('#arduino-settings');
      assert.equal(await form.getByLabel('Check-in interval (seconds)').inputValue(), '600');
      assert.equal(await form.getByLabel('Flash mode').inputValue(), 'dout', "the first release's flash mode");
      await form.getByLabel('Check-in interval (seconds)').fill('0');
      await form.getByRole('button', { name: 'Save settings' }).click();
      await page.locator('#arduino-settings-status', { hasText: 'a whole number of seconds' }).waitFor();
      await form.getByLabel('Check-in interval (seconds)').fill('900');
      const resp = page.waitForResponse((r) => r.request().method() === 'PUT' && /\/arduino$/.test(r.url()));
      await form.getByRole('button', { name: 'Save settings' }).click();
      assert.equal((await resp).status(), 200);
      await page.locator('#arduino-settings-status', { hasText: 'Settings saved.' }).waitFor();
      const s = await page.evaluate(async (u) => (await (await import('/api.js')).get(u)).body.arduino,
        new URL(page.url()).hash.replace('#', '').replace('/products/', '/v1/products/') + '/arduino');
      assert.equal(s.checkin_interval, 900);
      assert.equal(s.gzip, true);
      await page.screenshot({ path: path.join(SHOTS, 'arduino-product.png'), fullPage: true });
    });

    await step(t, 'the MQTT broker of a Tasmota fleet: the password is write-only', async () => {
      const secret = 'hunter2-' + crypto.randomBytes(6).toString('hex');
      broker = await startMosquitto({ fotad: secret });
      const form = page.locator('#mqtt-settings');
      await form.locator('#mqtt-state', { hasText: 'No broker' }).waitFor();
      await form.getByLabel('Broker URL').fill('http://127.0.0.1:1883');
      await form.getByRole('button', { name: 'Save broker' }).click();
      await page.locator('#mqtt-status', { hasText: 'mqtt://HOST:PORT' }).waitFor();
      await form.getByLabel('Broker URL').fill(broker.url);
      await form.getByLabel('User name').fill('fotad');
      await form.getByLabel('Password', { exact: true }).fill(secret);
      let resp = page.waitForResponse((r) => r.request().method() === 'PUT' && /\/mqtt$/.test(r.url()));
      await form.getByRole('button', { name: 'Save broker' }).click();
      let r = await resp;
      assert.equal(r.status(), 200);
      assert.deepEqual(r.request().postDataJSON(), { url: broker.url, username: 'fotad', password: secret });
      assert.ok(!(await r.text()).includes(secret), 'fotad never answers with the password');
      // the password reached fotad: the broker lets it in
      await form.locator('#mqtt-state [data-connected="true"]').waitFor({ timeout: 15000 });
      assert.equal(await form.getByLabel('Password', { exact: true }).inputValue(), '');
      assert.equal(await form.getByLabel('Password', { exact: true }).getAttribute('placeholder'), 'set (type to replace)');
      // fotad's public_url is not set here: the page says rollouts trigger nobody
      await form.locator('#mqtt-no-public-url').waitFor();
      // a Tasmota device's LWT on the broker: its topic shows up
      broker.pub('tele/tasmota_0A0B0C/LWT', 'Online');
      await form.locator('#mqtt-devices tr', { hasText: 'tasmota_0A0B0C' }).waitFor({ timeout: 15000 });
      await form.screenshot({ path: path.join(SHOTS, 'arduino-mqtt.png') });
      // saved again with the field empty: the password is kept
      resp = page.waitForResponse((x) => x.request().method() === 'PUT' && /\/mqtt$/.test(x.url()));
      await form.getByRole('button', { name: 'Save broker' }).click();
      r = await resp;
      assert.deepEqual(r.request().postDataJSON(), { url: broker.url, username: 'fotad' });
      assert.equal((await r.json()).mqtt.password_set, true);
      assert.ok(!(await page.content()).includes(secret), 'the page never holds the password');
      // removed after a confirmation
      page.once('dialog', (d) => d.accept());
      await form.getByRole('button', { name: 'Remove broker' }).click();
      await form.locator('#mqtt-state', { hasText: 'No broker' }).waitFor();
      await page.locator('#mqtt-status', { hasText: 'Broker removed.' }).waitFor();
    });

    await step(t, 'a device that checked in with the core\'s request shows its Arduino fields', async () => {
      const mac = '5C:CF:7F:0A:0B:0C';
      // running an older sketch: served the signed container whole
      const a = await coreCheckin(base, new URL(ardUrl).pathname, { mac, version: '14.3.0', chipId: 658188,
        freeSpace: 2 << 20, sketchSize: 412000, sdk: '2.2.2-dev(38a443e)' });
      assert.equal(a.status, 200);
      assert.equal(a.headers['x-md5'], md5(fwGz.bytes));
      assert.ok(a.body.equals(fwGz.bytes), 'the body is the uploaded file');
      // rebooted into it (another flash mode byte): 304, an upgrade success
      const img = Buffer.from(full); img[2] = 2;
      const b = await coreCheckin(base, new URL(ardUrl).pathname, { mac, version: '14.4.1', md5: md5(img),
        chipId: 658188, freeSpace: 2 << 20, sketchSize: full.length, sdk: '2.2.2-dev(38a443e)' });
      assert.equal(b.status, 304);
      const row = page.locator('#devices tbody tr', { hasText: mac });
      await row.filter({ hasText: 'Online' }).waitFor({ timeout: 20000 });
      await row.getByRole('link', { name: mac }).click();
      await page.waitForURL(/#\/devices\/\d+$/);
      const info = page.locator('#device-info');
      await info.getByText('Chip ID').waitFor();
      const text = await info.innerText();
      for (const want of ['658188', mac, '14.4.1', md5(img), `${full.length} B`, '2.00 MiB', '4.00 MiB',
        '2.2.2-dev(38a443e)', 'Last check-in', 'Upgrade served']) {
        assert.ok(text.includes(want), `device info lacks ${want}:\n${text}`);
      }
      assert.doesNotMatch(text, /Slot/);
      assert.equal(await page.locator('#sketch-md5').innerText(), md5(img));
      await page.locator('#device-messages li', { hasText: `Device ${mac} upgraded to version 14.4.1` }).waitFor();
      // a pull device: no Reboot, no RPC form; its upgrade waits for the next check-in
      assert.equal(await page.getByRole('button', { name: 'Reboot' }).isVisible(), false);
      assert.equal(await page.locator('#rpc-form').isVisible(), false);
      await page.locator('#pull-note', { hasText: 'waits for its next check-in' }).waitFor();
      await page.screenshot({ path: path.join(SHOTS, 'arduino-device.png'), fullPage: true });
      await page.locator('#lang').click();
      await info.getByText('芯片 ID').waitFor();
      await info.getByText('最后检查').waitFor();
      await page.locator('#pull-note', { hasText: '下次检查' }).waitFor();
      await page.locator('#lang').click();
      await info.getByText('Chip ID').waitFor();
    });

    await step(t, 'every label is in English and Chinese; no script errors', async () => {
      const missing = await page.evaluate(async () => (await import('/i18n.js')).missingKeys());
      assert.deepEqual(missing, { zh: [], en: [] });
      assert.deepEqual(consoleErrors, []);
    });
  } finally {
    if (sim) sim.stop();
    if (broker) broker.stop();
    await browser.ctx.close().catch(() => {});
    rmrf(browser.profile);
    const code = await fotad.stop();
    const log = fotad.log();
    rmrf(fotad.data);
    rmrf(work);
    if (!process.env.FOTA_E2E_MOCK) {
      if (/ERROR|AddressSanitizer|runtime error:/.test(log) || code !== 0) {
        fs.mkdirSync(SHOTS, { recursive: true });
        fs.writeFileSync(path.join(SHOTS, 'fotad.log'), log);
      }
      assert.ok(!/ERROR|AddressSanitizer|runtime error:/.test(log), 'fotad logged an error:\n' + log.slice(-3000));
      assert.equal(code, 0, 'fotad exit status');
    }
  }
});
