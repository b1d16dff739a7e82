"""fotatest.py - the shared harness of fotad's integration tests.

Starts the real fotad from FOTA_BIN_DIR on ephemeral loopback ports in a temp
data dir, waits for its `listening proto=... addr=...` lines (bounded deadline,
polling the log, no sleeps as synchronisation), and offers an HTTP helper, a
multipart builder and an image maker (`fotactl image make`). At stop it sends
SIGTERM, checks a clean exit and fails if the log holds a sanitizer report or
an ERROR line the test did not declare with expect_error(). Python 3 stdlib.

    from fotatest import Fotad, check, run_tests
    def test_ping(d):
        st, hdr, body = d.api("GET", "/v1/ping/")
        check(st == 200 and body["status"] == 200, "ping")
    run_tests([test_ping])
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.path.abspath(os.environ.get("FOTA_BIN_DIR") or
                          os.path.join(HERE, "..", "..", "build", "bin"))
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "UndefinedBehaviorSanitizer", "ThreadSanitizer")
LISTEN_RE = re.compile(r"listening proto=(\S+) addr=(\S+):(\d+)")


class TestFailure(Exception):
    pass


def check(cond, msg):
    """Fails the current test with msg unless cond holds."""
    if not cond:
        raise TestFailure(msg)


def wait_for(pred, timeout=10.0, what="condition", interval=0.02):
    """Polls pred() until it returns a true value or the deadline passes."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def bin_path(name):
    return os.path.join(BIN_DIR, name)


