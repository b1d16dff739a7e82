#!/usr/bin/env python3
"""devchan_reboot_test.py - a stock device answers a sys_upgrade push (D4), sends its D7
report and reboots at once, as IoT_Demo does, while the store is slow: its D4's store job
waits on SQLite's write lock (held by this test), so its old connection's reading is paused
with the D7 still unread. The D7 is not lost: whether the device's new connection identifies
meanwhile (the old one is replaced) or the old one just closes, the report is handled once
the store is free, the command ends `done` and a device_upgrade_success message is written;
the new connection reads on after the old one's frames (a ping is answered)."""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fotatest  # noqa: E402
from devchan_util import (StockDevice, beacon_frame, check, first_frame, parse_nonce,  # noqa: E402
                          rpc_response_frame, run_in_thread, start_fotad, upgrade_frame, wait_for)
from devchan_upgrade_test import PRE, setup  # noqa: E402

# The slow store is SQLite's write lock, held by this test (sqlite3 on fota.db).
fotatest.DEFAULT_STORE = "sqlite"


def online(d, master, nonce):
    dev = StockDevice(d.device_port, master)
    dev.send(first_frame(nonce, master))
    check('"status": 200' in dev.recv_msg(), "identify")
    return dev


def upgrade_rows(d, dev_id):
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev_id)
    check(st == 200, "commands %s %s" % (st, j))
    return [c for c in j["commands"] if c["action"] == "sys_upgrade"]


def successes(d, dev_id):
    st, _, j = d.api("GET", "/v1/messages/?device_id=%d" % dev_id)
    check(st == 200, "messages: %d %r" % (st, j))
    return [m for m in j["messages"] if m["action"] == "device_upgrade_success"]


def reboot(d, db, dev_id, master, owner, n, reconnect):
    """One upgrade whose D4 and D7 reach fotad while the store is held; the device's
    connection closes after its D7 (and, reconnect, a new one identifies at once)."""
    dev = online(d, master, 10 * n)
    join = run_in_thread(lambda: d.api("GET", "/v1/device/rpc/?deliver_to_device=true&"
                                       "action=sys_upgrade&version=v1.1&timeout=10", key=owner))
    push = dev.recv_msg()
    check('"sys_upgrade"' in push, "push %r" % push)
    db.execute("BEGIN IMMEDIATE")       # the D4's command_reply waits on this lock
    new = None
    try:
        dev.send(rpc_response_frame(parse_nonce(push)))
        dev.send(upgrade_frame(master, "device_upgrade_success", PRE, "v1.1"))
        dev.close()                     # the reboot
        if reconnect:
            new = online(d, master, 10 * n + 1)   # the key is cached: no store needed
            d.wait_log(r"device reconnected.* dev=%d " % dev_id)
    finally:
        db.execute("ROLLBACK")
    st, _, j = join(15)
    check(st == 200, "rpc answered after the D4: %s %r" % (st, j))
    wait_for(lambda: successes(d, dev_id)[n - 1:], timeout=10, what="device_upgrade_success",
             interval=0.2)
    wait_for(lambda: all(c["state"] in ("done", 4) for c in upgrade_rows(d, dev_id)),
             timeout=10, what="the upgrade's command done", interval=0.2)
    d.wait_log(r"device report conn=\d+ dev=%d action=device_upgrade_success" % dev_id)
    if new:
        new.send(beacon_frame(master))
        check("ping success" in new.recv_msg(), "the new connection reads on")
        new.close()


def main():
    # The store's jobs on store threads, as on PostgreSQL: a job waiting on SQLite's lock
    # leaves the event loop free, the connection whose frame it is paused meanwhile.
    os.environ["FOTA_TEST_STORE_THREADS"] = "1"
    d = start_fotad()
    db = None
    try:
        _, dev_id, master, owner, _ = setup(d)
        db = sqlite3.connect(os.path.join(d.data_dir, "fota.db"), timeout=10,
                             isolation_level=None)
        reboot(d, db, dev_id, master, owner, 1, reconnect=True)
        reboot(d, db, dev_id, master, owner, 2, reconnect=False)
    finally:
        if db:
            db.close()
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
