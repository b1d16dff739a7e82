"""legacy_util.py - shared helpers for the legacy (port 5555) integration tests and bench.

Starts the drop-in listener (`fotad legacy`, or fota-legacy-test-driver when fotad is not
built), makes test images (`fotactl image make` when available, else a Python builder that
follows espressif-protocol.md §5/§6.2), and plays the seed's ESP8266 client.
Python 3 stdlib only.
"""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import zlib

BIN_DIR = os.path.abspath(os.environ.get("FOTA_BIN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin"))
CHUNK_MAX = 1280
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "ThreadSanitizer", "MemorySanitizer")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def server_cmd():
    """Command prefix that runs the drop-in mode: fotad legacy, else the test driver."""
    fotad = os.path.join(BIN_DIR, "fotad")
    if os.access(fotad, os.X_OK):
        return [fotad, "legacy"]
    drv = os.path.join(BIN_DIR, "fota-legacy-test-driver")
    if os.access(drv, os.X_OK):
        return [drv]
    fail("neither %s nor %s is built" % (fotad, drv))


# ------------------------------------------------------------------ images

def esp_crc(data):
    c = zlib.crc32(data) & 0xFFFFFFFF
    return (c ^ 0xFFFFFFFF) if c & 0x80000000 else c + 1


def py_image(slot, size, seed=1, size_map=2, rtos1=False):
    """A NONOS>=2.0 "new" image (EA 04 00 slot) of about `size` bytes with a valid checksum
    and CRC. rtos1: the RTOS 1.x gen_appbin header instead (EA 04 <mode> <map<<4|freq>, no
    slot number), what the seed's users flash."""
    def filler(n, s):
        out = bytearray(n)
        x = (s * 2654435761) & 0xFFFFFFFF
        for i in range(n):
            x = (x * 1103515245 + 12345) & 0xFFFFFFFF
            out[i] = (x >> 16) & 0xFF
        return bytes(out)

    entry = 0x40100004
    segs = [(0x40100000, filler(2048, seed + 1)), (0x3FFE8000, filler(64, seed + 2)),
            (0x3FFE8040, filler(512, seed + 3))]
    e9_len = 8 + sum(8 + len(d) for _, d in segs)
    fixed = 16 + e9_len + 16 + 4          # headers, segments, worst-case padding+checksum, CRC
    irom_len = max(16, ((size - fixed) // 16) * 16)
    if rtos1:
        out = bytearray(struct.pack("<BBBBI", 0xEA, 4, 0, size_map << 4, entry))
    else:
        out = bytearray(struct.pack("<BBBBI", 0xEA, 4, 0, slot, entry))
    out += struct.pack("<II", 0, irom_len) + filler(irom_len, seed)
    out += struct.pack("<BBBBI", 0xE9, len(segs), 0, (size_map << 4) | 0, entry)
    xsum = 0xEF
    for addr, data in segs:
        out += struct.pack("<II", addr, len(data)) + data
        for b in data:
            xsum ^= b
    out += bytes((len(out) | 15) - len(out))
    out.append(xsum)
    out += struct.pack("<I", esp_crc(bytes(out)))
    return bytes(out)


def make_image(path, slot, size, version="v1.0", seed=1, flash_map=2):
    """Writes an image for slot (built for size map flash_map) to path; returns its bytes."""
    fotactl = os.path.join(BIN_DIR, "fotactl")
    if os.access(fotactl, os.X_OK):
        cmd = [fotactl, "image", "make", "--slot", str(slot), "--flash-map", str(flash_map),
               "--version", version, "--size", str(size), "-o", path]
        r = subprocess.run(cmd, capture_output=True, timeout=30)
        if r.returncode == 0 and os.path.exists(path):
            with open(path, "rb") as f:
                return f.read()
        # an older fotactl without --size: fall back to the Python builder
    data = py_image(slot, size, seed=seed, size_map=flash_map)
    with open(path, "wb") as f:
        f.write(data)
    return data


# ------------------------------------------------------------------ server process

class Server:
    """The drop-in listener as a child process; stdout/stderr collected by threads."""

    def __init__(self, args, expect_start=True, timeout=15):
        self.cmd = server_cmd() + list(args)
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        self.out, self.err = [], []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.out)),
                        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err))]
        for t in self.threads:
            t.daemon = True
            t.start()
        self.port = None
        if expect_start:
            m = self.wait_out(r"^port : (\d+)$", timeout)
            if not m:
                self.stop()
                fail("server did not start: %s\nstdout:\n%s\nstderr:\n%s"
                     % (self.cmd, self.stdout(), self.stderr()))
            self.port = int(m.group(1))
            self.wait_out(r"ready to be connected", timeout)

    def _pump(self, stream, sink):
        for line in stream:
            with self.lock:
                sink.append(line.rstrip("\r\n"))

    def stdout(self):
        with self.lock:
            return "\n".join(self.out)

    def stderr(self):
        with self.lock:
            return "\n".join(self.err)

    def wait_out(self, pattern, timeout=10, stream="out"):
        """Polls the collected output for a regex (bounded); returns the match or None."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.stdout() if stream == "out" else self.stderr())
            if m:
                return m
            if self.proc.poll() is not None:
                for t in self.threads:
                    t.join(2)
                m = rx.search(self.stdout() if stream == "out" else self.stderr())
                return m
            time.sleep(0.02)
        return None

    def count_out(self, pattern):
        return len(re.findall(pattern, self.stdout(), re.M))

    def wait_exit(self, timeout=15):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
        for t in self.threads:
            t.join(5)
        return rc

    def stop(self):
        """SIGTERM, wait, and fail on a sanitizer report or a bad exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.wait_exit()
        self.check_clean()
        return rc

    def check_clean(self):
        """Fails on a sanitizer report or an ERROR log line (the listener logs ERROR only for
        source or socket failures, which no test provokes)."""
        err = self.stderr() + "\n" + self.stdout()
        for mark in SANITIZER_MARKS:
            if mark in err:
                fail("sanitizer report in server output:\n" + err)
        if re.search(r"Z ERROR ", err):
            fail("ERROR log line in server output:\n" + err)


