"""fotatest.py - the one harness of fota's integration tests (Python 3 stdlib).

Starts the real fotad (Fotad) or its drop-in mode `fotad legacy` (Dropin) from FOTA_BIN_DIR on
ephemeral loopback ports, reads the ports they print, waits for conditions with deadlines
(polling, never sleeping as synchronisation), and stops them: a bad exit status, a sanitizer
report or an ERROR line the test did not declare with expect_error() fails the test. Failures
raise TestFailure; run_tests() reports them with the tail of every daemon's log.

Everything a test makes lives in one work dir under the test root (FOTA_TEST_TMP, which CMake
points at <build>/test-tmp, else the system temp dir): Python's tempfile and the TMPDIR of every
child point there. At exit, also after a failure, SIGTERM, SIGHUP or Ctrl-C, the harness kills
the processes it started and removes the work dir. `python3 fotatest.py sweep|check ROOT` are the
ctest fixtures around the suite: sweep empties the root before, check fails on anything (files
or processes) a test left behind.

The store: SQLite in the data dir, or with FOTA_TEST_STORE=pg (ctest's label integration_pg)
PostgreSQL, a database per data dir on one server per test process (pg_util.PgServer); a fotad
given its own --store, and a test module that sets DEFAULT_STORE = "sqlite", keep theirs.

    from fotatest import Fotad, check, run_tests
    def test_ping(d):
        st, hdr, body = d.api("GET", "/v1/ping/")
        check(st == 200 and body["status"] == 200, "ping")
    run_tests([test_ping])
"""
import atexit
import http.client
import inspect
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
BIN_DIR = os.path.abspath(os.environ.get("FOTA_BIN_DIR") or
                          os.path.join(HERE, "..", "..", "build", "bin"))
SRC_DIR = os.path.abspath(os.environ.get("FOTA_SRC_DIR") or os.path.join(HERE, "..", ".."))
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "ThreadSanitizer", "MemorySanitizer", "runtime error:")
ERROR_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+Z )?ERROR\b")
LISTEN_RE = re.compile(r"listening proto=(\S+) addr=(\S+):(\d+)")
# How much resident memory one byte a program holds costs in this tree: 1 in the gcc and ASan
# trees; ThreadSanitizer's shadow memory (two bytes per byte touched) and its allocator's
# per-thread caches add to it, so the TSan tree sets FOTA_MEMORY_SCALE and memory bounds in
# tests are multiplied by it.
MEMORY_SCALE = float(os.environ.get("FOTA_MEMORY_SCALE") or 1)
# Whether this tree's allocator hands freed pages back to the system (glibc's malloc_trim,
# ASan's purge); ThreadSanitizer's runtime has no way to, so there only the heap's own count
# (fota_heap_bytes) can show memory was freed.
HEAP_GIVES_BACK = os.environ.get("FOTA_HEAP_GIVES_BACK", "1") == "1"
# The store of every Fotad started without a store of its own (an explicit --store, a config
# file's `store`, or Fotad(store=...)): "sqlite" (DATA/fota.db) or "pg", a database of its own
# on the PostgreSQL server of this test process (one, started at the first such Fotad and
# stopped at exit). FOTA_TEST_STORE or `--store pg` on a test's command line set it; a test
# module whose checks need SQLite's files sets fotatest.DEFAULT_STORE = "sqlite".
STORES = ("sqlite", "pg")
DEFAULT_STORE = os.environ.get("FOTA_TEST_STORE") or "sqlite"
if "--store" in sys.argv[1:-1]:
    _at = sys.argv.index("--store")
    DEFAULT_STORE = sys.argv[_at + 1]
    del sys.argv[_at:_at + 2]
if DEFAULT_STORE not in STORES:
    sys.exit("fotatest: store %r is not one of %s" % (DEFAULT_STORE, ", ".join(STORES)))
