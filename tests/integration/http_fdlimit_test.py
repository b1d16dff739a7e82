"""http_fdlimit_test.py - the HTTP port when descriptors run short: fotad under
`prlimit --nofile=256` while a flood keeps 400 HTTP connections open from eight loopback
addresses (each re-opened as soon as fotad closes it, each trickling a header line every
0.3 s): the REST API and a device's request keep being answered (connections beyond half
the descriptors, or in the reserve, must bring a valid key within a second; the newest
anonymous ones are shed when accept() finds none left), the listeners pause with a back-off
logged at most once a second (no "Error from accept() call" storm), and fotad never holds
more descriptors than the limit. Per address: with http_max_per_addr 20, the 21st connection
from one address is closed and the log line names the setting."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fotatest  # noqa: E402
from fotatest import Fotad, check, run_tests, wait_for  # noqa: E402

NOFILE = 256
FLOOD = 400
ADDRS = ["127.0.0.%d" % i for i in range(2, 10)]


def test_descriptors_short():
    d = Fotad(extra=["--http-timeout", "3"], log_level="info")
    d.args[:0] = ["prlimit", "--nofile=%d" % NOFILE, "--"]
    d.start()
    flood = None
    try:
        p = d.create_product()
        dev = d.create_device(p["id"])
        # a request line first, then one header line at a time
        flood = fotatest.Flood(d.http_port, FLOOD, lambda first: b"GET /v1/ping/ HTTP/1.1\r\n"
                               if first else b"X-Slow: 1\r\n", ADDRS)
        flood.start()
        t0 = time.monotonic()
        # Saturated: fotad sheds the newest anonymous connections, refuses keyless
        # requests on probation, or pauses its listeners.
        d.wait_log(r"http connection shed |http request refused .*short of descriptors|"
                   r"accept paused proto=http", 30)
        # ... for more than a second (a second line, counting what the first held back).
        wait_for(lambda: d.count_log(r"http connection shed |http request refused .*short of "
                                     r"descriptors|accept paused proto=http") >= 3, 20,
                 "a sustained flood")
        peak = fotatest.open_fds(d.proc.pid)
        for i in range(10):
            st, _, j = d.api("GET", "/v1/products/")
            check(st == 200, "REST API during the flood: %s %r" % (st, j))
            st, _, j = d.api("GET", "/v1/device/", key=dev["master_device_key"])
            check(st == 200, "a device's request during the flood: %s %r" % (st, j))
            peak = max(peak, fotatest.open_fds(d.proc.pid))
        check(peak <= NOFILE, "fotad holds %d descriptors" % peak)
        flood.stop.set()
        flood.join(10)
        check(not flood.is_alive(), "flood thread did not stop")
        total = time.monotonic() - t0
        log = d.log_text()
        check("Error from accept() call" not in log, "libevent's accept error storm in the log")
        for what in (r"accept paused proto=http", r"http connection shed ",
                     r"http request refused .*short of descriptors"):
            n = d.count_log(what)
            check(n <= 2 * (total + 2), "%d lines /%s/ in %.1f s: more than one a second a loop"
                  % (n, what, total))
        print("flood: %d connections opened, %d closed by fotad in %.1f s; fotad peak %d "
              "descriptors" % (flood.opened, flood.closed_by_server, total, peak))
        # After the flood, everyone is served again.
        def served():
            try:
                return d.api("GET", "/v1/ping/", key=None)[0] == 200
            except OSError:
                return False
        wait_for(served, 15, "served after the flood")
    finally:
        if flood is not None:
            flood.stop.set()
        d.stop()


def test_per_address():
    with Fotad(extra=["--http-max-per-addr", "20", "--workers", "1"]) as d:
        socks = []
        for _ in range(30):
            s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
            s.sendall(b"GET /v1/ping/ HTTP/1.1\r\n")   # a head that has not ended
            socks.append(s)
        d.wait_log(r'http connection refused peer=127\.0\.0\.1:\d+ reason="too many connections '
                   r'from this address" http_max_per_addr=20 ', 10)

        wait_for(lambda: sum(fotatest.peer_closed(s) for s in socks) >= 10, 10, "10 connections closed")
        kept = sum(not fotatest.peer_closed(s) for s in socks)
        check(kept == 20, "%d connections kept, want 20" % kept)
        # Another address is not limited by this one.
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.2", 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", d.http_port))
        s.sendall(b"GET /v1/ping/ HTTP/1.1\r\nHost: x\r\n\r\n")
        check(s.recv(100).startswith(b"HTTP/1.1 200"), "another address is served")
        s.close()
        for s in socks:
            s.close()

        def served():   # once fotad has seen them close
            try:
                return d.api("GET", "/v1/ping/", key=None)[0] == 200
            except OSError:
                return False
        wait_for(served, 10, "127.0.0.1 served again")


run_tests([test_per_address, test_descriptors_short])
