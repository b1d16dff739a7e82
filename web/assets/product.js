// product.js - one product: its fleet at a glance (overview.js: counts,
// versions and activity charts, live rollouts), its devices paged by the
// server (devtable.js), its ROM releases (current one marked, "Set as
// current version" behind a confirmation), the Release form (version,
// codename, changelog, up to 10 files added with "+", uploaded with progress;
// the server's refusal shown next to the file it names), and its devices
// (version, slot, online, last active; "Add device" shows the keys once),
// and its rollouts (rollout.js). An arduino product (arduino.js) takes
// firmware.bin and firmware-minimal.bin, shows each file's badges (x-MD5,
// gzip saving, signature), the URL its devices are given and its fleet
// settings.
import { t } from './i18n.js';
import * as api from './api.js';
import { h, field, statusLine, say, sayNote, fmtTime, fmtBytes, uid } from './ui.js';
import { num } from './products.js';
import { rolloutPanel } from './rollout.js';
import { overviewPanel } from './overview.js';
import { deviceTable } from './devtable.js';
import { isArduino, fileBadges, settingsCard, urlLine, mqttCard } from './arduino.js';

const MAX_FILES = 10;

export function slotText(s) { return s ? t('slot_user', s) : '—'; }

export function onlineBadge(d) {
  return h('span', { class: 'badge ' + (d.online ? 'on' : 'off') }, d.online ? t('online') : t('offline'));
}

function releaseItem(rom, product, reload) {
  const files = (rom.files || []).map((f) => h('li', { 'data-file': f.name },
    h('code', {}, f.name), ' ', h('small', { class: 'muted' }, fmtBytes(f.size),
      f.slot ? ' · ' + slotText(f.slot) : '', f.sha256 && !f.md5 ? ' · ' + String(f.sha256).slice(0, 12) : ''),
    f.md5 ? [' ', h('span', { class: 'badges' }, fileBadges(f))] : ''));
  const st = statusLine();
  let action = null;
  if (rom.current) {
    action = h('span', { class: 'badge current' }, t('current'));
  } else {
    action = h('button', { type: 'button', class: 'secondary', 'data-set-current': rom.version }, t('set_current'));
    action.addEventListener('click', async () => {
      if (!window.confirm(t('confirm_current', rom.version, product.name))) return;
      try {
        await api.post('/v1/products/' + product.id + '/roms/' + encodeURIComponent(rom.version) + '/current');
        say(st, t('now_current', rom.version), 'good');
        reload(t('now_current', rom.version));
      } catch (e) { say(st, t('error', e.message), 'bad'); }
    });
  }
  // Delete: fotad refuses (409) the current release of a product with devices
  // and a release a running rollout pushes; its reason shows here.
  const del = h('button', { type: 'button', class: 'danger', 'data-delete-release': rom.version }, t('delete_release'));
  del.addEventListener('click', async () => {
    if (!window.confirm(t('confirm_delete_release', rom.version, product.name))) return;
    try {
      await api.del('/v1/products/' + product.id + '/roms/' + encodeURIComponent(rom.version) + '/');
      reload(t('deleted_release', rom.version));
    } catch (e) { say(st, t('error', e.message), 'bad'); }
  });
  return h('li', { class: 'release' + (rom.current ? ' is-current' : ''), 'data-version': rom.version },
    h('div', { class: 'release-head' }, h('strong', {}, rom.version), ' ', action, ' ', del),
    h('div', { class: 'muted' }, [rom.codename ? t('codename') + ': ' + rom.codename : '', rom.created ? fmtTime(rom.created) : '']
      .filter(Boolean).join(' · ')),
    rom.changelog ? h('p', { class: 'changelog' }, rom.changelog) : '',
    h('ul', { class: 'files' }, files), st);
}

