"""arduino_pg_test.py - Arduino check-ins on a PostgreSQL store (docs/store.md): no check-in
calls a store op on an event loop, where the loop guard would log an ERROR (which fails the
test) and refuse the op, and the answers are those of SQLite: a first check-in registers its
device (304 on the current image), a fleet polling while current gets 304 from the loops'
caches, a new current release is served whole and confirmed by the next check-in, a wrong
key is 403 and a device name that is not printable ASCII 400, ESPHome's firmware.md5 and
manifest.json describe the current release. Two loops, so each serves some check-ins.
"""
import json

from arduino_util import arduino_product, checkin, core_request, esphome_request, exchange, md5
from arduino_util import release
from fotatest import Fotad, check, run_tests
from pg_util import PgServer
from pull_util import PullDevice, devices_by_mac, images, mac_of

WARM = 6   # check-ins per device while current: each loop sees every device


def device_version(d, device_id):
    st, _, j = d.api("GET", "/v1/devices/%d/" % device_id)
    check(st == 200, "device %d: %d %r" % (device_id, st, j))
    return j["device"]["rom_version"]


def test_checkins_off_the_loops():
    pg = PgServer()
    pg.create_db("fota")
    d = Fotad(extra=["--store", "postgresql:" + pg.dsn("fota"), "--workers", "2"])
    d.start()
    p, key = arduino_product(d, "pg-fleet")
    imgs = images(2, seed=7)
    vmap = {md5(imgs[0]): "1.0.0", md5(imgs[1]): "2.0.0"}
    release(d, p["id"], "1.0.0", imgs[0], changelog="first")
    release(d, p["id"], "2.0.0", imgs[1], current=False, changelog="second")

    devs = [PullDevice(d, key, mac_of(i + 1, "DE:0B:5E"), imgs[0], vmap) for i in range(4)]
    for dev in devs:
        for i in range(WARM):
            a = dev.checkin()
            check(a.status == 304, "%s check-in %d on 1.0.0: %s" % (dev.mac, i, a.status_line))
    ids = devices_by_mac(d, p["id"])
    check(sorted(ids) == sorted(dev.mac for dev in devs), "registered: %r" % sorted(ids))

    host = "127.0.0.1:%d" % d.http_port
    a = checkin(d, "0" * len(key))
    check(a.status == 403, "wrong key: %s" % a.status_line)
    a = exchange(d.http_port, esphome_request("/v1/arduino/%s/d/bad%%7Fname/firmware.md5" % key,
                                              host))
    check(a.status == 400, "unprintable name: %s" % a.status_line)
    a = exchange(d.http_port, esphome_request("/v1/arduino/%s/d/kitchen/firmware.md5" % key, host))
    check(a.status == 200 and a.body == md5(imgs[0]).encode(), "md5: %s %r" % (a.status_line,
                                                                             a.body))
    for _ in range(4):   # on each loop a store job first, then the loop's caches
        a = exchange(d.http_port,
                     esphome_request("/v1/arduino/%s/d/kitchen/manifest.json" % key, host))
        m = json.loads(a.body)
        ota = m["builds"][0]["ota"]
        check(a.status == 200 and m["version"] == "1.0.0" and ota["md5"] == md5(imgs[0]) and
              ota.get("summary") == "first", "manifest: %s %r" % (a.status_line, m))

    d.set_current(p["id"], "2.0.0")
    for dev in devs:
        a = dev.checkin(reboot=False)
        check(a.status == 200 and a.body == imgs[1], "%s served 2.0.0: %s" % (dev.mac,
                                                                              a.status_line))
        dev.reboot()
        a = dev.checkin()
        check(a.status == 304, "%s confirming check-in: %s" % (dev.mac, a.status_line))
        check(device_version(d, ids[dev.mac]["id"]) == "2.0.0", "%s recorded on 2.0.0" % dev.mac)
    for dev in devs:
        a = exchange(d.http_port, core_request("/v1/arduino/%s/firmware.bin" % key, host,
                                               version="2.0.0", mac=dev.mac,
                                               sketch_md5=md5(imgs[1]), free_space=1000000,
                                               sketch_size=len(imgs[1])))
        check(a.status == 304, "%s on 2.0.0: %s" % (dev.mac, a.status_line))
    d.stop()
    pg.stop()


run_tests([test_checkins_off_the_loops])
