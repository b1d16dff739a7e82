#!/usr/bin/env python3
"""bench/scaleout.py - benchmark 8: several fotad instances sharing one PostgreSQL (started by
the script: tests/pg/pg_server.sh, unix socket, fsync off as in the tests), against one fotad on
SQLite measured in the same run. Two phases:

  pings  --conns device-channel connections (fota-pingload, D3 pings back to back) on one
         fotad with SQLite, then the same connections split over --instances fotad on
         PostgreSQL, each instance loaded by a fota-pingload of its own at the same time:
         pings/s summed over the instances, against the SQLite figure (goal: >= 50,000
         pings/s summed); CPU of fotad (all instances) and of PostgreSQL per ping.
  fleet  --devices fota-sim devices (stock NONOS, activated, pinging at the stock 50 s) spread
         over --fleet-instances fotad on PostgreSQL, each instance under the 20,000-descriptor
         cap: every device connected at once, connection drops over --hold seconds, fotad's RSS
         per connected device (VmRSS over each instance's idle baseline), against the same
         figure of one fotad on SQLite holding --devices / --fleet-instances devices in the
         same run.

  python3 bench/scaleout.py [--phase pings,fleet] [--conns 1000] [--seconds 10] [--instances 3]
                            [--devices 100000] [--fleet-instances 6] [--hold 60]
                            [--bin-dir build/bin] [--no-append] [--smoke]

Every instance has the same secret.key (keys derive from it) and owner.key (docs/scale-out.md),
copied from the first one's data dir before the others start. Raises the open-file limit to the hard limit
and, as root, widens the ephemeral port range. --smoke: 40 connections and 60 devices over 2
instances for a few seconds, nothing written."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402
import fleetlib as fl  # noqa: E402

GOAL_PINGS = 50000
GUARD = r"store op called on an event loop"
CONNECT_S = 600       # the fleet's devices must all be connected within this
FD_CAP = 20000        # descriptors per instance (the cap)


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


def start_instances(ft, tmp, n, dsn, conf):
    """n quiet fotad on store dsn (None: SQLite), all with the first one's secret.key and
    owner.key (docs/scale-out.md)."""
    out = []
    for i in range(n):
        data = os.path.join(tmp, "fotad-%d" % i)
        os.makedirs(data, mode=0o700)
        if out:
            for name in ("secret.key", "owner.key"):
                shutil.copy2(os.path.join(out[0].data_dir, name), data)
        extra = ["--store", "postgresql:" + dsn] if dsn else []
        out.append(benchlib.start_quiet_fotad(ft, data, extra, data_dir=data, **conf))
        if dsn:
            # A store op still called on an event loop is logged (the loop guard) and counted
            # in the results (guard_lines), not a failure of the benchmark.
            out[-1].expect_error(GUARD)
    return out


def guard_lines(ds):
    return sum(d.count_log(GUARD) for d in ds)


def pingload(load, d, keys, tmp, seconds, tag):
    kf = os.path.join(tmp, "keys-%s.txt" % tag)
    with open(kf, "w") as f:
        f.write("\n".join(keys) + "\n")
    cmd = [load, "--port", str(d.ports["device"]), "--keys", kf, "--conns", str(len(keys)),
           "--seconds", str(seconds), "--activate-every", "100", "--threads", "1"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_pings(load, ds, keys, tmp, seconds, pg, log):
    """One fota-pingload per instance of ds, keys split evenly, all at once."""
    parts = [keys[i::len(ds)] for i in range(len(ds))]
    c0 = [benchlib.cpu_seconds(d.proc.pid) for d in ds]
    p0 = postgres_cpu(pg) if pg else 0.0
    w0 = time.monotonic()
    procs = [pingload(load, d, part, tmp, seconds, "%d-%d" % (len(ds), i))
             for i, (d, part) in enumerate(zip(ds, parts))]
    pps = pings = 0.0
    for p in procs:
        so, se = p.communicate(timeout=seconds + 300)
        m = dict(re.findall(r"(\w+)=([\d.]+)", so))
        if p.returncode != 0 or "pings_per_s" not in m:
            raise SystemExit("fota-pingload failed (%d): %s %s" % (p.returncode, so, se))
        log("  " + so.strip())
        pps += float(m["pings_per_s"])
        pings += float(m["pings"]) + float(m["activations"])
    wall = time.monotonic() - w0
    cpu = sum(benchlib.cpu_seconds(d.proc.pid) - c for d, c in zip(ds, c0))
    pcpu = (postgres_cpu(pg) - p0) if pg else 0.0
    return {"pps": pps, "us_fotad": 1e6 * cpu / max(1.0, pings),
            "us_pg": 1e6 * pcpu / max(1.0, pings), "wall": wall}


def phase_pings(a, ft, pg, tmp, log):
    load = os.path.join(ft.BIN_DIR, "fota-pingload")
    conf = {"device_max_per_addr": str(max(256, a.conns)), "device_msg_rate": "0"}
    res = {}
    for store in ("sqlite", "postgresql"):
        sub = tempfile.mkdtemp(prefix="pings-%s-" % store, dir=tmp)
        n = 1 if store == "sqlite" else a.instances
        dsn = None
        if store == "postgresql":
            dbname = "pings"
            pg.sql("CREATE DATABASE %s" % dbname)
            dsn = pg.dsn(dbname)
        ds = start_instances(ft, sub, n, dsn, conf)
        try:
            pid = ds[0].create_product("pings")["id"]
            t0 = time.monotonic()
            keys = fl.register(ds[0], pid, a.conns, log=log)
            log("%s: %d devices registered in %.1f s" % (store, a.conns, time.monotonic() - t0))
            res[store] = run_pings(load, ds, keys, sub, a.seconds, pg if dsn else None, log)
            res[store]["guard"] = guard_lines(ds)
            log("%s, %d instance(s): %r" % (store, n, res[store]))
            for d in ds:
                d.stop()
        finally:
            for d in ds:
                d.cleanup()
    s, p = res["sqlite"], res["postgresql"]
    return [
        "| store | instances | pings/s | ratio to SQLite | fotad CPU per request | "
        "PostgreSQL CPU per request |", "|---|---|---|---|---|---|",
        "| SQLite | 1 | %.0f | 1.00× | %.1f µs | — |" % (s["pps"], s["us_fotad"]),
        "| PostgreSQL | %d | %.0f | %.2f× | %.1f µs | %.1f µs |" % (
            a.instances, p["pps"], p["pps"] / max(1.0, s["pps"]), p["us_fotad"], p["us_pg"]),
        "",
        "Loop-guard lines (a store op on an event loop, at most one a second per op and "
        "instance): %d." % p["guard"],
        "goal: >= %d pings/s summed over the instances: %s" % (
            GOAL_PINGS, "met" if p["pps"] >= GOAL_PINGS else "NOT met")]


def hold_fleet(ds, keys, tmp, sim, hold, tag, log):
    """fota-sim devices for keys split over instances ds: once every one is connected, the
    connections are counted each second for hold s (their minimum shows any drop that lasts
    a second; a device reconnects within seconds), with each instance's peak RSS."""
    parts = [keys[i::len(ds)] for i in range(len(ds))]
    base = [fl.rss_kib(d.proc.pid) for d in ds]
    procs = []
    t0 = time.monotonic()
    for i, (d, part) in enumerate(zip(ds, parts)):
        sub = os.path.join(tmp, "%s-sim-%d" % (tag, i))
        os.makedirs(sub)
        # the sims outlive the window: CONNECT_S to connect, then hold s; killed after it
        procs += fl.start_sims(sim, d, part, sub,
                               ["--profile", "nonos", "--initial-version", fl.V1, "--hold",
                                str(CONNECT_S + hold), "--timeout", str(CONNECT_S + hold + 60)],
                               seed0=1 + 100 * i)
    try:
        def connected():
            return sum(fl.established(d.ports["device"]) for d in ds)
        ok = fl.wait_until(lambda: connected() >= len(keys), CONNECT_S, 1.0)
        t_conn = time.monotonic() - t0
        if not ok:
            log("%s: only %d of %d connected after %d s" % (tag, connected(), len(keys),
                                                            CONNECT_S))
        low, rss = len(keys), [fl.rss_kib(d.proc.pid) for d in ds]
        end = time.monotonic() + hold
        while time.monotonic() < end:
            time.sleep(1.0)
            low = min(low, connected())
            rss = [max(r, fl.rss_kib(d.proc.pid)) for r, d in zip(rss, ds)]
        alive = sum(1 for p in procs if p.poll() is None)
    finally:
        fl.kill_sims(procs)
    per = [(r - b) * 1024.0 / max(1, len(p)) for r, b, p in zip(rss, base, parts)]
    return {"connected": bool(ok), "connect_s": t_conn, "connected_min": low,
            "per_device": per, "sims": len(procs), "sims_alive": alive}


