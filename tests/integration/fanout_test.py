"""fanout_test.py - bulk upgrades against the real fotad (issue 9): 20 fota-sim
devices online (they wait for the server's push: --await-push) and 5 registered
devices that never connect. POST /v1/products/ID/upgrade with a filter answers
202 with a job; GET /v1/jobs/ID/ counts the offline ones as queued, the online
ones up to succeeded=20 with at most `window` upgrading at once, fotad reboots
them (reboot: true) and they come back on the new version. Bad requests get
400/401/403/404; the job's counters survive a restart (DATA/jobs.json)."""
import contextlib
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from fotatest import Fotad, check, run_tests, wait_for  # noqa: E402
from devchan_util import (StockDevice, first_frame, parse_nonce,  # noqa: E402
                          rpc_response_frame, upgrade_frame)

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"
N = 20


def setup(d, tmp):
    p = d.create_product(name="plug", flash_map=2, serial="45772")
    files = [("user%d.bin" % s, st.write_image(os.path.join(tmp, "u%d.bin" % s), s, V2, 40000))
             for s in (1, 2)]
    d.upload_release(p["id"], V2, files=files)
    return p["id"]


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
            pid = setup(d, tmp)
            regs = [d.create_device(pid, name="%s%d" % (prefix, i)) for i in range(n)]
            for i, r in enumerate(regs[:online]):
                dev = StockDevice(d.ports["device"], r["master_device_key"])
                devs.append(dev)
                dev.send(first_frame(nonce + i, r["master_device_key"]))
                check(parse_nonce(dev.recv_msg()) == nonce + i, "identify reply %d" % i)
            yield d, pid, regs, devs
            d.stop()
            d.check_log()
        finally:
            for dev in devs:
                dev.close()
            if d.proc and d.proc.poll() is None:
                d.stop()
            d.cleanup()


def job(d, jid):
    s, _, j = d.api("GET", "/v1/jobs/%d/" % jid)
    check(s == 200, "job %d: %d %r" % (jid, s, j))
    return j["job"]


def bad_requests(d, pid):
    up = "/v1/products/%d/upgrade" % pid
    s, _, j = d.api("POST", up, {"version": V2}, key=None)
    check(s == 401, "no key: %d %r" % (s, j))
    s, _, j = d.api("POST", up, {"version": V2}, key="0" * 40)
    check(s == 401, "unknown key: %d %r" % (s, j))
    dev = d.create_device(pid, name="owner-probe")
    s, _, j = d.api("POST", up, {"version": V2}, key=dev["owner_key"])
    check(s == 403, "owner key: %d %r" % (s, j))
    s, _, j = d.api("POST", "/v1/products/999999/upgrade", {"version": V2})
    check(s == 404, "unknown product: %d %r" % (s, j))
    s, _, j = d.api("POST", up, {"version": "v9.9.9"})
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
        s, _, j = d.api("POST", up, body)
        check(s == 400, "%s: %d %r" % (why, s, j))
    s, _, j = d.api("POST", up, b"not json", headers={"Content-Type": "application/json"})
    check(s == 400, "not JSON: %d %r" % (s, j))
    s, _, j = d.api("GET", "/v1/jobs/424242/")
    check(s == 404, "unknown job: %d %r" % (s, j))
    s, _, j = d.api("GET", "/v1/jobs/1/", key=None)
    check(s == 401, "job without key: %d %r" % (s, j))
    return dev["device"]["id"] if "device" in dev else dev["id"]


def upgrade_rows(d, dev):
    s, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev)
    check(s == 200, "commands of %d: %d %r" % (dev, s, j))
    return [c for c in j["commands"] if c["action"] == "sys_upgrade"]


def check_rows(d, online, offline):
    """The jobs' command rows (inserted in the state each member had reached, then
    batched): one done row per upgraded device with the success result, one queued row
    per offline device. Rows are written every 200 ms: poll until they settle."""
    def settled():
        return all([c["state"] for c in upgrade_rows(d, i)] == ["done"] for i in online)
    wait_for(settled, 10, "every upgraded device's row done")
    for i in online:
        c = upgrade_rows(d, i)[0]
        check(c["params"] == {"version": V2} and c["result"] == {
            "action": "device_upgrade_success", "rom_version": V2}, "row of %d: %r" % (i, c))
    for i in offline:
        rows = upgrade_rows(d, i)
        check([c["state"] for c in rows] == ["queued"], "offline %d: %r" % (i, rows))


