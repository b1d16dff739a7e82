"""pullfleet.py - rollouts of fota-sim's Arduino-core fleets against the real fotad, shared by
integration.sim_pull_rollout (small fleets) and bench/pullwave.py (the issue's sizes: 1,000
arduino devices, 200 Tasmota devices). Python 3 stdlib.

arduino_wave: N `--profile arduino` devices (ESPhttpUpdate every --checkin-interval) register
by their first check-in (no current release: 304), then one rollout offers 2.0.0 within a
window; fota-sim exits 0 once every device runs 2.0.0 and reached fotad with it.

tasmota_wave: N `--profile tasmota` devices on Debian's mosquitto; fotad finds them over MQTT
(LWT, INFO1, Status 5); one rollout triggers each (OtaUrl, Upgrade 1) within its window; the
full build does not fit beside the running one, so every device goes through -minimal
(-100, firmware-minimal.bin, reboot, the full image, reboot); INFO1 confirms.

Each returns its figures (devices, window, seconds from the rollout's creation to its end,
counts) after checking that every device succeeded and none failed.
"""
import json
import os
import subprocess
import time

import sim_ardserver as ar
from fotatest import check, tempdir, wait_for
from mqtt_util import Mosquitto
from arduino_util import arduino_product, release
from pull_util import rollout_create, rollout_get, start_fotad

FULL, MINIMAL = "2.0.0(release-tasmota)", "2.0.0(minimal)"


def sim(args, timeout):
    p = subprocess.Popen([ar.sim_path()] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    return p, timeout


def sim_end(handle):
    p, timeout = handle
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("fota-sim still running after %d s:\n%s" % (timeout, err[-3000:]))
    for bad in ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "runtime error:"):
        check(bad not in err, "sanitizer report from fota-sim:\n" + err[-6000:])
    try:
        j = json.loads(out)
    except ValueError:
        raise AssertionError("fota-sim printed no JSON (rc %d):\n%s\n%s" %
                             (p.returncode, out[-2000:], err[-3000:]))
    return p.returncode, j, err


def n_devices(d, pid):
    st, _, j = d.api("GET", "/v1/products/%d/" % pid)
    check(st == 200, "product: %d" % st)
    return j["product"]["devices_total"]


def finish(d, rid, n, timeout):
    r = wait_for(lambda: (lambda x: x if x["state"] != "running" else None)(rollout_get(d, rid)),
                 timeout, "rollout %d ended" % rid, interval=0.2)
    check(r["state"] == "finished" and r["succeeded"] == n and r["failed"] == 0 and
          r["timed_out"] == 0, "rollout: %r" % r)
    return r


def wave_end(d, handle, rid, n, t0):
    """The end of a wave: fota-sim's exit (sim_end: 0, all n devices upgraded), then the
    rollout's (finish). Returns (the rollout, seconds since t0)."""
    rc, j, err = sim_end(handle)
    check(rc == 0 and j["upgraded"] == n, "fota-sim: rc %d %r\n%s" %
          (rc, {k: j.get(k) for k in ("upgraded", "failed", "reasons")}, err[-2000:]))
    r = finish(d, rid, n, 60)
    return r, time.monotonic() - t0


