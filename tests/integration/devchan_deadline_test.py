#!/usr/bin/env python3
"""devchan_deadline_test.py - a device connection must activate or identify within its hello
timeout (min(10 s, http_timeout)) counted from its accept: bytes that trickle in do not move
the deadline. A plain connection sending a newline every 0.25 s and a TLS connection sending
its ClientHello one byte every 0.25 s are both closed once the deadline passes (they would
stay open for ever if each byte reset an idle timer); a device that identifies keeps its
connection past it. A device whose activation arrived in time but waits on the store (another
process holds SQLite's write lock past the deadline) is answered once the store is free, not
closed at its deadline. A connection whose bytes wait unread at its deadline (part of a hello
line here; on a busy machine, a hello the late loop has not read) gets the deadline once more:
its hello completed within it is answered, and one that never completes is closed at the
second deadline."""
import os
import select
import socket
import sqlite3
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devchan_util import (StockDevice, active_frame, beacon_frame, check,  # noqa: E402
                          first_frame, make_cert, start_fotad)
from fotatest import tls_client_hello  # noqa: E402

HELLO_S = 2          # --http-timeout 2: the hello deadline is 2 s after the accept
GIVE_UP_S = 15       # the test's own bound: far past the deadline
STORE_HELD_S = HELLO_S + 1.5   # the write lock held past the deadline (fotad waits up to 5 s)


def trickle(port, chunks):
    """Connects and sends the next chunk each time 0.25 s pass without the server closing.
    Returns the seconds from connect to the server's close, or None if it is still open
    after GIVE_UP_S (the client kept sending throughout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    t0 = time.monotonic()
    sent = 0
    try:
        while time.monotonic() - t0 < GIVE_UP_S:
            r, _, _ = select.select([s], [], [], 0.25)
            if r:
                try:
                    data = s.recv(4096)
                except (ConnectionResetError, ssl.SSLError):
                    data = b""
                if not data:
                    return time.monotonic() - t0
                continue
            if sent < len(chunks):
                try:
                    s.send(chunks[sent])
                except (BrokenPipeError, ConnectionResetError):
                    return time.monotonic() - t0
                sent += 1
        return None
    finally:
        s.close()


def main():
    # The store's jobs on store threads, as on PostgreSQL (inline, SQLite's wait on a lock
    # would hold the event loop and its hello timer with it)
    os.environ["FOTA_TEST_STORE_THREADS"] = "1"
    cert, key = make_cert()
    d = start_fotad("--http-timeout", str(HELLO_S), tls=(cert, key))
    try:
        pid = d.create_product()["id"]
        dev = d.create_device(pid, name="on-time")
        master = dev["master_device_key"]

        # A device that identifies at once is not bound by the hello deadline.
        good = StockDevice(d.device_port, master)
        good.send(first_frame(7, master))
        check('"status": 200' in good.recv_msg(), "identify")

        # Plain: a newline every 0.25 s (empty lines are ignored) is no identify.
        t = trickle(d.device_port, [b"\n"] * 1000)
        check(t is not None, "a connection trickling newlines stayed open %d s" % GIVE_UP_S)
        check(t >= HELLO_S - 0.5, "closed after %.2f s, before its deadline" % t)
        d.wait_log(r"device connection timed out conn=\d+ dev=0 peer=127\.0\.0\.1:\d+ "
                   r"state=no-hello waited_ms=\d+")

        # TLS: the ClientHello one byte at a time never completes a handshake in time.
        ch = tls_client_hello()
        t = trickle(d.device_tls_port, [ch[i:i + 1] for i in range(len(ch) - 1)])
        check(t is not None, "a TLS handshake trickling its ClientHello stayed open %d s"
              % GIVE_UP_S)
        check(t >= HELLO_S - 0.5, "TLS closed after %.2f s, before its deadline" % t)
        d.wait_log(r"device connection timed out conn=\d+ dev=0 peer=127\.0\.0\.1:\d+ "
                   r"state=handshake waited_ms=\d+")

        # Part of a hello line waits at the deadline: counted once more, then closed.
        part = first_frame(8, master).encode()
        t = trickle(d.device_port, [part[:20]])
        check(t is not None, "a connection holding part of a line stayed open %d s" % GIVE_UP_S)
        check(t >= 2 * HELLO_S - 0.5, "part of a line: closed after %.2f s, not after the "
              "second deadline" % t)
        # ... and a hello completed within the second deadline is answered.
        other = d.create_device(pid, name="late")["master_device_key"]
        part = first_frame(8, other).encode()
        late = StockDevice(d.device_port, other)
        late.send(part[:20])
        time.sleep(HELLO_S + 0.5)   # past the first deadline (the condition under test)
        late.send(part[20:])
        check('"status": 200' in late.recv_msg(), "a hello completed after the first deadline")
        late.close()

        # The identified device outlived both deadlines and still answers.
        good.send('{"path": "/v1/ping/", "method": "POST","meta": {"Authorization": '
                  '"token %s"}}\n' % master)
        check("ping success" in good.recv_msg(), "identified device lost its connection")
        good.close()

        # A D1 sent at once, its row's write waiting on a lock another process holds.
        slow = d.create_device(pid, name="store-wait")["master_device_key"]
        db = sqlite3.connect(os.path.join(d.data_dir, "fota.db"), timeout=10,
                             isolation_level=None)
        dev = StockDevice(d.device_port, slow)
        try:
            db.execute("BEGIN IMMEDIATE")
            dev.send(active_frame(9, "t" * 40, "18:fe:34:00:00:09", "v1.0.0t45772(a)", slow))
            time.sleep(STORE_HELD_S)   # the store's wait the device sees (not a synchronisation)
            db.execute("COMMIT")
            reply = dev.recv_msg(timeout=10)
            check('"activate_status": 1' in reply, "activation waiting on the store: %r" % reply)
            dev.send(beacon_frame(slow))
            check("ping success" in dev.recv_msg(), "the waiting device lost its connection")
            check(d.count_log(r"device connection timed out conn=\d+ dev=0 "
                              r"peer=127\.0\.0\.1:%d " % dev.s.getsockname()[1]) == 0,
                  "the waiting device met its hello deadline")
        finally:
            dev.close()
            db.close()
    finally:
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
