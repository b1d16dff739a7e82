"""legacy_api_test.py - GET /v1/legacy/transfers/: every connection to fotad's legacy port is
listed with the client's address and port, the section, the bytes sent, the result, the mode
and a duration, newest first: a stock-style download (ok), one that hangs up mid-image
(client_closed), an extension download (stream, ok) and a wrong request byte (bad_request).
The summary counts what the listener served; no key is 401, a bad limit 400."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import legacy_util  # noqa: E402
from fotatest import Fotad, check, fail, run_tests, tempdir, wait_for  # noqa: E402
from legacy_util import make_image, publish, stock_client, stream_client  # noqa: E402

# The clients of legacy_util open their sockets with socket.create_connection: remember the
# local address of each, which is what fotad must record as the peer.
_opened = []
_create = socket.create_connection


def _recording_create(*a, **kw):
    s = _create(*a, **kw)
    _opened.append("%s:%d" % s.getsockname()[:2])
    return s


legacy_util.socket.create_connection = _recording_create


def http_get(d, path, key=True):
    """(status, parsed body) for GET path; key=False sends no Authorization."""
    st, _, j = d.api("GET", path, key="admin" if key else None)
    return st, j


def transfers(d, n):
    st, body = http_get(d, "/v1/legacy/transfers/")
    check(st == 200, "GET /v1/legacy/transfers/ -> %d %s" % (st, body))
    return body if len(body["transfers"]) >= n else None


def transfers_listed(d):
    tmp = tempdir("api-")
    u1 = make_image(os.path.join(tmp, "u1.bin"), 1, 40 * 1024, seed=61)
    u2 = make_image(os.path.join(tmp, "u2.bin"), 2, 40 * 1024, seed=62)
    port = d.ports["legacy"]

    # authentication and parameters
    st, body = http_get(d, "/v1/legacy/transfers/", key=False)
    if st != 401 or body.get("status") != 401:
        fail("no key: want 401, got %d %s" % (st, body))
    for bad in ("0", "1001", "x", "-3", ""):
        st, body = http_get(d, "/v1/legacy/transfers/?limit=" + bad)
        if st != 400:
            fail("limit=%r: want 400, got %d %s" % (bad, st, body))
    st, body = http_get(d, "/v1/legacy/transfers/")
    if body != {"status": 200, "transfers": [],
                "legacy": {"enabled": True, "active": 0, "queued": 0, "served_ok": 0}}:
        fail("empty list: %d %s" % (st, body))

    publish(d, "plug", "v1.0", {"user1.bin": u1, "user2.bin": u2})
    expect = []   # (peer, section, bytes or None, result, mode), oldest first
    t0 = time.time()

    r = stock_client(port, 1, strict=True, interval_ms=2)
    if not r.ok or r.data != u1:
        fail("stock download: %s" % r.error)
    expect.append((_opened[-1], 1, len(u1), "ok", "paced"))

    cut = 6 * 1280
    r = stock_client(port, 2, stop_after=cut, strict=True, interval_ms=2)
    if r.ok or len(r.data) < cut:
        fail("the hang-up client did not stop at %d bytes: %s %d" % (cut, r.error, len(r.data)))
    expect.append((_opened[-1], 2, None, "client_closed", "paced"))
    d.wait_log(r"peer=%s event=end section=2 mode=paced result=client_closed"
               % expect[-1][0].replace(".", r"\."))

    if stream_client(port, 2) != u2:
        fail("stream download: wrong bytes")
    expect.append((_opened[-1], 2, len(u2), "ok", "stream"))

    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    expect.append(("%s:%d" % s.getsockname()[:2], 0, 0, "bad_request", "-"))
    s.sendall(b"\x05")
    if s.recv(16) != b"":
        fail("a wrong request byte got an answer")
    s.close()

    body = wait_for(lambda: transfers(d, len(expect)), 15, "%d transfers listed" % len(expect))
    got = body["transfers"]
    if len(got) != len(expect):
        fail("want %d transfers, got %s" % (len(expect), got))
    ids = [t["id"] for t in got]
    if ids != sorted(ids, reverse=True) or len(set(ids)) != len(ids):
        fail("transfers are not newest first: %s" % ids)
    for t, (peer, section, nbytes, result, mode) in zip(got, reversed(expect)):
        keys = {"id", "peer", "section", "bytes", "result", "duration_ms", "mode", "created"}
        if set(t) != keys:
            fail("transfer fields %s, want %s" % (sorted(t), sorted(keys)))
        if (t["peer"], t["section"], t["result"], t["mode"]) != (peer, section, result, mode):
            fail("transfer %s, want peer=%s section=%d result=%s mode=%s"
                 % (t, peer, section, result, mode))
        if nbytes is not None and t["bytes"] != nbytes:
            fail("transfer %s: want bytes=%d" % (t, nbytes))
        if not 0 <= t["duration_ms"] < 60000 or not t0 - 5 <= t["created"] <= time.time() + 5:
            fail("transfer %s: implausible duration or time" % t)
    closed = got[2]
    if not cut <= closed["bytes"] < len(u2):
        fail("the hang-up transfer should count %d..%d bytes: %s" % (cut, len(u2) - 1, closed))
    if body["legacy"] != {"enabled": True, "active": 0, "queued": 0, "served_ok": 2}:
        fail("summary: %s" % body["legacy"])

    # limit: the newest N
    st, body = http_get(d, "/v1/legacy/transfers/?limit=2")
    if st != 200 or [t["id"] for t in body["transfers"]] != ids[:2]:
        fail("limit=2: %d %s" % (st, body))


def test_transfers():
    with Fotad(http=True, device=False, legacy=True, log_level="debug",
               extra=["--legacy-product", "plug", "--legacy-interval-ms", "2",
                      "--legacy-timeout-ms", "3000"]) as d:
        transfers_listed(d)


if __name__ == "__main__":
    run_tests([test_transfers])
