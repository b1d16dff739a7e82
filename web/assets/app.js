// app.js - the console's shell: sign-in, hash routes, navigation, language.
// Routes: #/signin, #/products, #/products/ID, #/devices/ID, #/rollouts/ID,
// #/messages.
import { t, getLang, setLang } from './i18n.js';
import * as api from './api.js';
import { h, clear, field, statusLine, say } from './ui.js';
import { productsView } from './products.js';
import { productView } from './product.js';
import { deviceView } from './device.js';
import { messagesView } from './messages.js';
import { rolloutView } from './rolloutpage.js';

const main = document.getElementById('main');
let cleanup = null;   // the current view's teardown (closes live feeds)

function chrome() {
  const signed = !!api.getKey();
  document.title = t('title');
  document.getElementById('nav').hidden = !signed || api.getRole() !== 'admin';
  document.getElementById('nav-products').textContent = t('products');
  document.getElementById('nav-messages').textContent = t('messages');
  const lang = document.getElementById('lang');
  // The button names the other language in that language ("label in name":
  // no aria-label hiding the visible text).
  lang.textContent = t('lang');
  lang.title = t('lang_label');
  lang.setAttribute('lang', getLang() === 'zh' ? 'en' : 'zh-CN');
  const so = document.getElementById('signout');
  so.hidden = !signed;
  so.textContent = t('signout');
  document.querySelector('.skip').textContent = t('skip');
  const route = location.hash.split('/')[1] || '';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#/' + route) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function signinView(root) {
  const st = statusLine();
  // No pattern/maxlength: a key pasted with spaces around it is trimmed here.
  const key = field(t('key'), h('input', { type: 'password', name: 'key', autocomplete: 'off', required: true,
    spellcheck: 'false' }), t('key_help'));
  const form = h('form', { class: 'card narrow', id: 'signin' },
    h('h1', {}, t('signin')), key.row, h('button', { type: 'submit', class: 'primary' }, t('signin')), st);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const k = key.input.value.trim().toLowerCase();
    if (!/^[0-9a-f]{40}$/.test(k)) { say(st, t('key_format'), 'bad'); key.input.focus(); return; }
    say(st, t('loading'));
    try {
      await api.get('/v1/products/', k);
      api.setKey(k); api.setRole('admin');
      const want = sessionStorage.getItem('fota.want') || '';
      sessionStorage.removeItem('fota.want');
      location.hash = /^#\/(products|devices|rollouts|messages)/.test(want) ? want : '#/products';
    } catch (err) {
      if (err.status === 401 || err.status === 0) { say(st, t('bad_key'), 'bad'); return; }
      // Not an admin key: maybe a device's owner key.
      try {
        const r = await api.get('/v1/device/', k);
        const d = r.body.device || r.body;
        api.setKey(k); api.setRole('owner');
        location.hash = '#/devices/' + d.id;
      } catch (err2) { say(st, t('bad_key'), 'bad'); }
    }
  });
  root.append(form);
  key.input.focus();
}

function route() {
  if (cleanup) { try { cleanup(); } catch (e) { /* ignore */ } cleanup = null; }
  chrome();
  clear(main);
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  if (!api.getKey()) {
    if (parts[0] !== 'signin') {
      // Come back here after signing in (a bookmarked or second-tab URL).
      if (parts.length) sessionStorage.setItem('fota.want', location.hash);
      location.hash = '#/signin';
      return;
    }
    signinView(main);
    return;
  }
  const view = parts[0] || 'products';
  let r;
  if (view === 'products' && parts[1]) r = productView(main, parts[1]);
  else if (view === 'products' || view === 'signin') r = productsView(main);
  else if (view === 'devices' && parts[1]) r = deviceView(main, parts[1]);
  else if (view === 'rollouts' && parts[1]) r = rolloutView(main, parts[1]);
  else if (view === 'messages') r = messagesView(main);
  else main.append(h('p', {}, t('not_found')));
  if (typeof r === 'function') cleanup = r;
  main.focus({ preventScroll: true });
}

api.setUnauthorizedHandler(() => {
  api.clearKey();
  location.hash = '#/signin';
});

document.getElementById('lang').addEventListener('click', () => {
  setLang(getLang() === 'zh' ? 'en' : 'zh');
  route();
});
document.getElementById('signout').addEventListener('click', () => {
  api.clearKey();
  location.hash = '#/signin';
  route();
});
// The skip link must not touch location.hash: that is the router's.
document.querySelector('.skip').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', route);
setLang(getLang());
route();