def test_fanout():
    with tempfile.TemporaryDirectory() as tmp:
        d = Fotad(data_dir=os.path.join(tmp, "data"))
        d.start()
        try:
            pid = setup(d, tmp)
            probe = bad_requests(d, pid)
            offline = [probe] + [(lambda r: r["device"]["id"] if "device" in r else r["id"])(
                d.create_device(pid, name="away%d" % i)) for i in range(4)]
            sim = subprocess.Popen(
                [st.sim_path(), "--server", "127.0.0.1", "--http-port", str(d.ports["http"]),
                 "--device-port", str(d.ports["device"]), "--key", d.admin_key, "--product",
                 str(pid), "--profile", "nonos", "--devices", str(N), "--upgrade-to", V2,
                 "--initial-version", V1, "--await-push", "--source-addrs", "3", "--json",
                 "--time-scale", "20", "--timeout", "90"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                def online():
                    s, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
                    return sum(1 for x in j.get("devices", []) if x.get("online")) == N
                wait_for(online, 30, "%d simulated devices online" % N, interval=0.2)

                # filters: nothing matches; offline only; device ids
                s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid,
                                {"version": V2, "filter": {"rom_version": "v0.0.1"}})
                check(s == 202 and j["job"]["total"] == 0, "no match: %d %r" % (s, j))
                s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid,
                                {"version": V2, "filter": {"online": False}})
                check(s == 202, "offline job: %d %r" % (s, j))
                off = j["job"]
                check(off["total"] == len(offline) and off["queued"] == len(offline),
                      "offline devices queued: %r" % off)
                s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid,
                                {"version": V2, "filter": {"device_ids": offline[:2],
                                                           "online": True}})
                check(s == 202 and j["job"]["total"] == 0, "offline ids, online only: %r" % j)

                # the real one: every online device on V1, five at a time, rebooted by fotad
                s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid,
                                {"version": V2, "reboot": True, "window": 5,
                                 "filter": {"online": True, "rom_version": [V1, "v0.9"]}})
                check(s == 202, "upgrade job: %d %r" % (s, j))
                jid = j["job"]["id"]
                check(j["job"]["total"] == N and j["job"]["state"] == "running", "job: %r" % j)
                peak = [0]

                def done():
                    x = job(d, jid)
                    peak[0] = max(peak[0], x["in_progress"])
                    check(x["failed"] == 0 and x["timed_out"] == 0, "failures: %r" % x)
                    return x["succeeded"] == N
                wait_for(done, 90, "job to reach succeeded=%d" % N, interval=0.1)
                x = job(d, jid)
                check(peak[0] <= 5, "window of 5 exceeded: %d upgrading at once" % peak[0])
                check(x["delivered"] == N and x["acked"] == N and x["state"] == "finished",
                      "final counters: %r" % x)
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
            check(job(d, off["id"])["queued"] == len(offline), "offline job still queued")
            check_rows(d, [i for i in vers if i not in offline], offline)
            s, _, j = d.api("GET", "/v1/jobs/")
            check(s == 200 and len(j["jobs"]) == 4, "job list: %r" % j)
            check(x["elapsed_ms"]["acked"] <= x["elapsed_ms"]["finished"], "%r" % x)
            # a second run skips the devices already on V2 (the sim has gone: all queued)
            s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid, {"version": V2})
            check(s == 202 and j["job"]["total"] == len(offline) and j["job"]["skipped"] == N
                  and j["job"]["queued"] == len(offline), "%r" % j)
            d.stop()
            d.check_log()
            d2 = Fotad(data_dir=d.data_dir)
            d2.start()
            try:
                x = job(d2, jid)
                check(x["state"] == "interrupted" and x["succeeded"] == N, "after restart: %r" % x)
                s, _, j = d2.api("POST", "/v1/products/%d/upgrade" % pid, {"version": V2})
                check(s == 202 and j["job"]["id"] > jid, "new ids after restart: %r" % j)
            finally:
                d2.stop()
                d2.cleanup()
        finally:
            if d.proc and d.proc.poll() is None:
                d.stop()
            d.cleanup()


