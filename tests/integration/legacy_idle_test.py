"""legacy_idle_test.py - sockets that never send the request byte cannot lock devices out of
the legacy port: they hold no slot (320 of them, the default 64 + 256, used to make every later
client `busy`), at most max_clients + max_queue of them stay (a new one closes the one silent
the longest: `shed`), and they are closed within 5 s (`timeout`) however long timeout_ms is."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Dropin, check, peer_closed, run_tests, tempdir, wait_for  # noqa: E402
from legacy_util import make_image, stock_client  # noqa: E402


def test_idle_sockets_hold_no_slot():
    tmp = tempdir("idle-")
    u1, u2 = os.path.join(tmp, "user1.bin"), os.path.join(tmp, "user2.bin")
    img1 = make_image(u1, 1, 16 * 1024)
    make_image(u2, 2, 16 * 1024)
    # Default slots (64 running + 256 queued); a request wait far longer than the test.
    srv = Dropin(["-fw1", u1, "-fw2", u2, "--port", "0", "--interval-ms", "1",
                  "--timeout", "120"])
    srv.start()
    try:
        idle = []
        for _ in range(320):
            idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
        # Accepted in backlog order: when the client's turn comes, all 320 are in.
        r = stock_client(srv.port, 1, interval_ms=1)
        check(r.ok and r.data == img1, "a client after 320 idle sockets: %s" % r.error)
        check(srv.count_log(r"result=busy") == 0, "busy while only idle sockets were open")
        # 80 more silent ones: the 80 silent the longest make room (shed), none are refused.
        t0 = time.monotonic()
        for _ in range(80):
            idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
        wait_for(lambda: srv.count_log(r"result=shed") >= 80, 10, "80 sheds")
        wait_for(lambda: all(peer_closed(s) for s in idle[:80]), 10, "the oldest 80 closed")
        check(not any(peer_closed(s) for s in idle[80:]), "a newer silent socket was closed first")
        # The rest are closed after the request wait (5 s), not after timeout_ms (120 s).
        wait_for(lambda: all(peer_closed(s) for s in idle), 15, "the silent sockets closed")
        took = time.monotonic() - t0
        check(took < 12, "silent sockets stayed %.1f s" % took)
        check(srv.count_log(r"result=timeout") >= 300, "timeouts logged: %d" %
              srv.count_log(r"result=timeout"))
        for s in idle:
            s.close()
        r = stock_client(srv.port, 2, interval_ms=1)
        check(r.ok, "a client afterwards: %s" % r.error)
    finally:
        srv.stop()


run_tests([test_idle_sockets_hold_no_slot])
