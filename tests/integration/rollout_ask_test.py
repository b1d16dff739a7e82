"""rollout_ask_test.py - rollouts created and controlled on an instance that does not drive
them (docs/scale-out.md, "Where to ask"). Two fotad on one PostgreSQL; A holds lease
`rollouts` (started first). On B:
- a create answers 202 with the body A would give (the same keys, down to the stages), and
  the rollout runs on A: A's log has it, and A pushes its member whose device is connected
  to A;
- bad creates answer what A answers (status and message);
- pause, resume and cancel answer the resulting state, which GET shows on both instances; a
  control of a rollout that does not exist answers 404 as on A;
- A killed (kill -9), its lease not expired yet: a create on B answers 503 with Retry-After
  once nobody took it; after B took the lease, the same create on B answers 202 itself.
Printed: the time of a create on the driver and on the other instance (median of 5 each).
"""
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from cluster_util import start_instance  # noqa: E402
from devchan_util import StockDevice, first_frame  # noqa: E402
from fotatest import check, finish, run_tests, wait_for  # noqa: E402
from pg_util import PgServer  # noqa: E402

V2 = "v1.0.8t45772(a)"


def shape(v):
    """The keys of a JSON value, recursively (lists by their first element)."""
    if isinstance(v, dict):
        return dict((k, shape(x)) for k, x in v.items())
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return None


def create(d, body):
    t0 = time.monotonic()
    s, h, j = d.api("POST", "/v1/rollouts/", body)
    return s, h, j, time.monotonic() - t0


def state_of(d, jid):
    s, _, j = d.api("GET", "/v1/rollouts/%d/" % jid)
    check(s == 200, "rollout %d on %s: %d %r" % (jid, d.url(""), s, j))
    return j["rollout"]["state"]


def both_say(a, b, jid, want):
    wait_for(lambda: state_of(a, jid) == want and state_of(b, jid) == want, 5,
             "rollout %d %s on A and B" % (jid, want), interval=0.05)


def test_ask_the_driver():
    pg = PgServer()
    pg.sql("CREATE DATABASE fota")
    a = b = dev = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            a = start_instance(pg, "fota", "a")
            a.wait_log(r"rollouts driven here epoch=\d+", 10)
            b = start_instance(pg, "fota", "b", like=a)
            for d in (a, b):   # A's death, seen from B
                d.expect_error(r"store op called on an event loop")
            b.expect_error(r"status=503")   # the create while nobody drives
            ref = st.stock_product(a, tmp, V2, name="ref")
            pid = st.stock_product(a, tmp, V2, name="plug")
            j = a.create_device(pid, name="here")
            dev_id, master = j["device"]["id"], j["master_device_key"]
            a.create_device(pid, name="away")

            # bad creates: B answers what A answers
            bad = [{"product_id": pid},
                   {"product_id": pid, "version": V2, "colour": "red"},
                   {"product_id": pid, "version": "v9.9.9"},
                   {"product_id": 999999, "version": V2},
                   {"product_id": pid, "version": V2, "stages": [{"percent": 50},
                                                                  {"percent": 20}]},
                   {"product_id": pid, "version": V2, "filter": {"tag": 5}},
                   {"product_id": pid, "version": V2, "window": 0}]
            for body in bad:
                sa, _, ja, _ = create(a, body)
                sb, _, jb, _ = create(b, body)
                check(400 <= sa < 500 and (sa, ja) == (sb, jb),
                      "bad create %r: A %d %r, B %d %r" % (body, sa, ja, sb, jb))
            check("rollout request taken" not in a.log_text(),
                  "B asked A nothing for bad creates")

            # latency: creates of an empty rollout (product ref has no device)
            on_a, on_b = [], []
            for _ in range(5):
                for d, times in ((a, on_a), (b, on_b)):
                    s, _, j, took = create(d, {"product_id": ref, "version": V2})
                    check(s == 202 and j["rollout"]["total"] == 0, "create: %d %r" % (s, j))
                    times.append(took)

            # a create on B runs on A: the device connected to A gets A's push
            dev = StockDevice(a.device_port, master)
            dev.send(first_frame(5, master))
            dev.recv_msg()
            wait_for(lambda: a.device_view(dev_id)["online"], 10, "the device online")
            s, _, ja, _ = create(a, {"product_id": ref, "version": V2, "window": 5})
            s2, _, jb, _ = create(b, {"product_id": pid, "version": V2, "window": 5})
            check(s == 202 and s2 == 202, "creates: A %d %r, B %d %r" % (s, ja, s2, jb))
            check(shape(ja) == shape(jb), "same body on A and B:\n%r\n%r" % (ja, jb))
            x = jb["rollout"]
            jid = x["id"]
            check(x["total"] == 2 and x["state"] == "running" and x["product_id"] == pid,
                  "the rollout made for B: %r" % x)
            a.wait_log(r"rollout created rollout=%d " % jid, 5)
            check("rollout created rollout=%d " % jid not in b.log_text(), "made on A, not B")
            push = dev.recv_msg(timeout=10)
            check("sys_upgrade" in push, "A pushed its device: %r" % push)

            # controls on B: the resulting state in the reply, and on both instances
            for what, want in (("pause", "paused"), ("resume", "running"),
                               ("cancel", "cancelling")):
                s, _, j = b.api("POST", "/v1/rollouts/%d/%s" % (jid, what))
                check(s == 200 and j["rollout"]["state"] == want and j["rollout"]["id"] == jid,
                      "%s on B: %d %r" % (what, s, j))
                both_say(a, b, jid, want)
            check(j.get("cancelled_now") == 1, "cancel on B cancelled the queued member: %r" % j)
            for d in (a, b):
                s, _, j = d.api("POST", "/v1/rollouts/999999/pause")
                check(s == 404, "pause of no rollout on %s: %d %r" % (d.url(""), s, j))
            s, _, j = b.api("POST", "/v1/rollouts/%d/resume" % jid)
            check(s == 409, "resume of a cancelling rollout on B: %d %r" % (s, j))
            dev.close()
            dev = None

            # nobody drives: A killed, its lease not expired yet
            a.kill()
            s, h, j, took = create(b, {"product_id": ref, "version": V2})
            check(s == 503 and h.get("retry-after") and "drives the rollouts" in j["message"],
                  "create on B without a driver: %d %r %r" % (s, h, j))
            b.wait_log(r"rollouts driven here epoch=\d+", 10)
            wait_for(lambda: create(b, {"product_id": ref, "version": V2})[0] == 202, 10,
                     "a create on B once it took the lease", interval=0.2)
            print("rollout_ask: create on the driver %.1f ms, on the other instance %.1f ms "
                  "(median of %d); 503 without a driver after %.2f s" %
                  (statistics.median(on_a) * 1000, statistics.median(on_b) * 1000, len(on_a),
                   took))
        finally:
            if dev is not None:
                dev.close()
            finish(b, a)
            pg.stop()


if __name__ == "__main__":
    run_tests([test_ask_the_driver])