os.environ["FOTA_TEST_STORE"] = DEFAULT_STORE   # the same for a helper script this one runs
# FOTA_TEST_LOOP_GUARD=allow: the loop guard's ERROR (a PostgreSQL op on an event loop) fails
# no test; each fotad's distinct ops are printed at its stop ("loop guard: op=X"), to list
# every op a test run reaches on a loop rather than the first one.
LOOP_GUARD_ALLOWED = os.environ.get("FOTA_TEST_LOOP_GUARD") == "allow"
LOOP_GUARD_RE = re.compile(r"store op called on an event loop op=(\S+)")


class TestFailure(Exception):
    pass


def check(cond, msg):
    """Fails the current test with msg unless cond holds."""
    if not cond:
        raise TestFailure(msg)


def fail(msg):
    raise TestFailure(msg)


def metric_value(d, name):
    """The value of fotad d's unlabelled metric name in GET /metrics (an int)."""
    st, _, body = d.request("GET", "/metrics", key=d.admin_key)
    check(st == 200, "GET /metrics: %d" % st)
    m = re.search(rb"^" + re.escape(name.encode()) + rb" (\d+)$", body, re.M)
    check(m is not None, "no %s in /metrics" % name)
    return int(m.group(1))


def wait_for(pred, timeout=10.0, what="condition", interval=0.02):
    """Polls pred() until it returns a true value (returned) or the deadline passes."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= end:
            raise TestFailure("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def bin_path(name):
    """A built binary; its absence fails the test (a missing prerequisite is no skip)."""
    p = os.path.join(BIN_DIR, name)
    check(os.access(p, os.X_OK), "%s is not built in %s (FOTA_BIN_DIR)" % (name, BIN_DIR))
    return p


# ---------------------------------------------------------------- what a test makes

_ROOT = os.path.abspath(os.environ.get("FOTA_TEST_TMP") or tempfile.gettempdir())
_live = []          # processes started by spawn() and not yet reaped
_failed = False     # an exception ended the test: what is left is killed unchecked
_daemons = []       # every Daemon of this process, for the failure report


def _make_workdir():
    os.makedirs(_ROOT, exist_ok=True)
    name = os.path.splitext(os.path.basename(sys.argv[0] or "python"))[0] or "python"
    return tempfile.mkdtemp(prefix=name + "-", dir=_ROOT)


def tempdir(prefix="tmp-"):
    """A new directory inside the test's work dir (removed with it at exit)."""
    return tempfile.mkdtemp(prefix=prefix, dir=WORK_DIR)


def spawn(args, **kw):
    """subprocess.Popen, remembered: killed at exit if still running."""
    p = subprocess.Popen(args, **kw)
    _live.append(p)
    return p


def _reap_all():
    for p in list(_live):
        if p.poll() is None:
            p.kill()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        _live.remove(p)


def _at_exit():
    bad = [] if _failed else _stop_running(_daemons)
    _reap_all()
    for d in _daemons:
        d._close_files()
    if LOOP_GUARD_ALLOWED:
        sys.stderr.write("loop guard: %s fotad_on_pg=%d\n" %
                         (os.path.basename(sys.argv[0]), len(_pg_dbs)))
    try:
        _pg_stop()
    except Exception as e:   # a server left running is the watchdog's, not a reason to stay
        bad.append("stopping the test's PostgreSQL: %s" % e)
    if os.environ.get("FOTA_KEEP_TMP"):
        sys.stderr.write("FOTA_KEEP_TMP: kept %s\n" % WORK_DIR)
    else:
        shutil.rmtree(WORK_DIR, ignore_errors=True)
    if bad:
        sys.stderr.write("FAIL: %s\n" % "\n".join(bad))
        sys.stderr.flush()
        os._exit(1)


def _stop_running(daemons):
    """Stops, with the usual checks, every daemon a passing test left running (its bad exit
    or sanitizer report must not go unseen). Returns the failures."""
    bad = []
    for d in daemons:
        if d.proc is not None:
            try:
                d.stop()
            except TestFailure as e:
                bad.append("%s left running by the test: %s" % (d.label, e))
    return bad


