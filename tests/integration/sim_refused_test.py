"""sim_refused_test.py - an image the device must not take, served
by the real fotad. fotad refuses bad uploads, so the bad bytes come by two
other routes: (1) fota-sim's corrupt@N fault inverts one byte of the
download (a transfer error TCP did not catch): the device's CRC check fails;
(2) a product with slot_check "name" holds RTOS 1.x images (no slot number
in byte 3), which a NONOS >= 2.0 device refuses on the first bytes. Each
time the device reports device_upgrade_failed (stored by fotad as a
message), keeps booting the old image, and fotad keeps its old rom_version;
with a retry a corrupted transfer is repaired."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from fotatest import check, run_tests  # noqa: E402
from legacy_util import py_image  # noqa: E402

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"
# download connection bytes: the HEAD answer and the GET header (~400
# bytes) come first, so 20000 lands inside the image
CORRUPT = "corrupt@20000"


def sim(d, pid, n, seed, extra):
    rc, out, err = st.run_sim(
        ["--server", "127.0.0.1", "--http-port", str(d.ports["http"]),
         "--device-port", str(d.ports["device"]), "--key", d.admin_key, "--product", str(pid),
         "--profile", "nonos", "--devices", str(n), "--upgrade-to", V2, "--initial-version", V1,
         "--seed", str(seed), "--time-scale", "20", "--json-devices"] + list(extra), timeout=60)
    try:
        return rc, json.loads(out), err
    except ValueError:
        check(False, "fota-sim printed no JSON (rc %d):\n%s\n%s" % (rc, out[-2000:], err[-2000:]))


def failed_reports(d, dev_id):
    """fotad's stored device_upgrade_failed messages of one device."""
    s, _, j = d.api("GET", "/v1/messages/?device_id=%d" % dev_id)
    check(s == 200, "messages: %d %r" % (s, j))
    return [m for m in j["messages"] if "device_upgrade_failed" in json.dumps(m)]


def refused(d, pid, seed, faults, reason):
    """One attempt per device (--max-attempts 1): refused, reported, still on V1."""
    extra = ["--max-attempts", "1", "--timeout", "4"] + (["--faults", faults] if faults else [])
    rc, j, err = sim(d, pid, 2, seed, extra)
    check(rc == 1 and j["upgraded"] == 0, "a refused image upgraded: %r" % j)
    for x in j["per_device"]:
        check(x["booted"] == [V1] and x["state"] == "running" and x["reason"] == reason,
              "device %r (want reason %r)" % (x, reason))
        check(failed_reports(d, x["id"]), "fotad stored no device_upgrade_failed for %d" % x["id"])
        s, _, dv = d.api("GET", "/v1/devices/%d/" % x["id"])
        check(dv["device"]["rom_version"] == V1, "fotad's rom_version changed: %r" % dv)
    return j


def test_corrupted_download(d):
    with tempfile.TemporaryDirectory() as tmp:
        pid = st.stock_product(d, tmp, V2)
        refused(d, pid, 21, CORRUPT, "image CRC mismatch")
        # the app asks again; the next transfer is clean
        rc, j, err = sim(d, pid, 2, 22, ["--faults", CORRUPT, "--max-attempts", "3",
                                             "--timeout", "30"])
        check(rc == 0 and j["upgraded"] == 2, "no recovery: %r\n%s" % (j, err[-2000:]))
        for x in j["per_device"]:
            check(x["booted"] == [V1, V2], "%r" % x)
            check(failed_reports(d, x["id"]), "the first, corrupted try was not reported")
            s, _, dv = d.api("GET", "/v1/devices/%d/" % x["id"])
            check(dv["device"]["rom_version"] == V2, "%r" % dv)


def test_wrong_slot_image(d):
    # RTOS 1.x images: accepted by file name for seed-era fleets, wrong for NONOS >= 2.0
    p = d.create_product(name="seedera", flash_map=2, slot_check="name")
    files = [("user%d.bin" % s, py_image(s, 40 * 1024, seed=80 + s, rtos1=True)) for s in (1, 2)]
    d.upload_release(p["id"], V2, files=files)
    refused(d, p["id"], 23, None, "please check the bin file")


if __name__ == "__main__":
    if not os.access(os.path.join(st.BIN, "fota-sim"), os.X_OK):
        print("FAIL: fota-sim is not built in %r (FOTA_BIN_DIR)" % st.BIN, file=sys.stderr)
        sys.exit(1)
    run_tests([test_corrupted_download, test_wrong_slot_image])
