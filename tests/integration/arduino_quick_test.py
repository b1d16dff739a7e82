"""arduino_quick_test.py - quick answers (server/http/http_quick.c): the check-in of a device
that runs its target is answered from the request's head, before evhttp parses it, with the
very bytes the full path sends, and only then. Counted by fota_http_quick_answers_total,
which tells the two paths apart here. Each case checks the answer's bytes, whether it was
quick, and that nothing was recorded that a check-in of a current device must not record:
  - a warm current device: quick 304s, byte for byte the full path's 304 (its first check-in,
    the registration, takes the full path), with a query in the URL too, and with another
    flash mode byte in its sketch MD5 (§6.3);
  - what is left to the full path: HTTP/1.1, HEAD, a body, bytes after the head, a
    percent-encoded path, a device name segment with no STA MAC, the md5 and manifest files,
    a wrong key (403), an unknown MAC (registered);
  - whatever changes the answer is seen by the next check-in: a new current release (200 and
    the image, then the confirming check-in records one success), an upgrade command (200),
    the device deleted (registered again).
Run on one loop and on the default loops.
"""

from arduino_util import arduino_product, core_request, exchange, md5, release, with_mode
from fotatest import Fotad, check, metric_value, run_tests
from pull_util import PullDevice, devices_by_mac, images, mac_of

NOT_MODIFIED = b"HTTP/1.0 304 Not Modified\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
# Warm-up check-ins per device before the quick ones are counted: the kernel spreads the
# connections over the HTTP loops (SO_REUSEPORT), and each loop must have served the device
# once. With 8, both of 2 loops are reached in all but about 1 in 128 runs; with 24, all but
# about 1 in 8 million.
WARM = 24


def quick_count(d):
    return metric_value(d, "fota_http_quick_answers_total")


def successes(d, device_id):
    st, _, j = d.api("GET", "/v1/messages/?device_id=%d" % device_id)
    check(st == 200, "messages: %d %r" % (st, j))
    return [m for m in j["messages"] if m["action"] == "device_upgrade_success"]


def request_of(dev, **kw):
    host = "127.0.0.1:%d" % dev.d.http_port
    path = kw.pop("path", "/v1/arduino/%s/firmware.bin" % dev.key)
    opts = dict(version=dev.version, mac=dev.mac, sketch_md5=md5(dev.image),
                free_space=dev.free_space, sketch_size=len(dev.image))
    opts.update(kw)
    return core_request(path, host, **opts)


def answer(d, req, quick, what):
    """Sends req; checks that it was answered quickly (quick=True) or not; the Answer."""
    before = quick_count(d)
    a = exchange(d.http_port, req)
    got = quick_count(d) - before
    check(got == (1 if quick else 0), "%s: %s quick answers, want %d" % (what, got, int(quick)))
    return a


