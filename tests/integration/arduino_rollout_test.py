"""arduino_rollout_test.py - rollouts of pull-based devices (docs/arduino.md, "Rollouts"): the
devices send ESPhttpUpdate's exact request (reference arduino-ota §2.1). A rollout offers its
version to at most `window` devices at a time (a queued sys_upgrade row their next check-in
takes), each slot held until the confirming or failing check-in; max_failures halts it, cancel
calls back offers not downloaded yet, a device that never checks in stays waiting without
holding the window, and a restart resumes it. An explicit upgrade's version holds as the
device's target until the product's current release changes.
"""
import threading

from arduino_util import arduino_product, md5, release
from fotatest import Fotad, check, run_tests, wait_for
from pull_util import (PullDevice, commands, devices_by_mac, images, mac_of, rollout_create,
                       rollout_get, rollout_members, wait_rollout)


def fleet(d, n, name, versions=("1.0.0", "2.0.0"), **opts):
    """A product with releases versions (the first current) and n devices registered on the
    first: each checked in once and got 304."""
    p, key = arduino_product(d, name, **opts)
    imgs = images(len(versions), seed=sum(name.encode()))
    vmap = {md5(img): v for img, v in zip(imgs, versions)}
    for i, (v, img) in enumerate(zip(versions, imgs)):
        release(d, p["id"], v, img, current=(i == 0))
    devs = [PullDevice(d, key, mac_of(i + 1), imgs[0], vmap) for i in range(n)]
    for dev in devs:
        a = dev.checkin()
        check(a.status == 304, "registration check-in: %s" % a.status_line)
    ids = devices_by_mac(d, p["id"])
    for dev in devs:
        dev.id = ids[dev.mac]["id"]
        check(ids[dev.mac]["rom_version"] == versions[0], "registered on %s: %r" %
              (versions[0], ids[dev.mac]))
    return p, key, imgs, devs


def test_window_and_confirmation(d):
    """20 devices, window 5: at most 5 are offered the image at once; each confirming check-in
    frees a slot for the next; every device ends on 2.0.0 with 0 failures."""
    p, key, imgs, devs = fleet(d, 20, "win")
    r = rollout_create(d, p["id"], "2.0.0", window=5)
    check(r["total"] == 20 and r["waiting"] == 20, "all online and waiting: %r" % r)
    wait_rollout(d, r["id"], lambda x: x["in_progress"] == 5, "offers 5")
    for rnd in range(10):
        served = [dev for dev in devs if dev.version != "2.0.0" and
                  dev.checkin(reboot=False).status == 200]
        check(len(served) <= 5, "round %d: %d devices served at once (window 5)" %
              (rnd, len(served)))
        for dev in served:
            dev.reboot()
            a = dev.checkin()           # the confirming check-in: it runs 2.0.0
            check(a.status == 304, "after the upgrade: %s" % a.status_line)
        if all(dev.version == "2.0.0" for dev in devs):
            break
        wait_rollout(d, r["id"], lambda x: x["in_progress"] == min(5, 20 - x["succeeded"]),
                     "refills the window")
    r = wait_rollout(d, r["id"], lambda x: x["state"] == "finished", "finished")
    check(r["succeeded"] == 20 and r["failed"] == 0 and r["timed_out"] == 0, "counts %r" % r)
    check(all(dev.version == "2.0.0" for dev in devs), "every device runs 2.0.0")
    for m in rollout_members(d, r["id"]).values():
        check(m["state"] == "done" and m["command_id"], "member %r" % m)
    c = commands(d, devs[0].id)
    check(c[-1]["state"] == "done" and c[-1]["params"] == {"version": "2.0.0"}, "command %r" % c)
    check(d.device_view(devs[0].id)["rom_version"] == "2.0.0", "rom_version")
    # the rollout's version holds: the next check-ins are 304, not a downgrade to 1.0.0
    for dev in devs[:3]:
        check(dev.checkin().status == 304, "pinned to the rollout's version")


