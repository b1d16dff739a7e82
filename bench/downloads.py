#!/usr/bin/env python3
"""bench/downloads.py - benchmark 1: the same 512 KiB image served by fotad's ROM
endpoint (GET /v1/device/rom/?action=download_rom, master device key) and by Debian's nginx
(sendfile on, tcp_nopush on, access_log off, worker_processes auto, started here on loopback,
serving the very same blob file), driven by wrk at 100 and 1,000 connections, alternating
fotad / nginx for several rounds. Reports req/s, MB/s, the fotad/nginx ratio per concurrency
and fotad's CPU use (utime+stime from /proc over its wrk runs, % of all cores).

  python3 bench/downloads.py [--rounds 3] [--duration 10] [--conns 100,1000]
                             [--bin-dir build/bin] [--no-append] [--smoke]

Every ROM download reply says `Connection: close` (stock devices fetch one image per
connection, and a trailing NUL must never parse as a second request), so nginx is configured
with keepalive_timeout 0: both servers do one TCP connection per request. fotad runs with
--log-level warn (nginx: access_log off). Builds nothing; needs nginx and wrk
(scripts/deps.sh --bench). Raises the open-file limit to the hard limit and, as root, widens
the ephemeral port range. --smoke: 1 round of 1 s at 4 and 16 connections, no append."""
import argparse
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

NGINX_CONF = """worker_processes auto;
worker_rlimit_nofile %(nofile)d;
%(user)s
pid %(prefix)s/nginx.pid;
error_log %(prefix)s/error.log warn;
events { worker_connections %(wconns)d; }
http {
    sendfile on;
    tcp_nopush on;
    access_log off;
    keepalive_timeout 0;
    client_body_temp_path %(prefix)s/tmp;
    proxy_temp_path %(prefix)s/tmp;
    fastcgi_temp_path %(prefix)s/tmp;
    uwsgi_temp_path %(prefix)s/tmp;
    scgi_temp_path %(prefix)s/tmp;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:%(port)d reuseport;
        root %(www)s;
        %(location)s
    }
}
"""

URL_PATH = "/v1/device/rom/?action=download_rom&version=v1.1&filename=user2.bin"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


ROM_LOCATION = "location = /v1/device/rom/ { try_files /user2.bin =404; }"


def start_nginx(blob, tmp, location=ROM_LOCATION, name="user2.bin"):
    """nginx on a free loopback port serving blob as www/name (the very same file) with the
    given location block (bench/arduino.py reuses it). Returns (process, port)."""
    prefix = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    port = free_port()
    conf = os.path.join(prefix, "nginx.conf")
    www = os.path.join(prefix, "www")
    os.makedirs(www, exist_ok=True)
    try:   # the very same file: a hard link to the blob (same inode), else a symlink
        os.link(blob, os.path.join(www, name))
    except OSError:
        os.symlink(blob, os.path.join(www, name))
    nofile = 20000
    try:
        import resource
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError):
        pass
    with open(conf, "w") as f:
        f.write(NGINX_CONF % {"prefix": prefix, "port": port, "www": www, "nofile": nofile,
                              "location": location,
                              "wconns": max(1024, min(nofile - 100, 16384)),
                              "user": "user root;" if os.geteuid() == 0 else ""})
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", prefix, "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(prefix, "out"), "w"))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("nginx exited: " + open(os.path.join(prefix, "error.log")).read()
                             if os.path.exists(os.path.join(prefix, "error.log")) else "nginx failed")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)  # polling the listener with a bounded deadline
    proc.kill()
    raise SystemExit("nginx did not listen within 10 s")


UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def parse_wrk(text):
    """(requests/s, bytes/s, requests, non-2xx, socket errors) from wrk's output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", text)
    bps = float(m.group(1)) * UNITS[m.group(2)]
    n = int(re.search(r"(\d+) requests in", text).group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    bad = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errs = sum(int(x) for x in m.groups()) if m else 0
    return rps, bps, n, bad, errs


def nginx_cpu(master):
    """CPU seconds of nginx's worker processes (children of the master)."""
    total = 0.0
    try:
        with open("/proc/%d/task/%d/children" % (master, master)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        kids = []
    for k in kids:
        try:
            total += benchlib.cpu_seconds(k)
        except OSError:
            pass
    return total


def run_wrk(port, conns, duration, threads, key):
    args = ["wrk", "-t", str(min(threads, conns)), "-c", str(conns), "-d", "%ds" % duration,
            "--timeout", "10s", "-H", "Authorization: token " + key,
            "http://127.0.0.1:%d%s" % (port, URL_PATH)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60)
    if p.returncode != 0 or "Requests/sec" not in p.stdout:
        raise SystemExit("wrk failed (%d): %s %s" % (p.returncode, p.stdout, p.stderr))
    return " ".join(args[:-3]) + " -H 'Authorization: token …' " + args[-1] + "\n" + p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="wrk threads")
    ap.add_argument("--size", type=int, default=524288)
    ap.add_argument("--bin-dir", default=None)
    ap.add_argument("--fotad-arg", action="append", default=[], help="extra fotad flag")
    ap.add_argument("--conf", action="append", default=[], help="fotad config KEY=VALUE")
    ap.add_argument("--no-append", action="store_true",
                    help="do not write a result file (bench/results/)")
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    if a.smoke:
        a.rounds, a.duration, a.conns, a.no_append = 1, 1, "4,16", True
    conns = [int(x) for x in a.conns.split(",")]
    for tool in ("nginx", "wrk"):
        if not shutil.which(tool):
            raise SystemExit("%s is not installed: run scripts/deps.sh --bench" % tool)
    ft = benchlib.use_bin_dir(a.bin_dir)
    out = []

    def say(s=""):
        print(s, flush=True)
        out.append(s)

    limits = benchlib.raise_limits(say)
    tmp = tempfile.mkdtemp(prefix="bench-downloads-")
    nginx = None
    d = None
    try:
        d = benchlib.start_quiet_fotad(ft, tmp, extra=["--http-timeout", "60"] + a.fotad_arg,
                                       **dict(kv.split("=", 1) for kv in a.conf))
        fmap = 2 if a.size <= 499712 else 6
        prod = d.create_product("bench", flash_map=fmap)
        files = [("user1.bin", ft.make_image(1, fmap, "v1.1", a.size)),
                 ("user2.bin", ft.make_image(2, fmap, "v1.1", a.size))]
        d.upload_release(prod["id"], "v1.1", files=files, flash_map=fmap)
        dev = d.create_device(prod["id"], name="bench-dev")
        key = dev["master_device_key"]
        img = files[1][1]
        sha = hashlib.sha256(img).hexdigest()
        blob = os.path.join(d.data_dir, "blobs", "sha256", sha[:2], sha)
        if not os.path.exists(blob):
            raise SystemExit("blob file not found: " + blob)
        st, hdrs, body = d.request("GET", URL_PATH, key=key)
        if st != 200 or body != img:
            raise SystemExit("fotad ROM download check failed: %d, %d bytes" % (st, len(body)))
        nginx, nport = start_nginx(blob, tmp)
        c = socket.create_connection(("127.0.0.1", nport))
        c.close()
        pid = d.proc.pid
        say("image %d bytes (user2.bin, flash map %d), blob %s" % (len(img), fmap, blob))
        say("fotad pid %d port %d %s; nginx port %d (keepalive_timeout 0); wrk -t %d" %
            (pid, d.http_port, " ".join(a.fotad_arg + a.conf), nport, a.threads))
        raw = []
        res = {}   # (server, conns) -> list of (rps, bps, n, bad, errs)
        cpu = {c_: [0.0, 0.0, 0.0, 0.0] for c_ in conns}  # [fotad cpu, wall, nginx cpu, wall]
        for rnd in range(a.rounds):
            for c_ in conns:
                for name, port in (("fotad", d.http_port), ("nginx", nport)):
                    t0, c0, n0 = time.monotonic(), benchlib.cpu_seconds(pid), nginx_cpu(nginx.pid)
                    text = run_wrk(port, c_, a.duration, a.threads, key)
                    if name == "fotad":
                        cpu[c_][0] += benchlib.cpu_seconds(pid) - c0
                        cpu[c_][1] += time.monotonic() - t0
                    else:
                        cpu[c_][2] += nginx_cpu(nginx.pid) - n0
                        cpu[c_][3] += time.monotonic() - t0
                    r = parse_wrk(text)
                    res.setdefault((name, c_), []).append(r)
                    raw.append("# round %d, %s, %d connections\n%s" % (rnd + 1, name, c_, text))
                    say("round %d %-5s c=%-5d %10.0f req/s %8.1f MB/s  non-2xx %d  socket errors %d"
                        % (rnd + 1, name, c_, r[0], r[1] / 1e6, r[3], r[4]))
        ncpu = os.cpu_count() or 1
        say()
        say("| connections | fotad req/s | fotad MB/s | nginx req/s | nginx MB/s | fotad/nginx "
            "| CPU fotad / nginx (%% of %d cores) | CPU µs per request fotad / nginx "
            "| errors fotad/nginx |" % ncpu)
        say("|---|---|---|---|---|---|---|---|---|")
        ratios = []
        for c_ in conns:
            f, n = res[("fotad", c_)], res[("nginx", c_)]
            frps, fbps = sum(x[0] for x in f) / len(f), sum(x[1] for x in f) / len(f)
            nrps, nbps = sum(x[0] for x in n) / len(n), sum(x[1] for x in n) / len(n)
            ratio = frps / nrps if nrps else 0.0
            ratios.append(ratio)
            pct = 100.0 * cpu[c_][0] / (cpu[c_][1] * ncpu) if cpu[c_][1] else 0.0
            npct = 100.0 * cpu[c_][2] / (cpu[c_][3] * ncpu) if cpu[c_][3] else 0.0
            ferr = sum(x[3] + x[4] for x in f)
            nerr = sum(x[3] + x[4] for x in n)
            # CPU per request: less sensitive than req/s to other load on the machine
            fus = 1e6 * cpu[c_][0] / max(1, sum(x[2] for x in f))
            nus = 1e6 * cpu[c_][2] / max(1, sum(x[2] for x in n))
            say("| %d | %.0f | %.1f | %.0f | %.1f | %.2f× | %.0f%% / %.0f%% | %.1f / %.1f | %d / %d |"
                % (c_, frps, fbps / 1e6, nrps, nbps / 1e6, ratio, pct, npct, fus, nus, ferr, nerr))
        met = all(r >= 1.0 for r in ratios)
        say()
        say("goal: fotad >= 1.0x nginx req/s at every concurrency, every core used: %s" %
            ("met" if met else "NOT met"))
        say("RESULT downloads ratios=%s" % ",".join("%.3f" % r for r in ratios))
        if not a.no_append:
            summary = ("Benchmark 1, downloads vs nginx: %d rounds × %d s per server and "
                       "concurrency, alternating; 512 KiB image; %s.\n\n%s" %
                       (a.rounds, a.duration, limits, "\n".join(
                           line for line in out if line.startswith("|") or
                           line.startswith("goal"))))
            say("appended to %s" % benchlib.append_doc("Downloads vs nginx (benchmark 1)", summary,
                                                        "\n".join(out) + "\n\n" + "\n".join(raw)))
        d.stop()
        return 0
    finally:
        if nginx and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
                nginx.wait()
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
