"""arduino_serve_test.py - fotad's answers to ESPhttpUpdate (reference arduino-ota §2, §4, §10):
the core's exact request bytes over a raw socket, the exact answer (200 with Content-Length and
x-MD5 of the body, closed after it), registration by STA MAC, 304 on any of the four mode-byte
MD5s, confirmation or failure at the next check-in, the too-big and wrong-flash refusals
answered with the real length and 4 bytes, spiffs, keys, and anonymous downloads counted.
"""

from arduino_util import (arduino_product, build_image, check_image_answer, checkin, exchange, md5,
                          release, with_mode)
from fotatest import check, run_tests, wait_for


def messages(d, pid, action):
    st, _, j = d.api("GET", "/v1/messages/?product_id=%d" % pid)
    check(st == 200, "messages: %d %r" % (st, j))
    return [m for m in j["messages"] if m["action"] == action]


def device_by_name(d, pid, name):
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
    check(st == 200, "devices: %d" % st)
    found = [x for x in j["devices"] if x["name"] == name]
    check(len(found) == 1, "device %s: %r" % (name, [x["name"] for x in j["devices"]]))
    return found[0]


def test_exact_answer_and_registration(d):
    p, key = arduino_product(d)
    img = build_image(mode=3, seed=11)
    release(d, p["id"], "1.0.0", img)
    a = checkin(d, key, version="0.9.0")
    check_image_answer(a, img)
    check(a.status_line.startswith("HTTP/1."), a.status_line)
    dev = device_by_name(d, p["id"], "DE:BA:7A:B1:E0:42")
    ar = dev["arduino"]
    check(ar["sta_mac"] == "DE:BA:7A:B1:E0:42" and ar["chip_id"] == 15602487, repr(ar))
    check(ar["sketch_md5"] == "0123456789abcdef0123456789abcdef", repr(ar))
    check(ar["free_space"] == 4194304 and ar["chip_size"] == 4194304, repr(ar))
    check(ar["sketch_size"] == 400000 and ar["sdk_version"] == "2.5.0", repr(ar))
    check(ar["version"] == "0.9.0" and ar["mode"] == "sketch", repr(ar))
    check(dev["online"] is True and ar["last_checkin"] > 0, repr(dev))
    check(dev["bssid"] == "de:ba:7a:b1:e0:42", repr(dev))
    check(ar["upgrade"]["target"] == "1.0.0", "served upgrade: %r" % ar)
    # the URL a sketch is given may carry a query (§2.1: sent unchanged)
    check_image_answer(checkin(d, key, name="firmware.bin?x=1", mac="DE:BA:7A:B1:E0:43"), img)
    # HEAD: the same header, no body
    host = "127.0.0.1:%d" % d.http_port
    a = exchange(d.http_port, ("HEAD /v1/arduino/%s/firmware.bin HTTP/1.0\r\nHost: %s\r\n\r\n"
                               % (key, host)).encode())
    check(a.status == 200 and a.h("Content-Length") == str(len(img)) and a.body == b"",
          "HEAD: %s %r" % (a.status_line, a.body[:20]))


def test_304_any_mode_byte(d):
    p, key = arduino_product(d)
    img = build_image(mode=2, seed=12)
    release(d, p["id"], "1.0.0", img)
    for mode in range(4):
        a = checkin(d, key, sketch_md5=md5(with_mode(img, mode)), mac="5C:CF:7F:00:00:0%d" % mode)
        check(a.status == 304, "mode %d: %s" % (mode, a.status_line))
        check(a.body == b"", "304 with a body %r" % a.body[:40])
        dev = device_by_name(d, p["id"], "5C:CF:7F:00:00:0%d" % mode)
        check(dev["rom_version"] == "1.0.0", "version of a current device: %r" % dev)
    check(not messages(d, p["id"], "device_upgrade_success"), "a 304 recorded as an upgrade")


