// arduino.js - what the console shows and asks for arduino products
// (ESP8266 Arduino core: sketches, Tasmota, ESPHome; docs/arduino.md): the
// fleet's settings at creation and on the product page (PUT
// /v1/products/ID/arduino), the URL the devices are given, the badges of a
// release file (x-MD5, gzip saving, signature form) and the fields a device
// reports at each check-in (its x-ESP8266-* headers).
import { t } from './i18n.js';
import * as api from './api.js';
import { h, field, statusLine, say, fmtTime, fmtBytes } from './ui.js';

export function isArduino(p) { return !!p && p.platform === 'arduino'; }

const CORES = ['2.4', '2.5', '2.6', '2.7', '3.0', '3.1'];
const MODES = ['qio', 'qout', 'dio', 'dout'];
const SECONDS_MAX = 30 * 86400;

// The fleet's fields, filled from settings p (a product's JSON, or {} for
// the defaults). read() returns the REST body or throws Error(sentence) for
// a value fotad would refuse anyway or that must not leave the browser.
export function fleetFields(p) {
  p = p || {};
  const gzip = h('input', { type: 'checkbox', name: 'gzip', checked: !!p.gzip });
  const gzipRow = h('div', { class: 'field check' }, h('label', {}, gzip, ' ', t('ard_gzip')));
  const core = field(t('ard_core'), h('select', { name: 'arduino_core' },
    CORES.map((c) => h('option', { value: c, selected: c === (p.arduino_core || '3.1') }, c))), t('ard_core_help'));
  const mode = field(t('ard_flash_mode'), h('select', { name: 'flash_mode' },
    h('option', { value: '' }, t('ard_flash_first')),
    MODES.map((m) => h('option', { value: m, selected: m === p.flash_mode }, m))));
  const key = field(t('ard_signing_key'), h('textarea', { name: 'signing_key', rows: 4, spellcheck: 'false',
    placeholder: '-----BEGIN PUBLIC KEY-----' }), t('ard_signing_help'));
  const checkin = field(t('ard_checkin'), h('input', { name: 'checkin_interval', type: 'number', min: 1, max: SECONDS_MAX }),
    t('ard_checkin_help'));
  const confirm = field(t('ard_confirm'), h('input', { name: 'confirm_after', type: 'number', min: 0, max: SECONDS_MAX }),
    t('ard_confirm_help'));
  // The fields from settings q (the product's JSON).
  function fill(q) {
    gzip.checked = !!q.gzip;
    core.input.value = q.arduino_core || '3.1';
    mode.input.value = q.flash_mode || '';
    key.input.value = q.signing_key || '';
    checkin.input.value = String(q.checkin_interval || 3600);
    confirm.input.value = String(q.confirm_after ?? 60);
  }
  fill(p);

  function seconds(f, lo, what) {
    const v = f.input.value.trim();
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < lo || n > SECONDS_MAX) { f.input.focus(); throw new Error(t('ard_seconds_bad', what, lo)); }
    return n;
  }
  function read() {
    const pem = key.input.value.trim();
    // A private key never leaves the browser: the product takes the public one.
    if (/PRIVATE KEY-----/.test(pem)) { key.input.focus(); throw new Error(t('ard_private_key')); }
    if (pem && !/-----BEGIN (RSA )?PUBLIC KEY-----/.test(pem)) { key.input.focus(); throw new Error(t('ard_not_public')); }
    return {
      gzip: gzip.checked,
      arduino_core: core.input.value,
      flash_mode: mode.input.value || null,
      signing_key: pem ? pem + '\n' : null,
      checkin_interval: seconds(checkin, 1, t('ard_checkin')),
      confirm_after: seconds(confirm, 0, t('ard_confirm')),
    };
  }
  return { rows: [gzipRow, core.row, mode.row, checkin.row, confirm.row, key.row], read, fill };
}

// The URL a sketch, Tasmota's OtaUrl or ESPHome is given.
export function deviceUrl(productKey) {
  return location.origin + '/v1/arduino/' + productKey + '/firmware.bin';
}

export function urlLine(productKey) {
  const url = deviceUrl(productKey);
  const copy = h('button', { type: 'button', class: 'link', 'aria-label': t('copy'), title: t('copy'),
    onclick: () => navigator.clipboard && navigator.clipboard.writeText(url) }, '⧉');
  return h('p', { class: 'pkey' }, t('ard_url'), ' ', h('code', { class: 'key', id: 'device-url' }, url), ' ', copy,
    ' ', h('small', { class: 'muted' }, t('ard_url_help')));
}

