"""privdrop_test.py - fotad started as root with --user: it serves on a port below 1024 as that
user and group with no capability left, every file of a fresh data dir is the user's (also
those made after the drop: an upload, a reload), and it refuses an unknown user (exit 2) and a
data dir of another user (exit 1), also as root without --user. Needs root (as in CI).

The user is `nobody`, which cannot traverse the work dir's ancestors (the build tree may sit
under /root, and SQLite opens the database by its absolute path): fotad runs in a mount
namespace of its own where the test's dir is bind-mounted on /mnt, so it reaches the data dir as
/mnt/data while the test reads it where it is. In a chroot whose root is no mount point (as
fresh-debian.sh makes) the namespace cannot be made private: there the data dir is in a dir of
the test's own under /tmp instead, removed at its end. Such a root may also be mode 0700 (a
directory made by mktemp), which no user but root can traverse, so no path resolves for a
service user at all; a Debian system's / is 0755, and the test gives that root the same mode
while it runs (root_mode.py, shared with the PostgreSQL test server, restores it at the end)."""
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import root_mode  # noqa: E402
from fotatest import Fotad, bin_path, check, run, run_tests, tempdir  # noqa: E402

USER = "nobody"
MNT = "/mnt"


def need_root():
    check(os.geteuid() == 0, "privdrop_test starts fotad as root: run it as root (CI does)")


