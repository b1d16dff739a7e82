// harness.mjs - starts what the console test needs: a real fotad on
// ephemeral loopback ports in a temp data dir, test images from fotactl,
// Arduino-core images signed by fotactl and the core's check-in request, and
// Debian's chromium through playwright-core (never a downloaded browser).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// This directory (import.meta.dirname needs Node 20.11; Debian 12 ships 18).
const HERE = path.dirname(fileURLToPath(import.meta.url));

export const BIN = process.env.FOTA_BIN_DIR || path.resolve(HERE, '../../build/bin');
export const CHROMIUM = process.env.FOTA_CHROMIUM || '/usr/bin/chromium';

// Why the browser test cannot run here, or '' when it can. The test then
// fails with that reason; `make test` installs the stack first
// (scripts/deps.sh --web).
export function missingPrerequisite() {
  if (!fs.existsSync(CHROMIUM)) return `no browser at ${CHROMIUM} (scripts/deps.sh --web installs Debian's chromium)`;
  if (!fs.existsSync(path.join(HERE, 'node_modules', 'playwright-core')))
    return 'playwright-core is not installed (scripts/deps-web.sh)';
  if (!process.env.FOTA_E2E_MOCK && !fs.existsSync(path.join(BIN, 'fotad'))) return `no fotad in ${BIN}`;
  return '';
}

export function tempDir(tag) { return fs.mkdtempSync(path.join(os.tmpdir(), 'fota-e2e-' + tag + '-')); }

// Waits (bounded) for a line matching re in a growing log; the log is fed by
// the child's stderr/stdout listeners, so no polling of files or sleeping.
function waitLine(proc, re, ms, what) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for ${what}; log:\n${buf.slice(-2000)}`)); }, ms);
    const onData = (d) => {
      buf += d.toString();
      const m = re.exec(buf);
      if (m) { cleanup(); resolve(m); }
    };
    const onExit = (code) => { cleanup(); reject(new Error(`${what}: process exited with ${code}; log:\n${buf.slice(-2000)}`)); };
    function cleanup() {
      clearTimeout(timer);
      proc.stderr.off('data', onData); proc.stdout.off('data', onData); proc.off('exit', onExit);
    }
    proc.stderr.on('data', onData); proc.stdout.on('data', onData); proc.on('exit', onExit);
  });
}

// Starts fotad; resolves { proc, http, device, data, key, log() , stop() }.
export async function startFotad() {
  const data = tempDir('data');
  const exe = process.env.FOTA_E2E_MOCK ? process.execPath : path.join(BIN, 'fotad');
  const args = process.env.FOTA_E2E_MOCK ? [process.env.FOTA_E2E_MOCK, data] :
    ['--data', data, '--bind', '127.0.0.1', '--http-port', '0', '--device-port', '0',
     '--device-tls-port', 'off', '--https-port', 'off', '--legacy-port', 'off'];
  const proc = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (d) => { log += d.toString(); });
  proc.stdout.on('data', (d) => { log += d.toString(); });
  const devP = waitLine(proc, /listening proto=device addr=([0-9.]+):(\d+)/, 10000, 'fotad device listener').catch(() => null);
  const m = await waitLine(proc, /listening proto=http addr=([0-9.]+):(\d+)/, 10000, 'fotad http listener');
  const d = await devP;
  const key = fs.readFileSync(path.join(data, 'owner.key'), 'utf8').trim();
  return {
    proc, data, key,
    http: `http://${m[1]}:${m[2]}`,
    device: d ? { host: d[1], port: Number(d[2]) } : null,
    log: () => log,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      const done = new Promise((r) => proc.once('exit', (code, sig) => r(code ?? sig)));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      const code = await done;
      clearTimeout(t);
      return code;
    },
  };
}

// A valid two-slot image made by fotactl (the codec's builder), under
// dir/<slot-name>/userN.bin so every upload carries the real ROM file name.
export function makeImage(dir, slot, version, name) {
  const sub = path.join(dir, `${version}-s${slot}-${name.replace(/\W/g, '_')}`);
  fs.mkdirSync(sub, { recursive: true });
  const out = path.join(sub, name);
  if (process.env.FOTA_E2E_MOCK) {
    const b = Buffer.alloc(4096, 0x11); b[0] = 0xea; b[1] = 0x04; b[3] = slot;
    fs.writeFileSync(out, b);
  } else {
    execFileSync(path.join(BIN, 'fotactl'), ['image', 'make', '--slot', String(slot), '--flash-map', '2',
      '--version', version, '-o', out], { stdio: ['ignore', 'pipe', 'pipe'] });
  }
  return out;
}

