"""sim_arduino_fotad_test.py - fota-sim's Arduino-core devices against the
real fotad's /v1/arduino/KEY/... endpoints: 50 arduino devices whose flash
mode (dout) differs from the build's (dio) register by MAC, download v2
once, and are confirmed by their next check-in (fotad matches the
mode-byte MD5 variant: rom_version 2.0.0, no second download); 5 ESPHome
devices named by the device segment follow fotad's manifest to v2."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_ardserver as ar  # noqa: E402
from fotatest import Fotad, check, multipart, run_tests  # noqa: E402


def arduino_release(d, name, version, img):
    st, _, j = d.api("POST", "/v1/products/", {"name": name, "platform": "arduino"})
    check(st == 200, "create product: %d %r" % (st, j))
    pid, key = j["product"]["id"], j["product_key"]
    ct, body = multipart({"version": version}, [("firmware.bin", "firmware.bin", img)])
    st, _, j = d.api("POST", "/v1/products/%d/roms/" % pid, body, headers={"Content-Type": ct})
    check(st == 200, "upload: %d %r" % (st, j))
    d.set_current(pid, version)
    return pid, key


def test_arduino_fleet(d):
    with tempfile.TemporaryDirectory() as tmp:
        img = ar.write_image(os.path.join(tmp, "v2.bin"), "2.0.0", 40000, "dio")
        pid, key = arduino_release(d, "sketches", "2.0.0", img)
        rc, out, err = ar.run_sim(["--server", "127.0.0.1", "--profile", "arduino", "--devices", "50",
                                   "--url", "http://127.0.0.1:%d/v1/arduino/%s/firmware.bin" %
                                   (d.http_port, key), "--initial-version", "1.0.0",
                                   "--upgrade-to", "2.0.0", "--flash-mode", "dout",
                                   "--time-scale", "10", "--timeout", "60"])
        check(rc == 0 and "upgraded:   50" in out, "fota-sim: %d\n%s\n%s" % (rc, out, err[-2000:]))
        st, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
        devs = j["devices"]
        check(len(devs) == 50, "%d devices registered" % len(devs))
        dout = bytearray(img)
        dout[2] = 3
        for x in devs:
            check(x["rom_version"] == "2.0.0" and x["name"] == x["arduino"]["sta_mac"] and
                  x["arduino"]["sketch_md5"] == ar.md5(bytes(dout)), "device %r" % x)
        rel = d.api("GET", "/v1/products/%d/roms/" % pid)[2]
        counts = [f.get("download_count") for r in rel.get("roms", []) for f in r.get("files", [])]
        check(sum(c or 0 for c in counts) <= 50, "downloads %r for 50 devices" % counts)


def test_esphome_manifest(d):
    with tempfile.TemporaryDirectory() as tmp:
        img = ar.write_image(os.path.join(tmp, "v2.bin"), "1.4.0", 40000)
        pid, key = arduino_release(d, "esphomes", "1.4.0", img)
        url = "http://127.0.0.1:%d/v1/arduino/%s/d/plug-{index}/manifest.json" % (d.http_port, key)
        rc, out, err = ar.run_sim(["--server", "127.0.0.1", "--profile", "esphome", "--devices", "5",
                                   "--url", url, "--initial-version", "1.3.0", "--upgrade-to", "1.4.0",
                                   "--time-scale", "10", "--timeout", "60"])
        check(rc == 0 and "upgraded:   5" in out, "fota-sim: %d\n%s\n%s" % (rc, out, err[-2000:]))
        st, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
        names = sorted(x["name"] for x in j["devices"])
        check(names == ["plug-%d" % i for i in range(5)], "devices %r" % names)


if __name__ == "__main__":
    run_tests([test_arduino_fleet, test_esphome_manifest])