def test_confirm_success(d):
    p, key = arduino_product(d)
    v1, v2 = build_image(seed=21), build_image(seed=22)
    release(d, p["id"], "1.0.0", v1)
    check(checkin(d, key, sketch_md5=md5(v1)).status == 304, "on 1.0.0")
    release(d, p["id"], "2.0.0", v2)
    a = checkin(d, key, sketch_md5=md5(v1))
    check_image_answer(a, v2)
    # downloaded, not rebooted yet: the old MD5 within confirm_after is no failure
    check(checkin(d, key, sketch_md5=md5(v1)).status == 200, "served again before reboot")
    check(not messages(d, p["id"], "device_upgrade_failed"), "failed too early")
    # rebooted into 2.0.0 with another flash mode
    a = checkin(d, key, sketch_md5=md5(with_mode(v2, 1)))
    check(a.status == 304, "after the upgrade: %s" % a.status_line)
    ok = messages(d, p["id"], "device_upgrade_success")
    check(len(ok) == 1 and ok[0]["body"]["rom_version"] == "2.0.0", repr(ok))
    check(ok[0]["body"]["pre_rom_version"] == "1.0.0", repr(ok))
    dev = device_by_name(d, p["id"], "DE:BA:7A:B1:E0:42")
    check(dev["rom_version"] == "2.0.0" and dev["arduino"]["upgrade"] is None, repr(dev))
    check(checkin(d, key, sketch_md5=md5(v2)).status == 304, "still current")
    check(len(messages(d, p["id"], "device_upgrade_success")) == 1, "success twice")


def test_confirm_failure(d):
    p, key = arduino_product(d, confirm_after=0)
    v1, v2 = build_image(seed=31), build_image(seed=32)
    release(d, p["id"], "1.0.0", v1)
    checkin(d, key, sketch_md5=md5(v1))
    release(d, p["id"], "2.0.0", v2)
    check_image_answer(checkin(d, key, sketch_md5=md5(v1)), v2)
    a = checkin(d, key, sketch_md5=md5(v1))
    check(a.status == 200, "served again: %s" % a.status_line)
    bad = messages(d, p["id"], "device_upgrade_failed")
    check(len(bad) == 1 and bad[0]["body"]["rom_version"] == "2.0.0", repr(bad))
    check("still runs" in bad[0]["body"]["reason"], repr(bad))


def test_too_big_and_minimal(d):
    p, key = arduino_product(d)
    full, mini = build_image(irom=60000, seed=41), build_image(irom=5000, seed=42)
    release(d, p["id"], "14.4.1", full, minimal=mini)
    free = len(full) - 1
    a = checkin(d, key, free_space=free, version="14.3.0(release-tasmota)")
    check(a.status == 200, a.status_line)
    check(a.h("Content-Length") == str(len(full)), "real length: %r" % a.h("Content-Length"))
    check(a.h("x-MD5") == md5(full), "x-MD5 of the file: %r" % a.h("x-MD5"))
    check(a.body == full[:4], "the first 4 bytes only: %d bytes" % len(a.body))
    bad = messages(d, p["id"], "device_upgrade_failed")
    check(len(bad) == 1 and "Not Enough space" in bad[0]["body"]["reason"], repr(bad))
    check(bad[0]["body"]["error"] == -100, repr(bad))
    # Tasmota's second step: the -minimal name fits
    check_image_answer(checkin(d, key, name="firmware-minimal.bin", free_space=free), mini)
    # the .gz names of a product without gzip
    check(checkin(d, key, name="firmware.bin.gz", free_space=free).status == 404, "bin.gz")
    check(checkin(d, key, name="firmware-minimal.bin.gz").status == 404, "minimal.gz")
    # minimal running: a step, then the full image
    a = checkin(d, key, sketch_md5=md5(mini), free_space=4000000)
    check_image_answer(a, full)
    check(not messages(d, p["id"], "device_upgrade_success"), "minimal taken as success")
    check(checkin(d, key, sketch_md5=md5(full)).status == 304, "full running")
    check(len(messages(d, p["id"], "device_upgrade_success")) == 1, "success of the full image")


