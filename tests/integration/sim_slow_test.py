"""sim_slow_test.py - a slow link (fota-sim --faults slow=BPS) still
upgrades against the real fotad, and the throttle is real: the device cannot
have received the image faster than the link allows, so its upgrade (push to
running the new image, from fota-sim's report) lasts at least image/rate.
That lower bound is what the fault promises; no upper bound is asserted."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from fotatest import check, run_tests  # noqa: E402

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"
IMAGE = 64 * 1024
RATE = 16 * 1024           # bytes/s: the image needs at least 4 s


def test_slow_link_upgrades(d):
    with tempfile.TemporaryDirectory() as tmp:
        pid = st.stock_product(d, tmp, V2, name="slowplug", size=IMAGE)
        rc, out, err = st.run_sim(
            ["--server", "127.0.0.1", "--http-port", str(d.ports["http"]),
             "--device-port", str(d.ports["device"]), "--key", d.admin_key,
             "--product", str(pid), "--profile", "nonos", "--devices", "2",
             "--upgrade-to", V2, "--initial-version", V1, "--seed", "7", "--timeout", "60",
             "--faults", "slow=%d,pct=50" % RATE, "--json-devices"], timeout=90)
        try:
            j = json.loads(out)
        except ValueError:
            check(False, "fota-sim printed no JSON (rc %d):\n%s\n%s" % (rc, out[-2000:], err[-2000:]))
        check(rc == 0 and j["upgraded"] == 2, "slow link did not upgrade: %r\n%s" % (j, err[-2000:]))
        for x in j["per_device"]:
            check(x["booted"] == [V1, V2], "%r" % x)
        # pct=50: device 0 has the slow link, device 1 does not
        floor_ms = IMAGE * 1000.0 / RATE
        check(j["upgrade"]["max_ms"] >= floor_ms,
              "the slow device finished in %.0f ms, faster than its %d B/s link allows (%.0f ms)"
              % (j["upgrade"]["max_ms"], RATE, floor_ms))
        s, _, dv = d.api("GET", "/v1/products/%d/devices/" % pid)
        check(all(x["rom_version"] == V2 for x in dv["devices"]), "fotad's view: %r" % dv)
        print("slow device: %.0f ms (floor %.0f ms); p50 %.0f ms" %
              (j["upgrade"]["max_ms"], floor_ms, j["upgrade"]["p50_ms"]))


if __name__ == "__main__":
    run_tests([test_slow_link_upgrades])
