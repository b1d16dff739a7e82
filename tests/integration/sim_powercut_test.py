"""sim_powercut_test.py - 200 devices upgraded by the real fotad
while power is cut at random points of the download and of the flash writes
(one fota-sim process, a seeded fault plan: every device draws its own cut
positions from --seed). Every boot after every cut must start a valid image
(the old or the new one: no bricked device), and after the re-pushes every
device runs the new version - in fota-sim's per-device report and in fotad's
device list. FOTA_POWERCUT_SEED=N reruns one plan."""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from fotatest import check, run_tests  # noqa: E402

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.9t45772(a)"
DEVICES = 200
IMAGE = 48 * 1024
SEED = int(os.environ.get("FOTA_POWERCUT_SEED", "20261122"))
# flash@N counts the flash operations after the first boot's loader: a nonos
# upgrade of this 48 KiB image is the activation save (0-3), 12 sector erases
# and ~775 writes of the download, then the boot flip (790-793; the loader
# has nothing to save when the new image boots); ~50 KB are received
# (channel, HEAD, GET). Every device draws one flash cut and one receive cut
# (a receive cut first disarms the flash cut: power-on clears the plan).
FAULTS = "flash@0-793,rx@200-52000"
# Uniform draws put few cuts into the flip; two smaller fleets aim at the
# last writes of the download and the flip, with the v1.7 loader
# (usr_bin/boot_statue) and the v1.2 one (old nibble format).
WINDOW = "flash@782-793"


def run_fleet(d, pid, n, seed, faults, extra=()):
    t0 = time.monotonic()
    rc, out, err = st.run_sim(
        ["--server", "127.0.0.1", "--http-port", str(d.ports["http"]),
         "--device-port", str(d.ports["device"]), "--key", d.admin_key,
         "--product", str(pid), "--profile", "nonos", "--devices", str(n),
         "--upgrade-to", V2, "--initial-version", V1, "--seed", str(seed),
         "--faults", faults, "--max-attempts", "5", "--time-scale", "20",
         "--timeout", "60", "--json-devices"] + list(extra), timeout=90)
    took = time.monotonic() - t0
    try:
        j = json.loads(out)
    except ValueError:
        check(False, "fota-sim printed no JSON (rc %d):\n%s\n%s" % (rc, out[-2000:], err[-2000:]))
    devs = j["per_device"]
    check(len(devs) == n, "%d devices in the report" % len(devs))
    cuts = sum(x["power_cuts"] for x in devs)
    print("fota-sim %s %s: %d devices, %d power cuts (%d devices cut, %d twice), %d boots, "
          "%d bytes, %d RPC timeouts, %.1f s (test %.1f s); reasons %s" %
          (faults, " ".join(extra), n, cuts, sum(1 for x in devs if x["power_cuts"]),
           sum(1 for x in devs if x["power_cuts"] >= 2), j["boots"], j["bytes"],
           j["api_errors"], j["seconds"], took, j["reasons"]))
    # no bricked device: every boot that got past the loader started the old
    # or the new image, and never went back once the new one ran
    bad = [x for x in devs if any(v not in (V1, V2) for v in x["booted"]) or
           x["state"] == "dead" or (V2 in x["booted"] and
                                    V1 in x["booted"][x["booted"].index(V2):])]
    check(not bad, "bricked or rolled-back devices (seed %d): %s" % (seed, bad[:5]))
    check(all(x["boots"] >= 1 + x["power_cuts"] and x["booted"] for x in devs),
          "a device did not boot again after a power cut")
    # with the app's re-pushes every device ends on the new version
    late = [x for x in devs if x["state"] != "done" or x["version"] != V2 or
            x["booted"][-1] != V2]
    check(rc == 0 and not late and j["upgraded"] == n and j["result"] == "ok",
          "rc %d, not upgraded (seed %d): %s\n%s" % (rc, seed, late[:5], err[-2000:]))
    # (api_errors: RPCs answered 504, the device lost power before replying)
    check(j["registered"] == n, "registered %r" % j["registered"])
    return devs, cuts


def test_powercut_fleet(d):
    print("seed %d (rerun with FOTA_POWERCUT_SEED=%d)" % (SEED, SEED))
    with tempfile.TemporaryDirectory() as tmp:
        pid = st.stock_product(d, tmp, V2, size=IMAGE)
        devs, cuts = run_fleet(d, pid, DEVICES, SEED, FAULTS)
        # the plan really cut power, on every device and twice on most
        check(cuts >= DEVICES, "only %d power cuts for %d devices" % (cuts, DEVICES))
        check(sum(1 for x in devs if x["power_cuts"] >= 2) >= DEVICES // 4,
              "too few devices cut twice (download and flash)")
        ids = [x["id"] for x in devs]
        for loader in ("7", "2"):
            w, wcuts = run_fleet(d, pid, 50, SEED + int(loader), WINDOW,
                               ("--loader", loader))
            check(wcuts >= 40, "only %d cuts in the flip window (loader %s)" % (wcuts, loader))
            ids += [x["id"] for x in w]
        # fotad saw every device's D7 report of the new version
        s, _, lst = d.api("GET", "/v1/products/%d/devices/" % pid)
        check(s == 200, "device list: %d" % s)
        rows = lst["devices"]
        check(len(rows) == len(ids), "fotad lists %d devices, %d simulated" % (len(rows), len(ids)))
        wrong = [(x.get("id"), x.get("rom_version")) for x in rows if x.get("rom_version") != V2]
        check(not wrong, "fotad's rom_version is not %s for %d devices: %s" %
              (V2, len(wrong), wrong[:5]))
        check(sorted(x["id"] for x in rows) == sorted(ids), "fotad's devices are the simulated ones")


if __name__ == "__main__":
    if not os.access(os.path.join(st.BIN, "fota-sim"), os.X_OK):
        print("FAIL: fota-sim is not built in %r (FOTA_BIN_DIR)" % st.BIN, file=sys.stderr)
        sys.exit(1)
    run_tests([test_powercut_fleet])
