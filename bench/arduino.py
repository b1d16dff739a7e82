#!/usr/bin/env python3
"""bench/arduino.py - benchmark 6: devices on the ESP8266 Arduino core against fotad's
/v1/arduino/KEY/firmware.bin and against Debian's nginx given the very same request bytes, in
the same run, driven by wrk at 100 and 1,000 connections, alternating fotad / nginx for
several rounds:

  check-ins   every device already runs the current release (its x-ESP8266-sketch-md5 is the
              image's): fotad answers 304 (docs/arduino.md); nginx answers `return 304;`
  downloads   every device runs an older sketch: fotad answers 200 with the 512 KiB image
              (x-MD5, sendfile, close); nginx serves the same blob file with the same x-MD5
              (sendfile on, tcp_nopush on, as benchmark 1)

and, with --stall, how long fotad's main loop stops answering while a large arduino release is
uploaded to a gzip product (fotad checks the image and compresses it at the best level): a
client reads GET /v1/products/ID/ (main loop) back to back during the upload; its longest wait
is the stall.

Each request is ESPhttpUpdate's, byte for byte (reference arduino-ota §2.1: HTTP/1.0,
Connection: close, the x-ESP8266-* headers, Content-Length: 0), from one of --devices devices
(their STA MACs differ), one connection per request as the device does; wrk sends the bytes
through a Lua script. The devices are registered before the timed runs (one check-in each),
and confirm_after is set to 30 days so that devices downloading again and again stay on the
download path (no upgrade is judged failed during the run). Reports req/s, the fotad/nginx
ratio, CPU per request (utime+stime from /proc: fotad's process, nginx's workers) and checks
that fotad answered as it should (no 200 on the check-in path: the release's download count
stays 0; the whole image on the download path: bytes per request).

  python3 bench/arduino.py [--rounds 3] [--duration 10] [--conns 100,1000] [--devices 1000]
                           [--bin-dir build/bin] [--no-append] [--smoke]

Builds nothing; needs nginx and wrk (scripts/deps.sh --bench). Raises the open-file limit to
the hard limit and, as root, widens the ephemeral port range. --smoke: 1 round of 1 s at 4 and
16 connections, 20 devices, no result file."""
import hashlib
import http.client
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

PATHS = ("checkins", "downloads")


def mac_of(i):
    return "DE:BA:7A:%02X:%02X:%02X" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)


def lua_string(b):
    """A Lua string literal of the request bytes (\\r and \\n escaped, nothing else needs it)."""
    text = b.decode("ascii")
    assert '"' not in text and "\\" not in text
    return '"' + text.replace("\r", "\\r").replace("\n", "\\n") + '"'


def write_lua(path, requests):
    """A wrk script that sends requests[k] (raw bytes) in turn; each thread starts elsewhere
    in the list so the devices interleave."""
    with open(path, "w") as f:
        f.write("-- the core's check-in (arduino-ota §2.1), one device of %d per request\n"
                % len(requests))
        f.write("local reqs = {\n%s\n}\n" % ",\n".join(lua_string(r) for r in requests))
        f.write("local threads = 0\n"
                "function setup(thread) thread:set(\"tid\", threads); threads = threads + 1 end\n"
                "local n = 0\n"
                "function init(args) n = ((tid or 0) * 7919) %% %d end\n"
                "function request() n = n %% %d + 1; return reqs[n] end\n"
                % (len(requests), len(requests)))


def run_wrk(port, conns, duration, threads, script, path):
    args = ["-t", str(min(threads, conns)), "-c", str(conns), "-d", "%ds" % duration,
            "--timeout", "10s", "-s", script, "http://127.0.0.1:%d%s" % (port, path)]
    return "wrk " + " ".join(args) + "\n" + benchlib.wrk(args, duration)


