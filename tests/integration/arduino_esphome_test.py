"""arduino_esphome_test.py - ESPHome's side of the arduino endpoints (reference arduino-ota §9):
its HTTP/1.1 keep-alive request, the manifest (string fields, the exact release version, a
path relative to the manifest URL, the MD5 of what that path serves), firmware.md5, the device
segment that names (and registers) a device without x-ESP8266 headers, and gzip products.
"""
import json

from arduino_util import (arduino_product, build_image, check_image_answer, esphome_request,
                          exchange, md5, release)
from fotatest import check, run_tests


def get(d, path):
    a = exchange(d.http_port, esphome_request(path, "127.0.0.1:%d" % d.http_port))
    check(a.h("Transfer-Encoding") is None, "chunked answer to ESPHome")
    check(a.h("Connection") == "close", "Connection %r" % a.h("Connection"))
    return a


def resolve(manifest_path, ota_path):
    """ESPHome's join of a relative ota.path: the manifest URL up to its last '/'."""
    check("http" not in ota_path and not ota_path.startswith("/"), "relative path %r" % ota_path)
    return manifest_path[:manifest_path.rfind("/") + 1] + ota_path


def test_manifest_and_md5(d):
    p, key = arduino_product(d, "Kitchen plug")
    img = build_image(seed=91)
    release(d, p["id"], "1.4.0", img, changelog="Fixes relay chatter")
    mpath = "/v1/arduino/%s/d/kitchen/manifest.json" % key
    a = get(d, mpath)
    check(a.status == 200 and a.h("Content-Length") == str(len(a.body)), a.status_line)
    m = json.loads(a.body)
    check(m["name"] == "Kitchen plug" and m["version"] == "1.4.0", repr(m))
    b = m["builds"][0]
    check(b["chipFamily"] == "ESP8266", repr(b))
    for k in ("path", "md5", "summary"):
        check(isinstance(b["ota"][k], str), "%s not a string: %r" % (k, b))
    check(b["ota"]["md5"] == md5(img) and b["ota"]["summary"] == "Fixes relay chatter", repr(b))
    fw = get(d, resolve(mpath, b["ota"]["path"]))
    check_image_answer(fw, img)
    m5 = get(d, "/v1/arduino/%s/d/kitchen/firmware.md5" % key)
    check(m5.status == 200 and m5.body == md5(img).encode(), "md5 file %r" % m5.body)
    check(m5.h("Content-Length") == "32", repr(m5.headers))
    # the device segment registered the device under its name
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % p["id"])
    names = [x["name"] for x in j["devices"]]
    check(names == ["kitchen"], repr(names))
    check(j["devices"][0]["online"] is True, repr(j["devices"][0]))
    # the same name is the same device
    get(d, mpath)
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % p["id"])
    check(len(j["devices"]) == 1, "registered twice: %r" % j["devices"])
    # without a device segment: anonymous, nothing registered
    a = get(d, "/v1/arduino/%s/manifest.json" % key)
    check(json.loads(a.body)["version"] == "1.4.0", repr(a.body))
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % p["id"])
    check(len(j["devices"]) == 1, repr(j["devices"]))


def test_gzip_manifest(d):
    p, key = arduino_product(d, "gz", gzip=True)
    img = build_image(seed=92)
    release(d, p["id"], "2.0", img)
    mpath = "/v1/arduino/%s/manifest.json" % key
    m = json.loads(get(d, mpath).body)
    fw = get(d, resolve(mpath, m["builds"][0]["ota"]["path"]))
    check(fw.body[:2] == b"\x1f\x8b", "gzip served")
    check(m["builds"][0]["ota"]["md5"] == md5(fw.body), "manifest md5 = MD5 of the bytes served")
    check(get(d, "/v1/arduino/%s/firmware.md5" % key).body == md5(fw.body).encode(), "md5 file")
    check("summary" not in m["builds"][0]["ota"], "empty summary sent: %r" % m)


def test_no_release(d):
    p, key = arduino_product(d, "empty")
    for f in ("manifest.json", "firmware.md5", "firmware.bin"):
        a = get(d, "/v1/arduino/%s/d/x/%s" % (key, f))
        check(a.status == 404, "%s: %s" % (f, a.status_line))
    a = get(d, "/v1/arduino/%s/d/%s/manifest.json" % (key, "bad%01name"))
    check(a.status == 400, "control character in a name: %s" % a.status_line)


run_tests([test_manifest_and_md5, test_gzip_manifest, test_no_release])
