"""devchan_util.py - helpers of the device channel and ROM download tests: fotad started
through the harness (fotatest.py) at debug level, and a stock-firmware client that sends the
literal os_sprintf expansions of IoT_Demo's frames (espressif-protocol.md §2.3) and the exact
download requests of §3.1. Python 3 stdlib only.
"""
import re
import socket
import ssl
import threading
import time

import fotatest
from fotatest import check, fail, make_cert, wait_for  # noqa: F401  (the tests import them here)


def start_fotad(*extra, tls=None, data_dir=None):
    """A started fotatest.Fotad at log level debug with more flags `extra`; with tls=(cert,
    key) also its TLS device port (ports["device-tls"]) and HTTPS."""
    return fotatest.Fotad(data_dir=data_dir, device_tls=bool(tls), https=bool(tls), tls=tls,
                          extra=list(extra), log_level="debug").start()


# ---------------------------------------------------------------- device side

def active_frame(nonce, token, bssid, rom_version, devkey):
    return ('{"nonce": %d,"path": "/v1/device/activate/", "method": "POST", "body": '
            '{"encrypt_method": "PLAIN", "token": "%s", "bssid": "%s","rom_version":"%s"}, '
            '"meta": {"Authorization": "token %s"}}\n' % (nonce, token, bssid, rom_version, devkey))


def first_frame(nonce, devkey):
    return ('{"nonce": %d, "path": "/v1/device/identify", "method": "GET","meta": '
            '{"Authorization": "token %s"}}\n' % (nonce, devkey))


def beacon_frame(devkey):
    return ('{"path": "/v1/ping/", "method": "POST","meta": {"Authorization": "token %s"}}\n'
            % devkey)


def rpc_response_frame(nonce):
    return '{"status": 200, "nonce": %d, "deliver_to_device": true}\n' % nonce


def timer_frame(devkey):
    return ('{"body": {}, "get":{"is_humanize_format_simple":"true"},"meta": {"Authorization": '
            '"Token %s"},"path": "/v1/device/timers/","post":{},"method": "GET"}\n' % devkey)


def upgrade_frame(devkey, action, pre_version, upgrade_version):
    return ('{"path": "/v1/messages/", "method": "POST", "meta": {"Authorization": "token %s"},'
            '"get":{"action":"%s"},"body":{"pre_rom_version":"%s","rom_version":"%s"}}\n'
            % (devkey, action, pre_version, upgrade_version))


def parse_nonce(buf):
    """The device's parse_nonce (§2.5): first `"nonce": `, up to ',' else '}' else ']'."""
    i = buf.find('"nonce": ')
    if i < 0:
        return 0
    s = buf[i + 9:]
    for end in (",", "}", "]"):
        j = s.find(end)
        if j >= 0:
            return int(s[:j][:10])
    return 0


def copy_version(buf):
    """os_memcpy(upgrade_version, strstr(buf, "\\"version\\":") + 12, 16); [15] = 0."""
    i = buf.find('"version":')
    check(i >= 0, "no version in %r" % buf)
    return buf[i + 12:i + 12 + 15]


