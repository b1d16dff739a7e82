"""fanout_test.py - rollouts against the real fotad: 20 fota-sim devices online (they wait
for the server's push: --await-push) and 5 registered devices that never connect.
POST /v1/rollouts/ with a filter answers 202 with a rollout; GET /v1/rollouts/ID/ counts the
offline ones as queued, the online ones up to succeeded=20 with at most `window` upgrading at
once, fotad reboots them (reboot: true) and they come back on the new version. Bad requests
get 400/401/403/404. A rollout lives in the store: after a restart it goes on where it
stopped, an offline member is pushed within the window once it connects, and the
DATA/jobs.json of older versions is imported once."""
import contextlib
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from fotatest import Fotad, check, finish, run_tests, wait_for  # noqa: E402
from devchan_util import (StockDevice, first_frame, parse_nonce,  # noqa: E402
                          rpc_response_frame, upgrade_frame)

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"
N = 20


@contextlib.contextmanager
def stock_fleet(n, online, prefix, nonce):
    """fotad with product plug (release V2) and n registered devices, the first `online` of them
    connected as stock NONOS devices (StockDevice) and identified (nonces nonce, nonce+1, ...).
    Yields (fotad, product id, registrations, connections); at the end fotad is stopped and its
    log checked (no ERROR, no sanitizer report)."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Fotad(data_dir=os.path.join(tmp, "data"))
        d.start()
        devs = []
        try:
            pid = st.stock_product(d, tmp, V2)
            regs = [d.create_device(pid, name="%s%d" % (prefix, i)) for i in range(n)]
            for i, r in enumerate(regs[:online]):
                dev = StockDevice(d.ports["device"], r["master_device_key"])
                devs.append(dev)
                dev.send(first_frame(nonce + i, r["master_device_key"]))
                check(parse_nonce(dev.recv_msg()) == nonce + i, "identify reply %d" % i)
            yield d, pid, regs, devs
        finally:
            for dev in devs:
                dev.close()
            finish(d)


def rollout(d, jid):
    s, _, j = d.api("GET", "/v1/rollouts/%d/" % jid)
    check(s == 200, "rollout %d: %d %r" % (jid, s, j))
    return j["rollout"]


def start(d, pid, body, **kw):
    """POST /v1/rollouts/ for product pid with body (a dict) and product_id added."""
    return d.api("POST", "/v1/rollouts/", dict(body, product_id=pid), **kw)


def members(d, jid):
    """{device id: member state} of rollout jid, read page by page (3 per page)."""
    out, cursor = {}, None
    for _ in range(100):
        path = "/v1/rollouts/%d/devices/?limit=3" % jid + ("&cursor=%d" % cursor if cursor else "")
        s, _, j = d.api("GET", path)
        check(s == 200, "members of %d: %d %r" % (jid, s, j))
        out.update({m["device_id"]: m["state"] for m in j["devices"]})
        cursor = j["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("members of %d: more than 100 pages" % jid)


def bad_requests(d, pid):
    s, _, j = start(d, pid, {"version": V2}, key=None)
    check(s == 401, "no key: %d %r" % (s, j))
    s, _, j = start(d, pid, {"version": V2}, key="0" * 40)
    check(s == 401, "unknown key: %d %r" % (s, j))
    dev = d.create_device(pid, name="owner-probe")
    s, _, j = start(d, pid, {"version": V2}, key=dev["owner_key"])
    check(s == 403, "owner key: %d %r" % (s, j))
    s, _, j = start(d, 999999, {"version": V2})
    check(s == 404, "unknown product: %d %r" % (s, j))
    s, _, j = start(d, pid, {"version": "v9.9.9"})
    check(s == 404, "unknown release: %d %r" % (s, j))
    for body, why in (({}, "no version"), ({"version": 3}, "version not a string"),
                      ({"version": V2, "filter": []}, "filter not an object"),
                      ({"version": V2, "filter": {"colour": "red"}}, "unknown filter key"),
                      ({"version": V2, "filter": {"online": "yes"}}, "online not a boolean"),
                      ({"version": V2, "filter": {"device_ids": [0]}}, "bad device id"),
                      ({"version": V2, "filter": {"rom_version": []}}, "empty version list"),
                      ({"version": V2, "window": 0}, "window 0"),
                      ({"version": V2, "reboot": 1}, "reboot not a boolean"),
                      ({"version": V2, "speed": 9}, "unknown key")):
        s, _, j = start(d, pid, body)
        check(s == 400, "%s: %d %r" % (why, s, j))
    for body, why in (({"version": V2}, "no product_id"), ({"version": V2, "product_id": "1"},
                                                            "product_id not a number")):
        s, _, j = d.api("POST", "/v1/rollouts/", body)
        check(s == 400 and "product_id" in j["message"], "%s: %d %r" % (why, s, j))
    s, _, j = d.api("POST", "/v1/rollouts/", b"not json",
                    headers={"Content-Type": "application/json"})
    check(s == 400, "not JSON: %d %r" % (s, j))
    s, _, j = d.api("GET", "/v1/rollouts/424242/")
    check(s == 404, "unknown rollout: %d %r" % (s, j))
    s, _, j = d.api("GET", "/v1/rollouts/1/", key=None)
    check(s == 401, "rollout without key: %d %r" % (s, j))
    return dev["device"]["id"] if "device" in dev else dev["id"]


def upgrade_rows(d, dev):
    s, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev)
    check(s == 200, "commands of %d: %d %r" % (dev, s, j))
    return [c for c in j["commands"] if c["action"] == "sys_upgrade"]


def check_rows(d, online, offline):
    """The rollouts' command rows (inserted in the state each member had reached, then
    batched): one done row per upgraded device with the success result, none for an offline
    device (it is pushed when it connects). Rows are written every 200 ms: poll until they
    settle."""
    def settled():
        return all([c["state"] for c in upgrade_rows(d, i)] == ["done"] for i in online)
    wait_for(settled, 10, "every upgraded device's row done")
    for i in online:
        c = upgrade_rows(d, i)[0]
        check(c["params"] == {"version": V2} and c["result"] == {
            "action": "device_upgrade_success", "rom_version": V2}, "row of %d: %r" % (i, c))
    for i in offline:
        rows = upgrade_rows(d, i)
        check(rows == [], "offline %d has a row before its push: %r" % (i, rows))


def test_fanout():
    with tempfile.TemporaryDirectory() as tmp:
        d = Fotad(data_dir=os.path.join(tmp, "data"))
        d.start()
        try:
            pid = st.stock_product(d, tmp, V2)
            probe = bad_requests(d, pid)
            offline = [probe] + [(lambda r: r["device"]["id"] if "device" in r else r["id"])(
                d.create_device(pid, name="away%d" % i)) for i in range(4)]
            sim = subprocess.Popen(
                [st.sim_path(), "--server", "127.0.0.1", "--http-port", str(d.ports["http"]),
                 "--device-port", str(d.ports["device"]), "--key", d.admin_key, "--product",
                 str(pid), "--profile", "nonos", "--devices", str(N), "--upgrade-to", V2,
                 "--initial-version", V1, "--await-push", "--source-addrs", "3", "--json",
                 "--time-scale", "20", "--timeout", "90", "--hold", "20"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                def online():
                    s, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
                    return sum(1 for x in j.get("devices", []) if x.get("online")) == N
                wait_for(online, 30, "%d simulated devices online" % N, interval=0.2)

                # filters: nothing matches; offline only; device ids
                s, _, j = start(d, pid, {"version": V2, "filter": {"rom_version": "v0.0.1"}})
                check(s == 202 and j["rollout"]["total"] == 0, "no match: %d %r" % (s, j))
                s, _, j = start(d, pid, {"version": V2, "filter": {"online": False}})
                check(s == 202, "offline rollout: %d %r" % (s, j))
                off = j["rollout"]
                check(off["total"] == len(offline) and off["queued"] == len(offline),
                      "offline devices queued: %r" % off)
                s, _, j = start(d, pid, {"version": V2, "filter": {"device_ids": offline[:2],
                                                           "online": True}})
                check(s == 202 and j["rollout"]["total"] == 0, "offline ids, online only: %r" % j)

                # the real one: every online device on V1, five at a time, rebooted by fotad, in
                # three stages (10 %, 50 %, all), each device counted once it came back after
                # its reboot and stayed connected for 2 s
                s, _, j = start(d, pid, {"version": V2, "reboot": True, "window": 5, "health": 2,
                                 "stages": [{"percent": 10}, {"percent": 50}, {"percent": 100}],
                                 "filter": {"online": True, "rom_version": [V1, "v0.9"]}})
                check(s == 202, "upgrade rollout: %d %r" % (s, j))
                jid = j["rollout"]["id"]
                check(j["rollout"]["total"] == N and j["rollout"]["state"] == "running", "rollout: %r" % j)
                check([g["total"] for g in j["rollout"]["stages"]] == [2, 8, 10], "%r" % j)
                peak = [0]

                def done():
                    x = rollout(d, jid)
                    peak[0] = max(peak[0], x["in_progress"])
                    check(x["failed"] == 0 and x["timed_out"] == 0, "failures: %r" % x)
                    return x["succeeded"] == N
                wait_for(done, 90, "rollout to reach succeeded=%d" % N, interval=0.1)
                x = rollout(d, jid)
                check(peak[0] <= 5, "window of 5 exceeded: %d upgrading at once" % peak[0])
                check(x["delivered"] == N and x["acked"] == N and x["state"] == "finished",
                      "final counters: %r" % x)
                check([g["succeeded"] for g in x["stages"]] == [2, 8, 10] and
                      all(g["started"] for g in x["stages"]), "stages: %r" % x["stages"])
                check(all(x["elapsed_ms"][k] is not None for k in ("delivered", "acked",
                                                                   "finished")), "%r" % x)
                out, err = sim.communicate(timeout=60)
            finally:
                if sim.poll() is None:
                    sim.kill()
                    sim.communicate()
            check(sim.returncode == 0, "fota-sim rc %d\n%s\n%s" % (sim.returncode, out, err[-2000:]))
            check("AddressSanitizer" not in err and "runtime error" not in err, err[-2000:])
            s, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
            vers = {x["id"]: x["rom_version"] for x in j["devices"]}
            check(sum(1 for v in vers.values() if v == V2) == N, "rom_version V2 x %d: %r" % (N, vers))
            check(rollout(d, off["id"])["queued"] == len(offline), "offline rollout still queued")
            check_rows(d, [i for i in vers if i not in offline], offline)
            s, _, j = d.api("GET", "/v1/rollouts/")
            check(s == 200 and len(j["rollouts"]) == 4, "rollout list: %r" % j)
            check(x["elapsed_ms"]["acked"] <= x["elapsed_ms"]["finished"], "%r" % x)
            # a second run skips the devices already on V2 (the sim has gone: all queued)
            s, _, j = start(d, pid, {"version": V2})
            check(s == 202 and j["rollout"]["total"] == len(offline) and j["rollout"]["skipped"] == N
                  and j["rollout"]["queued"] == len(offline), "%r" % j)
            d.stop()
            d.check_log()
            d2 = Fotad(data_dir=d.data_dir)
            d2.start()
            try:
                x = rollout(d2, jid)
                check(x["state"] == "finished" and x["succeeded"] == N, "after restart: %r" % x)
                x = rollout(d2, off["id"])
                check(x["state"] == "running" and x["queued"] == len(offline),
                      "the offline rollout resumed: %r" % x)
                check(set(members(d2, off["id"]).values()) == {"queued"}, "members queued")
                s, _, j = start(d2, pid, {"version": V2})
                check(s == 202 and j["rollout"]["id"] > jid, "new ids after restart: %r" % j)
            finally:
                d2.stop()
                d2.cleanup()
        finally:
            finish(d)


def test_rows_of_silent_device():
    """Two stock devices get the push; one acknowledges (its own nonce, the stock D4 line),
    the other never answers. The pushed members' rows wait for the D4s, but not longer than
    about a second: then both are written, acked and delivered, with the right results."""
    with stock_fleet(2, 2, "raw", 10) as (d, pid, regs, devs):
        ids = [r["device"]["id"] for r in regs]
        s, _, j = start(d, pid, {"version": V2})
        check(s == 202 and j["rollout"]["total"] == 2 and j["rollout"]["waiting"] == 2, "%r" % j)
        jid = j["rollout"]["id"]
        pushes = [dev.recv_msg() for dev in devs]
        check(all('"action": "sys_upgrade"' in p for p in pushes), "pushes %r" % pushes)
        devs[0].send(rpc_response_frame(parse_nonce(pushes[0])))
        wait_for(lambda: rollout(d, jid)["acked"] == 1, 5, "the first device's D4 counted")
        x = rollout(d, jid)
        check(x["delivered"] == 2 and x["acked"] == 1 and x["failed"] == 0, "%r" % x)

        def rows():
            r = [upgrade_rows(d, i) for i in ids]
            return r if all(r) else None
        r = wait_for(rows, 5, "both rows written")
        check([c["state"] for c in r[0]] == ["acked"] and r[0][0]["result"] == {"status": 200},
              "acknowledged device's row %r" % r[0])
        check([c["state"] for c in r[1]] == ["delivered"] and r[1][0]["result"] is None,
              "silent device's row %r" % r[1])
        check(r[0][0]["nonce"] == parse_nonce(pushes[0]) and
              r[1][0]["nonce"] == parse_nonce(pushes[1]), "row nonces are the pushes' %r" % r)


def test_deleted_member():
    """Window 1 over two online stock devices: the first gets the push and never answers, the
    second waits. Deleting the first ends its member as "deleted" at once and frees the slot:
    the second gets its push, reports success, and the rollout finishes (succeeded 1, deleted 1)."""
    with stock_fleet(2, 2, "del", 20) as (d, pid, regs, devs):
        ids = [r["device"]["id"] for r in regs]
        s, _, j = start(d, pid, {"version": V2, "window": 1, "timeout": 600})
        check(s == 202 and j["rollout"]["total"] == 2, "%r" % j)
        jid = j["rollout"]["id"]
        check('"action": "sys_upgrade"' in devs[0].recv_msg(), "first push")
        wait_for(lambda: rollout(d, jid)["delivered"] == 1, 5, "first push counted")
        x = rollout(d, jid)
        check(x["state"] == "running" and x["waiting"] == 1 and x["in_progress"] == 1, "%r" % x)

        def deleted():   # 409 until the rollout's first rows are written (about a second)
            st, _, j = d.api("DELETE", "/v1/devices/%d/" % ids[0])
            check(st in (200, 409), "delete %d %r" % (st, j))
            return st == 200
        wait_for(deleted, 5, "the silent device deleted")
        check(devs[0].closed(5.0), "the deleted device's connection is still open")
        push = devs[1].recv_msg()
        check('"action": "sys_upgrade"' in push, "the second device's push %r" % push)
        x = rollout(d, jid)
        check(x["deleted"] == 1 and x["in_progress"] == 1 and x["waiting"] == 0, "%r" % x)
        devs[1].send(upgrade_frame(regs[1]["master_device_key"], "device_upgrade_success",
                                   "v1.0", V2[:15]))
        wait_for(lambda: rollout(d, jid)["state"] == "finished", 5, "the rollout finished")
        x = rollout(d, jid)
        check(x["succeeded"] == 1 and x["deleted"] == 1 and x["failed"] == 0 and
              x["timed_out"] == 0 and x["in_progress"] == 0, "%r" % x)


def test_cancel():
    """Window 1 over two online stock devices and an offline one: the first device gets the
    push; cancelling the rollout drops the other two (neither is ever pushed, neither has a
    command row), the rollout is "cancelling" until the pushed device reports, then
    "cancelled"; cancelling again is 409."""
    with stock_fleet(3, 2, "c", 30) as (d, pid, regs, devs):
        ids = [r["device"]["id"] for r in regs]
        s, _, j = start(d, pid, {"version": V2, "window": 1})
        check(s == 202 and j["rollout"]["total"] == 3 and j["rollout"]["queued"] == 1, "%r" % j)
        jid = j["rollout"]["id"]
        check('"action": "sys_upgrade"' in devs[0].recv_msg(), "first push")
        s, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % jid, key=regs[0]["owner_key"])
        check(s == 403, "an owner key cannot cancel: %d %r" % (s, j))
        s, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % jid)
        x = j["rollout"]
        check(s == 200 and j["cancelled_now"] == 2 and x["state"] == "cancelling" and
              x["cancelled"] == 2 and x["waiting"] == 0 and x["queued"] == 0 and
              x["in_progress"] == 1 and x["delivered"] == 1, "cancel: %d %r" % (s, j))
        check(upgrade_rows(d, ids[2]) == [] and upgrade_rows(d, ids[1]) == [],
              "no row for members never pushed: %r" % upgrade_rows(d, ids[2]))
        m = members(d, jid)
        check(m == {ids[0]: "delivered", ids[1]: "cancelled", ids[2]: "cancelled"},
              "members after the cancel %r" % m)
        s, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % jid)
        check(s == 200 and j["cancelled_now"] == 0, "cancel twice while cancelling %d %r" % (s, j))
        # the pushed device goes on and reports: the rollout is over
        devs[0].send(upgrade_frame(regs[0]["master_device_key"], "device_upgrade_success",
                                   "v1.0", V2[:15]))
        wait_for(lambda: rollout(d, jid)["state"] == "cancelled", 5, "the rollout cancelled")
        x = rollout(d, jid)
        check(x["succeeded"] == 1 and x["cancelled"] == 2 and x["failed"] == 0 and
              x["delivered"] == 1, "%r" % x)
        s, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % jid)
        check(s == 409 and "finished" in j["message"], "cancel a cancelled rollout %d %r" % (s, j))
        s, _, j = d.api("POST", "/v1/rollouts/4242/cancel")
        check(s == 404, "unknown rollout %d" % s)
        # the release is no longer busy, and a finished rollout cannot be cancelled
        s, _, j = start(d, pid, {"version": V2, "filter": {"rom_version": "v0.0.1"}})
        check(s == 202 and j["rollout"]["state"] == "finished", "empty rollout %r" % j)
        s, _, _ = d.api("POST", "/v1/rollouts/%d/cancel" % j["rollout"]["id"])
        check(s == 409, "cancel a finished rollout %d" % s)


def test_max_failures():
    """A health gate: window 1 over three online stock devices with max_failures 0. The first
    device refuses the push (D4 status 500): the rollout pauses at once ("halted", the reason
    named), the two others are not pushed and stay waiting. Resumed, failures count again from
    then: the two others are pushed one at a time, report, and the rollout finishes."""
    with stock_fleet(3, 3, "h", 40) as (d, pid, regs, devs):
        for bad in (-1, "2", 100001):
            s, _, j = start(d, pid, {"version": V2, "max_failures": bad})
            check(s == 400 and "max_failures" in j["message"], "max_failures %r: %d %r" % (
                bad, s, j))
        s, _, j = start(d, pid, {"version": V2, "window": 1, "max_failures": 0})
        check(s == 202 and j["rollout"]["max_failures"] == 0 and j["rollout"]["halted"] is False,
              "%r" % j)
        jid = j["rollout"]["id"]
        push = devs[0].recv_msg()
        check('"action": "sys_upgrade"' in push, "first push %r" % push)
        devs[0].send('{"status": 500, "nonce": %d, "deliver_to_device": true}\n' %
                     parse_nonce(push))
        wait_for(lambda: rollout(d, jid)["state"] == "paused", 5, "the rollout paused")
        x = rollout(d, jid)
        check(x["halted"] is True and x["failed"] == 1 and x["waiting"] == 2 and
              x["delivered"] == 1 and x["succeeded"] == 0 and x["cancelled"] == 0 and
              x["paused"]["auto"] is True and "max_failures 0" in x["paused"]["reason"], "%r" % x)
        d.wait_log(r"rollout paused rollout=%d stage=1 by=itself" % jid)
        check(members(d, jid)[regs[1]["device"]["id"]] == "waiting", "not pushed while paused")
        s, _, j = d.api("POST", "/v1/rollouts/%d/approve" % jid)
        check(s == 409 and "resume" in j["message"], "approve while paused %d %r" % (s, j))
        s, _, j = d.api("POST", "/v1/rollouts/%d/resume" % jid)
        check(s == 200 and j["rollout"]["state"] == "running" and j["rollout"]["halted"] is False
              and j["rollout"]["paused"] is None, "resume %d %r" % (s, j))
        s, _, j = d.api("POST", "/v1/rollouts/%d/resume" % jid)
        check(s == 409, "resume a running rollout %d %r" % (s, j))
        for i in (1, 2):
            push = devs[i].recv_msg()
            check('"action": "sys_upgrade"' in push, "push %d after the resume %r" % (i, push))
            report(devs[i], regs[i])
        wait_for(lambda: rollout(d, jid)["state"] == "finished", 5, "the rollout finished")
        x = rollout(d, jid)
        check(x["succeeded"] == 2 and x["failed"] == 1 and x["halted"] is False, "%r" % x)


def identify(d, reg, nonce):
    dev = StockDevice(d.ports["device"], reg["master_device_key"])
    dev.send(first_frame(nonce, reg["master_device_key"]))
    check(parse_nonce(dev.recv_msg()) == nonce, "identify reply %d" % nonce)
    return dev


def report(dev, reg):
    dev.send(upgrade_frame(reg["master_device_key"], "device_upgrade_success", "v1.0", V2[:15]))


def test_offline_member_in_window():
    """Window 1 over one online and one offline stock device: the online one gets the push.
    The offline one connects while the window is full: it gets no command row and no push,
    its member waits; once the first reports, the second is pushed (one path for online and
    offline members, inside the window) and the rollout finishes."""
    with stock_fleet(2, 1, "w", 60) as (d, pid, regs, devs):
        ids = [r["device"]["id"] for r in regs]
        s, _, j = start(d, pid, {"version": V2, "window": 1})
        check(s == 202 and j["rollout"]["queued"] == 1 and j["rollout"]["waiting"] == 1, "%r" % j)
        jid = j["rollout"]["id"]
        check('"action": "sys_upgrade"' in devs[0].recv_msg(), "first push")
        devs.append(identify(d, regs[1], 61))
        wait_for(lambda: members(d, jid).get(ids[1]) == "waiting", 5,
                 "the connected member waits for the window")
        x = rollout(d, jid)
        check(x["in_progress"] == 1 and x["waiting"] == 1 and x["queued"] == 0, "%r" % x)
        check(upgrade_rows(d, ids[1]) == [], "no queued row: %r" % upgrade_rows(d, ids[1]))
        report(devs[0], regs[0])
        check('"action": "sys_upgrade"' in devs[1].recv_msg(), "the second push after the first")
        report(devs[1], regs[1])
        wait_for(lambda: rollout(d, jid)["state"] == "finished", 5, "the rollout finished")
        x = rollout(d, jid)
        check(x["succeeded"] == 2 and x["delivered"] == 2 and x["in_progress"] == 0, "%r" % x)


def test_restart_resumes():
    """fotad stops while a window-1 rollout has pushed one device, keeps one waiting and one
    offline. After the restart the rollout is still running from its rows in the store: the
    pushed member stays in progress (its report finishes it), the others are queued and are
    pushed one at a time as they connect; the rollout finishes with all three upgraded."""
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        d = Fotad(data_dir=data)
        d.start()
        devs, d2 = [], None
        try:
            pid = st.stock_product(d, tmp, V2)
            regs = [d.create_device(pid, name="r%d" % i) for i in range(3)]
            ids = [r["device"]["id"] for r in regs]
            devs = [identify(d, r, 50 + i) for i, r in enumerate(regs[:2])]
            s, _, j = start(d, pid, {"version": V2, "window": 1})
            check(s == 202 and j["rollout"]["total"] == 3, "%r" % j)
            jid = j["rollout"]["id"]
            check('"action": "sys_upgrade"' in devs[0].recv_msg(), "first push")
            wait_for(lambda: members(d, jid) == {ids[0]: "delivered", ids[1]: "waiting",
                                                 ids[2]: "queued"}, 5, "the members stored")
            d.stop()
            d.check_log()
            for dev in devs:
                dev.close()
            check(not [f for f in os.listdir(data) if f.startswith("jobs")], "no jobs files")
            d2 = Fotad(data_dir=data)
            d2.start()
            d2.wait_log(r"rollout resumed rollout=%d members=3 in_progress=1 queued=2" % jid)
            x = rollout(d2, jid)
            check(x["state"] == "running" and x["in_progress"] == 1 and x["queued"] == 2 and
                  x["delivered"] == 1, "after the restart: %r" % x)
            devs = [identify(d2, r, 70 + i) for i, r in enumerate(regs)]
            report(devs[0], regs[0])
            for k in (1, 2):
                def one_pushed():
                    m = members(d2, jid)
                    p = [i for i in (1, 2) if m[ids[i]] == "delivered"]
                    check(len(p) <= 1, "two pushed at once in a window of 1: %r" % m)
                    return p[0] if p else None
                i = wait_for(one_pushed, 5, "push %d after the restart" % k)
                check('"action": "sys_upgrade"' in devs[i].recv_msg(), "push to %d" % i)
                check(rollout(d2, jid)["in_progress"] == 1, "window of 1 after the restart")
                report(devs[i], regs[i])
                wait_for(lambda: members(d2, jid)[ids[i]] == "done", 5, "report taken")
            wait_for(lambda: rollout(d2, jid)["state"] == "finished", 5, "the rollout finished")
            x = rollout(d2, jid)
            check(x["succeeded"] == 3 and x["failed"] == 0 and x["timed_out"] == 0, "%r" % x)
            d2.stop()
            d2.check_log()
        finally:
            for dev in devs:
                dev.close()
            finish(d, d2)


def test_jobs_json_import():
    """A data directory of an older fotad: DATA/jobs.json with a finished and a running job,
    and DATA/jobs-5.rows naming a command row still queued. At start the jobs become rollout
    rows (the running one "interrupted"), the queued row is cancelled, the files go, and new
    rollouts take ids after the imported ones. SQLite's store imports them: an older fotad's
    data dir is a SQLite one."""
    import json
    import struct
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        d = Fotad(data_dir=data, store="sqlite")
        d.start()
        d2 = None
        try:
            pid = st.stock_product(d, tmp, V2)
            dev = d.create_device(pid, name="old")
            s, _, j = d.api("GET", "/v1/device/rpc/?action=sys_upgrade&version=%s&device_id=%d"
                            % (V2, dev["device"]["id"]))
            check(s == 202 and j["command"]["state"] == "queued", "queued command %d %r" % (s, j))
            cmd = j["command"]["id"]
            d.stop()
            d.check_log()
            base = {"product_id": pid, "version": V2, "filter": {"online": True}, "reboot": False,
                    "window": 4, "timeout": 600, "skipped": 0, "queued": 0, "waiting": 0,
                    "in_progress": 0, "delivered": 3, "acked": 3, "succeeded": 3, "failed": 0,
                    "timed_out": 0, "deleted": 0, "cancelled": 0, "halted": False,
                    "max_failures": None, "created": 1700000000,
                    "elapsed_ms": {"delivered": 1.5, "acked": 2.5, "finished": 900.0}}
            jobs = [dict(base, id=3, total=3, state="finished"),
                    dict(base, id=5, total=4, succeeded=1, queued=3, state="running",
                         max_failures=2, elapsed_ms={"delivered": None, "acked": None,
                                                     "finished": None})]
            with open(os.path.join(data, "jobs.json"), "w") as f:
                json.dump(jobs, f)
            with open(os.path.join(data, "jobs-5.rows"), "wb") as f:
                f.write(struct.pack("<q", cmd))
            d2 = Fotad(data_dir=data, store="sqlite")
            d2.start()
            d2.wait_log(r"rollouts imported files=2 rollouts=2 queued_rows_cancelled=1")
            x = rollout(d2, 3)
            check(x["state"] == "finished" and x["succeeded"] == 3 and x["total"] == 3 and
                  x["window"] == 4 and x["filter"] == {"online": True} and
                  x["elapsed_ms"]["finished"] == 900.0, "imported finished job %r" % x)
            x = rollout(d2, 5)
            check(x["state"] == "interrupted" and x["queued"] == 3 and x["max_failures"] == 2,
                  "imported running job %r" % x)
            rows = upgrade_rows(d2, dev["device"]["id"])
            check([c["state"] for c in rows] == ["cancelled"], "the queued row %r" % rows)
            check(not [f for f in os.listdir(data) if f.startswith("jobs")], "files removed")
            s, _, j = start(d2, pid, {"version": V2})
            check(s == 202 and j["rollout"]["id"] > 5, "new ids after the import: %r" % j)
            d2.stop()
            d2.check_log()
            d3 = Fotad(data_dir=data, store="sqlite")   # once: nothing left to import
            try:
                d3.start()
                d3.stop()
                check("rollouts imported" not in d3.log_text(), "imported twice")
            finally:
                d3.cleanup()
        finally:
            finish(d, d2)


if __name__ == "__main__":
    run_tests([test_fanout, test_rows_of_silent_device, test_deleted_member, test_cancel,
               test_max_failures, test_offline_member_in_window, test_restart_resumes,
               test_jobs_json_import])
