"""http_gate_test.py - what fotad decides on a request's head, before its body: an upload
(a body over 64 KiB) needs the admin key on its headers (401/403 before a byte of the
body is read: 20 unauthenticated 15 MiB uploads leave fotad's memory where it was),
uploads in flight share upload_memory (503 with Retry-After beyond it) and their memory
is freed afterwards (fota_heap_bytes) and handed back to the system where the allocator
can; a head must arrive within http_timeout of its first byte however slowly it trickles,
and an HTTPS connection's TLS handshake within http_timeout of its accept (a ClientHello
trickled a byte at a time restarted the read timeout at every byte, holding about 48 KB a
connection for ever); framing two parsers could read differently is refused
(two Content-Lengths, signed or spaced values, codings other than chunked, folded lines,
a body on GET), as is %00 in a path; libevent's own refusals are JSON even after a
100 Continue."""
import json
import os
import re
import select
import socket
import ssl
import threading
import time

from fotatest import (HEAP_GIVES_BACK, MEMORY_SCALE, Fotad, check, make_cert, rss_mb, run_tests,
                      tls_client_hello, wait_for)

MiB = 1 << 20
# The ASan tree's allocator keeps freed memory in a quarantine unless told not to; fotad
# gives memory back through its purge call, as through malloc_trim otherwise.
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                    "quarantine_size_mb=0"]))



def heap_mb(d):
    """fotad's own count of its heap (fota_heap_bytes in /metrics), in MB."""
    st, _, body = d.request("GET", "/metrics", key=d.admin_key)
    check(st == 200, "GET /metrics: %d" % st)
    m = re.search(r"^fota_heap_bytes (\d+)$", body.decode(), re.M)
    check(m is not None, "no fota_heap_bytes in /metrics")
    return int(m.group(1)) / MiB


def read_reply(s, deadline=10.0):
    """One HTTP reply from s, after any 100 Continue: (status, headers dict, body bytes);
    status 0 when the connection ends first."""
    s.settimeout(deadline)
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            b = s.recv(65536)
            if not b:
                return 0, {}, data
            data += b
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        if status != 100:
            return finish_reply(s, status, lines, data)


def finish_reply(s, status, lines, rest):
    hdrs = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    while len(rest) < n:
        b = s.recv(65536)
        if not b:
            break
        rest += b
    return status, hdrs, rest[:n]


def json_reply(s, what):
    st, hdrs, body = read_reply(s)
    check(st != 0, "%s: connection closed without a reply" % what)
    check(hdrs.get("content-type", "").startswith("application/json"),
          "%s: %d not JSON: %r %r" % (what, st, hdrs, body[:200]))
    j = json.loads(body)
    check(j["status"] == st, "%s: body status %r != %d" % (what, j, st))
    return st, hdrs, j


