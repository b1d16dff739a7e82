"""cluster_messages_test.py - message followers across instances (docs/scale-out.md; two fotad
on one PostgreSQL). A follower (GET /v1/messages/?follow=true) on B gets the messages stored
by A, and one on A those stored by B: sensors connected to both instances send datapoints at
once (each a message, inserted by several store threads on each instance), and each follower
receives every message of the product exactly once, in id order, none skipped, its own
instance's among the other's. The time from a datapoint sent to A until B's follower has its
message is printed."""
import http.client
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import start_instance  # noqa: E402
from devchan_util import first_frame  # noqa: E402
from fotatest import check, run_tests, wait_for  # noqa: E402
from pg_util import PgServer  # noqa: E402

PG = None
N = 100           # datapoints per sensor
SENSORS = 2       # per instance
PROBES = 15       # datapoints sent one at a time to A, timed on B's follower


class Follower:
    """A follower of product pid on d, read by a thread of its own: ids in arrival order."""
    closing = False

    def __init__(self, d, pid):
        self.ids, self.bodies, self.error = [], {}, None
        self.lock = threading.Lock()
        self.conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=60)
        self.conn.request("GET", "/v1/messages/?follow=true&product_id=%d" % pid,
                          headers={"Authorization": "token " + d.admin_key})
        self.resp = self.conn.getresponse()
        check(self.resp.status == 200, "follow: %d" % self.resp.status)
        check(self.resp.readline().startswith(b": follow"), "the stream's opening comment")
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        mid = None
        try:
            while True:
                ln = self.resp.readline()
                if not ln:
                    return
                if ln.startswith(b"id: "):
                    mid = int(ln[4:])
                elif ln.startswith(b"data: ") and mid is not None:
                    with self.lock:
                        self.ids.append(mid)
                        self.bodies[mid] = json.loads(ln[6:])
                    mid = None
        except (OSError, ValueError) as e:
            if not self.closing:
                self.error = e

    def seen(self):
        with self.lock:
            return list(self.ids)

    def has(self, x):
        with self.lock:
            return any(xof(b) == x for b in self.bodies.values())

    def close(self):
        self.closing = True
        self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.t.join(5)
        self.conn.close()


def xof(m):
    """The x of a datapoint message (its body is the frame's), else None."""
    body = (m or {}).get("body")
    return body.get("datapoint", {}).get("x") if isinstance(body, dict) else None


def datapoint(nonce, key, x):
    return ('{"nonce": %d, "path": "/v1/datastreams/t/datapoint/", "method": "POST", '
            '"body": {"datapoint": {"x": %d}}, "meta": {"Authorization": "token %s"}}\n'
            % (nonce, x, key))


def sensor(d, key):
    s = socket.create_connection(("127.0.0.1", d.device_port), timeout=20)
    s.sendall(first_frame(1, key).encode())
    return s


def read_lines(s, n):
    got = b""
    while got.count(b"\n") < n:
        b = s.recv(65536)
        check(b, "device connection closed after %d of %d replies" % (got.count(b"\n"), n))
        got += b


def send_burst(d, key, base, out, i):
    """N datapoints x = base..base+N-1 in one write; done when all are answered."""
    try:
        s = sensor(d, key)
        s.sendall("".join(datapoint(k + 2, key, base + k) for k in range(N)).encode())
        read_lines(s, N + 1)   # the identify's reply, then N
        s.close()
        out[i] = None
    except Exception as e:   # noqa: BLE001  (reported by the main thread)
        out[i] = e


def product_ids(d, pid):
    """Every message id of product pid, oldest first (the listing, paged)."""
    ids, before = [], ""
    while True:
        st, _, j = d.api("GET", "/v1/messages/?product_id=%d&limit=500%s" % (pid, before))
        check(st == 200, "listing: %d %r" % (st, j))
        ids += [m["id"] for m in j["messages"]]
        if not j["next_before"]:
            return sorted(ids)
        before = "&before=%d" % j["next_before"]


def test_followers_across_instances():
    DB = "msg"
    PG.create_db(DB)
    extra = ["--device-msg-rate", "0"]
    t0 = time.monotonic()
    a = start_instance(PG, DB, "a", extra=extra)
    b = start_instance(PG, DB, "b", like=a, extra=extra)
    pid = a.create_product(name="sensors", serial="45773", flash_map=2)["id"]
    keys = [a.create_device(pid, name="s%d" % i)["master_device_key"] for i in range(2 * SENSORS)]
    fb, fa = Follower(b, pid), Follower(a, pid)
    print("two instances started in %.2f s" % (time.monotonic() - t0))

    # Latency A -> B's follower: one datapoint at a time.
    s = sensor(a, keys[0])
    read_lines(s, 1)
    took = []
    for k in range(PROBES):
        x = 100000 + k
        t0 = time.monotonic()
        s.sendall(datapoint(k + 2, keys[0], x).encode())
        wait_for(lambda: fb.has(x), 10, "datapoint %d on B's follower" % x, interval=0.001)
        took.append(time.monotonic() - t0)
    s.close()
    took.sort()
    print("A -> B follower: median %.1f ms, max %.1f ms (%d datapoints)"
          % (took[len(took) // 2] * 1000, took[-1] * 1000, PROBES))

    # Concurrent inserts on both instances.
    t0 = time.monotonic()
    out = [None] * (2 * SENSORS)
    threads = [threading.Thread(target=send_burst,
                                args=(a if i < SENSORS else b, keys[i], i * N, out, i))
               for i in range(2 * SENSORS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in out:
        check(e is None, "a sensor: %r" % e)

    want = product_ids(a, pid)
    check(len(want) == PROBES + 2 * SENSORS * N, "%d messages stored, want %d"
          % (len(want), PROBES + 2 * SENSORS * N))
    for f, name in ((fb, "B"), (fa, "A")):
        wait_for(lambda: len(f.seen()) >= len(want), 20,
                 "%d messages on %s's follower (%d so far)" % (len(want), name, len(f.seen())))
        got = f.seen()
        check(f.error is None, "%s's follower: %r" % (name, f.error))
        dup = len(got) - len(set(got))
        check(dup == 0, "%s's follower got %d messages twice" % (name, dup))
        back = [(got[i - 1], got[i]) for i in range(1, len(got)) if got[i] < got[i - 1]]
        check(not back, "%s's follower: ids out of order %d times, first %r" % (
            name, len(back), back[:3]))
        missing = sorted(set(want) - set(got))
        check(not missing, "%s's follower missed %d ids, first %r" % (name, len(missing),
                                                                     missing[:5]))
        check(got == want, "%s's follower: %d ids, want %d" % (name, len(got), len(want)))
    print("%d datapoints on A and B at once: both followers had every message after %.2f s"
          % (2 * SENSORS * N, time.monotonic() - t0))
    xs = sorted(xof(fb.bodies[i]) for i in want)
    check(xs == list(range(2 * SENSORS * N)) + [100000 + k for k in range(PROBES)],
          "every datapoint's body on B's follower")
    fb.close()
    fa.close()
    b.stop()
    a.stop()


if __name__ == "__main__":
    PG = PgServer()
    run_tests([test_followers_across_instances])
