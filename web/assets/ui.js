// ui.js - small DOM helpers shared by the views. Text always goes in as text
// nodes (never innerHTML), so names and messages from devices cannot inject markup.
import { t, getLang } from './i18n.js';

// h('button', { class: 'x', onclick: fn }, 'label', child…)
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

let seq = 0;
export function uid(prefix) { seq += 1; return (prefix || 'f') + seq; }

// A labelled form field: returns { row, input }.
export function field(label, input, help) {
  input.id = input.id || uid('in');
  const kids = [h('label', { for: input.id }, label), input];
  if (help) {
    const hid = uid('help');
    input.setAttribute('aria-describedby', hid);
    kids.push(h('small', { id: hid, class: 'help' }, help));
  }
  return { row: h('div', { class: 'field' }, kids), input };
}

// A status line for a section (role=status so screen readers hear it).
export function statusLine(cls) { return h('p', { class: 'status ' + (cls || ''), role: 'status', 'aria-live': 'polite' }); }
export function say(el, text, kind) { el.textContent = text || ''; el.dataset.kind = kind || ''; }
// A note left for the next page by a view that navigated away (e.g. "Device x
// deleted."): shown once in el.
export function sayNote(el) {
  const n = sessionStorage.getItem('fota.note');
  if (n) { sessionStorage.removeItem('fota.note'); say(el, n, 'good'); }
}

export function fmtTime(sec) {
  if (!sec) return t('never');
  const d = new Date(sec * 1000);
  return d.toLocaleString(getLang() === 'zh' ? 'zh-CN' : 'en');
}

export function fmtNum(n) {
  return Number(n || 0).toLocaleString(getLang() === 'zh' ? 'zh-CN' : 'en');
}

export function fmtBytes(n) {
  if (n === undefined || n === null) return '';
  if (n < 1024) return n + ' B';
  if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
  return (n / 1048576).toFixed(2) + ' MiB';
}

// Device names seen so far, so a message can say "device foo" not "device 7".
export const deviceNames = new Map();
export const productNames = new Map();
export function rememberProducts(list) { for (const p of list || []) if (p && p.id) productNames.set(String(p.id), p.name); }
export function rememberDevices(list) { for (const d of list || []) if (d && d.id) deviceNames.set(String(d.id), d.name); }

function bodyOf(m) {
  if (m.body && typeof m.body === 'object') return m.body;
  if (typeof m.body === 'string') { try { return JSON.parse(m.body); } catch (e) { return { text: m.body }; } }
  return {};
}

// The human sentence for a message row of the API (seed §4.3: "设备 X 有版本 v1.1 更新").
export function messageText(m) {
  const b = bodyOf(m);
  const dev = m.device_name || b.device_name || b.device || deviceNames.get(String(m.device_id)) ||
              (m.device_id ? t('device_x', m.device_id) : t('all_products'));
  const ver = b.version || b.rom_version || b.to || '';
  const a = String(m.action || '');
  if (a === 'rom_released') {
    const pn = productNames.get(String(m.product_id));
    return (pn ? pn + ': ' : '') + t('msg_released', ver, b.files || '?');
  }
  if (/update_available|rom_update|new_version/.test(a)) return t('msg_update', dev, ver);
  if (/fail|error|timeout/.test(a)) return t('msg_failed', dev, ver || '?', b.reason || b.error || b.message || a);
  if (/upgrade_success|upgraded|upgrade_done/.test(a)) return t('msg_upgraded', dev, ver);
  if (/reboot/.test(a)) return t('msg_rebooted', dev);
  if (/activat/.test(a)) return t('msg_activated', dev);
  if (/offline|disconnect/.test(a)) return t('msg_offline', dev);
  if (/online|connect/.test(a)) return t('msg_online', dev);
  return t('msg_other', dev, a + (Object.keys(b).length ? ' ' + JSON.stringify(b) : ''));
}

export function messageKind(m) {
  const a = String(m.action || '');
  if (/fail|error|timeout/.test(a)) return 'bad';
  if (/success|upgraded/.test(a)) return 'good';
  return '';
}

export function messageItem(m) {
  return h('li', { class: 'msg ' + messageKind(m), 'data-id': m.id, 'data-action': m.action },
    h('time', { datetime: m.created ? new Date(m.created * 1000).toISOString() : '' }, fmtTime(m.created)),
    ' ', h('span', { class: 'msg-text' }, messageText(m)));
}
