// device.js - one device (seed §4.3 steps 7-9): its ROM version, "can be
// upgraded to [newer version] Upgrade" and, apart, "or downgraded to [older
// version] Downgrade" (after a confirmation), Reboot, the RPC request form
// (any action with parameters, the reply shown once there is one), and its
// messages and command history in words (a queued command can be
// cancelled), refreshed live from the message feed. A device of an arduino product
// pulls its firmware: the page shows what it reported at its last check-in
// (arduino.js) instead of a slot, and no Reboot or RPC form (it has no
// channel; the upgrade waits for its next check-in).
import { t } from './i18n.js';
import * as api from './api.js';
import { h, field, statusLine, say, fmtTime, fmtBytes, messageItem, rememberDevices } from './ui.js';
import { slotText, onlineBadge } from './product.js';
import { deviceRows } from './arduino.js';

// Compares versions as fotad does: Espressif vN1.N2.N3 and dotted numbers.
export function cmpVersion(a, b) {
  const pa = String(a || '').replace(/^v/i, '').split(/[.\-_]/).map((x) => parseInt(x, 10) || 0);
  const pb = String(b || '').replace(/^v/i, '').split(/[.\-_]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d) return d;
  }
  return 0;
}

// Sends an RPC through the seed's endpoint. The admin key names the device;
// an owner key is scoped to its device already.
// Commands sent from this tab, per device id (newest first), for the history.
const sentCommands = new Map();

async function rpc(deviceId, params) {
  const q = new URLSearchParams({ deliver_to_device: 'true' });
  for (const [k, v] of params) q.append(k, v);
  if (api.getRole() === 'admin') q.set('device_id', deviceId);
  const r = await api.get('/v1/device/rpc/?' + q.toString());
  if (r.body.command) {
    const list = sentCommands.get(String(deviceId)) || [];
    list.unshift(r.body.command);
    sentCommands.set(String(deviceId), list.slice(0, 50));
  }
  return r;
}

// fotad records every command; state "queued" means the device is offline
// and gets it when it next connects (HTTP 202 from servers that say so).
function rpcOutcome(r) {
  const state = (r.body.command && r.body.command.state) || r.body.state || '';
  if (r.http === 202 || state === 'queued') return t('queued');
  return t('sent');
}

// A command in words: "Upgrade to v1.1", "Reboot", else the action and its
// parameters as name=value.
export function commandText(action, params) {
  const p = params && typeof params === 'object' ? params : {};
  if (action === 'sys_upgrade') return t('cmd_upgrade', p.version || '?');
  if (action === 'sys_reboot') return t('cmd_reboot');
  const kv = Object.entries(p).map(([k, v]) => k + '=' + (typeof v === 'object' ? JSON.stringify(v) : v));
  return action + (kv.length ? ' (' + kv.join(', ') + ')' : '');
}

// A command's or member's state in words ("queued" → "Queued", "排队中").
export function stateText(s) { const k = 'st_' + s; return t(k) === k ? String(s) : t(k); }

// What came back, in words: the device's report, a failure's reason, why
// it was cancelled; a device's own reply as name=value.
function resultText(r) {
  if (r === null || r === undefined || r === '') return '';
  if (typeof r !== 'object') return String(r);
  if (r.cancelled) return t('res_cancelled', r.replaced_by ? t('res_replaced', r.replaced_by) : String(r.cancelled));
  if (r.action === 'device_upgrade_success') return t('res_upgraded', r.pre_rom_version || '?', r.rom_version || '?');
  if (r.action === 'device_upgrade_failed' || r.reason) return t('res_failed', r.reason || r.rom_version || '');
  if (r.action === 'download') return t('res_download', r.version || '');
  if (r.status !== undefined && Object.keys(r).every((k) => ['status', 'nonce', 'deliver_to_device'].includes(k)))
    return t('res_acked', r.status);
  return Object.entries(r).filter(([k]) => k !== 'nonce' && k !== 'deliver_to_device')
    .map(([k, v]) => k + '=' + (typeof v === 'object' ? JSON.stringify(v) : v)).join(', ');
}

