#!/usr/bin/env python3
"""bench/fanout.py - benchmark 3: command fan-out. N fota-sim devices are online
(stock 50 s pings; --ack-only: they answer a sys_upgrade push with their D4 acknowledgement
and never download, so only the fan-out is measured), then one rollout
POST /v1/rollouts/ {"version", "window": N, "filter": {"online": true}} pushes
sys_upgrade to all of them. Measured by fotad itself (GET /v1/rollouts/ID/ elapsed_ms): the time
from the rollout's creation until every push was written (delivered) and until every device's
D4 arrived (acked); also the HTTP reply time of the POST (answered at once, 202).

  python3 bench/fanout.py [--devices 19000] [--bin-dir build/bin] [--no-append] [--smoke]

Limits raised inside the script as in bench/devices.py. --smoke: 30 devices, no append."""
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
import fleetlib as fl  # noqa: E402

GOAL_MS = 500.0


def online_count(d, pid):
    s, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
    return sum(1 for x in j.get("devices", []) if x.get("online")) if s == 200 else 0


def perf_ctl(fifo, cmd):
    if fifo:
        with open(fifo, "w") as f:
            f.write(cmd + "\n")


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--devices", type=int, default=19000)
    ap.add_argument("--pause", type=float, default=0.0,
                    help="seconds to wait before the POST (to attach a profiler to fotad)")
    ap.add_argument("--hold", type=float, default=0.0,
                    help="keep the simulated devices connected this many seconds from their start "
                    "(so the CPU figure with the row writes holds no disconnects)")
    ap.add_argument("--perf-ctl", metavar="FIFO",
                    help="perf record --control fifo: 'enable' is written to FIFO just before "
                    "the POST, 'disable' once every D4 arrived (profiles the fan-out only)")
    a = ap.parse_args()
    if a.smoke:
        a.devices, a.no_append = 30, True
    n = a.devices
    log = benchlib.Log()
    benchlib.raise_limits(log)
    ft = benchlib.use_bin_dir(a.bin_dir)
    sim = ft.bin_path("fota-sim")
    with tempfile.TemporaryDirectory(prefix="fota-bench-fanout-") as tmp:
        d = benchlib.start_quiet_fotad(ft, tmp, device_max_per_addr=n + 100)
        procs = []
        try:
            import sim_standin as st
            pid = st.stock_product(d, tmp, fl.V2, name="bench-fanout")
            keys = fl.register(d, pid, n, log=log)
            t0 = time.monotonic()
            procs = fl.start_sims(sim, d, keys, tmp, [
                "--profile", "nonos", "--initial-version", fl.V1, "--upgrade-to", fl.V2,
                "--await-push", "--ack-only", "--timeout", "900"] +
                (["--hold", "%g" % a.hold] if a.hold > 0 else []))
            if not fl.wait_until(lambda: online_count(d, pid) >= n, 300, 2.0):
                raise SystemExit("only %d of %d devices online" % (online_count(d, pid), n))
            log("%d devices online after %.1f s (fotad pid %d)" % (n, time.monotonic() - t0,
                                                                  d.proc.pid))
            if a.pause > 0:
                time.sleep(a.pause)
            c0 = benchlib.cpu_seconds(d.proc.pid)
            r0 = benchlib.run_ns(d.proc.pid)
            perf_ctl(a.perf_ctl, "enable")
            tp = time.monotonic()
            s, _, j = d.api("POST", "/v1/rollouts/", {"product_id": pid, "version": fl.V2, "window": max(1, n), "filter": {"online": True}})
            reply_ms = (time.monotonic() - tp) * 1e3
            if s != 202:
                raise SystemExit("bulk upgrade refused: %d %r" % (s, j))
            jid = j["rollout"]["id"]
            log("POST answered %d in %.1f ms: total %d" % (s, reply_ms, j["rollout"]["total"]))

            def acked():
                s2, _, j2 = d.api("GET", "/v1/rollouts/%d/" % jid)
                return j2["rollout"] if j2["rollout"]["acked"] + j2["rollout"]["failed"] >= n else None
            job = fl.wait_until(acked, 120, 0.02)
            c1 = benchlib.cpu_seconds(d.proc.pid)
            r1 = benchlib.run_ns(d.proc.pid)
            perf_ctl(a.perf_ctl, "disable")
            time.sleep(0.5)  # the job's row insert and state flush (200 ms ticks)
            r2 = benchlib.run_ns(d.proc.pid)
            s, _, j = d.api("GET", "/v1/rollouts/%d/" % jid)
            job = j["rollout"]
            log("job: %r" % job)
            res = fl.wait_sims(procs, 120)
            log("sims: %r" % res)
            d.stop()
        finally:
            fl.kill_sims(procs)
            d.cleanup()
    ms = job["elapsed_ms"]
    acked_ms = ms["acked"] if ms["acked"] is not None else float("nan")
    ok = job["acked"] == n and job["failed"] == 0
    met = ok and acked_ms < GOAL_MS
    summary = "\n".join([
        "Benchmark 3, command fan-out: one rollout (POST /v1/rollouts/, window "
        "%d) to %d online fota-sim devices (--ack-only: they acknowledge and do not download). "
        "Times from fotad's rollout (GET /v1/rollouts/ID/ elapsed_ms, from the rollout's creation)." % (n, n),
        "", "| measure | goal | measured | met |", "|---|---|---|---|",
        "| POST answered (202) | at once | %.1f ms | — |" % reply_ms,
        "| all %d pushes written (delivered) | — | %.1f ms | — |" % (n, ms["delivered"] if ms["delivered"] is not None else -1),
        "| all %d D4 acknowledgements (acked) | < %.0f ms | %.1f ms (%d acked, %d failed) | %s |" % (
            n, GOAL_MS, acked_ms, job["acked"], job["failed"], "yes" if met else "NO"),
        "| 100,000 devices (linear extrapolation) | < 2000 ms | %.0f ms | %s |" % (
            acked_ms * 100000.0 / n, "yes" if acked_ms * 100000.0 / n < 2000 else "NO"),
        "| fotad CPU during the fan-out | — | %.2f s | — |" % (c1 - c0)])
    log(summary)
    if None not in (r0, r1, r2):
        log("fotad CPU from POST to the last D4 (schedstat, all threads): %.3f s = %.1f us per "
            "device; with the row writes (0.5 s later): %.3f s = %.1f us per device" % (
                (r1 - r0) / 1e9, (r1 - r0) / 1e3 / max(1, n), (r2 - r0) / 1e9,
                (r2 - r0) / 1e3 / max(1, n)))
    print("RESULT fanout devices=%d delivered_ms=%.1f acked_ms=%.1f" % (
        n, ms["delivered"] if ms["delivered"] is not None else -1, acked_ms))
    if not a.no_append:
        benchlib.append_doc("Command fan-out (benchmark 3)", summary, "\n".join(log.lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
