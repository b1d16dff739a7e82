#!/usr/bin/env python3
"""bench/pullwave.py - benchmark 7: rollouts of pull-based devices, the sizes of the Arduino
issue's "done when": 1,000 fota-sim `--profile arduino` devices (ESPhttpUpdate sketches
checking in on their own schedule) rolled out from 1.0.0 to 2.0.0 with a window of 100, and 200
`--profile tasmota` devices on Debian's mosquitto upgraded by one rollout that fotad triggers
over MQTT (OtaUrl, Upgrade 1; window 50), each through the -minimal two-step because the full
build does not fit beside the running one. The fleets and their checks are
tests/integration/pullfleet.py's (every device upgraded, no failure).

Reported: seconds from the rollout's creation to its end, successes and failures, per fleet.
Device timers run --time-scale times faster (the sketches' check-in interval of 60 s, Tasmota's
once-a-second OTA countdown and its restart), so the figure is fotad, the broker and the
transfers, not simulated waiting.

  python3 bench/pullwave.py [--arduino 1000] [--window 100] [--tasmota 200]
                            [--tasmota-window 50] [--time-scale 20] [--bin-dir build/bin]
                            [--no-append] [--smoke]

--smoke: 20 and 5 devices, windows 5 and 2, no result file."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--arduino", type=int, default=1000)
    ap.add_argument("--window", type=int, default=100)
    ap.add_argument("--tasmota", type=int, default=200)
    ap.add_argument("--tasmota-window", type=int, default=50)
    ap.add_argument("--time-scale", type=float, default=20)
    a = ap.parse_args()
    if a.smoke:
        a.arduino, a.window, a.tasmota, a.tasmota_window, a.no_append = 20, 5, 5, 2, True
    log = benchlib.Log()
    benchlib.raise_limits(log)
    benchlib.use_bin_dir(a.bin_dir)
    import pullfleet  # noqa: E402  (after the harness knows its binaries)
    scale = int(a.time_scale)
    ard = pullfleet.arduino_wave(a.arduino, a.window, scale=scale, log=log)
    tas = pullfleet.tasmota_wave(a.tasmota, a.tasmota_window, scale=scale, log=log)
    summary = "\n".join([
        "Benchmark 7, rollouts of pull-based devices: fota-sim's Arduino-core profiles against "
        "fotad, device timers x%d." % scale, "",
        "| fleet | devices | window | rollout created to finished | succeeded | failed |",
        "|---|---|---|---|---|---|",
        "| ESPhttpUpdate sketches (check-in every 60 s / %d), 1.0.0 to 2.0.0 | %d | %d | "
        "%.1f s | %d | %d |" % (scale, ard["devices"], ard["window"], ard["seconds"],
                               ard["succeeded"], ard["failed"]),
        "| Tasmota over mosquitto (OtaUrl + Upgrade 1 from fotad; -100, minimal build, full "
        "build; INFO1 confirms) | %d | %d | %.1f s | %d | %d |" % (
            tas["devices"], tas["window"], tas["seconds"], tas["succeeded"], tas["failed"])])
    log(summary)
    print("RESULT pullwave arduino=%d arduino_s=%.1f tasmota=%d tasmota_s=%.1f failures=%d" % (
        ard["devices"], ard["seconds"], tas["devices"], tas["seconds"],
        ard["failed"] + tas["failed"]))
    if not a.no_append:
        benchlib.append_doc("Pull-based rollouts (benchmark 7)", summary, "\n".join(log.lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