def finish(*daemons):
    """The end of a test's daemons, after a failure too: each one still running is stopped
    with the usual checks (stop), then every one removes what it made (cleanup). None (a daemon
    not made yet) is passed over."""
    try:
        for d in daemons:
            if d is not None and d.proc is not None and d.proc.poll() is None:
                d.stop()
    finally:
        for d in daemons:
            if d is not None:
                d.cleanup()


def _on_signal(sig, frame):
    global _failed
    _failed = True
    raise SystemExit(128 + sig)


if __name__ != "__main__":   # a test imports the harness (not the suite's fixture)
    WORK_DIR = _make_workdir()
    tempfile.tempdir = WORK_DIR
    os.environ["TMPDIR"] = WORK_DIR
    atexit.register(_at_exit)
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(_sig, _on_signal)


# ---------------------------------------------------------------- the PostgreSQL store

_pg = None          # the PgServer of this process, once a Fotad asked for one
_pg_dbs = {}        # data dir -> its database on _pg (a Fotad reusing a data dir reuses it)


def _pg_server():
    """The PostgreSQL server of this test process, started at the first call. Stopped by
    _at_exit after the daemons (not by pg_util's own atexit hook, which would run first and
    pull the store from under a daemon still being stopped); pg_server.sh's watchdog stops it
    should this process be killed."""
    global _pg
    if _pg is None:
        from pg_util import PgServer
        _pg = PgServer(start=False)
        try:
            _pg.start()
        finally:
            atexit.unregister(_pg.stop)
    return _pg


def _pg_stop():
    global _pg
    if _pg is not None:
        pg, _pg = _pg, None
        _pg_dbs.clear()
        pg.stop()


def pg_store(data_dir):
    """The --store value of a fotad on data_dir in the "pg" run: a new database (CREATE
    DATABASE t_N) for a new data dir, the same one again for a data dir seen before."""
    key = os.path.abspath(data_dir)
    if key not in _pg_dbs:
        name = "t_%d" % (len(_pg_dbs) + 1)
        _pg_dbs[key] = _pg_server().create_db(name)
    return "postgresql:" + _pg_dbs[key]


def _names_store(args, config):
    """Whether a fotad command line (or its config file) chooses the store itself."""
    if any(a == "--store" or a.startswith("--store=") for a in args):
        return True
    if config:
        with open(config) as f:
            return any(re.match(r"\s*store\s*=", line) for line in f)
    return False


def run(args, timeout=30, **kw):
    """subprocess.run capturing output; fails on a sanitizer report in it (a tool that exits
    1 on purpose would otherwise hide one). Returns the CompletedProcess."""
    kw.setdefault("capture_output", True)
    p = subprocess.run(args, timeout=timeout, **kw)
    for stream in (p.stderr, p.stdout):
        text = stream.decode(errors="replace") if isinstance(stream, bytes) else (stream or "")
        report = sanitizer_report(text)
        check(report is None, "sanitizer report from %s:\n%s" % (" ".join(args[:3]), report))
    return p


