"""rollout_replace_test.py - a rollout's upgrade replaces a device's queued one: a device
offline with a queued direct upgrade to v1.2 is selected by a rollout to v1.3; when it
connects it receives one upgrade, v1.3, and the direct one reads cancelled, "replaced_by"
the rollout's command (command_create_many, docs/api.md "Commands")."""
from devchan_upgrade_test import setup
from devchan_util import StockDevice, check, first_frame, parse_nonce, rpc_response_frame, \
    start_fotad, wait_for
from fotatest import run_tests


def commands(d, dev_id):
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev_id)
    check(st == 200, "commands %d %r" % (st, j))
    return {c["id"]: c for c in j["commands"]}


def member(d, rid, dev_id):
    st, _, j = d.api("GET", "/v1/rollouts/%d/devices/" % rid)
    check(st == 200, "members %d %r" % (st, j))
    ms = [m for m in j["devices"] if m["device_id"] == dev_id]
    check(len(ms) == 1, "one member %r" % j)
    return ms[0]


def offline_device_test():
    d = start_fotad()
    try:
        pid, dev_id, master, owner, _ = setup(d)            # release v1.1, device offline
        d.upload_release(pid, "v1.2")
        d.upload_release(pid, "v1.3")
        st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade"
                         "&version=v1.2", key=owner)
        check(st == 202, "direct upgrade queued %d %r" % (st, j))
        direct = j["command"]["id"]
        st, _, j = d.api("POST", "/v1/rollouts/", {"product_id": pid, "version": "v1.3"})
        check(st == 202, "rollout %d %r" % (st, j))
        rid = j["rollout"]["id"]
        wait_for(lambda: member(d, rid, dev_id)["state"] == "queued", 10, "member queued")
        check(commands(d, dev_id)[direct]["state"] == "queued", "direct still queued")

        dev = StockDevice(d.device_port, master)
        dev.send(first_frame(5, master))
        check(parse_nonce(dev.recv_msg()) == 5, "identify reply")
        push = dev.recv_msg(timeout=10)
        check('"sys_upgrade"' in push and '"v1.3' in push, "the rollout's upgrade %r" % push)
        dev.send(rpc_response_frame(parse_nonce(push)))
        wait_for(lambda: member(d, rid, dev_id)["state"] == "acked", 10, "member acked")
        cid = member(d, rid, dev_id)["command_id"]
        check(cid is not None, "the member's command row")
        cs = commands(d, dev_id)
        check(cs[direct]["state"] == "cancelled" and
              cs[direct]["result"] == {"cancelled": "replaced by command %d" % cid,
                                       "replaced_by": cid}, "direct replaced %r" % cs[direct])
        check(cs[cid]["params"] == {"version": "v1.3"} and cs[cid]["state"] == "acked",
              "the rollout's row %r" % cs[cid])
        # one upgrade only: nothing queued is left for the channel to send, and the channel
        # sent nothing else: the reply to a second identify is the next line the device reads
        check([c for c in cs.values() if c["state"] in ("queued", "delivered")] == [],
              "nothing left to deliver %r" % cs)
        dev.send(first_frame(77, master))
        check(parse_nonce(dev.recv_msg(timeout=10)) == 77, "the identify reply comes next")
        dev.close()
        d.stop()
    except BaseException:
        d.kill()
        raise


if __name__ == "__main__":
    run_tests([offline_device_test])