def test_max_failures_and_cancel(d):
    """A device that downloads and still runs the old image confirm_after later has failed; with
    max_failures 0 that pauses the rollout: offers not downloaded yet are called back (their
    members wait again) and their devices get 304; cancelling the paused rollout ends the
    members never offered as cancelled."""
    p, key, imgs, devs = fleet(d, 6, "halt", confirm_after=0)
    r = rollout_create(d, p["id"], "2.0.0", window=3, max_failures=0)
    wait_rollout(d, r["id"], lambda x: x["in_progress"] == 3, "offers 3")
    bad = next(dev for dev in devs if dev.checkin(reboot=False).status == 200)
    bad.staged = None                   # it refused the image: still the old one
    a = bad.checkin()
    r = wait_rollout(d, r["id"], lambda x: x["state"] == "paused", "paused")
    check(r["halted"] and r["failed"] == 1 and r["paused"]["auto"], "paused by its failure: %r" % r)
    check(r["waiting"] == 5 and r["in_progress"] == 0, "the offers called back: %r" % r)
    for dev in devs:
        a = dev.checkin(reboot=False)
        check(a.status == 304, "while paused %s gets %s" % (dev.mac, a.status_line))
    st, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % r["id"])
    check(st == 200 and j["cancelled_now"] == 5 and j["rollout"]["state"] == "cancelled",
          "cancel the paused rollout %d %r" % (st, j))
    st = {m["state"] for m in rollout_members(d, r["id"]).values()}
    check(st == {"failed", "cancelled"}, "member states %r" % st)

    # cancel by hand: offers not downloaded are called back, a device downloading finishes
    r = rollout_create(d, p["id"], "2.0.0", window=2)
    wait_rollout(d, r["id"], lambda x: x["in_progress"] == 2, "offers 2")
    first = next(dev for dev in devs if dev.checkin(reboot=False).status == 200)
    st, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % r["id"])
    check(st == 200 and j["cancelled_now"] == 5, "cancel %d %r" % (st, j))
    others = [dev for dev in devs if dev is not first]
    for dev in others:
        check(dev.checkin(reboot=False).status == 304, "called back")
    first.reboot()
    check(first.checkin().status == 304, "confirmed")
    r = wait_rollout(d, r["id"], lambda x: x["state"] == "cancelled", "cancelled")
    check(r["succeeded"] == 1 and r["cancelled"] == 5, "counts %r" % r)


def test_silent_device_stays_waiting(d):
    """A device offered its version that never checks in again holds its slot only until
    checkin_interval + timeout: then its offer is withdrawn (not a failure), the slot goes to
    the next device, and the silent one gets its offer when it is back."""
    p, key, imgs, devs = fleet(d, 3, "silent", checkin_interval=2)
    silent, others = devs[0], devs[1:]
    stop = threading.Event()
    upgraded = set()

    def poll():   # the others check in every 0.3 s: always online
        while not stop.is_set():
            for dev in others:
                dev.checkin()
                if dev.version == "2.0.0":
                    upgraded.add(dev.mac)
            stop.wait(0.3)
    th = threading.Thread(target=poll)
    th.start()
    try:
        r = rollout_create(d, p["id"], "2.0.0", window=1, timeout=10)
        # the lowest id (the silent one) is offered first and holds the only slot
        wait_rollout(d, r["id"], lambda x: x["in_progress"] == 1, "first offer")
        m = rollout_members(d, r["id"])
        check(m[silent.id]["state"] == "delivered", "silent device offered: %r" % m[silent.id])
        # withdrawn after 2 + 10 s: the others get their turn and finish
        wait_for(lambda: len(upgraded) == 2, 40, "the two others upgraded")
        r = wait_rollout(d, r["id"], lambda x: x["succeeded"] == 2, "two done")
        check(r["failed"] == 0 and r["timed_out"] == 0, "no failure: %r" % r)
        check(r["state"] == "running" and r["queued"] == 1, "the silent one waits: %r" % r)
        check(rollout_members(d, r["id"])[silent.id]["state"] == "queued", "queued")
        d.wait_log(r"rollout offer withdrawn rollout=%d dev=%d" % (r["id"], silent.id))
    finally:
        stop.set()
        th.join()
    # back: its first check-in shows it online (304: not offered yet), the next takes it
    check(silent.checkin().status == 304, "back, not offered yet")
    wait_rollout(d, r["id"], lambda x: x["in_progress"] == 1, "offered again")
    check(silent.checkin().status == 200, "takes its offer")
    check(silent.checkin().status == 304, "confirmed")
    r = wait_rollout(d, r["id"], lambda x: x["state"] == "finished", "finished")
    check(r["succeeded"] == 3 and r["failed"] == 0, "counts %r" % r)


