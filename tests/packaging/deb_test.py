"""deb_test.py - `make deb`'s package from this tree, built (packaging/deb.sh) and installed
into a fresh Debian 12 root: its files, control fields, conffile, maintainer scripts and
lintian; apt resolves its Depends from the Debian mirror this machine's apt uses; the fota user
and /var/lib/fota exist; systemd-analyze verifies the installed unit; fotad started as the unit
starts it (its ExecStart, User, Group, capabilities, no new privileges) serves the REST API on
port 80 and the device channel on 8000 as fota with no capability left, owns every data file,
reloads on SIGHUP and stops cleanly; purge removes the data. Needs root (debootstrap, chroot).

fotad runs in a network namespace of its own (only its loopback: the unit's ports and address
as configured, no clash with this machine's). Nothing is mounted in the root but what
debootstrap mounts while it works. The time of each step is printed."""
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from fotatest import SRC_DIR, check, fail, run, run_tests, spawn, tempdir, wait_for  # noqa: E402

TIMES = []   # (step, seconds), printed at the end


def tool(name):
    path = shutil.which(name)
    check(path is not None, "%s is not installed (scripts/deps.sh --deb installs it)" % name)
    return path


def timed(step, fn, *args):
    t0 = time.monotonic()
    res = fn(*args)
    TIMES.append((step, time.monotonic() - t0))
    return res


def sh(cmd, timeout=600, what=None, log=None):
    """Runs a shell command (as root); fails with its output's tail unless it exits 0."""
    p = run(["sh", "-c", cmd], timeout=timeout)
    out = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    if log:
        with open(log, "a") as f:
            f.write(out)
    check(p.returncode == 0, "%s exited %d:\n%s" % (what or cmd, p.returncode, out[-4000:]))
    return out


def in_root(root, cmd, timeout=600, what=None):
    """cmd in the root, as root (apt, dpkg, fotad and systemd-analyze need no /proc there)."""
    return sh("chroot %s /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root "
              "DEBIAN_FRONTEND=noninteractive /bin/sh -c %s" %
              (shlex.quote(root), shlex.quote(cmd)), timeout, what or cmd)


def mirror():
    """The Debian mirror this machine's apt uses (deb822 or one-line sources)."""
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        with open(path) as f:
            m = re.search(r"^URIs:\s*(\S*debian)/?\s*$", f.read(), re.M)
            if m:
                return m.group(1)
    if os.path.exists("/etc/apt/sources.list"):
        with open("/etc/apt/sources.list") as f:
            m = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S*debian)/?\s", f.read(), re.M)
            if m:
                return m.group(1)
    fail("no Debian mirror in this machine's apt sources")


def build(out):
    # One job: ctest gives this test one of its slots, other tests run beside it.
    env = dict(os.environ, DEB_BUILD_OPTIONS="parallel=1")
    p = run([os.path.join(SRC_DIR, "packaging", "deb.sh"), out], timeout=900, env=env)
    text = p.stdout.decode(errors="replace") + p.stderr.decode(errors="replace")
    check(p.returncode == 0, "packaging/deb.sh exited %d:\n%s" % (p.returncode, text[-6000:]))
    debs = glob.glob(os.path.join(out, "fota_*.deb"))
    check(len(debs) == 1, "packaging/deb.sh made %r" % os.listdir(out))
    return debs[0]


def project_version():
    with open(os.path.join(SRC_DIR, "CMakeLists.txt")) as f:
        return re.search(r"project\(fota VERSION ([\d.]+)", f.read()).group(1)


