// overview.js - the top of a product's page: its fleet at a glance from
// GET /v1/products/ID/overview (aggregated by the store, never a device
// list): devices, online, offline, downloads per minute, upgrades and
// failures in the range, the versions the devices run (a bar chart with the
// online ones inside, and the same numbers as a list), the upgrades,
// failures and downloads over time (a chart), and the product's live
// rollouts with their progress (links to their pages). Refreshed every 10 s
// while the tab is visible; charts by charts.js.
import { t } from './i18n.js';
import * as api from './api.js';
import { h, say, statusLine, fmtNum } from './ui.js';
import { barChart, timeChart } from './charts.js';

const RANGES = ['1h', '6h', '24h', '7d', '30d'];
const TOP = 8;   // versions charted one by one; the rest as "other"
const LIVE = ['running', 'awaiting_approval', 'paused', 'cancelling'];

function stat(id, label, value, kind) {
  return h('div', { class: 'stat' + (kind ? ' ' + kind : ''), 'data-stat': id },
    h('span', { class: 'stat-value' }, value), h('span', { class: 'stat-label' }, label));
}

export function overviewPanel(productId, onVersions) {
  const st = statusLine();
  const stats = h('div', { class: 'stats', id: 'overview-stats' });
  const range = h('select', { id: 'overview-range', name: 'range' },
    RANGES.map((r) => h('option', { value: r, selected: r === '24h' }, t('range_' + r))));
  const rangeLabel = h('label', { for: 'overview-range' }, t('ov_range'));
  const verChart = h('div', { class: 'chart', id: 'chart-versions', role: 'img' });
  const verList = h('ul', { class: 'legend', id: 'versions-legend' });
  const actChart = h('div', { class: 'chart', id: 'chart-activity', role: 'img' });
  const actNote = h('p', { class: 'help', id: 'activity-note' });
  const rollouts = h('ul', { class: 'live-rollouts', id: 'live-rollouts' });
  const panel = h('section', { class: 'overview', id: 'overview', 'aria-labelledby': 'ov-h' },
    h('div', { class: 'overview-head' }, h('h2', { id: 'ov-h' }, t('ov_title')),
      h('span', { class: 'range' }, rangeLabel, ' ', range)),
    stats, st,
    h('div', { class: 'charts' },
      h('figure', { class: 'card' }, h('figcaption', {}, t('ov_versions')), verChart, verList),
      h('figure', { class: 'card' }, h('figcaption', {}, t('ov_activity')), actChart, actNote)),
    h('h3', {}, t('ov_live_rollouts')), rollouts);

  let data = null;

  function renderStats(o) {
    const pct = o.devices ? Math.round((o.online * 1000) / o.devices) / 10 : 0;
    stats.replaceChildren(
      stat('devices', t('ov_devices'), fmtNum(o.devices)),
      stat('online', t('ov_online', pct), fmtNum(o.online), 'good'),
      stat('offline', t('offline'), fmtNum(o.offline)),
      stat('dpm', t('ov_dpm'), fmtNum(Math.round(o.downloads_per_minute * 10) / 10)),
      stat('upgraded', t('ov_upgraded', t('range_' + range.value)), fmtNum(o.totals.upgraded), 'good'),
      stat('failed', t('ov_failed', t('range_' + range.value)), fmtNum(o.totals.failed), o.totals.failed ? 'bad' : ''));
  }

  function renderVersions(o) {
    const vs = o.versions.slice(0, TOP);
    const rest = o.versions.slice(TOP);
    const rows = vs.map((v) => ({ label: v.version || t('unknown_version'), version: v.version, devices: v.devices, online: v.online }));
    if (rest.length) {
      rows.push({ label: t('ov_other', rest.length), version: null,
        devices: rest.reduce((a, v) => a + v.devices, 0), online: rest.reduce((a, v) => a + v.online, 0) });
    }
    verList.replaceChildren(...rows.map((r) => h('li', { 'data-version': r.version ?? '' },
      h('span', { class: 'swatch' }), h('strong', {}, r.label), ' ',
      t('ov_version_line', fmtNum(r.devices), o.devices ? (Math.round((r.devices * 1000) / o.devices) / 10) : 0, fmtNum(r.online)),
      r.version === o.current_version && r.version ? [' ', h('span', { class: 'badge current' }, t('current'))] : '')));
    if (!rows.length) verList.append(h('li', { class: 'muted' }, t('none')));
    verChart.setAttribute('aria-label', t('ov_versions') + ': ' + rows.map((r) => r.label + ' ' + r.devices).join(', '));
    barChart(verChart, rows.map((r) => r.label), [
      { label: t('ov_devices'), values: rows.map((r) => r.devices), color: '--accent' },
      { label: t('online'), values: rows.map((r) => r.online), color: '--good' },
    ]);
  }

  function renderActivity(o) {
    const a = o.activity;
    actNote.textContent = t('ov_activity_note', fmtNum(o.totals.upgraded), fmtNum(o.totals.failed),
      fmtNum(o.totals.downloads), Math.round(a.step / 60));
    actChart.setAttribute('aria-label', actNote.textContent);
    timeChart(actChart, a.t, [
      { label: t('ov_s_upgraded'), values: a.upgraded, color: '--good', bars: true },
      { label: t('ov_s_failed'), values: a.failed, color: '--bad', bars: true },
      { label: t('ov_s_downloads'), values: a.downloads, color: '--accent' },
    ]);
  }

  async function loadRollouts() {
    try {
      const r = await api.get('/v1/rollouts/?product_id=' + encodeURIComponent(productId));
      const live = (r.body.rollouts || []).filter((j) => LIVE.includes(j.state));
      rollouts.replaceChildren(...live.map((j) => h('li', { 'data-rollout': j.id },
        h('a', { href: '#/rollouts/' + j.id }, t('ro_title', j.id, j.version)), ' ',
        h('span', { class: 'badge on' }, t('ro_state_' + j.state)), ' ',
        h('progress', { max: Math.max(1, j.total), value: j.succeeded, 'aria-hidden': 'true' }), ' ',
        h('small', {}, t('ro_upgraded', j.succeeded, j.total)))));
      if (!live.length) rollouts.append(h('li', { class: 'muted' }, t('ov_no_rollouts')));
    } catch (e) { /* the panel below says it */ }
  }

  let busy = false;
  async function load() {
    if (busy) return;
    busy = true;
    try {
      const r = await api.get('/v1/products/' + productId + '/overview?range=' + range.value);
      const o = r.body.overview;
      const changed = !data || JSON.stringify(data.versions) !== JSON.stringify(o.versions) ||
        JSON.stringify(data.activity) !== JSON.stringify(o.activity);
      data = o;
      renderStats(o);
      if (changed) { renderVersions(o); renderActivity(o); }
      if (onVersions) onVersions(o.versions);
      panel.dataset.loaded = 'true';
      say(st, '');
    } catch (e) { say(st, t('error', e.message), 'bad'); }
    busy = false;
    loadRollouts();
  }
  range.addEventListener('change', () => { data = null; load(); });
  const timer = setInterval(() => { if (!document.hidden) load(); }, 10000);
  return { panel, load, stop() { clearInterval(timer); } };
}
