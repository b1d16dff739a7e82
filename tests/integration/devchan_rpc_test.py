"""devchan_rpc_test.py - RPC delivery rules: offline -> 202 queued and pushed when the device
next identifies; queue=false -> 409; no D4 in time -> 504; admin key with device_id=;
unknown release -> 404; datastream POST and GET forwarded as §2.5 and the device's D5 returned;
a failed upgrade report; a silent device dropped after ping_timeout."""
import json
import re
import time

from devchan_util import (StockDevice, start_fotad, check, first_frame, parse_nonce,
                          rpc_response_frame, run_in_thread, upgrade_frame, wait_for)
from devchan_upgrade_test import setup


def rpc(d, key, query):
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&" + query, key=key)
    return st, j


def drain_with_waiting_rpc():
    """SIGTERM while an RPC waits for its device: the caller gets 503, fotad exits cleanly."""
    d = start_fotad()
    try:
        _, _, master, owner, _ = setup(d)
        dev = StockDevice(d.device_port, master)
        dev.send(first_frame(5, master))
        dev.recv_msg()
        join = run_in_thread(rpc, d, owner, "action=sys_upgrade&version=v1.1&timeout=60")
        check('"sys_upgrade"' in dev.recv_msg(), "push")
    finally:
        d.stop()
    st, j = join()
    check(st == 503 and j["command"]["state"] == "cancelled", "drain reply %s %s" % (st, j))


def crash_resets_presence():
    """SIGKILL while a device is online: after the restart the store no longer says online. On
    PostgreSQL the restart is the same instance by its name (instance_name, by default
    hostname:http_port, which a restart on its port keeps: here the ports are new), and its
    registration resets what the crashed one held (docs/scale-out.md); another name would be
    another instance, which leaves the crashed one's devices online until instance_timeout."""
    name = ("--instance-name", "rpc-crash")
    d = start_fotad(*name)
    _, dev_id, master, _, _ = setup(d)
    dev = StockDevice(d.device_port, master)
    dev.send(first_frame(5, master))
    dev.recv_msg()
    wait_for(lambda: d.device_view(dev_id)["online"], 5, "online before the crash")
    data = d.data_dir
    d.kill()
    dev.close()
    d2 = start_fotad(*name, data_dir=data)
    try:
        check(not d2.device_view(dev_id)["online"], "still online after a crash and restart")
        d2.wait_log(r"cluster instance registered .* earlier=1 devices_reset=1" if d2.store == "pg"
                    else r"device presence reset devices=1")
    finally:
        d2.stop()
        d.cleanup()


