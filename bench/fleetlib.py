"""bench/fleetlib.py - shared pieces of the fleet benchmarks (benchmarks 2-4):
registering many devices over the REST API, running fota-sim fleets as several processes
with several loopback source addresses, counting fotad's established device connections,
fotad's RSS from /proc, and percentiles. Python 3 stdlib only; builds on benchlib.py."""
import concurrent.futures
import http.client
import json
import os
import subprocess
import threading
import time

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"
SIM_MAX_PER_PROC = 9500     # each fota-sim process stays well under the 20,000-descriptor cap


def rss_kib(pid):
    """Resident set size of pid in KiB (VmRSS from /proc/PID/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def established(port):
    """Established TCP connections whose local port is port (fotad's side), from /proc."""
    return established_many([port])[0]


def established_many(ports):
    """established() of each of ports, from one read of /proc (a read of 200,000 sockets
    takes seconds: one per port would outlast what it measures)."""
    want = {"%04X" % p: i for i, p in enumerate(ports)}
    out = [0] * len(ports)
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split(None, 4)
                    if parts[3] == "01":
                        i = want.get(parts[1][-4:])
                        if i is not None:
                            out[i] += 1
        except OSError:
            pass
    return out


BATCH = 1000   # devices a POST /v1/products/ID/devices/ {"count": N} makes at most


def register(d, pid, n, threads=8, log=print):
    """Creates n devices of product pid through POST /v1/products/ID/devices/ (threads
    keep-alive connections): batches of up to BATCH ({"count": N}, one store transaction
    each), or one device a request from a fotad without batches (it ignores "count"). Returns
    the master device keys, in device id order."""
    out = []
    lock = threading.Lock()
    nxt = [0]
    batch = [True]
    t0 = time.monotonic()

    def post(conn, body):
        hdr = {"Authorization": "token " + d.admin_key, "Content-Type": "application/json"}
        for attempt in range(3):
            try:
                conn.request("POST", "/v1/products/%d/devices/" % pid, body=json.dumps(body),
                             headers=hdr)
                r = conn.getresponse()
                return conn, r.status, json.loads(r.read())
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=120)
                if attempt == 2:
                    raise
        return conn, 0, None

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=120)
        while True:
            with lock:
                k = min(BATCH if batch[0] else 1, n - nxt[0])
                nxt[0] += k
            if k <= 0:
                break
            got = []
            if batch[0]:
                conn, st, j = post(conn, {"count": k})
                if st == 200 and "devices" in j:
                    got = [(x["id"], x["master_device_key"]) for x in j["devices"]]
                elif st == 200:   # an older fotad: one device a request (it made one)
                    batch[0] = False
                    got = [(j["device"]["id"], j["master_device_key"])]
                elif st == 422:
                    batch[0] = False
                else:
                    raise SystemExit("device registration failed: %d %r" % (st, j))
            for _ in range(k - len(got)):
                conn, st, j = post(conn, {})
                if st != 200:
                    raise SystemExit("device registration failed: %d %r" % (st, j))
                got.append((j["device"]["id"], j["master_device_key"]))
            with lock:
                out.extend(got)
        conn.close()
    with concurrent.futures.ThreadPoolExecutor(threads) as ex:
        for f in [ex.submit(worker) for _ in range(threads)]:
            f.result()
    out.sort()
    log("registered %d devices in %.1f s" % (n, time.monotonic() - t0))
    return [k for _, k in out]


def start_sims(sim_bin, d, keys, tmp, args, source_addrs=4, per_proc=SIM_MAX_PER_PROC,
               seed0=1, nice=0):
    """Starts fota-sim processes for keys (split in slices of per_proc, each with its keys
    file); args are the common options; nice < 0 (as root) runs them ahead of the servers, as
    devices with CPUs of their own. Returns the Popen list (stdout: the --json summary)."""
    procs = []
    for p, at in enumerate(range(0, len(keys), per_proc)):
        part = keys[at:at + per_proc]
        kf = os.path.join(tmp, "keys-%d.txt" % p)
        with open(kf, "w") as f:
            f.write("\n".join(part) + "\n")
        cmd = [sim_bin, "--server", "127.0.0.1", "--http-port", str(d.http_port),
               "--device-port", str(d.ports["device"]), "--keys", kf, "--devices", str(len(part)),
               "--source-addrs", str(source_addrs), "--seed", str(seed0 + p), "--json"] + list(args)
        errf = open(os.path.join(tmp, "sim-%d.err" % p), "w")
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True,
                                      preexec_fn=(lambda: os.nice(nice)) if nice else None))
    return procs


def wait_sims(procs, timeout):
    """Waits for every sim; returns their parsed --json summaries (None for a bad one)."""
    deadline = time.monotonic() + timeout
    res = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
        try:
            res.append(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            res.append(None)
    return res


def stop_sims(procs, timeout=60):
    """Ends every sim's run now (SIGTERM: each prints its --json summary as at --timeout);
    returns the summaries as wait_sims does."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    return wait_sims(procs, timeout)


def kill_sims(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.communicate()


def wait_until(pred, timeout, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int((len(v) - 1) * p / 100.0 + 0.5))]
