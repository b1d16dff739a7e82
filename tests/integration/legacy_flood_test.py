"""legacy_flood_test.py - connect/close cycles on fotad's legacy port cannot fill its log and
its transfers table: connections that end without a request byte are logged and stored one by
one only up to a burst of 10 per address and legacy_empty_rate (1) a second after it; the
others are counted (fota_legacy_transfers_total) and summed up in one line a second
(event=quiet). Each cycle added a row and a WARN line (49,868 in 10 s). Another address is
recorded as before, and a real transfer from the flooding address is logged and stored."""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, run_tests, tempdir, wait_for  # noqa: E402
from legacy_util import make_image, publish, stock_client  # noqa: E402

CYCLES = 300
BURST = 10


def closed_total(d):
    """fota_legacy_transfers_total{result="client_closed"} from GET /metrics."""
    st, _, body = d.request("GET", "/metrics", key=d.admin_key)
    check(st == 200, "GET /metrics: %d" % st)
    m = re.search(rb'^fota_legacy_transfers_total\{result="client_closed"\} (\d+)$', body, re.M)
    return int(m.group(1)) if m else 0


def transfers(d):
    st, _, j = d.api("GET", "/v1/legacy/transfers/?limit=1000")
    check(st == 200, "GET /v1/legacy/transfers/: %d %r" % (st, j))
    return j["transfers"]


def cycle(port, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    s.close()


def test_empty_connections_quiet():
    tmp = tempdir("flood-")
    img = {n: make_image(os.path.join(tmp, "user%d.bin" % n), n, 16 * 1024, seed=n)
           for n in (1, 2)}
    with Fotad(legacy=True, extra=["--legacy-interval-ms", "1"]) as d:
        port = d.ports["legacy"]
        publish(d, "plug", "v1.0", {"user1.bin": img[1], "user2.bin": img[2]})
        t0 = time.monotonic()
        for _ in range(CYCLES):
            cycle(port)
        wait_for(lambda: closed_total(d) >= CYCLES, 20, "every cycle counted in the metrics")
        took = time.monotonic() - t0
        rows = [t for t in transfers(d) if t["result"] == "client_closed"]
        lines = d.count_log(r"event=end section=0 mode=- result=client_closed")
        bound = BURST + int(took) + 1
        print("%d connect/close cycles in %.1f s: %d rows, %d end lines, %d quiet lines"
              % (CYCLES, took, len(rows), lines, d.count_log(r"event=quiet")))
        check(BURST <= len(rows) <= bound, "%d transfer rows for %d empty connections in %.1f s "
              "(want %d..%d)" % (len(rows), CYCLES, took, BURST, bound))
        check(lines == len(rows), "%d end lines, %d rows" % (lines, len(rows)))
        d.wait_log(r'peer=127\.0\.0\.1:\d+ event=quiet result=client_closed quiet=\d+ '
                   r'reason="connections without a request over legacy_empty_rate=1 a second '
                   r'from one address"')
        check(d.count_log(r"event=quiet") <= took + 2, "more than one quiet line a second")
        # another address is not quieted by this one
        cycle(port, "127.0.0.2")
        wait_for(lambda: any(t["peer"].startswith("127.0.0.2:") for t in transfers(d)), 10,
                 "127.0.0.2's connection stored")
        # a device's transfer from the flooding address is logged and stored
        r = stock_client(port, 1, strict=True, interval_ms=1)
        check(r.ok and r.data == img[1], "a transfer after the flood: %s" % r.error)
        wait_for(lambda: any(t["result"] == "ok" for t in transfers(d)), 10,
                 "the transfer stored")
        d.wait_log(r"peer=127\.0\.0\.1:\d+ event=end section=1 mode=paced result=ok")


if __name__ == "__main__":
    run_tests([test_empty_connections_quiet])
