"""rollout_stages_test.py - staged rollouts against the real fotad with stock NONOS devices
(devchan_util.StockDevice: IoT_Demo's exact frames): a rollout in three stages that waits for
an approval before the second and the third; a stage that pauses the rollout by itself when
its failures pass its max_failures and goes on once resumed; the health time after a report
(a device that comes back on the old version, one that reboots in a loop, one that never
comes back, one that ignores the reboot: failures; one that comes back once: upgraded); a
rollback of the failed devices to the versions they ran; a restart in the middle of a stage
and while paused; a maintenance window that opens; the progress kept per minute; fotactl's
rollout commands. Health times and windows pass by fotad's test clock (POST /v1/test/clock,
test builds only), never by waiting.
"""
import contextlib
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from fotatest import Fotad, check, finish, run_tests, wait_for  # noqa: E402
from cli_workflow_test import Ctl  # noqa: E402
from devchan_util import (StockDevice, active_frame, first_frame, parse_nonce,  # noqa: E402
                          rpc_response_frame, upgrade_frame)

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"
TOKEN = "t" * 40


def setup(d, tmp, name="plug"):
    return st.stock_product(d, tmp, V1, V2, name=name)


class Dev:
    """A registered stock device: activated on V1 (so its row says V1), reconnecting at will."""

    def __init__(self, d, reg, nonce):
        self.d, self.reg, self.nonce = d, reg, nonce
        self.id = reg["device"]["id"]
        self.key = reg["master_device_key"]
        self.conn = None

    def activate(self, version=V1):
        self.close()
        self.nonce += 1
        self.conn = StockDevice(self.d.ports["device"], self.key)
        self.conn.send(active_frame(self.nonce, TOKEN, "18:fe:34:00:00:%02x" % (self.id % 256),
                                    version, self.key))
        check('"activate_status": 1' in self.conn.recv_msg(), "activation of %d" % self.id)

    def identify(self):
        self.close()
        self.nonce += 1
        self.conn = StockDevice(self.d.ports["device"], self.key)
        self.conn.send(first_frame(self.nonce, self.key))
        check(parse_nonce(self.conn.recv_msg()) == self.nonce, "identify of %d" % self.id)

    def next_push(self, action):
        """The next push of action (replies to the device's own messages come between)."""
        got = []
        for _ in range(4):
            got.append(self.conn.recv_msg())
            if '"action": "%s"' % action in got[-1]:
                return got[-1]
        check(False, "no %s push to %d: %r" % (action, self.id, got))

    def upgrade(self, ok=True):
        """Takes the push, acknowledges it and reports the outcome."""
        push = self.next_push("sys_upgrade")
        self.auth = json.loads(push)["meta"]["Authorization"]
        self.conn.send(rpc_response_frame(parse_nonce(push)))
        self.conn.send(upgrade_frame(self.key, "device_upgrade_success" if ok else
                                     "device_upgrade_failed", V1[:15], V2[:15]))

    def reboot_push(self):
        """The rollout's sys_reboot: the bytes of a full encoding (json.dumps with sorted
        keys, as for a sys_reboot RPC), the owner key of its sys_upgrade, a fresh nonce."""
        push = self.next_push("sys_reboot")
        nonce = parse_nonce(push)
        want = json.dumps({"deliver_to_device": True, "get": {"action": "sys_reboot"},
                           "meta": {"Authorization": self.auth}, "method": "GET",
                           "nonce": nonce, "path": "/v1/device/rpc/"}, sort_keys=True) + "\n"
        check(push == want and 0 < nonce < 2 ** 31, "reboot push %r, want %r" % (push, want))
        return nonce

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


@contextlib.contextmanager
def fleet(n, prefix, nonce, activate=True):
    """fotad with product plug (releases V1, V2) and n stock devices activated on V1."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Fotad(data_dir=os.path.join(tmp, "data"))
        d.start()
        devs = []
        try:
            pid = setup(d, tmp)
            for i in range(n):
                devs.append(Dev(d, d.create_device(pid, name="%s%d" % (prefix, i)), nonce + 10 * i))
                if activate:
                    devs[-1].activate()
            yield d, pid, devs, tmp
        finally:
            for dev in devs:
                dev.close()
            finish(d)


def advance(d, seconds):
    """Moves fotad's clocks forward (its test hook); the rollouts look on their next tick."""
    s, _, j = d.api("POST", "/v1/test/clock", {"advance_ms": int(seconds * 1000)})
    check(s == 200, "test clock: %d %r" % (s, j))