# ------------------------------------------------------------------ clients

class StockResult:
    def __init__(self):
        self.ok = False
        self.error = None
        self.data = b""
        self.length = None
        self.reads = 0
        self.first_read = None
        self.overflows = 0       # later reads over 1280 bytes: the stock client's stack overflows
        self.t_first = None
        self.t_last = None


def stock_client(port, section, host="127.0.0.1", timeout=30, stop_after=None,
                 strict=True):
    """Behaves like the seed's dfu_ota.c: sends one byte, needs the first receive to be
    exactly the 4-byte length, copies every later receive into a 1280-byte buffer, and hangs
    up once it has the whole image. Reads promptly with a generous buffer, so a read over
    1280 bytes means two chunks were in its socket at once. strict: stop at the first fault,
    as the device would. stop_after: hang up after that many image bytes."""
    r = StockResult()
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(bytes([section]))
        buf = bytearray()
        while True:
            chunk = s.recv(65536)
            now = time.monotonic()
            if not chunk:
                r.error = "server closed after %d of %s bytes" % (len(buf), r.length)
                break
            r.reads += 1
            if r.length is None:
                r.first_read = len(chunk)
                if len(chunk) != 4:
                    r.error = "received length error (first read %d bytes)" % len(chunk)
                    if strict:
                        break
                    chunk4, rest = chunk[:4], chunk[4:]
                    buf += rest
                    chunk = chunk4
                r.length = struct.unpack("<i", chunk[:4])[0]
                r.t_first = now
                if r.length < 0:
                    r.error = "firmware_length error"
                    break
                continue
            if len(chunk) > CHUNK_MAX:
                r.overflows += 1
                if strict:
                    r.error = "receive of %d bytes overflows the 1280-byte buffer" % len(chunk)
                    break
            buf += chunk
            r.t_last = now
            if len(buf) > r.length:
                r.error = "received data size is not marched"
                break
            if stop_after is not None and len(buf) >= stop_after:
                r.error = "hung up on purpose"
                break
            if len(buf) == r.length:
                r.ok = r.error is None
                break
        r.data = bytes(buf)
    except OSError as e:
        r.error = "socket error: %s" % e
    finally:
        s.close()
    return r


