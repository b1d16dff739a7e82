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
import os
import shutil
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

URL_PATH = "/v1/device/rom/?action=download_rom&version=v1.1&filename=user2.bin"
ROM_LOCATION = "location = /v1/device/rom/ { try_files /user2.bin =404; }"


def run_wrk(port, conns, duration, threads, key):
    args = ["-t", str(min(threads, conns)), "-c", str(conns), "-d", "%ds" % duration,
            "--timeout", "10s", "-H", "Authorization: token " + key,
            "http://127.0.0.1:%d%s" % (port, URL_PATH)]
    text = benchlib.wrk(args, duration)
    return "wrk " + " ".join(args[:-3]) + " -H 'Authorization: token …' " + args[-1] + "\n" + text


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="wrk threads")
    ap.add_argument("--size", type=int, default=524288)
    ap.add_argument("--fotad-arg", action="append", default=[], help="extra fotad flag")
    ap.add_argument("--conf", action="append", default=[], help="fotad config KEY=VALUE")
    a = ap.parse_args()
    if a.smoke:
        a.rounds, a.duration, a.conns, a.no_append = 1, 1, "4,16", True
    conns = [int(x) for x in a.conns.split(",")]
    benchlib.need_tools("nginx", "wrk")
    ft = benchlib.use_bin_dir(a.bin_dir)
    say = benchlib.Log()
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
        blob = benchlib.blob_file(d, img)
        st, hdrs, body = d.request("GET", URL_PATH, key=key)
        if st != 200 or body != img:
            raise SystemExit("fotad ROM download check failed: %d, %d bytes" % (st, len(body)))
        nginx, nport = benchlib.start_nginx(ft, blob, tmp, ROM_LOCATION, "user2.bin")
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
                    t0, c0, n0 = time.monotonic(), benchlib.cpu_seconds(pid), benchlib.nginx_cpu(nginx.pid)
                    text = run_wrk(port, c_, a.duration, a.threads, key)
                    if name == "fotad":
                        cpu[c_][0] += benchlib.cpu_seconds(pid) - c0
                        cpu[c_][1] += time.monotonic() - t0
                    else:
                        cpu[c_][2] += benchlib.nginx_cpu(nginx.pid) - n0
                        cpu[c_][3] += time.monotonic() - t0
                    r = benchlib.parse_wrk(text)
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
                           line for line in say.lines if line.startswith("|") or
                           line.startswith("goal"))))
            say("appended to %s" % benchlib.append_doc("Downloads vs nginx (benchmark 1)", summary,
                                                        "\n".join(say.lines) + "\n\n" + "\n".join(raw)))
        d.stop()
        return 0
    finally:
        if nginx:
            benchlib.stop_nginx(nginx)
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