def test_restart_resumes():
    """fotad stopped with offers out and members waiting: after the start the offers hold, the
    waiting members are offered as slots free, and the rollout finishes."""
    d = Fotad().start()
    try:
        p, key, imgs, devs = fleet(d, 6, "restart")
        r = rollout_create(d, p["id"], "2.0.0", window=2)
        wait_rollout(d, r["id"], lambda x: x["in_progress"] == 2, "offers 2")
        offered = [dev for dev in devs if dev.checkin(reboot=False).status == 200]
        check(len(offered) == 2, "two offers taken")
        d.stop()
        d.start()
        for dev in offered:
            dev.reboot()
            check(dev.checkin().status == 304, "confirmed after the restart")
        for _ in range(10):
            r = wait_rollout(d, r["id"], lambda x: x["in_progress"] > 0 or
                             x["state"] == "finished", "offers")
            if r["state"] == "finished":
                break
            for dev in devs:    # downloads, and the confirming check-ins of the last round
                dev.checkin()
        check(r["succeeded"] == 6 and r["failed"] == 0, "counts %r" % r)
        d.stop()
    finally:
        d.cleanup()


def test_explicit_upgrade_holds(d):
    """An upgrade asked for one device (RPC sys_upgrade) holds as its target: after it the
    device keeps its version at every check-in, until the product's current release changes;
    an upgrade to the version it runs already is done at once."""
    p, key, imgs, devs = fleet(d, 2, "pin", versions=("1.0.0", "2.0.0", "3.0.0"))
    dev, other = devs
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade"
                     "&version=2.0.0&device_id=%d" % dev.id)
    check(st == 202 and j["command"]["state"] == "queued", "rpc: %d %r" % (st, j))
    check(dev.checkin().status == 200 and dev.version == "2.0.0", "upgraded")
    check(dev.checkin().status == 304, "confirmed")
    check(d.device_view(dev.id)["rom_version"] == "2.0.0", "rom_version")
    check(commands(d, dev.id)[-1]["state"] == "done", "command done")
    for _ in range(3):
        check(dev.checkin().status == 304, "2.0.0 holds (no downgrade to the current 1.0.0)")
    check(other.checkin().status == 304, "the other stays on 1.0.0")
    check(d.device_view(dev.id)["arduino"]["pin"] == {"version": "2.0.0", "current": "1.0.0"},
          "pin shown: %r" % d.device_view(dev.id)["arduino"])
    # the product's current release changes: the choice ends, both follow it
    d.set_current(p["id"], "3.0.0")
    check(dev.checkin().status == 200 and dev.version == "3.0.0", "follows the new current")
    check(other.checkin().status == 200 and other.version == "3.0.0", "the other too")
    check(dev.checkin().status == 304 and other.checkin().status == 304, "both confirmed")
    check(d.device_view(dev.id)["arduino"]["pin"] is None, "pin gone")
    # asked for the version it runs: done at once, no download, no upgrade message
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade"
                     "&version=3.0.0&device_id=%d" % other.id)
    check(st == 202, "rpc: %d %r" % (st, j))
    check(other.checkin().status == 304, "already running")
    check(commands(d, other.id)[-1]["state"] == "done", "command done: %r" %
          commands(d, other.id)[-1])