def test_wrong_flash_and_spiffs(d):
    p, key = arduino_product(d)
    img = build_image(size_code=9, seed=51)   # built for 16 MB
    release(d, p["id"], "1.0.0", img)
    a = checkin(d, key, chip_size=4194304)
    check(a.status == 200 and a.h("Content-Length") == str(len(img)), a.status_line)
    check(a.body == img[:4], "4 bytes: %d" % len(a.body))
    bad = messages(d, p["id"], "device_upgrade_failed")
    check(len(bad) == 1 and bad[0]["body"]["error"] == -107, repr(bad))
    check_image_answer(checkin(d, key, chip_size=16 << 20), img)
    check(checkin(d, key, mode="spiffs").status == 304, "spiffs")


def test_keys_and_names(d):
    p, key = arduino_product(d)
    release(d, p["id"], "1.0.0", build_image(seed=61))
    check(checkin(d, key[:-1] + ("0" if key[-1] != "0" else "1")).status == 403, "wrong key")
    check(checkin(d, "nonsense").status == 403, "malformed key")
    st, _, j = d.api("POST", "/v1/products/", {"name": "nonos-one"})
    check(st == 200, "nonos product")
    check(j["product"]["platform"] == "nonos", repr(j["product"]))
    check(checkin(d, j["product_key"]).status == 404, "nonos product's key")
    check(checkin(d, key, name="tasmota.bin").status == 404, "unknown file name")
    check(d.api("GET", "/v1/products/%d/arduino" % j["product"]["id"])[0] == 404, "settings of nonos")


def test_anonymous_download_counted(d):
    p, key = arduino_product(d)
    img = build_image(seed=71)
    release(d, p["id"], "1.0.0", img)
    host = "127.0.0.1:%d" % d.http_port
    req = ("GET /v1/arduino/%s/firmware.bin HTTP/1.0\r\nHost: %s\r\n\r\n" % (key, host)).encode()
    check_image_answer(exchange(d.http_port, req), img)

    def counted():
        st, _, j = d.api("GET", "/v1/products/%d/roms/1.0.0/" % p["id"])
        f = [x for x in j["rom"]["files"] if x["name"] == "firmware.bin"][0]
        return f["download_count"] == 1
    wait_for(counted, what="the anonymous download counted")
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % p["id"])
    check(j["devices"] == [], "anonymous request registered a device: %r" % j["devices"])


def test_pending_command_first(d):
    p, key = arduino_product(d)
    v1, v2 = build_image(seed=81), build_image(seed=82)
    release(d, p["id"], "1.0.0", v1)
    release(d, p["id"], "2.0.0", v2, current=False)
    check(checkin(d, key, sketch_md5=md5(v1)).status == 304, "on the current 1.0.0")
    dev = device_by_name(d, p["id"], "DE:BA:7A:B1:E0:42")
    st, _, j = d.api("GET", "/v1/device/rpc/?action=sys_upgrade&version=2.0.0&device_id=%d"
                     "&deliver_to_device=true" % dev["id"])
    check(st == 202, "queued for the next check-in: %d %r" % (st, j))
    check_image_answer(checkin(d, key, sketch_md5=md5(v1)), v2)
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev["id"])
    check(j["commands"][-1]["state"] == "delivered", "command: %r" % j["commands"])
    # on 2.0.0: the command is done, and the explicit upgrade holds (docs/arduino.md): no
    # downgrade to the product's current 1.0.0 until the current release changes
    check(checkin(d, key, sketch_md5=md5(v2)).status == 304, "2.0.0 holds")
    ok = messages(d, p["id"], "device_upgrade_success")
    check(len(ok) == 1 and ok[0]["body"]["rom_version"] == "2.0.0", repr(ok))
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev["id"])
    check(j["commands"][-1]["state"] == "done", "command: %r" % j["commands"])


run_tests([test_exact_answer_and_registration, test_304_any_mode_byte, test_confirm_success,
           test_confirm_failure, test_too_big_and_minimal, test_wrong_flash_and_spiffs,
           test_keys_and_names, test_anonymous_download_counted, test_pending_command_first])
