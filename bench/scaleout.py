#!/usr/bin/env python3
"""bench/scaleout.py - benchmark 8: several fotad instances sharing one PostgreSQL (started by
the script: tests/pg/pg_server.sh, unix socket, fsync off as in the tests), against one fotad on
SQLite measured in the same run. Phases:

  pings  --conns device-channel connections (fota-pingload, D3 pings back to back) on one
         fotad with SQLite and the same connections split over --instances fotad on
         PostgreSQL, each instance loaded by a fota-pingload of its own at the same time;
         --rounds rounds per store, alternating: pings/s summed over the instances, against
         the SQLite figure (goal: >= 50,000 pings/s summed); CPU of fotad (all instances) and
         of PostgreSQL per request (schedstat).
  fleet  --devices fota-sim devices (stock NONOS, activated, pinging at the stock 50 s) spread
         over --fleet-instances fotad on PostgreSQL, each instance under the 20,000-descriptor
         cap: every device connected at once, connection drops over --hold seconds, fotad's RSS
         per connected device (VmRSS over each instance's idle baseline), against the same
         figure of one fotad on SQLite holding --devices / --fleet-instances devices in the
         same run.
  push   the fleet (the phase above, run once for both) with a release to push: after the
         hold, one POST /v1/rollouts/ on instance 1 (window = every device, filter online)
         pushes sys_upgrade to the whole fleet (the devices acknowledge and do not download,
         as in bench/fanout.py): time until every D4 acknowledgement is in, from the
         rollout's own elapsed_ms (goal: 100,000 within 3 s), the share acknowledged at 3 s,
         fotad and PostgreSQL CPU per device; the SQLite fotad does the same for its share.
  wave   --wave-devices devices upgraded end to end by one rollout (bench/wave.py's wave:
         reboot, window 256, 512 KiB image, device timers x5) on one fotad with SQLite, and
         spread over --wave-instances fotad on PostgreSQL (the rollout created on instance
         1), --wave-rounds rounds each, alternating (goal: no slower than on one).

  python3 bench/scaleout.py [--phase pings,fleet,push,wave] [--conns 1000] [--seconds 10]
                            [--rounds 3] [--instances 3] [--devices 100000]
                            [--fleet-instances 6] [--hold 60] [--wave-devices 10000]
                            [--wave-instances 3] [--wave-rounds 1]
                            [--bin-dir build/bin] [--no-append] [--smoke] [--pg-stats]
                            [--perf DIR] [--sim-nice N]

Every instance has the same secret.key (keys derive from it) and owner.key (docs/scale-out.md),
copied from the first one's data dir before the others start. Raises the open-file limit to
the hard limit and, as root, widens the ephemeral port range; fota-sim runs as processes of at
most 9,500 devices each (fleetlib). Every wait is bounded. --smoke: 40 connections, 60
devices and a 12-device wave over 2 instances for a few seconds, nothing written. --pg-stats:
PostgreSQL starts with pg_stat_statements, and the fleet's connect storm and the push phase log
where PostgreSQL's CPU went (per connection kind, from schedstat) and its statements by total
time. --perf DIR: perf
record of PostgreSQL and of the fotad instances during the push, into DIR. --sim-nice N: the
fleet's fota-sim processes at nice N (negative, as root: ahead of the servers)."""
import concurrent.futures
import os
import re
import resource
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
GOAL_PUSH_S = 3.0
GUARD = r"store op called on an event loop"
CONNECT_S = 600       # the fleet's devices must all be connected within this
FD_CAP = 20000        # descriptors per instance (the cap)
PUSH_WAIT_S = 60      # a push is followed this long at most
SETTLE_S = 1.0        # CPU counted this long after the last ack too (the rows written then)
WAVE_STALL_S = 30     # a wave that upgrades no device for this long is stopped
WAVE_MAX_S = 900      # and any wave after this long
SIM_LIFE_S = 7200     # the fleet's simulators, killed once measured
SIM_NICE = [0]        # --sim-nice: the fleet's simulators' nice value


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def postgres_pids(pg):
    """The processes of pg's server (they sit in its data dir)."""
    want = os.path.join(pg.dir, "data")
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/cwd" % pid) == want:
                out.append(int(pid))
        except OSError:
            pass   # gone meanwhile, or not ours to read
    return out


def cpu_ns(ds, pg=None):
    """(CPU ns of the fotad ds, of pg's server processes; 0 without pg), from schedstat."""
    f = sum(benchlib.run_ns(d.proc.pid) or 0 for d in ds)
    p = sum(benchlib.run_ns(pid) or 0 for pid in postgres_pids(pg)) if pg else 0
    return f, p


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
        extra += conf.get("_extra", [])
        kw = {k: v for k, v in conf.items() if not k.startswith("_")}
        out.append(benchlib.start_quiet_fotad(ft, data, extra, data_dir=data, **kw))
        if dsn:
            # A store op still called on an event loop is logged (the loop guard) and counted
            # in the results (guard_lines), not a failure of the benchmark.
            out[-1].expect_error(GUARD)
    return out


