"""arduino_util.py - what the Arduino-core integration tests share (Python 3 stdlib + the
openssl command): .bin files laid out as elf2bin.py writes them (reference arduino-ota §1.1),
gzip and signed variants (signing.py's trailer, §7.2), ESPhttpUpdate's request sent byte for
byte over a raw socket (§2.1) with the answer read to the connection's close, and arduino
products and releases made through the REST API.
"""
import gzip
import hashlib
import json
import os
import random
import socket
import struct
import subprocess

from fotatest import check, multipart, recv_to_close, tempdir

CRC_POLY = 0x04C11DB7


def crc8266(data):
    """elf2bin.py's crc8266: MSB first, init 0xFFFFFFFF, no final XOR."""
    table = []
    for n in range(256):
        c = n << 24
        for _ in range(8):
            c = ((c << 1) ^ CRC_POLY) & 0xFFFFFFFF if c & 0x80000000 else (c << 1) & 0xFFFFFFFF
        table.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ table[((crc >> 24) ^ b) & 0xFF]
    return crc


def _image(segs, mode, sizefreq, entry, zero_first8, to_addr, rnd):
    out = bytearray([0xE9, len(segs), mode, sizefreq]) + struct.pack("<I", entry)
    total, csum = 8, 0xEF
    for i, (addr, size) in enumerate(segs):
        out += struct.pack("<II", addr, size)
        # code-like bytes: 4-byte words from a small vocabulary (compresses as images do)
        words = [bytes(rnd.getrandbits(8) for _ in range(4)) for _ in range(48)]
        data = bytearray(b"".join(rnd.choice(words) for _ in range(size // 4 + 1))[:size])
        if zero_first8 and i == 0:
            data[:8] = bytes(8)
        out += data
        total += 8 + size
        for b in data:
            csum ^= b
    total += 1
    while total & 15:
        total += 1
        out.append(0)
    out.append(csum)
    while to_addr and len(out) < to_addr:
        out.append(0xAA)
    return out


def build_image(mode=3, size_code=4, freq=0, irom=20000, crc=True, seed=1, nsketch=5):
    """An Arduino .bin: eboot (2 segments, 0xAA to 0x1000), the sketch (5 segments, or 4 as
    esptool-ck), and with crc the length/CRC words patched at 0x1010 after the checksum
    (every core >= 2.7 build: its sketch checksum matches only with them zeroed)."""
    rnd = random.Random(seed)
    sf = (size_code << 4) | freq
    eboot = _image([(0x4010F000, 0xD60), (0x3FFF20B8, 0x28)], mode, sf, 0x4010F480, False,
                   0x1000, rnd)
    segs = [(0x40201010, irom), (0x40100000, 0x1234), (0x40101234, 0x456), (0x3FFE8000, 0x321),
            (0x3FFE8400, 0x789)]
    if nsketch == 4:
        segs = [segs[0], segs[1], segs[3], segs[4]]
    f = bytearray(eboot + _image(segs, mode, sf, 0x401000C0, True, 0, rnd))
    if crc:
        f[0x1010:0x1018] = bytes(8)
        c = crc8266(f)
        f[0x1010:0x1014] = struct.pack("<I", len(f))
        f[0x1014:0x1018] = struct.pack("<I", c)
    return bytes(f)


def with_mode(img, mode):
    """The image as flashed by a device whose flash mode is mode (the updater rewrites byte 2)."""
    b = bytearray(img)
    b[2] = mode
    return bytes(b)


def md5(data):
    return hashlib.md5(data).hexdigest()


def gz(data):
    """elf2bin.py -g: one gzip member (Python's gzip module)."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def make_key():
    """A fresh RSA-2048 key pair: (private.pem path, public PEM text)."""
    d = tempdir("key-")
    priv = os.path.join(d, "private.key")
    subprocess.run(["openssl", "genrsa", "-out", priv, "2048"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pub = subprocess.run(["openssl", "rsa", "-in", priv, "-pubout"], check=True,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout.decode()
    return priv, pub


def sign(payload, priv, legacy=False):
    """signing.py's output: payload || signature || uint32_le(len). legacy: core 2.5's form
    (PKCS#1 type 1 around the raw SHA-256, no DigestInfo)."""
    d = tempdir("sig-")
    src = os.path.join(d, "payload")
    with open(src, "wb") as f:
        f.write(hashlib.sha256(payload).digest() if legacy else payload)
    if legacy:
        cmd = ["openssl", "pkeyutl", "-sign", "-inkey", priv, "-in", src,
               "-pkeyopt", "rsa_padding_mode:pkcs1"]
    else:
        cmd = ["openssl", "dgst", "-sha256", "-sign", priv, src]
    sig = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    return payload + sig + struct.pack("<I", len(sig))


def core_request(path, host, version="1.0.0", mac="DE:BA:7A:B1:E0:42", sketch_md5=None,
                 free_space=4194304, sketch_size=400000, chip_size=4194304, mode="sketch",
                 chip_id=15602487, sdk="2.5.0", content_length=True):
    """ESPhttpUpdate's request (core 3.1.2, §2.1), byte for byte."""
    lines = ["GET %s HTTP/1.0" % path, "Host: %s" % host, "User-Agent: ESP8266-http-Update",
             "Connection: close", "x-ESP8266-Chip-ID: %d" % chip_id,
             "x-ESP8266-STA-MAC: %s" % mac, "x-ESP8266-AP-MAC: %s" % mac,
             "x-ESP8266-free-space: %d" % free_space, "x-ESP8266-sketch-size: %d" % sketch_size,
             "x-ESP8266-sketch-md5: %s" % (sketch_md5 or "0123456789abcdef0123456789abcdef"),
             "x-ESP8266-chip-size: %d" % chip_size, "x-ESP8266-sdk-version: %s" % sdk,
             "x-ESP8266-mode: %s" % mode]
    if version:
        lines.append("x-ESP8266-version: %s" % version)
    if content_length:
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def esphome_request(path, host):
    """ESPHome's HTTP/1.1 keep-alive GET (§9.1)."""
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ESPHome/2024.11.0 (https://esphome.io)\r\n"
            "Accept-Encoding: identity;q=1,chunked;q=0.1,*;q=0\r\nConnection: keep-alive\r\n"
            "Content-Length: 0\r\n\r\n" % (path, host)).encode()


class Answer:
    def __init__(self, raw):
        self.raw = raw
        head, sep, self.body = raw.partition(b"\r\n\r\n")
        check(sep, "no end of header in %r" % raw[:300])
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split(" ")[1])
        self.header_lines = lines[1:]
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers.setdefault(k.strip().lower(), []).append(v.strip())

    def h(self, name):
        v = self.headers.get(name.lower())
        check(v is None or len(v) == 1, "header %s repeated: %r" % (name, v))
        return v[0] if v else None


def exchange(port, request, timeout=10.0):
    """Sends request in one write, reads until the server closes; returns an Answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(request)
        return Answer(recv_to_close(s))
    finally:
        s.close()


def check_image_answer(a, body):
    """§10.2: 200, Content-Length, no chunking or Content-Encoding, x-MD5 of the body, the body
    whole and nothing after it (the connection closed)."""
    check(a.status == 200, "status %s" % a.status_line)
    check(a.h("Content-Length") == str(len(body)), "Content-Length %r, want %d" %
          (a.h("Content-Length"), len(body)))
    check(a.h("Transfer-Encoding") is None, "Transfer-Encoding %r" % a.h("Transfer-Encoding"))
    check(a.h("Content-Encoding") is None, "Content-Encoding %r" % a.h("Content-Encoding"))
    check(a.h("Location") is None, "Location %r" % a.h("Location"))
    check(a.h("x-MD5") == md5(body), "x-MD5 %r, want %s" % (a.h("x-MD5"), md5(body)))
    check(a.body == body, "body differs (%d bytes, want %d)" % (len(a.body), len(body)))


def arduino_product(d, name=None, **opts):
    """An arduino product of fotad d with the settings opts, named name (else after opts):
    (its view, its product key)."""
    body = {"name": name or "ard-" + md5(json.dumps(opts, sort_keys=True).encode())[:10],
            "platform": "arduino"}
    body.update(opts)
    st, _, j = d.api("POST", "/v1/products/", body)
    check(st == 200, "create arduino product %r: %d %r" % (body, st, j))
    check(j["product"]["platform"] == "arduino", "platform: %r" % j["product"])
    return j["product"], j["product_key"]


def upload(d, pid, version, files, expect=200, changelog=None):
    """Uploads files, [(name, bytes)], as release version of product pid (with a changelog
    when given); checks the status is expect and returns the reply."""
    fields = {"version": version}
    if changelog is not None:
        fields["changelog"] = changelog
    ct, body = multipart(fields, [(name, name, data) for name, data in files])
    st, _, j = d.api("POST", "/v1/products/%d/roms/" % pid, body, headers={"Content-Type": ct})
    check(st == expect, "upload %s %r: %d %r" % (version, [n for n, _ in files], st, j))
    return j


def release(d, pid, version, img, current=True, minimal=None, changelog=None):
    """img as firmware.bin (and minimal as firmware-minimal.bin) of release version, made the
    current release unless current is False. Returns the upload's reply."""
    files = [("firmware.bin", img)] + ([("firmware-minimal.bin", minimal)] if minimal else [])
    j = upload(d, pid, version, files, changelog=changelog)
    if current:
        d.set_current(pid, version)
    return j


def checkin(d, key, name="firmware.bin", **kw):
    """ESPhttpUpdate's check-in for the file name of the product with key (core_request's
    options in kw); the Answer."""
    host = "127.0.0.1:%d" % d.http_port
    return exchange(d.http_port, core_request("/v1/arduino/%s/%s" % (key, name), host, **kw))
