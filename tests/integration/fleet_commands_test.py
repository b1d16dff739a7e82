"""fleet_commands_test.py - a device's queued commands against a real fotad, on both
platforms: DELETE /v1/devices/ID/commands/CID/ cancels a queued command (200, the row says
cancelled; 409 once it is delivered or over; 404 for another device's; the device's own
key may, another device's may not); a new upgrade replaces the queued one (cancelled,
"replaced_by") so a device that connects gets one upgrade, the newest, not two; an upgrade to
the version a device runs is 409 for the admin key unless force=true (not for the device's
own key). A stock-firmware client plays the nonos
device, the core's ESPhttpUpdate request the arduino one.
"""
from devchan_upgrade_test import setup
from devchan_util import (StockDevice, active_frame, check, first_frame, parse_nonce,
                          rpc_response_frame, start_fotad, wait_for)
from fotatest import run_tests
from pull_util import PullDevice, images, mac_of
from arduino_util import arduino_product, md5, release

TOKEN = "0" * 40


def rpc(d, key, query, status):
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&" + query, key=key)
    check(st == status, "rpc %s: %d %r" % (query, st, j))
    return j


def commands(d, dev_id):
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev_id)
    check(st == 200, "commands %d %r" % (st, j))
    return {c["id"]: c for c in j["commands"]}


def cancel(d, dev_id, cid, key, status):
    st, _, j = d.api("DELETE", "/v1/devices/%d/commands/%d/" % (dev_id, cid), key=key)
    check(st == status, "cancel %d/%d: %d %r" % (dev_id, cid, st, j))
    return j


def nonos_test():
    d = start_fotad()
    try:
        pid, dev_id, master, owner, _ = setup(d)            # release v1.1, device offline
        d.upload_release(pid, "v1.2")
        a = rpc(d, owner, "action=sys_upgrade&version=v1.1", 202)["command"]
        r = rpc(d, owner, "action=sys_reboot", 202)["command"]
        b = rpc(d, owner, "action=sys_upgrade&version=v1.2", 202)["command"]
        cs = commands(d, dev_id)
        check(cs[a["id"]]["state"] == "cancelled" and
              cs[a["id"]]["result"] == {"cancelled": "replaced by command %d" % b["id"],
                                        "replaced_by": b["id"]}, "replaced %r" % cs[a["id"]])
        check(cs[r["id"]]["state"] == "queued" and cs[b["id"]]["state"] == "queued",
              "the reboot and the new upgrade stay queued %r" % cs)
        d.wait_log(r"command replaced dev=%d cmd=%d by=%d" % (dev_id, a["id"], b["id"]))

        # cancel: the admin, the device's own key; not twice, not another device's
        j = cancel(d, dev_id, b["id"], d.admin_key, 200)
        check(j["command"]["state"] == "cancelled" and
              j["command"]["result"] == {"cancelled": "by request"}, "cancelled %r" % j)
        j = cancel(d, dev_id, b["id"], d.admin_key, 409)
        check("only a queued command" in j["message"] and j["command"]["state"] == "cancelled",
              "twice %r" % j)
        cancel(d, dev_id, a["id"], owner, 409)
        c = rpc(d, owner, "action=sys_upgrade&version=v1.1", 202)["command"]
        other = d.create_device(pid, name="other")
        cancel(d, dev_id, c["id"], other["owner_key"], 403)
        cancel(d, other["device"]["id"], c["id"], d.admin_key, 404)     # not its command
        cancel(d, dev_id, c["id"] + 1000, d.admin_key, 404)
        cancel(d, 999999, c["id"], d.admin_key, 404)
        j = cancel(d, dev_id, c["id"], owner, 200)
        check(j["command"]["state"] == "cancelled", "by the owner key %r" % j)
        st, _, j = d.api("POST", "/v1/devices/%d/commands/%d/?method=DELETE" % (dev_id, r["id"]))
        check(st == 200 and j["command"]["state"] == "cancelled", "tunnelled DELETE %d %r" %
              (st, j))
        r2 = rpc(d, owner, "action=sys_reboot", 202)["command"]
        e = rpc(d, owner, "action=sys_upgrade&version=v1.2", 202)["command"]

        # the device connects: what is queued comes oldest first, the cancelled never
        dev = StockDevice(d.device_port, master)
        dev.send(first_frame(5, master))
        check(parse_nonce(dev.recv_msg()) == 5, "identify reply")
        pushed = []
        queued = {x["id"] for x in commands(d, dev_id).values() if x["state"] == "queued"}
        check(queued == {r2["id"], e["id"]}, "queued before the connect %r" % queued)
        for _ in range(len(queued)):
            push = dev.recv_msg(timeout=10)
            pushed.append(push)
            dev.send(rpc_response_frame(parse_nonce(push)))
        upgrades = [p for p in pushed if '"sys_upgrade"' in p]
        check(len(upgrades) == 1 and '"v1.2' in upgrades[0], "one upgrade, the newest: %r"
              % pushed)
        wait_for(lambda: commands(d, dev_id)[e["id"]]["state"] == "acked", 10, "upgrade acked")
        j = cancel(d, dev_id, e["id"], d.admin_key, 409)
        check("is acked" in j["message"], "acked %r" % j)
        dev.close()

        # the version it runs: 409 unless force=true
        dv = d.create_device(pid, name="on-v1.1")
        m2 = dv["master_device_key"]
        dev2 = StockDevice(d.device_port, m2)
        dev2.send(active_frame(7, TOKEN, "18:fe:34:00:00:07", "v1.1", m2))
        check(parse_nonce(dev2.recv_msg()) == 7, "activation reply")
        dev2.close()
        did = dv["device"]["id"]
        wait_for(lambda: d.device_view(did)["online"] is False, 10, "offline again")
        j = rpc(d, d.admin_key, "action=sys_upgrade&version=v1.1&device_id=%d" % did, 409)
        check("already runs v1.1" in j["message"] and "force=true" in j["message"], "409 %r" % j)
        check(commands(d, did) == {}, "nothing queued by a refusal")
        j = rpc(d, d.admin_key, "action=sys_upgrade&version=v1.1&force=true&device_id=%d" % did,
                202)
        check(j["command"]["params"] == {"version": "v1.1"}, "force is not a param %r" % j)
        # the device's own key (the seed's phone-app API) is not refused: its retry after a
        # flip a power cut undid names the version the device last reported
        rpc(d, dv["owner_key"], "action=sys_upgrade&version=v1.1", 202)
        rpc(d, d.admin_key, "action=sys_upgrade&version=v1.2&device_id=%d" % did, 202)
        d.stop()
    except BaseException:
        d.kill()
        raise


