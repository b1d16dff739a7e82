#!/usr/bin/env python3
"""bench/devices.py - benchmark 2: connected devices. fota-sim holds N idle
devices (registered through the API, activated, pinging) on one fotad, as several processes
(at most 9,500 devices each) binding 127.0.0.2.. as source addresses. Two phases:

  scaled  pings every 50 s / SCALE for a while: fotad CPU per ping (µs), its RSS per device
  stock   pings every 50 s (the stock interval) for --hold seconds (5 min): no connection may
          drop; fotad CPU in % of one core; RSS per device again

Memory: fotad's VmRSS (/proc/PID/status) after registration with no device connected (the
idle baseline, SQLite cache warm) and its peak while all N are identified and pinging (sampled
every 5 s over the hold); the difference over N is what one connected device costs fotad in
user space, heap fragmentation included (socket buffers live in the kernel, not in RSS). CPU: utime+stime of fotad from /proc over the measured window.

  python3 bench/devices.py [--devices 19000] [--hold 300] [--scale 10] [--scaled-hold 60]
                           [--bin-dir build/bin] [--no-append] [--smoke]

The open-file soft limit is raised to the hard limit inside the script (fotad and the
simulators inherit it); fotad runs with device_max_per_addr above N. --smoke: 40 devices for
a few seconds, no append, no speed asserted."""
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
import fleetlib as fl  # noqa: E402

GOAL_MEM = 2048       # bytes per device above the idle baseline
GOAL_CPU = 10.0       # % of one core at the stock interval


