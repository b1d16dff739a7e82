#!/usr/bin/env python3
"""bench/wave.py - benchmark 4: an upgrade wave. N nonos-profile fota-sim devices
(flash map 6) are online on V1; one rollout (POST /v1/rollouts/ with reboot:
true and a window of K devices upgrading at once) takes every one of them end to end: push,
HEAD, GET of a 512 KiB image, CRC, D7 report, sys_reboot from fotad, boot of the new image.

Reported: total time (first push to the last device booted on V2, from fota-sim), per-device
p50/p99 (its push to its boot on V2; the window's queueing is not in it), failures, and the
ratio of the total to the transfer lower bound = N x image bytes / fotad's download
throughput. The throughput is measured here, in the same run, with benchmark 1's method (wrk,
100 connections, the same ROM endpoint and image, fotad alone) just before the wave.

  python3 bench/wave.py [--devices 10000] [--window 256] [--time-scale 5]
                        [--stores sqlite|postgresql|sqlite,postgresql] [--compare BIN_DIR]
                        [--rounds N] [--bin-dir build/bin] [--no-append] [--smoke]
                        [--segment BYTES] [--sim-log DIR]

Also reported: fotad's CPU per upgraded device (utime + stime from /proc, per thread too)
against its CPU per plain download in the same run (goal ≤ 2×) and, on PostgreSQL (a server
of the script's own, tests/pg/pg_server.sh, fsync off as in the tests), the server's CPU per
device. --compare runs another build's fotad in the same rounds, alternating which goes first.

Device timers run --time-scale times faster (reboot delays, pings; the upgrade watchdog is
120 s / scale), so the figure is fotad and the transfers, not simulated waiting. Limits are
raised inside the script as in bench/devices.py. --smoke: 12 devices, window 4, no append."""
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
import fleetlib as fl  # noqa: E402

GOAL_RATIO = 1.5
ROM_PATH = "/v1/device/rom/?action=download_rom&version=%s&filename=user2.bin"


def throughput(d, key, version, seconds, log):
    """fotad's ROM download throughput in bytes/s (wrk -c 100, like benchmark 1)."""
    import urllib.parse
    url = "http://127.0.0.1:%d%s" % (d.http_port, ROM_PATH % urllib.parse.quote(version))
    args = ["-t", "2", "-c", "100", "-d", "%ds" % seconds, "--timeout", "10s",
            "-H", "Authorization: token " + key, url]
    c0 = benchlib.cpu_seconds(d.proc.pid)
    text = benchlib.wrk(args, seconds)
    c1 = benchlib.cpu_seconds(d.proc.pid)
    rps, bps, n, bad, errs = benchlib.parse_wrk(text)
    cpu_us = 1e6 * (c1 - c0) / max(n, 1)
    log("wrk -c 100 -d %ds: %.0f req/s, %.1f MB/s, non-2xx %d, errors %d; fotad CPU %.1f us "
        "per download" % (seconds, rps, bps / 1e6, bad, errs, cpu_us))
    return bps, cpu_us


def postgres_cpu(pg):
    """CPU seconds of every process of pg's server (they sit in its data dir)."""
    want = os.path.join(pg.dir, "data")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/cwd" % pid) == want:
                total += benchlib.cpu_seconds(int(pid))
        except OSError:
            pass   # gone meanwhile, or not ours to read
    return total


def thread_cpu(pid):
    """{tid: utime + stime seconds} of every thread of pid, from /proc/PID/task."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return out


def thread_names(pid):
    """{tid: name} of every thread of pid (/proc/PID/task/TID/comm)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                out[int(tid)] = "main" if int(tid) == pid else f.read().strip()
        except OSError:
            pass
    return out


