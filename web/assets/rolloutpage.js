// rolloutpage.js - one rollout (#/rollouts/ID): its settings and counters
// (GET /v1/rollouts/ID/), its stages when it has them (each with its state,
// threshold and counts; Approve, Pause, Resume, Roll back and Cancel as its
// state allows), its progress over time (GET /v1/rollouts/ID/progress, a
// chart) and its members one page at a time (GET
// /v1/rollouts/ID/devices/?limit=&cursor=&state=), each by its device's name
// (GET /v1/devices/ID/ for the ids of a page not seen before, in parallel:
// the device lists select by ids only in a JSON filter). Refreshed every 2 s
// while it is live.
import { t } from './i18n.js';
import * as api from './api.js';
import { h, field, statusLine, say, fmtTime, fmtNum } from './ui.js';
import { timeChart } from './charts.js';
import { stateText } from './device.js';

const LIVE = ['running', 'awaiting_approval', 'paused', 'cancelling'];
const MEMBER_STATES = ['waiting', 'queued', 'delivered', 'acked', 'verifying', 'done', 'failed', 'timeout',
  'deleted', 'cancelled'];

function counters(j) {
  const keys = ['total', 'succeeded', 'in_progress', 'waiting', 'queued', 'verifying', 'failed', 'timed_out',
    'cancelled', 'deleted', 'skipped'];
  return h('dl', { class: 'info counters', id: 'rollout-counters' },
    keys.filter((k) => j[k] !== undefined).flatMap((k) => [h('dt', {}, t('rc_' + k)),
      h('dd', { 'data-count': k }, fmtNum(j[k]))]));
}

function stagesTable(j) {
  if (!Array.isArray(j.stages) || !j.stages.length) return h('p', { class: 'muted' }, t('rs_single'));
  const size = (s) => (s.kind === 'percent' ? s.percent + ' %' : s.kind === 'count' ? fmtNum(s.count) :
    s.kind === 'devices' ? t('rs_listed', fmtNum(s.listed)) : t('rs_' + s.kind));
  return h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'rollout-stages' },
    h('thead', {}, h('tr', {}, ['rs_stage', 'rs_size', 'state', 'rs_success', 'rc_total', 'rc_succeeded', 'rc_failed',
      'rs_started'].map((k) => h('th', { scope: 'col' }, t(k))))),
    h('tbody', {}, j.stages.map((s) => h('tr', { 'data-stage': s.stage, 'data-state': s.state,
      class: s.stage === j.stage ? 'current' : '' },
    h('td', {}, s.stage), h('td', {}, size(s)),
    h('td', {}, h('span', { class: 'badge state-' + s.state }, t('rs_state_' + s.state))),
    h('td', {}, s.success + ' %', s.approval ? [' · ', t('rs_approval')] : ''),
    h('td', {}, fmtNum(s.total)), h('td', {}, fmtNum(s.succeeded)), h('td', {}, fmtNum((s.failed || 0) + (s.timed_out || 0))),
    h('td', {}, s.started ? fmtTime(s.started) : '—'))))));
}

