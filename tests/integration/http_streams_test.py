"""http_streams_test.py - message streams (GET /v1/messages/?follow=true) that never read are
bounded together, not only each: 32 of them and a burst of datapoints (each stream 3 MiB
behind, under the 4 MiB of one) took fotad's memory up by the sum; with stream_memory 8M the
streams furthest behind are cut off (their connection closed, their bytes freed) and fotad's
memory stays within a few MiB of it, while a follower that reads keeps every message."""
import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devchan_util import first_frame, start_fotad  # noqa: E402
from fotatest import MEMORY_SCALE, check, rss_mb, run_tests, wait_for  # noqa: E402

STALLED = 32
N = 1500            # datapoints; about 2.1 KB each as an event: 3.2 MB per stream
# The ASan tree's allocator keeps freed memory in a quarantine unless told not to.
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                    "quarantine_size_mb=0"]))



def follow(d, rcvbuf=0):
    """A follower: the stream's reply head read; the socket returned."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:   # a small window: what it does not read stays in fotad's buffers
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", d.http_port))
    s.sendall(("GET /v1/messages/?follow=true HTTP/1.1\r\nHost: x\r\nAuthorization: token %s"
               "\r\n\r\n" % d.admin_key).encode())
    head = b""
    while b": follow" not in head:
        b = s.recv(4096)
        check(b, "stream closed before it started: %r" % head)
        head += b
    check(head.startswith(b"HTTP/1.1 200"), "follow: %r" % head[:200])
    return s


def d8(nonce, key, pad):
    return ('{"nonce": %d, "path": "/v1/datastreams/bulk/datapoint/", "method": "POST", '
            '"body": {"datapoint": {"x": %d, "pad": "%s"}}, "meta": {"Authorization": "token %s"}}\n'
            % (nonce, nonce, pad, key))


def last_seen(data):
    """1 when the event of datapoint N is in data (its body's keys are sorted: x last)."""
    return (b'"x":%d}' % N) in data or (b'"x": %d}' % N) in data


def test_streams_bounded_together():
    d = start_fotad("--stream-memory", "8M", "--device-msg-rate", "0", "--workers", "1")
    try:
        pid = d.create_product()["id"]
        dev = d.create_device(pid, name="sensor")
        key = dev["master_device_key"]
        stalled = [follow(d, rcvbuf=4096) for _ in range(STALLED)]
        reader = follow(d)
        got = {"bytes": b"", "done": False}

        def read_all():
            reader.settimeout(60)
            while not last_seen(got["bytes"]):
                b = reader.recv(65536)
                if not b:
                    break
                got["bytes"] = got["bytes"][-65536:] + b
            got["done"] = True
        t = threading.Thread(target=read_all)
        t.start()

        base = rss_mb(d.proc.pid)
        peak = [base]
        dev_sock = socket.create_connection(("127.0.0.1", d.device_port), timeout=10)
        dev_sock.sendall(first_frame(1, key).encode())
        pad = "p" * 1800
        data = "".join(d8(i + 1, key, pad) for i in range(N)).encode()
        sent, replies, end = 0, 0, time.monotonic() + 60
        dev_sock.setblocking(False)
        while replies < N + 1 and time.monotonic() < end:   # the identify's reply, then N
            r, w, _ = select.select([dev_sock], [dev_sock] if sent < len(data) else [], [], 0.05)
            if w:
                try:
                    sent += dev_sock.send(data[sent:sent + 65536])
                except BlockingIOError:
                    pass
            if r:
                replies += dev_sock.recv(65536).count(b"\n")
            peak[0] = max(peak[0], rss_mb(d.proc.pid))
        check(replies >= N + 1, "%d of %d datapoints answered" % (replies - 1, N))
        wait_for(lambda: got["done"], 30, "the reading follower got every datapoint")
        t.join(5)
        check(last_seen(got["bytes"]), "the reading follower missed the last datapoint")
        peak[0] = max(peak[0], rss_mb(d.proc.pid))
        cut = d.count_log(r"http stream cut off: too slow .* reason=stream_memory limit=8388608")
        check(cut >= STALLED // 2, "only %d streams cut off for stream_memory" % cut)
        check(d.count_log(r"http stream cut off: .*reason=backlog") == 0,
              "a stream was cut for its own backlog before stream_memory acted")
        # Before: 32 x 3.2 MB held (the kernel's buffers take a part); now stream_memory 8 MiB.
        print("memory %.1f MB -> peak %.1f MB" % (base, peak[0]))
        check(peak[0] - base < 32 * MEMORY_SCALE, "memory %.0f MB -> %.0f MB with %d stalled streams"
              % (base, peak[0], STALLED))
        # A cut stream is closed: its reader sees the end after what the kernel held.
        open_socks, closed = list(stalled), [0]

        def drain():
            r, _, _ = select.select(open_socks, [], [], 0.05)
            for s in r:
                try:
                    if s.recv(65536):
                        continue
                except ConnectionResetError:
                    pass
                closed[0] += 1
                open_socks.remove(s)
            return closed[0] >= cut
        wait_for(drain, 20, "the %d cut streams seen closed" % cut)
        for s in stalled:
            s.close()
        reader.close()
        dev_sock.close()
    finally:
        d.stop()


run_tests([test_streams_bounded_together])