def check_package(deb):
    """Files, owners, control fields, conffiles and maintainer scripts of the .deb."""
    listing = run([tool("dpkg-deb"), "-c", deb]).stdout.decode()
    files = {}
    for line in listing.splitlines():
        parts = line.split(None, 5)
        path = parts[5].split(" -> ")[0]
        files[path.rstrip("/")] = parts[1]
    for path in ("./usr/sbin/fotad", "./usr/bin/fotactl", "./usr/bin/fota-sim",
                 "./usr/share/man/man1/fotactl.1.gz", "./usr/share/man/man8/fotad.8.gz",
                 "./usr/share/man/man1/fota-sim.1.gz",
                 "./lib/systemd/system/fotad.service", "./etc/fota/fotad.conf",
                 "./usr/lib/sysusers.d/fota.conf",
                 "./usr/share/bash-completion/completions/fotactl",
                 "./usr/share/doc/fota/copyright", "./usr/share/doc/fota/config.md.gz"):
        check(path in files, "%s is not in the package:\n%s" % (path, listing))
    bad = {p: o for p, o in files.items() if o != "root/root"}
    check(not bad, "files not owned by root/root: %r" % bad)
    check(not any(p.startswith("./var/lib/fota") for p in files),
          "the package ships /var/lib/fota (postinst makes it, the user's)")

    fields = {}
    for name in ("Package", "Version", "Architecture", "Depends"):
        fields[name] = run([tool("dpkg-deb"), "-f", deb, name]).stdout.decode().strip()
    check(fields["Package"] == "fota" and fields["Version"] == project_version(),
          "control: %r (project version %s)" % (fields, project_version()))
    deps = [d.strip().split()[0] for d in fields["Depends"].split(",")]
    for want in ("adduser", "procps", "libevent-core-2.1-7", "libsqlite3-0", "libjansson4",
                 "libssl3"):
        check(want in deps, "Depends lacks %s: %s" % (want, fields["Depends"]))

    ctrl = tempdir("control-")
    shutil.rmtree(ctrl)
    check(run([tool("dpkg-deb"), "-e", deb, ctrl]).returncode == 0, "dpkg-deb -e")
    with open(os.path.join(ctrl, "conffiles")) as f:
        check(f.read().split() == ["/etc/fota/fotad.conf"], "conffiles")
    scripts = [os.path.join(ctrl, s) for s in ("postinst", "postrm", "prerm")
               if os.path.exists(os.path.join(ctrl, s))]
    with open(os.path.join(ctrl, "postinst")) as f:
        text = f.read()
    check("adduser --system" in text and "deb-systemd-helper" in text,
          "postinst makes the user and enables the unit:\n" + text)
    p = run([tool("shellcheck"), "-s", "sh"] + scripts)
    check(p.returncode == 0, "shellcheck on the package's scripts:\n%s" % p.stdout.decode())
    # Debian's own checks: no error or warning (--info explains a tag that appears).
    p = run([tool("lintian"), "--fail-on", "error,warning", "--info", deb], timeout=300)
    check(p.returncode == 0, "lintian:\n%s" % p.stdout.decode()[-6000:])


def make_root(root, log):
    # debootstrap mounts /proc and /sys in the root while it works and unmounts them at its
    # end; a private mount namespace keeps them out of sight, where / is a mount point (not in
    # a chroot such as fresh-debian.sh's, where debootstrap mounts as it does there).
    ns = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                        capture_output=True).returncode == 0
    sh("%sdebootstrap --variant=minbase bookworm %s %s" %
       ("unshare --mount --propagation private " if ns else "", shlex.quote(root),
        shlex.quote(mirror())), 900, "debootstrap", log)
    shutil.copy("/etc/resolv.conf", os.path.join(root, "etc", "resolv.conf"))


def install(root, deb):
    shutil.copy(deb, os.path.join(root, "tmp"))
    name = os.path.basename(deb)
    in_root(root, "apt-get update -qq && apt-get install -y -qq --no-install-recommends "
                  "/tmp/%s >/dev/null" % name, 900, "apt-get install the .deb")
    # For the checks of the installed unit and man pages (the package itself needs neither).
    in_root(root, "apt-get install -y -qq --no-install-recommends systemd man-db >/dev/null",
            900, "apt-get install systemd man-db")


def passwd(root, name):
    with open(os.path.join(root, "etc", "passwd")) as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if fields[0] == name:
                return fields
    return None