def exchange(port, request):
    """One request on its own connection; (status, body) read to the close."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(request)
        chunks = []
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def upload_stall(d, ft, arduino_util, size, seed):
    """Uploads a size-byte image to a new gzip product while a client reads the product back to
    back on a keep-alive connection (the main loop answers it). Returns (upload seconds, the
    longest read in ms during the upload, the median read in ms before it, reads during it)."""
    st, _, j = d.api("POST", "/v1/products/", {"name": "stall-%d" % size, "platform": "arduino",
                                               "gzip": True})
    if st != 200:
        raise SystemExit("gzip product: %d %r" % (st, j))
    pid = j["product"]["id"]
    img = arduino_util.build_image(mode=2, irom=max(4096, size - 0x3000), seed=seed)
    ct, body = ft.multipart({"version": "1.0.0"}, [("firmware.bin", "firmware.bin", img)])
    lat, stop = [], threading.Event()
    marks = {}

    def probe():
        c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=30)
        while not stop.is_set():
            t0 = time.monotonic()
            c.request("GET", "/v1/products/%d/" % pid, headers={"Authorization": "token " +
                                                                 d.admin_key})
            r = c.getresponse()
            r.read()
            if r.status != 200:
                raise SystemExit("probe: %d" % r.status)
            lat.append((t0, time.monotonic() - t0))
        c.close()

    th = threading.Thread(target=probe)
    th.start()
    time.sleep(0.3)   # a baseline of reads before the upload (timing, not synchronisation)
    marks["start"] = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=120)
    c.request("POST", "/v1/products/%d/roms/" % pid, body=body,
              headers={"Content-Type": ct, "Authorization": "token " + d.admin_key})
    r = c.getresponse()
    r.read()
    marks["end"] = time.monotonic()
    stop.set()
    th.join()
    c.close()
    if r.status != 200:
        raise SystemExit("upload of %d bytes: %d" % (size, r.status))
    before = sorted(x for t0, x in lat if t0 < marks["start"])
    during = [x for t0, x in lat if t0 + x >= marks["start"] and t0 <= marks["end"]]
    med = before[len(before) // 2] if before else 0.0
    return marks["end"] - marks["start"], 1e3 * max(during or [0.0]), 1e3 * med, len(during)


def release_downloads(d, pid, version):
    st, _, j = d.api("GET", "/v1/products/%d/roms/%s/" % (pid, version))
    if st != 200:
        raise SystemExit("release %s: %d %r" % (version, st, j))
    return sum(f.get("download_count", 0) for f in j["rom"]["files"])


def main():
    ap = benchlib.arg_parser(__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--conns", default="100,1000")
    ap.add_argument("--devices", type=int, default=1000, help="distinct devices (STA MACs)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="wrk threads")
    ap.add_argument("--size", type=int, default=524288, help="image size in bytes (about)")
    ap.add_argument("--paths", default=",".join(PATHS))
    ap.add_argument("--stall", default="1048576,4194304",
                    help="image sizes for the upload-stall measurement ('' for none)")
    ap.add_argument("--fotad-arg", action="append", default=[], help="extra fotad flag")
    ap.add_argument("--conf", action="append", default=[], help="fotad config KEY=VALUE")
    a = ap.parse_args()
    if a.smoke:
        a.rounds, a.duration, a.conns, a.devices, a.no_append = 1, 1, "4,16", 20, True
        a.stall = "262144"
    conns = [int(x) for x in a.conns.split(",")]
    paths = [p for p in a.paths.split(",") if p]
    benchlib.need_tools("nginx", "wrk")
    ft = benchlib.use_bin_dir(a.bin_dir)
    import arduino_util  # noqa: E402  (tests/integration, on the path after use_bin_dir)
    say = benchlib.Log()
    limits = benchlib.raise_limits(say)
    load0 = os.getloadavg()[0]
    tmp = tempfile.mkdtemp(prefix="bench-arduino-")
    nginx = {}
    d = None
    try:
        d = benchlib.start_quiet_fotad(ft, tmp, extra=["--http-timeout", "60"] + a.fotad_arg,
                                       **dict(kv.split("=", 1) for kv in a.conf))
        st, _, j = d.api("POST", "/v1/products/", {"name": "bench-arduino", "platform": "arduino",
                                                   "confirm_after": 30 * 86400})
        if st != 200:
            raise SystemExit("arduino product: %d %r" % (st, j))
        pid, key = j["product"]["id"], j["product_key"]
        img = arduino_util.build_image(mode=3, irom=max(4096, a.size - 0x1000 - 0x2000), seed=6)
        d.upload_release(pid, "2.0.0", files=[("firmware.bin", img)])
        d.set_current(pid, "2.0.0")
        md5 = hashlib.md5(img).hexdigest()
        old_md5 = hashlib.md5(b"an older sketch").hexdigest()
        blob = benchlib.blob_file(d, img)
        url_path = "/v1/arduino/%s/firmware.bin" % key
        reqs = {}
        for pth in paths:
            sketch = md5 if pth == "checkins" else old_md5
            reqs[pth] = [arduino_util.core_request(url_path, "127.0.0.1", version="1.0.0",
                                                   mac=mac_of(i), sketch_md5=sketch,
                                                   sketch_size=len(img))
                         for i in range(a.devices)]
        # the devices exist before the timed runs (registration is a write of its own)
        for r in reqs.get("checkins") or reqs.get("downloads") or []:
            exchange(d.http_port, r)
        # what each server answers, checked once before the runs
        want = {"checkins": (304, b""), "downloads": (200, img)}
        locations = {
            "checkins": "location /v1/arduino/ { return 304; }",
            "downloads": "location /v1/arduino/ { add_header x-MD5 %s; "
                         "try_files /firmware.bin =404; }" % md5,
        }
        scripts = {}
        for pth in paths:
            got = exchange(d.http_port, reqs[pth][0])
            if got != want[pth]:
                raise SystemExit("fotad %s answered %d with %d bytes" % (pth, got[0],
                                                                         len(got[1])))
            nginx[pth] = benchlib.start_nginx(ft, blob, os.path.join(tmp, pth), locations[pth],
                                              "firmware.bin")
            got = exchange(nginx[pth][1], reqs[pth][0])
            if got != want[pth]:
                raise SystemExit("nginx %s answered %d with %d bytes" % (pth, got[0],
                                                                         len(got[1])))
            scripts[pth] = os.path.join(tmp, pth + ".lua")
            write_lua(scripts[pth], reqs[pth])
        pid_f = d.proc.pid
        say("image %d bytes (firmware.bin, dout, 4 MB), %d devices (STA MACs), request %d bytes "
            "(ESPhttpUpdate, core 3.1.2)" % (len(img), a.devices,
                                             len(reqs[paths[0]][0]) if paths else 0))
        say("fotad pid %d port %d %s; nginx (keepalive_timeout 0) per path; wrk -t %d" %
            (pid_f, d.http_port, " ".join(a.fotad_arg + a.conf), a.threads))
        raw, res, cpu = [], {}, {}
        checkin_served = 0
        for rnd in range(a.rounds):
            for pth in paths:
                for c_ in conns:
                    for name in ("fotad", "nginx"):
                        port = d.http_port if name == "fotad" else nginx[pth][1]
                        cpu_of = ((lambda: benchlib.cpu_seconds(pid_f)) if name == "fotad" else
                                  (lambda p=pth: benchlib.nginx_cpu(nginx[p][0].pid)))
                        before = release_downloads(d, pid, "2.0.0") if name == "fotad" else 0
                        t0, c0 = time.monotonic(), cpu_of()
                        text = run_wrk(port, c_, a.duration, a.threads, scripts[pth], url_path)
                        used, wall = cpu_of() - c0, time.monotonic() - t0
                        if name == "fotad" and pth == "checkins":
                            checkin_served += release_downloads(d, pid, "2.0.0") - before
                        acc = cpu.setdefault((pth, name, c_), [0.0, 0.0])
                        acc[0] += used
                        acc[1] += wall
                        r = benchlib.parse_wrk(text)
                        res.setdefault((pth, name, c_), []).append(r)
                        raw.append("# round %d, %s, %s, %d connections\n%s" % (rnd + 1, pth,
                                                                               name, c_, text))
                        say("round %d %-9s %-5s c=%-5d %9.0f req/s %8.1f MB/s  non-2xx/3xx %d  "
                            "socket errors %d" % (rnd + 1, pth, name, c_, r[0], r[1] / 1e6, r[3],
                                                  r[4]))
        ncpu = os.cpu_count() or 1
        say()
        if paths:
            say("| path | connections | fotad req/s | nginx req/s | fotad/nginx | CPU fotad / "
                "nginx (%% of %d cores) | CPU µs per request fotad / nginx | bytes per answer "
                "fotad / nginx | errors fotad/nginx |" % ncpu)
            say("|---|---|---|---|---|---|---|---|---|")
        ratios, bad = [], []
        for pth in paths:
            for c_ in conns:
                f, n = res[(pth, "fotad", c_)], res[(pth, "nginx", c_)]
                frps, nrps = sum(x[0] for x in f) / len(f), sum(x[0] for x in n) / len(n)
                ratio = frps / nrps if nrps else 0.0
                ratios.append((pth, c_, ratio))
                fc, nc = cpu[(pth, "fotad", c_)], cpu[(pth, "nginx", c_)]
                fus = 1e6 * fc[0] / max(1, sum(x[2] for x in f))
                nus = 1e6 * nc[0] / max(1, sum(x[2] for x in n))
                fb = sum(x[1] for x in f) / max(1.0, sum(x[0] for x in f))
                nb = sum(x[1] for x in n) / max(1.0, sum(x[0] for x in n))
                ferr = sum(x[3] + x[4] for x in f)
                nerr = sum(x[3] + x[4] for x in n)
                say("| %s | %d | %.0f | %.0f | %.2f× | %.0f%% / %.0f%% | %.1f / %.1f | %.0f / %.0f "
                    "| %d / %d |" % (pth, c_, frps, nrps, ratio, 100 * fc[0] / (fc[1] * ncpu),
                                      100 * nc[0] / (nc[1] * ncpu), fus, nus, fb, nb, ferr,
                                      nerr))
                if pth == "downloads" and abs(fb - len(img)) > 0.02 * len(img):
                    bad.append("fotad sent %.0f bytes per download, not the %d-byte image" %
                               (fb, len(img)))
        if checkin_served:
            bad.append("fotad served the image %d times on the check-in path" % checkin_served)
        stalls = [int(x) for x in a.stall.split(",") if x]
        if stalls:
            say()
            say("| upload (gzip product, fotad compresses) | upload time | longest main-loop "
                "read during it | median read before it | reads during it |")
            say("|---|---|---|---|---|")
        for i, size in enumerate(stalls):
            up, worst, med, n = upload_stall(d, ft, arduino_util, size, 40 + i)
            say("| %d KiB image | %.0f ms | %.1f ms | %.2f ms | %d |" % (size >> 10, 1e3 * up,
                                                                       worst, med, n))
        met = all(r >= 1.0 for _, _, r in ratios)
        say()
        say("machine load (1-minute average): %.1f at the start, %.1f at the end (2 cores shared "
            "with wrk and nginx; more than 2 means other work competed for them)" %
            (load0, os.getloadavg()[0]))
        say()
        say("goal: fotad >= 1.0x nginx req/s on both paths at every concurrency: %s" %
            ("met" if met else "NOT met"))
        say("RESULT arduino ratios=%s" % ",".join("%s@%d:%.3f" % r for r in ratios))
        if bad:
            raise SystemExit("fotad did not answer as it should: " + "; ".join(bad))
        if not a.no_append:
            summary = ("Benchmark 6, Arduino-core devices vs nginx: %d rounds × %d s per path, "
                       "server and concurrency, alternating; %d devices sending ESPhttpUpdate's "
                       "request bytes (one connection each); %d-byte image; %s.\n\n%s" %
                       (a.rounds, a.duration, a.devices, len(img), limits, "\n".join(
                           line for line in say.lines if line.startswith("|") or
                           line.startswith("goal") or line.startswith("machine load") or
                           not line).strip()))
            say("appended to %s" % benchlib.append_doc(
                "Arduino check-ins and downloads vs nginx (benchmark 6)", summary,
                "\n".join(say.lines) + "\n\n" + "\n".join(raw)))
        d.stop()
        return 0
    finally:
        for proc, _ in nginx.values():
            benchlib.stop_nginx(proc)
        if d:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
