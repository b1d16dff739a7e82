// api.js - the console's only door to fotad's REST API (docs/api.md).
// Every call carries "Authorization: token KEY"; the key lives in
// sessionStorage (this tab only) and is dropped on sign-out or a 401.
const KEY = 'fota.key';

export function getKey() { return sessionStorage.getItem(KEY) || ''; }
export function setKey(k) { sessionStorage.setItem(KEY, k); }
export function clearKey() { sessionStorage.removeItem(KEY); sessionStorage.removeItem('fota.role'); }
export function getRole() { return sessionStorage.getItem('fota.role') || ''; }
export function setRole(r) { sessionStorage.setItem('fota.role', r); }

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || ('HTTP ' + status));
    this.status = status;
    this.body = body || {};
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

async function parse(res) {
  const text = await res.text();
  let body = null;
  try { body = text ? JSON.parse(text) : {}; } catch (e) { body = { message: text.slice(0, 200) }; }
  if (res.ok && (!body || body.status === undefined || body.status < 400)) return { http: res.status, body };
  if (res.status === 401) onUnauthorized();
  throw new ApiError(res.ok ? body.status : res.status, body);
}

// request('GET', '/v1/products/') → { http, body }; throws ApiError.
export async function request(method, path, json, key) {
  const headers = { Authorization: 'token ' + (key || getKey()) };
  const init = { method, headers, cache: 'no-store' };
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  }
  return parse(await fetch(path, init));
}

export const get = (p, key) => request('GET', p, undefined, key);
export const post = (p, json) => request('POST', p, json === undefined ? {} : json);
export const put = (p, json) => request('PUT', p, json === undefined ? {} : json);
export const del = (p) => request('DELETE', p);

// Multipart upload through XHR, which (unlike fetch) reports upload progress.
// onProgress(fraction 0..1). Resolves { http, body } or rejects ApiError.
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', path);
    x.setRequestHeader('Authorization', 'token ' + getKey());
    x.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
    x.onerror = () => reject(new ApiError(0, { message: 'network error' }));
    x.onload = () => {
      let body = {};
      try { body = JSON.parse(x.responseText || '{}'); } catch (e) { body = { message: x.responseText.slice(0, 200) }; }
      if (x.status >= 200 && x.status < 300 && !(body.status >= 400)) resolve({ http: x.status, body });
      else {
        if (x.status === 401) onUnauthorized();
        reject(new ApiError(x.status, body));
      }
    };
    x.send(form);
  });
}

// Fetches a binary resource with the key and hands it to the browser as a download.
export async function download(path, filename) {
  const res = await fetch(path, { headers: { Authorization: 'token ' + getKey() } });
  if (!res.ok) throw new ApiError(res.status, { message: 'HTTP ' + res.status });
  const url = URL.createObjectURL(await res.blob());
  const a = document.createElement('a');
  a.href = url; a.download = filename;
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// The live message feed: GET /v1/messages/?follow=true is a server-sent
// event stream. EventSource cannot send an Authorization header, so this reads
// the same text/event-stream with fetch and parses it. Reconnects with
// back-off, resuming after the last id seen. Returns a stop function.
// onMessage(obj), onState('live' | 'reconnecting').
export function follow(query, onMessage, onState) {
  let stopped = false;
  let ctrl = null;
  // query.after (the newest id already shown) makes fotad replay what
  // arrived between the listing and the stream.
  let lastId = query && query.after ? String(query.after) : '';
  let delay = 500;

  async function run() {
    while (!stopped) {
      ctrl = new AbortController();
      try {
        const q = new URLSearchParams(query || {});
        q.set('follow', 'true');
        if (lastId) q.set('after', lastId);
        const headers = { Authorization: 'token ' + getKey(), Accept: 'text/event-stream' };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const res = await fetch('/v1/messages/?' + q.toString(), { headers, signal: ctrl.signal, cache: 'no-store' });
        if (res.status === 401) { onUnauthorized(); return; }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        onState && onState('live');
        delay = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('data:')) data += (data ? '\n' : '') + line.slice(5).replace(/^ /, '');
              else if (line.startsWith('id:')) lastId = line.slice(3).trim();
            }
            if (!data) continue;
            try {
              const obj = JSON.parse(data);
              onMessage(obj.message || obj);
            } catch (e) { /* not JSON: ignore the event */ }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      if (stopped) return;
      onState && onState('reconnecting');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10000);
    }
  }
  run();
  return () => { stopped = true; if (ctrl) ctrl.abort(); };
}