def phase_fleet(a, ft, pg, tmp, log):
    sim = ft.bin_path("fota-sim")
    per_inst = -(-a.devices // a.fleet_instances)
    if per_inst + 200 > FD_CAP:
        raise SystemExit("%d devices per instance: over the %d-descriptor cap" % (per_inst, FD_CAP))
    conf = {"device_max_per_addr": str(per_inst + 100)}
    out = {}
    for store in ("sqlite", "postgresql"):
        sub = tempfile.mkdtemp(prefix="fleet-%s-" % store, dir=tmp)
        n, total, dsn = 1, per_inst, None
        if store == "postgresql":
            pg.sql("CREATE DATABASE fleet")
            n, total, dsn = a.fleet_instances, a.devices, pg.dsn("fleet")
        ds = start_instances(ft, sub, n, dsn, conf)
        try:
            pid = ds[0].create_product(name="fleet", flash_map=2, serial="45772")["id"]
            keys = []
            for i, d in enumerate(ds):   # each instance registers its share, in parallel stores
                keys += fl.register(d, pid, total // n + (1 if i < total % n else 0), log=log)
            time.sleep(1.0)   # the idle baseline after registration settles
            out[store] = hold_fleet(ds, keys, sub, sim, a.hold, store, log)
            out[store]["guard"] = guard_lines(ds)
            log("%s, %d instance(s), %d devices: %r" % (store, n, total, out[store]))
            for d in ds:
                d.stop()
        finally:
            for d in ds:
                d.cleanup()
    s, p = out["sqlite"], out["postgresql"]
    held = p["connected"] and p["connected_min"] >= a.devices and p["sims_alive"] == p["sims"]
    mem_s, mem_p = s["per_device"][0], max(p["per_device"])
    return [
        "| store | instances | devices | all connected after | fewest connected over %d s "
        "(each second) | RSS per device (worst instance) |" % a.hold,
        "|---|---|---|---|---|---|",
        "| SQLite | 1 | %d | %.0f s | %d | %.0f B |" % (per_inst, s["connect_s"],
                                                       s["connected_min"], mem_s),
        "| PostgreSQL | %d | %d | %.0f s | %d | %.0f B (%.2f× SQLite) |" % (
            a.fleet_instances, a.devices, p["connect_s"], p["connected_min"], mem_p,
            mem_p / max(1.0, mem_s)),
        "",
        "Loop-guard lines (a store op on an event loop, at most one a second per op and "
        "instance): %d." % p["guard"],
        "goal: %d devices connected at once over %d instances, none dropped: %s" % (
            a.devices, a.fleet_instances, "met" if held else "NOT met")]


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--phase", default="pings,fleet")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--devices", type=int, default=100000)
    ap.add_argument("--fleet-instances", type=int, default=6)
    ap.add_argument("--hold", type=int, default=60)
    a = ap.parse_args()
    if a.smoke:
        a.conns, a.seconds, a.instances = 40, 1, 2
        a.devices, a.fleet_instances, a.hold, a.no_append = 60, 2, 5, True
    log = benchlib.Log()
    limits = benchlib.raise_limits(log)
    ft = benchlib.use_bin_dir(a.bin_dir)
    from pg_util import PgServer   # tests/integration, on the path once use_bin_dir ran
    tmp = tempfile.mkdtemp(prefix="fota-bench-scaleout-")
    pg = PgServer()
    rows = []
    try:
        phases = a.phase.split(",")
        if "pings" in phases:
            rows += ["Check-ins: %d connections, %d s, D3 pings back to back, every 100th "
                     "request a D1 activation." % (a.conns, a.seconds), ""]
            rows += phase_pings(a, ft, pg, tmp, log) + [""]
        if "fleet" in phases:
            rows += ["Connected fleet: stock NONOS fota-sim devices at the 50 s ping, held %d s."
                     % a.hold, ""]
            rows += phase_fleet(a, ft, pg, tmp, log) + [""]
    finally:
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = "Benchmark 8, several instances on one PostgreSQL (%s).\n\n%s" % (
        limits, "\n".join(rows))
    log(summary)
    if not a.no_append:
        log("appended to %s" % benchlib.append_doc("Scale-out (benchmark 8)", summary,
                                                    "\n".join(log.lines)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