def rollout(d, rid):
    s, _, j = d.api("GET", "/v1/rollouts/%d/" % rid)
    check(s == 200, "rollout %d: %d %r" % (rid, s, j))
    return j["rollout"]


def start(d, pid, body):
    s, _, j = d.api("POST", "/v1/rollouts/", dict(body, product_id=pid))
    check(s == 202, "create: %d %r" % (s, j))
    return j["rollout"]


def members(d, rid, state=None):
    """{device id: member} of rollout rid (3 a page), in state only when given."""
    out, cursor = {}, None
    for _ in range(1000):
        path = "/v1/rollouts/%d/devices/?limit=3" % rid + ("&cursor=%d" % cursor if cursor else "")
        if state:
            path += "&state=" + state
        s, _, j = d.api("GET", path)
        check(s == 200, "members of %d: %d %r" % (rid, s, j))
        out.update({m["device_id"]: m for m in j["devices"]})
        cursor = j["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("members of %d: no last page" % rid)


def wait_state(d, rid, state, timeout=10):
    return wait_for(lambda: (lambda x: x if x["state"] == state else None)(rollout(d, rid)),
                    timeout, "rollout %d %s" % (rid, state))


def act(d, rid, what, code=200, body=None):
    s, _, j = d.api("POST", "/v1/rollouts/%d/%s" % (rid, what), body)
    check(s == code, "%s of %d: %d %r" % (what, rid, s, j))
    return j


def pushed(d, rid, devs, k):
    """The devices rollout rid pushed, once k of them are delivered (or further)."""
    by_id = {dev.id: dev for dev in devs}

    def got():
        m = members(d, rid)
        p = [i for i, x in m.items() if x["state"] not in ("waiting", "queued")]
        return p if len(p) >= k else None
    return [by_id[i] for i in wait_for(got, 10, "%d pushes of %d" % (k, rid))]


def test_stages_with_approval():
    """10 devices in three stages: one device, then up to 50 %, then the rest, the last two
    each after an approval. Each stage is pushed only once the one before has all its devices
    upgraded and the approval came; membership is decided at creation and shown per device."""
    with fleet(10, "a", 100) as (d, pid, devs, tmp):
        for bad, why in (([], "no stage"), ([{"percent": 10}, {"percent": 5}], "percent shrinks"),
                         ([{"percent": 10, "count": 2}], "two kinds"), ([{"count": 0}], "count 0"),
                         ([{"percent": 101}], "percent 101"), ([{"count": 1, "speed": 2}], "key"),
                         ([{"count": 1, "success": 101}], "success 101"),
                         ([{"count": 1}] * 16, "16 stages")):
            s, _, j = d.api("POST", "/v1/rollouts/", {"product_id": pid, "version": V2,
                                                      "stages": bad})
            check(s == 400, "%s: %d %r" % (why, s, j))
        x = start(d, pid, {"version": V2, "window": 10, "stages": [
            {"count": 1}, {"percent": 50, "approval": True}, {"percent": 100, "approval": True}]})
        rid = x["id"]
        check(x["state"] == "running" and x["stage"] == 1 and
              [g["total"] for g in x["stages"]] == [1, 4, 5] and
              [g["state"] for g in x["stages"]] == ["running", "pending", "pending"], "%r" % x)
        m = members(d, rid)
        check(sorted(v["stage"] for v in m.values()) == [1] + [2] * 4 + [3] * 5, "stages %r" % m)
        first = pushed(d, rid, devs, 1)
        check(len(first) == 1 and m[first[0].id]["stage"] == 1, "stage 1 pushed %r" % first)
        first[0].upgrade()
        x = wait_state(d, rid, "awaiting_approval")
        check(x["stage"] == 2 and x["delivered"] == 1 and x["succeeded"] == 1 and
              x["stages"][1]["state"] == "awaiting_approval" and
              x["stages"][0]["state"] == "passed", "after stage 1: %r" % x)
        check(len(members(d, rid, "waiting")) == 9, "the others wait")
        x = act(d, rid, "approve")["rollout"]
        check(x["state"] == "running" and x["stage"] == 2 and x["stages"][1]["approved"],
              "approved: %r" % x)
        second = pushed(d, rid, devs, 5)
        for dev in second:
            if dev is not first[0]:
                check(m[dev.id]["stage"] == 2, "a stage 2 device %d" % dev.id)
                dev.upgrade()
        x = wait_state(d, rid, "awaiting_approval")
        check(x["stage"] == 3 and x["succeeded"] == 5 and x["delivered"] == 5, "%r" % x)
        act(d, rid, "approve")
        for dev in pushed(d, rid, devs, 10):
            if dev not in second:
                dev.upgrade()
        x = wait_state(d, rid, "finished")
        check(x["succeeded"] == 10 and [g["state"] for g in x["stages"]] ==
              ["passed", "passed", "ended"] and x["stages"][2]["succeeded"] == 5, "%r" % x)
        j = act(d, rid, "approve", 409)
        check("finished" in j["message"], "approve a finished rollout %r" % j)
        # the same request again picks the same first device: stages are deterministic
        y = start(d, pid, {"version": V1, "stages": [{"count": 1}], "filter": {"online": False}})
        check(y["total"] == 0, "nothing offline %r" % y)
        check(y["seed"] != x["seed"], "seeds follow the version: %r %r" % (y["seed"], x["seed"]))


def test_auto_pause_and_resume():
    """Four devices, two stages: 2 devices with max_failures 0, then the rest. A failure in
    stage 1 pauses the rollout by itself; the other stage-1 device still reports and counts;
    stage 2 is not pushed while paused, not even by an approval; resumed, stage 1 (ended below
    its threshold) is accepted and stage 2 runs to the end."""
    with fleet(4, "p", 200) as (d, pid, devs, tmp):
        x = start(d, pid, {"version": V2, "window": 4, "stages": [
            {"count": 2, "max_failures": 0}, {"percent": 100}]})
        rid = x["id"]
        one = pushed(d, rid, devs, 2)
        one[0].upgrade(ok=False)
        x = wait_state(d, rid, "paused")
        check(x["halted"] and x["paused"]["auto"] and "stage 1" in x["paused"]["reason"] and
              x["failed"] == 1, "paused: %r" % x)
        d.wait_log(r"rollout paused rollout=%d stage=1 by=itself" % rid)
        one[1].upgrade()
        wait_for(lambda: rollout(d, rid)["succeeded"] == 1, 5, "the second report counted")
        j = act(d, rid, "approve", 409)
        check("paused" in j["message"], "%r" % j)
        check(rollout(d, rid)["delivered"] == 2, "nothing pushed while paused")
        x = act(d, rid, "resume")["rollout"]
        check(x["state"] == "running" and x["stage"] == 2 and not x["halted"], "resumed %r" % x)
        for dev in pushed(d, rid, devs, 4):
            if dev not in one:
                dev.upgrade()
        x = wait_state(d, rid, "finished")
        check(x["succeeded"] == 3 and x["failed"] == 1 and x["stages"][0]["failed"] == 1, "%r" % x)
        # pausing by request and resuming: nothing pushed in between
        x = start(d, pid, {"version": V2, "window": 1, "filter": {"device_ids": [one[0].id]}})
        j = act(d, x["id"], "pause")
        check(j["rollout"]["state"] == "paused" and not j["rollout"]["paused"]["auto"], "%r" % j)
        act(d, x["id"], "resume")
        pushed(d, x["id"], devs, 1)[0].upgrade()
        wait_state(d, x["id"], "finished")


def test_health_and_rollback():
    """health 300 s, reboot true, five devices. After its report and the reboot: A comes back
    activating on the old version (failure old_version), B identifies once and stays (upgraded
    once its 300 s are over), C reconnects again and again (reboot_loop), D never comes back
    (silent), E ignores the reboot (no_reboot). Nothing ends before the health time is over.
    Then a rollback of the failed ones: a new rollout of V1 linked to it (A already runs V1:
    skipped)."""
    with fleet(5, "h", 300) as (d, pid, devs, tmp):
        a, b, c, dd, e = devs
        x = start(d, pid, {"version": V2, "window": 5, "reboot": True, "health": 300})
        rid = x["id"]
        check(x["health"] == 300 and x["max_reboots"] == 1, "%r" % x)
        for dev in pushed(d, rid, devs, 5):
            dev.upgrade()
        nonces = [dev.reboot_push() for dev in devs]
        check(len(set(nonces)) == 5, "a nonce per reboot push %r" % nonces)
        x = wait_for(lambda: (lambda y: y if y["verifying"] == 5 else None)(rollout(d, rid)), 5,
                     "five verifying")
        check(x["succeeded"] == 0 and x["in_progress"] == 0, "verifying is not upgraded: %r" % x)
        a.activate(V1)
        b.identify()
        for _ in range(3):
            c.identify()
        dd.close()
        m = wait_for(lambda: (lambda y: y if y[a.id]["state"] == "failed" and
                              y[c.id]["state"] == "failed" else None)(members(d, rid)), 5,
                     "A and C failed at once")
        check(m[a.id]["reason"] == "old_version" and m[c.id]["reason"] == "reboot_loop" and
              m[c.id]["health"]["boots"] == 3, "reasons %r" % m)
        check(m[b.id]["state"] == "verifying" and m[b.id]["health"]["boots"] == 1 and
              m[b.id]["health"]["until"] == m[b.id]["health"]["since"] + 300, "B %r" % m[b.id])
        advance(d, 200)
        x = rollout(d, rid)
        check(x["state"] == "running" and x["verifying"] == 3 and x["failed"] == 2,
              "200 s into the health time: %r" % x)
        advance(d, 101)
        x = wait_state(d, rid, "finished", 10)
        m = members(d, rid)
        check({i: (v["state"], v["reason"]) for i, v in m.items()} == {
            a.id: ("failed", "old_version"), b.id: ("done", None), c.id: ("failed", "reboot_loop"),
            dd.id: ("failed", "silent"), e.id: ("failed", "no_reboot")}, "outcomes %r" % m)
        check(x["succeeded"] == 1 and x["failed"] == 4 and x["verifying"] == 0, "%r" % x)
        check(all(v["pre_version"] == V1 and v["reported"] for v in m.values()), "%r" % m)
        d.wait_log(r"rollout member unhealthy rollout=%d dev=%d reason=silent" % (rid, dd.id))
        s, _, j = d.api("GET", "/v1/devices/%d/commands/" % b.id)
        check([c_["state"] for c_ in j["commands"] if c_["action"] == "sys_upgrade"] == ["done"],
              "the command row of a device in its health time stays done %r" % j)

        # roll back the failed ones: one rollout of V1, linked
        j = act(d, rid, "rollback", 400, {"devices": "some"})
        j = act(d, rid, "rollback", 202, {"devices": "failed", "window": 2})
        check(j["devices"] == 4 and len(j["rollouts"]) == 1 and j["left_out"] == [], "%r" % j)
        y = j["rollouts"][0]
        check(y["version"] == V1 and y["rollback_of"] == rid and y["window"] == 2 and
              y["reboot"] is True and y["total"] + y["skipped"] == 4 and y["skipped"] == 1,
              "rollback rollout %r" % y)
        for dev in (c, e):   # connected: pushed back to V1
            push = dev.next_push("sys_upgrade")
            check(V1[:15] in push, "back to V1 %r" % push)
        j = act(d, y["id"], "rollback", 409)
        check("no failed devices" in j["message"], "%r" % j)


def test_restart_mid_stage():
    """A two-stage rollout (1 device, then the rest after an approval) with health 60 s: fotad
    stops while the first device is verifying; after the restart its health time goes on from
    the stored report time and boots, the stage passes and the rollout awaits the approval;
    fotad stops again and still awaits it; approved, the rest runs. A pause survives a
    restart too."""
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        d = Fotad(data_dir=data)
        d.start()
        devs, d2 = [], None
        try:
            pid = setup(d, tmp)
            devs = [Dev(d, d.create_device(pid, name="r%d" % i), 400 + 10 * i) for i in range(3)]
            for dev in devs:
                dev.activate()
            x = start(d, pid, {"version": V2, "health": 60, "reboot": True, "stages": [
                {"count": 1}, {"percent": 100, "approval": True}]})
            rid = x["id"]
            first = pushed(d, rid, devs, 1)[0]
            first.upgrade()
            first.reboot_push()
            wait_for(lambda: members(d, rid)[first.id]["state"] == "verifying", 5, "verifying")
            d.stop()
            d.check_log()
            d2 = Fotad(data_dir=data)
            d2.start()
            d2.wait_log(r"rollout resumed rollout=%d members=3 in_progress=0 queued=2 "
                        r"verifying=1 stage=1 state=running" % rid)
            for dev in devs:
                dev.d = d2
            first.identify()     # back after its reboot: one boot
            check(rollout(d2, rid)["verifying"] == 1, "still in its health time")
            advance(d2, 61)
            x = wait_state(d2, rid, "awaiting_approval", 10)
            check(x["stage"] == 2 and x["succeeded"] == 1, "%r" % x)
            check(members(d2, rid)[first.id]["health"]["boots"] == 1, "boots")
            d2.stop()
            d2.check_log()
            d2 = Fotad(data_dir=data)
            d2.start()
            d2.wait_log(r"rollout resumed rollout=%d .*stage=2 state=awaiting_approval" % rid)
            for dev in devs:
                dev.d = d2
                dev.identify()
            check(rollout(d2, rid)["state"] == "awaiting_approval", "still awaiting")
            act(d2, rid, "pause")
            d2.stop()
            d2.check_log()
            d2 = Fotad(data_dir=data)
            d2.start()
            d2.wait_log(r"rollout resumed rollout=%d .*state=paused" % rid)
            x = rollout(d2, rid)
            check(x["state"] == "paused" and x["paused"]["reason"] == "paused by request", "%r" % x)
            for dev in devs:
                dev.d = d2
                dev.identify()
            act(d2, rid, "resume")
            x = act(d2, rid, "approve")["rollout"]
            check(x["state"] == "running" and x["stage"] == 2, "%r" % x)
            for dev in devs:
                if dev is not first:
                    dev.upgrade()
                    dev.reboot_push()
                    dev.identify()
            wait_for(lambda: rollout(d2, rid)["verifying"] == 2, 10, "two verifying")
            advance(d2, 61)
            x = wait_state(d2, rid, "finished", 10)
            check(x["succeeded"] == 3, "%r" % x)
            d2.stop()
            d2.check_log()
        finally:
            for dev in devs:
                dev.close()
            finish(d, d2)


def hhmm(minutes):
    minutes %= 1440
    return "%02d:%02d" % (minutes // 60, minutes % 60)


def test_maintenance_window():
    """A rollout limited to hours that exclude now pushes nothing (its members wait; a probe
    rollout of another product started after it is pushed meanwhile, so the loop has looked);
    one whose hours include now goes on. The window's state and next change are shown. Once
    fotad's clock reaches the first one's hours, its member is pushed."""
    with fleet(2, "m", 500) as (d, pid, devs, tmp):
        now = int(time.time()) // 60 % 1440
        x = start(d, pid, {"version": V2, "filter": {"device_ids": [devs[0].id]},
                           "hours": {"from": hhmm(now + 120), "to": hhmm(now + 180)}})
        check(x["hours"]["open"] is False and x["hours"]["from"] == hhmm(now + 120) and
              x["hours"]["next_change"] > time.time(), "closed window %r" % x)
        for bad in ({"from": "25:00", "to": "01:00"}, {"from": "01:00", "to": "01:00"},
                    {"from": "01:00"}, "night"):
            s, _, j = d.api("POST", "/v1/rollouts/", {"product_id": pid, "version": V2,
                                                      "hours": bad})
            check(s == 400 and "hours" in j["message"], "hours %r: %d %r" % (bad, s, j))
        pid2 = setup(d, tmp, "probe")
        probe = Dev(d, d.create_device(pid2, name="probe"), 590)
        probe.activate()
        try:
            y = start(d, pid2, {"version": V2})
            probe.upgrade()
            wait_state(d, y["id"], "finished")
            x = rollout(d, x["id"])
            check(x["delivered"] == 0 and x["waiting"] == 1, "nothing outside the hours %r" % x)
            z = start(d, pid, {"version": V2, "filter": {"device_ids": [devs[1].id]},
                               "hours": {"from": hhmm(now - 2), "to": hhmm(now + 60)}})
            check(z["hours"]["open"] is True, "open window %r" % z)
            devs[1].upgrade()
            wait_state(d, z["id"], "finished")
            check(rollout(d, x["id"])["delivered"] == 0, "still closed")
            advance(d, x["hours"]["next_change"] - time.time() + 5)
            d.wait_log(r"rollout maintenance window opened rollout=%d" % x["id"])
            devs[0].upgrade()
            x = wait_state(d, x["id"], "finished")
            check(x["hours"]["open"] is True and x["succeeded"] == 1, "opened %r" % x)
        finally:
            probe.close()


def test_progress():
    """The counters over time: a finished rollout has its samples (the last one all done) in
    time order; an unknown rollout is 404."""
    with fleet(2, "g", 600) as (d, pid, devs, tmp):
        x = start(d, pid, {"version": V2})
        for dev in pushed(d, x["id"], devs, 2):
            dev.upgrade()
        wait_state(d, x["id"], "finished")
        s, _, j = d.api("GET", "/v1/rollouts/%d/progress" % x["id"])
        check(s == 200 and j["rollout_id"] == x["id"] and j["progress"], "%d %r" % (s, j))
        p = j["progress"]
        check(p[-1]["succeeded"] == 2 and p[-1]["in_progress"] == 0, "last sample %r" % p[-1])
        check(all(p[i]["t"] <= p[i + 1]["t"] for i in range(len(p) - 1)), "time order %r" % p)
        s, _, j = d.api("GET", "/v1/rollouts/4242/progress")
        check(s == 404, "unknown %d" % s)


def test_filter_by_tag():
    """A rollout's filter takes the device lists' words: a tag (with a version) selects the
    tagged devices only (also `fotactl rollout start --tag`), checkin_after none of them when it
    lies ahead; an unknown filter key is 400 naming the words."""
    with fleet(3, "t", 800) as (d, pid, devs, tmp):
        for dev in devs[:2]:
            s, _, j = d.api("PUT", "/v1/devices/%d/tags/canary" % dev.id)
            check(s == 200, "tag %d %r" % (s, j))
        x = start(d, pid, {"version": V2, "filter": {"tag": "canary", "version": V1}})
        check(x["total"] == 2 and sorted(members(d, x["id"])) == sorted(v.id for v in devs[:2]),
              "tagged only %r" % x)
        act(d, x["id"], "cancel")
        home = os.path.join(tmp, "home")
        os.mkdir(home)
        ctl = Ctl(home)
        ctl.run("login", "--server", "http://127.0.0.1:%d" % d.http_port, "--key", d.admin_key)
        r = ctl.run("rollout", "start", "-p", "plug", "-v", V2, "--tag", "canary")
        check("2 devices selected" in r.stdout, r.stdout)
        ctl.run("rollout", "cancel", str(x["id"] + 1))
        y = start(d, pid, {"version": V2, "filter": {"checkin_after": int(time.time()) + 3600}})
        check(y["total"] == 0, "nobody checks in an hour ahead %r" % y)
        s, _, j = d.api("POST", "/v1/rollouts/", {"product_id": pid, "version": V2,
                                                  "filter": {"colour": "red"}})
        check(s == 400 and "tag" in j["message"] and "colour" in j["message"], "%d %r" % (s, j))


def test_fotactl():
    """fotactl's rollout commands: start in stages with an approval, show (state, the stage
    awaiting its approval, a table of stages; "rollout", never "job"), approve, pause (--wait
    stops and says so), resume, and rollback (nothing failed: exit 1; --upgraded: every device
    back to V1 in one rollout); the usage errors of --stages and --hours."""
    with fleet(3, "c", 700) as (d, pid, devs, tmp):
        home = os.path.join(tmp, "home")
        os.mkdir(home)
        ctl = Ctl(home)
        ctl.run("login", "--server", "http://127.0.0.1:%d" % d.http_port, "--key", d.admin_key)
        for bad, needle in ((["--stages", "1,x"], "--stages"), (["--stages", "@"], "--stages"),
                            (["--hours", "22-05"], "--hours"), (["--success", "50"], "--success")):
            r = ctl.run("rollout", "start", "-p", "plug", "-v", V2, *bad, ok=False)
            check(r.returncode == 2 and needle in r.stderr, "%r: %d %r" % (bad, r.returncode,
                                                                             r.stderr))
        r = ctl.run("rollout", "start", "-p", "plug", "-v", V2, "--stages", "1,100%",
                    "--approval", "--window", "3", "--health", "0", "--hours",
                    "%s-%s" % (hhmm(int(time.time()) // 60 - 60), hhmm(int(time.time()) // 60 + 120)))
        check("rollout 1 of plug to %s: 3 devices selected" % V2 in r.stdout, r.stdout)
        x = rollout(d, 1)
        check([g["total"] for g in x["stages"]] == [1, 2] and x["stages"][1]["approval"] and
              x["hours"]["open"] is True, "%r" % x)
        pushed(d, 1, devs, 1)[0].upgrade()
        wait_state(d, 1, "awaiting_approval")
        r = ctl.run("rollout", "show", "1")
        check("awaiting approval (stage 2: fotactl rollout approve 1)" in r.stdout and
              "plug (%d)" % pid in r.stdout and "1/3 upgraded" in r.stdout and
              "job" not in r.stdout.lower(), "show:\n" + r.stdout)
        rows = [ln.split("\t") for ln in r.stdout.strip().split("\n\n")[1].splitlines()]
        check([(w[0], w[2], w[3]) for w in rows] == [("1", "passed", "1/1"),
                                                     ("2", "awaiting approval", "0/2")],
              "stages table %r" % rows)
        r = ctl.run("rollout", "show", "1", "--wait", ok=False)
        check(r.returncode == 1 and "stage 2 awaits an approval" in r.stderr, r.stderr)
        r = ctl.run("rollout", "approve", "1")
        check("rollout 1: stage 2 of 2 approved, 2 devices" in r.stdout, r.stdout)
        r = ctl.run("rollout", "pause", "1")
        check(r.stdout.startswith("rollout 1 paused"), r.stdout)
        r = ctl.run("rollout", "show", "1", "--wait", ok=False)
        check(r.returncode == 1 and "rollout 1 was paused: paused by request" in r.stderr,
              r.stderr)
        r = ctl.run("rollout", "resume", "1")
        check("rollout 1 resumed: stage 2 of 2, running" in r.stdout, r.stdout)
        r = ctl.run("rollout", "resume", "1", ok=False)
        check(r.returncode == 1 and "not paused" in r.stderr, r.stderr)
        for dev in pushed(d, 1, devs, 3):
            if members(d, 1)[dev.id]["state"] != "done":
                dev.upgrade()
        r = ctl.run("rollout", "show", "1", "--wait", timeout=60)
        check("3/3 upgraded" in r.stdout, r.stdout)
        r = ctl.run("rollout", "rollback", "1", ok=False)
        check(r.returncode == 1 and "no failed devices" in r.stderr, r.stderr)
        r = ctl.run("rollout", "rollback", "1", "--upgraded", "--window", "1")
        check("rollout 1 rolled back: 3 devices in rollout 2 to %s (3)" % V1 in r.stdout,
              r.stdout)
        y = rollout(d, 2)
        check(y["rollback_of"] == 1 and y["window"] == 1 and y["version"] == V1, "%r" % y)
        ctl.run("rollout", "cancel", "2")


if __name__ == "__main__":
    run_tests([test_stages_with_approval, test_auto_pause_and_resume, test_health_and_rollback,
               test_restart_mid_stage, test_maintenance_window, test_progress, test_filter_by_tag, test_fotactl])