def arduino_wave(n, window, scale=20, checkin=60, timeout=600, log=print):
    d = start_fotad()
    h = None
    try:
        img = ar.write_image(os.path.join(tempdir("img-"), "v2.bin"), "2.0.0", 40000, "dio")
        # the devices check in every checkin / scale real seconds: online for fotad
        p, key = arduino_product(d, "sketches", checkin_interval=max(5, 4 * checkin // scale))
        release(d, p["id"], "2.0.0", img, current=False)
        url = "http://127.0.0.1:%d/v1/arduino/%s/firmware.bin" % (d.http_port, key)
        h = sim(["--server", "127.0.0.1", "--profile", "arduino", "--devices", str(n), "--url",
                 url, "--initial-version", "1.0.0", "--upgrade-to", "2.0.0", "--flash-mode",
                 "dout", "--time-scale", str(scale), "--checkin-interval", str(checkin),
                 "--timeout", str(timeout), "--json"], timeout + 60)
        wait_for(lambda: n_devices(d, p["id"]) >= n, 120, "%d devices registered" % n,
                 interval=0.2)
        t0 = time.monotonic()
        r = rollout_create(d, p["id"], "2.0.0", window=window)
        check(r["total"] == n, "members: %r" % r)
        r, secs = wave_end(d, h, r["id"], n, t0)
        check(d.count_log(r"arduino download .* file=firmware.bin status=200 .*verdict=0") >= n,
              "downloads")
        log("arduino: %d devices, window %d: %.1f s from the rollout to its end, succeeded %d, "
            "failed %d, timed out %d" % (n, window, secs, r["succeeded"], r["failed"],
                                         r["timed_out"]))
        d.stop()
        return {"devices": n, "window": window, "seconds": round(secs, 1),
                "succeeded": r["succeeded"], "failed": r["failed"]}
    finally:
        if h and h[0].poll() is None:
            h[0].kill()
            h[0].communicate()
        d.cleanup()


def tasmota_wave(n, window, scale=20, timeout=600, log=print):
    mq = Mosquitto()
    d = start_fotad(public_url=True)
    h = None
    try:
        tmp = tempdir("img-")
        full = ar.write_image(os.path.join(tmp, "full.bin"), FULL, 200000, "dout")
        mini = ar.write_image(os.path.join(tmp, "mini.bin"), MINIMAL, 64000, "dout")
        p, key = arduino_product(d, "tasmotas", mqtt={"url": mq.url})
        release(d, p["id"], "2.0.0", full, current=False, minimal=mini)
        h = sim(["--server", "127.0.0.1", "--profile", "tasmota", "--devices", str(n),
                 "--mqtt-port", str(mq.port), "--initial-version", "1.0.0(release-tasmota)",
                 "--upgrade-to", "2.0.0", "--image-size", "200000", "--free-space", "131072",
                 "--flash-mode", "dout", "--time-scale", str(scale), "--timeout", str(timeout),
                 "--json"], timeout + 60)

        seen = {}

        def found():
            st, _, j = d.api("GET", "/v1/products/%d/mqtt" % p["id"])
            seen["mqtt"] = j["mqtt"]
            devs = [x for x in j["mqtt"].get("devices", []) if x["device_id"] and
                    x["lwt"] == "Online"]
            return len(devs) >= n
        try:
            wait_for(found, 120, "%d devices found over MQTT" % n, interval=0.2)
        except AssertionError:
            raise
        except Exception:
            raise AssertionError("devices found over MQTT: %r" % seen.get("mqtt"))
        t0 = time.monotonic()
        r = rollout_create(d, p["id"], "2.0.0", window=window)
        check(r["total"] == n and r["waiting"] == n, "members: %r" % r)
        r, secs = wave_end(d, h, r["id"], n, t0)
        st, _, m = d.api("GET", "/v1/products/%d/mqtt" % p["id"])
        m = m["mqtt"]
        check(m["triggered"] == n, "triggered %r" % m["triggered"])
        check(d.count_log(r"file=firmware-minimal.bin status=200") >= n, "every device went "
              "through the minimal build")
        log("tasmota: %d devices over mosquitto, window %d: %.1f s from the rollout to its end "
            "(each through -minimal), succeeded %d, failed %d, confirmed by INFO1 %d" %
            (n, window, secs, r["succeeded"], r["failed"], m["confirmed"]))
        d.stop()
        return {"devices": n, "window": window, "seconds": round(secs, 1),
                "succeeded": r["succeeded"], "failed": r["failed"], "confirmed": m["confirmed"]}
    finally:
        if h and h[0].poll() is None:
            h[0].kill()
            h[0].communicate()
        d.cleanup()
        mq.stop()
