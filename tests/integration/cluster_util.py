"""cluster_util.py - several fotad on one PostgreSQL database of the test's own
(pg_util.PgServer), as docs/scale-out.md sets them up: the second and later instances start
with a copy of the first one's DATA/secret.key and DATA/owner.key.

    pg = PgServer()
    a = start_instance(pg, "c1", "a")
    b = start_instance(pg, "c1", "b", like=a)
"""
import os
import re
import shutil
import time

from fotatest import Fotad, check, wait_for


def start_instance(pg, db, name, like=None, secret=None, extra=(), start=True):
    """fotad on database db (which must exist) named name; like: an instance whose
    secret.key and owner.key it starts with; secret: 32 bytes of another secret."""
    dsn = pg.dsn(db)
    d = Fotad(extra=["--store", "postgresql:" + dsn, "--instance-name", name] + list(extra))
    if like is not None or secret is not None:
        os.makedirs(d.data_dir, mode=0o700)
        if like is not None:
            for f in ("secret.key", "owner.key"):
                shutil.copy2(os.path.join(like.data_dir, f), os.path.join(d.data_dir, f))
        if secret is not None:
            with open(os.path.join(d.data_dir, "secret.key"), "wb") as f:
                f.write(secret)
            os.chmod(os.path.join(d.data_dir, "secret.key"), 0o600)
    d.pg_name = name
    # A store op called on an event loop logs the loop guard's ERROR (store.h); some callers
    # do, and these tests are about the instances, not them.
    d.expect_error(r"store op called on an event loop")
    if start:
        d.start()
    return d


def instances(pg, db):
    """{name: state} of the live and draining rows of the instances table."""
    rows = pg.sql("SELECT name, state FROM instances WHERE state <> 3", db)
    return dict((ln.split("|")[0], int(ln.split("|")[1])) for ln in rows.splitlines() if ln)


def poll_until(pred, timeout, what):
    """wait_for that also returns the seconds it took (polling every 2 ms)."""
    t0 = time.monotonic()
    wait_for(pred, timeout, what, interval=0.002)
    return time.monotonic() - t0


def online_count(d, pid):
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
    check(st == 200, "device list: %d %r" % (st, j))
    return sum(1 for x in j.get("devices", []) if x.get("online"))


def connections(d):
    """fota_device_connections of instance d, asked directly (not through a balancer)."""
    s, _, body = d.request("GET", "/metrics", key=d.admin_key)
    check(s == 200, "metrics of %s: %d" % (d.url(""), s))
    m = re.search(rb"^fota_device_connections (\d+)$", body, re.M)
    check(m, "no fota_device_connections in /metrics")
    return int(m.group(1))


def rollout(d, jid):
    """Rollout jid as instance d answers GET /v1/rollouts/ID/."""
    s, _, j = d.api("GET", "/v1/rollouts/%d/" % jid)
    check(s == 200, "rollout %d on %s: %d %r" % (jid, d.url(""), s, j))
    return j["rollout"]


def wait_upgraded(d, pid, n, version, timeout=10):
    """Waits (bounded) until instance d lists the n devices of pid, every one on version
    (its name before the "(flash map)" suffix)."""
    old = []

    def upgraded():
        s, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
        check(s == 200 and len(j["devices"]) == n, "devices: %d %r" % (s, j))
        old[:] = [(dv["id"], dv.get("rom_version")) for dv in j["devices"]
                  if not dv.get("rom_version", "").startswith(version.split("(")[0])]
        return not old
    wait_for(upgraded, timeout, "every device on %s (left: %r)" % (version, old), interval=0.1)
