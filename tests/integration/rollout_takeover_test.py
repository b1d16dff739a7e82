"""rollout_takeover_test.py - a rollout outlives the fotad that drives it. Two fotad on one
PostgreSQL behind haproxy (etc/haproxy.cfg.example); A holds lease `rollouts` (started first),
so A drives every rollout. 24 stock NONOS devices (fota-sim) connect through haproxy's device
port and spread over both; a rollout of V2 with a window of 3 starts on A. Once some members
succeeded and others are between push and report, A is killed (kill -9). B takes the lease when
it expires, resumes the rollout from the rows (A's last writes are there), makes the members
whose devices reconnected to it wait for the window again and pushes again those that A had
pushed: the rollout finishes on B with every device on V2 and none failed or timed out,
GET /v1/rollouts/ID/ through B telling the progress.

The devices download from B's HTTP port directly: a stock device whose download connection
dies reports the upgrade failed, and a download through haproxy to A at the kill would do that
(the device's own failure, not the driver's). Measured and printed: the takeover delay (kill to
B's "rollout taken over" line) and the time from the kill to the rollout's end.
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

N = 24
WINDOW = 3
V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"


DELIVERED, ACKED, DONE = 3, 4, 5   # member states (store.h)


def stored_states(pg, jid):
    """{member state: count} of rollout jid's member rows in PostgreSQL."""
    rows = pg.sql("SELECT state, count(*) FROM rollout_members WHERE rollout_id = %d"
                  " GROUP BY state" % jid, "fota")
    return dict((int(ln.split("|")[0]), int(ln.split("|")[1]))
                for ln in rows.splitlines() if ln)


def test_driver_killed():
    pg = PgServer()
    pg.sql("CREATE DATABASE fota")
    a = b = lb = sim = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            a = start_instance(pg, "fota", "a")
            a.wait_log(r"rollouts driven here epoch=\d+", 10)
            b = start_instance(pg, "fota", "b", like=a)
            for d in (a, b):
                # the driver's death is seen from B (instance dead, lease taken) as warnings
                d.expect_error(r"store op called on an event loop")
            lb = HAProxy([a, b]).start()
            pid = st.stock_product(a, tmp, V2)


            sim = subprocess.Popen(
                [st.sim_path(), "--server", "127.0.0.1", "--http-port", str(b.ports["http"]),
                 "--device-port", str(lb.ports["device"]), "--key", a.admin_key, "--product",
                 str(pid), "--profile", "nonos", "--devices", str(N), "--upgrade-to", V2,
                 "--initial-version", V1, "--await-push", "--time-scale", "20",
                 "--faults", "slow=40000",   # a download of about 1 s: pushes in flight
                 "--timeout", "100", "--hold", "60"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            wait_for(lambda: connections(a) + connections(b) == N, 40,
                     "%d devices connected through haproxy" % N, interval=0.1)
            on_a = connections(a)
            check(0 < on_a < N, "leastconn spread the devices: %d of %d on A" % (on_a, N))

            s, _, j = a.api("POST", "/v1/rollouts/", {"product_id": pid, "version": V2,
                                                      "window": WINDOW, "timeout": 60})
            check(s == 202 and j["rollout"]["total"] == N, "rollout on A: %d %r" % (s, j))
            jid = j["rollout"]["id"]

            # A pushes the devices it holds; kill it once its rows say that some are done and
            # some pushed, not done (what B resumes from)
            def mid():
                x = rollout(a, jid)
                check(x["failed"] == 0 and x["timed_out"] == 0, "failures on A: %r" % x)
                n = stored_states(pg, jid)
                last[:] = [x, n]
                return sum(n.values()) == N and n.get(DONE, 0) >= 2 and \
                    n.get(DELIVERED, 0) + n.get(ACKED, 0) > 0
            last = []

            class Last:   # the wait's message names what it saw last
                def __str__(self):
                    return "A's stored rollout halfway (some done, some pushed): %r" % last
            wait_for(mid, 40, Last(), interval=0.02)
            before = rollout(a, jid)
            a.kill()
            t_kill = time.monotonic()

            m = b.wait_log(r"rollout taken over rollout=%d waiting=(\d+) pushed_again=(\d+)" %
                           jid, 15)
            takeover = time.monotonic() - t_kill
            check(re.search(r"cluster rollouts lease taken", b.log_text()),
                  "B took lease rollouts:\n%s" % b.log_text()[-2000:])

            def done():
                x = rollout(b, jid)
                check(x["failed"] == 0 and x["timed_out"] == 0, "failures on B: %r" % x)
                check(x["in_progress"] <= WINDOW, "window exceeded on B: %r" % x)
                return x["state"] == "finished"
            wait_for(done, 40, "the rollout finished on B", interval=0.1)
            total = time.monotonic() - t_kill
            x = rollout(b, jid)
            check(x["succeeded"] == N and x["cancelled"] == 0 and x["deleted"] == 0,
                  "final counters: %r" % x)

            # each device's report of V2 reaches its row with the device channel's batch
            wait_upgraded(b, pid, N, V2)
            print("rollout_takeover: devices=%d on_a=%d succeeded_at_kill=%d "
                  "in_progress_at_kill=%d takeover_s=%.2f waiting=%s pushed_again=%s "
                  "kill_to_finished_s=%.2f" %
                  (N, on_a, before["succeeded"], before["in_progress"], takeover, m.group(1),
                   m.group(2), total))
            sim.kill()
            sim.communicate(timeout=30)
        finally:
            if sim is not None and sim.poll() is None:
                sim.kill()
                sim.communicate(timeout=30)
            finish(lb, b, a)
            pg.stop()


if __name__ == "__main__":
    run_tests([test_driver_killed])