// The release form. Each file row: input, remove button, and an error slot
// the server's reason lands in when it names that file. An arduino product
// has two fixed rows instead: firmware.bin (required) and
// firmware-minimal.bin (optional), uploaded under those names.
function releaseForm(product, onDone) {
  const arduino = isArduino(product);
  const version = field(t('version'), h('input', { name: 'version', required: true, maxlength: 63,
    placeholder: 'v1.1', autocomplete: 'off' }));
  const listId = uid('codenames');
  const codename = field(t('codename'), h('input', { name: 'codename', maxlength: 63, placeholder: 'beta',
    autocomplete: 'off', list: listId }), t('codename_help'));
  codename.row.append(h('datalist', { id: listId }, ['beta', 'stable', 'test', 'dev'].map((c) => h('option', { value: c }))));
  const changelog = field(t('changelog'), h('textarea', { name: 'changelog', rows: 3, maxlength: 8000 }));
  const rows = h('ol', { class: 'file-rows' });
  const add = h('button', { type: 'button', class: 'secondary', id: 'add-file', 'aria-label': t('add_file'),
    title: t('add_file') }, '+');
  const progress = h('progress', { max: 100, value: 0, hidden: true });
  const st = statusLine();
  const legend = h('legend', {}, t('files'));
  const help = h('small', { class: 'help' }, arduino ? t('ard_files_help') : t('files_help'));

  function renumber() {
    [...rows.children].forEach((li, i) => {
      li.querySelector('label').textContent = t('file_n', i + 1);
      li.querySelector('.remove').setAttribute('aria-label', t('remove_file', i + 1));
    });
    add.disabled = rows.children.length >= MAX_FILES;
  }
  function addRow() {
    if (rows.children.length >= MAX_FILES) return null;
    const id = uid('file');
    // multiple: user1.bin and user2.bin chosen together in one dialog
    const input = h('input', { type: 'file', id, name: 'file', multiple: true, accept: '.bin,application/octet-stream' });
    const err = h('span', { class: 'file-error', role: 'alert' });
    input.setAttribute('aria-describedby', id + '-err');
    err.id = id + '-err';
    const rm = h('button', { type: 'button', class: 'link remove' }, '×');
    const li = h('li', { class: 'file-row' }, h('label', { for: id }), input, rm, err);
    input.addEventListener('change', () => { err.textContent = ''; li.classList.remove('refused'); });
    rm.addEventListener('click', () => {
      if (rows.children.length > 1) { li.remove(); renumber(); add.focus(); } else { input.value = ''; }
    });
    rows.append(li);
    renumber();
    return input;
  }
  // An arduino row: a fixed label, the name it is uploaded under.
  function kindRow(kind, label) {
    const id = uid('file');
    const input = h('input', { type: 'file', id, name: kind, accept: '.bin,.gz,application/octet-stream', 'data-kind': kind });
    const err = h('span', { class: 'file-error', role: 'alert' });
    input.setAttribute('aria-describedby', id + '-err');
    err.id = id + '-err';
    const li = h('li', { class: 'file-row', 'data-kind': kind }, h('label', { for: id }, label), input, err);
    input.addEventListener('change', () => { err.textContent = ''; li.classList.remove('refused'); });
    rows.append(li);
  }
  if (arduino) {
    kindRow('firmware.bin', t('ard_firmware'));
    kindRow('firmware-minimal.bin', t('ard_minimal'));
    add.hidden = true;
  } else {
    add.addEventListener('click', () => { const i = addRow(); if (i) i.focus(); });
    addRow();
  }

  // Finds the row whose chosen file the server's refusal names: an explicit
  // "file" field, else the file name mentioned first in the message.
  function rowFor(body) {
    const named = body.file || body.filename || '';
    const text = [body.message || '', body.error || ''].join(' ');
    let best = null, at = Infinity;
    if (arduino) {
      // fotad's reasons start with the file's name: "firmware.bin: ..."
      const m = /^(firmware(-minimal)?\.bin)(\.gz)?:/.exec(text.trim());
      return m ? rows.querySelector('li[data-kind="' + m[1] + '"]') : null;
    }
    for (const li of rows.children) {
      for (const f of li.querySelector('input').files) {
        if (named && named === f.name) return li;
        const i = text.indexOf(f.name);
        if (i >= 0 && i < at) { best = li; at = i; }
      }
    }
    return best;
  }

  const form = h('form', { class: 'card', id: 'release-form', novalidate: true },
    h('h3', {}, t('release')),
    h('div', { class: 'fields' }, version.row, codename.row),
    changelog.row,
    h('fieldset', {}, legend, help, rows, add),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, t('save')), progress),
    st);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    for (const li of rows.children) { li.classList.remove('refused'); li.querySelector('.file-error').textContent = ''; }
    if (!version.input.value.trim()) { version.input.focus(); return; }
    const fd = new FormData();
    fd.append('version', version.input.value.trim());
    if (codename.input.value.trim()) fd.append('codename', codename.input.value.trim());
    if (changelog.input.value.trim()) fd.append('changelog', changelog.input.value.trim());
    let n = 0;
    for (const li of rows.children) {
      for (const f of li.querySelector('input').files) {
        // arduino: the part's name says which file it is; fotad looks at the content for gzip
        if (arduino) fd.append(li.dataset.kind, f, li.dataset.kind + (/\.gz$/i.test(f.name) ? '.gz' : ''));
        else fd.append('file', f, f.name);
        n += 1;
      }
    }
    if (n > MAX_FILES) { say(st, t('too_many_files', MAX_FILES), 'bad'); return; }
    if (arduino && !rows.firstChild.querySelector('input').files[0]) {
      say(st, t('ard_no_firmware'), 'bad');
      rows.firstChild.querySelector('input').focus();
      return;
    }
    if (!n) { say(st, t('no_files'), 'bad'); return; }
    progress.hidden = false; progress.value = 0;
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    say(st, t('uploading', 0));
    try {
      await api.upload('/v1/products/' + product.id + '/roms/', fd, (p) => {
        progress.value = Math.round(p * 100);
        say(st, t('uploading', Math.round(p * 100)));
      });
      say(st, t('released', version.input.value.trim()), 'good');
      form.reset();
      if (!arduino) {
        while (rows.children.length > 1) rows.lastChild.remove();
        renumber();
      }
      onDone();
    } catch (err) {
      const li = rowFor(err.body);
      if (li) {
        li.classList.add('refused');
        li.querySelector('.file-error').textContent = err.message;
        li.querySelector('input').focus();
        say(st, t('error', err.message), 'bad');
      } else {
        say(st, t('error', err.message), 'bad');
      }
    } finally {
      progress.hidden = true;
      submit.disabled = false;
    }
  });
  return form;
}