def one_wave(a, ft, store, pg, tag, log):
    """One wave on a fresh fotad (store "sqlite" or "postgresql" on pg, a database of its own
    named after tag): the plain download's CPU first, then the rollout. Returns its figures."""
    n = a.devices
    sim = ft.bin_path("fota-sim")
    with tempfile.TemporaryDirectory(prefix="fota-bench-wave-") as tmp:
        extra = ["--http-timeout", "60"]
        if store == "postgresql":
            db = "wave_" + tag
            pg.sql("CREATE DATABASE %s" % db)
            extra += ["--store", "postgresql:" + pg.dsn(db)]
        d = benchlib.start_quiet_fotad(ft, tmp, device_max_per_addr=n + 100, extra=extra)
        procs = []
        try:
            p = d.create_product(name="bench-wave", flash_map=6, serial="45772")
            pid = p["id"]
            files = [("user%d.bin" % s, ft.make_image(s, 6, fl.V2, a.size)) for s in (1, 2)]
            d.upload_release(pid, fl.V2, files=files, flash_map=6)
            img = len(files[1][1])
            keys = fl.register(d, pid, n, log=log)
            bps, dl_cpu_us = throughput(d, keys[0], fl.V2, 2 if a.smoke else a.wrk_seconds, log)
            # two simulator processes (one per core) from 100 devices: each device's
            # segment-by-segment flash writes, read-backs and CRC are simulator CPU
            # (devices alternate between them: the job pushes in device-id order)
            per_proc = (n + 1) // 2 if n >= 100 else max(n, 1)
            if per_proc < n:
                keys = keys[0::2] + keys[1::2]
            seg = ["--segment", str(a.segment)] if a.segment else []
            procs = fl.start_sims(sim, d, keys, tmp, [
                "--profile", "nonos", "--map", "6", "--initial-version", fl.V1,
                "--upgrade-to", fl.V2, "--await-push", "--time-scale", str(a.time_scale),
                "--timeout", "3600"] + seg, per_proc=per_proc)
            if not fl.wait_until(lambda: fl.established(d.ports["device"]) >= n, 300, 0.5):
                raise SystemExit("only %d of %d devices connected" % (
                    fl.established(d.ports["device"]), n))
            # identified: the rollout selects the devices the store says are online
            def online():
                try:
                    st, _, ov = d.api("GET", "/v1/products/%d/overview" % pid)
                except OSError:
                    return False   # a loop busy with the connect storm: asked again
                return st == 200 and ov["overview"]["online"] >= n
            if not fl.wait_until(online, 300, 0.5):
                raise SystemExit("fewer than %d devices online after 300 s" % n)
            perf = None
            if a.perf and os.environ.get("FOTA_BENCH_STRACE"):
                perf = subprocess.Popen(["strace", "-c", "-f", "-o", a.perf, "-p", str(d.proc.pid)])
            elif a.perf:
                perf = subprocess.Popen(["perf", "record", "-q", "-F", "999", "--call-graph", "dwarf,16384", "-o", a.perf,
                                         "-p", str(d.proc.pid)])
            names = thread_names(d.proc.pid)
            c0 = benchlib.cpu_seconds(d.proc.pid)
            t0 = thread_cpu(d.proc.pid)
            p0 = postgres_cpu(pg) if store == "postgresql" else 0.0
            s, _, j = d.api("POST", "/v1/rollouts/", {"product_id": pid, "version": fl.V2,
                                                      "reboot": True, "window": a.window,
                                                      "filter": {"online": True}})
            if s != 202:
                raise SystemExit("bulk upgrade refused: %d %r" % (s, j))
            jid = j["rollout"]["id"]
            log("job %d: total %d, queued %d, window %d" % (jid, j["rollout"]["total"],
                                                           j["rollout"]["queued"], a.window))
            res = fl.wait_sims(procs, 3600)
            if perf:
                perf.send_signal(2)
                perf.wait(60)
            if a.sim_log:
                import shutil
                os.makedirs(a.sim_log, exist_ok=True)
                for i in range(len(procs)):
                    shutil.copy(os.path.join(tmp, "sim-%d.err" % i), a.sim_log)
                with open(os.path.join(a.sim_log, "fotad-%s-%s.log" % (tag, store)), "w") as f:
                    f.write(d.log_text())
            c1 = benchlib.cpu_seconds(d.proc.pid)
            t1 = thread_cpu(d.proc.pid)
            p1 = postgres_cpu(pg) if store == "postgresql" else 0.0
            names.update(thread_names(d.proc.pid))
            s, _, j = d.api("GET", "/v1/rollouts/%d/" % jid)
            job = j["rollout"]
            log("job: %r" % job)
            log("sim: %r" % res)
            d.stop()
        finally:
            fl.kill_sims(procs)
            d.cleanup()
    ok = [x for x in res if x]
    ups = [x.get("upgrade") or {} for x in ok]
    # each process times from its own start; they start within milliseconds of each other
    first = min([u.get("first_push_s", 0) for u in ups if u.get("first_push_s")] or [0])
    last = max([u.get("last_done_s", 0) for u in ups] or [0])
    total = max(0.0, last - first)
    up = {"p50_ms": sum(u.get("p50_ms", 0) for u in ups) / max(1, len(ups)),
          "p99_ms": max([u.get("p99_ms", 0) for u in ups] or [0]),
          "max_ms": max([u.get("max_ms", 0) for u in ups] or [0])}
    upgraded = sum(x.get("upgraded", 0) for x in ok)
    # fotad per thread: the main thread runs the device channel (pushes, D4/D7, identify
    # and its store writes) besides one HTTP loop; the busiest thread bounds the wave
    threads = sorted(((t1[k] - t0.get(k, 0.0), names.get(k, "?")) for k in t1), reverse=True)
    bound = n * img / bps if bps else float("nan")
    r = {"store": store, "n": n, "img": img, "bps": bps, "bound": bound, "total": total,
         "ratio": total / bound if bound else float("nan"), "up": up, "job": job,
         "upgraded": upgraded, "procs": len(res),
         "failures": job["failed"] + job["timed_out"] + (n - upgraded),
         "cpu": c1 - c0, "threads": threads, "dl_cpu_us": dl_cpu_us,
         "dev_cpu_us": 1e6 * (c1 - c0) / max(n, 1), "pg_cpu_us": 1e6 * (p1 - p0) / max(n, 1),
         "sim_cpu": sum(x.get("upgrade_cpu_s", 0.0) for x in ok)}   # from each one's first push
    r["x"] = r["dev_cpu_us"] / max(dl_cpu_us, 1e-9)
    log("RESULT wave bin=%s store=%s devices=%d total_s=%.2f ratio=%.2f p50_ms=%.0f "
        "p99_ms=%.0f failures=%d sim_cpu_ms_per_device=%.2f fotad_cpu_us_per_device=%.0f "
        "download_cpu_us=%.0f x=%.2f pg_cpu_us_per_device=%.0f threads=%s" % (
            tag, store, n, total, r["ratio"], up["p50_ms"], up["p99_ms"], r["failures"],
            1e3 * r["sim_cpu"] / max(n, 1), r["dev_cpu_us"], dl_cpu_us, r["x"], r["pg_cpu_us"],
            ",".join("%s:%.2f" % (nm, c) for c, nm in threads[:4])))
    return r