def rss_mb(pid):
    """The resident memory of process pid, in MB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise TestFailure("no VmRSS for pid %d" % pid)


def sanitizer_report(text):
    """The first sanitizer report in text (from its first line), or None."""
    for mark in SANITIZER_MARKS:
        at = text.find(mark)
        if at >= 0:
            sep = text.rfind("==================", max(0, at - 400), at)
            start = text.rfind("\n", 0, sep if sep >= 0 else at) + 1
            return text[start:start + 8000]
    return None


# ---------------------------------------------------------------- daemons

class Daemon:
    """A server process of a test. Its stderr (and stdout, unless split) goes to a log file in
    its own temp dir; log_text() and out_text() read what the current run wrote."""
    label = "daemon"

    def __init__(self, args, split_output=False, cwd=None):
        self.args = list(args)
        self.cwd = cwd
        self.tmp = tempdir(self.label + "-")
        self.logpath = os.path.join(self.tmp, self.label + ".log")
        self.outpath = os.path.join(self.tmp, self.label + ".out") if split_output else None
        self.expected_errors = []
        self.proc = None
        self.returncode = None
        self.ports = {}
        self._files = []
        self._offsets = {}
        self._tail = ""
        _daemons.append(self)

    # -- life cycle -------------------------------------------------------
    def _launch(self):
        check(self.proc is None, "%s started while running" % self.label)
        paths = [self.logpath] + ([self.outpath] if self.outpath else [])
        for path in paths:
            self._offsets[path] = os.path.getsize(path) if os.path.exists(path) else 0
        self._files = [open(path, "ab") for path in paths]
        out = self._files[-1]       # stdout: its own file, or the log
        self.returncode = None
        self.proc = spawn(self.args, stdout=out,
                          stderr=self._files[0], cwd=self.cwd)

    def _wait_ready(self, ready, timeout, what):
        """Polls ready() until true; fails at once if the process exits meanwhile."""
        def poll():
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._reap()
                raise TestFailure("%s exited with %s before %s:\n%s" %
                                  (self.label, rc, what, self.all_text()[-6000:]))
            return ready()
        wait_for(poll, timeout, "%s: %s" % (self.label, what))

    def stop(self, status=0, term=True, timeout=15.0):
        """Ends the process (SIGTERM first unless term=False, for one that exits by itself)
        and fails on a sanitizer report, an unexpected ERROR line or an exit status other
        than `status`. Returns the exit status."""
        if self.proc is None:
            return self.returncode
        if term and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure("%s did not exit within %.0fs%s" %
                              (self.label, timeout, " of SIGTERM" if term else ""))
        rc = self._reap()
        self.check_log()
        check(rc == status, "%s exit status %s, want %s:\n%s" %
              (self.label, rc, status, self.all_text()[-3000:]))
        return rc

    def kill(self):
        """SIGKILL (a crash); no checks."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self._reap()

    def _reap(self):
        rc = self.proc.returncode
        if self.proc in _live:
            _live.remove(self.proc)
        self.proc = None
        self.returncode = rc
        self._close_files()
        self._tail = self.all_text()[-6000:]
        return rc

    def _close_files(self):
        for f in self._files:
            f.close()
        self._files = []

    def cleanup(self):
        """Kills the process if running and removes its temp dir."""
        self.kill()
        if not os.environ.get("FOTA_KEEP_TMP"):
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, et, ev, tb):
        try:
            if et is None:
                self.stop()
        finally:
            self.cleanup()
        return False

    # -- output -------------------------------------------------------------
    def _read(self, path):
        try:
            with open(path, "rb") as f:
                f.seek(self._offsets.get(path, 0))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_text(self):
        """The log (stderr; with stdout unless split) of the current or last run."""
        return self._read(self.logpath)

    def out_text(self):
        """stdout of the current or last run (split_output only)."""
        return self._read(self.outpath) if self.outpath else self.log_text()

    def all_text(self):
        return self.log_text() + ("\n" + self.out_text() if self.outpath else "")

    def tail(self):
        """The end of the output for a failure report (kept after the files are gone)."""
        return self.all_text()[-6000:] if os.path.exists(self.logpath) else self._tail

    def wait_log(self, regex, timeout=10.0, out=False):
        """Waits until the log (stdout with out=True) matches regex (re.M); returns the match."""
        r = re.compile(regex, re.M)
        text = self.out_text if out else self.log_text
        return wait_for(lambda: r.search(text()), timeout, "%s %s /%s/" %
                        (self.label, "output" if out else "log line", regex))

    def wait_out(self, regex, timeout=10.0):
        return self.wait_log(regex, timeout, out=True)

    def count_log(self, regex, out=False):
        return len(re.findall(regex, self.out_text() if out else self.log_text(), re.M))

    def expect_error(self, regex):
        """Declares an ERROR line (regex, searched) as expected."""
        self.expected_errors.append(re.compile(regex))

    def check_log(self):
        text = self.all_text()
        if LOOP_GUARD_ALLOWED:
            for op in sorted(set(LOOP_GUARD_RE.findall(text))):
                sys.stderr.write("loop guard: %s op=%s\n" %
                                 (os.path.basename(sys.argv[0]), op))
        report = sanitizer_report(text)
        check(report is None, "sanitizer report in %s output:\n%s" % (self.label, report))
        for line in text.splitlines():
            if ERROR_LINE.search(line) and not any(r.search(line) for r in self.expected_errors):
                raise TestFailure("unexpected ERROR in %s output: %s" % (self.label, line))


