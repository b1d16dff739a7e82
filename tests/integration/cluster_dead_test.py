"""cluster_dead_test.py - an instance that stops heart-beating has its devices counted offline
by the others (docs/scale-out.md). Two fotad on one PostgreSQL, fota-sim devices connected to
each; the presence batch records which instance holds which device (device_conn); kill -9 of
B: A, holding the janitor lease, counts B dead and B's devices offline within 4 s
(instance_timeout 2 here: its design bound is timeout + a sixth of it), A's own devices stay
online; kill -9 of A, the lease's holder: B takes the lease over once it expired and does
the same. An instance stopped (SIGSTOP) until the other counted it dead writes its connected
devices online again as soon as it runs: a device that stays silent is online again on A
without a check-in of its own. The figures are printed."""
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from cluster_util import instances, online_count, start_instance  # noqa: E402
from devchan_util import StockDevice, first_frame  # noqa: E402
from fotatest import check, run_tests, spawn, wait_for  # noqa: E402
from pg_util import PgServer  # noqa: E402

V1 = "v1.0.0t45772(a)"
NA, NB = 3, 12
TIMEOUT = 2


def hold(d, pid, n, seed):
    """n fota-sim devices registered through d's API and connected to d, pinging."""
    return spawn([st.sim_path(), "--server", "127.0.0.1", "--http-port", str(d.http_port),
                  "--device-port", str(d.device_port), "--key", d.admin_key, "--product",
                  str(pid), "--profile", "nonos", "--devices", str(n), "--initial-version", V1,
                  "--seed", str(seed), "--time-scale", "20", "--timeout", "60", "--hold", "60"],
                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def held_by(pg, db, name):
    return int(pg.sql("SELECT count(*) FROM device_conn h JOIN instances i"
                      " ON i.id = h.instance_id WHERE i.name = '%s'" % name, db).strip())


def two_instances(db):
    """A PostgreSQL server of the test's own with database db, instances a then b on it."""
    pg = PgServer()
    pg.create_db(db)
    extra = ["--instance-timeout", str(TIMEOUT)]
    a = start_instance(pg, db, "a", extra=extra)
    return pg, db, a, start_instance(pg, db, "b", like=a, extra=extra)


def kill_one(victim_first):
    """Starts a then b, devices on each; kills one (a: the janitor lease's holder, whose lease
    the other takes over once it expired) and waits for its devices offline on the other."""
    pg, db, a, b = two_instances("dead")
    check(instances(pg, db) == {"a": 1, "b": 1}, "instances: %r" % instances(pg, db))
    with tempfile.TemporaryDirectory() as tmp:
        pid = st.stock_product(a, tmp, V1)
    sims = [hold(a, pid, NA, 1), hold(b, pid, NB, 2)]
    victim, keep = (a, b) if victim_first else (b, a)
    nkeep = NB if victim_first else NA
    try:
        wait_for(lambda: online_count(a, pid) == NA + NB, 30,
                 "%d devices online as A sees them" % (NA + NB), interval=0.1)
        wait_for(lambda: held_by(pg, db, "b") == NB and held_by(pg, db, "a") == NA, 10,
                 "device_conn: %d held by A, %d by B" % (NA, NB), interval=0.1)
        check(online_count(b, pid) == NA + NB, "B sees every device online")
        check(pg.sql("SELECT i.name FROM leases l JOIN instances i ON i.id = l.holder"
                     " WHERE l.name = 'janitor'", db).strip() == "a", "A holds the janitor lease")

        victim.kill()
        t0 = time.monotonic()
        wait_for(lambda: online_count(keep, pid) == nkeep, 4.0,
                 "the %s's devices offline on the %s" % (victim.pg_name, keep.pg_name),
                 interval=0.01)
        took = time.monotonic() - t0
        print("kill -9 of %s: its %d devices offline on %s after %.2f s (instance_timeout %d s)"
              % (victim.pg_name, NA + NB - nkeep, keep.pg_name, took, TIMEOUT))
        check(held_by(pg, db, victim.pg_name) == 0, "the dead one holds no device")
        check(instances(pg, db) == {keep.pg_name: 1}, "dead: %r" % instances(pg, db))
        check(keep.wait_log(r"cluster instance dead instances=\"\d+ %s\" devices_offline=%d"
                            % (victim.pg_name, NA + NB - nkeep)), "the death is logged")
        check(online_count(keep, pid) == nkeep, "the other's own devices stay online")
    finally:
        for s in sims:
            if s.poll() is None:
                s.terminate()
            s.communicate(timeout=30)
    keep.stop()
    pg.stop()


def test_stopped_comes_back():
    pg, db, a, b = two_instances("back")
    pid = a.create_product(name="plug", serial="45772", flash_map=2)["id"]
    j = a.create_device(pid, name="plug-1")
    dev_id, master = j["device"]["id"], j["master_device_key"]
    # The stock device's control connection to B, identified; it sends nothing more (the
    # ping timeout is 120 s), so only B's own write can bring it back online in the store.
    dev = StockDevice(b.device_port, master)
    dev.send(first_frame(5, master))
    dev.recv_msg()
    wait_for(lambda: a.device_view(dev_id)["online"], 10, "the device online as A sees it")
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: not a.device_view(dev_id)["online"], 10,
                 "B counted dead, its device offline as A sees it", interval=0.05)
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    t0 = time.monotonic()
    wait_for(lambda: a.device_view(dev_id)["online"], 10,
             "the device online again as A sees it, without a check-in", interval=0.05)
    print("SIGCONT of B: its silent device online again on A after %.2f s"
          % (time.monotonic() - t0))
    check(b.wait_log(r"device presence written again devices=1"), "B wrote it again")
    check(held_by(pg, db, "b") == 1, "B holds its device again")
    dev.close()
    b.stop()
    a.stop()
    pg.stop()


def test_kill_b():
    kill_one(False)


def test_kill_janitor():
    kill_one(True)


if __name__ == "__main__":
    run_tests([test_kill_b, test_kill_janitor, test_stopped_comes_back])
