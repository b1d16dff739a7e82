// rollout.js - the product page's "Roll out" panel: a rollout of a version
// to the product's fleet (POST /v1/rollouts/: version, only devices on a
// given version, with a tag, only online ones, reboot after success, how
// many at once, and its stages: sizes, success threshold, approval, failures
// that pause it, health time, maintenance window) and the product's rollouts
// with live counters and their stage (GET /v1/rollouts/, asked again every
// second while one of them is live) and a Cancel button (POST
// /v1/rollouts/ID/cancel). docs/api.md, "Rollouts".
import { t } from './i18n.js';
import * as api from './api.js';
import { h, field, statusLine, say, fmtTime } from './ui.js';

function counts(j) {
  const parts = [t('ro_upgraded', j.succeeded, j.total)];
  if (j.in_progress) parts.push(t('ro_in_progress', j.in_progress));
  if (j.waiting) parts.push(t('ro_waiting', j.waiting));
  if (j.queued) parts.push(t('ro_queued', j.queued));
  if (j.failed) parts.push(t('ro_failed', j.failed));
  if (j.timed_out) parts.push(t('ro_timed_out', j.timed_out));
  if (j.deleted) parts.push(t('ro_deleted', j.deleted));
  if (j.cancelled) parts.push(t('ro_cancelled', j.cancelled));
  if (j.halted) parts.push(t('ro_halted', j.max_failures));
  if (Array.isArray(j.stages) && j.stages.length > 1) parts.push(t('ro_stage_of', j.stage, j.stages.length));
  return parts.join(' · ');
}

const LIVE = ['running', 'awaiting_approval', 'paused', 'cancelling'];

// The stages field: "1%, 10%, 100%", "5, 50%" or "@3+4, 100%" (a share of the
// selected devices, a count, or device ids joined by "+"), as fotactl's
// --stages; success (null: the server's default) goes into each. The list of
// stage objects, [] for an empty field, or null when it does not parse.
export function parseStages(text, success) {
  const out = [];
  const parts = text.split(',').map((x) => x.trim());
  if (parts.length === 1 && parts[0] === '') return out;
  for (const p of parts) {
    let g;
    if (/^@\d+(\+\d+)*$/.test(p)) g = { device_ids: p.slice(1).split('+').map(Number) };
    else if (/^\d+\s*%$/.test(p)) g = { percent: parseInt(p, 10) };
    else if (/^\d+$/.test(p)) g = { count: parseInt(p, 10) };
    else return null;
    if ((g.percent !== undefined && (g.percent < 1 || g.percent > 100)) || g.count === 0 ||
        (g.device_ids && g.device_ids.some((x) => x < 1))) return null;
    if (success !== null) g.success = success;
    out.push(g);
  }
  return out.length > 15 ? null : out;
}

// One rollout; a running one has a Cancel button (after a confirmation;
// devices already pushed finish on their own).
function rolloutItem(j, reload, st) {
  const bar = h('progress', { max: Math.max(1, j.total), value: j.succeeded, 'aria-hidden': 'true' });
  const over = j.state === 'finished' || j.state === 'cancelled';
  const kind = over ? (j.succeeded === j.total ? 'good' : 'bad') : '';
  let cancel = '';
  if (LIVE.includes(j.state) && j.state !== 'cancelling') {
    cancel = h('button', { type: 'button', class: 'danger', 'data-cancel-rollout': j.id }, t('ro_cancel'));
    cancel.addEventListener('click', async () => {
      if (!window.confirm(t('ro_confirm_cancel', j.id, j.version))) return;
      try {
        const r = await api.post('/v1/rollouts/' + j.id + '/cancel');
        say(st, t('ro_cancelled_now', j.id, r.body.cancelled_now), 'good');
      } catch (e) { say(st, t('error', e.message), 'bad'); }
      reload();
    });
  }
  return h('li', { class: 'rollout', 'data-rollout': j.id, 'data-state': j.state },
    h('div', {}, h('a', { href: '#/rollouts/' + j.id, class: 'strong' }, t('ro_title', j.id, j.version)), ' ',
      h('span', { class: 'badge ' + (over || j.state === 'interrupted' ? 'off' : 'on') }, t('ro_state_' + j.state)), ' ',
      h('small', { class: 'muted' }, fmtTime(j.created)), ' ', cancel),
    bar, h('p', { class: 'counts', 'data-kind': kind }, counts(j)));
}

