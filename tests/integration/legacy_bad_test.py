"""legacy_bad_test.py - bad clients never hurt the drop-in listener: a wrong request byte is
closed and logged, a silent client is closed after the (shortened) timeout, a client that
hangs up mid-image is logged while the next client is served, a full listener refuses extra
clients with a log line, and a stalled reader is cut off."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Dropin, fail, run_tests, tempdir  # noqa: E402
from legacy_util import make_image, stock_client  # noqa: E402


def closed_within(sock, seconds):
    """Reads until EOF/reset; returns (bytes read, seconds taken) or fails after `seconds`."""
    sock.settimeout(seconds)
    t0, got = time.monotonic(), b""
    try:
        while True:
            c = sock.recv(4096)
            if not c:
                break
            got += c
    except ConnectionResetError:
        pass
    except socket.timeout:
        fail("connection still open after %.1f s" % seconds)
    return got, time.monotonic() - t0


def test_bad_clients():
    tmp = tempdir("bad-")
    u1, u2 = os.path.join(tmp, "user1.bin"), os.path.join(tmp, "user2.bin")
    img1 = make_image(u1, 1, 48 * 1024, seed=5)
    make_image(u2, 2, 48 * 1024, seed=6)
    srv = Dropin(["-fw1", u1, "-fw2", u2, "--port", "0", "--bind", "127.0.0.1",
                  "--interval-ms", "2", "--timeout", "0.5", "--max-clients", "2",
                  "--max-queue", "0"]).start()

    # wrong request byte: closed at once, nothing sent, logged with the peer and the byte
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    port = s.getsockname()[1]
    s.sendall(b"\x05")
    got, _ = closed_within(s, 5)
    s.close()
    if got:
        fail("bad request got %d bytes" % len(got))
    srv.wait_log(r"conn=\d+ peer=127\.0\.0\.1:%d event=end section=0 mode=- "
                 r"result=bad_request .*byte=0x05" % port)

    # silent client: closed after the 0.5 s timeout (not before 0.4 s, well before 5 s)
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    port = s.getsockname()[1]
    got, took = closed_within(s, 5)
    s.close()
    if got or took < 0.4:
        fail("silent client: got %d bytes, closed after %.2f s" % (len(got), took))
    srv.wait_log(r"peer=127\.0\.0\.1:%d event=end .*result=timeout" % port)

    # hang up mid-image, then a normal client is served
    r = stock_client(srv.port, 1, stop_after=10 * 1280, strict=True, interval_ms=2)
    if r.error != "hung up on purpose":
        fail("mid-image client: %s" % r.error)
    srv.wait_log(r"section=1 mode=paced result=client_closed")
    r = stock_client(srv.port, 1, strict=True, interval_ms=2)
    if not r.ok or r.data != img1:
        fail("client after a hang-up: %s" % r.error)

    # the server ends a transfer when the last write is acknowledged, a moment after the
    # client has its bytes: wait for that, so the next clients see both slots free
    srv.wait_log(r"section=1 mode=paced result=ok")

    # full: two clients that stop reading hold both slots (queue 0); a third request is refused
    holders = []
    for _ in range(2):
        h = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        h.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        h.sendall(b"\x02")
        holders.append(h)
    srv.wait_log(r"(?s)(event=start section=2.*){2}")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    port = s.getsockname()[1]
    s.sendall(b"\x02")
    got, _ = closed_within(s, 5)
    s.close()
    if got:
        fail("refused client got bytes")
    srv.wait_log(r"peer=127\.0\.0\.1:%d event=end .*result=busy" % port)
    srv.wait_out(r"result=busy")

    # the holders never read: the paced writes stall and are cut after the timeout
    srv.wait_log(r"(?s)(section=2 mode=paced result=stalled.*){2}", timeout=10)
    for h in holders:
        h.close()

    # and still serving
    r = stock_client(srv.port, 1, strict=True, interval_ms=2)
    if not r.ok or r.data != img1:
        fail("final client: %s" % r.error)
    if os.environ.get("LEGACY_VERBOSE"):
        print(srv.log_text())
    srv.stop()


if __name__ == "__main__":
    run_tests([test_bad_clients])
