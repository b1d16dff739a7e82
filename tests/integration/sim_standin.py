"""sim_standin.py - small Python stand-ins for the fota server pieces that
fota-sim talks to, used until fotad grows its device channel:

- DeviceServer: the :8000 channel per reference §2.4 (minimum compatible
  replies, sorted-key json.dumps pushes, one message per write) plus the ROM
  download of §3.5 (HEAD and GET, exact Content-Length, header in the first
  segment, stray NUL and junk-tailed version tolerated, Range for resumes).
- LegacyServer: the seed-000 dfu_ota_server protocol on port 5555, paced or
  not (unpaced is what overflows a stock client's 1280-byte buffer).

Stdlib only; every socket is on 127.0.0.1 with an ephemeral port.
"""
import json
import os
import re
import socket
import struct
import threading
import time

import fotatest

BIN = fotatest.BIN_DIR


def sim_path():
    return fotatest.bin_path("fota-sim")


def write_image(path, slot, version, size=None, map_=2):
    cmd = [sim_path(), "--write-image", "%d:%s:%s" % (slot, version, path), "--map", str(map_)]
    if size:
        cmd += ["--image-size", str(size)]
    p = fotatest.run(cmd)
    fotatest.check(p.returncode == 0, "fota-sim --write-image: %r" % p.stderr)
    with open(path, "rb") as f:
        return f.read()


def upload_stock(d, pid, version, tmp, size=40000):
    """Uploads user1.bin and user2.bin of version (written by write_image into tmp, flash map
    2, size bytes) as a release of product pid of fotad d; the upload's reply."""
    tag = re.sub(r"[^A-Za-z0-9.]", "_", version)
    files = [("user%d.bin" % s, write_image(os.path.join(tmp, "user%d-%s.bin" % (s, tag)), s,
                                            version, size)) for s in (1, 2)]
    return d.upload_release(pid, version, files=files)


def stock_product(d, tmp, *versions, name="plug", size=40000):
    """A product name of fotad d (flash map 2, serial 45772: a stock IoT_Demo's) with a
    release of each of versions (upload_stock); its id."""
    pid = d.create_product(name=name, flash_map=2, serial="45772")["id"]
    for v in versions:
        upload_stock(d, pid, v, tmp, size)
    return pid


def run_sim(args, timeout=60):
    """Runs fota-sim (a sanitizer report fails the test); returns (exit code, stdout,
    stderr)."""
    p = fotatest.run([sim_path()] + args, timeout=timeout, text=True)
    return p.returncode, p.stdout, p.stderr


def _listener():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    return s


def _dumps(obj):
    # json.dumps defaults: ", " and ": " separators; sorted keys; no "\/"
    return json.dumps(obj, sort_keys=True) + "\n"


