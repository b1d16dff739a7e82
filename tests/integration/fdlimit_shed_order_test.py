#!/usr/bin/env python3
"""fdlimit_shed_order_test.py - which connections fotad gives up when accept() finds no
descriptor left, under `prlimit --nofile=128` with one loop: K anonymous connections opened
one after another (each accepted before the next, so fotad's order is the test's), then the
descriptors filled by requests with the admin key, then a burst of anonymous connections.
The connections fotad closes must be the newest anonymous ones: those it closes among the K
are the last ones opened (a suffix), the oldest stay open and are answered when they identify
(device port) or finish their request (HTTP port), and a device identified before, a kept-alive
connection that carried a request and every request with a key are answered throughout."""
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devchan_util import beacon_frame, first_frame  # noqa: E402
from fotatest import Fotad, check, fail, run_tests, wait_for  # noqa: E402

NOFILE = 128     # reserve 16; anonymous connections on probation or refused beyond 56
K = 40           # anonymous connections opened in a known order, all below both bounds
BURST = 64       # anonymous connections opened at once once descriptors are out
SHED_BATCH = 16  # connections fotad closes per failed accept (both ports)
UPLOAD = 256 << 10   # an upload's body: over 64 KiB, the gate checks its key
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, NLM_F_DUMP = 4, 20, 1, 0x300
NLMSG_ERROR, NLMSG_DONE, TCP_ESTABLISHED = 2, 3, 1


def start_fotad(extra):
    d = Fotad(extra=["--workers", "1", "--device-max-per-addr", "100000",
                     "--http-max-per-addr", "100000"] + extra, log_level="info")
    d.args[:0] = ["prlimit", "--nofile=%d" % NOFILE, "--"]
    return d.start()


def server_side(listen_port):
    """{peer port: inode} of the established IPv4 sockets on listen_port's side of a
    connection: inode 0 while one waits in the accept queue. Asked of the kernel through
    sock_diag (netlink), established sockets only: /proc/net/tcp lists every socket of the
    machine, tens of thousands in TIME_WAIT on a busy test machine, and takes 0.4 s to read."""
    req = struct.pack("=BBBBI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0,
                      1 << TCP_ESTABLISHED) + bytes(48)
    msg = struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                      NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + req
    out = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.sendall(msg)
        for _ in range(100000):
            data = nl.recv(1 << 16)
            off = 0
            while off + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, off)
                if kind == NLMSG_DONE:
                    return out
                check(kind != NLMSG_ERROR and length >= 16, "sock_diag answered %d" % kind)
                # struct inet_diag_msg: family, state, timer, retrans, then the socket id
                # (sport, dport big-endian, ...), expires, rqueue, wqueue, uid, inode.
                sport, dport = struct.unpack_from("!HH", data, off + 16 + 4)
                inode = struct.unpack_from("=I", data, off + 16 + 68)[0]
                if sport == listen_port:
                    out[dport] = inode
                off += (length + 3) & ~3
    fail("sock_diag dump did not end")


def accepted(listen_port, s):
    return server_side(listen_port).get(s.getsockname()[1], 0) != 0


def closed_by_server(s):
    """True once fotad closed s (EOF or reset); anything it sent before is dropped."""
    for _ in range(64):
        if not select.select([s], [], [], 0)[0]:
            return False
        try:
            data = s.recv(65536)
        except ConnectionResetError:
            return True
        if not data:
            return True
    return False


def open_in_order(port, n, hello=b""):
    """n connections to port, each accepted by fotad before the next is opened."""
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if hello:
            s.sendall(hello)
        wait_for(lambda: accepted(port, s), 10, "fotad accepting connection %d of %d" % (i, n))
        socks.append(s)
    return socks


def open_burst(port, n, hello=b""):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(("127.0.0.1", port))
        if hello:
            s.sendall(hello)
        socks.append(s)
    return socks


def settled(port, socks):
    """Every one of socks accepted by fotad or closed: none left in the accept queue."""
    side = server_side(port)
    return all(side.get(s.getsockname()[1], 0) or closed_by_server(s) for s in socks)


