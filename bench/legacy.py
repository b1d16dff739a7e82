#!/usr/bin/env python3
"""bench/legacy.py - N concurrent downloads of a 512 KiB image from the legacy listener
(`fotad legacy`, drop-in mode), in extension (stream, sendfile) mode and in stock-paced mode,
and the same image over fotad's HTTP ROM download (GET /v1/device/rom/) when fotad is built,
with wall time, throughput, per-download latency and the server's CPU time.

  python3 bench/legacy.py [--n 100] [--paced-n 20] [--size 524288] [--interval-ms 20]
                          [--bin-dir build/bin] [--smoke]

Paced mode is slow by design (one acknowledged 1280-byte write per interval per client), so it
runs fewer clients by default. Not part of `make test` (only --smoke, a few KiB, is)."""
import argparse
import http.client
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("FOTA_SRC_DIR") or os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
sys.path.insert(0, HERE)
from benchlib import cpu_seconds  # noqa: E402


def run_clients(n, fn):
    """Runs fn(i) in n threads at once; returns (wall seconds, per-client seconds, results)."""
    lat, res = [None] * n, [None] * n
    go = threading.Event()

    def one(i):
        go.wait()
        t = time.monotonic()
        res[i] = fn(i)
        lat[i] = time.monotonic() - t

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    go.set()
    for t in threads:
        t.join(600)
    return time.monotonic() - t0, [x for x in lat if x is not None], res


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))] if xs else float("nan")


def report(name, n, size, wall, lat, ok, cpu):
    mb = n * size / 1e6
    print("%-22s n=%-4d ok=%-4d wall=%7.2fs  %8.2f MB/s  per-download p50=%.3fs p99=%.3fs"
          "  server cpu=%.2fs" % (name, n, ok, wall, mb / wall if wall > 0 else 0,
                                  pct(lat, 50), pct(lat, 99), cpu))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="concurrent stream downloads")
    ap.add_argument("--paced-n", type=int, default=20, help="concurrent paced downloads")
    ap.add_argument("--size", type=int, default=512 * 1024)
    ap.add_argument("--interval-ms", type=int, default=None,
                    help="paced interval (default: the listener's default)")
    ap.add_argument("--bin-dir", default=None)
    ap.add_argument("--smoke", action="store_true", help="tiny run for the test suite")
    a = ap.parse_args()
    if a.bin_dir:
        os.environ["FOTA_BIN_DIR"] = os.path.abspath(a.bin_dir)
    if a.smoke:
        a.n, a.paced_n, a.size, a.interval_ms = 4, 2, 16 * 1024, 1

    import fotatest as ft  # after FOTA_BIN_DIR is set
    import legacy_util as lu
    tmp = ft.tempdir("bench-legacy-")
    u1, u2 = os.path.join(tmp, "user1.bin"), os.path.join(tmp, "user2.bin")
    fmap = 2 if a.size <= 499712 else 6   # map 2's slot budget is 122 sectors; map 6: 1 MiB
    img = lu.make_image(u1, 1, a.size, flash_map=fmap)
    lu.make_image(u2, 2, a.size, flash_map=fmap)
    size = len(img)
    args = ["-fw1", u1, "-fw2", u2, "--port", "0", "--bind", "127.0.0.1",
            "--max-clients", str(max(a.n, a.paced_n)), "--max-queue", "1000"]
    if a.interval_ms is not None:
        args += ["--interval-ms", str(a.interval_ms)]
    srv = ft.Dropin(args).start()
    print("legacy listener %s, image %d bytes, pid %d" % (" ".join(srv.args[:2]), size,
                                                          srv.proc.pid))
    bad = 0

    c0 = cpu_seconds(srv.proc.pid)
    wall, lat, res = run_clients(a.n, lambda i: lu.stream_client(srv.port, 1))
    ok = sum(1 for r in res if r == img)
    bad += a.n - ok
    report("stream (0x81, sendfile)", a.n, size, wall, lat, ok, cpu_seconds(srv.proc.pid) - c0)

    c0 = cpu_seconds(srv.proc.pid)
    wall, lat, res = run_clients(a.paced_n, lambda i: lu.stock_client(srv.port, 1, strict=False))
    ok = sum(1 for r in res if r is not None and r.data == img)
    merged = sum(r.overflows for r in res if r is not None)
    bad += a.paced_n - ok
    report("paced (stock, 0x01)", a.paced_n, size, wall, lat, ok, cpu_seconds(srv.proc.pid) - c0)
    print("  paced reads over 1280 bytes seen by the (Python) readers: %d" % merged)

    srv.stop()

    # the same image over fotad's HTTP ROM download, as a stock device fetches it
    d = ft.Fotad(device=False, log_level="info", extra=["--http-timeout", "120"]).start()
    with open(u2, "rb") as f:
        lu.publish(d, "bench", "v1.0", {"user1.bin": img, "user2.bin": f.read()}, flash_map=fmap)

    def http_get(i):
        c = http.client.HTTPConnection("127.0.0.1", d.ports["http"], timeout=120)
        try:
            c.request("GET", "/v1/device/rom/?action=download_rom&version=v1.0&filename=user1.bin",
                      headers={"Authorization": "token " + d.admin_key})
            resp = c.getresponse()
            return resp.read() if resp.status == 200 else None
        finally:
            c.close()

    c0 = cpu_seconds(d.proc.pid)
    wall, lat, res = run_clients(a.n, http_get)
    ok = sum(1 for r in res if r == img)
    bad += a.n - ok
    report("http rom (fotad GET)", a.n, size, wall, lat, ok, cpu_seconds(d.proc.pid) - c0)
    d.stop()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