def stream_client(port, section, host="127.0.0.1", timeout=30):
    """Extension client: request byte 0x80|section, reads length + image as fast as it can."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(bytes([0x80 | section]))
        head = b""
        while len(head) < 4:
            c = s.recv(4 - len(head))
            if not c:
                return None
            head += c
        n = struct.unpack("<I", head)[0]
        body = bytearray(n)
        view, got = memoryview(body), 0
        while got < n:
            k = s.recv_into(view[got:])
            if k == 0:
                return bytes(body[:got])
            got += k
        return bytes(body)
    finally:
        s.close()


# ------------------------------------------------------------------ fotad

class Fotad:
    """fotad with its SQLite store in tmp on ephemeral loopback ports (HTTP and legacy only)."""

    def __init__(self, tmp, extra=()):
        self.logpath = os.path.join(tmp, "fotad.log")
        self.log = open(self.logpath, "w+b")
        args = [os.path.join(BIN_DIR, "fotad"), "--data", os.path.join(tmp, "data"),
                "--bind", "127.0.0.1", "--http-port", "0",
                "--https-port", "off", "--device-port", "off", "--device-tls-port", "off",
                "--legacy-port", "0", "--log-level", "debug"] + list(extra)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.ports = {}
        deadline = time.monotonic() + 15
        while not {"http", "legacy"} <= set(self.ports):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                fail("fotad did not start:\n" + self.text())
            for m in re.finditer(r"listening proto=(\S+) addr=\S+:(\d+)", self.text()):
                self.ports[m.group(1)] = int(m.group(2))
            time.sleep(0.02)
        self.admin = open(os.path.join(tmp, "data", "owner.key")).read().strip()

    def text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            time.sleep(0.02)
        fail("no log line matching %r:\n%s" % (pattern, self.text()))

    def api(self, method, path, body=None, ctype="application/json"):
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.ports["http"], path),
                                     data=data, method=method)
        req.add_header("Authorization", "token " + self.admin)
        if data is not None:
            req.add_header("Content-Type", ctype)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            fail("%s %s -> %d %s" % (method, path, e.code, e.read()[:500]))

    def release(self, name, version, files, flash_map=2):
        """Creates product `name`, uploads files {name: bytes} as `version` and makes it
        current. Returns the product id."""
        prod = self.api("POST", "/v1/products/", {"name": name, "flash_map": flash_map})["product"]
        body, ctype = multipart({"version": version}, files)
        self.api("POST", "/v1/products/%d/roms/" % prod["id"], body, ctype)
        self.api("POST", "/v1/products/%d/roms/%s/current" % (prod["id"], version), b"")
        return prod["id"]

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            fail("fotad did not stop on SIGTERM")
        text = self.text()
        for mark in SANITIZER_MARKS:
            if mark in text:
                fail("sanitizer report:\n" + text)
        for line in text.splitlines():
            if " ERROR " in line:
                fail("unexpected ERROR line: " + line)
        return rc


def multipart(fields, files):
    b = uuid.uuid4().hex
    out = b""
    for k, v in fields.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                % (b, k, v)).encode()
    for name, data in files.items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n" % (b, name)).encode()
        out += data + b"\r\n"
    out += ("--%s--\r\n" % b).encode()
    return out, "multipart/form-data; boundary=" + b
