"""arduino_cache_test.py - a device that polls while current is answered from its loop's cache
(server/arduino/arduino_cache.c), and a completed download waits in a batch before the store
(arduino_served.c): whatever changes a device's answer is seen by its very next check-in. Each
case warms the caches first (several 304 check-ins per device, so every loop holds it), then
changes one thing and checks the next check-in: the product's current release, an upgrade
command, an offer called back, a deleted device; and a download is seen by the confirming
check-in right after it, and its count by the API at once. Run on one loop (the
cache's path is certain) and on the default loops.
"""
from arduino_util import arduino_product, core_request, exchange, md5, release
from fotatest import Fotad, check, run_tests
from pull_util import (PullDevice, commands, devices_by_mac, images, mac_of, rollout_create,
                       wait_rollout)

WARM = 8   # check-ins per device before a change: each loop sees the device several times


def fleet(d, n, name, **opts):
    """A product with releases 1.0.0 (current), 2.0.0 and 3.0.0 (images imgs), and n devices
    on 1.0.0, each warmed with WARM check-ins that got 304."""
    p, key = arduino_product(d, name, **opts)
    imgs = images(3, seed=sum(name.encode()))
    vers = ("1.0.0", "2.0.0", "3.0.0")
    vmap = {md5(img): v for img, v in zip(imgs, vers)}
    for i, (v, img) in enumerate(zip(vers, imgs)):
        release(d, p["id"], v, img, current=(i == 0))
    devs = [PullDevice(d, key, mac_of(i + 1, "DE:CA:FE"), imgs[0], vmap) for i in range(n)]
    warm(devs)
    ids = devices_by_mac(d, p["id"])
    for dev in devs:
        dev.id = ids[dev.mac]["id"]
    return p, key, devs, imgs


def warm(devs):
    for dev in devs:
        for i in range(WARM):
            a = dev.checkin()
            check(a.status == 304, "warm-up check-in %d of %s: %s" % (i, dev.mac, a.status_line))


def head(dev):
    """The device's check-in as HEAD (its answer's head, no body, no download)."""
    host = "127.0.0.1:%d" % dev.d.http_port
    req = core_request("/v1/arduino/%s/firmware.bin" % dev.key, host, version=dev.version,
                       mac=dev.mac, sketch_md5=md5(dev.image), free_space=dev.free_space,
                       sketch_size=len(dev.image))
    return exchange(dev.d.http_port, b"HEAD" + req[3:])


def messages(d, device_id, action):
    st, _, j = d.api("GET", "/v1/messages/?device_id=%d" % device_id)
    check(st == 200, "messages: %d %r" % (st, j))
    return [m for m in j["messages"] if m["action"] == action]


def downloads(d, pid, version):
    st, _, j = d.api("GET", "/v1/products/%d/roms/%s/" % (pid, version))
    check(st == 200, "release %s: %d %r" % (version, st, j))
    return sum(f.get("download_count", 0) for f in j["rom"]["files"])


def cases(d):
    """Every change, each seen by the next check-in."""
    p, key, devs, imgs = fleet(d, 4, "cache")
    a, b, c, e = devs

    # the product's current release moves: the next check-in downloads it, and the
    # check-in right after the download confirms it (the batched download is seen)
    d.set_current(p["id"], "2.0.0")
    got = a.checkin(reboot=False)
    check(got.status == 200 and got.body == a.staged, "new current served: %s" % got.status_line)
    a.reboot()
    check(a.checkin().status == 304, "confirming check-in")
    ok = messages(d, a.id, "device_upgrade_success")
    check(len(ok) == 1, "the upgrade recorded by the very next check-in: %r" % ok)
    check(downloads(d, p["id"], "2.0.0") == 1, "the download counted")
    check(d.device_view(a.id)["rom_version"] == "2.0.0", "rom_version after the upgrade")
    # and back: the next check-in of a warm device downloads 1.0.0 again; the download's
    # count is exact at once (the API writes the batch before it reads)
    warm([a])
    d.set_current(p["id"], "1.0.0")
    check(a.checkin().status == 200 and a.version == "1.0.0", "back to 1.0.0")
    check(downloads(d, p["id"], "1.0.0") == 1, "the download counted at once")
    warm(devs)

    # an upgrade command for one device (no catalog change): its next check-in takes it,
    # the others stay
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade"
                     "&version=3.0.0&device_id=%d" % b.id)
    check(st == 202, "rpc: %d %r" % (st, j))
    check(c.checkin().status == 304, "another device stays")
    check(b.checkin().status == 200 and b.version == "3.0.0", "the command is taken at once")
    check(b.checkin().status == 304, "confirmed")
    check(commands(d, b.id)[-1]["state"] == "done", "command done: %r" % commands(d, b.id)[-1])
    warm(devs)   # b's explicit version holds (3.0.0, not the current 1.0.0)

    # an offer called back before the device came by (a rollout cancelled): its next
    # check-in stays where it is
    r = rollout_create(d, p["id"], "2.0.0", window=1, filter={"device_ids": [c.id]})
    wait_rollout(d, r["id"], lambda x: x["in_progress"] == 1, "offered")
    for i in range(WARM):   # HEAD: answered like a check-in, nothing downloaded
        a_ = head(c)
        check(a_.status == 200 and a_.h("Content-Length") == str(len(imgs[1])),
              "HEAD while offered: %s" % a_.status_line)
    st, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % r["id"])
    check(st == 200 and j["cancelled_now"] == 1, "cancel: %d %r" % (st, j))
    check(c.checkin().status == 304, "the called-back offer is not served")
    warm(devs)

    # the device is deleted: its next check-in registers it again, as a new device
    st, _, j = d.api("DELETE", "/v1/devices/%d/" % e.id)
    check(st == 200, "delete: %d %r" % (st, j))
    check(e.checkin().status == 304, "check-in after the delete")
    again = devices_by_mac(d, p["id"])[e.mac]
    check(again["id"] != e.id, "registered again with a new id: %r" % again)
    e.id = again["id"]


def test_one_loop():
    with Fotad(extra=["--workers", "1"]) as d:
        cases(d)


def test_every_loop(d):
    cases(d)


run_tests([test_one_loop, test_every_loop])
