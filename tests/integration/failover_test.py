"""failover_test.py - fotad on a replicated PostgreSQL loses its primary.

A primary and a synchronous streaming standby (pg_basebackup -R, synchronous_standby_names '*'),
both started by the test; fotad's DSN names both hosts with target_session_attrs=read-write,
as docs/scale-out.md tells. The primary is then lost at once (immediate stop):
- a write gets 503 with the store's message, promptly, and fotad keeps serving;
- the download of a release fotad has served before keeps working, byte for byte;
- once the standby is promoted, fotad writes to it without a restart, and every write it
  acknowledged before the loss is there (a synchronous standby confirmed each commit).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, finish, make_image, run_tests, wait_for  # noqa: E402
from devchan_util import check_rom_header, http_exchange, nonos_url  # noqa: E402
from pg_util import PgServer  # noqa: E402

ACKED = 12   # products written and acknowledged before the primary is lost


def replicated_pg():
    """A primary with database fota and a synchronous standby of it, streaming."""
    pg = PgServer()
    pg.sql("CREATE DATABASE fota")
    sb = PgServer.standby_of(pg)
    # After the base backup, which would copy it: the promoted standby, alone, must not wait
    # for a standby of its own (docs/scale-out.md).
    pg.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
    pg.sql("SELECT pg_reload_conf()")
    wait_for(lambda: pg.sql("SELECT sync_state FROM pg_stat_replication").split() == ["sync"],
             30, "the standby streaming synchronously", interval=0.05)
    return pg, sb


def download(d, master, image):
    url = nonos_url("v1.1", "user2.bin", d.http_port, master)
    first, header, body, closed = http_exchange(d.http_port, url.encode())
    check_rom_header(first, header, len(image), "user2.bin")
    check(body == image and closed, "download: %d bytes of %d" % (len(body), len(image)))


def product_names(d):
    st, _, j = d.api("GET", "/v1/products/")
    check(st == 200, "product list: %d %r" % (st, j))
    return sorted(p["name"] for p in j["products"])


def test_primary_lost():
    pg, sb = replicated_pg()
    dsn = "host=%s,%s user=fota dbname=fota target_session_attrs=read-write" % (pg.dir, sb.dir)
    d = Fotad(extra=["--store", "postgresql:" + dsn])
    d.start()
    # A write refused for want of a primary is logged as an error (503), with its cause.
    d.expect_error(r"status=503 .*store unavailable|req=\d+ method=POST path=/v1/products/ status=503")
    try:
        pid = d.create_product(name="plug", serial="45772", flash_map=2)["id"]
        user1, user2 = make_image(1, 2, "v1.1"), make_image(2, 2, "v1.1")
        d.upload_release(pid, "v1.1", files=[("user1.bin", user1), ("user2.bin", user2)])
        master = d.create_device(pid, name="plug-1")["master_device_key"]
        for i in range(ACKED):
            d.create_product(name="acked-%02d" % i)
        before = product_names(d)
        download(d, master, user2)   # the release and the device's key are in fotad's caches

        pg.crash()
        t0 = time.monotonic()
        st, _, j = d.api("POST", "/v1/products/", {"name": "during-outage"})
        print("a write without a primary: %d after %.1f ms" % (st, (time.monotonic() - t0) * 1000))
        check(st == 503, "a write without a primary: %d %r" % (st, j))
        check("store unavailable" in j.get("message", ""), "its message: %r" % j)
        download(d, master, user2)   # served from the caches, the store unreachable
        st, _, j = d.api("POST", "/v1/products/", {"name": "during-outage"})
        check(st == 503, "a second write without a primary: %d %r" % (st, j))

        t0 = time.monotonic()
        sb.promote()
        wrote = []

        def writes_again():
            st, _, j = d.api("POST", "/v1/products/", {"name": "after-promote"})
            check(st in (200, 503), "a write while the standby is promoted: %d %r" % (st, j))
            wrote.append(st)
            return st == 200
        wait_for(writes_again, 30, "a write accepted by the promoted standby", interval=0.05)
        print("first write accepted %.2f s after pg_ctl promote began (%d refused before)" %
              (time.monotonic() - t0, len(wrote) - 1))
        after = product_names(d)
        check(after == sorted(before + ["after-promote"]),
              "acknowledged writes after the failover: %r, before it %r" % (after, before))
        check(all(("acked-%02d" % i) in after for i in range(ACKED)), "acked products: %r" % after)
        download(d, master, user2)
        d.stop()
    finally:
        finish(d)
        pg.stop()
        sb.stop()


if __name__ == "__main__":
    run_tests([test_primary_lost])
