"""legacy_daemon_test.py - the legacy listener inside fotad: with no release it closes the
request (no_image); after a product's release (user1.bin, user2.bin) is uploaded through the
REST API and made current, a stock client and an extension client get the right images on
the legacy port; SIGTERM stops fotad cleanly. Skipped when fotad is not built."""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from legacy_util import (BIN_DIR, SANITIZER_MARKS, fail, make_image, stock_client,  # noqa: E402
                         stream_client)


class Fotad:
    def __init__(self, tmp):
        self.logpath = os.path.join(tmp, "fotad.log")
        self.log = open(self.logpath, "w+b")
        args = [os.path.join(BIN_DIR, "fotad"), "--data", os.path.join(tmp, "data"),
                "--store", "memory", "--bind", "127.0.0.1", "--http-port", "0",
                "--https-port", "off", "--device-port", "off", "--device-tls-port", "off",
                "--legacy-port", "0", "--legacy-interval-ms", "2", "--legacy-timeout-ms", "2000",
                "--log-level", "debug"]
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


def main():
    if not os.access(os.path.join(BIN_DIR, "fotad"), os.X_OK):
        print("SKIP: fotad is not built")
        return
    tmp = tempfile.mkdtemp(prefix="legacy-daemon-")
    u1 = make_image(os.path.join(tmp, "user1.bin"), 1, 48 * 1024, seed=31)
    u2 = make_image(os.path.join(tmp, "user2.bin"), 2, 48 * 1024, seed=32)
    d = Fotad(tmp)
    port = d.ports["legacy"]

    # nothing published yet: the request is closed without an answer
    r = stock_client(port, 1)
    if r.ok or r.length is not None:
        fail("got an answer with no release: %s" % r.error)
    d.wait_log(r"conn=\d+ peer=127\.0\.0\.1:\d+ event=end section=1 mode=paced "
               r"result=no_image .*mod=legacy")

    prod = d.api("POST", "/v1/products/", {"name": "plug", "flash_map": 2})["product"]
    body, ctype = multipart({"version": "v1.0"}, {"user1.bin": u1, "user2.bin": u2})
    d.api("POST", "/v1/products/%d/roms/" % prod["id"], body, ctype)
    d.api("POST", "/v1/products/%d/roms/v1.0/current" % prod["id"], b"")

    r = stock_client(port, 2)
    if not r.ok or r.data != u2 or r.first_read != 4:
        fail("stock client on fotad: %s" % r.error)
    if stream_client(port, 1) != u1:
        fail("stream client on fotad got the wrong bytes")
    d.wait_log(r"conn=\d+ .*section=2 mode=paced result=ok bytes=%d .*"
               r"image=\"plug v1\.0 user2\.bin\" mod=legacy" % len(u2))
    d.wait_log(r"section=1 mode=stream result=ok")
    rc = d.stop()
    if rc != 0:
        fail("fotad exit status %d" % rc)
    print("ok")


if __name__ == "__main__":
    main()