// Debian's chromium, headless, with a fresh profile and every background
// connection turned off (the network here is closed; they would be refused).
export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  const profile = tempDir('chromium');
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    locale: process.env.FOTA_E2E_LOCALE || 'en-US',
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage'],
  });
  return { ctx, profile };
}

export function rmrf(p) { try { fs.rmSync(p, { recursive: true, force: true }); } catch (e) { /* best effort */ } }

// One simulated ESP8266 (fota-sim, NONOS IoT_Demo profile) running v1.0 with
// the master key the console showed; it waits for the push of
// sys_upgrade to `to`, downloads, reports, and exits 0 once a sys_reboot has
// brought it up on the new version. null when fota-sim or the device port is
// missing. Resolves .done with { code, out }.
export function startSim(fotad, masterKey, from, to, dir) {
  const exe = path.join(BIN, 'fota-sim');
  if (process.env.FOTA_E2E_MOCK) return null;
  // Without a device the upgrade steps could not run: that is a failure, never a skip.
  if (!fotad.device) throw new Error('fotad has no device channel (no listening proto=device line)');
  if (!fs.existsSync(exe)) throw new Error(`no fota-sim in ${BIN}`);
  const keys = path.join(dir, 'sim-keys.txt');
  fs.writeFileSync(keys, masterKey + '\n');
  const port = new URL(fotad.http).port;
  const proc = spawn(exe, ['--server', '127.0.0.1', '--http-port', port, '--device-port', String(fotad.device.port),
    '--keys', keys, '--profile', 'nonos', '--devices', '1', '--initial-version', from, '--upgrade-to', to,
    '--map', '2', '--timeout', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d) => { out += d.toString(); });
  proc.stderr.on('data', (d) => { out += d.toString(); });
  const done = new Promise((resolve) => proc.on('exit', (code) => resolve({ code, out })));
  return { proc, done, out: () => out, stop() { if (proc.exitCode === null) proc.kill('SIGKILL'); } };
}

// An Arduino-core .bin as elf2bin.py lays it out (reference arduino-ota
// §1.1), the same construction as tests/integration/arduino_util.py:
// eboot (2 segments, 0xAA filler to 0x1000), the sketch (5 segments,
// code-like bytes from a small vocabulary so that it compresses as images
// do), then the length and CRC words patched at 0x1010 after the checksum
// (every core >= 2.7 build). Deterministic for a seed.
export function makeArduinoImage({ mode = 3, sizeCode = 4, irom = 20000, seed = 1 } = {}) {
  let s = seed >>> 0;
  const rnd = () => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return (s >>> 16) & 0xff; };
  const out = [];
  const le32 = (v) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
  function image(segs, entry, zeroFirst8, toAddr) {
    out.push(0xe9, segs.length, mode, (sizeCode << 4) | 0, ...le32(entry));
    let total = 8, csum = 0xef;
    segs.forEach(([addr, size], i) => {
      out.push(...le32(addr), ...le32(size));
      const words = Array.from({ length: 48 }, () => [rnd(), rnd(), rnd(), rnd()]);
      for (let k = 0; k < size; k++) {
        let b = words[(rnd() * 48) >> 8][k & 3];
        if (zeroFirst8 && i === 0 && k < 8) b = 0;
        out.push(b);
        csum ^= b;
      }
      total += 8 + size;
    });
    total += 1;
    while (total & 15) { total += 1; out.push(0); }
    out.push(csum);
    while (toAddr && out.length < toAddr) out.push(0xaa);
  }
  image([[0x4010f000, 0xd60], [0x3fff20b8, 0x28]], 0x4010f480, false, 0x1000);
  image([[0x40201010, irom], [0x40100000, 0x1234], [0x40101234, 0x456], [0x3ffe8000, 0x321],
    [0x3ffe8400, 0x789]], 0x401000c0, true, 0);
  const f = Buffer.from(out);
  f.fill(0, 0x1010, 0x1018);
  let crc = 0xffffffff;                   // crc8266: MSB first, no reflection, no final XOR
  for (const byte of f) {
    crc ^= byte << 24;
    for (let b = 0; b < 8; b++) crc = crc & 0x80000000 ? ((crc << 1) ^ 0x04c11db7) >>> 0 : (crc << 1) >>> 0;
  }
  f.writeUInt32LE(f.length, 0x1010);
  f.writeUInt32LE(crc >>> 0, 0x1014);
  return f;
}