def check_installed(root):
    u = passwd(root, "fota")
    check(u is not None, "no user fota in the root")
    uid, gid = int(u[2]), int(u[3])
    check(uid < 1000 and u[5] == "/var/lib/fota" and u[6] == "/usr/sbin/nologin",
          "fota is not a system user of /var/lib/fota: %r" % u)
    with open(os.path.join(root, "etc", "group")) as f:
        check(any(line.startswith("fota:x:%d:" % gid) for line in f), "no group fota")
    st = os.stat(os.path.join(root, "var", "lib", "fota"))
    check((st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, gid, 0o700),
          "/var/lib/fota: %d:%d %o" % (st.st_uid, st.st_gid, st.st_mode & 0o777))
    check(os.path.islink(os.path.join(root, "etc/systemd/system/multi-user.target.wants/"
                                            "fotad.service")), "fotad.service is not enabled")
    out = in_root(root, "dpkg-query -W -f='${Conffiles}' fota")
    check("/etc/fota/fotad.conf" in out, "conffiles of the installed package: %r" % out)
    out = in_root(root, "fotad -t -c /etc/fota/fotad.conf && fotactl --version && "
                        "fota-sim --help >/dev/null && man -w fotactl && man -w 8 fotad")
    check("is valid" in out and "/usr/share/man/man8/fotad.8.gz" in out, out)
    out = in_root(root, "systemd-analyze verify /lib/systemd/system/fotad.service 2>&1")
    check(out.strip() == "", "systemd-analyze verify in the root:\n" + out)
    return uid, gid


def unit(root):
    with open(os.path.join(root, "lib", "systemd", "system", "fotad.service")) as f:
        u = {}
        for line in f:
            k, sep, v = line.strip().partition("=")
            if sep and not k.startswith("#"):
                u.setdefault(k, []).append(v)
    return u


LO_UP = """import fcntl, socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
flags = struct.unpack("16sh", fcntl.ioctl(s, 0x8913, struct.pack("16sh", b"lo", 0))[:18])[1]
fcntl.ioctl(s, 0x8914, struct.pack("16sh", b"lo", flags | 1))
"""

CLIENT = """import http.client, json, socket, sys
key = sys.argv[1]
out = {}
def req(method, path, body=None, auth=True):
    c = http.client.HTTPConnection("127.0.0.1", 80, timeout=10)
    h = {"Authorization": "token " + key} if auth else {}
    if body is not None:
        h["Content-Type"] = "application/json"
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    return r.status, json.loads(r.read() or b"{}")
out["ping"] = req("GET", "/v1/ping/", auth=False)
out["create"] = req("POST", "/v1/products/", {"name": "debroot", "flash_map": 2})
out["list"] = req("GET", "/v1/products/")
out["nokey"] = req("GET", "/v1/products/", auth=False)
for name, port in (("device", 8000), ("legacy", 5555)):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.close()
    out[name] = "connected"
print(json.dumps(out))
"""


