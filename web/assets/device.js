// device.js - one device (seed §4.3 steps 7-9): its ROM version, "can be
// upgraded to [version] Upgrade", Reboot, the RPC request form (any action
// with parameters, the reply shown), and its messages and upgrade history,
// refreshed live from the message feed. A device of an arduino product
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

export function deviceView(root, id) {
  const st = statusLine();
  const title = h('h1', {}, t('device'), ' ', id);
  const info = h('dl', { class: 'info', id: 'device-info' });
  const romLine = h('span', { id: 'rom-line' });
  const select = h('select', { id: 'upgrade-to', name: 'version' });
  const upBtn = h('button', { type: 'button', class: 'primary', id: 'upgrade' }, t('upgrade'));
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
      const choices = roms.filter((x) => x.version !== device.rom_version)
        .sort((a, b) => cmpVersion(b.version, a.version));
      const keep = select.value;
      select.replaceChildren(...choices.map((x) => h('option', { value: x.version }, x.version + (x.current ? ' (' + t('current') + ')' : ''))));
      if (keep && choices.some((x) => x.version === keep)) select.value = keep;
      else { const cur = choices.find((x) => x.current); if (cur) select.value = cur.version; }
      upBtn.disabled = !choices.length;
      if (!choices.length) say(ust, t('no_newer'));
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

  // Upgrade history: fotad's command list when it has one, else the
  // commands sent from this tab (with the state fotad answered) merged with
  // the device's upgrade messages.
  let hasCommandApi = api.getRole() === 'admin';
  function histRow(when, action, params, state) {
    return h('tr', {}, h('td', {}, fmtTime(when)), h('td', {}, action),
      h('td', {}, typeof params === 'string' ? params : JSON.stringify(params || {})), h('td', {}, String(state || '')));
  }
  async function loadHistory() {
    if (hasCommandApi) {
      try {
        const r = await api.get('/v1/devices/' + id + '/commands/');
        const list = r.body.commands || [];
        hist.replaceChildren(...list.map((c) => histRow(c.updated || c.created, c.action, c.params, c.state)));
        return;
      } catch (e) { hasCommandApi = false; }
    }
    const rows = (sentCommands.get(String(id)) || []).map((c) => ({ when: c.updated || c.created, action: c.action, params: c.params, state: c.state }));
    try {
      const r = await api.get('/v1/messages/?device_id=' + encodeURIComponent(id) + '&limit=50');
      for (const m of r.body.messages || []) {
        if (!/upgrade|update/.test(m.action)) continue;
        rows.push({ when: m.created, action: m.action, params: m.body, state: /fail/.test(m.action) ? 'failed' : (/success/.test(m.action) ? 'done' : '') });
      }
    } catch (e) { /* keep what we have */ }
    rows.sort((a, b) => (b.when || 0) - (a.when || 0));
    hist.replaceChildren(...rows.map((x) => histRow(x.when, x.action, x.params, x.state)));
    if (!rows.length) hist.append(h('tr', {}, h('td', { colspan: 4, class: 'muted' }, t('none'))));
  }

  upBtn.addEventListener('click', async () => {
    if (!select.value) return;
    upBtn.disabled = true;
    reported = false;
    try {
      const r = await rpc(id, [['action', 'sys_upgrade'], ['version', select.value]]);
      // A fast device may have reported already: keep its outcome on screen.
      if (!reported) say(ust, rpcOutcome(r), 'good');
      loadHistory();
    } catch (e) { say(ust, t('error', e.message), 'bad'); }
    upBtn.disabled = false;
  });
  rebootBtn.addEventListener('click', async () => {
    rebootBtn.classList.remove('primary');
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
  const out = h('pre', { class: 'response', id: 'rpc-response', tabindex: 0, 'aria-label': t('response') });
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
    h('h3', {}, t('response')), out);
  rpcForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const a = action.input.value.trim();
    if (!a) { action.input.focus(); return; }
    try {
      const r = await rpc(id, [['action', a], ...pairs()]);
      out.textContent = 'HTTP ' + r.http + '\n' + JSON.stringify(r.body, null, 2);
      say(rst, rpcOutcome(r), 'good');
      loadHistory();
    } catch (err) {
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
          h('p', { class: 'upgrade-line' }, romLine, ' ', select, ' ', upBtn), pullNote,
          h('p', {}, rebootBtn), ust),
        rpcForm),
      h('section', {},
        h('h2', {}, t('messages')), msgs,
        h('h2', {}, t('history')),
        h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'history' },
          h('thead', {}, h('tr', {}, [t('when'), t('action'), t('params'), t('state')].map((k) => h('th', { scope: 'col' }, k)))), hist)))));
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
      rebootBtn.classList.add('primary');
    } else if (m.action === 'device_upgrade_failed') {
      say(ust, t('upgrade_failed', b.rom_version || b.version || '', b.reason || m.action), 'bad');
    }
    load();
  }, null);
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, 3000);
  return () => { stop(); clearInterval(timer); };
}