def stop_all(ds):
    for d in ds:
        d.stop()


def cleanup_all(ds):
    for d in ds:
        d.cleanup()


def guard_lines(ds):
    return sum(d.count_log(GUARD) for d in ds)


def register_spread(ds, pid, total, log):
    """total devices of product pid, each instance of ds registering its share at once (one
    store); their master keys, one list per instance."""
    shares = [total // len(ds) + (1 if i < total % len(ds) else 0) for i in range(len(ds))]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(len(ds)) as ex:
        futs = [ex.submit(fl.register, d, pid, k, 8 if len(ds) == 1 else 4, lambda s: None)
                for d, k in zip(ds, shares)]
        parts = [f.result() for f in futs]
    log("registered %d devices over %d instance(s) in %.1f s" % (
        total, len(ds), time.monotonic() - t0))
    return parts


def online(d, pid):
    """The product's devices online as the store counts them (GET .../overview): on
    PostgreSQL, over every instance."""
    st, _, j = d.api("GET", "/v1/products/%d/overview?range=1h" % pid)
    return j["overview"]["online"] if st == 200 else 0


def wait_online(d, pid, n, timeout, log, tag):
    """Waits (bounded) until n devices of pid are online (identified, their presence
    written), so a rollout's online filter takes them all; the count reached."""
    t0 = time.monotonic()
    got = fl.wait_until(lambda: online(d, pid) >= n, timeout, 1.0)
    k = online(d, pid)
    log("%s: %d of %d devices online %.0f s after they connected%s" % (
        tag, k, n, time.monotonic() - t0, "" if got else " (gave up)"))
    return k


def new_db(pg, name):
    pg.sql("CREATE DATABASE %s" % name)
    if getattr(pg, "stats", False):
        pg.sql("CREATE EXTENSION pg_stat_statements", name)
        pg.stats_db = name
    return pg.dsn(name)


def pg_stats_on(pg):
    """Restarts pg with pg_stat_statements loaded (--pg-stats)."""
    with open(os.path.join(pg.dir, "data", "postgresql.conf"), "a") as f:
        f.write("shared_preload_libraries = 'pg_stat_statements'\n"
                "pg_stat_statements.max = 1000\npg_stat_statements.track = all\n")
    pg.restart()
    pg.stats = True


class PgStats:
    """Where PostgreSQL's CPU goes between its creation and report(): each server process's
    CPU (schedstat) summed by kind (the application name of a client's backend, else the
    backend type), and pg_stat_statements' statements by total time."""

    def __init__(self, pg):
        self.pg = pg
        pg.sql("SELECT pg_stat_statements_reset()", pg.stats_db)
        self.cpu0 = self.cpu()

    def cpu(self):
        kinds = {}
        for line in self.pg.sql("SELECT pid, COALESCE(NULLIF(application_name, ''), "
                                "backend_type) FROM pg_stat_activity").splitlines():
            pid, _, kind = line.partition("|")
            kinds[int(pid)] = kind
        return {pid: (kinds.get(pid, "other"), benchlib.run_ns(pid) or 0)
                for pid in postgres_pids(self.pg)}

    def report(self, per, log):
        cpu1, by = self.cpu(), {}
        for pid, (kind, ns) in cpu1.items():
            k = by.setdefault(kind, [0, 0])
            k[0] += ns - self.cpu0.get(pid, (kind, 0))[1]
            k[1] += 1
        log("PostgreSQL CPU per device by process kind (processes): " + ", ".join(
            "%s %.1f us (%d)" % (k, v[0] / 1e3 / max(1, per), v[1])
            for k, v in sorted(by.items(), key=lambda x: -x[1][0])))
        rows = self.pg.sql(
            "SELECT calls, rows, round(total_exec_time::numeric, 1), "
            "round((total_exec_time * 1000 / GREATEST(1, %d))::numeric, 2), "
            "regexp_replace(left(query, 150), '\\s+', ' ', 'g') FROM pg_stat_statements "
            "ORDER BY total_exec_time DESC LIMIT 25" % per, self.pg.stats_db)
        log("PostgreSQL statements by total time (calls | rows | total ms | us per device | "
            "statement):")
        for line in rows.splitlines():
            log("  " + line)


# --- pings ---------------------------------------------------------------------------------

def pingload(load, d, keys, tmp, seconds, tag):
    kf = os.path.join(tmp, "keys-%s.txt" % tag)
    with open(kf, "w") as f:
        f.write("\n".join(keys) + "\n")
    cmd = [load, "--port", str(d.ports["device"]), "--keys", kf, "--conns", str(len(keys)),
           "--seconds", str(seconds), "--activate-every", "100", "--threads", "1"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_pings(load, ds, parts, tmp, seconds, pg, log, tag):
    """One fota-pingload per instance of ds (its keys in parts), all at once."""
    c0 = cpu_ns(ds, pg)
    g0 = children_cpu()
    w0 = time.monotonic()
    procs = [pingload(load, d, part, tmp, seconds, "%s-%d" % (tag, i))
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
    c1 = cpu_ns(ds, pg)
    return {"pps": pps, "us_fotad": (c1[0] - c0[0]) / 1e3 / max(1.0, pings),
            "us_pg": (c1[1] - c0[1]) / 1e3 / max(1.0, pings),
            "us_load": (children_cpu() - g0) * 1e6 / max(1.0, pings), "wall": wall}


def children_cpu():
    """CPU seconds of this script's children that have ended (the load generators)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def median(xs):
    v = sorted(xs)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2.0


def phase_pings(a, ft, pg, tmp, log):
    """Both setups up at once (the idle one costs next to nothing), rounds alternating."""
    load = os.path.join(ft.BIN_DIR, "fota-pingload")
    conf = {"device_max_per_addr": str(max(256, a.conns)), "device_msg_rate": "0"}
    sets, res = {}, {"sqlite": [], "postgresql": []}
    load0 = loadavg()
    try:
        for store in ("sqlite", "postgresql"):
            sub = tempfile.mkdtemp(prefix="pings-%s-" % store, dir=tmp)
            n = 1 if store == "sqlite" else a.instances
            dsn = new_db(pg, "pings") if store == "postgresql" else None
            ds = start_instances(ft, sub, n, dsn, conf)
            sets[store] = (ds, sub, None)
            pid = ds[0].create_product("pings")["id"]
            sets[store] = (ds, sub, register_spread(ds, pid, a.conns, log))
        for r in range(a.rounds):
            order = ("sqlite", "postgresql") if r % 2 == 0 else ("postgresql", "sqlite")
            for store in order:
                ds, sub, parts = sets[store]
                x = run_pings(load, ds, parts, sub, a.seconds, pg if store == "postgresql"
                              else None, log, "%s-%d" % (store, r))
                log("round %d, %s, %d instance(s): %r" % (r + 1, store, len(ds), x))
                res[store].append(x)
        guard = guard_lines(sets["postgresql"][0])
        for ds, _, _ in sets.values():
            stop_all(ds)
    finally:
        for ds, _, _ in sets.values():
            cleanup_all(ds)
    load1 = loadavg()
    s, p = res["sqlite"], res["postgresql"]
    sm, pm = median([x["pps"] for x in s]), median([x["pps"] for x in p])

    def row(name, n, xs, m):
        us = median([x["us_fotad"] + x["us_pg"] for x in xs])
        return "| %s | %d | %s | %.0f | %.2f× | %.1f µs | %s | %.1f µs | %.0f |" % (
            name, n, " / ".join("%.0f" % x["pps"] for x in xs), m, m / max(1.0, sm),
            median([x["us_fotad"] for x in xs]),
            "%.1f µs" % median([x["us_pg"] for x in xs]) if name != "SQLite" else "—",
            median([x["us_load"] for x in xs]), 1e6 / max(us, 1e-9))
    return [
        "| store | instances | pings/s per round | median | ratio to SQLite | fotad CPU per "
        "request (all instances, median) | PostgreSQL CPU per request | load generator CPU "
        "per request | requests per CPU-second of the servers (fotad + PostgreSQL) |",
        "|---|---|---|---|---|---|---|---|---|",
        row("SQLite", 1, s, sm), row("PostgreSQL", a.instances, p, pm), "",
        "%d rounds per store, alternating; CPU from schedstat. Machine load (1-minute average): "
        "%.1f at the start, %.1f at the end (2 cores shared with the load generators and with "
        "other work). Loop-guard lines (a store op on an event loop, at most one a second per "
        "op and instance): %d." % (a.rounds, load0, load1, guard),
        "goal: >= %d pings/s summed over the instances (median of the rounds): %s" % (
            GOAL_PINGS, "met" if pm >= GOAL_PINGS else "NOT met")]


# --- fleet and push ------------------------------------------------------------------------

def push_all(ds, pg, pid, total, log):
    """One rollout to every online device of product pid, created on ds[0]: its elapsed_ms
    when every acknowledgement is in (or PUSH_WAIT_S passed), the acknowledged share at
    GOAL_PUSH_S, CPU per device (pg: the PostgreSQL server of ds, None on SQLite)."""
    stats = PgStats(pg) if pg and pg.stats_db else None
    perf = perf_start(ds, pg) if pg and pg.perf_dir else []
    each0 = [benchlib.run_ns(d.proc.pid) or 0 for d in ds]
    c0 = cpu_ns(ds, pg)
    tp = time.monotonic()
    st, _, j = ds[0].api("POST", "/v1/rollouts/", {"product_id": pid, "version": fl.V2,
                                                   "window": max(1, total),
                                                   "filter": {"online": True}})
    reply_ms = (time.monotonic() - tp) * 1e3
    if st != 202:
        raise SystemExit("rollout refused on instance 1: %d %r" % (st, j))
    jid, want = j["rollout"]["id"], j["rollout"]["total"]
    at_goal, samples, job = None, 0, j["rollout"]
    c1 = None
    while time.monotonic() - tp < PUSH_WAIT_S and samples < 100000:
        samples += 1
        st, _, j = ds[0].api("GET", "/v1/rollouts/%d/" % jid)
        job = j["rollout"]
        t = time.monotonic() - tp
        if t <= GOAL_PUSH_S:
            at_goal = job["acked"] + job["failed"]
        if job["acked"] + job["failed"] >= want:
            c1 = cpu_ns(ds, pg)
            break
        time.sleep(0.02)
    if c1 is None:
        c1 = cpu_ns(ds, pg)
    if job["acked"] + job["failed"] >= want and job["elapsed_ms"]["acked"] is not None and \
            job["elapsed_ms"]["acked"] <= GOAL_PUSH_S * 1e3:
        at_goal = job["acked"] + job["failed"]
    acked = job["acked"] + job["failed"]
    followed = time.monotonic() - tp
    # the engine's writes of the last states (members, commands) follow within a flush or a
    # few: CPU until SETTLE_S after the last ack counts them
    time.sleep(SETTLE_S)
    c2 = cpu_ns(ds, pg)
    out = {"reply_ms": reply_ms, "total": want, "acked": job["acked"], "failed": job["failed"],
           "delivered_ms": job["elapsed_ms"]["delivered"], "acked_ms": job["elapsed_ms"]["acked"],
           "at_goal": at_goal, "done": acked >= want, "followed_s": followed,
           "us_fotad": (c1[0] - c0[0]) / 1e3 / max(1, acked),
           "us_pg": (c1[1] - c0[1]) / 1e3 / max(1, acked) if pg else None,
           "us_fotad_settled": (c2[0] - c0[0]) / 1e3 / max(1, acked),
           "us_pg_settled": (c2[1] - c0[1]) / 1e3 / max(1, acked) if pg else None}
    log("push: %r" % out)
    log("rollout: %r" % job)
    if len(ds) > 1:
        log("fotad CPU per device by instance (the first drives): " + " / ".join(
            "%.1f us" % (((benchlib.run_ns(d.proc.pid) or 0) - e) / 1e3 / max(1, acked))
            for d, e in zip(ds, each0)))
    if stats:
        stats.report(acked, log)
    perf_stop(perf, log)
    return out


def perf_start(ds, pg):
    """perf record (call graphs, every CPU: a process list would lose the backends that start
    later) into pg.perf_dir/push.data (--perf DIR); perf report --comm postgres or fotad
    separates them. The perf processes, each with its output file."""
    f = os.path.join(pg.perf_dir, "push.data")
    p = subprocess.Popen(["perf", "record", "-q", "-F", "499", "-g", "-a", "-o", f],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)   # perf attached
    return [(p, f)]


def perf_stop(perf, log):
    for p, f in perf:
        p.send_signal(2)
        p.wait(timeout=120)
        log("perf data: %s" % f)


def hold_fleet(ds, pg, parts, tmp, sim, hold, tag, log, push_pid=None):
    """fota-sim devices for parts (one key list per instance of ds): once every one is
    connected, the connections are counted each second for hold s, with each instance's peak
    RSS; with push_pid, then one rollout to all of them (push_all). The sims are then stopped
    and their summaries give the exact figures: channels dropped over the run, channels up
    at its end."""
    total = sum(len(p) for p in parts)
    base = [fl.rss_kib(d.proc.pid) for d in ds]
    procs = []
    # --pg-stats: where PostgreSQL's CPU goes while the fleet connects
    storm = PgStats(pg) if pg is not None and getattr(pg, "stats", False) else None
    t0 = time.monotonic()
    flags = ["--upgrade-to", fl.V2, "--await-push", "--ack-only"] if push_pid else []
    for i, (d, part) in enumerate(zip(ds, parts)):
        sub = os.path.join(tmp, "%s-sim-%d" % (tag, i))
        os.makedirs(sub)
        # the sims outlive the measurement by far (counting 100,000 sockets takes seconds
        # a time): they are killed after it
        procs += fl.start_sims(sim, d, part, sub,
                               ["--profile", "nonos", "--initial-version", fl.V1, "--hold",
                                str(SIM_LIFE_S), "--timeout", str(SIM_LIFE_S + 60)] + flags,
                               seed0=1 + 100 * i, nice=SIM_NICE[0])
    push = None
    try:
        def connected():
            return sum(fl.established_many([d.ports["device"] for d in ds]))
        seen = []

        def all_up():   # two readings in a row: one alone can count a socket twice
            seen.append(connected())
            return len(seen) > 1 and min(seen[-2:]) >= total
        ok = fl.wait_until(all_up, CONNECT_S, 1.0)
        t_conn = time.monotonic() - t0
        now = connected()
        if not ok:
            log("%s: only %d of %d connected after %d s" % (tag, now, total, CONNECT_S))
        low, rss = now, [fl.rss_kib(d.proc.pid) for d in ds]
        if storm:
            log("%s: the connect storm (per device connected):" % tag)
            storm.report(total, log)
        end = time.monotonic() + hold
        while time.monotonic() < end:
            time.sleep(1.0)
            low = min(low, connected())
            rss = [max(r, fl.rss_kib(d.proc.pid)) for r, d in zip(rss, ds)]
        alive = sum(1 for p in procs if p.poll() is None)
        if push_pid:
            wait_online(ds[0], push_pid, total, CONNECT_S, log, tag)
            push = push_all(ds, pg, push_pid, total, log)
    finally:
        sums = fl.stop_sims(procs)
    # what the devices saw: channels the server (or the network) closed under them, and
    # channels up when the run ended; exact, where counting /proc while sockets come and
    # go can skip or repeat a few (a socket that moves within its hash chain between two
    # reads)
    drops = sum(j["channel_drops"] for j in sums if j) if all(sums) else None
    up = sum(j["connected_at_end"] for j in sums if j) if all(sums) else None
    log("%s: channel drops %s, connected at the end %s of %d" % (tag, drops, up, total))
    per = [(r - b) * 1024.0 / max(1, len(p)) for r, b, p in zip(rss, base, parts)]
    return {"connected": bool(ok), "connect_s": t_conn, "connected_min": low,
            "drops": drops, "up_at_end": up,
            "per_device": per, "sims": len(procs), "sims_alive": alive, "push": push}


def phase_fleet(a, ft, pg, tmp, log, push):
    import sim_standin as st
    sim = ft.bin_path("fota-sim")
    per_inst = -(-a.devices // a.fleet_instances)
    if per_inst + 200 > FD_CAP:
        raise SystemExit("%d devices per instance: over the %d-descriptor cap" % (per_inst, FD_CAP))
    conf = {"device_max_per_addr": str(per_inst + 100)}
    conf.update(a.fotad_conf)
    out = {}
    load0 = loadavg()
    for store in ("sqlite", "postgresql"):
        sub = tempfile.mkdtemp(prefix="fleet-%s-" % store, dir=tmp)
        n, total, dsn = 1, per_inst, None
        if store == "postgresql":
            n, total, dsn = a.fleet_instances, a.devices, new_db(pg, "fleet")
        ds = start_instances(ft, sub, n, dsn, conf)
        try:
            if push:
                pid = st.stock_product(ds[0], sub, fl.V2, name="fleet")
            else:
                pid = ds[0].create_product(name="fleet", flash_map=2, serial="45772")["id"]
            parts = register_spread(ds, pid, total, log)
            time.sleep(1.0)   # the idle baseline after registration settles
            out[store] = hold_fleet(ds, pg if dsn else None, parts, sub, sim, a.hold, store, log,
                                    pid if push else None)
            out[store]["guard"] = guard_lines(ds)
            log("%s, %d instance(s), %d devices: %r" % (store, n, total, out[store]))
            stop_all(ds)
        finally:
            cleanup_all(ds)
    load1 = loadavg()
    s, p = out["sqlite"], out["postgresql"]
    held = p["connected"] and p["drops"] == 0 and p["up_at_end"] == a.devices and \
        p["sims_alive"] == p["sims"]
    mem_s, mem_p = s["per_device"][0], max(p["per_device"])
    rows = [
        "| store | instances | devices | all connected after | channels dropped (the devices' "
        "count) | connected at the end | fewest counted in /proc over %d s (each second) | "
        "RSS per device (worst instance) |" % a.hold,
        "|---|---|---|---|---|---|---|---|",
        "| SQLite | 1 | %d | %.0f s | %s | %s | %d | %.0f B |" % (
            per_inst, s["connect_s"], s["drops"], s["up_at_end"], s["connected_min"], mem_s),
        "| PostgreSQL | %d | %d | %.0f s | %s | %s | %d | %.0f B (%.2f× SQLite; per instance: "
        "%s) |" % (
            a.fleet_instances, a.devices, p["connect_s"], p["drops"], p["up_at_end"],
            p["connected_min"], mem_p, mem_p / max(1.0, mem_s),
            " / ".join("%.0f" % x for x in p["per_device"])),
        "",
        "Loop-guard lines (a store op on an event loop, at most one a second per op and "
        "instance): %d. Machine load (1-minute average): %.1f at the start, %.1f at the end." % (
            p["guard"], load0, load1),
        "goal: %d devices connected at once over %d instances, none dropped: %s" % (
            a.devices, a.fleet_instances, "met" if held else "NOT met")]
    if push:
        rows += [""] + push_rows(a, s["push"], p["push"], per_inst)
    return rows


def acked_at(x, devices):
    """The devices acknowledged GOAL_PUSH_S after the POST: the last reading within it."""
    if x["at_goal"] is None:
        return "no reading within %.0f s (GET answered later)" % GOAL_PUSH_S
    return "%d of %d (%.1f %%)" % (x["at_goal"], devices, 100.0 * x["at_goal"] / max(1, devices))


def push_rows(a, s, p, per_inst):
    def ms(v):
        return "%.0f ms" % v if v is not None else "—"

    def row(name, n, devices, x):
        return "| %s | %d | %d | %d | %.1f ms | %s | %s | %s | %s | %.1f µs (%.1f µs) | " \
            "%s |" % (
            name, n, devices, x["total"], x["reply_ms"], ms(x["delivered_ms"]),
            ms(x["acked_ms"]) if x["done"] else "not all within %.0f s (%d of %d acked)" % (
                x["followed_s"], x["acked"] + x["failed"], x["total"]),
            acked_at(x, devices),
            "%d" % x["failed"], x["us_fotad"], x["us_fotad_settled"],
            "%.1f µs (%.1f µs)" % (x["us_pg"], x["us_pg_settled"]) if x["us_pg"] is not None
            else "—")
    met = p["done"] and p["total"] >= a.devices and p["acked_ms"] is not None and \
        p["acked_ms"] <= GOAL_PUSH_S * 1e3
    return [
        "Push: one POST /v1/rollouts/ on instance 1 (window = every device, filter online), "
        "sys_upgrade to every online device; the devices acknowledge (D4) and do not download. "
        "Times from the rollout's creation (GET /v1/rollouts/ID/ elapsed_ms); CPU from "
        "schedstat, POST to the last D4 (or the end of the wait), per acknowledged device; in "
        "brackets until %.0f s after it (the engine's last writes of the members' and commands' "
        "states)." % SETTLE_S, "",
        "| store | instances | devices connected | devices in the rollout | POST answered | "
        "all pushes written | all the rollout's D4 acks in | devices acked within %.0f s | "
        "failed | fotad CPU per device (all instances) | PostgreSQL CPU per device |" %
        GOAL_PUSH_S, "|---|---|---|---|---|---|---|---|---|---|---|",
        row("SQLite", 1, per_inst, s), row("PostgreSQL", a.fleet_instances, a.devices, p), "",
        "goal: one REST call on instance 1 pushes to all %d devices, every ack within %.0f s: %s"
        % (a.devices, GOAL_PUSH_S, "met" if met else "NOT met")]


# --- wave ----------------------------------------------------------------------------------

def wave_product(d, ft, size):
    """A product of fotad d (flash map 6, serial 45772) with release V2, images of size
    bytes; (its id, the bytes of the image a device downloads)."""
    pid = d.create_product(name="bench-wave", flash_map=6, serial="45772")["id"]
    files = [("user%d.bin" % s, ft.make_image(s, 6, fl.V2, size)) for s in (1, 2)]
    d.upload_release(pid, fl.V2, files=files, flash_map=6)
    return pid, len(files[1][1])


def wave_times(res):
    """A wave's figures from fota-sim --json summaries res (None for a failed process):
    total_s (first push to the last device on V2; each process times from its own start,
    and they start within milliseconds of each other), p50_ms (mean of the processes'
    medians), p99_ms and max_ms (the largest of theirs), upgraded, sim_cpu_s (from each
    process's first push)."""
    ok = [x for x in res if x]
    ups = [x.get("upgrade") or {} for x in ok]
    first = min([u.get("first_push_s", 0) for u in ups if u.get("first_push_s")] or [0])
    last = max([u.get("last_done_s", 0) for u in ups] or [0])
    return {"total_s": max(0.0, last - first),
            "p50_ms": sum(u.get("p50_ms", 0) for u in ups) / max(1, len(ups)),
            "p99_ms": max([u.get("p99_ms", 0) for u in ups] or [0]),
            "max_ms": max([u.get("max_ms", 0) for u in ups] or [0]),
            "upgraded": sum(x.get("upgraded", 0) for x in ok),
            "sim_cpu_s": sum(x.get("upgrade_cpu_s", 0.0) for x in ok)}


def run_wave(ds, pg, pid, parts, tmp, sim, a, log, tag):
    """bench/wave.py's wave over instances ds (parts: their devices' keys), the rollout
    created on ds[0]; followed until every device is done, the rollout stalls WAVE_STALL_S
    or WAVE_MAX_S pass (pg: the PostgreSQL server of ds, None on SQLite)."""
    n = sum(len(p) for p in parts)
    procs = []
    for i, (d, part) in enumerate(zip(ds, parts)):
        sub = os.path.join(tmp, "%s-sim-%d" % (tag, i))
        os.makedirs(sub)
        # fota-sim is CPU-heavy in a wave (flash writes, CRC): two processes for a lone
        # instance, one per instance otherwise, as many as the cores
        per = (len(part) + 1) // 2 if len(ds) == 1 and len(part) >= 100 else max(1, len(part))
        if per < len(part):
            part = part[0::2] + part[1::2]
        procs += fl.start_sims(sim, d, part, sub, [
            "--profile", "nonos", "--map", "6", "--initial-version", fl.V1, "--upgrade-to",
            fl.V2, "--await-push", "--time-scale", "5", "--timeout", str(WAVE_MAX_S + 300)],
            per_proc=per, seed0=1 + 100 * i)
    try:
        def connected():
            return sum(fl.established_many([d.ports["device"] for d in ds]))
        if not fl.wait_until(lambda: connected() >= n, 300, 0.5):
            raise SystemExit("%s: only %d of %d devices connected" % (tag, connected(), n))
        wait_online(ds[0], pid, n, 300, log, tag)   # the rollout takes online devices
        stats = PgStats(pg) if pg and pg.stats_db else None
        c0 = cpu_ns(ds, pg)
        tp = time.monotonic()
        st, _, j = ds[0].api("POST", "/v1/rollouts/", {"product_id": pid, "version": fl.V2,
                                                       "reboot": True, "window": a.wave_window,
                                                       "filter": {"online": True}})
        if st != 202:
            raise SystemExit("rollout refused on instance 1: %d %r" % (st, j))
        jid, want = j["rollout"]["id"], j["rollout"]["total"]
        last, moved, job = -1, time.monotonic(), j["rollout"]
        while time.monotonic() - tp < WAVE_MAX_S:
            if all(p.poll() is not None for p in procs):
                break
            st, _, j = ds[0].api("GET", "/v1/rollouts/%d/" % jid)
            job = j["rollout"]
            done = job["succeeded"] + job["failed"] + job["timed_out"]
            if done >= want:
                break
            if done != last:
                last, moved = done, time.monotonic()
            elif time.monotonic() - moved > WAVE_STALL_S:
                log("%s: the rollout stalled at %d of %d for %d s" % (tag, done, want,
                                                                      WAVE_STALL_S))
                break
            time.sleep(0.5)
        wall = time.monotonic() - tp
        c1 = cpu_ns(ds, pg)
        st, _, j = ds[0].api("GET", "/v1/rollouts/%d/" % jid)
        job = j["rollout"]
        stalled = job["succeeded"] + job["failed"] + job["timed_out"] < want
        # devices the rollout did not take wait for a push that does not come: their
        # simulator is stopped (its summary is lost) once the rollout is over
        res = fl.wait_sims(procs, 10 if stalled or want < n else 120)
    finally:
        fl.kill_sims(procs)
    t = wave_times(res)
    out = {"devices": n, "total": want, "succeeded": job["succeeded"], "failed": job["failed"],
           "timed_out": job["timed_out"], "finished_ms": job["elapsed_ms"]["finished"],
           "complete": not stalled and want >= n, "wall_s": wall, "sims": t,
           "us_fotad": (c1[0] - c0[0]) / 1e3 / max(1, job["succeeded"]),
           "us_pg": (c1[1] - c0[1]) / 1e3 / max(1, job["succeeded"]) if pg else None}
    log("%s wave: %r" % (tag, out))
    if stats:
        stats.report(max(1, job["succeeded"]), log)
    return out


def phase_wave(a, ft, pg, tmp, log):
    sim = ft.bin_path("fota-sim")
    n = a.wave_devices
    conf = {"device_max_per_addr": str(n + 100), "_extra": ["--http-timeout", "60"]}
    res = {"sqlite": [], "postgresql": []}
    load0 = loadavg()
    for r in range(a.wave_rounds):
        order = ("sqlite", "postgresql") if r % 2 == 0 else ("postgresql", "sqlite")
        for store in order:
            sub = tempfile.mkdtemp(prefix="wave-%s-" % store, dir=tmp)
            ni, dsn = 1, None
            if store == "postgresql":
                ni, dsn = a.wave_instances, new_db(pg, "wave%d" % r)
            ds = start_instances(ft, sub, ni, dsn, conf)
            try:
                pid, _ = wave_product(ds[0], ft, 524288)
                parts = register_spread(ds, pid, n, log)
                res[store].append(run_wave(ds, pg if dsn else None, pid, parts, sub, sim, a, log,
                                           "%s-%d" % (store, r)))
                stop_all(ds)
            finally:
                cleanup_all(ds)
    load1 = loadavg()

    def row(name, ni, x):
        t = x["sims"]
        return "| %s | %d | %d | %s | %.0f / %.0f ms | %d of %d (failed %d, timed out %d) | " \
            "%.0f µs | %s |" % (
                name, ni, x["devices"],
                "%.2f s" % t["total_s"] if x["complete"] else
                "not complete: %d of %d in the rollout, %d upgraded in %.0f s" % (
                    x["total"], x["devices"], x["succeeded"], x["wall_s"]),
                t["p50_ms"], t["p99_ms"], x["succeeded"], x["total"], x["failed"],
                x["timed_out"], x["us_fotad"],
                "%.0f µs" % x["us_pg"] if x["us_pg"] is not None else "—")
    rows = ["| store | instances | devices | first push to last device on V2 (fota-sim) | "
            "per device p50 / p99 | succeeded (fotad's rollout) | fotad CPU per upgraded "
            "device (all instances) | PostgreSQL CPU per upgraded device |",
            "|---|---|---|---|---|---|---|---|"]
    for i in range(a.wave_rounds):
        rows.append(row("SQLite", 1, res["sqlite"][i]))
        rows.append(row("PostgreSQL", a.wave_instances, res["postgresql"][i]))
    s_ok = [x for x in res["sqlite"] if x["complete"]]
    p_ok = [x for x in res["postgresql"] if x["complete"] and x["succeeded"] == x["devices"]]
    met = bool(s_ok) and len(p_ok) == len(res["postgresql"]) and \
        median([x["sims"]["total_s"] for x in p_ok]) <= \
        median([x["sims"]["total_s"] for x in s_ok])
    rows += ["", "%d round(s), alternating; the rollout (reboot, window %d, 512 KiB image, "
             "device timers x5) created on instance 1. Machine load (1-minute average): %.1f at "
             "the start, %.1f at the end." % (a.wave_rounds, a.wave_window, load0, load1),
             "goal: the %d-device wave over %d instances no slower than on one: %s" % (
                 n, a.wave_instances, "met" if met else "NOT met")]
    return rows


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--phase", default="pings,fleet,push,wave")
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--devices", type=int, default=100000)
    ap.add_argument("--fleet-instances", type=int, default=6)
    ap.add_argument("--hold", type=int, default=60)
    ap.add_argument("--sim-nice", type=int, default=0,
                    help="nice value of the fleet's fota-sim processes (negative, as root: ahead "
                    "of the servers, as devices with CPUs of their own)")
    ap.add_argument("--wave-devices", type=int, default=10000)
    ap.add_argument("--wave-instances", type=int, default=3)
    ap.add_argument("--wave-window", type=int, default=256)
    ap.add_argument("--wave-rounds", type=int, default=1)
    ap.add_argument("--fotad-conf", metavar="KEY=VALUE", action="append", default=[],
                    help="a config key for every fotad of the fleet phases (repeatable)")
    ap.add_argument("--pg-stats", action="store_true")
    ap.add_argument("--perf", metavar="DIR", default=None)
    a = ap.parse_args()
    a.fotad_conf = dict(kv.split("=", 1) for kv in a.fotad_conf)
    SIM_NICE[0] = a.sim_nice
    if a.smoke:
        a.conns, a.seconds, a.rounds, a.instances = 40, 1, 1, 2
        a.devices, a.fleet_instances, a.hold, a.no_append = 60, 2, 3, True
        a.wave_devices, a.wave_instances, a.wave_window, a.wave_rounds = 12, 2, 4, 1
    log = benchlib.Log()
    limits = benchlib.raise_limits(log)
    ft = benchlib.use_bin_dir(a.bin_dir)
    from pg_util import PgServer   # tests/integration, on the path once use_bin_dir ran
    tmp = tempfile.mkdtemp(prefix="fota-bench-scaleout-")
    pg = PgServer()
    pg.stats_db, pg.perf_dir = None, a.perf
    if a.pg_stats:
        pg_stats_on(pg)
    rows = []
    try:
        phases = a.phase.split(",")
        if "pings" in phases:
            rows += ["Check-ins: %d connections, %d s, D3 pings back to back, every 100th "
                     "request a D1 activation." % (a.conns, a.seconds), ""]
            rows += phase_pings(a, ft, pg, tmp, log) + [""]
        if "fleet" in phases or "push" in phases:
            rows += ["Connected fleet: stock NONOS fota-sim devices at the 50 s ping, held %d s."
                     % a.hold, ""]
            rows += phase_fleet(a, ft, pg, tmp, log, "push" in phases) + [""]
        if "wave" in phases:
            rows += ["Upgrade wave: %d nonos fota-sim devices, one fotad on SQLite against %d "
                     "on PostgreSQL." % (a.wave_devices, a.wave_instances), ""]
            rows += phase_wave(a, ft, pg, tmp, log) + [""]
    finally:
        pg.stop()
        if os.environ.get("FOTA_KEEP_TMP"):
            log("kept %s (FOTA_KEEP_TMP)" % tmp)
        else:
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