def run_service(root, uid, gid, work):
    """fotad started as fotad.service would start it; checked while it runs and at its stop."""
    u = unit(root)
    exec_start = u["ExecStart"][0]
    check(u["User"] == ["fota"] and u["Group"] == ["fota"], "unit user: %r" % u)
    caps = u["AmbientCapabilities"][0].lower().replace("cap_", "+")
    bound = u["CapabilityBoundingSet"][0].lower().replace("cap_", "+")
    nnp = "--no-new-privs" if u["NoNewPrivileges"] == ["yes"] else ""
    umask = u.get("UMask", ["0022"])[0]
    setpriv = ("setpriv --reuid=%s --regid=%s --init-groups --inh-caps=%s --ambient-caps=%s "
               "--bounding-set=-all,%s %s --" % (u["User"][0], u["Group"][0], caps, caps,
                                                  bound, nnp))
    lo_up = os.path.join(work, "lo_up.py")
    with open(lo_up, "w") as f:
        f.write(LO_UP)
    inner = ("%s %s && umask %s && exec chroot %s %s %s" %
             (shlex.quote(sys.executable), shlex.quote(lo_up), umask, shlex.quote(root),
              setpriv, exec_start))
    logpath = os.path.join(work, "fotad.log")
    log = open(logpath, "wb")
    proc = spawn(["unshare", "--net", "sh", "-c", inner], stdout=log, stderr=log)

    def text():
        with open(logpath, errors="replace") as f:
            return f.read()

    def ready():
        if proc.poll() is not None:
            fail("fotad exited %s before ready:\n%s" % (proc.returncode, text()[-4000:]))
        return "fotad ready" in text()
    wait_for(ready, 30, "fotad ready in the root")

    st = {}
    with open("/proc/%d/status" % proc.pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            st[k] = v.split()
    check(st["Name"] == ["fotad"], "pid %d is %r, not fotad" % (proc.pid, st["Name"]))
    check(st["Uid"] == [str(uid)] * 4 and st["Gid"] == [str(gid)] * 4,
          "fotad runs as Uid %r Gid %r, want fota %d:%d" % (st["Uid"], st["Gid"], uid, gid))
    for cap in ("CapPrm", "CapEff", "CapAmb"):
        check(int(st[cap][0], 16) == 0, "%s %s after the listeners are bound" % (cap, st[cap]))
    check(st["NoNewPrivs"] == ["1"], "NoNewPrivs %r" % st["NoNewPrivs"])

    client = os.path.join(work, "client.py")
    with open(client, "w") as f:
        f.write(CLIENT)
    with open(os.path.join(root, "var", "lib", "fota", "owner.key")) as f:
        key = f.read().strip()
    p = run(["nsenter", "--net=/proc/%d/ns/net" % proc.pid, sys.executable, client, key])
    check(p.returncode == 0, "client in fotad's network namespace: %r" % p.stderr)
    r = json.loads(p.stdout)
    check(r["ping"][0] == 200 and r["create"][0] == 200 and r["nokey"][0] == 401,
          "REST API on port 80: %r" % r)
    check([x["name"] for x in r["list"][1]["products"]] == ["debroot"], "products: %r" % r)

    proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration reloaded" in text(), 10, "reload on SIGHUP")
    data = os.path.join(root, "var", "lib", "fota")
    bad = []
    for dirpath, dirs, files in os.walk(data):
        for p in [dirpath] + [os.path.join(dirpath, n) for n in files]:
            s = os.lstat(p)
            if (s.st_uid, s.st_gid) != (uid, gid):
                bad.append((p, s.st_uid, s.st_gid))
    check(not bad, "data files not fota's: %r" % bad)
    check(os.path.exists(os.path.join(data, "fota.db")), "no fota.db in /var/lib/fota")

    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(20)
    except subprocess.TimeoutExpired:
        fail("fotad did not stop within 20 s of SIGTERM:\n" + text()[-3000:])
    log.close()
    check(rc == 0, "fotad exit status %d:\n%s" % (rc, text()[-3000:]))
    errors = [line for line in text().splitlines() if re.search(r"Z ERROR\b", line)]
    check(not errors, "ERROR lines in fotad's log:\n" + "\n".join(errors))


def purge(root):
    in_root(root, "apt-get purge -y -qq fota >/dev/null", 300, "apt-get purge fota")
    for path in ("var/lib/fota", "etc/fota"):
        check(not os.path.exists(os.path.join(root, path)), "/%s left after purge" % path)
    check(passwd(root, "fota") is not None, "purge removed the system user")


def test_deb_in_fresh_root():
    check(os.geteuid() == 0, "deb_test needs root (debootstrap, chroot), as CI has")
    work = tempdir("deb-")
    os.chmod(work, 0o755)
    deb = timed("build the .deb (packaging/deb.sh)", build, os.path.join(work, "out"))
    timed("check the .deb", check_package, deb)
    root = os.path.join(work, "root")
    timed("debootstrap --variant=minbase bookworm", make_root, root,
          os.path.join(work, "debootstrap.log"))
    timed("apt-get install the .deb (+ systemd, man-db)", install, root, deb)
    uid, gid = timed("check the installed package", check_installed, root)
    timed("run fotad as the unit does", run_service, root, uid, gid, work)
    timed("purge", purge, root)
    for step, s in TIMES:
        print("time %-48s %6.1f s" % (step, s))


run_tests([test_deb_in_fresh_root])