// The panel; versions() gives the product's release versions (newest first).
export function rolloutPanel(productId, versions) {
  const version = field(t('version'), h('select', { name: 'version', id: 'rollout-version' }));
  const from = field(t('ro_from'), h('select', { name: 'from', id: 'rollout-from' }), t('ro_from_help'));
  const tag = field(t('ro_tag'), h('input', { type: 'text', name: 'tag', id: 'rollout-tag', maxlength: 64,
    autocomplete: 'off' }), t('ro_tag_help'));
  const online = h('input', { type: 'checkbox', name: 'online', id: 'rollout-online' });
  const stages = field(t('ro_stages'), h('input', { type: 'text', name: 'stages', id: 'rollout-stages',
    placeholder: '1%, 10%, 100%', autocomplete: 'off' }), t('ro_stages_help'));
  const success = field(t('ro_success'), h('input', { type: 'number', name: 'success', min: 0, max: 100,
    id: 'rollout-success', placeholder: '100' }), t('ro_success_help'));
  const approval = h('input', { type: 'checkbox', name: 'approval', id: 'rollout-approval' });
  const health = field(t('ro_health'), h('input', { type: 'number', name: 'health', min: 0, max: 86400,
    id: 'rollout-health', placeholder: '0' }), t('ro_health_help'));
  const hoursFrom = field(t('ro_hours_from'), h('input', { type: 'time', name: 'hours_from', id: 'rollout-hours-from' }),
    t('ro_hours_help'));
  const hoursTo = field(t('ro_hours_to'), h('input', { type: 'time', name: 'hours_to', id: 'rollout-hours-to' }));
  const reboot = h('input', { type: 'checkbox', name: 'reboot', id: 'rollout-reboot', checked: true });
  const win = field(t('ro_window'), h('input', { type: 'number', name: 'window', min: 1, max: 100000, value: 512,
    id: 'rollout-window' }), t('ro_window_help'));
  const maxFail = field(t('ro_max_fail'), h('input', { type: 'number', name: 'max_failures', min: 0, max: 100000,
    id: 'rollout-max-failures', placeholder: '—' }), t('ro_max_fail_help'));
  const st = statusLine();
  st.id = 'rollout-status';
  const list = h('ul', { class: 'rollouts', id: 'rollouts' });
  const form = h('form', { class: 'card', id: 'rollout-form', novalidate: true },
    h('h3', {}, t('rollout')), h('p', { class: 'help' }, t('ro_help')),
    h('div', { class: 'fields' }, version.row, from.row, tag.row, win.row, maxFail.row),
    h('p', {}, h('label', {}, online, ' ', t('ro_online'))),
    h('p', {}, h('label', {}, reboot, ' ', t('ro_reboot'))),
    h('fieldset', { id: 'rollout-staging' }, h('legend', {}, t('ro_staging')),
      h('div', { class: 'fields' }, stages.row, success.row, health.row, hoursFrom.row, hoursTo.row),
      h('p', {}, h('label', {}, approval, ' ', t('ro_approval')))),
    h('button', { type: 'submit', class: 'primary' }, t('rollout_start')), st);

  function fillVersions() {
    const vs = versions();
    const keep = [version.input.value, from.input.value];
    version.input.replaceChildren(...vs.map((v) => h('option', { value: v }, v)));
    from.input.replaceChildren(h('option', { value: '' }, t('ro_any')), ...vs.map((v) => h('option', { value: v }, v)));
    if (vs.includes(keep[0])) version.input.value = keep[0];
    if (vs.includes(keep[1])) from.input.value = keep[1];
    form.querySelector('button[type=submit]').disabled = !vs.length;
  }

  let timer = null, gone = false;
  async function loadRollouts() {
    clearTimeout(timer);
    timer = null;
    if (gone) return;
    let running = false;
    try {
      const r = await api.get('/v1/rollouts/?product_id=' + encodeURIComponent(productId));
      const mine = r.body.rollouts || [];
      list.replaceChildren(...mine.map((j) => rolloutItem(j, loadRollouts, st)));
      if (!mine.length) list.append(h('li', { class: 'muted' }, t('none')));
      running = mine.some((j) => LIVE.includes(j.state));
    } catch (e) { say(st, t('error', e.message), 'bad'); }
    if (running && !gone) timer = setTimeout(loadRollouts, 1000);   // live while one runs
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = version.input.value;
    if (!v) return;
    const filter = {};
    if (from.input.value) filter.rom_version = from.input.value;
    if (tag.input.value.trim()) filter.tag = tag.input.value.trim();
    if (online.checked) filter.online = true;
    const n = Number(win.input.value);
    if (!Number.isInteger(n) || n < 1 || n > 100000) { win.input.focus(); say(st, t('ro_window_bad'), 'bad'); return; }
    const body = { product_id: Number(productId), version: v, filter, reboot: reboot.checked, window: n };
    if (maxFail.input.value.trim() !== '') {
      const m = Number(maxFail.input.value);
      if (!Number.isInteger(m) || m < 0 || m > 100000) { maxFail.input.focus(); say(st, t('ro_max_fail_bad'), 'bad'); return; }
      body.max_failures = m;
    }
    let pct = null;
    if (success.input.value.trim() !== '') {
      pct = Number(success.input.value);
      if (!Number.isInteger(pct) || pct < 0 || pct > 100) { success.input.focus(); say(st, t('ro_success_bad'), 'bad'); return; }
    }
    const list = parseStages(stages.input.value, pct);
    if (list === null) { stages.input.focus(); say(st, t('ro_stages_bad'), 'bad'); return; }
    if (list.length) body.stages = list;
    else if (pct !== null) { stages.input.focus(); say(st, t('ro_success_alone'), 'bad'); return; }
    if (approval.checked) body.approval = true;
    if (health.input.value.trim() !== '') {
      const s = Number(health.input.value);
      if (!Number.isInteger(s) || s < 0 || s > 86400) { health.input.focus(); say(st, t('ro_health_bad'), 'bad'); return; }
      body.health = s;
    }
    const hf = hoursFrom.input.value, ht = hoursTo.input.value;
    if (hf || ht) {
      if (!hf || !ht || hf === ht) { (hf ? hoursTo : hoursFrom).input.focus(); say(st, t('ro_hours_bad'), 'bad'); return; }
      body.hours = { from: hf, to: ht };
    }
    if (!window.confirm(list.length ? t('ro_confirm_stages', v, list.length) : t('ro_confirm', v))) return;
    try {
      const r = await api.post('/v1/rollouts/', body);
      const j = r.body.rollout || {};
      say(st, t('ro_started', j.id, j.total, j.skipped), 'good');
      loadRollouts();
    } catch (err) { say(st, t('error', err.message), 'bad'); }
  });

  const panel = h('section', { 'aria-labelledby': 'ro-h' }, h('h2', { id: 'ro-h' }, t('rollouts')), list, form);
  return {
    panel,
    refresh() { fillVersions(); loadRollouts(); },
    stop() { gone = true; clearTimeout(timer); },
  };
}