def cases(d):
    p, key = arduino_product(d, "quick")
    imgs = images(2, seed=31)
    vmap = {md5(imgs[0]): "1.0.0", md5(imgs[1]): "2.0.0"}
    release(d, p["id"], "1.0.0", imgs[0], current=True)
    release(d, p["id"], "2.0.0", imgs[1], current=False)
    a, b = (PullDevice(d, key, mac_of(i + 1, "DE:AD:01"), imgs[0], vmap) for i in range(2))

    # the registration takes the full path; its 304 is the reference
    first = answer(d, request_of(a), False, "registration")
    check(first.raw == NOT_MODIFIED, "full path 304: %r" % first.raw)
    # warm: every loop holds the device; from then on each check-in is quick
    for _ in range(WARM):
        check(a.checkin().status == 304, "warm-up check-in")
        check(b.checkin().status == 304, "warm-up check-in")
    a.id = devices_by_mac(d, p["id"])[a.mac]["id"]
    for i in range(4):
        got = answer(d, request_of(a), True, "current device, check-in %d" % i)
        check(got.raw == NOT_MODIFIED, "quick 304 bytes: %r" % got.raw)
    got = answer(d, request_of(a, path="/v1/arduino/%s/firmware.bin?x=1" % key), True, "query")
    check(got.raw == NOT_MODIFIED, "quick 304 with a query: %r" % got.raw)
    for mode in range(4):   # the updater rewrote the flash mode byte (§6.3)
        got = answer(d, request_of(a, sketch_md5=md5(with_mode(imgs[0], mode))), True,
                     "flash mode %d" % mode)
        check(got.raw == NOT_MODIFIED, "mode %d: %r" % (mode, got.raw))
    check(successes(d, a.id) == [], "no upgrade recorded for a current device")
    view = d.device_view(a.id)
    check(view["rom_version"] == "1.0.0", "rom_version %r" % view["rom_version"])

    # left to the full path, with the full path's answers
    req = request_of(a)
    got = answer(d, req.replace(b"HTTP/1.0", b"HTTP/1.1", 1), False, "HTTP/1.1")
    check(got.status == 304, "HTTP/1.1: %s" % got.status_line)
    got = answer(d, b"HEAD" + req[3:], False, "HEAD")
    check(got.status == 304, "HEAD: %s" % got.status_line)
    got = answer(d, req.replace(b"Content-Length: 0", b"Content-Length: 2") + b"{}", False,
                 "a body")
    check(got.status == 400, "a GET with a body: %s" % got.status_line)
    got = answer(d, req + b"GET /v1/ping/ HTTP/1.0\r\n\r\n", False, "bytes after the head")
    check(got.raw == NOT_MODIFIED, "pipelined: %r" % got.raw)
    got = answer(d, request_of(a, path="/v1/arduino/%s/firmware%%2Ebin" % key), False,
                 "percent-encoded")
    check(got.status == 304, "percent-encoded path: %s" % got.status_line)
    for name, want in (("firmware.md5", 200), ("manifest.json", 200)):
        got = answer(d, request_of(a, path="/v1/arduino/%s/%s" % (key, name)), False, name)
        check(got.status == want, "%s: %s" % (name, got.status_line))
    got = answer(d, request_of(a, path="/v1/arduino/%s/firmware.bin" % ("0" * len(key))), False,
                 "wrong key")
    check(got.status == 403, "wrong key: %s" % got.status_line)
    host = "127.0.0.1:%d" % d.http_port
    named = ("GET /v1/arduino/%s/d/kitchen/firmware.bin HTTP/1.0\r\nHost: %s\r\n"
             "Connection: close\r\n\r\n" % (key, host)).encode()
    for i in range(3):
        got = answer(d, named, False, "named device without headers, %d" % i)
        check(got.status == 200, "named device: %s" % got.status_line)
    c = PullDevice(d, key, mac_of(9, "DE:AD:01"), imgs[0], vmap)
    got = answer(d, request_of(c), False, "unknown MAC")
    check(got.raw == NOT_MODIFIED, "unknown MAC registered on its image: %r" % got.raw)
    check(c.mac in devices_by_mac(d, p["id"]), "unknown MAC registered")

    # an upgrade command: the next check-in is served it
    b.id = devices_by_mac(d, p["id"])[b.mac]["id"]
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade"
                     "&version=2.0.0&device_id=%d" % b.id)
    check(st == 202, "rpc: %d %r" % (st, j))
    got = answer(d, request_of(b), False, "device with a command")
    check(got.status == 200 and got.body == imgs[1], "command served: %s" % got.status_line)

    # a new current release: served by the full path, confirmed by the next check-in
    d.set_current(p["id"], "2.0.0")
    got = answer(d, request_of(a), False, "new current release")
    check(got.status == 200 and got.body == imgs[1], "new current served: %s" % got.status_line)
    a.image = imgs[1]
    got = answer(d, request_of(a), False, "confirming check-in")
    check(got.raw == NOT_MODIFIED, "confirming check-in: %r" % got.raw)
    ok = successes(d, a.id)
    check(len(ok) == 1 and ok[0]["body"]["rom_version"] == "2.0.0", "one success: %r" % ok)
    for _ in range(WARM):
        check(a.checkin().status == 304, "warm-up on 2.0.0")
    answer(d, request_of(a), True, "current again")
    check(len(successes(d, a.id)) == 1, "still one success")

    # the device is deleted: its next check-in registers it again
    st, _, j = d.api("DELETE", "/v1/devices/%d/" % a.id)
    check(st == 200, "delete: %d %r" % (st, j))
    got = answer(d, request_of(a), False, "deleted device")
    check(got.raw == NOT_MODIFIED, "after the delete: %r" % got.raw)
    check(devices_by_mac(d, p["id"])[a.mac]["id"] != a.id, "registered again")


def test_one_loop():
    with Fotad(extra=["--workers", "1"]) as d:
        cases(d)


def test_every_loop(d):
    cases(d)


run_tests([test_one_loop, test_every_loop])