def test_stages_health_and_rollback(d):
    """Two stages (one device, then the rest after an approval) with a health time of 30 s on a
    product whose devices check in every 60 s: a device counts as upgraded once it checked in
    again on the new image after its health time; one that comes back with the old image, or
    never checks in again, has failed. A rollback of every upgraded device offers them the
    version they ran before, as a rollout linked to this one. The health times pass by fotad's
    test clock (POST /v1/test/clock), so this test runs last: it moves the clock of the fotad
    the others share."""
    p, key, imgs, devs = fleet(d, 4, "hlth", checkin_interval=60)
    r = rollout_create(d, p["id"], "2.0.0", window=4, health=30, stages=[
        {"count": 1}, {"percent": 100, "approval": True}])
    check([g["total"] for g in r["stages"]] == [1, 3], "stages %r" % r["stages"])
    wait_rollout(d, r["id"], lambda x: x["in_progress"] == 1, "stage 1 offered")
    first = next(dev for dev in devs if dev.checkin(reboot=False).status == 200)
    first.reboot()
    check(first.checkin().status == 304, "confirmed")
    wait_rollout(d, r["id"], lambda x: x["verifying"] == 1 and x["succeeded"] == 0, "verifying")

    def advance(seconds):
        # the check-ins reach the store in batches: a device's view writes them first, so
        # the clock never moves past a check-in that is not stored yet
        for dev in devs:
            d.device_view(dev.id)
        st, _, j = d.api("POST", "/v1/test/clock", {"advance_ms": seconds * 1000})
        check(st == 200, "test clock %d %r" % (st, j))

    def healthy_after(keep, rid, pred, what):
        def step():
            for dev in keep:
                dev.checkin()
            x = rollout_get(d, rid)
            return x if pred(x) else None
        return wait_for(step, 20, what, interval=0.3)
    advance(31)
    x = healthy_after([first], r["id"], lambda x: x["state"] == "awaiting_approval",
                      "stage 1 healthy, stage 2 awaits its approval")
    check(x["succeeded"] == 1 and x["stage"] == 2, "%r" % x)
    others = [dev for dev in devs if dev is not first]
    for dev in others:
        check(dev.checkin(reboot=False).status == 304, "not offered before the approval")
    st, _, j = d.api("POST", "/v1/rollouts/%d/approve" % r["id"])
    check(st == 200 and j["rollout"]["state"] == "running", "approve %d %r" % (st, j))
    wait_rollout(d, r["id"], lambda x: x["in_progress"] == 3, "stage 2 offered")
    back, silent, good = others
    for dev in others:
        check(dev.checkin().status == 200, "downloads")
        check(dev.checkin().status == 304, "confirmed")
    wait_rollout(d, r["id"], lambda x: x["verifying"] == 3, "three verifying")
    back.image = imgs[0]                # it booted the old image again
    advance(31)
    healthy_after([first, back, good], r["id"],
                  lambda x: x["succeeded"] == 2 and x["failed"] == 1 and x["verifying"] == 1,
                  "good upgraded, back failed, silent still verifying")
    advance(65)                         # past its checkin_interval after the health time
    x = healthy_after([first, back, good], r["id"], lambda x: x["state"] == "finished",
                      "the rollout finished")
    m = rollout_members(d, r["id"])
    got = {dev.mac: (m[dev.id]["state"], m[dev.id]["reason"]) for dev in devs}
    check(got == {first.mac: ("done", None), good.mac: ("done", None),
                  back.mac: ("failed", "old_version"), silent.mac: ("failed", "silent")},
          "outcomes %r" % got)
    check(x["succeeded"] == 2 and x["failed"] == 2, "%r" % x)
    # roll every upgraded device back to 1.0.0 (their check-ins stored first: who is online)
    for dev in devs:
        d.device_view(dev.id)
    st, _, j = d.api("POST", "/v1/rollouts/%d/rollback" % r["id"], {"devices": "upgraded"})
    check(st == 202 and j["devices"] == 4 and len(j["rollouts"]) == 1, "rollback %d %r" % (st, j))
    y = j["rollouts"][0]
    check(y["version"] == "1.0.0" and y["rollback_of"] == r["id"] and y["health"] == 30, "%r" % y)
    check(y["total"] + y["skipped"] == 4 and y["queued"] == 1, "silent is offline: %r" % y)
    wait_rollout(d, y["id"], lambda x: x["in_progress"] == y["total"] - 1,
                 "rollback offered to the online ones")
    a = good.checkin(reboot=False)
    check(a.status == 200 and md5(a.body) == md5(imgs[0]), "served 1.0.0 again: %s" %
          a.status_line)


run_tests([test_window_and_confirmation, test_max_failures_and_cancel,
           test_silent_device_stays_waiting, test_restart_resumes, test_explicit_upgrade_holds,
           test_stages_health_and_rollback])