// The fleet settings card of a product page: the fields, Save (PUT).
// Returns { form, update(p) }: update refills the fields from a fresh
// product (the first release sets its flash mode) unless they are being
// edited.
export function settingsCard(product, onSaved) {
  const f = fleetFields(product);
  const st = statusLine();
  st.id = 'arduino-settings-status';
  const form = h('form', { class: 'card', id: 'arduino-settings', novalidate: true },
    h('h3', {}, t('ard_settings')), h('div', { class: 'fields' }, f.rows.slice(0, 5)), f.rows[5],
    h('button', { type: 'submit', class: 'primary' }, t('ard_save')), st);
  let dirty = false;
  form.addEventListener('input', () => { dirty = true; });
  form.addEventListener('change', () => { dirty = true; });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let body;
    try { body = f.read(); } catch (err) { say(st, t('error', err.message), 'bad'); return; }
    try {
      await api.put('/v1/products/' + product.id + '/arduino', body);
      dirty = false;
      say(st, t('ard_saved'), 'good');
      onSaved();
    } catch (err) { say(st, t('error', err.message), 'bad'); }
  });
  return { form, update(p) { if (!dirty) f.fill(p); } };
}

// Badges of one release file: the x-MD5 it is served with, the gzip
// container's saving, the signature form.
export function fileBadges(f) {
  const out = [];
  if (f.md5) {
    out.push(h('span', { class: 'badge md5', 'data-badge': 'md5', title: t('badge_md5_title', f.md5) },
      'MD5 ', h('code', {}, String(f.md5).slice(0, 8))));
  }
  const gs = f.gzip_saving;
  if (gs && typeof gs.percent === 'number') {
    out.push(h('span', { class: 'badge gzip', 'data-badge': 'gzip',
      title: t('badge_gzip_title', fmtBytes(gs.gzip), fmtBytes(gs.image), fmtBytes(gs.bytes)) },
    t('badge_gzip', gs.percent)));
  } else if (f.gzip) {
    out.push(h('span', { class: 'badge gzip', 'data-badge': 'gzip' }, 'gzip'));
  }
  if (f.signature && f.signature !== 'none') {
    out.push(h('span', { class: 'badge signed', 'data-badge': 'signature' },
      t('badge_signed', t('sig_' + f.signature))));
  }
  if (f.image && f.image.flash_mode) {
    out.push(h('span', { class: 'badge flash', 'data-badge': 'flash' },
      f.image.flash_mode + ' · ' + fmtBytes(f.image.flash_size)));
  }
  return out;
}

// The check-in fields of an arduino device as [label, value] rows.
export function deviceRows(d) {
  const a = d.arduino;
  if (!a) return [];
  const up = a.upgrade;
  return [
    [t('dev_chip_id'), a.chip_id ?? '—'],
    [t('dev_sta_mac'), a.sta_mac || '—'],
    [t('dev_ap_mac'), a.ap_mac || '—'],
    [t('dev_version_string'), a.version || '—'],
    [t('dev_sketch_md5'), h('code', { id: 'sketch-md5' }, a.sketch_md5 || '—')],
    [t('dev_sketch_size'), fmtBytes(a.sketch_size) + ' (' + a.sketch_size + ' B)'],
    [t('dev_free_space'), fmtBytes(a.free_space)],
    [t('dev_chip_size'), fmtBytes(a.chip_size)],
    [t('dev_sdk'), a.sdk_version || '—'],
    [t('dev_last_checkin'), fmtTime(a.last_checkin)],
    [t('dev_upgrade'), up ? t('dev_upgrade_line', up.target, fmtTime(up.served_at)) : '—'],
    ...(a.pin ? [[t('dev_pin'), t('dev_pin_line', a.pin.version, a.pin.current)]] : []),
    // a Tasmota device seen over MQTT: its topic, its LWT, the version its INFO1 said
    ...(a.mqtt ? [[t('dev_mqtt'), h('span', { id: 'device-mqtt' }, t('dev_mqtt_line', a.mqtt.topic,
      a.mqtt.lwt || '—', a.mqtt.version || '—', fmtTime(a.mqtt.seen)))]] : []),
  ];
}