def summary_of(r, a):
    n, img, bps = r["n"], r["img"], r["bps"]
    job, up = r["job"], r["up"]
    total = r["total"]
    pg = (" PostgreSQL %.0f µs per device." % r["pg_cpu_us"]) if r["store"] == "postgresql" else ""
    return "\n".join([
        "Benchmark 4, upgrade wave: %d nonos fota-sim devices (%d process(es), flash map 6, "
        "device timers x%g) upgraded end to end by one rollout (reboot: true, window %d: at "
        "most %d devices between push and D7 at once); image %d bytes; %s store. Lower bound: "
        "%d x %d bytes / %.1f MB/s (fotad's ROM download throughput, wrk -c 100, measured in "
        "this run with benchmark 1's method)." % (
            n, r["procs"], a.time_scale, a.window, a.window, img,
            "SQLite" if r["store"] == "sqlite" else "PostgreSQL", n, img, bps / 1e6), "",
        "| measure | goal | measured | met |", "|---|---|---|---|",
        "| total (first push to last device on V2) | ≤ %.1f× lower bound (%.2f s) | %.2f s = "
        "%.2f× | %s |" % (GOAL_RATIO, r["bound"], total, r["ratio"],
                          "yes" if r["ratio"] <= GOAL_RATIO else "NO"),
        "| failures | 0 | %d (job failed %d, timed out %d; sim upgraded %d of %d) | %s |" % (
            r["failures"], job["failed"], job["timed_out"], r["upgraded"], n,
            "yes" if r["failures"] == 0 else "NO"),
        "| per device, push to booted on V2 (p50: mean of the processes' medians; p99: the "
        "larger of theirs) | — | p50 %.0f ms, p99 %.0f ms, max %.0f ms | — |" % (
            up.get("p50_ms", 0), up.get("p99_ms", 0), up.get("max_ms", 0)),
        "| all D7 reports (fotad's rollout) | — | %.1f s after the job started | — |" % (
            (job["elapsed_ms"]["finished"] or 0) / 1e3),
        "| fotad CPU over the wave | — | %.1f s (%.0f%% of one core); per thread, busiest "
        "first: %s s | — |" % (r["cpu"], 100.0 * r["cpu"] / max(total, 1e-9),
                              " / ".join("%s %.2f" % (nm, c) for c, nm in r["threads"][:4])),
        "| fotad CPU per upgraded device (push, HEAD, GET paced by the device, D7, reboot, "
        "reconnect) vs per plain download of the image (wrk, above) | ≤ 2× | %.0f µs vs %.0f µs "
        "= %.1f×.%s | %s |" % (r["dev_cpu_us"], r["dl_cpu_us"], r["x"], pg,
                               "yes" if r["x"] <= 2.0 else "NO"),
        "| fota-sim CPU over the wave (all processes, from their first push) | — | %.1f s "
        "(%.2f ms per device, %.0f%% of one core) | — |" % (
            r["sim_cpu"], 1e3 * r["sim_cpu"] / max(n, 1), 100.0 * r["sim_cpu"] / max(total, 1e-9))])


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--devices", type=int, default=10000)
    ap.add_argument("--window", type=int, default=256)
    ap.add_argument("--time-scale", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=524288)
    ap.add_argument("--stores", default="sqlite", help="sqlite, postgresql (a server of the "
                    "script's own, tests/pg/pg_server.sh) or both, comma-separated")
    ap.add_argument("--compare", help="another build's bin dir: each round runs both builds, "
                    "alternating, and the comparison is printed")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--wrk-seconds", type=int, default=8)
    ap.add_argument("--segment", type=int, help="fota-sim --segment: download bytes per receive "
                    "callback (default: the simulator's 1460, one TCP segment)")
    ap.add_argument("--perf", help="record fotad with perf(1) over the wave only (from the POST "
                    "to the last device), into this file: perf report -i FILE --sort pid,sym; with "
                    "FOTA_BENCH_STRACE=1 in the environment, strace -c's syscall counts instead")
    ap.add_argument("--sim-log", help="copy the simulators' stderr and fotad's log here "
                    "(FOTASIM_DEBUG=1 in the environment: timestamped device events)")
    a = ap.parse_args()
    if a.smoke:
        a.devices, a.window, a.no_append = 12, 4, True
    stores = a.stores.split(",")
    log = benchlib.Log()
    benchlib.raise_limits(log)
    ft = benchlib.use_bin_dir(a.bin_dir)
    bins = [("new", ft.BIN_DIR)]
    if a.compare:
        bins.append(("old", os.path.abspath(a.compare)))
    pg = None
    if "postgresql" in stores:
        from pg_util import PgServer   # tests/integration, on the path once use_bin_dir ran
        pg = PgServer()
    out = []
    try:
        for rnd in range(a.rounds):
            order = bins if rnd % 2 == 0 else bins[::-1]
            for store in stores:
                for name, bdir in order:
                    ft.BIN_DIR = bdir
                    log("round %d, %s build (%s), %s" % (rnd + 1, name, bdir, store))
                    out.append((name, one_wave(a, ft, store, pg, "%s_%d" % (name, rnd), log)))
    finally:
        if pg:
            pg.stop()
    if len(out) > 1:
        log()
        log("| build | store | fotad CPU per upgraded device | per plain download | ratio | "
            "PostgreSQL CPU per device | total | failures |")
        log("|---|---|---|---|---|---|---|---|")
        for name, r in out:
            log("| %s | %s | %.0f µs | %.0f µs | %.2f× | %s | %.2f s | %d |" % (
                name, r["store"], r["dev_cpu_us"], r["dl_cpu_us"], r["x"],
                "%.0f µs" % r["pg_cpu_us"] if r["store"] == "postgresql" else "—",
                r["total"], r["failures"]))
    summary = "\n\n".join(summary_of(r, a) for name, r in out if name == "new")
    log(summary)
    if not a.no_append:
        benchlib.append_doc("Upgrade wave (benchmark 4)", summary, "\n".join(log.lines))
    return 0 if all(r["failures"] == 0 for _, r in out) else 1   # speed is reported, not asserted


if __name__ == "__main__":
    sys.exit(main())