function keysPanel(r) {
  const d = r.device || {};
  const copy = (text) => h('button', { type: 'button', class: 'link', onclick: () => navigator.clipboard && navigator.clipboard.writeText(text) }, '⧉');
  const bin = h('button', { type: 'button', class: 'secondary' }, t('download_bin'));
  bin.addEventListener('click', () => api.download('/v1/devices/' + d.id + '/master_device_key.bin', 'master_device_key.bin'));
  return h('div', { class: 'card keys', id: 'device-keys', role: 'alert' },
    h('p', {}, t('keys_once', d.name || d.id)),
    h('dl', {},
      h('dt', {}, t('master_key')), h('dd', {}, h('code', { class: 'key', 'data-key': 'master' }, r.master_device_key || ''), ' ', copy(r.master_device_key || '')),
      h('dt', {}, t('owner_key')), h('dd', {}, h('code', { class: 'key', 'data-key': 'owner' }, r.owner_key || ''), ' ', copy(r.owner_key || ''))),
    bin);
}

export function productView(root, id) {
  const st = statusLine();
  st.id = 'product-status';
  sayNote(st);
  const title = h('h1', {}, t('product'), ' ', id);
  const meta = h('p', { class: 'muted' });
  const pkey = h('p', { class: 'pkey' });
  const releases = h('ul', { class: 'releases', id: 'releases' });
  const keysSlot = h('div');
  const formSlot = h('div');        // the release form, once the platform is known
  const urlSlot = h('div');         // an arduino product's device URL
  const settingsSlot = h('div');    // and its fleet settings
  let built = false;
  let settings = null;              // an arduino product's settings card
  let mqtt = null;                  // and its MQTT broker card
  let product = { id, name: String(id) };
  let versions = [];
  const ro = rolloutPanel(id, () => versions);

  async function loadReleases(note) {
    try {
      const r = await api.get('/v1/products/' + id + '/roms/');
      if (typeof note === 'string') say(st, note, 'good');
      const list = r.body.roms || r.body.releases || [];
      releases.replaceChildren(...list.map((rom) => releaseItem(rom, product, loadReleases)));
      if (!list.length) releases.append(h('li', { class: 'muted' }, t('none')));
      versions = list.map((rom) => rom.version);
      ro.refresh();
    } catch (e) { say(st, t('error', e.message), 'bad'); }
  }
  // The devices: one page at a time from the server; the overview's
  // version counts feed its version filter.
  const devices = deviceTable(id, { slotText, onlineBadge });
  const overview = overviewPanel(id, (vs) => devices.setVersions(vs));
  let lastDevLoad = 0;
  function loadDevices(first) {
    lastDevLoad = Date.now();
    if (first) devices.reload(); else devices.refresh();
  }
  async function load() {
    try {
      const r = await api.get('/v1/products/' + id + '/');
      product = r.body.product || product;
      if (r.body.product_key) {
        pkey.replaceChildren(t('product_key'), ' ', h('code', { class: 'key', id: 'product-key' }, r.body.product_key),
          ' ', h('small', { class: 'muted' }, isArduino(product) ? t('ard_key_help') : t('product_key_help')));
      }
      title.textContent = product.name;
      const ard = isArduino(product);
      meta.textContent = [t('id') + ' ' + product.id, product.serial ? t('serial') + ' ' + product.serial : '',
        product.status || '', ard ? t('platform_arduino') : t('flash_map') + ' ' + (product.flash_map ?? '?'),
        t('activated_total') + ' ' + num(product, 'devices_activated', 'activated') + ' / ' + num(product, 'devices_total', 'total')]
        .filter(Boolean).join(' · ');
      if (!built) {
        built = true;
        // after an upload the product changes too (an arduino fleet's flash mode)
        formSlot.replaceChildren(releaseForm(product, load));
        if (ard) {
          settings = settingsCard(product, () => load());
          mqtt = mqttCard(product);
          settingsSlot.replaceChildren(settings.form, mqtt.form);
          if (r.body.product_key) urlSlot.replaceChildren(urlLine(r.body.product_key));
        }
      } else if (settings) {
        settings.update(product);
      }
    } catch (e) { say(st, t('error', e.message), 'bad'); return; }
    loadReleases();
  }

  const name = field(t('name'), h('input', { name: 'name', required: true, maxlength: 63, autocomplete: 'off' }));
  const bssid = field(t('bssid'), h('input', { name: 'bssid', maxlength: 17, placeholder: '18:fe:34:00:00:01',
    pattern: '([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}', autocomplete: 'off' }));
  const dst = statusLine();
  const devForm = h('form', { class: 'card', id: 'add-device' }, h('h3', {}, t('add_device')),
    h('div', { class: 'fields' }, name.row, bssid.row), h('button', { type: 'submit', class: 'primary' }, t('add_device')), dst);
  devForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { name: name.input.value.trim() };
    if (bssid.input.value.trim()) body.bssid = bssid.input.value.trim().toLowerCase();
    try {
      const r = await api.post('/v1/products/' + id + '/devices/', body);
      say(dst, '');
      keysSlot.replaceChildren(keysPanel(r.body));
      devForm.reset();
      loadDevices();
      overview.load();
    } catch (err) { say(dst, t('error', err.message), 'bad'); }
  });

  // Delete product: fotad refuses (409, with the counts) while it has
  // devices or releases; the reason shows in the page's status line.
  const delProduct = h('button', { type: 'button', class: 'danger', id: 'delete-product' }, t('delete_product'));
  delProduct.addEventListener('click', async () => {
    if (!window.confirm(t('confirm_delete_product', product.name))) return;
    try {
      await api.del('/v1/products/' + id + '/');
      sessionStorage.setItem('fota.note', t('deleted_product', product.name));
      location.hash = '#/products';
    } catch (e) { say(st, t('error', e.message), 'bad'); }
  });

  root.append(
    h('p', {}, h('a', { href: '#/products' }, '← ', t('products'))),
    title, meta, pkey, urlSlot, h('p', {}, delProduct), st,
    overview.panel,
    h('section', { 'aria-labelledby': 'dev-h' }, h('h2', { id: 'dev-h' }, t('devices')), devices.section),
    h('div', { class: 'cols' },
      h('section', { 'aria-labelledby': 'rel-h' }, h('h2', { id: 'rel-h' }, t('releases')), releases,
        formSlot),
      h('section', { 'aria-label': t('add_device') }, keysSlot, devForm, settingsSlot)),
    ro.panel);
  load();
  overview.load();
  loadDevices(true);
  // Messages refresh the page of devices (at most every 2 s); online state
  // and last activity change without a message, so also look every 5 s.
  const stop = api.follow({ product_id: id }, () => {
    if (Date.now() - lastDevLoad >= 2000) loadDevices();
  }, null);
  const timer = setInterval(() => {
    if (!document.hidden && Date.now() - lastDevLoad >= 4900) {
      loadDevices();
      if (mqtt) mqtt.refresh();
    }
  }, 5000);
  return () => { stop(); clearInterval(timer); ro.stop(); overview.stop(); };
}