class StockDevice:
    """One control connection, reading each TCP segment as one message (as the device)."""

    def __init__(self, port, devkey, tls=False):
        self.devkey = devkey
        raw = socket.create_connection(("127.0.0.1", port), timeout=5)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("AES128-SHA")
            raw = ctx.wrap_socket(raw)
            self.cipher = raw.cipher()
        self.s = raw
        self.pending = b""

    def send(self, text):
        self.s.sendall(text.encode() if isinstance(text, str) else text)

    def recv_msg(self, timeout=5.0):
        """Next server message (split on newlines, as the server sends one per line)."""
        end = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = end - time.monotonic()
            if left <= 0:
                fail("no message from the server (have %r)" % self.pending)
            self.s.settimeout(left)
            try:
                d = self.s.recv(4096)
            except socket.timeout:
                continue
            if not d:
                fail("server closed the device connection (have %r)" % self.pending)
            self.pending += d
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode() + "\n"

    def closed(self, timeout=5.0):
        """True once the server closes (reads and drops anything before the EOF)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.s.settimeout(max(0.01, end - time.monotonic()))
            try:
                d = self.s.recv(4096)
            except socket.timeout:
                continue
            except (ConnectionResetError, ssl.SSLError):
                return True
            if not d:
                return True
            self.pending += d
        return False

    def close(self):
        self.s.close()


# ---------------------------------------------------------------- download side

PHEAD = ("Connection: keep-alive\r\nCache-Control: no-cache\r\nUser-Agent: Mozilla/5.0 "
         "(Windows NT 5.1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/30.0.1599.101 "
         "Safari/537.36 \r\nAccept: */*\r\nAuthorization: token %s\r\nAccept-Encoding: "
         "gzip,deflate,sdch\r\nAccept-Language: zh-CN,zh;q=0.8\r\n\r\n")


def nonos_url(version, filename, port, devkey):
    """The IoT_Demo server->url (§3.1), byte for byte."""
    return ("GET /v1/device/rom/?action=download_rom&version=%s&filename=%s HTTP/1.0\r\n"
            "Host: 127.0.0.1:%d\r\n" % (version, filename, port)) + PHEAD % devkey


def libupgrade_head(url):
    """NONOS >= 2.0 phase 1: every GET -> HEAD, then keep-alive -> close (§3.3)."""
    return url.replace("GET", "HEAD").replace("keep-alive", "close")


def http_exchange(port, request, read_body=True, max_bytes=4 << 20, timeout=10.0, tls=None,
                  wait_close=True):
    """Sends request bytes; returns (first_segment, header_bytes, body_bytes, closed).
    wait_close=False: stop once Content-Length bytes of body are in."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if tls:
        s = tls.wrap_socket(s)
    s.sendall(request)
    first = s.recv(65536)
    data = first
    closed = not first
    end = time.monotonic() + timeout
    while not closed and len(data) < max_bytes and time.monotonic() < end:
        if not read_body and b"\r\n\r\n" in data:
            break
        if not wait_close and b"\r\n\r\n" in data:
            h, _, b = data.partition(b"\r\n\r\n")
            cl = content_length(h + b"\r\n")
            if cl is not None and len(b) >= cl:
                break
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        if not d:
            closed = True
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return first, head + b"\r\n\r\n", body, closed


def content_length(header):
    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", header)
    return int(m.group(1)) if m else None


def check_rom_header(first, header, size, filename):
    """§3.5: the whole header in the first segment, 200 OK, exact Content-Length, no chunking."""
    check(b"\r\n\r\n" in first, "header not complete in the first segment: %r" % first[:300])
    check(b"200 OK\r\n" in first, "no '200 OK\\r\\n' in %r" % header)
    check(header.startswith(b"HTTP/1."), "status line %r" % header[:40])
    check(content_length(first) == size,
          "Content-Length %s != %d in %r" % (content_length(first), size, header))
    lower = header.lower()
    check(b"transfer-encoding" not in lower, "chunked reply")
    check(b"content-encoding" not in lower, "compressed reply")
    check(b"content-disposition: attachment;filename=" + filename.encode() in lower,
          "Content-Disposition missing: %r" % header)


def run_in_thread(fn, *args):
    """Runs fn(*args) in a thread; returns a function that joins and gives its result."""
    box = {}

    def target():
        try:
            box["r"] = fn(*args)
        except BaseException as e:  # reported by the joiner
            box["e"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()

    def join(timeout=30):
        t.join(timeout)
        check(not t.is_alive(), "thread did not finish")
        if "e" in box:
            raise box["e"]
        return box.get("r")
    return join


def identify(port, master):
    """True when the device channel takes master's identify, False when it refuses it."""
    dev = StockDevice(port, master)
    try:
        dev.send(first_frame(846930886, master))
        msg = dev.recv_msg()
        if '"status": 403' in msg:
            return False
        check(parse_nonce(msg) == 846930886 and '"device"' in msg, "identify reply %r" % msg)
        return True
    finally:
        dev.close()