def free_low_port():
    """A port below 1024 free on 127.0.0.1 (the suite's other daemons use ephemeral ports)."""
    for port in range(1023, 600, -1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise AssertionError("no free port below 1024 on 127.0.0.1")


def status_fields(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.split()
    return out


def owners(top):
    """(path, uid, gid) of top and everything below it."""
    res = []
    for dirpath, dirs, files in os.walk(top):
        for p in [dirpath] + [os.path.join(dirpath, n) for n in files]:
            st = os.lstat(p)
            res.append((p, st.st_uid, st.st_gid))
    return res


def private_mounts():
    """True when a new mount namespace can be made private (/ is a mount point)."""
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                       capture_output=True)
    return p.returncode == 0


def in_namespace(d, outer):
    """Runs d's fotad in a new mount namespace with `outer` on /mnt and its paths under it."""
    for i, a in enumerate(d.args[:-1]):
        if a in ("--data", "-c") and d.args[i + 1].startswith(outer + "/"):
            d.args[i + 1] = MNT + d.args[i + 1][len(outer):]
    script = "mount --bind %s %s && exec \"$@\"" % (shlex.quote(outer), MNT)
    d.args = ["unshare", "--mount", "--propagation", "private",
              "sh", "-c", script, "sh"] + d.args


def test_runs_as_user():
    need_root()
    pw = pwd.getpwnam(USER)
    private = private_mounts()
    token = "privdrop:%d" % os.getpid()
    root_mode.acquire(token)
    # Without a private namespace (a chroot whose root is no mount point), a dir of the
    # test's own under /tmp, which the user can reach, removed at the end.
    outer = tempdir("mnt-") if private else tempfile.mkdtemp(prefix="fota-privdrop-", dir="/tmp")
    os.chmod(outer, 0o755)
    data = os.path.join(outer, "data") + "/"   # fresh: fotad makes it (the slash is allowed)
    conf = os.path.join(outer, "fotad.conf")
    with open(conf, "w") as f:
        f.write("[fotad]\nuser = %s\nlog_level = info\n" % USER)
    os.chmod(conf, 0o644)
    port = free_low_port()
    d = Fotad(data_dir=data, config=conf, extra=["--http-port", str(port)])
    if private:
        in_namespace(d, outer)
    try:
        runs_as_user(d, pw, port, data, conf)
    finally:
        if not private:
            shutil.rmtree(outer, ignore_errors=True)
        root_mode.release(token)


def runs_as_user(d, pw, port, data, conf):
    d.start()
    check(d.http_port == port, "listens on %d, want %d" % (d.http_port, port))
    d.wait_log(r"running as user user=%s uid=%d gid=%d" % (USER, pw.pw_uid, pw.pw_gid))

    st = status_fields(d.proc.pid)
    check(st["Uid"] == [str(pw.pw_uid)] * 4, "Uid %r, want %d x4" % (st["Uid"], pw.pw_uid))
    check(st["Gid"] == [str(pw.pw_gid)] * 4, "Gid %r, want %d x4" % (st["Gid"], pw.pw_gid))
    want_groups = sorted(str(g) for g in os.getgrouplist(USER, pw.pw_gid))
    check(sorted(st["Groups"]) == want_groups, "Groups %r, want %r" % (st["Groups"], want_groups))
    for cap in ("CapPrm", "CapEff", "CapAmb", "CapInh"):
        check(int(st[cap][0], 16) == 0, "%s %s: a capability is left" % (cap, st[cap][0]))

    # Files made after the drop: a release's blobs; then a reload re-reads the file.
    p = d.create_product()
    d.upload_release(p["id"], "1.0")
    st_, _, j = d.api("GET", "/v1/ping/")
    check(st_ == 200, "ping on port %d: %d %r" % (port, st_, j))
    with open(conf, "a") as f:
        f.write("log_level = debug\n")
    d.proc.send_signal(signal.SIGHUP)
    d.wait_log(r"configuration reloaded changed=log_level")

    files = owners(data)
    names = {os.path.relpath(p, data) for p, _, _ in files}
    for want in ("fota.db",) * (d.store == "sqlite") + ("owner.key", "secret.key", "fotad.lock",
                                                         "blobs/tmp"):
        check(want in names, "%s missing in the data dir: %s" % (want, sorted(names)))
    check(any(n.startswith("blobs/sha256/") and os.path.isfile(os.path.join(data, n))
              for n in names), "no blob of the upload: %s" % sorted(names))
    bad = [(p, u, g) for p, u, g in files if (u, g) != (pw.pw_uid, pw.pw_gid)]
    check(not bad, "not %s's: %r" % (USER, bad))
    check(os.stat(data).st_mode & 0o777 == 0o700, "data dir mode %o" % os.stat(data).st_mode)
    d.stop()


def test_unknown_user():
    need_root()
    data = os.path.join(tempdir(), "data")
    p = run([bin_path("fotad"), "--data", data, "--user", "no-such-user-fota", "--bind",
             "127.0.0.1", "--http-port", "0", "--device-port", "0", "--legacy-port", "off"])
    err = p.stderr.decode()
    check(p.returncode == 2 and "unknown user user=no-such-user-fota" in err,
          "unknown user: exit %d %r" % (p.returncode, err))
    check(not os.path.exists(data), "data dir made for an unknown user")
    p = run([bin_path("fotad"), "-t", "--user", "no-such-user-fota"])
    check(p.returncode == 2 and b'unknown user "no-such-user-fota"' in p.stderr,
          "-t: exit %d %r" % (p.returncode, p.stderr))
    p = run([bin_path("fotad"), "-t", "--user", USER])
    check(p.returncode == 0, "-t with user %s: exit %d %r" % (USER, p.returncode, p.stderr))


def test_user_root():
    """--user root keeps root (and its data dir): nothing to switch to."""
    need_root()
    d = Fotad(extra=["--user", "root"])
    d.start()
    st = status_fields(d.proc.pid)
    check(st["Uid"] == ["0"] * 4, "--user root: Uid %r" % st["Uid"])
    check("running as user" not in d.log_text(), "--user root switched:\n" + d.log_text())
    d.stop()


def test_data_dir_of_another_user():
    need_root()
    pw = pwd.getpwnam(USER)
    ports = ["--bind", "127.0.0.1", "--http-port", "0", "--device-port", "0",
             "--legacy-port", "off"]
    # Root's dir, fotad asked to run as nobody: files nobody could not use.
    rootdir = tempdir()
    p = run([bin_path("fotad"), "--data", rootdir, "--user", USER] + ports)
    err = p.stderr.decode()
    check(p.returncode == 1 and "data dir belongs to another user" in err and
          "owner=root user=%s" % USER in err, "root's dir: exit %d %r" % (p.returncode, err))
    check(os.listdir(rootdir) == [], "files made in a refused dir: %s" % os.listdir(rootdir))
    # nobody's dir, fotad as root without --user: root's files would lock nobody out.
    theirs = tempdir()
    os.chown(theirs, pw.pw_uid, pw.pw_gid)
    p = run([bin_path("fotad"), "--data", theirs] + ports)
    err = p.stderr.decode()
    check(p.returncode == 1 and "refusing to run as root on it" in err and
          "--user %s" % USER in err, "nobody's dir as root: exit %d %r" % (p.returncode, err))
    check(os.listdir(theirs) == [], "files made in a refused dir: %s" % os.listdir(theirs))


run_tests([test_runs_as_user, test_unknown_user, test_user_root, test_data_dir_of_another_user])
