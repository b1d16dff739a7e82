"""legacy_stock_test.py - the drop-in listener serves stock (seed dfu_ota.c) clients safely:
the length goes alone and every chunk of at most 1280 bytes an interval after the previous
one (a reader that finds several in its socket must have been late by as many intervals),
the bytes equal the file; 50 stock clients at once all complete, paced, and overlap in
time; an extension client (0x81) gets the same bytes unpaced; IPv6 loopback works."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Dropin, check, fail, run_tests, tempdir, wait_for  # noqa: E402
from legacy_util import make_image, stock_client, stream_client  # noqa: E402


def test_stock_clients():
    tmp = tempdir("stock-")
    u1, u2 = os.path.join(tmp, "user1.bin"), os.path.join(tmp, "user2.bin")
    img1 = make_image(u1, 1, 48 * 1024, seed=11)
    img2 = make_image(u2, 2, 48 * 1024, seed=22)

    # default pacing (no --interval-ms): the seed client's checks, strictly
    srv = Dropin(["-fw1", u1, "-fw2", u2, "--port", "0", "--bind", "127.0.0.1"]).start()
    for section, img in ((2, img2), (1, img1)):
        r = stock_client(srv.port, section, strict=True, interval_ms=20)
        if not r.ok:
            fail("stock client section %d: %s" % (section, r.error))
        if r.length != len(img) or r.data != img:
            fail("section %d: length %s, data equal %s" % (section, r.length, r.data == img))
        if r.overflows:
            fail("section %d: %d receives of unpaced writes" % (section, r.overflows))
    srv.wait_out(r"^transfer peer=127\.0\.0\.1:\d+ section=1 mode=paced bytes=%d/%d "
                 r"result=ok ms=\d+$" % (len(img1), len(img1)))
    # extension client: same answer, unpaced
    t0 = time.monotonic()
    body = stream_client(srv.port, 1)
    if body != img1:
        fail("stream client (0x81) got %s bytes, equal %s" % (len(body or b""), body == img1))
    srv.wait_out(r"section=1 mode=stream bytes=%d/%d result=ok" % (len(img1), len(img1)))
    print("stream 48 KiB in %.3f s" % (time.monotonic() - t0))
    srv.stop()

    # 50 stock clients at once, short interval so the test is quick; IPv6 listener
    srv = Dropin(["--user1", u1, "--user2", u2, "--port", "0", "--bind", "::1",
                  "--interval-ms", "2", "--max-clients", "64"]).start()
    results = [None] * 50

    def run(i):
        results[i] = stock_client(srv.port, 1 + i % 2, host="::1", interval_ms=2)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(50)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(not any(t.is_alive() for t in threads), "a concurrent client did not finish in 60 s")
    wall = time.monotonic() - t0
    merged = 0
    for i, r in enumerate(results):
        img = img1 if i % 2 == 0 else img2
        if r is None or r.data != img or r.length != len(img):
            fail("concurrent client %d: %s" % (i, r and r.error))
        check(r.overflows == 0 and not r.too_fast, "concurrent client %d: %d receives of "
              "unpaced writes, too fast %s" % (i, r.overflows, r.too_fast))
        merged += r.late_merges
    # transfers overlapped: at least one started before another one ended
    spans = sorted((r.t_first, r.t_last) for r in results)
    overlap = max(sum(1 for a, b in spans if a <= s <= b) for s, _ in spans)
    if overlap < 2:
        fail("transfers did not overlap: the listener serialised them")
    done = r"^transfer peer=\[::1\]:\d+ section=[12] mode=paced .*result=ok"
    wait_for(lambda: srv.count_log(done, out=True) >= 50, 10, "50 ok transfer lines")
    check(srv.count_log(done, out=True) == 50,
          "server recorded %d ok transfers, want 50" % srv.count_log(done, out=True))
    # with a 2 ms interval a loaded machine's Python reader may find several chunks in its
    # socket: paced ones (late_merges) are the reader's lateness and only reported
    print("50 concurrent stock clients in %.2f s (max overlap %d, reader-side merges %d)"
          % (wall, overlap, merged))
    srv.stop()


if __name__ == "__main__":
    run_tests([test_stock_clients])
