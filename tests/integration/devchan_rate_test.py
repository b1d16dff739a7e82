#!/usr/bin/env python3
"""devchan_rate_test.py - the message rate per device (device_msg_rate, device_msg_burst): a
device that sends 120 datapoints (D8) at once gets its burst through at once and the rest at
the rate, none dropped, and fotad logs "device throttled" at most once a second; reconnecting
does not give it a fresh burst. Every bound is an upper bound measured from before the send,
so a slow machine cannot break it, while fotad without a limit answers all 120 at once.
Without a rate limit, a device that sends 150,000 pings and reads none of its replies stops
being read once 64 KiB of replies wait in fotad (its memory stays bounded), and every ping is
answered once it reads them."""
import os
import re
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devchan_util import check, first_frame, start_fotad, wait_for  # noqa: E402

RATE, BURST = 5, 10
N = 120


def d8(nonce, key):
    return ('{"nonce": %d, "path": "/v1/datastreams/tem_hum/datapoint/", "method": "POST", '
            '"body": {"datapoint": {"x": %d,"y": 40.50}}, "meta": {"Authorization": "token %s"}}\n'
            % (nonce, nonce, key))


class Conn:
    def __init__(self, port, key, rcvbuf=0):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:   # a small window: fotad's replies wait in its own buffers, not the kernel's
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(5)
        self.s.connect(("127.0.0.1", port))
        self.key = key
        self.buf = b""
        self.s.sendall(first_frame(1, key).encode())
        self.lines(1, 5.0)

    def lines(self, want, timeout, on_line=None):
        """Reads reply lines until `want` arrived or timeout; calls on_line(count) after each
        read. Returns the count."""
        got, end = 0, time.monotonic() + timeout
        while got < want and time.monotonic() < end:
            r, _, _ = select.select([self.s], [], [], 0.05)
            if not r:
                continue
            data = self.s.recv(65536)
            check(data, "fotad closed the connection")
            self.buf += data
            while b"\n" in self.buf:
                line, _, self.buf = self.buf.partition(b"\n")
                check(b'"status": 200' in line, "reply %r" % line)
                got += 1
            if on_line:
                on_line(got)
        return got


def stored(d, dev_id):
    st, _, j = d.api("GET", "/v1/messages/?device_id=%d&limit=500" % dev_id)
    check(st == 200, "messages: %s %r" % (st, j))
    return len(j["messages"])


def unread_replies():
    """Pings (44-byte replies, no store write each) until more replies wait than the kernel's
    socket buffers hold (tcp_wmem allows 4 MiB): 150,000 of them, 6.6 MB of replies."""
    n = 150000
    d = start_fotad("--device-msg-rate", "0")
    try:
        pid = d.create_product()["id"]
        dev = d.create_device(pid, name="deaf")
        key, dev_id = dev["master_device_key"], dev["device"]["id"]
        c = Conn(d.device_port, key, rcvbuf=4096)
        data = b'{"path": "/v1/ping/", "method": "POST"}\n' * n
        c.s.setblocking(False)
        sent = 0
        pause = re.compile(r"device replies unread, reading paused conn=\d+ dev=%d "
                           r"peer=127\.0\.0\.1:\d+ bytes=(\d+)" % dev_id)
        end = time.monotonic() + 30
        while not pause.search(d.log_text()):   # send what the kernel takes, never reading
            check(time.monotonic() < end, "fotad did not pause its reading within 30 s (%d of "
                  "%d bytes sent)" % (sent, len(data)))
            if sent == len(data):
                select.select([], [], [], 0.05)     # a poll interval, not a synchronisation
                continue
            select.select([], [c.s], [], 0.05)
            try:
                sent += c.s.send(data[sent:])
            except BlockingIOError:
                pass
        m = pause.search(d.log_text())
        check(65536 < int(m.group(1)) < 65536 + 64 * 64, "paused at %s bytes" % m.group(1))
        # Reading the replies lets it go on: every datapoint is answered (none dropped).
        c.s.setblocking(True)
        c.s.settimeout(5)
        got, end = 0, time.monotonic() + 60
        while got < n and time.monotonic() < end:
            if sent < len(data):
                r, w, _ = select.select([c.s], [c.s], [], 0.05)
                if w:
                    c.s.setblocking(False)
                    try:
                        sent += c.s.send(data[sent:])
                    except BlockingIOError:
                        pass
                    c.s.setblocking(True)
                if not r:
                    continue
            got += c.lines(1, 1.0)
        check(got == n, "%d of %d pings answered" % (got, n))
        c.s.close()
    finally:
        d.stop()


def main():
    unread_replies()
    d = start_fotad("--device-msg-rate", str(RATE), "--device-msg-burst", str(BURST))
    try:
        pid = d.create_product()["id"]
        dev = d.create_device(pid, name="chatty")
        key, dev_id = dev["master_device_key"], dev["device"]["id"]

        c = Conn(d.device_port, key)
        t0 = time.monotonic()
        c.s.sendall("".join(d8(i + 1, key) for i in range(N)).encode())

        def within_rate(got):
            # the identify took one message of the burst
            allowed = BURST + RATE * (time.monotonic() - t0) + 1
            check(got <= allowed, "%d replies after %.2f s: over the rate (at most %.1f)"
                  % (got, time.monotonic() - t0, allowed))
        want = BURST + 2 * RATE          # the burst, then about two seconds at the rate
        got = c.lines(want, 30, within_rate)
        check(got >= want, "only %d of %d replies within 30 s" % (got, want))
        elapsed = time.monotonic() - t0
        d.wait_log(r"device throttled conn=\d+ dev=%d rate=%d burst=%d held=\d+ wait_ms=\d+"
                   % (dev_id, RATE, BURST))
        lines = d.count_log(r"device throttled conn=\d+ dev=%d " % dev_id)
        check(lines <= elapsed + 2, "%d throttle lines in %.1f s: more than one a second"
              % (lines, elapsed))

        # Nothing is dropped: the rest arrives at the rate too (checked on a few more).
        got += c.lines(3, 10, lambda g: within_rate(got + g))
        check(got >= want + 3, "the throttled messages stopped coming")

        # Reconnecting (the older connection is replaced) keeps the device's state: no
        # fresh burst. It is still about (N - got) / RATE seconds behind.
        c2 = Conn(d.device_port, key)
        t1 = time.monotonic()
        c2.s.sendall("".join(d8(1000 + i, key) for i in range(BURST)).encode())

        def no_fresh_burst(g):
            check(g <= RATE * (time.monotonic() - t1) + 1,
                  "%d replies %.2f s after reconnecting: a fresh burst" % (g, time.monotonic() - t1))
        c2.lines(2, 1.0, no_fresh_burst)
        c.s.close()
        c2.s.close()

        # What was stored matches what was answered (every message stored, none dropped):
        # at least the replies counted above.
        wait_for(lambda: stored(d, dev_id) >= got, 10, "messages stored")
    finally:
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