class DeviceServer:
    """Channel (:8000 dialect) + ROM download stand-in."""

    def __init__(self, keys, images, target, ping_reply=True, push_delay=0.05, split=None):
        self.keys = set(keys)
        self.images = images            # {"user1.bin": bytes, "user2.bin": bytes}
        self.target = target
        self.push_delay = push_delay
        self.ping_reply = ping_reply
        # split=None: header + first body bytes in one write (§3.5 #3);
        # "status": the status line alone first (tolerated by NONOS >= 2.0);
        # "bad": cut inside the status line (breaks stock devices)
        self.split = split
        self.connections = 0
        self.lock = threading.Lock()
        self.frames = []                # (key or None, raw line) in arrival order
        self.http = []                  # (method, path, headers dict, raw request)
        self.reports = []               # (key, action, pre, rom)
        self.errors = []
        self.activated = set()
        self.version = {}               # key -> last known rom_version (D1 body, D7)
        self.nonce = 684196666
        self.stop = False
        self.chan = _listener()
        self.web = _listener()
        self.chan_port = self.chan.getsockname()[1]
        self.http_port = self.web.getsockname()[1]
        for srv, fn in ((self.chan, self._chan_conn), (self.web, self._http_conn)):
            threading.Thread(target=self._accept, args=(srv, fn), daemon=True).start()

    def close(self):
        self.stop = True
        for s in (self.chan, self.web):
            try:
                s.close()
            except OSError:
                pass

    def _accept(self, srv, fn):
        while not self.stop:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=fn, args=(c,), daemon=True).start()

    def _next_nonce(self):
        with self.lock:
            self.nonce += 1
            return self.nonce

    def _send(self, c, obj):
        # one message per TCP write, never coalesced with the next one
        c.sendall(_dumps(obj).encode())
        time.sleep(self.push_delay)

    def _push(self, c, key, action):
        get = {"action": action}
        if action == "sys_upgrade":
            get["version"] = self.target
        self._send(c, {"deliver_to_device": True, "get": get,
                       "meta": {"Authorization": "token " + key}, "method": "GET",
                       "nonce": self._next_nonce(), "path": "/v1/device/rpc/"})

    def _chan_conn(self, c):
        with self.lock:
            self.connections += 1
        buf = b""
        key = None
        pushes = 0
        try:
            while not self.stop:
                data = c.recv(4096)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    raw = line.decode()
                    with self.lock:
                        self.frames.append((key, raw))
                    try:
                        msg = json.loads(raw)
                    except ValueError:
                        self.errors.append("not JSON: %r" % raw)
                        continue
                    auth = msg.get("meta", {}).get("Authorization", "")
                    k = auth.split(" ", 1)[1] if " " in auth else ""
                    if "status" in msg and "path" not in msg:
                        continue                      # D4: answer to our push
                    if k not in self.keys:
                        self._send(c, {"status": 403, "message": "bad key"})
                        continue
                    key = k
                    path = msg.get("path")
                    if path == "/v1/device/activate/":
                        self.activated.add(k)
                        self.version[k] = msg["body"]["rom_version"]
                        self._send(c, {"status": 200, "nonce": msg["nonce"], "activate_status": 1,
                                       "device": {"id": 1, "rom_version": msg["body"]["rom_version"]}})
                    elif path == "/v1/device/identify":
                        self._send(c, {"status": 200, "nonce": msg["nonce"],
                                       "message": "device identified", "device": {"id": 1}})
                        if pushes == 0 and self.version.get(k) != self.target:
                            pushes += 1
                            self._push(c, k, "sys_upgrade")
                    elif path == "/v1/device/timers/":
                        self._send(c, {"status": 200, "timestamp": int(time.time()), "timers": ""})
                    elif path == "/v1/ping/":
                        if self.ping_reply:
                            self._send(c, {"status": 200, "message": "ping success"})
                    elif path == "/v1/messages/":
                        act = msg["get"]["action"]
                        with self.lock:
                            self.reports.append((k, act, msg["body"]["pre_rom_version"],
                                                 msg["body"]["rom_version"]))
                        self._send(c, {"status": 200, "message": "send message success"})
                        if act == "device_upgrade_success":
                            self.version[k] = msg["body"]["rom_version"]
                            self._push(c, k, "sys_reboot")
                        elif pushes < 3:
                            pushes += 1
                            self._push(c, k, "sys_upgrade")
                    else:
                        self.errors.append("unexpected path %r" % path)
        except OSError:
            return
        finally:
            c.close()

    def _http_conn(self, c):
        try:
            req = b""
            while b"\r\n\r\n" not in req:
                d = c.recv(4096)
                if not d:
                    return
                req += d
            head = req.split(b"\r\n\r\n", 1)[0].decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            hdrs = {}
            for l in lines[1:]:
                n, v = l.split(":", 1)
                hdrs[n.strip().lower()] = v.strip()
            with self.lock:
                self.http.append((method, target, hdrs, req))
            m = re.search(r"[?&]version=([^&]*)", target)
            ver = m.group(1).split('"', 1)[0] if m else ""       # junk-tailed: cut at '"'
            fm = re.search(r"[?&]filename=([^&]*)", target)
            img = self.images.get(fm.group(1)) if fm else None
            if method not in ("GET", "HEAD") or img is None or ver != self.target[:len(ver)] or not ver:
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            start = 0
            r = re.match(r"bytes=(\d+)-$", hdrs.get("range", ""))
            if r and int(r.group(1)) < len(img):
                start = int(r.group(1))
                status = "206 Partial Content"
                extra = "Content-Range: bytes %d-%d/%d\r\n" % (start, len(img) - 1, len(img))
            else:
                status, extra = "200 OK", ""
            hdr = ("HTTP/1.1 %s\r\nContent-Type: application/octet-stream\r\n"
                   "Content-Length: %d\r\n%sContent-Disposition: attachment;filename=%s\r\n"
                   "Connection: close\r\n\r\n" % (status, len(img) - start, extra, fm.group(1)))
            body = b"" if method == "HEAD" else img[start:]
            data = hdr.encode() + body
            cut = {"status": hdr.index("\r\n") + 2, "bad": 12}.get(self.split)
            if cut:
                c.sendall(data[:cut])
                time.sleep(0.1)           # two segments, not one
                data = data[cut:]
            # header and the first body bytes in one segment (the device's check)
            c.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            c.close()


class LegacyServer:
    """seed 000 dfu_ota_server: 1 byte in, 4-byte LE length + image out."""

    def __init__(self, fw1, fw2, paced=True):
        self.fw = {1: fw1, 2: fw2}
        self.paced = paced
        self.results = []
        self.srv = _listener()
        self.port = self.srv.getsockname()[1]
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stop = True
        self.srv.close()

    def _accept(self):
        while not self.stop:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        try:
            b = c.recv(16)
            if len(b) != 1 or b[0] & 0x7F not in (1, 2):
                self.results.append("bad request")
                return
            img = self.fw[b[0] & 0x7F]
            c.sendall(struct.pack("<I", len(img)))
            if self.paced:
                for i in range(0, len(img), 1280):
                    c.sendall(img[i:i + 1280])
                    time.sleep(0.02)
            else:
                c.sendall(img)              # what the 1280-byte buffer cannot take
            self.results.append("sent")
            c.recv(16)
        except OSError:
            self.results.append("client gone")
        finally:
            c.close()