// The Tasmota fleet's MQTT broker (GET|PUT /v1/products/ID/mqtt, the mqtt
// module): URL, user name and a write-only password (fotad never shows it:
// password_set says whether there is one; an empty field keeps it), the
// connection's state, the counters and the Tasmota topics seen. Returns
// { form, refresh }.
export function mqttCard(product) {
  const url = field(t('mq_url'), h('input', { name: 'url', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'mqtt://broker.lan:1883' }), t('mq_url_help'));
  const user = field(t('mq_user'), h('input', { name: 'username', autocomplete: 'off' }));
  const pass = field(t('mq_pass'), h('input', { name: 'password', type: 'password', autocomplete: 'new-password' }));
  const clearPass = h('input', { type: 'checkbox', name: 'clear_password' });
  const clearRow = h('div', { class: 'field check', hidden: true }, h('label', {}, clearPass, ' ', t('mq_clear_pass')));
  const state = h('div', { id: 'mqtt-state', class: 'mqtt-state' });
  const topics = h('tbody');
  const table = h('table', { class: 'grid', id: 'mqtt-devices', hidden: true },
    h('thead', {}, h('tr', {}, [t('mq_topic'), t('device'), 'LWT', t('version'), t('mq_seen')]
      .map((k) => h('th', { scope: 'col' }, k)))), topics);
  const st = statusLine();
  st.id = 'mqtt-status';
  const remove = h('button', { type: 'button', class: 'danger', id: 'mqtt-remove', hidden: true }, t('mq_remove'));
  const form = h('form', { class: 'card', id: 'mqtt-settings', novalidate: true },
    h('h3', {}, t('mq_title')), h('p', { class: 'help' }, t('mq_help')),
    h('div', { class: 'fields' }, url.row, user.row, pass.row), clearRow,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('mq_save')), remove), st,
    state, h('div', { class: 'scroll' }, table));
  let dirty = false;
  form.addEventListener('input', () => { dirty = true; });

  function render(m, fill) {
    if (fill) {
      url.input.value = (m && m.url) || '';
      user.input.value = (m && m.username) || '';
      pass.input.value = '';
      clearPass.checked = false;
      dirty = false;
    }
    pass.input.placeholder = m && m.password_set ? t('mq_pass_set') : '';
    clearRow.hidden = !(m && m.password_set);
    remove.hidden = !m;
    if (!m) {
      state.replaceChildren(h('p', { class: 'muted' }, t('mq_none')));
      table.hidden = true;
      return;
    }
    const lines = [h('span', { class: 'badge ' + (m.connected ? 'on' : 'off'), 'data-connected': String(!!m.connected) },
      m.connected ? t('mq_connected') : t('mq_disconnected')),
    m.error ? [' ', h('span', { class: 'bad', id: 'mqtt-error' }, m.error)] : '',
    m.since ? [' ', h('small', { class: 'muted' }, t('mq_since', fmtTime(m.since)))] : ''];
    state.replaceChildren(h('p', {}, lines),
      h('p', { class: 'muted', id: 'mqtt-counts' }, t('mq_counts', m.triggered || 0, m.confirmed || 0, m.failed || 0)),
      m.public_url ? '' : h('p', { class: 'help bad', id: 'mqtt-no-public-url' }, t('mq_no_public_url')));
    const devs = m.devices || [];
    table.hidden = !devs.length;
    topics.replaceChildren(...devs.map((d) => h('tr', {},
      h('td', {}, h('code', {}, d.topic)),
      h('td', {}, d.device_id ? h('a', { href: '#/devices/' + d.device_id }, '#' + d.device_id) : '—'),
      h('td', {}, d.lwt || '—'), h('td', {}, d.version || '—'), h('td', {}, fmtTime(d.seen)))));
  }

  async function refresh(fill) {
    try {
      const r = await api.get('/v1/products/' + product.id + '/mqtt');
      render(r.body.mqtt, fill || !dirty);
    } catch (e) { say(st, t('error', e.message), 'bad'); }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const u = url.input.value.trim();
    if (!/^mqtts?:\/\/[^/\s]+$/.test(u)) { url.input.focus(); say(st, t('error', t('mq_url_bad')), 'bad'); return; }
    const body = { url: u, username: user.input.value.trim() || null };
    // write-only: an empty field keeps the stored password, the box clears it
    if (pass.input.value) body.password = pass.input.value;
    else if (clearPass.checked) body.password = null;
    try {
      const r = await api.put('/v1/products/' + product.id + '/mqtt', body);
      say(st, t('mq_saved'), 'good');
      render(r.body.mqtt, true);
    } catch (err) { say(st, t('error', err.message), 'bad'); }
  });
  remove.addEventListener('click', async () => {
    if (!window.confirm(t('mq_confirm_remove', product.name))) return;
    try {
      const r = await api.put('/v1/products/' + product.id + '/mqtt', { url: null });
      say(st, t('mq_removed'), 'good');
      render(r.body.mqtt, true);
    } catch (err) { say(st, t('error', err.message), 'bad'); }
  });
  refresh(true);
  return { form, refresh: () => refresh(false) };
}
