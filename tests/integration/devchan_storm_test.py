#!/usr/bin/env python3
"""devchan_storm_test.py - a fleet reconnecting at once, more devices than
device_max_anonymous: 300 real devices open their connections together (all of a fleet after
fotad restarts) against a bound of 40 connections not identified. fotad stops accepting at the
bound (the rest wait in the kernel's backlog) and accepts again as devices identify: every one
of the 300 identifies on its first connection, none is closed, and the pause is logged (at
most a line a second)."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fotatest  # noqa: E402
from devchan_util import check, first_frame  # noqa: E402

DEVICES = 300
BOUND = 40


def main():
    d = fotatest.Fotad(extra=["--device-max-anonymous", str(BOUND),
                              "--device-max-per-addr", "100000"], log_level="info")
    d.start()
    socks = []
    try:
        pid = d.create_product()["id"]
        keys = [d.create_device(pid, name="s%d" % i)["master_device_key"]
                for i in range(DEVICES)]
        t0 = time.monotonic()
        # Every connection opens and sends its identify before fotad answers any.
        for i, k in enumerate(keys):
            s = socket.create_connection(("127.0.0.1", d.device_port), timeout=20)
            s.sendall(first_frame(1000 + i, k).encode())
            socks.append(s)
        answered, closed = 0, []
        for i, s in enumerate(socks):
            data = b""
            while b"\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    closed.append(i)
                    break
                data += chunk
            if b'"status": 200' in data:
                answered += 1
        elapsed = time.monotonic() - t0
        check(not closed, "fotad closed %d of %d connections of the storm: %s"
              % (len(closed), DEVICES, closed[:20]))
        check(answered == DEVICES, "%d of %d identified" % (answered, DEVICES))
        pauses = d.count_log(r'device accept paused reason="too many connections not '
                             r'identified" device_max_anonymous=%d anonymous=\d+ pauses=\d+'
                             % BOUND)
        check(pauses >= 1, "no pause at the bound logged:\n" + d.log_text()[-3000:])
        check(pauses <= elapsed + 2, "%d pause lines in %.1f s" % (pauses, elapsed))
        check(d.count_log(r"device connection refused") == 0, "a connection refused")
        print("storm: %d devices against device_max_anonymous %d: all identified on their "
              "first connection in %.2f s, %d pause line(s)" % (DEVICES, BOUND, elapsed, pauses))
    finally:
        for s in socks:
            s.close()
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