def multipart(fields=(), files=(), boundary=None):
    """Builds a multipart/form-data body. fields: [(name, text)], files:
    [(field, filename, bytes)]. Returns (content_type, body bytes)."""
    b = boundary or ("fotatest" + uuid.uuid4().hex)
    out = bytearray()
    for name, value in (fields.items() if isinstance(fields, dict) else fields):
        if isinstance(value, str):
            value = value.encode()
        out += b"--" + b.encode() + b"\r\n"
        out += ('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode()
        out += value + b"\r\n"
    for field, filename, data in files:
        out += b"--" + b.encode() + b"\r\n"
        out += ('Content-Disposition: form-data; name="%s"; filename="%s"\r\n' %
                (field, filename)).encode()
        out += b"Content-Type: application/octet-stream\r\n\r\n"
        out += data + b"\r\n"
    out += b"--" + b.encode() + b"--\r\n"
    return "multipart/form-data; boundary=" + b, bytes(out)


_image_cache = {}


def make_image(slot, flash_map=2, version=None, size=None, seed=None):
    """A valid NONOS >= 2.0 image for slot 1/2 from `fotactl image make`."""
    k = (slot, flash_map, version, size, seed)
    if k in _image_cache:
        return _image_cache[k]
    tmp = tempfile.mkdtemp(prefix="fotatest-img-")
    try:
        out = os.path.join(tmp, "user%d.bin" % slot)
        args = [bin_path("fotactl"), "image", "make", "--slot", str(slot), "--flash-map",
                str(flash_map), "-o", out]
        if version:
            args += ["--version", version]
        if size:
            args += ["--size", str(size)]
        if seed is not None:
            args += ["--seed", str(seed)]
        p = subprocess.run(args, capture_output=True, timeout=30)
        check(p.returncode == 0, "fotactl image make failed: %s" % p.stderr.decode(errors="replace"))
        with open(out, "rb") as f:
            data = f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _image_cache[k] = data
    return data


class Fotad:
    """One fotad process. Ports: self.ports["http"], ["device"], ... as bound.

    Options: http/device/device_tls/https/legacy (bool: ephemeral port or off),
    data_dir (reuse a data dir, e.g. after a restart), store (the --store
    value; default sqlite), tls=(cert, key), extra=[more flags], log_level."""

    def __init__(self, data_dir=None, http=True, device=True, device_tls=False, https=False,
                 legacy=False, store=None, tls=None, extra=(), log_level=None, config=None):
        self.tmp = tempfile.mkdtemp(prefix="fotatest-")
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.logpath = os.path.join(self.tmp, "fotad.log")
        self.expected_errors = []
        self.ports = {}
        self.proc = None
        self._log_offset = 0
        args = [bin_path("fotad"), "--data", self.data_dir, "--bind", "127.0.0.1"]
        if log_level:
            args += ["--log-level", log_level]
        if config:
            args += ["-c", config]
        for flag, on in (("--http-port", http), ("--device-port", device),
                         ("--device-tls-port", device_tls), ("--https-port", https),
                         ("--legacy-port", legacy)):
            args += [flag, "0" if on else "off"]
        if store:
            args += ["--store", store]
        if tls:
            args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.args = args + list(extra)
        self.wanted = [p for p, on in (("http", http), ("device", device),
                                        ("device-tls", device_tls and tls),
                                        ("https", https and tls), ("legacy", legacy)) if on]

    # -- life cycle -------------------------------------------------------
    def start(self, timeout=15.0):
        self._log = open(self.logpath, "ab")
        self._log_offset = os.path.getsize(self.logpath)
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT)

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("fotad exited with %s during start-up:\n%s" %
                                  (self.proc.returncode, self.log_text()))
            text = self.log_text()
            if "fotad ready" not in text:
                return False
            for m in LISTEN_RE.finditer(text):
                self.ports[m.group(1)] = int(m.group(3))
            return True
        wait_for(ready, timeout, "fotad to log 'fotad ready'")
        self.admin_key = self.read_admin_key()
        return self

    def read_admin_key(self):
        with open(os.path.join(self.data_dir, "owner.key")) as f:
            return f.read().strip()

    def log_text(self):
        """The log of the current run (since start())."""
        try:
            with open(self.logpath, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def expect_error(self, regex):
        """Declares an ERROR log line (regex, searched) as expected."""
        self.expected_errors.append(re.compile(regex))

    def wait_log(self, regex, timeout=10.0):
        """Waits until a log line matches regex; returns the match."""
        r = re.compile(regex)
        return wait_for(lambda: r.search(self.log_text()), timeout, "log line /%s/" % regex)

    def check_log(self):
        text = self.log_text()
        for mark in SANITIZER_MARKS:
            at = text.find(mark)
            if at >= 0:   # the report itself, from its first line, not the log's tail
                sep = text.rfind("==================", max(0, at - 400), at)
                start = text.rfind("\n", 0, sep if sep >= 0 else at) + 1
                check(False, "sanitizer report in fotad log:\n" + text[start:start + 8000])
        for line in text.splitlines():
            if " ERROR " in line[:40] or line.startswith("ERROR"):
                if not any(r.search(line) for r in self.expected_errors):
                    raise TestFailure("unexpected ERROR in fotad log: " + line)

    def stop(self, timeout=15.0):
        """SIGTERM, wait, check exit status 0 and the log."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise TestFailure("fotad did not exit within %.0fs of SIGTERM" % timeout)
        rc = self.proc.returncode
        self.proc = None
        self._log.close()
        self.check_log()
        check(rc == 0, "fotad exit status %s after SIGTERM" % rc)

    def kill(self):
        """SIGKILL (crash simulation); no log checks."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self._log.close()

    def cleanup(self):
        if self.proc is not None:
            self.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                self.stop()
        finally:
            if et is not None and self.proc is not None:
                sys.stderr.write("--- fotad log ---\n" + self.log_text()[-6000:] + "\n")
            self.cleanup()
        return False

    # -- HTTP ---------------------------------------------------------------
    @property
    def http_port(self):
        return self.ports["http"]

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def request(self, method, path, body=None, headers=None, key=None, port=None, timeout=10.0):
        """Raw request. Returns (status, headers dict (lower-case names), body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.http_port, timeout=timeout)
        h = dict(headers or {})
        if key:
            h["Authorization"] = "token " + key
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            return resp.status, hdrs, data
        finally:
            conn.close()

    def api(self, method, path, body=None, key="admin", headers=None, raw=False):
        """JSON request. key="admin" uses the admin key, None sends none.
        body: dict (sent as JSON), bytes/str (as is). Returns (status, headers, json)."""
        if key == "admin":
            key = self.admin_key
        h = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        st, hdrs, data = self.request(method, path, body=body, headers=h, key=key)
        if raw:
            return st, hdrs, data
        ct = hdrs.get("content-type", "")
        check(ct.startswith("application/json"),
              "%s %s: Content-Type %r, body %r" % (method, path, ct, data[:200]))
        check(b"\\/" not in data, "%s %s: reply escapes slashes: %r" % (method, path, data[:200]))
        try:
            j = json.loads(data)
        except ValueError:
            raise TestFailure("%s %s: reply is not JSON: %r" % (method, path, data[:200]))
        check(j.get("status") == st, "%s %s: body status %r != HTTP %d" %
              (method, path, j.get("status"), st))
        return st, hdrs, j

    # -- fixtures -----------------------------------------------------------
    def create_product(self, name=None, flash_map=2, **kw):
        body = {"name": name or ("p-" + uuid.uuid4().hex[:8]), "flash_map": flash_map}
        body.update(kw)
        st, _, j = self.api("POST", "/v1/products/", body)
        check(st == 200, "create product: %d %r" % (st, j))
        return j["product"]

    def upload_release(self, product_id, version, files=None, codename="beta", changelog="",
                       flash_map=2, expect=200):
        """Uploads user1.bin + user2.bin (made with fotactl) unless files given
        as [(filename, bytes)]. Returns the JSON reply."""
        if files is None:
            files = [("user1.bin", make_image(1, flash_map, version)),
                     ("user2.bin", make_image(2, flash_map, version))]
        ct, body = multipart({"version": version, "codename": codename, "changelog": changelog},
                             [("file", fn, data) for fn, data in files])
        st, _, j = self.api("POST", "/v1/products/%d/roms/" % product_id, body,
                            headers={"Content-Type": ct})
        check(st == expect, "upload %s: %d %r" % (version, st, j))
        return j

    def create_device(self, product_id, name=None, bssid=None):
        body = {}
        if name:
            body["name"] = name
        if bssid:
            body["bssid"] = bssid
        st, _, j = self.api("POST", "/v1/products/%d/devices/" % product_id, body)
        check(st == 200, "create device: %d %r" % (st, j))
        return j


def run_tests(tests):
    """Runs test functions; those taking an argument get a fresh started Fotad
    (memory of nothing shared). Exits 1 on the first failure, 0 otherwise."""
    import inspect
    for t in tests:
        t0 = time.monotonic()
        try:
            if inspect.signature(t).parameters:
                with Fotad() as d:
                    t(d)
            else:
                t()
        except TestFailure as e:
            print("FAIL %s: %s" % (t.__name__, e), file=sys.stderr)
            sys.exit(1)
        print("ok   %s (%.2fs)" % (t.__name__, time.monotonic() - t0))
    sys.exit(0)


def free_port():
    """A currently free loopback port (for 'port in use' tests only)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
