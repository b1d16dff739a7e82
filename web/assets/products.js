// products.js - the product table (seed §4.3 "产品管理": Id, Name, Serial,
// current version, Status, Description, Activated / Total, created) and the
// create-product form (its
// platform: Espressif NONOS, or the ESP8266 Arduino core with the fleet's
// settings, arduino.js).
import { t } from './i18n.js';
import * as api from './api.js';
import { h, field, statusLine, say, sayNote, fmtTime } from './ui.js';
import { fleetFields, isArduino } from './arduino.js';

export function num(p, ...names) {
  for (const n of names) if (p[n] !== undefined && p[n] !== null) return p[n];
  return 0;
}

function productRow(p) {
  return h('tr', { 'data-product': p.id },
    h('td', {}, p.id),
    h('td', {}, h('a', { href: '#/products/' + p.id }, p.name),
      isArduino(p) ? [' ', h('span', { class: 'badge platform' }, 'Arduino')] : ''),
    h('td', {}, p.serial ? h('code', {}, p.serial) : ''),
    h('td', { 'data-col': 'current' }, p.current_version || h('span', { class: 'muted' }, '—')),
    h('td', {}, p.status || ''),
    h('td', {}, p.description || ''),
    h('td', { class: 'num' }, num(p, 'devices_activated', 'activated'), ' / ', num(p, 'devices_total', 'total')),
    h('td', { class: 'num' }, p.created ? fmtTime(p.created) : ''));
}

export function productsView(root) {
  const st = statusLine();
  st.id = 'products-status';
  sayNote(st);
  const tbody = h('tbody');
  const table = h('table', { class: 'grid', id: 'products' },
    h('caption', { class: 'sr-only' }, t('products')),
    h('thead', {}, h('tr', {},
      ['id', 'name', 'serial', 'current', 'status', 'description', 'activated_total', 'created'].map((k) => h('th', { scope: 'col' }, t(k))))),
    tbody);

  async function load() {
    try {
      const r = await api.get('/v1/products/');
      const list = r.body.products || [];
      tbody.replaceChildren(...list.map(productRow));
      if (!list.length) tbody.append(h('tr', {}, h('td', { colspan: 8, class: 'muted' }, t('none'))));
    } catch (e) { say(st, t('error', e.message), 'bad'); }
  }

  const name = field(t('name'), h('input', { name: 'name', required: true, maxlength: 63, autocomplete: 'off' }));
  const serial = field(t('serial'), h('input', { name: 'serial', maxlength: 63, autocomplete: 'off' }));
  const desc = field(t('description'), h('input', { name: 'description', maxlength: 1000, autocomplete: 'off' }));
  const fm = field(t('flash_map'), h('select', { name: 'flash_map' },
    [['0', '0: 512 KB (256+256)'], ['2', '2: 1024 KB (512+512)'], ['3', '3: 2048 KB (512+512)'],
     ['4', '4: 4096 KB (512+512)'], ['5', '5: 2048 KB (1024+1024)'], ['6', '6: 4096 KB (1024+1024)'],
     ['8', '8: 8192 KB (1024+1024)'], ['9', '9: 16384 KB (1024+1024)']]
      .map(([v, l]) => h('option', { value: v, selected: v === '2' }, l))));
  const platform = field(t('platform'), h('select', { name: 'platform' },
    h('option', { value: 'nonos' }, t('platform_nonos')), h('option', { value: 'arduino' }, t('platform_arduino'))));
  let fleet = fleetFields({});
  const fleetBox = h('fieldset', { id: 'arduino-fleet', hidden: true }, h('legend', {}, t('fleet')),
    h('div', { class: 'fields' }, fleet.rows.slice(0, 5)), fleet.rows[5]);
  // The flash map is a NONOS fact; an arduino product has its fleet instead.
  platform.input.addEventListener('change', () => {
    const ard = platform.input.value === 'arduino';
    fleetBox.hidden = !ard;
    fm.row.hidden = ard;
  });
  const fst = statusLine();
  const form = h('form', { class: 'card', id: 'create-product' },
    h('h2', {}, t('create_product')),
    h('div', { class: 'fields' }, name.row, platform.row, serial.row, desc.row, fm.row), fleetBox,
    h('button', { type: 'submit', class: 'primary' }, t('create')), fst);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { name: name.input.value.trim(), description: desc.input.value.trim() };
    if (platform.input.value === 'arduino') {
      try { Object.assign(body, { platform: 'arduino' }, fleet.read()); } catch (err) { say(fst, t('error', err.message), 'bad'); return; }
    } else {
      body.flash_map = Number(fm.input.value);
    }
    if (serial.input.value.trim()) body.serial = serial.input.value.trim();
    try {
      const r = await api.post('/v1/products/', body);
      const p = r.body.product || {};
      say(fst, t('created_product', p.name || body.name), 'good');
      form.reset();
      fleetBox.hidden = true;
      fm.row.hidden = false;
      const fresh = fleetFields({});
      fleetBox.replaceChildren(h('legend', {}, t('fleet')), h('div', { class: 'fields' }, fresh.rows.slice(0, 5)), fresh.rows[5]);
      fleet = fresh;
      load();
    } catch (err) { say(fst, t('error', err.message), 'bad'); }
  });

  root.append(h('h1', {}, t('products')), st, h('div', { class: 'scroll' }, table), form);
  load();
}