def read_reply(s, timeout=10.0, give_up=None):
    """One HTTP reply on s: (status, body). None when give_up() turns true first."""
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        head, sep, rest = buf.partition(b"\r\n\r\n")
        if sep:
            n = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    n = int(value)
            if len(rest) >= n:
                return int(head.split()[1]), rest[:n]
        if give_up is not None and give_up():
            return None
        s.settimeout(0.05)
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        check(data, "connection closed before its reply (have %r)" % buf[:200])
        buf += data
    fail("no reply within %.0f s (have %r)" % (timeout, buf[:200]))


def read_line(s, timeout=10.0):
    """One line from the device channel on s."""
    buf = b""
    end = time.monotonic() + timeout
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0:
            fail("no line within %.0f s (have %r)" % (timeout, buf))
        s.settimeout(left)
        try:
            data = s.recv(1)
        except socket.timeout:
            continue
        check(data, "connection closed before a line (have %r)" % buf)
        buf += data
    return buf.decode()


def keyed_request(key):
    return ("GET /v1/ping/ HTTP/1.1\r\nHost: fota\r\nAuthorization: token %s\r\n\r\n"
            % key).encode()


def fill_with_keyed(d, until, what, give_up=None):
    """Opens kept-alive connections to the HTTP port, each carrying one request with the
    admin key, until until() holds after a reply; each is answered. Returns them, and the
    last one if its reply was not read: with give_up, it is not awaited once give_up()
    holds."""
    held = []
    for _ in range(NOFILE):
        s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
        s.sendall(keyed_request(d.admin_key))
        held.append(s)
        r = read_reply(s, give_up=give_up)
        if r is None:
            return held, s
        check(r[0] == 200, "a request with the admin key: %r" % (r,))
        if until():
            return held, None
    fail("%d connections with a key and still not %s" % (NOFILE, what))


def suffix_closed(socks):
    """The indices fotad closed; fails unless they are the newest ones (a suffix)."""
    closed = [i for i, s in enumerate(socks) if closed_by_server(s)]
    check(closed == list(range(len(socks) - len(closed), len(socks))),
          "closed among the %d anonymous connections (oldest first): %s; fotad must close "
          "the newest first" % (len(socks), closed))
    return closed


