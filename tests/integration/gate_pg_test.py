"""gate_pg_test.py - the HTTP gate on PostgreSQL: an upload head (a body over 64 KiB) whose
key no cache of fotad holds is decided by a store job while its connection waits, with the
head's input frozen and its reading stopped, so the event loop makes no round trip (the loop
guard would log an ERROR, which fails the test). Sent with the whole body right behind the
head: an unknown key gets 401 and a device's owner key 403, each before fotad reads the
body; the admin key's upload is taken, byte for byte, as the first request after a restart;
the connections of other clients are served meanwhile."""
import hashlib
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, make_image, multipart, run_tests  # noqa: E402


def read_reply(s):
    """(status, body bytes) of one HTTP reply on s (after any 100 Continue)."""
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            b = s.recv(65536)
            if not b:
                return 0, data
            data += b
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        if status == 100:
            continue
        n = 0
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                n = int(v.strip())
        while len(data) < n:
            b = s.recv(65536)
            if not b:
                break
            data += b
        return status, data[:n]


def upload(d, pid, key, ct, body):
    """The head and the whole body in one send on a new connection: (status, body)."""
    head = ("POST /v1/products/%d/roms/ HTTP/1.1\r\nHost: x\r\nAuthorization: token %s\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\n\r\n" % (pid, key, ct, len(body)))
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=20)
    try:
        try:
            s.sendall(head.encode() + body)
        except OSError:
            pass   # fotad may refuse and close before the last byte: the reply says why
        return read_reply(s)
    finally:
        s.close()


def test_upload_keys_looked_up_off_the_loop():
    d = Fotad(store="pg")
    d.start()
    try:
        pid = d.create_product(flash_map=2)["id"]
        owner = d.create_device(pid)["owner_key"]
        v = "2.0.0"
        images = [make_image(1, 2, v, size=200 * 1024), make_image(2, 2, v, size=200 * 1024)]
        ct, body = multipart({"version": v, "codename": "beta", "changelog": ""},
                             [("file", "user%d.bin" % (i + 1), im) for i, im in enumerate(images)])
        check(len(body) > 64 * 1024, "the body is an upload's: %d bytes" % len(body))
        # A restart: no key is in fotad's caches.
        d.stop()
        d.start()
        st, reply = upload(d, pid, "0" * 40, ct, body)
        check(st == 401 and b"invalid key" in reply, "unknown key: %d %r" % (st, reply[:200]))
        st, reply = upload(d, pid, owner, ct, body)
        check(st == 403 and b"admin key" in reply, "owner key: %d %r" % (st, reply[:200]))
        st, _, j = d.api("GET", "/v1/ping/")
        check(st == 200, "still serving: %d %r" % (st, j))
        d.stop()
        d.start()
        st, reply = upload(d, pid, d.admin_key, ct, body)
        check(st == 200, "admin upload as the first request: %d %r" % (st, reply[:300]))
        for i, im in enumerate(images):
            st, _, got = d.request("GET", "/v1/products/%d/roms/%s/files/user%d.bin" % (pid, v, i + 1),
                                   key=d.admin_key)
            check(st == 200 and hashlib.sha256(got).digest() == hashlib.sha256(im).digest(),
                  "user%d.bin as uploaded: %d, %d bytes" % (i + 1, st, len(got)))
        gate_lookups = d.count_log(r"store op called on an event loop")
        check(gate_lookups == 0, "store ops on a loop: %d" % gate_lookups)
    finally:
        d.stop()


if __name__ == "__main__":
    run_tests([test_upload_keys_looked_up_off_the_loop])