def exchange(d, data, what):
    """data on a fresh connection; the JSON reply (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    try:
        s.sendall(data)
        return json_reply(s, what)
    finally:
        s.close()


def upload_head(path, length, auth=None, extra=""):
    return ("POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: multipart/form-data; boundary=b\r\n"
            "Content-Length: %d\r\n%s\r\n" % (path, "Authorization: %s\r\n" % auth if auth
                                               else "", length, extra)).encode()


def pump(s, n, errors):
    chunk = b"a" * 65536
    sent = 0
    try:
        while sent < n:
            sent += s.send(chunk[:min(len(chunk), n - sent)])
    except OSError as e:   # fotad may close after its refusal: that is fine
        errors.append(e)


def test_upload_needs_admin_key_before_body():
    with Fotad() as d:
        p = d.create_product()
        dev = d.create_device(p["id"])
        path = "/v1/products/%d/roms/" % p["id"]
        L = 15 * MiB
        # Refused on the headers alone: no byte of the body is sent before the reply.
        for auth, want, words in ((None, 401, "missing Authorization"),
                                  ("Bearer " + d.admin_key, 401, "scheme is token"),
                                  ("token " + "0" * 40, 401, "invalid key"),
                                  ("token " + dev["owner_key"], 403, "admin key")):
            st, _, j = exchange(d, upload_head(path, L, auth), "upload auth=%r" % auth)
            check(st == want and words in j["message"], "auth %r: %d %r" % (auth, st, j))
        # 20 of them sending their whole body: fotad reads none of it into memory.
        base = rss_mb(d.proc.pid)
        socks, errors = [], []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
            s.sendall(upload_head(path, L))
            socks.append(s)
        threads = [threading.Thread(target=pump, args=(s, L - 1, errors)) for s in socks]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        held = rss_mb(d.proc.pid)
        for s in socks:
            st, _, j = json_reply(s, "unauthenticated upload")
            check(st == 401, "unauthenticated upload: %d %r" % (st, j))
            s.close()
        # Before: 8 MB -> 320 MB (every body buffered before the key was looked at).
        check(held - base < 24 * MEMORY_SCALE, "memory grew %.0f MB -> %.0f MB with 20 x 15 MiB "
              "unauthenticated bodies" % (base, held))
        st, _, _ = d.api("GET", "/v1/ping/")
        check(st == 200, "still serving")


def test_upload_memory_budget():
    with Fotad(extra=["--upload-memory", "16M", "--max-upload", "16M"]) as d:
        p = d.create_product()
        path = "/v1/products/%d/roms/" % p["id"]
        auth = "token " + d.admin_key
        L = 12 * MiB
        base, base_heap = rss_mb(d.proc.pid), heap_mb(d)
        first = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
        first.sendall(upload_head(path, L, auth))
        errors = []
        pump(first, 4 * MiB, errors)   # let in: fotad reads it
        check(not errors, "first upload cut off: %r" % errors)
        # The budget is held by the first: the next ones are refused on their headers.
        for i in range(4):
            st, hdrs, j = exchange(d, upload_head(path, L, auth), "upload %d" % i)
            check(st == 503 and "upload_memory" in j["message"], "upload %d: %d %r" % (i, st, j))
            check(hdrs.get("retry-after", "").isdigit(), "503 without Retry-After: %r" % hdrs)
        pump(first, L - 4 * MiB, errors)
        st, _, j = json_reply(first, "first upload")
        check(st == 400, "first upload (not multipart): %d %r" % (st, j))   # read whole: parsed
        first.close()
        peak = rss_mb(d.proc.pid)
        check(peak - base < 64 * MEMORY_SCALE, "one 12 MiB upload took %.0f -> %.0f MB" % (base, peak))

        # Once it is done, the budget is free again and the memory goes back.
        def admitted():
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
            try:
                s.sendall(upload_head(path, 70000, auth))
                s.sendall(b"x" * 70000)
                st, _, _ = json_reply(s, "upload after")
                return st == 400
            finally:
                s.close()
        wait_for(admitted, 10, "an upload let in after the first ended")
        wait_for(lambda: heap_mb(d) - base_heap < 4, 15,
                 "the uploads' buffers freed (heap %.1f MB, before them %.1f MB)"
                 % (heap_mb(d), base_heap))
        if HEAP_GIVES_BACK:
            wait_for(lambda: rss_mb(d.proc.pid) - base < 16, 15,
                     "memory given back after the uploads (RSS %.0f MB, before them %.0f MB)"
                     % (rss_mb(d.proc.pid), base))


def test_head_deadline():
    with Fotad(extra=["--http-timeout", "2"]) as d:
        for keepalive in (False, True):
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
            if keepalive:   # a first request answered, then a second one trickles
                s.sendall(b"GET /v1/ping/ HTTP/1.1\r\nHost: x\r\n\r\n")
                st, _, _ = read_reply(s)
                check(st == 200, "first request")
            start = time.monotonic()
            s.sendall(b"GET /v1/ping/ HTTP/1.1\r\n")
            closed = False
            # One header line every 0.5 s (the attack's pace): each resets an idle timeout.
            for i in range(24):
                try:
                    s.sendall(b"X-Slow-%d: 1\r\n" % i)
                    s.settimeout(0.5)
                    if s.recv(1024) == b"":
                        closed = True
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
            took = time.monotonic() - start
            s.close()
            check(closed and took < 6, "a head trickling a line every 0.5 s stayed open %.1f s "
                  "(http_timeout 2 s, keep-alive %s)" % (took, keepalive))
        st, _, _ = d.api("GET", "/v1/ping/")
        check(st == 200, "still serving")


def test_tls_handshake_deadline():
    cert, key = make_cert()
    with Fotad(https=True, tls=(cert, key), extra=["--http-timeout", "2"]) as d:
        hello = tls_client_hello()
        s = socket.create_connection(("127.0.0.1", d.ports["https"]), timeout=10)
        start = time.monotonic()
        sent, closed = 0, False
        # One byte of the ClientHello every 0.25 s: each restarts an idle timeout.
        while not closed and time.monotonic() - start < 15 and sent < len(hello) - 1:
            r, _, _ = select.select([s], [], [], 0.25)
            if r:
                try:
                    closed = s.recv(1024) == b""
                except OSError:
                    closed = True
                continue
            try:
                s.send(hello[sent:sent + 1])
                sent += 1
            except OSError:
                closed = True
        took = time.monotonic() - start
        s.close()
        check(closed and took < 6, "a TLS handshake trickling its ClientHello a byte every "
              "0.25 s stayed open %.1f s (%d bytes sent; http_timeout 2 s)" % (took, sent))
        check(took >= 1.5, "closed after %.2f s, before its deadline" % took)
        d.wait_log(r"http handshake timed out peer=127\.0\.0\.1:\d+ waited_ms=\d+ "
                   r"http_timeout=2 timed_out=1")
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        with socket.create_connection(("127.0.0.1", d.ports["https"]), timeout=10) as raw:
            with ctx.wrap_socket(raw) as t:
                t.sendall(b"GET /v1/ping/ HTTP/1.1\r\nHost: x\r\n\r\n")
                check(t.recv(100).startswith(b"HTTP/1.1 200"), "HTTPS still serving")


def test_framing_refused():
    with Fotad(extra=["--max-upload", "1M"]) as d:
        ping = b"GET /v1/ping/ HTTP/1.1\r\nHost: x\r\n\r\n"
        cases = (
            ("two lengths", b"POST /v1/products/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
             b"Content-Length: %d\r\n\r\n" % len(ping) + ping, "two different Content-Length"),
            ("+5", b"POST /v1/products/ HTTP/1.1\r\nContent-Length: +5\r\n\r\nabcde", "digits"),
            (" 5", b"POST /v1/products/ HTTP/1.1\r\nContent-Length:  5\r\n\r\nabcde", "digits"),
            ("tab", b"POST /v1/products/ HTTP/1.1\r\nContent-Length:\t5\r\n\r\nabcde", "digits"),
            ("list", b"POST /v1/products/ HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nabcde", "digits"),
            ("both", b"POST /v1/products/ HTTP/1.1\r\nContent-Length: 5\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "together"),
            ("gzip", b"POST /v1/products/ HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "chunked"),
            ("fold", b"POST /v1/products/ HTTP/1.1\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n",
             "fold"),
            ("space", b"POST /v1/products/ HTTP/1.1\r\nContent-Length : 5\r\n\r\nabcde", "colon"),
            ("GET body", b"GET /v1/ping/ HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(ping) + ping,
             "carries none"),
        )
        for name, data, words in cases:
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
            try:
                s.sendall(data)
                st, hdrs, j = json_reply(s, name)
                check(st == 400 and words in j["message"], "%s: %d %r" % (name, st, j))
                # Nothing hidden behind it is answered: the connection ends.
                try:
                    st2, _, _ = read_reply(s)
                except socket.timeout:
                    raise AssertionError("%s: the connection stayed open after the 400" % name)
                check(st2 == 0, "%s: a second reply (%d) followed the 400" % (name, st2))
            finally:
                s.close()
        # %00 would end the name early (user1.bin%00.txt named user1.bin): refused.
        for target in (b"/v1/products/1/roms/v1/files/user1.bin%00.txt",
                       b"/v1/device/rom/?action=download_rom&version=v1&filename=user1.bin%00.txt"):
            st, _, j = exchange(d, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target, "NUL")
            check(st == 400 and "%00" in j["message"], "%r: %d %r" % (target, st, j))
        # The same length twice is one length.
        body = json.dumps({"name": "twice"}).encode()
        st, _, j = exchange(d, b"POST /v1/products/ HTTP/1.1\r\nAuthorization: token %s\r\n"
                            b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n"
                            % (d.admin_key.encode(), len(body), len(body)) + body, "same twice")
        check(st == 200, "two equal lengths: %d %r" % (st, j))
        # A chunked upload over max_upload that waited for 100 Continue: libevent's 413, as JSON.
        for auth, want in (("token " + d.admin_key, 413), (None, 401)):
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
            try:
                s.sendall(b"POST /v1/products/1/roms/ HTTP/1.1\r\nHost: x\r\n" +
                          (b"Authorization: %s\r\n" % auth.encode() if auth else b"") +
                          b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
                s.settimeout(10)
                first = s.recv(64)
                check(first.startswith(b"HTTP/1.1 100"), "no 100 Continue: %r" % first)
                s.sendall(b"%x\r\n" % (2 * MiB) + b"a" * 4096)
                st, _, j = json_reply(s, "chunked over max_upload")
                check(st == want, "chunked upload auth=%r: %d %r" % (auth, st, j))
            finally:
                s.close()
        # Keep-alive after all this: a normal request on a reused connection works.
        s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
        try:
            for _ in range(3):
                s.sendall(ping)
                st, _, _ = read_reply(s)
                check(st == 200, "keep-alive ping")
        finally:
            s.close()


run_tests([test_upload_needs_admin_key_before_body, test_upload_memory_budget, test_head_deadline,
           test_tls_handshake_deadline, test_framing_refused])