def arduino_test():
    """A pull device takes the newest queued upgrade at its check-in; the replaced one is
    cancelled; a cancelled one is not served."""
    d = start_fotad()
    try:
        p, key = arduino_product(d, "sketches")
        imgs = images(3)
        versions = {md5(imgs[i]): "%d.0.0" % (i + 1) for i in range(3)}
        for i in range(3):
            release(d, p["id"], "%d.0.0" % (i + 1), imgs[i], current=(i == 0))
        dev = PullDevice(d, key, mac_of(1), imgs[0], versions)
        check(dev.checkin().status == 304, "on the current release")
        st, _, j = d.api("GET", "/v1/products/%d/devices/?q=%s" % (p["id"], mac_of(1)))
        check(st == 200 and j["total"] == 1, "found by its MAC %r" % j)
        did = j["devices"][0]["id"]
        wait_for(lambda: d.device_view(did)["rom_version"] == "1.0.0", 10, "its version known")
        # an arduino device's upgrade to the version it runs holds it there: no 409
        c1 = rpc(d, d.admin_key, "action=sys_upgrade&version=1.0.0&device_id=%d" % did,
                 202)["command"]
        c2 = rpc(d, d.admin_key, "action=sys_upgrade&version=2.0.0&device_id=%d" % did,
                 202)["command"]
        c3 = rpc(d, d.admin_key, "action=sys_upgrade&version=3.0.0&device_id=%d" % did,
                 202)["command"]
        cs = commands(d, did)
        check(cs[c1["id"]]["state"] == "cancelled" and
              cs[c1["id"]]["result"]["replaced_by"] == c2["id"] and
              cs[c2["id"]]["state"] == "cancelled" and
              cs[c2["id"]]["result"]["replaced_by"] == c3["id"] and
              cs[c3["id"]]["state"] == "queued", "replaced %r" % cs)
        a = dev.checkin()
        check(a.status == 200 and md5(a.body) == md5(imgs[2]), "served 3.0.0: %d" % a.status)
        check(dev.checkin().status == 304, "then up to date")
        # a cancelled upgrade is not served
        c = rpc(d, d.admin_key, "action=sys_upgrade&version=2.0.0&device_id=%d" % did,
                202)["command"]
        j = cancel(d, did, c["id"], d.admin_key, 200)
        check(j["command"]["state"] == "cancelled", "cancelled %r" % j)
        check(dev.checkin().status == 304, "nothing to serve once cancelled")
        d.stop()
    except BaseException:
        d.kill()
        raise


run_tests([nonos_test, arduino_test])
