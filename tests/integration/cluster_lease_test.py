"""cluster_lease_test.py - lease `rollouts` against the rollout engine's fences
(docs/scale-out.md). Two fotad on one PostgreSQL; A drives. A live rollout's row is written at
every flush of A's engine, in a transaction that begins with the fence (the lease's row locked
until the transaction ends); a psql session here locks that rollout's row, so A's flush stands
inside its fence for as long as the test wants.

1. While A's fenced transaction waits: A still renews the lease (its expiry moves on) and both
   instances still heart-beat (their listener threads, which also carry the notifications, do
   not wait behind a store write).
2. A stopped (SIGSTOP) and its lease expired: B's takeover waits for A's fenced transaction
   (B's lease statement is seen waiting on a lock, the lease still A's), so a write that passed
   A's fence lands before B could read the rows. Once A runs again and its transaction ends,
   the lease has exactly one holder and no lease statement waits.
"""
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from cluster_util import start_instance  # noqa: E402
from fotatest import check, wait_for  # noqa: E402
from pg_util import PgServer  # noqa: E402

V2 = "v1.0.8t45772(a)"


def one(pg, sql):
    return pg.sql(sql, "fota").strip()


def lease(pg):
    """(holder, epoch, expires as epoch seconds) of lease rollouts."""
    h, e, x = one(pg, "SELECT holder, epoch, extract(epoch FROM expires) FROM leases"
                      " WHERE name = 'rollouts'").split("|")
    return int(h), int(e), float(x)


def heartbeat(pg, name):
    return float(one(pg, "SELECT extract(epoch FROM heartbeat) FROM instances"
                         " WHERE name = '%s' AND state <> 3" % name))


def waiting(pg, app, prefix):
    """Backends of application app whose statement starting with prefix waits on a lock."""
    return int(one(pg, "SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'"
                       " AND wait_event_type = 'Lock' AND query LIKE '%s%%'" % (app, prefix)))


class Locker:
    """A psql session that holds a row lock until commit()."""

    def __init__(self, pg, sql):
        self.p = subprocess.Popen(["psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                                   "-d", pg.dsn("fota")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.p.stdin.write("BEGIN;\n%s;\nSELECT 'locked';\n" % sql)
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            check(line != "", "psql ended before it took the lock")
            if line.strip() == "locked":
                return

    def commit(self):
        self.p.stdin.write("COMMIT;\n")
        self.p.stdin.close()
        check(self.p.wait(timeout=30) == 0, "psql's commit failed")


def main():
    pg = PgServer()
    pg.sql("CREATE DATABASE fota")
    a = b = locker = None
    stopped = False
    with tempfile.TemporaryDirectory() as tmp:
        try:
            a = start_instance(pg, "fota", "a")
            a.wait_log(r"rollouts driven here epoch=\d+", 10)
            b = start_instance(pg, "fota", "b", like=a)
            pid = st.stock_product(a, tmp, V2)
            a.create_device(pid, name="away")
            # one member, offline: the rollout stays live, its row written at every flush
            s, _, j = a.api("POST", "/v1/rollouts/", {"product_id": pid, "version": V2})
            check(s == 202, "rollout: %d %r" % (s, j))
            jid = j["rollout"]["id"]
            wait_for(lambda: one(pg, "SELECT count(*) FROM rollouts WHERE id = %d" % jid) == "1",
                     10, "the rollout's row")
            a_id = int(one(pg, "SELECT id FROM instances WHERE name = 'a' AND state <> 3"))
            holder, epoch, _ = lease(pg)
            check(holder == a_id, "A holds lease rollouts (%d, A is %d)" % (holder, a_id))

            # 1. A's flush waits inside its fence
            locker = Locker(pg, "SELECT id FROM rollouts WHERE id = %d FOR UPDATE" % jid)
            wait_for(lambda: waiting(pg, "fotad", "UPDATE rollouts SET state") == 1, 10,
                     "A's fenced flush waiting for the rollout's row")
            _, _, x0 = lease(pg)
            ha0, hb0 = heartbeat(pg, "a"), heartbeat(pg, "b")
            # a renewal and a heartbeat each (every instance_timeout / 6 = 0.5 s), well within
            # A's lock_timeout (5 s), after which its flush would give up
            wait_for(lambda: lease(pg)[2] >= x0 + 0.3, 10,
                     "A renewing its lease while its fenced transaction is open")
            wait_for(lambda: heartbeat(pg, "a") >= ha0 + 0.3 and heartbeat(pg, "b") >= hb0 + 0.3,
                     10, "both instances heart-beating while A's fenced transaction is open")
            check(waiting(pg, "fotad", "UPDATE rollouts SET state") == 1,
                  "A's flush still waits inside its fence")
            check(lease(pg)[:2] == (a_id, epoch), "the lease still A's, same epoch")
            check("rollouts no longer driven here" not in a.log_text(),
                  "A kept the lease:\n%s" % a.log_text()[-2000:])

            # 2. A stopped, its lease expired: B's takeover waits for A's transaction
            a.proc.send_signal(signal.SIGSTOP)
            stopped = True
            pg.sql("UPDATE leases SET expires = clock_timestamp() - interval '1 second'"
                   " WHERE name = 'rollouts'", "fota")
            wait_for(lambda: waiting(pg, "fotad cluster", "WITH renew AS") == 1, 10,
                     "B's takeover waiting for A's fenced transaction")
            check(lease(pg)[:2] == (a_id, epoch), "the lease still A's while B waits")
            a.proc.send_signal(signal.SIGCONT)
            stopped = False
            locker.commit()
            locker = None
            wait_for(lambda: waiting(pg, "fotad cluster", "WITH renew AS") == 0 and
                     waiting(pg, "fotad", "UPDATE rollouts SET state") == 0, 10,
                     "no lease statement and no flush waiting once A's transaction ended")
            holder, epoch2, _ = lease(pg)
            b_id = int(one(pg, "SELECT id FROM instances WHERE name = 'b' AND state <> 3"))
            check((holder, epoch2) in ((a_id, epoch), (b_id, epoch + 1)),
                  "one holder: A at epoch %d or B at %d, not %d at %d" % (
                      epoch, epoch + 1, holder, epoch2))
            check(a.proc.poll() is None and b.proc.poll() is None, "both instances run")
            print("lease after the takeover's wait: %s at epoch %d" % (
                "A" if holder == a_id else "B", epoch2))
        finally:
            if stopped:
                a.proc.send_signal(signal.SIGCONT)
            if locker is not None:
                locker.p.kill()
            for d in (b, a):
                if d is not None:
                    d.stop()
            pg.stop()
    print("ok")


if __name__ == "__main__":
    main()
