// messages.js - the message feed (seed §4.3 "消息"): the newest messages,
// then live ones as fotad emits them (server-sent events), optionally for one product.
import { t } from './i18n.js';
import * as api from './api.js';
import { h, field, messageItem, rememberDevices, rememberProducts, statusLine, say } from './ui.js';

export function messagesView(root) {
  const list = h('ul', { class: 'feed', id: 'messages', 'aria-live': 'polite' });
  const live = h('span', { class: 'badge off', id: 'live-state' }, t('reconnecting'));
  const st = statusLine();
  const sel = field(t('filter_product'), h('select', { name: 'product' }, h('option', { value: '' }, t('all_products'))));
  const seen = new Set();
  let stop = null;
  let before = null;   // paging cursor (next_before of the last page)
  const more = h('button', { type: 'button', class: 'secondary', id: 'older', hidden: true }, t('older'));
  more.addEventListener('click', async () => {
    const q = sel.input.value ? { product_id: sel.input.value } : {};
    try {
      const r = await api.get('/v1/messages/?' + new URLSearchParams({ ...q, limit: '50', before }).toString());
      for (const m of r.body.messages || []) add(m, false);
      before = r.body.next_before || null;
      more.hidden = !before;
    } catch (e) { say(st, t('error', e.message), 'bad'); }
  });

  function add(m, atTop) {
    if (m.id !== undefined && seen.has(String(m.id))) return;
    if (m.id !== undefined) seen.add(String(m.id));
    const li = messageItem(m);
    const empty = list.querySelector('.empty');
    if (empty) empty.remove();
    if (atTop) list.prepend(li); else list.append(li);
  }

  async function start() {
    if (stop) stop();
    seen.clear();
    list.replaceChildren();
    const q = sel.input.value ? { product_id: sel.input.value } : {};
    try {
      const r = await api.get('/v1/messages/?' + new URLSearchParams({ ...q, limit: '50' }).toString());
      for (const m of r.body.messages || []) add(m, false);
      before = r.body.next_before || null;
      more.hidden = !before;
      if (!list.children.length) list.append(h('li', { class: 'muted empty' }, t('none')));
    } catch (e) { say(st, t('error', e.message), 'bad'); }
    const newest = Math.max(0, ...[...seen].map(Number).filter(Number.isFinite));
    stop = api.follow(newest ? { ...q, after: newest } : q, (m) => add(m, true), (s) => {
      live.textContent = s === 'live' ? t('live') : t('reconnecting');
      live.className = 'badge ' + (s === 'live' ? 'on' : 'off');
    });
  }

  // Names first, so messages say "device foo" rather than "device 7": the
  // products, and the devices seen most recently (one page, whatever the
  // fleet's size; the others are named by id).
  async function names() {
    try {
      const r = await api.get('/v1/products/');
      rememberProducts(r.body.products);
      for (const p of r.body.products || []) sel.input.append(h('option', { value: p.id }, p.name));
      const d = await api.get('/v1/devices/?limit=1000&sort=-last_active&total=false');
      rememberDevices(d.body.devices);
    } catch (e) { /* the list still works without names */ }
  }

  sel.input.addEventListener('change', start);
  root.append(h('h1', {}, t('feed'), ' ', live), st, h('form', { class: 'inline', onsubmit: (e) => e.preventDefault() }, sel.row), list, more);
  let closed = false;
  names().then(() => { if (!closed) start(); });
  return () => { closed = true; if (stop) stop(); };
}