def test_rows_of_silent_device():
    """Two stock devices get the push; one acknowledges (its own nonce, the stock D4 line),
    the other never answers. The pushed members' rows wait for the D4s, but not longer than
    about a second: then both are written, acked and delivered, with the right results."""
    with stock_fleet(2, 2, "raw", 10) as (d, pid, regs, devs):
        ids = [r["device"]["id"] for r in regs]
        s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid, {"version": V2})
        check(s == 202 and j["job"]["total"] == 2 and j["job"]["waiting"] == 2, "%r" % j)
        jid = j["job"]["id"]
        pushes = [dev.recv_msg() for dev in devs]
        check(all('"action": "sys_upgrade"' in p for p in pushes), "pushes %r" % pushes)
        devs[0].send(rpc_response_frame(parse_nonce(pushes[0])))
        wait_for(lambda: job(d, jid)["acked"] == 1, 5, "the first device's D4 counted")
        x = job(d, jid)
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
    the second gets its push, reports success, and the job finishes (succeeded 1, deleted 1)."""
    with stock_fleet(2, 2, "del", 20) as (d, pid, regs, devs):
        ids = [r["device"]["id"] for r in regs]
        s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid,
                        {"version": V2, "window": 1, "timeout": 600})
        check(s == 202 and j["job"]["total"] == 2, "%r" % j)
        jid = j["job"]["id"]
        check('"action": "sys_upgrade"' in devs[0].recv_msg(), "first push")
        wait_for(lambda: job(d, jid)["delivered"] == 1, 5, "first push counted")
        x = job(d, jid)
        check(x["state"] == "running" and x["waiting"] == 1 and x["in_progress"] == 1, "%r" % x)

        def deleted():   # 409 until the job's first rows are written (about a second)
            st, _, j = d.api("DELETE", "/v1/devices/%d/" % ids[0])
            check(st in (200, 409), "delete %d %r" % (st, j))
            return st == 200
        wait_for(deleted, 5, "the silent device deleted")
        check(devs[0].closed(5.0), "the deleted device's connection is still open")
        push = devs[1].recv_msg()
        check('"action": "sys_upgrade"' in push, "the second device's push %r" % push)
        x = job(d, jid)
        check(x["deleted"] == 1 and x["in_progress"] == 1 and x["waiting"] == 0, "%r" % x)
        devs[1].send(upgrade_frame(regs[1]["master_device_key"], "device_upgrade_success",
                                   "v1.0", V2[:15]))
        wait_for(lambda: job(d, jid)["state"] == "finished", 5, "the job finished")
        x = job(d, jid)
        check(x["succeeded"] == 1 and x["deleted"] == 1 and x["failed"] == 0 and
              x["timed_out"] == 0 and x["in_progress"] == 0, "%r" % x)


def test_cancel():
    """Window 1 over two online stock devices and an offline one: the first device gets the
    push; cancelling the job drops the other two (the waiting one is never pushed, the offline
    one's queued row becomes cancelled, so it gets nothing when it connects), the job is
    "cancelling" until the pushed device reports, then "cancelled"; cancelling again is 409."""
    with stock_fleet(3, 2, "c", 30) as (d, pid, regs, devs):
        ids = [r["device"]["id"] for r in regs]
        s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid, {"version": V2, "window": 1})
        check(s == 202 and j["job"]["total"] == 3 and j["job"]["queued"] == 1, "%r" % j)
        jid = j["job"]["id"]
        check('"action": "sys_upgrade"' in devs[0].recv_msg(), "first push")
        # the offline device's row is written queued on the tick after the first push
        wait_for(lambda: [c["state"] for c in upgrade_rows(d, ids[2])] == ["queued"], 5,
                 "the offline device's queued row")
        s, _, j = d.api("POST", "/v1/jobs/%d/cancel" % jid, key=regs[0]["owner_key"])
        check(s == 403, "an owner key cannot cancel: %d %r" % (s, j))
        s, _, j = d.api("POST", "/v1/jobs/%d/cancel" % jid)
        x = j["job"]
        check(s == 200 and j["cancelled_now"] == 2 and x["state"] == "cancelling" and
              x["cancelled"] == 2 and x["waiting"] == 0 and x["queued"] == 0 and
              x["in_progress"] == 1 and x["delivered"] == 1, "cancel: %d %r" % (s, j))
        check([c["state"] for c in upgrade_rows(d, ids[2])] == ["cancelled"],
              "the offline device's row is cancelled at once: %r" % upgrade_rows(d, ids[2]))
        s, _, j = d.api("POST", "/v1/jobs/%d/cancel" % jid)
        check(s == 200 and j["cancelled_now"] == 0, "cancel twice while cancelling %d %r" % (s, j))
        # the pushed device goes on and reports: the job is over
        devs[0].send(upgrade_frame(regs[0]["master_device_key"], "device_upgrade_success",
                                   "v1.0", V2[:15]))
        wait_for(lambda: job(d, jid)["state"] == "cancelled", 5, "the job cancelled")
        x = job(d, jid)
        check(x["succeeded"] == 1 and x["cancelled"] == 2 and x["failed"] == 0 and
              x["delivered"] == 1, "%r" % x)
        s, _, j = d.api("POST", "/v1/jobs/%d/cancel" % jid)
        check(s == 409 and "finished" in j["message"], "cancel a cancelled job %d %r" % (s, j))
        s, _, j = d.api("POST", "/v1/jobs/4242/cancel")
        check(s == 404, "unknown job %d" % s)
        # the release is no longer busy, and a finished job cannot be cancelled
        s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid,
                        {"version": V2, "filter": {"rom_version": "v0.0.1"}})
        check(s == 202 and j["job"]["state"] == "finished", "empty job %r" % j)
        s, _, _ = d.api("POST", "/v1/jobs/%d/cancel" % j["job"]["id"])
        check(s == 409, "cancel a finished job %d" % s)


def test_max_failures():
    """A health gate: window 1 over three online stock devices with max_failures 0. The first
    device refuses the push (D4 status 500): the job halts at once, the two others are never
    pushed (cancelled), "halted" is true and the job is cancelled."""
    with stock_fleet(3, 3, "h", 40) as (d, pid, regs, devs):
        up = "/v1/products/%d/upgrade" % pid
        for bad in (-1, "2", 100001):
            s, _, j = d.api("POST", up, {"version": V2, "max_failures": bad})
            check(s == 400 and "max_failures" in j["message"], "max_failures %r: %d %r" % (
                bad, s, j))
        s, _, j = d.api("POST", up, {"version": V2, "window": 1, "max_failures": 0})
        check(s == 202 and j["job"]["max_failures"] == 0 and j["job"]["halted"] is False,
              "%r" % j)
        jid = j["job"]["id"]
        push = devs[0].recv_msg()
        check('"action": "sys_upgrade"' in push, "first push %r" % push)
        devs[0].send('{"status": 500, "nonce": %d, "deliver_to_device": true}\n' %
                     parse_nonce(push))
        wait_for(lambda: job(d, jid)["state"] == "cancelled", 5, "the job halted")
        x = job(d, jid)
        check(x["halted"] is True and x["failed"] == 1 and x["cancelled"] == 2 and
              x["delivered"] == 1 and x["succeeded"] == 0, "%r" % x)
        d.wait_log(r"bulk upgrade halted job=%d failed=1 timed_out=0 max_failures=0 "
                   r"members_cancelled=2" % jid)


def test_restart_cancels_queued():
    """fotad stops while a window-1 job has pushed one device, keeps one waiting and one
    offline: after the restart the job is interrupted and the two rows still queued are
    cancelled (so a reconnecting fleet does not download all at once); the pushed device's row
    keeps its state."""
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        d = Fotad(data_dir=data)
        d.start()
        devs, d2 = [], None
        try:
            pid = setup(d, tmp)
            regs = [d.create_device(pid, name="r%d" % i) for i in range(3)]
            ids = [r["device"]["id"] for r in regs]
            for i, r in enumerate(regs[:2]):
                dev = StockDevice(d.ports["device"], r["master_device_key"])
                devs.append(dev)
                dev.send(first_frame(50 + i, r["master_device_key"]))
                check(parse_nonce(dev.recv_msg()) == 50 + i, "identify reply %d" % i)
            s, _, j = d.api("POST", "/v1/products/%d/upgrade" % pid, {"version": V2, "window": 1})
            check(s == 202 and j["job"]["total"] == 3, "%r" % j)
            jid = j["job"]["id"]
            check('"action": "sys_upgrade"' in devs[0].recv_msg(), "first push")
            wait_for(lambda: all([c["state"] for c in upgrade_rows(d, i)] == ["queued"]
                                 for i in ids[1:]), 5, "the waiting and offline rows, queued")
            check(os.path.exists(os.path.join(data, "jobs-%d.rows" % jid)), "rows noted")
            d.stop()
            d.check_log()
            for dev in devs:
                dev.close()
            d2 = Fotad(data_dir=data)
            d2.start()
            d2.wait_log(r"bulk upgrade interrupted by a restart job=%d rows_cancelled=2" % jid)
            for i in ids[1:]:
                rows = upgrade_rows(d2, i)
                check([c["state"] for c in rows] == ["cancelled"] and
                      "restarted" in rows[0]["result"]["cancelled"], "row of %d: %r" % (i, rows))
            check([c["state"] for c in upgrade_rows(d2, ids[0])] == ["delivered"],
                  "the pushed device's row %r" % upgrade_rows(d2, ids[0]))
            check(job(d2, jid)["state"] == "interrupted", "%r" % job(d2, jid))
            check(not os.path.exists(os.path.join(data, "jobs-%d.rows" % jid)), "rows file gone")
            d2.stop()
            d2.check_log()
        finally:
            for dev in devs:
                dev.close()
            for x in (d, d2):
                if x and x.proc and x.proc.poll() is None:
                    x.stop()
                if x:
                    x.cleanup()


if __name__ == "__main__":
    run_tests([test_fanout, test_rows_of_silent_device, test_deleted_member, test_cancel,
               test_max_failures, test_restart_cancels_queued])
