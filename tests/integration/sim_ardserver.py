"""sim_ardserver.py - a scripted HTTP server for fota-sim's Arduino-core
profiles (arduino, tasmota, esphome): it records every request byte for byte
and answers with whatever bytes the test's handler returns, so a test can
send the malformed, truncated or refusing answers of arduino-ota.md §0.3.
asyncio on a background thread (a fleet of a thousand devices is fine);
loopback only; Python 3 stdlib. Also: images through fota-sim --write-image
and small helpers (MD5 variants, mosquitto on loopback)."""
import asyncio
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time

BIN = os.path.abspath(os.environ.get("FOTA_BIN_DIR") or
                      os.path.join(os.path.dirname(__file__), "..", "..", "build", "bin"))


def sim_path():
    p = os.path.join(BIN, "fota-sim")
    if not os.path.exists(p):
        raise AssertionError("fota-sim not built in %s" % BIN)
    return p


class Request:
    def __init__(self, raw, conn_id, index_on_conn):
        self.raw = raw                      # the request bytes, header block included
        self.conn = conn_id                 # which connection it came on
        self.nth = index_on_conn            # 0 for the first request of a connection
        head = raw.decode("latin-1").split("\r\n")
        self.line = head[0]
        parts = self.line.split(" ")
        self.method, self.path = parts[0], parts[1] if len(parts) > 1 else ""
        self.headers = []
        for ln in head[1:]:
            if not ln:
                break
            k, _, v = ln.partition(":")
            self.headers.append((k, v.strip()))

    def get(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default


class Reply:
    """What to send: the bytes (header and body as given), then close unless
    keep is set; stall: send the bytes and keep the connection open silently."""
    def __init__(self, data, keep=False, stall=False):
        self.data = data
        self.keep = keep
        self.stall = stall


def reply(status, body=b"", headers=(), reason="OK", length=True, keep=False):
    h = "HTTP/1.1 %d %s\r\n" % (status, reason)
    if length:
        h += "Content-Length: %d\r\n" % len(body)
    for k, v in headers:
        h += "%s: %s\r\n" % (k, v)
    return Reply(h.encode() + b"\r\n" + body, keep=keep)


class ArdServer:
    """handler(Request) -> Reply (None: close without an answer)."""

    def __init__(self, handler):
        self.handler = handler
        self.requests = []
        self.lock = threading.Lock()
        self.errors = []
        self._conns = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise AssertionError("scripted server did not start")

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, backlog=2048))
        self.port = self.server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    async def _client(self, reader, writer):
        self._conns += 1
        cid, nth = self._conns, 0
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    break
                req = Request(raw, cid, nth)
                nth += 1
                with self.lock:
                    self.requests.append(req)
                try:
                    r = self.handler(req)
                except Exception as e:  # a test bug: keep it for the test to report
                    self.errors.append(repr(e))
                    r = None
                if r is None:
                    break
                writer.write(r.data)
                await writer.drain()
                if r.stall:
                    await asyncio.sleep(3600)
                if not r.keep:
                    break
        finally:
            try:
                writer.close()
            except Exception:
                pass

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def taken(self):
        with self.lock:
            return list(self.requests)


def run_sim(args, timeout=120):
    """fota-sim with args; (exit status, stdout, stderr); fails on a sanitizer report."""
    try:
        p = subprocess.run([sim_path()] + args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise AssertionError("fota-sim still running after %d s: %s" % (timeout, args))
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        if bad in p.stderr:
            raise AssertionError("sanitizer report from fota-sim:\n" + p.stderr)
    return p.returncode, p.stdout, p.stderr


def write_image(path, version, size=40000, flash_mode="dio", extra=()):
    """An Arduino-core image by fota-sim --write-image arduino:VERSION:FILE."""
    rc, out, err = run_sim(["--write-image", "arduino:%s:%s" % (version, path), "--image-size",
                            str(size), "--flash-mode", flash_mode] + list(extra), timeout=30)
    if rc != 0:
        raise AssertionError("--write-image: %s" % err)
    with open(path, "rb") as f:
        return f.read()


def md5(b):
    return hashlib.md5(b).hexdigest()


def mode_md5s(img):
    """The sketch MD5s a device may report for a plain image: byte 2 = 0..3."""
    out = set()
    for m in range(4):
        b = bytearray(img)
        b[2] = m
        out.add(md5(bytes(b)))
    return out


def wait_for(pred, timeout, what, interval=0.02):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(interval)


class Mosquitto:
    """Debian's mosquitto broker on a loopback port, and mosquitto_sub/pub."""

    def __init__(self):
        for exe in ("mosquitto", "mosquitto_sub", "mosquitto_pub"):
            if not shutil.which(exe) and not os.path.exists("/usr/sbin/" + exe):
                raise AssertionError("%s is not installed (scripts/deps.sh)" % exe)
        self.tmp = tempfile.mkdtemp(prefix="fotasim-mqtt-")
        self.proc = None
        for _ in range(20):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
            s.close()
            conf = os.path.join(self.tmp, "mosquitto.conf")
            with open(conf, "w") as f:
                # as root, mosquitto would drop to the user "mosquitto"; it stays who runs it
                f.write("user %s\nlistener %d 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\nmax_keepalive 300\n"
                        % (pwd.getpwuid(os.geteuid()).pw_name, self.port))
            exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
            self.log = open(os.path.join(self.tmp, "broker.log"), "w+")
            self.proc = subprocess.Popen([exe, "-c", conf, "-v"], stdout=self.log,
                                         stderr=subprocess.STDOUT)
            try:
                wait_for(lambda: self._up(), 5, "mosquitto to listen")
                break
            except AssertionError:
                self.proc.kill()
                self.proc.wait()
                self.proc = None
        if not self.proc:
            raise AssertionError("mosquitto did not start")
        self.sub = None
        self.sub_out = None

    def _up(self):
        if self.proc.poll() is not None:
            raise AssertionError("mosquitto exited")
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def subscribe_all(self, topics=("#",)):
        """Starts mosquitto_sub -v on topics; lines() reads what came."""
        self.sub_out = open(os.path.join(self.tmp, "sub.txt"), "w+")
        args = [shutil.which("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(self.port), "-v"]
        for t in topics:
            args += ["-t", t]
        self.sub = subprocess.Popen(args, stdout=self.sub_out, stderr=subprocess.STDOUT)
        # the subscription is in place once a probe published after it comes back
        wait_for(lambda: self._probe(), 10, "mosquitto_sub to subscribe")

    def _probe(self):
        self.publish("fotasim/probe", "x")
        return any(ln.startswith("fotasim/probe ") for ln in self.lines())

    def lines(self):
        self.sub_out.flush()
        with open(self.sub_out.name) as f:
            return f.read().splitlines()

    def publish(self, topic, payload, retain=False):
        args = [shutil.which("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(self.port), "-t", topic,
                "-m", payload]
        if retain:
            args.append("-r")
        subprocess.run(args, check=True, timeout=10)

    def close(self):
        if self.sub:
            self.sub.terminate()
            self.sub.wait(10)
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)
