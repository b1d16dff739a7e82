"""bench/benchlib.py - shared pieces of fota's benchmarks: their common options and output,
the machine description, limits raised inside the process, CPU time of a process from /proc,
nginx and wrk (the benchmarks that compare fotad with nginx), and the result files: each run
writes bench/results/DATE-TIME-COMMIT.md (one section per benchmark, raw output included), and
a complete `make bench` run becomes the "Latest full run" of docs/benchmarks.md. Python 3
stdlib only.

    python3 bench/benchlib.py new-run        prints the path of a new result file
    python3 bench/benchlib.py latest FILE    docs/benchmarks.md's latest full run := FILE

A benchmark script builds nothing: it takes its binaries from --bin-dir (default build/bin,
the gcc -O2 preset that `make bench` builds first) and starts fotad through the integration
harness (tests/integration/fotatest.py) on loopback ephemeral ports in a temp dir."""
import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.environ.get("FOTA_SRC_DIR") or os.path.join(HERE, ".."))
DOC = os.path.join(SRC, "docs", "benchmarks.md")
RESULTS = os.path.join(SRC, "bench", "results")
LATEST = "## Latest full run"


def arg_parser(doc):
    """A parser described by the first paragraph of doc, with the options every benchmark
    takes: --bin-dir, --no-append, --smoke (the script adds its own)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--bin-dir", default=None, help="the binaries (default: build/bin)")
    ap.add_argument("--no-append", action="store_true",
                    help="do not write a result file (bench/results/)")
    ap.add_argument("--smoke", action="store_true", help="a tiny run, no result file")
    return ap


class Log:
    """A benchmark's output: each line printed as it comes and kept in .lines for the result
    file. Call it with a line (none: an empty one)."""

    def __init__(self):
        self.lines = []

    def __call__(self, s=""):
        print(s, flush=True)
        self.lines.append(s)


def use_bin_dir(bin_dir):
    """Points the integration harness at bin_dir and imports it (returns the module)."""
    os.environ["FOTA_BIN_DIR"] = os.path.abspath(bin_dir or os.path.join(SRC, "build", "bin"))
    sys.path.insert(0, os.path.join(SRC, "tests", "integration"))
    import fotatest  # noqa: E402  (needs FOTA_BIN_DIR first)
    return fotatest


def raise_limits(log=print):
    """Raises the open-file soft limit to the hard limit (children inherit it) and, when
    writable (root), widens the loopback ephemeral port range. Returns a one-line summary."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    notes = ["open files %d -> %d (hard limit)" % (soft, hard)]
    path = "/proc/sys/net/ipv4/ip_local_port_range"
    try:
        with open(path) as f:
            lo, hi = (int(x) for x in f.read().split())
        if lo > 10000 or hi < 65000:
            try:
                with open(path, "w") as f:
                    f.write("10000 65000\n")
                notes.append("ephemeral ports %d-%d -> 10000-65000" % (lo, hi))
            except OSError:
                notes.append("ephemeral ports %d-%d (not writable)" % (lo, hi))
        else:
            notes.append("ephemeral ports %d-%d" % (lo, hi))
    except OSError:
        pass
    line = "limits raised inside the script: " + ", ".join(notes)
    log(line)
    return line


