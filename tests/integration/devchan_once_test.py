"""devchan_once_test.py - a command reaches its device once when its two delivery paths meet.
An RPC's command is pushed by its creator right after its store write; a device that identifies
has its queued commands read and pushed by the channel. A command written just before an
identify can be seen by both. The test holds store jobs at named points (FOTA_TEST_HOLD_AT, test
builds only) to put the two in each order, each with a device of its own that connects for the
first time while its RPC's creator is held (so the only queued-command read is its own):
  1. the channel's read and push come first, the creator's delivery after: the creator adds its
     wait for the reply and pushes nothing;
  2. the channel reads the command as queued, the creator pushes it, then the channel's read
     ends: the channel reads again and pushes nothing.
In both the device sees the command once, answers it, and the RPC returns that answer; the
next message the device gets is the answer to its own ping."""
import json
import os
import re

from devchan_util import (StockDevice, beacon_frame, check, first_frame, parse_nonce,
                          run_in_thread, start_fotad, wait_for)


def held(d, point):
    st, _, j = d.api("GET", "/v1/test/hold?point=" + point)
    check(st == 200, "hold state %s %r" % (st, j))
    return j["held"]


def release(d, point):
    st, _, j = d.api("POST", "/v1/test/hold/release?point=" + point)
    check(st == 200 and j["held"] == 1, "release %s: %s %r" % (point, st, j))


def connect(d, master, nonce):
    dev = StockDevice(d.device_port, master)
    dev.send(first_frame(nonce, master))
    check(parse_nonce(dev.recv_msg()) == nonce, "identify reply")
    return dev


def rpc(d, owner, tag):
    return run_in_thread(d.api, "GET", "/v1/device/rpc/?deliver_to_device=true&action=get_switch"
                         "&tag=%s&timeout=20" % tag, None, owner)


def pushes_of(d, cmd_id):
    return len(re.findall(r"command delivered .* cmd=%d " % cmd_id, d.log_text()))


def answer_and_ping(d, dev, master, push, join, tag):
    """The device answers push; the RPC gets that answer; a ping's reply comes next."""
    n = parse_nonce(push)
    dev.send('{"status": 200, "nonce": %d, "deliver_to_device": true, "switch": "%s"}\n'
             % (n, tag))
    st, _, j = join()
    check(st == 200 and j.get("switch") == tag, "rpc %s answered by the device: %s %r"
          % (tag, st, j))
    dev.send(beacon_frame(master))
    msg = dev.recv_msg()
    check("ping success" in msg, "the next message answers the ping, not a second push: %r" % msg)


def command_id(d, dev_id, tag):
    """The id of the RPC command with tag (its creator's store write is done)."""
    def find():
        st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev_id)
        check(st == 200, "commands %s %r" % (st, j))
        for c in j["commands"]:
            if json.dumps(c.get("params", {})).find('"%s"' % tag) >= 0:
                return c["id"]
        return None
    return wait_for(find, 10, "command %s stored" % tag)


def meet(d, pid, tag, first):
    """The RPC's command tag for a device not connected yet, written (its creator held after
    the write); the device connects and its queued commands are read (the read held after it
    saw the command). The point released first pushes, then the other: the command is pushed
    once."""
    j = d.create_device(pid, name="once-" + tag)
    dev_id, master, owner = j["device"]["id"], j["master_device_key"], j["owner_key"]
    second = "deliver_read" if first == "rpc_created" else "rpc_created"
    join = rpc(d, owner, tag)
    wait_for(lambda: held(d, "rpc_created") == 1, 10, "the RPC's creator holds after its write")
    cmd = command_id(d, dev_id, tag)
    dev = connect(d, master, 1)
    wait_for(lambda: held(d, "deliver_read") == 1, 10, "the channel's read holds")
    release(d, first)
    push = dev.recv_msg(timeout=10)
    check('"%s"' % tag in push, "the command pushed once %s went on: %r" % (first, push))
    wait_for(lambda: pushes_of(d, cmd) == 1, 10, "the push logged")
    release(d, second)
    done = (r"command pushed already .* cmd=%d " % cmd if second == "rpc_created"
            else r"queued commands read again")
    wait_for(lambda: re.search(done, d.log_text()) or pushes_of(d, cmd) > 1, 10,
             "%s went on" % second)
    check(pushes_of(d, cmd) == 1, "pushed once, not again after %s" % second)
    answer_and_ping(d, dev, master, push, join, tag)
    return dev


def main():
    # SQLite's jobs on store threads, as PostgreSQL's: the held points are store threads
    os.environ["FOTA_TEST_STORE_THREADS"] = "1"
    os.environ["FOTA_TEST_HOLD_AT"] = "rpc_created,deliver_read"
    d = start_fotad()
    try:
        pid = d.create_product()["id"]
        # 1. the channel's read and push first, the creator's delivery after
        devs = [meet(d, pid, "A", "deliver_read")]
        # 2. the channel read it as queued; the creator pushes; the read ends
        devs.append(meet(d, pid, "B", "rpc_created"))
        for dev in devs:
            dev.close()
    finally:
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