// `fotactl release sign --key priv in out`: the core's signature trailer.
export function signWithFotactl(priv, input, output) {
  execFileSync(path.join(BIN, 'fotactl'), ['release', 'sign', '--key', priv, input, output],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  return fs.readFileSync(output);
}

// ESPhttpUpdate's request (core 3.1.2, reference arduino-ota §2.1), byte for
// byte, sent in one write; resolves { status, headers, body } once fotad
// closes the connection (it always does after an Arduino-core answer).
export function coreCheckin(httpUrl, pathName, { mac = 'DE:BA:7A:B1:E0:42', md5 = '0123456789abcdef0123456789abcdef',
  version = '1.0.0', chipId = 15602487, freeSpace = 4194304, sketchSize = 400000, chipSize = 4194304,
  sdk = '2.5.0' } = {}) {
  const u = new URL(httpUrl);
  const req = [`GET ${pathName} HTTP/1.0`, `Host: ${u.host}`, 'User-Agent: ESP8266-http-Update', 'Connection: close',
    `x-ESP8266-Chip-ID: ${chipId}`, `x-ESP8266-STA-MAC: ${mac}`, `x-ESP8266-AP-MAC: ${mac}`,
    `x-ESP8266-free-space: ${freeSpace}`, `x-ESP8266-sketch-size: ${sketchSize}`, `x-ESP8266-sketch-md5: ${md5}`,
    `x-ESP8266-chip-size: ${chipSize}`, `x-ESP8266-sdk-version: ${sdk}`, 'x-ESP8266-mode: sketch',
    `x-ESP8266-version: ${version}`, 'Content-Length: 0'].join('\r\n') + '\r\n\r\n';
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port) });
    const chunks = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no answer to the check-in within 10 s')); }, 10000);
    sock.on('connect', () => sock.write(req));
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    sock.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks);
      const end = raw.indexOf('\r\n\r\n');
      if (end < 0) { reject(new Error('no end of header in ' + raw.slice(0, 200).toString('latin1'))); return; }
      const lines = raw.slice(0, end).toString('latin1').split('\r\n');
      const headers = {};
      for (const l of lines.slice(1)) { const i = l.indexOf(':'); headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim(); }
      resolve({ status: Number(lines[0].split(' ')[1]), headers, body: raw.slice(end + 4) });
    });
  });
}

// Debian's mosquitto on a free loopback port (no system service), refusing
// anonymous clients: users { name: password } through mosquitto_passwd.
// Resolves { port, url, pub(topic, message), stop() }.
export async function startMosquitto(users) {
  const dir = tempDir('mosquitto');
  const srv = net.createServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const port = srv.address().port;
  await new Promise((r) => srv.close(r));
  const pw = path.join(dir, 'passwd');
  fs.writeFileSync(pw, '');
  for (const [u, p] of Object.entries(users)) execFileSync('mosquitto_passwd', ['-b', pw, u, p]);
  const conf = path.join(dir, 'mosquitto.conf');
  fs.writeFileSync(conf, [`user ${os.userInfo().username}`, `listener ${port} 127.0.0.1`, 'persistence false',
    'allow_anonymous false', `password_file ${pw}`, `log_dest file ${path.join(dir, 'log')}`].join('\n') + '\n');
  const exe = fs.existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : '/usr/bin/mosquitto';
  if (!fs.existsSync(exe)) throw new Error("Debian's mosquitto is not installed (scripts/deps.sh)");
  const proc = spawn(exe, ['-c', conf], { stdio: 'ignore' });
  const deadline = Date.now() + 10000;   // its listener, polled with a deadline
  for (;;) {
    if (proc.exitCode !== null) throw new Error('mosquitto exited: ' + fs.readFileSync(path.join(dir, 'log'), 'utf8'));
    const up = await new Promise((r) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (up) break;
    if (Date.now() > deadline) { proc.kill('SIGKILL'); throw new Error('mosquitto did not listen within 10 s'); }
    await new Promise((r) => setTimeout(r, 50));
  }
  const [user, pass] = Object.entries(users)[0];
  return {
    port, url: `mqtt://127.0.0.1:${port}`,
    // a retained message, as a Tasmota device leaves its LWT
    pub(topic, message) {
      execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-u', user, '-P', pass, '-r',
        '-t', topic, '-m', message]);
    },
    stop() { if (proc.exitCode === null) proc.kill('SIGTERM'); rmrf(dir); },
  };
}
