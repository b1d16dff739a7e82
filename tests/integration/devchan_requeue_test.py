#!/usr/bin/env python3
"""devchan_requeue_test.py - a sys_upgrade pushed to a connection that closes
before the device's D4 reply: the waiting RPC gets 202 at once (not a 504 at
its timeout), the command is queued again and pushed once more at the next
identify; dropped again, it is not requeued a second time. A device that
started downloading after the push is not sent it again, also when its
connection closes because fotad stops (the requeue's store job then runs while
the modules stop, on a store thread: the rom module's download progress it
reads must still be there)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from devchan_util import (StockDevice, start_fotad, check, first_frame, http_exchange,  # noqa: E402
                          nonos_url, parse_nonce, run_in_thread)
from devchan_upgrade_test import setup  # noqa: E402


def rpc(d, key, query):
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&" + query, key=key)
    return st, j


def commands(d, dev_id):
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev_id)
    check(st == 200, "commands %s %s" % (st, j))
    return [c for c in j["commands"] if c["action"] == "sys_upgrade"]


def online(d, master, nonce):
    dev = StockDevice(d.device_port, master)
    dev.send(first_frame(nonce, master))
    check('"status": 200' in dev.recv_msg(), "identify")
    return dev


def dropped_twice(d, dev_id, master, owner):
    dev = online(d, master, 5)
    # A long RPC timeout: only the requeue answers it within the join below.
    join = run_in_thread(rpc, d, owner, "action=sys_upgrade&version=v1.1&timeout=120")
    push = dev.recv_msg()
    check('"sys_upgrade"' in push, "push %r" % push)
    nonce = parse_nonce(push)
    dev.close()                                   # no D4 reply
    st, j = join(20)
    check(st == 202 and j["command"]["state"] in ("queued", 1), "rpc reply %s %s" % (st, j))
    check("queued again" in j["message"], "message %r" % j)
    d.wait_log(r"command requeued conn=\d+ dev=%d cmd=\d+ action=sys_upgrade" % dev_id)
    cs = commands(d, dev_id)
    check(len(cs) == 1 and cs[0]["state"] in ("queued", 1), "requeued row %r" % cs)
    # Next identify: pushed again (same command, same nonce).
    dev = online(d, master, 6)
    push = dev.recv_msg(timeout=10)
    check('"sys_upgrade"' in push and parse_nonce(push) == nonce, "redelivered %r" % push)
    dev.close()                                   # dropped again: no third delivery
    d.wait_log(r"command not requeued conn=\d+ dev=%d cmd=\d+ reason=\"already requeued once\""
               % dev_id)
    cs = commands(d, dev_id)
    check(len(cs) == 1 and cs[0]["state"] in ("delivered", 2), "stays delivered %r" % cs)
    dev = online(d, master, 7)
    check(dev.closed(1.0) is False and '"sys_upgrade"' not in dev.pending.decode(),
          "pushed a third time: %r" % dev.pending)
    dev.close()


def download_started(d, dev_id, master, owner):
    dev = online(d, master, 8)
    join = run_in_thread(rpc, d, owner, "action=sys_upgrade&version=v1.1&timeout=3")
    push = dev.recv_msg()
    check('"sys_upgrade"' in push, "push %r" % push)
    # The device acts on it (downloads) but its control connection drops
    # before the D4 reply: it has the command; no second push.
    _, head, body, _ = http_exchange(d.http_port, nonos_url("v1.1", "user2.bin", d.http_port, master).encode())
    check(b"200 OK" in head and body, "download")
    dev.close()
    d.wait_log(r"command not requeued conn=\d+ dev=%d cmd=\d+ reason=\"the device started a "
               r"download after the push\"" % dev_id)
    st, j = join(20)
    check(st == 504, "RPC times out as before: %s %s" % (st, j))
    dev = online(d, master, 9)
    check(dev.closed(1.0) is False and '"sys_upgrade"' not in dev.pending.decode(),
          "pushed again after a download: %r" % dev.pending)
    dev.close()


def stopped_after_download():
    # The store's jobs on store threads, as on PostgreSQL (SQLite inline would run the
    # requeue's job within the device module's stop).
    os.environ["FOTA_TEST_STORE_THREADS"] = "1"
    d = start_fotad()
    try:
        _, dev_id, master, owner, _ = setup(d)
        dev = online(d, master, 5)
        join = run_in_thread(rpc, d, owner, "action=sys_upgrade&version=v1.1&timeout=1")
        check('"sys_upgrade"' in dev.recv_msg(), "push")
        _, head, body, _ = http_exchange(d.http_port, nonos_url("v1.1", "user2.bin", d.http_port,
                                                                master).encode())
        check(b"200 OK" in head and body, "download")
        st, j = join(20)
        check(st == 504, "RPC times out: %s %s" % (st, j))
    finally:
        d.stop()                                  # the device's connection closes here
        del os.environ["FOTA_TEST_STORE_THREADS"]
    d2 = start_fotad(data_dir=d.data_dir)
    try:
        cs = commands(d2, dev_id)
        check(len(cs) == 1 and cs[0]["state"] in ("delivered", 2),
              "requeued at shutdown after a download: %r" % cs)
    finally:
        d2.stop()
        d.cleanup()


def main():
    d = start_fotad()
    try:
        _, dev_id, master, owner, _ = setup(d)
        dropped_twice(d, dev_id, master, owner)
        download_started(d, dev_id, master, owner)
    finally:
        d.stop()
    stopped_after_download()
    print("ok")


if __name__ == "__main__":
    main()