def test_device_port():
    """Device port: K anonymous connections, the descriptors filled by the REST API (with
    its key, within the reserve), then a burst of anonymous connections."""
    d = start_fotad([])
    held, anon, burst, other = [], [], [], []
    try:
        p = d.create_product()["id"]
        keys = [d.create_device(p, name="d%d" % i)["master_device_key"] for i in range(K + 1)]
        known = socket.create_connection(("127.0.0.1", d.device_port), timeout=10)
        other.append(known)
        known.sendall(first_frame(1, keys[K]).encode())
        check(b'"status": 200' in known.recv(4096), "the known device identifies")

        t0 = time.monotonic()   # the hello deadline of the oldest anonymous connection
        anon = open_in_order(d.device_port, K)
        paused = lambda: d.count_log(r"accept paused proto=http ") > 0  # noqa: E731
        held, unread = fill_with_keyed(d, paused, "out of descriptors", give_up=paused)
        burst = open_burst(d.device_port, BURST)
        wait_for(lambda: settled(d.device_port, burst), 20, "the burst accepted or closed")
        # The burst's first connection finds no descriptor: the newest SHED_BATCH of the K
        # go. From then on the burst's own connections are the newest (one more of the K
        # may go a round if something else in fotad took a descriptor meanwhile).
        closed = suffix_closed(anon)
        check(SHED_BATCH <= len(closed) <= SHED_BATCH + BURST // SHED_BATCH,
              "%d of the %d anonymous connections closed, want %d to %d: %s"
              % (len(closed), K, SHED_BATCH, SHED_BATCH + BURST // SHED_BATCH, closed))
        burst_closed = sum(closed_by_server(s) for s in burst)
        check(burst_closed > 0, "no connection of the burst closed")
        d.wait_log(r'device connection shed conn=\d+ dev=0 peer=127\.0\.0\.1:\d+ '
                   r'reason="out of descriptors" age_ms=\d+ shed=\d+ anonymous=\d+', 5)

        # The known device is answered; the oldest anonymous ones identify; the requests
        # with a key are answered (the last one took the last descriptor), and again.
        known.sendall(beacon_frame(keys[K]).encode())
        check("ping success" in read_line(known), "the known device answered after the burst")
        survivors = [i for i in range(K) if i not in closed]
        for i in survivors:
            anon[i].sendall(first_frame(100 + i, keys[i]).encode())
        for i in survivors:
            line = read_line(anon[i])
            check('"status": 200' in line, "anonymous connection %d identifying: %r" % (i, line))
        if unread:
            check(read_reply(unread)[0] == 200, "the request that took the last descriptor")
        for s in held:
            s.sendall(keyed_request(d.admin_key))
            check(read_reply(s)[0] == 200, "a connection that carried a request with a key")
        elapsed = time.monotonic() - t0
        check(elapsed < 10, "%.1f s since the first anonymous connection: past its hello "
              "deadline, the test measured nothing" % elapsed)
        print("device port: %d keyed HTTP connections filled the descriptors; %d of %d "
              "anonymous closed (the newest: %s), %d of the %d-connection burst closed; "
              "%.2f s" % (len(held), len(closed), K, closed, burst_closed, BURST, elapsed))
    finally:
        for s in held + anon + burst + other:
            s.close()
        d.stop()


def test_http_port():
    """HTTP port: K anonymous connections (a request head that has not ended), the
    descriptors filled by requests with the admin key (the first one that finds none makes
    fotad shed), then a burst of anonymous connections."""
    d = start_fotad(["--http-timeout", "30"])
    held, anon, burst, other = [], [], [], []
    try:
        known = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
        other.append(known)
        known.sendall(keyed_request(d.admin_key))
        check(read_reply(known)[0] == 200, "the kept-alive connection's first request")

        head = b"GET /v1/ping/ HTTP/1.1\r\n"
        anon = open_in_order(d.http_port, K, head)
        # An upload with the admin key, newer than the K, its body still coming: not
        # anonymous (the gate checked its key), so never shed.
        upload = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
        upload.sendall(b"POST /v1/ping/ HTTP/1.1\r\nHost: fota\r\nAuthorization: token %s\r\n"
                       b"Content-Length: %d\r\n\r\n" % (d.admin_key.encode(), UPLOAD) + bytes(1024))
        other.append(upload)
        wait_for(lambda: accepted(d.http_port, upload), 10, "fotad accepting the upload")
        shed = lambda: d.count_log(r"http connection shed ") > 0  # noqa: E731
        held, _ = fill_with_keyed(d, shed, "shedding")
        # Out of descriptors (the accept() after the one that took the last fails), fotad
        # shed the newest SHED_BATCH of the K; the upload, newer, is not anonymous.
        after_fill = suffix_closed(anon)
        check(len(after_fill) == SHED_BATCH, "%d of the %d anonymous connections closed by "
              "the fill, want %d" % (len(after_fill), K, SHED_BATCH))
        burst = open_burst(d.http_port, BURST, head)
        wait_for(lambda: settled(d.http_port, burst), 20, "the burst accepted or closed")
        # The burst's first connections are accepted in the pass whose next accept() fails:
        # not read yet, they are spared (they could carry a key) and the newest SHED_BATCH
        # of the K that were read go. From then on the burst's own read connections are
        # the newest.
        closed = suffix_closed(anon)
        check(len(closed) <= 2 * SHED_BATCH + BURST // SHED_BATCH,
              "%d of the %d anonymous connections closed after the burst: %s"
              % (len(closed), K, closed))
        burst_closed = sum(closed_by_server(s) for s in burst)
        check(burst_closed > 0, "no connection of the burst closed")

        upload.sendall(bytes(UPLOAD - 1024))
        st = read_reply(upload)[0]
        check(st == 200, "the upload answered %d" % st)
        for s in [known] + held:
            s.sendall(keyed_request(d.admin_key))
            check(read_reply(s)[0] == 200, "a connection that carried a request with a key")
        survivors = [i for i in range(K) if i not in closed]
        for i in survivors:
            anon[i].sendall(b"Host: fota\r\n\r\n")
        for i in survivors:
            r = read_reply(anon[i])
            check(r[0] == 200, "anonymous connection %d finishing its request: %r" % (i, r))
        print("http port: %d keyed connections filled the descriptors and %d of %d anonymous "
              "were closed (the newest); then a %d-connection burst: %d of its own and %d of "
              "the %d anonymous closed in all (%s)"
              % (len(held), len(after_fill), K, BURST, burst_closed, len(closed), K, closed))
    finally:
        for s in held + anon + burst + other:
            s.close()
        d.stop()


run_tests([test_device_port, test_http_port])