export function rolloutView(root, id) {
  const st = statusLine();
  st.id = 'rollout-page-status';
  const title = h('h1', {}, t('ro_title', id, ''));
  const meta = h('p', { class: 'muted', id: 'rollout-meta' });
  const back = h('a', { href: '#/products' }, '← ', t('product'));
  const actions = h('p', { class: 'actions', id: 'rollout-actions' });
  const made = h('p', { id: 'rollout-rollbacks' });
  const bar = h('progress', { max: 1, value: 0, id: 'rollout-bar' });
  const countSlot = h('div');
  const stageSlot = h('div');
  const chart = h('div', { class: 'chart', id: 'chart-progress', role: 'img' });
  const chartNote = h('p', { class: 'help', id: 'progress-note' });
  const mbody = h('tbody');
  const mstate = h('select', { id: 'member-state', name: 'state' }, h('option', { value: '' }, t('any')),
    MEMBER_STATES.map((s) => h('option', { value: s }, stateText(s))));
  const stateRow = field(t('state'), mstate).row;
  const prev = h('button', { type: 'button', class: 'secondary', id: 'members-prev' }, t('prev_page'));
  const next = h('button', { type: 'button', class: 'secondary', id: 'members-next' }, t('next_page'));
  const minfo = h('span', { class: 'muted', id: 'members-info' });
  let rollout = null, cursors = [null], page = 0, nextCursor = null, timer = null, gone = false;
  const names = new Map();   // device id -> its name ('' when it is gone or unnamed)
  const LIMIT = 50;

  // A button posting to /v1/rollouts/ID/<name>; done names the status
  // line's text (default rp_done_<name>). A rollback links the rollouts it
  // made.
  function action(name, label, kind, confirmText, body, done) {
    const b = h('button', { type: 'button', class: kind, 'data-action': done || name }, label);
    b.addEventListener('click', async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      try {
        const r = await api.post('/v1/rollouts/' + id + '/' + name, body);
        say(st, t(done || 'rp_done_' + name, id), 'good');
        if (name === 'rollback') {
          made.replaceChildren(t('rp_rollbacks'), ' ', ...(r.body.rollouts || []).flatMap((x, i) =>
            [i ? ', ' : '', h('a', { href: '#/rollouts/' + x.id, 'data-rollout': x.id }, t('ro_title', x.id, x.version))]));
        }
      } catch (e) { say(st, t('error', e.message), 'bad'); }
      load();
    });
    return b;
  }

  function renderActions(j) {
    const staged = Array.isArray(j.stages);
    const list = [];
    if (staged && j.state === 'awaiting_approval') list.push(action('approve', t('rp_approve'), 'primary', t('rp_confirm_approve', j.stage)));
    if (staged && (j.state === 'running' || j.state === 'awaiting_approval')) list.push(action('pause', t('rp_pause'), 'secondary'));
    if (staged && j.state === 'paused') list.push(action('resume', t('rp_resume'), 'primary'));
    if (staged && j.failed + j.timed_out > 0 && !j.rollback_of) {
      list.push(action('rollback', t('rp_rollback'), 'danger', t('rp_confirm_rollback', id, j.failed + j.timed_out), { devices: 'failed' }));
    }
    const upgraded = (j.succeeded || 0) + (j.verifying || 0);
    if (staged && upgraded > 0 && !j.rollback_of) {
      list.push(action('rollback', t('rp_rollback_upgraded'), 'danger', t('rp_confirm_rollback_upgraded', id, upgraded),
        { devices: 'upgraded' }, 'rp_done_rollback_upgraded'));
    }
    if (LIVE.includes(j.state) && j.state !== 'cancelling') list.push(action('cancel', t('ro_cancel'), 'danger', t('ro_confirm_cancel', id, j.version)));
    actions.replaceChildren(...list.flatMap((b) => [b, ' ']));
  }

  async function loadProgress() {
    try {
      const r = await api.get('/v1/rollouts/' + id + '/progress');
      const p = r.body.progress || [];
      const col = (k) => p.map((x) => x[k] || 0);
      chartNote.textContent = t('rp_progress_note', p.length);
      await timeChart(chart, col('t'), [
        { label: t('rc_succeeded'), values: col('succeeded'), color: '--good' },
        { label: t('rc_failed'), values: p.map((x) => (x.failed || 0) + (x.timed_out || 0)), color: '--bad' },
        { label: t('rc_in_progress'), values: col('in_progress'), color: '--accent' },
      ]);
      chart.hidden = false;
    } catch (e) {
      chart.hidden = true;
      chartNote.textContent = e.status === 404 ? t('rp_no_progress') : t('error', e.message);
    }
  }

  // The names of the ids not looked up yet, all at once; a device deleted
  // since (404) keeps its id only.
  async function lookUpNames(ids) {
    const want = [...new Set(ids)].filter((x) => !names.has(x));
    const got = await Promise.allSettled(want.map((x) => api.get('/v1/devices/' + x + '/')));
    got.forEach((g, i) => {
      if (g.status === 'fulfilled') names.set(want[i], (g.value.body.device || g.value.body).name || '');
      else if (g.reason && g.reason.status === 404) names.set(want[i], '');
    });
  }

  async function loadMembers() {
    const q = new URLSearchParams({ limit: String(LIMIT) });
    if (cursors[page]) q.set('cursor', cursors[page]);
    if (mstate.value) q.set('state', mstate.value);
    try {
      const r = await api.get('/v1/rollouts/' + id + '/devices/?' + q.toString());
      const list = r.body.devices || [];
      nextCursor = r.body.next_cursor || null;
      await lookUpNames(list.map((m) => m.device_id));
      mbody.replaceChildren(...list.map((m) => h('tr', { 'data-device': m.device_id, 'data-state': m.state },
        h('td', {}, h('a', { href: '#/devices/' + m.device_id, class: 'member-name' }, names.get(m.device_id) || '#' + m.device_id),
          names.get(m.device_id) ? [' ', h('small', { class: 'muted' }, '#' + m.device_id)] : ''),
        h('td', {}, m.stage ?? ''),
        h('td', {}, h('span', { class: 'badge state-' + m.state }, stateText(m.state)),
          m.reason ? [' ', h('small', {}, t('rp_reason_' + m.reason) === 'rp_reason_' + m.reason ? m.reason : t('rp_reason_' + m.reason))] : ''),
        h('td', {}, m.pre_version || ''),
        h('td', {}, fmtTime(m.updated)))));
      if (!list.length) mbody.append(h('tr', {}, h('td', { colspan: 5, class: 'muted' }, t('none'))));
      minfo.textContent = list.length ? t('rp_members_range', fmtNum(page * LIMIT + 1), fmtNum(page * LIMIT + list.length)) : '';
      prev.disabled = page === 0;
      next.disabled = !nextCursor;
    } catch (e) { say(st, t('error', e.message), 'bad'); }
  }

  async function load() {
    clearTimeout(timer);
    try {
      const r = await api.get('/v1/rollouts/' + id + '/');
      const j = r.body.rollout;
      rollout = j;
      title.textContent = t('ro_title', j.id, j.version);
      back.href = '#/products/' + j.product_id;
      meta.replaceChildren(...[h('span', { class: 'badge ' + (LIVE.includes(j.state) ? 'on' : 'off'), id: 'rollout-state' },
        t('ro_state_' + j.state)), ' ', t('rp_meta', fmtTime(j.created), fmtNum(j.window), j.timeout,
        j.max_failures === null || j.max_failures === undefined ? '—' : j.max_failures),
      j.health ? [' · ', t('rp_health', fmtNum(j.health))] : '',
      j.hours ? [' · ', t('rp_hours', j.hours.from, j.hours.to, t(j.hours.open ? 'rp_hours_open' : 'rp_hours_closed'))] : '',
      j.rollback_of ? [' · ', h('a', { href: '#/rollouts/' + j.rollback_of, id: 'rollout-rolls-back' }, t('rp_rollback_of', j.rollback_of))] : '',
      j.paused && j.paused.reason ? [' · ', h('span', { id: 'rollout-paused' }, t('rp_paused', j.paused.reason))] : ''].flat());
      bar.max = Math.max(1, j.total);
      bar.value = j.succeeded;
      countSlot.replaceChildren(counters(j));
      stageSlot.replaceChildren(stagesTable(j));
      stateRow.hidden = !Array.isArray(j.stages);
      renderActions(j);
    } catch (e) { say(st, t('error', e.message), 'bad'); return; }
    loadProgress();
    loadMembers();
    if (!gone && LIVE.includes(rollout.state)) timer = setTimeout(() => { if (!document.hidden) load(); else timer = setTimeout(load, 2000); }, 2000);
  }

  prev.addEventListener('click', () => { if (page > 0) { page -= 1; loadMembers(); } });
  next.addEventListener('click', () => { if (nextCursor) { cursors[page + 1] = nextCursor; page += 1; loadMembers(); } });
  mstate.addEventListener('change', () => { cursors = [null]; page = 0; loadMembers(); });

  root.append(h('p', {}, back), title, meta, actions, st, made, bar, countSlot,
    h('section', { 'aria-labelledby': 'rs-h' }, h('h2', { id: 'rs-h' }, t('rp_stages')), stageSlot),
    h('figure', { class: 'card' }, h('figcaption', {}, t('rp_progress')), chart, chartNote),
    h('section', { 'aria-labelledby': 'rm-h' }, h('h2', { id: 'rm-h' }, t('rp_members')), stateRow,
      h('div', { class: 'scroll' }, h('table', { class: 'grid', id: 'rollout-members' },
        h('thead', {}, h('tr', {}, ['device', 'rs_stage', 'state', 'rp_pre_version', 'when'].map((k) => h('th', { scope: 'col' }, t(k))))),
        mbody)),
      h('div', { class: 'pager' }, prev, minfo, next)));
  load();
  return () => { gone = true; clearTimeout(timer); };
}
