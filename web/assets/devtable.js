// devtable.js - a product's devices, paged by fotad (GET
// /v1/products/ID/devices/?limit=&cursor=&sort=&q=&tag=&version=&online=,
// docs/api.md): a search, filters by version, online state and tag, sortable
// columns, a page size, Previous / Next through the server's cursors (kept
// for the way back) and "1–50 of 20,000". Only the page on screen is ever
// fetched, so a fleet of any size costs the same.
import { t } from './i18n.js';
import * as api from './api.js';
import { h, field, fmtTime, fmtNum, rememberDevices } from './ui.js';

const SORTABLE = { id: 'id', name: 'name', rom_version: 'version', last_active: 'last_active' };

export function deviceTable(productId, { slotText, onlineBadge }) {
  const tbody = h('tbody');
  const q = h('input', { type: 'search', id: 'device-search', autocomplete: 'off', maxlength: 63,
    placeholder: t('search_placeholder') });
  const version = h('select', { id: 'device-version', name: 'version' });
  const online = h('select', { id: 'device-online', name: 'online' },
    h('option', { value: '' }, t('any')), h('option', { value: 'true' }, t('online')),
    h('option', { value: 'false' }, t('offline')));
  const tag = h('select', { id: 'device-tag', name: 'tag' });
  const size = h('select', { id: 'device-page-size', name: 'limit' },
    [25, 50, 100, 200].map((n) => h('option', { value: n, selected: n === 50 }, n)));
  const info = h('p', { class: 'muted', id: 'devices-info', role: 'status' });
  const prev = h('button', { type: 'button', class: 'secondary', id: 'devices-prev' }, t('prev_page'));
  const next = h('button', { type: 'button', class: 'secondary', id: 'devices-next' }, t('next_page'));
  const heads = ['id', 'name', 'rom_version', 'slot', 'status', 'last_active'].map((k) => {
    if (!SORTABLE[k]) return h('th', { scope: 'col' }, t(k));
    const b = h('button', { type: 'button', class: 'sort', 'data-sort': SORTABLE[k] }, t(k));
    b.addEventListener('click', () => {
      sort = sort === SORTABLE[k] ? '-' + SORTABLE[k] : SORTABLE[k];
      restart();
    });
    return h('th', { scope: 'col', 'data-col': SORTABLE[k] }, b);
  });
  const table = h('table', { class: 'grid', id: 'devices' }, h('thead', {}, h('tr', {}, heads)), tbody);

  let sort = 'id';
  let cursors = [null];   // cursors[i]: the cursor of page i (null: the first)
  let page = 0, nextCursor = null, total = null, shown = 0, seq = 0;

  function query(cursor) {
    const p = new URLSearchParams({ limit: size.value, sort });
    if (q.value.trim()) p.set('q', q.value.trim());
    if (version.value !== '*') p.set('version', version.value);
    if (online.value) p.set('online', online.value);
    if (tag.value) p.set('tag', tag.value);
    if (cursor) p.set('cursor', cursor);
    else p.set('total', 'true');
    return '/v1/products/' + productId + '/devices/?' + p.toString();
  }

  function row(d) {
    return h('tr', { 'data-device': d.id },
      h('td', {}, d.id),
      h('td', {}, h('a', { href: '#/devices/' + d.id }, d.name || ('#' + d.id)),
        (d.tags || []).length ? [' ', ...(d.tags || []).map((x) => h('span', { class: 'badge tag' }, x))] : ''),
      h('td', {}, d.rom_version || t('unknown_version')),
      h('td', {}, slotText(d.running_slot || d.slot)),
      h('td', {}, onlineBadge(d)),
      h('td', {}, fmtTime(d.last_active)));
  }

  function renderHeads() {
    for (const th of heads) {
      const key = th.dataset.col;
      if (!key) continue;
      th.setAttribute('aria-sort', sort === key ? 'ascending' : sort === '-' + key ? 'descending' : 'none');
    }
  }

  // Loads the page `page` (its cursor from the stack); quiet: a refresh.
  async function load() {
    const my = ++seq;
    try {
      const r = await api.get(query(cursors[page]));
      if (my !== seq) return;   // a newer request went out meanwhile
      const list = r.body.devices || [];
      rememberDevices(list);
      if (r.body.total !== null && r.body.total !== undefined) total = r.body.total;
      nextCursor = r.body.next_cursor || null;
      shown = list.length;
      tbody.replaceChildren(...list.map(row));
      if (!list.length) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, t('none'))));
      const first = page * Number(size.value);
      info.textContent = list.length ? t('devices_range', fmtNum(first + 1), fmtNum(first + list.length),
        total === null ? '?' : fmtNum(total)) : '';
      prev.disabled = page === 0;
      next.disabled = !nextCursor;
      table.dataset.page = String(page + 1);
      renderHeads();
    } catch (e) {
      if (my === seq) info.textContent = t('error', e.message);
    }
  }

  function restart() { cursors = [null]; page = 0; total = null; load(); }

  prev.addEventListener('click', () => { if (page > 0) { page -= 1; load(); } });
  next.addEventListener('click', () => {
    if (!nextCursor) return;
    cursors[page + 1] = nextCursor;
    page += 1;
    load();
  });
  let typing = null;
  q.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(restart, 250); });
  for (const s of [version, online, tag, size]) s.addEventListener('change', restart);

  // The version filter offers what the overview counted; the tag filter
  // the product's tags.
  function setVersions(vs) {
    const keep = version.value || '*';
    version.replaceChildren(h('option', { value: '*' }, t('any')),
      ...vs.map((v) => h('option', { value: v.version }, (v.version || t('unknown_version')) + ' (' + fmtNum(v.devices) + ')')));
    version.value = [...version.options].some((o) => o.value === keep) ? keep : '*';
  }
  async function loadTags() {
    try {
      const r = await api.get('/v1/products/' + productId + '/tags/');
      const keep = tag.value;
      tag.replaceChildren(h('option', { value: '' }, t('any')),
        ...(r.body.tags || []).map((x) => h('option', { value: x.tag }, x.tag + ' (' + fmtNum(x.devices) + ')')));
      tag.value = keep;
    } catch (e) { /* no tags: the filter stays at any */ }
  }
  setVersions([]);
  tag.append(h('option', { value: '' }, t('any')));

  const filters = h('div', { class: 'fields filters' },
    field(t('search_devices'), q).row, field(t('rom_version'), version).row,
    field(t('status'), online).row, field(t('tag'), tag).row, field(t('page_size'), size).row);
  const section = h('div', { class: 'device-table' }, filters,
    h('div', { class: 'scroll' }, table), h('div', { class: 'pager' }, prev, info, next));
  return {
    section, setVersions,
    reload() { loadTags(); restart(); },
    refresh() { if (!document.hidden) load(); },
    count() { return shown; },
  };
}