export function deviceView(root, id) {
  const st = statusLine();
  const title = h('h1', {}, t('device'), ' ', id);
  const info = h('dl', { class: 'info', id: 'device-info' });
  const romLine = h('span', { id: 'rom-line' });
  const select = h('select', { id: 'upgrade-to', name: 'version' });
  const upBtn = h('button', { type: 'button', class: 'primary', id: 'upgrade' }, t('upgrade'));
  // Older releases: a downgrade is its own choice, never under "Upgrade".
  const downLabel = h('span', { id: 'downgrade-line' }, t('downgrade_line'));
  const downSelect = h('select', { id: 'downgrade-to', name: 'downgrade_version' });
  const downBtn = h('button', { type: 'button', class: 'secondary', id: 'downgrade' }, t('downgrade'));
  downSelect.setAttribute('aria-labelledby', 'downgrade-line');
  const noNewer = h('p', { class: 'help', id: 'no-newer', hidden: true }, t('no_newer'));
  const downRow = h('p', { class: 'upgrade-line', hidden: true }, downLabel, ' ', downSelect, ' ', downBtn);
  const rebootBtn = h('button', { type: 'button', class: 'secondary', id: 'reboot' }, t('reboot'));
  const ust = statusLine();
  ust.id = 'upgrade-status';
  const msgs = h('ul', { class: 'feed', id: 'device-messages' });
  const hist = h('tbody');
  let device = null;
  let backLink = null;
  let productName = '';
  let reported = false;   // the device reported on the upgrade sent last

  select.setAttribute('aria-labelledby', 'rom-line');
  const pullNote = h('p', { class: 'help', id: 'pull-note', hidden: true }, t('dev_pull_note'));

  function renderInfo(d) {
    const pull = !!d.arduino;
    const rows = [
      [t('id'), d.id], [t('name'), d.name],
      [t('product'), h('a', { href: '#/products/' + d.product_id }, productName || d.product_id)],
      ['BSSID', d.bssid || '—'], [t('rom_version'), d.rom_version || t('unknown_version')],
      ...(pull ? [] : [[t('slot'), slotText(d.running_slot || d.slot)]]), [t('status'), onlineBadge(d)],
      ...(pull ? deviceRows(d) : [[t('activated'), d.activated ? t('yes') : t('no')], [t('last_active'), fmtTime(d.last_active)]]),
    ];
    rebootBtn.hidden = pull;
    rpcForm.hidden = pull;
    pullNote.hidden = !pull;
    if (d.download) {
      // The current or last download since fotad started: a bar, "x of y", the state.
      const dl = d.download;
      const bar = h('progress', { max: dl.total || 1, value: Math.min(dl.bytes, dl.total || 1) });
      rows.push([t('progress', dl.file || ''), h('span', { id: 'download-progress', 'data-state': dl.state },
        bar, ' ', t('dl_of', fmtBytes(dl.bytes), fmtBytes(dl.total)), ' · ',
        t('dl_' + dl.state), dl.version ? ' (' + dl.version + ')' : '')]);
    } else if (d.download_bytes) {
      rows.push([t('progress', ''), h('span', { id: 'download-progress' }, fmtBytes(d.download_bytes))]);
    }
    info.replaceChildren(...rows.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    romLine.textContent = t('rom_line', d.rom_version || (pull && d.arduino.version) || t('unknown_version'));
    title.textContent = d.name || (t('device') + ' ' + d.id);
    if (backLink) backLink.href = '#/products/' + d.product_id;
  }

  async function loadRoms(d) {
    if (api.getRole() !== 'admin') {
      // Owner key: the device-facing listing of the product's releases.
      try {
        const r = await api.get('/v1/device/rom/');
        return (r.body.productRoms || r.body.roms || r.body.rom_versions || []).map((x) => (typeof x === 'string' ? { version: x } : x));
      } catch (e) { return []; }
    }
    const r = await api.get('/v1/products/' + d.product_id + '/roms/');
    return r.body.roms || r.body.releases || [];
  }

  async function load() {
    try {
      const r = api.getRole() === 'admin' ? await api.get('/v1/devices/' + id + '/') : await api.get('/v1/device/');
      device = r.body.device || r.body;
      rememberDevices([device]);
      if (!productName && api.getRole() === 'admin') {
        try { productName = ((await api.get('/v1/products/' + device.product_id + '/')).body.product || {}).name || ''; } catch (e) { /* id will do */ }
      }
      renderInfo(device);
      const roms = await loadRoms(device);
      // Newer than what the device runs (or all, when its version is not
      // known) under Upgrade; older ones under Downgrade.
      const known = !!device.rom_version;
      const others = roms.filter((x) => x.version !== device.rom_version)
        .sort((a, b) => cmpVersion(b.version, a.version));
      const newer = others.filter((x) => !known || cmpVersion(x.version, device.rom_version) > 0);
      const older = others.filter((x) => known && cmpVersion(x.version, device.rom_version) <= 0);
      const opt = (x) => h('option', { value: x.version }, x.version + (x.current ? ' (' + t('current') + ')' : ''));
      const keep = select.value, keepDown = downSelect.value;
      select.replaceChildren(...newer.map(opt));
      if (keep && newer.some((x) => x.version === keep)) select.value = keep;
      else { const cur = newer.find((x) => x.current); if (cur) select.value = cur.version; }
      downSelect.replaceChildren(...older.map(opt));
      if (keepDown && older.some((x) => x.version === keepDown)) downSelect.value = keepDown;
      upBtn.disabled = !newer.length;
      select.hidden = !newer.length;
      downRow.hidden = !older.length;
      noNewer.hidden = !!newer.length;
    } catch (e) { say(st, t('error', e.message), 'bad'); }
    loadMessages();
    loadHistory();
  }

  // The light refresh: device row and history, not the release list.
  async function refresh() {
    try {
      const r = api.getRole() === 'admin' ? await api.get('/v1/devices/' + id + '/') : await api.get('/v1/device/');
      const d = r.body.device || r.body;
      const changed = !device || d.rom_version !== device.rom_version;
      device = d;
      if (changed) { load(); return; }
      renderInfo(device);
    } catch (e) { /* next round */ }
    loadHistory();
  }

  async function loadMessages() {
    try {
      const r = await api.get('/v1/messages/?device_id=' + encodeURIComponent(id) + '&limit=20');
      const list = r.body.messages || [];
      msgs.replaceChildren(...list.map(messageItem));
      if (!list.length) msgs.append(h('li', { class: 'muted' }, t('none')));
    } catch (e) { /* the owner key may not read messages: leave the list empty */ }
  }

  // Command history: fotad's list of the device's commands (admin and the
  // device's own keys may read it), in words; a queued one has Cancel.
  // Without that list (an older fotad) the commands sent from this tab are
  // shown with the device's upgrade messages.
  let hasCommandApi = true;
  function histRow(x) {
    let cancel = '';
    if (x.id && x.state === 'queued') {
      cancel = h('button', { type: 'button', class: 'link', 'data-cancel-command': x.id }, t('cmd_cancel'));
      cancel.addEventListener('click', async () => {
        try {
          await api.del('/v1/devices/' + id + '/commands/' + x.id + '/');
          say(ust, t('cmd_cancelled', x.id), 'good');
        } catch (e) { say(ust, t('error', e.message), 'bad'); }
        loadHistory();
      });
    }
    return h('tr', { 'data-command': x.id || '', 'data-state': x.state || '' },
      h('td', {}, fmtTime(x.when)),
      h('td', { title: x.action }, commandText(x.action, x.params)),
      h('td', {}, x.state ? h('span', { class: 'badge state-' + x.state }, stateText(x.state)) : '', ' ', cancel),
      h('td', {}, resultText(x.result)));
  }
  async function loadHistory() {
    let rows = null;
    if (hasCommandApi) {
      try {
        const r = await api.get('/v1/devices/' + id + '/commands/');
        rows = (r.body.commands || []).map((c) => ({ id: c.id, when: c.updated || c.created, action: c.action,
          params: c.params, state: c.state, result: c.result }));
      } catch (e) { if (e.status === 404 || e.status === 405) hasCommandApi = false; else return; }
    }
    if (!rows) {
      rows = (sentCommands.get(String(id)) || []).map((c) => ({ when: c.updated || c.created, action: c.action, params: c.params, state: c.state }));
      try {
        const r = await api.get('/v1/messages/?device_id=' + encodeURIComponent(id) + '&limit=50');
        for (const m of r.body.messages || []) {
          if (!/^device_upgrade_/.test(m.action)) continue;
          const b = typeof m.body === 'object' && m.body ? m.body : {};
          rows.push({ when: m.created, action: 'sys_upgrade', params: { version: b.rom_version || '' },
            state: /fail/.test(m.action) ? 'failed' : 'done', result: b });
        }
      } catch (e) { /* keep what we have */ }
      rows.sort((a, b) => (b.when || 0) - (a.when || 0));
    }
    hist.replaceChildren(...rows.map(histRow));
    if (!rows.length) hist.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, t('none'))));
  }

  async function sendUpgrade(btn, version) {
    btn.disabled = true;
    reported = false;
    try {
      const r = await rpc(id, [['action', 'sys_upgrade'], ['version', version]]);
      // A fast device may have reported already: keep its outcome on screen.
      if (!reported) say(ust, rpcOutcome(r), 'good');
      loadHistory();
    } catch (e) { say(ust, t('error', e.message), 'bad'); }
    btn.disabled = false;
  }
  upBtn.addEventListener('click', () => { if (select.value) sendUpgrade(upBtn, select.value); });
  downBtn.addEventListener('click', () => {
    const v = downSelect.value;
    if (!v || !window.confirm(t('confirm_downgrade', (device && device.name) || id, device && device.rom_version, v))) return;
    sendUpgrade(downBtn, v);
  });
  rebootBtn.addEventListener('click', async () => {
    rebootBtn.classList.replace('primary', 'secondary');
    try {
      const r = await rpc(id, [['action', 'sys_reboot']]);
      say(ust, rpcOutcome(r), 'good');
      loadHistory();
    } catch (e) { say(ust, t('error', e.message), 'bad'); }
  });

  // RPC request form: action + name=value lines, the reply shown verbatim.
  const action = field(t('action'), h('input', { name: 'action', required: true, placeholder: 'sys_reboot', autocomplete: 'off', maxlength: 31 }));
  const params = field(t('params'), h('textarea', { name: 'params', rows: 3, placeholder: 'version=v1.1', spellcheck: 'false' }));
  const preview = h('code', { class: 'preview' });
  // The reply box appears with the first reply (no empty box before).
  const out = h('pre', { class: 'response', id: 'rpc-response', tabindex: 0, 'aria-label': t('response'), hidden: true });
  const outHead = h('h3', { hidden: true }, t('response'));
  const rst = statusLine();
  function pairs() {
    return params.input.value.split(/\n|&/).map((l) => l.trim()).filter(Boolean).map((l) => {
      const i = l.indexOf('=');
      return i < 0 ? [l, ''] : [l.slice(0, i).trim(), l.slice(i + 1).trim()];
    });
  }
  function updatePreview() {
    const q = new URLSearchParams({ deliver_to_device: 'true', action: action.input.value.trim() });
    for (const [k, v] of pairs()) q.append(k, v);
    preview.textContent = '/v1/device/rpc/?' + q.toString();
  }
  action.input.addEventListener('input', updatePreview);
  params.input.addEventListener('input', updatePreview);
  updatePreview();
  const rpcForm = h('form', { class: 'card', id: 'rpc-form' }, h('h2', {}, t('rpc')), h('p', { class: 'help' }, t('rpc_help')),
    action.row, params.row, h('p', {}, preview), h('button', { type: 'submit', class: 'primary' }, t('request')), rst,
    outHead, out);
  rpcForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const a = action.input.value.trim();
    if (!a) { action.input.focus(); return; }
    try {
      const r = await rpc(id, [['action', a], ...pairs()]);
      out.hidden = outHead.hidden = false;
      out.textContent = 'HTTP ' + r.http + '\n' + JSON.stringify(r.body, null, 2);
      say(rst, rpcOutcome(r), 'good');
      loadHistory();
    } catch (err) {
      out.hidden = outHead.hidden = false;
      out.textContent = 'HTTP ' + err.status + '\n' + JSON.stringify(err.body, null, 2);
      say(rst, t('error', err.message), 'bad');
    }
  });

  // Delete device (admin): its keys stop working and fotad closes its
  // connection; then back to the product, which says so.
  const delBtn = h('button', { type: 'button', class: 'danger', id: 'delete-device' }, t('delete_device'));
  delBtn.addEventListener('click', async () => {
    const name = (device && device.name) || String(id);
    if (!window.confirm(t('confirm_delete_device', name))) return;
    try {
      await api.del('/v1/devices/' + id + '/');
      sessionStorage.setItem('fota.note', t('deleted_device', name));
      location.hash = device ? '#/products/' + device.product_id : '#/products';
    } catch (e) { say(st, t('error', e.message), 'bad'); }
  });

  backLink = h('a', { href: '#/products' }, '← ', t('product'));
  const back = api.getRole() === 'admin' ? h('p', {}, backLink) : h('p', { class: 'muted' }, t('signed_in_as_owner', id));
  root.append(back, title, api.getRole() === 'admin' ? h('p', {}, delBtn) : '', st,
    h('div', { class: 'cols' },
      h('section', {},
        info,
        h('div', { class: 'card', id: 'upgrade-card' }, h('h2', {}, t('releases')),
          h('p', { class: 'upgrade-line' }, romLine, ' ', select, ' ', upBtn), noNewer, downRow, pullNote,
          h('p', {}, rebootBtn), ust),
        rpcForm),
      h('section', {},
        h('h2', {}, t('messages')), msgs,
        h('h2', {}, t('history')),
        h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'history' },
          h('thead', {}, h('tr', {}, [t('when'), t('command'), t('state'), t('result')].map((k) => h('th', { scope: 'col' }, k)))), hist)))));
  load();
  // Live: any message about this device refreshes the page's data; online
  // state and command progress are also looked at every few seconds.
  const stop = api.follow({ device_id: id }, (m) => {
    if (String(m.device_id) !== String(id) && m.device_id) return;
    // The device's own report ends the upgrade it was told to do (seed §4.3
    // step 8); running the new image takes a reboot (step 9).
    const b = typeof m.body === 'object' && m.body ? m.body : {};
    if (/^device_upgrade_/.test(m.action)) reported = true;
    if (m.action === 'device_upgrade_success') {
      say(ust, t('upgrade_done', b.rom_version || b.version || ''), 'good');
      rebootBtn.classList.replace('secondary', 'primary');
    } else if (m.action === 'device_upgrade_failed') {
      say(ust, t('upgrade_failed', b.rom_version || b.version || '', b.reason || m.action), 'bad');
    }
    load();
  }, null);
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, 3000);
  return () => { stop(); clearInterval(timer); };
}
