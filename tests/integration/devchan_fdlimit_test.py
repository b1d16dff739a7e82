#!/usr/bin/env python3
"""devchan_fdlimit_test.py - fotad under `prlimit --nofile=256` while a flood keeps 400
device-channel connections open (each re-opened as soon as fotad closes it, each sending a
newline every 0.3 s and never identifying): the REST API keeps answering (the device channel
leaves the last descriptors of the limit to the rest of fotad, and its listeners stop accepting
while the connections not identified are at their bound), a device identified before the flood
keeps its connection and is answered, the pauses and refusals are logged at most once a second
per reason (no "Error from accept() call" storm), and once the flood stops a device identifies
again."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fotatest  # noqa: E402
from devchan_util import StockDevice, beacon_frame, check, first_frame, wait_for  # noqa: E402

NOFILE = 256
FLOOD = 400


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def main():
    d = fotatest.Fotad(extra=["--device-max-per-addr", "100000", "--http-timeout", "3"],
                       log_level="info")
    d.args[:0] = ["prlimit", "--nofile=%d" % NOFILE, "--"]
    d.start()
    flood = None
    try:
        pid = d.create_product()["id"]
        a, b = d.create_device(pid, name="a"), d.create_device(pid, name="b")
        ka, kb = a["master_device_key"], b["master_device_key"]
        dev_a = StockDevice(d.device_port, ka)
        dev_a.send(first_frame(1, ka))
        check('"status": 200' in dev_a.recv_msg(), "identify a")

        flood = fotatest.Flood(d.device_port, FLOOD, lambda first: b"\n")
        flood.start()
        t0 = time.monotonic()
        # Saturated: fotad stops accepting (at most three quarters of the descriptors left
        # after the reserve go to connections not identified yet: 180 of 256 - 16) ...
        d.wait_log(r'device accept paused reason="too many connections not identified" '
                   r'device_max_anonymous=180 anonymous=180 pauses=\d+', 20)
        # ... again once the silent ones reached their hello deadline (http_timeout 3 s)
        # and the flood's next connections took their place.
        wait_for(lambda: d.count_log(r'device accept paused reason="too many connections '
                                     r'not identified"') >= 2, 20, "a sustained flood")
        peak_fds, peak_rss = fotatest.open_fds(d.proc.pid), rss_kb(d.proc.pid)

        # The REST API answers throughout, one request after another.
        for i in range(10):
            st, _, j = d.api("GET", "/v1/products/")
            check(st == 200, "REST API during the flood: %s %r" % (st, j))
        # The device identified before the flood is answered on its connection.
        dev_a.send(beacon_frame(ka))
        check("ping success" in dev_a.recv_msg(), "identified device during the flood")
        elapsed = time.monotonic() - t0
        peak_fds = max(peak_fds, fotatest.open_fds(d.proc.pid))
        peak_rss = max(peak_rss, rss_kb(d.proc.pid))
        check(peak_fds <= NOFILE, "fotad holds %d descriptors" % peak_fds)

        flood.stop.set()
        flood.join(10)
        check(not flood.is_alive(), "flood thread did not stop")

        # After the flood a device identifies again (its connection finds room).
        def identified():
            try:
                dev = StockDevice(d.device_port, kb)
                dev.send(first_frame(2, kb))
                ok = '"status": 200' in dev.recv_msg(timeout=2)
                dev.close()
                return ok
            except (OSError, fotatest.TestFailure):
                return False
        wait_for(identified, 15, "device b identifying after the flood")
        dev_a.close()

        log = d.log_text()
        check("Error from accept() call" not in log, "libevent's accept error storm in the log")
        total = time.monotonic() - t0
        for what in ("connection refused .*reason=\"descriptors short\"",
                     "connection refused .*reason=\"too many connections not identified\"",
                     "accept paused"):
            n = d.count_log(r'device %s' % what)
            check(n <= total + 2, "%d lines (device %s) in %.1f s: more than one a second"
                  % (n, what, total))
        print("flood: %d connections opened, %d closed by fotad in %.1f s; fotad peak: %d "
              "descriptors, %d KB RSS" % (flood.opened, flood.closed_by_server, elapsed,
                                          peak_fds, peak_rss))
    finally:
        if flood is not None:
            flood.stop.set()
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
