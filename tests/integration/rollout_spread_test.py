"""rollout_spread_test.py - a rollout whose members' devices other instances hold. Three fotad
on one PostgreSQL behind haproxy (etc/haproxy.cfg.example); A holds lease `rollouts` (started
first), so A drives the rollout. 30 stock NONOS devices (fota-sim) connect through haproxy's
device port and spread over the three, so most are held by B and C; a rollout of V2 with a
window of 4 starts on A. A pushes the devices it holds and names the others on fota_push; B
and C push theirs, and their devices' replies, reports and identifies reach A through
rollout_events. The rollout finishes with every member upgraded and none failed or timed out,
and the members in flight (A's in_progress, sampled all along) never exceed the window.

Measured and printed: the rollout's time from create to finished, the most members in flight
seen, and, from A's log, the time from A's asking for a push to the device's D4 on the
instance holding it (push_to_reply_ms) and to A applying it (push_to_here_ms).
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from cluster_util import connections, rollout, start_instance, wait_upgraded  # noqa: E402
from fotatest import check, finish, run_tests, wait_for  # noqa: E402
from haproxy_util import HAProxy  # noqa: E402
from pg_util import PgServer  # noqa: E402

N = 30
WINDOW = 4
V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))] if xs else -1


def test_members_held_elsewhere():
    pg = PgServer()
    pg.sql("CREATE DATABASE fota")
    a = b = c = lb = sim = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            a = start_instance(pg, "fota", "a")
            a.wait_log(r"rollouts driven here epoch=\d+", 10)
            b = start_instance(pg, "fota", "b", like=a)
            c = start_instance(pg, "fota", "c", like=a)
            lb = HAProxy([a, b, c]).start()
            pid = st.stock_product(a, tmp, V2)

            sim = subprocess.Popen(
                [st.sim_path(), "--server", "127.0.0.1", "--http-port", str(lb.ports["http"]),
                 "--device-port", str(lb.ports["device"]), "--key", a.admin_key, "--product",
                 str(pid), "--profile", "nonos", "--devices", str(N), "--upgrade-to", V2,
                 "--initial-version", V1, "--await-push", "--time-scale", "20",
                 "--faults", "slow=80000", "--timeout", "100", "--hold", "60"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            held = {}

            def spread():
                held.update((d.pg_name, connections(d)) for d in (a, b, c))
                return sum(held.values()) == N
            wait_for(spread, 40, "%d devices connected through haproxy" % N, interval=0.1)
            check(held["b"] + held["c"] > held["a"] and held["b"] > 0 and held["c"] > 0,
                  "most devices held by B and C: %r" % held)

            # every instance has its devices' presence written (device_conn) before the rollout
            wait_for(lambda: int(pg.sql("SELECT count(*) FROM device_conn", "fota").strip()) == N,
                     10, "device_conn holds the %d devices" % N, interval=0.05)
            # and their rows say online, so the online filter takes the other instances'
            # devices too, not only A's connections
            wait_for(lambda: a.api("GET", "/v1/products/%d/overview?range=1h" % pid)[2]
                     ["overview"]["online"] == N, 10, "the %d devices online as A reads them" % N,
                     interval=0.05)
            t0 = time.monotonic()
            s, _, j = a.api("POST", "/v1/rollouts/", {"product_id": pid, "version": V2,
                                                      "window": WINDOW, "timeout": 60,
                                                      "filter": {"online": True}})
            check(s == 202 and j["rollout"]["total"] == N, "rollout on A: %d %r" % (s, j))
            jid = j["rollout"]["id"]
            seen = {"max": 0, "samples": 0}

            def done():
                x = rollout(a, jid)
                check(x["failed"] == 0 and x["timed_out"] == 0, "failures: %r" % x)
                check(x["in_progress"] <= WINDOW, "window exceeded: %r" % x)
                seen["max"] = max(seen["max"], x["in_progress"])
                seen["samples"] += 1
                return x["state"] == "finished"
            wait_for(done, 60, "the rollout finished", interval=0.02)
            total = time.monotonic() - t0
            x = rollout(a, jid)
            check(x["succeeded"] == N and x["cancelled"] == 0 and x["deleted"] == 0,
                  "final counters: %r" % x)
            check(seen["max"] >= 2, "members were pushed side by side: %r" % seen)

            # the members held by B and C went through rollout_events: A logs each reply
            lat = [(int(m.group(1)), int(m.group(2))) for m in re.finditer(
                r"rollout reply from another instance .*push_to_reply_ms=(-?\d+) "
                r"push_to_here_ms=(-?\d+)", a.log_text())]
            check(len(lat) >= held["b"] + held["c"] - 2,
                  "replies of B's and C's devices through rollout_events: %d, held %r" %
                  (len(lat), held))
            left = int(pg.sql("SELECT count(*) FROM rollout_events", "fota").strip())
            check(left == 0, "rollout_events consumed: %d left" % left)

            wait_upgraded(a, pid, N, V2)
            r = [x for x, _ in lat]
            h = [y for _, y in lat]
            print("rollout_spread: devices=%d held=%r window=%d max_in_flight=%d samples=%d "
                  "total_s=%.2f remote_replies=%d push_to_reply_ms p50=%d max=%d "
                  "push_to_here_ms p50=%d max=%d" %
                  (N, held, WINDOW, seen["max"], seen["samples"], total, len(lat),
                   pct(r, 50), max(r), pct(h, 50), max(h)))
            sim.kill()
            sim.communicate(timeout=30)
        finally:
            if sim is not None and sim.poll() is None:
                sim.kill()
                sim.communicate(timeout=30)
            finish(lb, c, b, a)
            pg.stop()


if __name__ == "__main__":
    run_tests([test_members_held_elsewhere])