def phase(name, d, keys, tmp, sim, scale, hold, log):
    """Runs one hold phase; returns a dict of measurements."""
    n = len(keys)
    port = d.ports["device"]
    base_rss = fl.rss_kib(d.proc.pid)
    t0 = time.monotonic()
    procs = fl.start_sims(sim, d, keys, tmp, ["--profile", "nonos", "--initial-version", fl.V1,
                                               "--hold", str(hold), "--time-scale", str(scale),
                                               "--timeout", str(hold + 600)])
    try:
        got = fl.wait_until(lambda: fl.established(port) >= n, 300, 0.5)
        t_conn = time.monotonic() - t0
        if not got:
            log("%s: only %d of %d connected after 300 s" % (name, fl.established(port), n))
        time.sleep(min(3.0, hold / 10.0))
        rss = fl.rss_kib(d.proc.pid)   # the peak over the window is kept (pings allocate too)
        window = max(1.0, hold - (time.monotonic() - t0) - 5.0)
        c0, w0 = benchlib.cpu_seconds(d.proc.pid), time.monotonic()
        low = n
        while time.monotonic() - w0 < window:   # watch for drops while we measure
            time.sleep(min(5.0, window))
            low = min(low, fl.established(port))
            rss = max(rss, fl.rss_kib(d.proc.pid))
        c1, w1 = benchlib.cpu_seconds(d.proc.pid), time.monotonic()
        res = fl.wait_sims(procs, hold + 600)
    finally:
        fl.kill_sims(procs)
    interval = 50.0 / scale
    pings = n * (w1 - w0) / interval
    cpu = c1 - c0
    ok = [r for r in res if r]
    out = {
        "phase": name, "devices": n, "scale": scale, "interval_s": interval, "hold_s": hold,
        "connect_s": round(t_conn, 1), "connected_min": low,
        "rss_base_kib": base_rss, "rss_kib": rss,
        "bytes_per_device": round((rss - base_rss) * 1024.0 / max(1, n), 1),
        "cpu_s": round(cpu, 2), "window_s": round(w1 - w0, 1),
        "cpu_pct_one_core": round(100.0 * cpu / max(1e-9, w1 - w0), 2),
        "pings_per_s": round(n / interval, 1),
        "us_per_ping": round(cpu * 1e6 / max(1.0, pings), 2),
        "sim_processes": len(res), "sim_ok": len(ok),
        "channel_drops": sum(r.get("channel_drops", 0) for r in ok),
        "connected_at_end": sum(r.get("connected_at_end", 0) for r in ok),
        "sim_memory_bytes": sum(r.get("memory_bytes", 0) for r in ok),
    }
    log("%s: %r" % (name, out))
    # the sims are gone: wait for fotad to see every connection closed
    fl.wait_until(lambda: fl.established(port) == 0, 60, 0.5)
    return out


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--devices", type=int, default=19000)
    ap.add_argument("--hold", type=int, default=300)
    ap.add_argument("--scale", type=float, default=10.0)
    ap.add_argument("--scaled-hold", type=int, default=60)
    a = ap.parse_args()
    if a.smoke:
        a.devices, a.hold, a.scaled_hold, a.no_append = 40, 4, 4, True
    log = benchlib.Log()
    benchlib.raise_limits(log)
    ft = benchlib.use_bin_dir(a.bin_dir)
    sim = ft.bin_path("fota-sim")
    with tempfile.TemporaryDirectory(prefix="fota-bench-devices-") as tmp:
        d = benchlib.start_quiet_fotad(ft, tmp, device_max_per_addr=a.devices + 100)
        try:
            p = d.create_product(name="bench-fleet", flash_map=2, serial="45772")
            keys = fl.register(d, p["id"], a.devices, log=log)
            time.sleep(1.0)
            log("fotad pid %d, device port %d, idle RSS %d KiB" % (d.proc.pid, d.ports["device"],
                                                                  fl.rss_kib(d.proc.pid)))
            # stock first: its RSS growth is over the idle baseline (the scaled phase
            # reuses memory the first one freed, so its growth is not a per-device figure)
            stock = phase("stock", d, keys, tmp, sim, 1.0, a.hold, log)
            scaled = phase("scaled", d, keys, tmp, sim, a.scale, a.scaled_hold, log)
            d.stop()
        finally:
            d.cleanup()
    n = a.devices
    held = stock["channel_drops"] == 0 and stock["connected_min"] >= n and \
        stock["connected_at_end"] == n
    mem = stock["bytes_per_device"]
    us = scaled["us_per_ping"]
    summary = "\n".join([
        "Benchmark 2, connected devices: %d fota-sim devices (%d processes, source addresses "
        "127.0.0.2-5) on one fotad; limits raised inside the script (open files to the hard "
        "limit, device_max_per_addr %d)." % (n, stock["sim_processes"], n + 100), "",
        "| measure | goal | measured | met |", "|---|---|---|---|",
        "| held %d s at the stock 50 s ping, no drop | 0 drops, %d connected | %d drops, "
        "min %d connected, %d at the end | %s |" % (
            a.hold, n, stock["channel_drops"], stock["connected_min"],
            stock["connected_at_end"], "yes" if held else "NO"),
        "| fotad memory per device above idle (VmRSS) | ≤ %d B | %.0f B | %s |" % (
            GOAL_MEM, mem, "yes" if mem <= GOAL_MEM else "NO"),
        "| fotad CPU at the stock interval | < %.0f%% of one core | %.2f%% (%.0f pings/s) | %s |" % (
            GOAL_CPU, stock["cpu_pct_one_core"], stock["pings_per_s"],
            "yes" if stock["cpu_pct_one_core"] < GOAL_CPU else "NO"),
        "| CPU per ping (interval 50 s / %g = %.1f s) | — | %.1f µs (%.2f%% of a core at %.0f "
        "pings/s) | — |" % (a.scale, scaled["interval_s"], us, scaled["cpu_pct_one_core"],
                            scaled["pings_per_s"]),
        "", "Extrapolation (linear in devices, from the figures above):", "",
        "| devices | fotad memory | pings/s at 50 s | CPU for pings |", "|---|---|---|---|"] + [
        "| %s | %.0f MiB | %.0f | %.1f%% of one core |" % (
            "{:,}".format(x), mem * x / 2 ** 20, x / 50.0, us * x / 50.0 / 1e4)
        for x in (n, 100000, 1000000)])
    log(summary)
    print("RESULT devices held=%d bytes_per_device=%.0f cpu_pct=%.2f us_per_ping=%.2f" % (
        1 if held else 0, mem, stock["cpu_pct_one_core"], us))
    if not a.no_append:
        benchlib.append_doc("Connected devices (benchmark 2)", summary, "\n".join(log.lines))
    return 0 if held or a.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
