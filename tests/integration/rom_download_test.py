"""rom_download_test.py - the ROM download against the §3.5 checklist, with the exact request
bytes of §3.1: NONOS HEAD-then-GET, HTTP/1.1 (AT), the RTOS double GET with a trailing NUL
(first one aborted after one segment), FOTA_Demo's GET, junk-tailed versions, Range/206,
ETag, 404/401 for unknown files, foreign keys and missing keys, and the download counters."""
import hashlib
import re
import socket

from devchan_util import (start_fotad, check, check_rom_header, content_length, http_exchange,
                          libupgrade_head, nonos_url, PHEAD)
from devchan_upgrade_test import setup


def rom_list(d, pid):
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % pid)
    check(st == 200, "rom list %s %s" % (st, j))
    return j["roms"]


def main():
    d = start_fotad()
    try:
        pid, dev_id, master, owner, user2 = setup(d)
        size = len(user2)
        sha = hashlib.sha256(user2).hexdigest()

        # NONOS >= 2.0: HEAD with Connection: close, then the keep-alive GET
        url = nonos_url("v1.1", "user2.bin", d.http_port, master)
        first, header, body, closed = http_exchange(d.http_port, libupgrade_head(url).encode())
        check_rom_header(first, header, size, "user2.bin")
        check(header.startswith(b"HTTP/1.0 200 OK\r\n"), "HTTP/1.0 status line %r" % header[:30])
        check(body == b"" and closed, "HEAD body %d bytes" % len(body))
        check(('ETag: "%s"' % sha).encode() in header, "ETag missing: %r" % header)
        check(b"\r\nConnection: close\r\n" in header and header.count(b"Connection:") == 1,
              "Connection header %r" % header)
        first, header, body, closed = http_exchange(d.http_port, url.encode())
        check_rom_header(first, header, size, "user2.bin")
        check(body == user2 and closed, "GET body %d bytes, closed=%s" % (len(body), closed))

        # AT firmware: the same over HTTP/1.1
        at = url.replace("HTTP/1.0", "HTTP/1.1")
        first, header, body, closed = http_exchange(d.http_port, at.encode())
        check(header.startswith(b"HTTP/1.1 200 OK\r\n"), "1.1 status %r" % header[:30])
        check_rom_header(first, header, size, "user2.bin")
        check(body == user2 and closed, "HTTP/1.1 body")

        # RTOS IOT_PLATFORM: write(strlen+1) -> a NUL after the request; the first GET is
        # aborted after one segment, the second is read to the end: nothing after the body.
        rtos = url.replace("keep-alive", "close").encode() + b"\0"
        s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
        s.sendall(rtos)
        seg = s.recv(1460)
        check(b"200 OK\r\n" in seg and content_length(seg) == size, "RTOS first segment %r" % seg)
        s.close()
        first, header, body, closed = http_exchange(d.http_port, rtos)
        check_rom_header(first, header, size, "user2.bin")
        check(body == user2, "RTOS body differs: %d bytes, tail %r" % (len(body), body[size:][:60]))
        check(closed, "not closed after the body")

        # junk-tailed versions: the padded 15-byte copy, the unpadded copy of another server
        # (with spaces in the request line), a quote tail, an encoded quote tail
        for v in ("v1.1~~~~~~~~~~~", 'v1.1"}, "meta":', 'v1.1"},', "v1.1%22%7D,"):
            first, header, body, closed = http_exchange(
                d.http_port, nonos_url(v, "user1.bin", d.http_port, owner).encode())
            check(first.startswith(b"HTTP/1.0 200 OK\r\n"), "version=%s: %r" % (v, first[:60]))
            check(len(body) == content_length(header), "version=%s body" % v)

        # Range: resume from the middle; 416 past the end
        req = url.replace("\r\n\r\n", "\r\nRange: bytes=1000-\r\n\r\n", 1)
        first, header, body, closed = http_exchange(d.http_port, req.encode())
        check(header.startswith(b"HTTP/1.0 206 Partial Content\r\n"), "206 %r" % header[:40])
        check(content_length(header) == size - 1000 and body == user2[1000:], "range body")
        check(("Content-Range: bytes 1000-%d/%d" % (size - 1, size)).encode() in header, "C-R")
        req = url.replace("\r\n\r\n", "\r\nRange: bytes=%d-\r\n\r\n" % size, 1)
        first, header, body, closed = http_exchange(d.http_port, req.encode())
        check(b" 416 " in header.split(b"\r\n")[0], "416 %r" % header[:40])

        # errors: unknown version / file, no key, a key of a device of another product
        for q, code in (("v9.9", b" 404 "), ("v1.1&x=1", b" 200 ")):
            first, header, body, _ = http_exchange(
                d.http_port, nonos_url(q, "user2.bin", d.http_port, master).encode())
            check(code in header.split(b"\r\n")[0], "version %s: %r" % (q, header[:60]))
        first, header, _, _ = http_exchange(
            d.http_port, nonos_url("v1.1", "user3.bin", d.http_port, master).encode())
        check(b" 404 " in header.split(b"\r\n")[0] and content_length(header), "unknown file")
        noauth = re.sub(r"Authorization: token \w+\r\n", "", url)
        first, header, _, _ = http_exchange(d.http_port, noauth.encode())
        check(b" 401 " in header.split(b"\r\n")[0], "no key: %r" % header[:60])
        st, _, j = d.api("POST", "/v1/products/", {"name": "light", "flash_map": 2})
        check(st == 200, "create product light: %s %s" % (st, j))
        st, _, j = d.api("POST", "/v1/products/%d/devices/" % j["product"]["id"], {})
        check(st == 200, "create a device of light: %s %s" % (st, j))
        first, header, _, _ = http_exchange(
            d.http_port, nonos_url("v1.1", "user2.bin", d.http_port, j["master_device_key"]).encode())
        check(b" 404 " in header.split(b"\r\n")[0], "foreign key: %r" % header[:60])

        # FOTA_Demo: GET /user2.bin, quoted Host, no Authorization, trailing NUL: a clean reply
        demo = ('GET /user2.bin HTTP/1.0\r\nHost: "127.0.0.1":%d\r\n' % d.http_port
                + re.sub(r"Authorization: token %s\r\n", "", PHEAD)).encode() + b"\0"
        first, header, body, closed = http_exchange(d.http_port, demo, wait_close=False)
        check(header.startswith(b"HTTP/1.") and content_length(header) == len(body),
              "FOTA_Demo reply %r" % header[:80])

        # counters: at least the four whole GET bodies of user2.bin read to the end (NONOS, AT,
        # the RTOS second GET, version=v1.1&x=1); an aborted one may count as sent in full
        roms = rom_list(d, pid)
        files = {f["name"]: f for f in roms[0]["files"]}
        check(files["user2.bin"]["download_count"] >= 4, "download_count %r" % files["user2.bin"])
    finally:
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