class Fotad(Daemon):
    """fotad on ephemeral loopback ports with its data in a temp dir. Ports: self.ports["http"],
    ["device"], ... as logged; http_port and device_port for short.

    Options: http/device/device_tls/https/legacy (bool: ephemeral port or off), data_dir (reuse
    a data dir, e.g. after a restart), tls=(cert, key), extra=[more flags], log_level,
    config (a config file), store ("sqlite" or "pg"; DEFAULT_STORE unless extra or config
    name one)."""
    label = "fotad"

    def __init__(self, data_dir=None, http=True, device=True, device_tls=False, https=False,
                 legacy=False, tls=None, extra=(), log_level=None, config=None, store=None):
        args = [bin_path("fotad")]
        super().__init__(args)
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.args += ["--data", self.data_dir, "--bind", "127.0.0.1"]
        if log_level:
            self.args += ["--log-level", log_level]
        if config:
            self.args += ["-c", config]
        for flag, on in (("--http-port", http), ("--device-port", device),
                         ("--device-tls-port", device_tls), ("--https-port", https),
                         ("--legacy-port", legacy)):
            self.args += [flag, "0" if on else "off"]
        if tls:
            self.args += ["--tls-cert", tls[0], "--tls-key", tls[1]]
        self.args += list(extra)
        self.store = store or DEFAULT_STORE
        check(self.store in STORES, "Fotad store=%r" % self.store)
        if _names_store(extra, config):
            self.store = None       # the test's own choice
        elif self.store == "pg":
            self.args += ["--store", pg_store(self.data_dir)]
        if LOOP_GUARD_ALLOWED:
            self.expect_error(LOOP_GUARD_RE.pattern)
        self.wanted = [p for p, on in (("http", http), ("device", device),
                                        ("device-tls", device_tls and tls),
                                        ("https", https and tls), ("legacy", legacy)) if on]
        self.admin_key = None

    def start(self, timeout=15.0):
        """Starts fotad and waits for `fotad ready` and a `listening` line of every listener
        asked for."""
        self._launch()
        self.ports = {}

        def ready():
            text = self.log_text()
            if "fotad ready" not in text:
                return False
            for m in LISTEN_RE.finditer(text):
                self.ports[m.group(1)] = int(m.group(3))
            return True
        self._wait_ready(ready, timeout, "'fotad ready'")
        missing = [p for p in self.wanted if p not in self.ports]
        check(not missing, "fotad ready without listening on %s:\n%s" %
              (missing, self.log_text()[-3000:]))
        self.admin_key = self.read_admin_key()
        return self

    def read_admin_key(self):
        with open(os.path.join(self.data_dir, "owner.key")) as f:
            return f.read().strip()

    # -- HTTP ---------------------------------------------------------------
    @property
    def http_port(self):
        return self.ports["http"]

    @property
    def device_port(self):
        return self.ports["device"]

    @property
    def device_tls_port(self):
        return self.ports["device-tls"]

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

    def set_current(self, product_id, version):
        st, _, j = self.api("POST", "/v1/products/%d/roms/%s/current" % (product_id, version))
        check(st == 200, "make %s current: %d %r" % (version, st, j))
        return j

    def device_view(self, device_id):
        """The device's JSON view (GET /v1/devices/ID/, admin key)."""
        st, _, j = self.api("GET", "/v1/devices/%d/" % device_id)
        check(st == 200, "GET /v1/devices/%d/: %d %r" % (device_id, st, j))
        return j["device"]

    def create_device(self, product_id, name=None, bssid=None):
        body = {}
        if name:
            body["name"] = name
        if bssid:
            body["bssid"] = bssid
        st, _, j = self.api("POST", "/v1/products/%d/devices/" % product_id, body)
        check(st == 200, "create device: %d %r" % (st, j))
        return j


