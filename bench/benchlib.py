"""bench/benchlib.py - shared pieces of fota's benchmarks: the machine description,
limits raised inside the process, CPU time of a process from /proc, and appending a result
section to docs/benchmarks.md. Python 3 stdlib only; benchmarks 2-4 (fota-sim fleets) reuse it.

A benchmark script builds nothing: it takes its binaries from --bin-dir (default build/bin,
the gcc -O2 preset that `make bench` builds first) and starts fotad through the integration
harness (tests/integration/fotatest.py) on loopback ephemeral ports in a temp dir."""
import datetime
import os
import platform
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.environ.get("FOTA_SRC_DIR") or os.path.join(HERE, ".."))
DOC = os.environ.get("FOTA_BENCH_DOC") or os.path.join(SRC, "docs", "benchmarks.md")


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


def machine():
    """nproc, CPU model, kernel, date (UTC) and git commit, as a dict."""
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", SRC, "rev-parse", "--short=12", "HEAD"],
                                capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", SRC, "status", "--porcelain", "--untracked-files=no",
                                "--", "server", "common", "bench"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if dirty:
            commit += " (+ uncommitted changes in server/, common/ or bench/)"
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    return {"nproc": os.cpu_count() or 1, "cpu": model, "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": commit or "?"}


def append_doc(title, summary_md, raw_text):
    """Appends a result section (machine, date, commit, summary, raw output) to
    docs/benchmarks.md, creating the file's title if it is new."""
    m = machine()
    new = not os.path.exists(DOC)
    with open(DOC, "a") as f:
        if new:
            f.write("# fota benchmarks\n\nResults appended by the scripts in `bench/` "
                    "(`make bench`). Goals and what limits them: see the top of each section.\n")
        f.write("\n## %s — %s\n\n" % (title, m["date"]))
        f.write("Machine: %d cores, %s, Linux %s. Commit %s.\n\n" %
                (m["nproc"], m["cpu"], m["kernel"], m["commit"]))
        f.write(summary_md.rstrip() + "\n\n")
        f.write("<details><summary>raw output</summary>\n\n```\n%s\n```\n\n</details>\n" %
                raw_text.rstrip())
    return DOC


def start_quiet_fotad(ft, tmp, extra=(), **kw):
    """Starts fotad (harness class ft.Fotad) at log level info (the harness waits for its
    `listening` and `fotad ready` lines), then switches it to warn with a config-file reload
    (SIGHUP), so per-request INFO lines do not weigh on the benchmark (nginx runs with
    access_log off). Returns the started Fotad. Config keys in kw (e.g. workers=2)."""
    import signal
    conf = os.path.join(tmp, "fotad-bench.conf")

    def write(level):
        with open(conf, "w") as f:
            f.write("[fotad]\nlog_level = %s\n" % level)
            for k, v in kw.items():
                f.write("%s = %s\n" % (k, v))
    write("info")
    d = ft.Fotad(config=conf, extra=list(extra))
    d.start()
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