def cpu_seconds(pid):
    """utime + stime of a process and all its threads, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_ns(pid):
    """CPU time of all of a process's threads in ns (/proc/PID/task/*/schedstat), finer than
    the clock ticks of cpu_seconds; None where schedstat is missing."""
    total = 0
    try:
        for t in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total


def need_tools(*tools):
    """Stops the benchmark when one of the programs is not installed."""
    for tool in tools:
        if not shutil.which(tool):
            raise SystemExit("%s is not installed: run scripts/deps.sh --bench" % tool)


def blob_file(d, data):
    """The file of fotad d's blob store that holds data (a release's file)."""
    import hashlib
    sha = hashlib.sha256(data).hexdigest()
    path = os.path.join(d.data_dir, "blobs", "sha256", sha[:2], sha)
    if not os.path.exists(path):
        raise SystemExit("blob file not found: " + path)
    return path


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


def start_nginx(ft, blob, tmp, location, name):
    """Debian's nginx (sendfile on, tcp_nopush on, access_log off, keepalive_timeout 0) on a
    free loopback port (ft: the harness module), serving blob as www/name (the very same file)
    with the given location block, its files under tmp/nginx. Returns (process, port)."""
    prefix = os.path.join(tmp, "nginx")
    os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
    port = ft.free_port()
    conf = os.path.join(prefix, "nginx.conf")
    www = os.path.join(prefix, "www")
    os.makedirs(www, exist_ok=True)
    try:   # the very same file: a hard link to the blob (same inode), else a symlink
        os.link(blob, os.path.join(www, name))
    except OSError:
        os.symlink(blob, os.path.join(www, name))
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
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


def stop_nginx(proc):
    """Stops an nginx of start_nginx gracefully (SIGQUIT), killing it after 10 s."""
    import signal
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
            total += cpu_seconds(k)
        except OSError:
            pass
    return total


def wrk(args, duration):
    """Runs wrk with args (a run of duration seconds) and returns its report."""
    p = subprocess.run(["wrk"] + args, capture_output=True, text=True, timeout=duration + 60)
    if p.returncode != 0 or "Requests/sec" not in p.stdout:
        raise SystemExit("wrk failed (%d): %s %s" % (p.returncode, p.stdout, p.stderr))
    return p.stdout


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


def machine():
    """nproc, CPU model, kernel, date (UTC), git commit (rev, and whether server/, common/ or
    bench/ had uncommitted changes), as a dict."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    rev, dirty = "?", False
    try:
        rev = subprocess.run(["git", "-C", SRC, "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip() or "?"
        dirty = bool(subprocess.run(["git", "-C", SRC, "status", "--porcelain",
                                     "--untracked-files=no", "--", "server", "common", "bench"],
                                    capture_output=True, text=True, timeout=10).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    now = datetime.datetime.now(datetime.timezone.utc)
    commit = rev + (" (+ uncommitted changes in server/, common/ or bench/)" if dirty else "")
    return {"nproc": os.cpu_count() or 1, "cpu": model, "kernel": platform.release(),
            "date": now.strftime("%Y-%m-%d %H:%M UTC"), "stamp": now.strftime("%Y-%m-%d-%H%M"),
            "rev": rev, "dirty": dirty, "commit": commit}


def new_run_file():
    """The path of a new result file, bench/results/DATE-TIME-COMMIT[-dirty].md."""
    m = machine()
    rev = m["rev"] if m["rev"] != "?" else "unknown"
    name = "%s-%s%s.md" % (m["stamp"], rev, "-dirty" if m["dirty"] else "")
    return os.path.join(RESULTS, name)


def append_doc(title, summary_md, raw_text):
    """Appends a result section (machine, date, commit, summary, raw output) to this run's
    result file: FOTA_BENCH_RUN (bench/run-all.sh sets it, so one `make bench` is one file),
    else a new file of its own. Returns the file's path."""
    m = machine()
    path = os.environ.get("FOTA_BENCH_RUN") or new_run_file()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    new = not os.path.exists(path) or os.path.getsize(path) == 0
    with open(path, "a") as f:
        if new:
            f.write("# Benchmark run %s, commit %s\n\nRaw results of the scripts in `bench/`; "
                    "goals and analysis: docs/benchmarks.md.\n" % (m["date"], m["commit"]))
        f.write("\n## %s — %s\n\n" % (title, m["date"]))
        f.write("Machine: %d cores, %s, Linux %s. Commit %s.\n\n" %
                (m["nproc"], m["cpu"], m["kernel"], m["commit"]))
        f.write(summary_md.rstrip() + "\n\n")
        f.write("<details><summary>raw output</summary>\n\n```\n%s\n```\n\n</details>\n" %
                raw_text.rstrip())
    return path


def latest_section(run_path):
    """docs/benchmarks.md's "Latest full run" section made from a result file: the machine
    once, then each benchmark's summary (its raw output stays in the result file)."""
    with open(run_path) as f:
        text = f.read()
    rel = os.path.relpath(run_path, SRC)
    parts = text.split("\n## ")
    head = parts[0].splitlines()[0].lstrip("# ")
    out = ["%s — %s" % (LATEST, head.replace("Benchmark run ", "")), "",
           "`make bench` (bench/run-all.sh); raw output of every benchmark: "
           "[%s](../%s)." % (rel, rel), ""]
    machine_line = None
    for part in parts[1:]:
        lines = part.split("\n")
        title = lines[0].split(" — ")[0]
        body = []
        for line in lines[1:]:
            if line.startswith("<details>"):
                break
            if line.startswith("Machine:"):
                machine_line = machine_line or line.split(" Commit ")[0]
                continue
            body.append(line)
        out.append("### " + title)
        out.append("")
        prev = ""
        for line in "\n".join(body).strip().split("\n"):
            if prev.startswith("|") and line and not line.startswith("|"):
                out.append("")          # a table ends at a blank line
            out.append(line)
            prev = line
        out.append("")
    if machine_line:
        out.insert(4, machine_line)
        out.insert(5, "")
    return "\n".join(out).rstrip() + "\n"


def set_latest(run_path, doc=DOC):
    """Replaces docs/benchmarks.md from its "Latest full run" heading to the end."""
    with open(doc) as f:
        text = f.read()
    at = text.find("\n" + LATEST)
    if at < 0:
        raise SystemExit("benchlib: no '%s' heading in %s" % (LATEST, doc))
    with open(doc, "w") as f:
        f.write(text[:at + 1] + latest_section(run_path))


def start_quiet_fotad(ft, tmp, extra=(), data_dir=None, **kw):
    """Starts fotad (harness class ft.Fotad) at log level info (the harness waits for its
    `listening` and `fotad ready` lines), then switches it to warn with a config-file reload
    (SIGHUP), so per-request INFO lines do not weigh on the benchmark (nginx runs with
    access_log off); with FOTA_BENCH_LOG_INFO set it stays at info (diagnosis; the figures
    then carry the logging's cost). Returns the started Fotad. Config keys in kw (e.g. workers=2); data_dir
    None: one in the harness's temp dir."""
    import signal
    conf = os.path.join(tmp, "fotad-bench.conf")

    def write(level):
        with open(conf, "w") as f:
            f.write("[fotad]\nlog_level = %s\n" % level)
            for k, v in kw.items():
                f.write("%s = %s\n" % (k, v))
    write("info")
    d = ft.Fotad(config=conf, extra=list(extra), data_dir=data_dir)
    d.start()
    if os.environ.get("FOTA_BENCH_LOG_INFO"):   # diagnosis: every INFO line, at their cost
        return d
    write("warn")
    d.proc.send_signal(signal.SIGHUP)
    # The reload line is logged at INFO after the level changed: poll until a request
    # no longer adds a log line (bounded).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        n = len(d.log_text())
        d.request("GET", "/v1/nonexistent-bench-probe")
        if len(d.log_text()) == n:
            return d
        time.sleep(0.05)
    raise SystemExit("fotad did not switch to log level warn after SIGHUP")


if __name__ == "__main__":
    if sys.argv[1:] == ["new-run"]:
        print(new_run_file())
    elif len(sys.argv) == 3 and sys.argv[1] == "latest":
        set_latest(os.path.abspath(sys.argv[2]))
    else:
        raise SystemExit("usage: benchlib.py new-run | latest FILE")