class Dropin(Daemon):
    """`fotad legacy ARGS`, the seed-compatible drop-in listener: stdout (the seed's lines and
    one `transfer ...` line per connection) and stderr (log lines) are kept apart. start()
    waits for `port : N` and `ota server is ready to be connected`; a command line that is
    refused is run with start(ready=False) and stop(status=1, term=False)."""
    label = "legacy"

    def __init__(self, args, cwd=None):
        super().__init__([bin_path("fotad"), "legacy"] + list(args), split_output=True, cwd=cwd)
        self.port = None

    def start(self, ready=True, timeout=15.0):
        self._launch()
        if not ready:
            return self
        port = re.compile(r"^port : (\d+)$", re.M)
        self._wait_ready(lambda: "ota server is ready to be connected" in self.out_text(),
                         timeout, "'ota server is ready to be connected'")
        m = port.search(self.out_text())
        check(m, "ready without a `port : N` line:\n" + self.out_text())
        self.port = self.ports["legacy"] = int(m.group(1))
        return self


# ---------------------------------------------------------------- content

def multipart(fields=(), files=(), boundary=None):
    """Builds a multipart/form-data body. fields: [(name, text)] or a dict, files:
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
    tmp = tempdir("img-")
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
        p = run(args)
        check(p.returncode == 0, "fotactl image make: %s" % p.stderr.decode(errors="replace"))
        with open(out, "rb") as f:
            data = f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _image_cache[k] = data
    return data


def make_cert(dirpath=None):
    """A self-signed RSA certificate for 127.0.0.1 made with `openssl req` in dirpath (a new
    temp dir by default). Returns (cert path, key path)."""
    dirpath = dirpath or tempdir("cert-")
    cert, key = os.path.join(dirpath, "cert.pem"), os.path.join(dirpath, "key.pem")
    p = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
             "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"], timeout=60)
    check(p.returncode == 0, "openssl req: %r" % p.stderr)
    return cert, key


def free_port():
    """A currently free loopback port (for 'port in use' tests only)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_file(dirpath, name, data):
    """Writes data (bytes) to dirpath/name; returns the path."""
    path = os.path.join(dirpath, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def recv_to_close(s):
    """Everything s receives until the peer closes the connection."""
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def open_fds(pid):
    """How many descriptors process pid holds."""
    return len(os.listdir("/proc/%d/fd" % pid))


def peer_closed(s):
    """True when the server closed s (EOF or reset), without waiting."""
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        s.setblocking(True)


def tls_client_hello():
    """The bytes of a real TLS ClientHello (Python's ssl over memory BIOs)."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    obj = ctx.wrap_bio(inc, out)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    data = out.read()
    check(len(data) > 100 and data[0] == 0x16, "no ClientHello: %r" % data[:16])
    return data


class Flood(threading.Thread):
    """Holds up to n connections to port on 127.0.0.1 (bound to the source addresses addrs in
    turn, if given); every one the server closes is opened again at once. Every 0.3 s each
    connection sends trickle(first), first being True for its first send. Counts opened and
    closed_by_server; stop.set() ends it (and closes what it holds)."""

    def __init__(self, port, n, trickle, addrs=None):
        super().__init__(daemon=True)
        self.port, self.n, self.trickle, self.addrs = port, n, trickle, addrs
        self.stop = threading.Event()
        self.socks = []
        self.started = set()
        self.opened = self.closed_by_server = 0

    def open_one(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.addrs:
            s.bind((self.addrs[self.opened % len(self.addrs)], 0))
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        self.socks.append(s)
        self.opened += 1

    def run(self):
        last = 0.0
        while not self.stop.is_set():
            while len(self.socks) < self.n:
                self.open_one()
            r, _, _ = select.select(self.socks, [], [], 0.05)
            for s in r:
                try:
                    data = s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    s.close()
                    self.socks.remove(s)
                    self.started.discard(s)
                    self.closed_by_server += 1
            if time.monotonic() - last >= 0.3:
                last = time.monotonic()
                for s in list(self.socks):
                    try:
                        s.send(self.trickle(s not in self.started))
                        self.started.add(s)
                    except OSError:
                        pass
        for s in self.socks:
            s.close()


# ---------------------------------------------------------------- running tests

def failure_report(exc, since=0):
    """The failure (with its causes) and the tail of the output of every daemon started
    since the `since`-th, as text."""
    if isinstance(exc, TestFailure) and exc.__context__ is None:
        out = [str(exc)]
    else:
        out = ["".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()]
    for d in _daemons[since:]:
        t = d.tail()
        if t.strip():
            out.append("--- %s %s (last %d chars) ---\n%s" % (d.label, " ".join(d.args[1:4]),
                                                              len(t), t))
    return "\n".join(out)


def run_tests(tests):
    """Runs test functions in order; those taking an argument get a fresh started Fotad.
    Exits 1 on the first failure (with the daemons' logs), 0 when all passed. A daemon a
    passing test left running is stopped and checked as if the test had stopped it."""
    global _failed
    for t in tests:
        t0, since = time.monotonic(), len(_daemons)
        try:
            if inspect.signature(t).parameters:
                with Fotad() as d:
                    t(d)
            else:
                t()
            bad = _stop_running(_daemons[since:])
            check(not bad, "\n".join(bad))
        except Exception as e:   # any exception fails the test: report it with the logs
            _failed = True
            print("FAIL %s: %s" % (t.__name__, failure_report(e, since)), file=sys.stderr)
            sys.exit(1)
        print("ok   %s (%.2fs)" % (t.__name__, time.monotonic() - t0))
    sys.exit(0)


def _excepthook(et, ev, tb):
    global _failed
    _failed = True
    if issubclass(et, Exception):
        sys.stderr.write("FAIL: %s\n" % failure_report(ev))
    else:
        sys.__excepthook__(et, ev, tb)


sys.excepthook = _excepthook


# ---------------------------------------------------------------- the suite's fixtures

def _processes_under(root):
    """(pid, command line) of every process whose command line names root."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if root in cmd:
            out.append((int(pid), cmd))
    return out


def _fixture(cmd, root):
    """sweep: kill processes and remove files a killed run left under root, then create it.
    check: the same, but anything found fails (a test left it behind)."""
    root = os.path.abspath(root)
    procs = _processes_under(root)
    for pid, _ in procs:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    left = sorted(os.listdir(root)) if os.path.isdir(root) else []
    shutil.rmtree(root, ignore_errors=True)
    if cmd == "sweep":
        os.makedirs(root)
        for pid, c in procs:
            print("note: killed pid %d left by an earlier run: %s" % (pid, c))
        if left:
            print("note: removed %d entries left by an earlier run: %s" % (len(left), left))
        return 0
    for pid, c in procs:
        print("FAIL: a test left process %d running: %s" % (pid, c), file=sys.stderr)
    if left:
        print("FAIL: tests left %d entries in %s: %s" % (len(left), root, left), file=sys.stderr)
    return 1 if procs or left else 0


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("sweep", "check"):
        sys.exit("usage: fotatest.py sweep|check ROOT")
    sys.exit(_fixture(sys.argv[1], sys.argv[2]))