def main():
    crash_resets_presence()
    drain_with_waiting_rpc()
    d = start_fotad("--ping-timeout", "5")
    try:
        pid, dev_id, master, owner, _ = setup(d)
        # a sensor: D8 straight after connecting (no identify), then it disconnects
        sensor = StockDevice(d.device_port, master)
        sensor.send('{"nonce": 3, "path": "/v1/datastreams/tem_hum/datapoint/", "method": "POST", '
                    '"body": {"datapoint": {"x": -21.05,"y": 40.50}}, "meta": {"Authorization": '
                    '"token %s"}}\n' % master)
        check(sensor.recv_msg() == '{"nonce": 3, "status": 200}\n', "D8 reply")
        gone = re.compile(r"device offline conn=\d+ dev=%d\b" % dev_id)
        before = len(gone.findall(d.log_text()))
        sensor.close()
        st, _, j = d.api("GET", "/v1/messages/?device_id=%d" % dev_id)
        dp = [m for m in j["messages"] if m["action"] == "datapoint:tem_hum"]
        check(st == 200 and dp and master not in json.dumps(j), "datapoint message %r" % j)
        check(dp[0]["body"] == {"datapoint": {"x": -21.05, "y": 40.5}}, "datapoint %r" % dp[0])
        wait_for(lambda: not d.device_view(dev_id)["online"], 5, "sensor offline")
        # and the channel has let go of its connection (the view may say so a moment earlier)
        wait_for(lambda: len(gone.findall(d.log_text())) > before, 5, "the sensor's connection freed")
        # offline: queue=false -> 409, else 202 queued
        st, j = rpc(d, owner, "action=sys_upgrade&version=v1.1&queue=false")
        check(st == 409, "queue=false offline: %s %s" % (st, j))
        st, j = rpc(d, owner, "action=sys_upgrade&version=v9.9")
        check(st == 404, "unknown release: %s %s" % (st, j))
        st, j = rpc(d, owner, "action=sys_upgrade&version=v1.1")
        check(st == 202 and j["command"]["state"] in ("queued", 1), "offline: %s %s" % (st, j))
        # the device connects: the queued push follows the identify reply, as its own message
        dev = StockDevice(d.device_port, master)
        dev.send(first_frame(77, master))
        check(parse_nonce(dev.recv_msg()) == 77, "identify reply")
        push = dev.recv_msg(timeout=5)
        check('"action": "sys_upgrade"' in push and '"version": "v1.1~~~~~~~~~~~"' in push,
              "queued push %r" % push)
        dev.send(rpc_response_frame(parse_nonce(push)))
        # the report says it failed: the command fails, rom_version is unchanged
        dev.send(upgrade_frame(master, "device_upgrade_failed", "v1.0.5t45772(a)",
                               "v1.1~~~~~~~~~~~"))
        check("send message success" in dev.recv_msg(), "D7 reply")
        check(d.device_view(dev_id)["rom_version"] != "v1.1", "failed upgrade changed the version")
        d.wait_log(r"device report .*action=device_upgrade_failed")
        # no D4: 504 after timeout=1
        st, j = rpc(d, owner, "action=sys_upgrade&version=v1.1&timeout=1")
        check(st == 504 and "did not answer" in j.get("message", ""), "timeout: %s %s" % (st, j))
        dev.recv_msg()  # the push that went unanswered
        # admin key needs device_id=; with it the device gets the push
        st, j = rpc(d, d.admin_key, "action=sys_reboot")
        check(st == 400, "admin without device_id: %s" % st)
        st, j = rpc(d, d.admin_key, "action=sys_reboot&device_id=%d" % dev_id)
        check(st == 200, "admin sys_reboot %s %s" % (st, j))
        msg = dev.recv_msg()
        check('"action": "sys_reboot"' in msg and "token " + owner in msg and d.admin_key not in msg,
              "reboot push (owner key in meta, never the admin key) %r" % msg)
        # datastream POST: forwarded with its body, the D5 reply returned
        join = run_in_thread(d.api, "POST", "/v1/datastreams/plug-status/datapoint/"
                             "?deliver_to_device=true", {"datapoint": {"x": 1}}, owner)
        push = dev.recv_msg()
        n = parse_nonce(push)
        check(push == '{"body": {"datapoint": {"x": 1}}, "deliver_to_device": true, "meta": '
              '{"Authorization": "token %s"}, "method": "POST", "nonce": %d, "path": '
              '"/v1/datastreams/plug-status/datapoint/"}\n' % (owner, n), "datastream push %r" % push)
        check(push[push.find("body") + 27] == "1", "plug parser offset 27")
        dev.send('{"status": 200, "datapoint": {"x": 1}, "nonce": %d, "deliver_to_device": true}\n'
                 % n)
        st, _, j = join()
        check(st == 200 and j["datapoint"] == {"x": 1}, "datastream reply %s %s" % (st, j))
        # datastream GET (the app reading the plug): no body, "method": "GET" (§2.5)
        join = run_in_thread(d.api, "GET", "/v1/datastreams/plug-status/datapoint/"
                             "?deliver_to_device=true", None, owner)
        push = dev.recv_msg()
        n = parse_nonce(push)
        check(push == '{"deliver_to_device": true, "meta": {"Authorization": "token %s"}, '
              '"method": "GET", "nonce": %d, "path": "/v1/datastreams/plug-status/datapoint/"}\n'
              % (owner, n), "datastream GET push %r" % push)
        dev.send('{"status": 200, "datapoint": {"x": 0}, "nonce": %d, "deliver_to_device": true}\n'
                 % n)
        st, _, j = join()
        check(st == 200 and j["datapoint"] == {"x": 0}, "datastream GET reply %s %s" % (st, j))
        # a device that stops pinging is dropped after ping_timeout (5 s) and shown offline
        t0 = time.monotonic()
        check(dev.closed(timeout=10), "silent device not dropped")
        check(time.monotonic() - t0 >= 3, "dropped too early")
        wait_for(lambda: not d.device_view(dev_id)["online"], 5, "offline after the drop")
        d.wait_log(r"device connection timed out .*state=silent")
    finally:
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
