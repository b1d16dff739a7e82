// harness.mjs - starts what the console test needs: a real fotad on
// ephemeral loopback ports in a temp data dir, test images from fotactl, and
// Debian's chromium through playwright-core (never a downloaded browser).
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
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
