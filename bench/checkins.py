#!/usr/bin/env python3
"""bench/checkins.py - benchmark 5: sustained device check-ins on one fotad with
SQLite. fota-pingload (bench/pingload.c) opens --conns device-channel connections, one
device each (identify, D2), and sends D3 pings back to back (the next as soon as the reply
arrives), every --activate-every-th request an activation (D1) instead. Reports pings/s and
activations/s, fotad's CPU (utime+stime from /proc, % of all cores and per ping), and the
fsync/fdatasync calls fotad made during a few seconds of the run (strace -f -c), to show that
pings are not written one by one (presence is batched).

  python3 bench/checkins.py [--conns 1000] [--seconds 10] [--activate-every 100]
                            [--bin-dir build/bin] [--no-append] [--smoke]

Builds nothing (fota-pingload comes from the same bin dir as fotad). Raises the open-file
limit to the hard limit and, as root, widens the ephemeral port range. fotad runs with
device_max_per_addr raised to --conns (all connections come from 127.0.0.1), no per-device
message rate (device_msg_rate 0: each connection pings back to back, far above a device's
limit; the benchmark measures the check-in path, not the limit) and log level warn.
--smoke: 20 connections for 1 s, no strace, no append. Goal: >= 50,000 pings/s, no fsync per
ping."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

GOAL_PINGS = 50000


def create_devices(d, pid, n, threads=8):
    keys = [None] * n

    def work(k):
        for i in range(k, n, threads):
            keys[i] = d.create_device(pid, name="ping-%d" % i)["master_device_key"]
    ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    if any(k is None for k in keys):
        raise SystemExit("device creation failed")
    return keys


def strace_fsyncs(pid, seconds):
    """(calls, available) of fsync+fdatasync by pid's threads over `seconds`."""
    if not shutil.which("strace"):
        raise SystemExit("strace is not installed (scripts/deps.sh --bench): the fsync count is "
                         "one of this benchmark's goals")
    p = subprocess.Popen(["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-p", str(pid)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(seconds)  # the measurement window itself
    p.send_signal(signal.SIGINT)
    try:
        _, err = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        return None
    total = 0
    for m in re.finditer(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(fsync|fdatasync)\s*$",
                         err, re.M):
        total += int(m.group(1))
    return total


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--activate-every", type=int, default=100)
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    ap.add_argument("--strace-seconds", type=int, default=3)
    ap.add_argument("--conf", action="append", default=[], help="fotad config KEY=VALUE")
    a = ap.parse_args()
    if a.smoke:
        a.conns, a.seconds, a.strace_seconds, a.no_append = 20, 1, 0, True
    ft = benchlib.use_bin_dir(a.bin_dir)
    load = os.path.join(ft.BIN_DIR, "fota-pingload")
    if not os.access(load, os.X_OK):
        raise SystemExit("%s is not built (cmake --build, target fota-pingload)" % load)
    say = benchlib.Log()
    limits = benchlib.raise_limits(say)
    tmp = tempfile.mkdtemp(prefix="bench-checkins-")
    d = None
    try:
        conf = {"device_max_per_addr": str(max(256, a.conns)), "device_msg_rate": "0"}
        conf.update(dict(kv.split("=", 1) for kv in a.conf))
        d = benchlib.start_quiet_fotad(ft, tmp, **conf)
        prod = d.create_product("pings")
        t0 = time.monotonic()
        keys = create_devices(d, prod["id"], a.conns)
        say("%d devices created in %.1f s" % (len(keys), time.monotonic() - t0))
        kf = os.path.join(tmp, "keys.txt")
        with open(kf, "w") as f:
            f.write("\n".join(keys) + "\n")
        pid = d.proc.pid
        cmd = [load, "--port", str(d.ports["device"]), "--keys", kf, "--conns", str(a.conns),
               "--seconds", str(a.seconds), "--activate-every", str(a.activate_every),
               "--threads", str(a.threads)]
        say("$ " + " ".join(os.path.basename(x) if x == load else x for x in cmd))
        c0, w0 = benchlib.cpu_seconds(pid), time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        fs = None
        if a.strace_seconds:
            time.sleep(min(2.0, a.seconds / 3))  # into the steady state (identify done)
            fs = strace_fsyncs(pid, min(a.strace_seconds, max(1, a.seconds - 3)))
        so, se = p.communicate(timeout=a.seconds + 120)
        cpu, wall = benchlib.cpu_seconds(pid) - c0, time.monotonic() - w0
        say(so.strip())
        if se.strip():
            say(se.strip())
        m = dict(re.findall(r"(\w+)=([\d.]+)", so))
        if p.returncode != 0 or "pings_per_s" not in m:
            raise SystemExit("fota-pingload failed (%d)" % p.returncode)
        pps, aps = float(m["pings_per_s"]), float(m["activations_per_s"])
        ncpu = os.cpu_count() or 1
        reqs = float(m["pings"]) + float(m["activations"])
        pct = 100.0 * cpu / (wall * ncpu)
        say()
        say("| connections | pings/s | activations/s | fotad CPU (%% of %d cores) | fotad CPU "
            "per request | fsync+fdatasync in %s s |" % (ncpu, a.strace_seconds or "-"))
        say("|---|---|---|---|---|---|")
        say("| %d | %.0f | %.0f | %.0f%% | %.1f µs | %s |" %
            (a.conns, pps, aps, pct, 1e6 * cpu / reqs if reqs else 0.0,
             "not measured" if fs is None else "%d (%.0f pings in that window)" %
             (fs, pps * a.strace_seconds)))
        say()
        met = pps >= GOAL_PINGS and (fs is None or fs < pps * a.strace_seconds / 100)
        say("goal: >= %d pings/s handled, no fsync per ping: %s" %
            (GOAL_PINGS, "met" if met else "NOT met"))
        say("RESULT checkins pings_per_s=%.0f activations_per_s=%.0f fsyncs=%s" %
            (pps, aps, fs))
        if not a.no_append:
            summary = ("Benchmark 5, check-ins: %d device connections (one device each, "
                       "identified), D3 pings back to back, every %dth request a D1 "
                       "activation; %d s; SQLite store; %s.\n\n%s" %
                       (a.conns, a.activate_every, a.seconds, limits, "\n".join(
                           line for line in say.lines if line.startswith("|") or
                           line.startswith("goal"))))
            say("appended to %s" % benchlib.append_doc("Check-ins (benchmark 5)", summary,
                                                        "\n".join(say.lines)))
        d.stop()
        return 0
    finally:
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
