"""install_test.py - `make install`'s files, staged from this build tree under a DESTDIR: the
programs, the man pages (found by man), the configuration (valid for fotad -t, kept on a second
install), the systemd unit (its sandbox, `systemd-analyze verify` and `security`), the sysusers
entry, the bash completion; and the hand-written parts of the packaging: docs/fotad.8 (its
OPTIONS match fotad's tables) and docs/fota-sim.1 (groff warns about neither), the maintainer
scripts and packaging/deb.sh (shellcheck), the changelog's version against CMake's."""
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from fotatest import SRC_DIR, bin_path, check, run, run_tests, tempdir  # noqa: E402

BUILD_DIR = os.environ.get("FOTA_BUILD_DIR") or os.path.join(SRC_DIR, "build", "asan")


def tool(name):
    """A program the test needs; its absence fails the test (scripts/deps.sh --deb)."""
    path = shutil.which(name)
    check(path is not None, "%s is not installed (scripts/deps.sh --deb installs it)" % name)
    return path


def cache_value(name):
    with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
        for line in f:
            m = re.match(r"%s:\w+=(.*)$" % re.escape(name), line.rstrip("\n"))
            if m:
                return m.group(1)
    raise AssertionError("%s is not in %s/CMakeCache.txt" % (name, BUILD_DIR))


def install(stage):
    """cmake --install of this tree below stage; returns its output."""
    env = dict(os.environ, DESTDIR=stage)
    p = run([tool("cmake"), "--install", BUILD_DIR], env=env, timeout=60)
    out = p.stdout.decode() + p.stderr.decode()
    check(p.returncode == 0, "cmake --install failed:\n%s" % out)
    return out


def layout():
    """Where this tree installs: prefix, sysconfdir (/etc for the prefix /usr), unit dir."""
    prefix = cache_value("CMAKE_INSTALL_PREFIX")
    etc = "/etc" if prefix == "/usr" else prefix + "/etc"
    unitdir = cache_value("FOTA_SYSTEMD_UNITDIR") or prefix + "/lib/systemd/system"
    return prefix, etc, unitdir


def staged(stage, path):
    return os.path.join(stage, path.lstrip("/"))


def unit_settings(text):
    """{key: [values]} of a unit file."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, _, v = line.partition("=")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


def test_files_and_man():
    stage = tempdir("stage-")
    install(stage)
    prefix, etc, unitdir = layout()
    want = {
        prefix + "/sbin/fotad": True, prefix + "/bin/fotactl": True,
        prefix + "/bin/fota-sim": True,
        prefix + "/share/man/man1/fotactl.1": False, prefix + "/share/man/man8/fotad.8": False,
        prefix + "/share/man/man1/fota-sim.1": False,
        prefix + "/share/bash-completion/completions/fotactl": False,
        prefix + "/lib/sysusers.d/fota.conf": False, unitdir + "/fotad.service": False,
        etc + "/fota/fotad.conf": False, prefix + "/share/doc/fota/config.md": False,
        prefix + "/share/doc/fota/README.md": False,
    }
    for path, exe in want.items():
        p = staged(stage, path)
        check(os.path.isfile(p), "make install did not install %s" % path)
        check(not exe or os.access(p, os.X_OK), "%s is not executable" % path)
    p = run([staged(stage, prefix + "/sbin/fotad"), "--version"])
    check(p.returncode == 0 and p.stdout.startswith(b"fotad "), "installed fotad: %r" % (p,))

    # `man fotactl` and `man 8 fotad` find the installed pages.
    mandir = staged(stage, prefix + "/share/man")
    for args, page in ((["fotactl"], "man1/fotactl.1"), (["8", "fotad"], "man8/fotad.8"),
                       (["fota-sim"], "man1/fota-sim.1")):
        p = run([tool("man"), "-M", mandir, "-w"] + args)
        found = p.stdout.decode().strip()
        check(p.returncode == 0 and found == os.path.join(mandir, page),
              "man -w %s: %r %r" % (" ".join(args), found, p.stderr))

    completion = staged(stage, prefix + "/share/bash-completion/completions/fotactl")
    p = run([tool("bash"), "-n", completion])
    check(p.returncode == 0, "bash completion does not parse: %r" % p.stderr)

    # The sysusers entry makes the user the unit names.
    root = tempdir("sysroot-")
    os.makedirs(os.path.join(root, "etc"))
    p = run([tool("systemd-sysusers"), "--dry-run", "--root=" + root,
             staged(stage, prefix + "/lib/sysusers.d/fota.conf")])
    out = p.stdout.decode() + p.stderr.decode()
    check(p.returncode == 0 and "Creating user 'fota'" in out and "Creating group 'fota'" in out,
          "systemd-sysusers on fota.conf: %d %s" % (p.returncode, out))


def test_config():
    stage = tempdir("stage-")
    install(stage)
    prefix, etc, _ = layout()
    conf = staged(stage, etc + "/fota/fotad.conf")
    p = run([bin_path("fotad"), "-t", "-c", conf])
    check(p.returncode == 0 and b"is valid" in p.stdout, "fotad -t on the installed "
          "configuration: %d %r %r" % (p.returncode, p.stdout, p.stderr))
    with open(conf) as f:
        text = f.read()
    check(re.search(r"^data = /var/lib/fota$", text, re.M), "installed config: data is not "
          "/var/lib/fota (the unit's StateDirectory):\n" + text)
    # An administrator's file survives the next install.
    with open(conf, "a") as f:
        f.write("log_level = debug\n")
    out = install(stage)
    with open(conf) as f:
        check(f.read() == text + "log_level = debug\n", "a second install replaced the "
              "administrator's fotad.conf")
    check("Keeping: " + conf in out, "the install does not say it keeps fotad.conf:\n" + out)


def test_unit():
    stage = tempdir("stage-")
    install(stage)
    prefix, etc, unitdir = layout()
    path = staged(stage, unitdir + "/fotad.service")
    with open(path) as f:
        text = f.read()
    u = unit_settings(text)
    exec_start = "%s/sbin/fotad -c %s/fota/fotad.conf" % (prefix, etc)
    want = {
        "ExecStart": exec_start, "ExecReload": "kill -HUP $MAINPID", "Restart": "on-failure",
        "User": "fota", "Group": "fota", "StateDirectory": "fota",
        "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "NoNewPrivileges": "yes", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
    }
    for k, v in want.items():
        check(u.get(k) == [v], "fotad.service: %s=%r, want %r" % (k, u.get(k), v))

    # verify checks every command exists (fotad where the stage has it) and the manual page
    # Documentation= names (man, over the staged pages).
    work = tempdir("unit-")
    copy = os.path.join(work, "fotad.service")
    with open(copy, "w") as f:
        f.write(text.replace("ExecStart=" + prefix + "/sbin/fotad",
                             "ExecStart=" + staged(stage, prefix + "/sbin/fotad")))
    env = dict(os.environ, MANPATH=staged(stage, prefix + "/share/man"))
    p = run([tool("systemd-analyze"), "verify", copy], env=env)
    check(p.returncode == 0 and not p.stderr.strip(), "systemd-analyze verify: %d %s" %
          (p.returncode, p.stderr.decode()))
    # The sandbox as systemd rates it: exposure at most 2.0 of 10 ("OK").
    p = run([tool("systemd-analyze"), "security", "--offline=yes", "--threshold=20", copy],
            env=env)
    out = p.stdout.decode() + p.stderr.decode()
    m = re.search(r"Overall exposure level for fotad.service: ([\d.]+)", out)
    check(p.returncode == 0 and m, "systemd-analyze security (threshold 2.0): %d\n%s" %
          (p.returncode, out[-3000:]))


def test_man_page():
    page = os.path.join(SRC_DIR, "docs", "fotad.8")
    p = run([sys.executable, os.path.join(SRC_DIR, "scripts", "fotad-man"), "--check",
             bin_path("fotad"), page])
    check(p.returncode == 0, "docs/fotad.8: %s" % p.stderr.decode())
    for p in (page, os.path.join(SRC_DIR, "docs", "fota-sim.1")):
        g = run([tool("groff"), "-man", "-Tascii", "-ww", "-z", p])
        check(g.returncode == 0 and not g.stderr.strip(), "groff warns about %s:\n%s" %
              (p, g.stderr.decode()))
    with open(page) as f:
        text = f.read()
    sections = {}
    for m in re.finditer(r'^\.SH "?([^"\n]*)"?\n(.*?)(?=^\.SH |\Z)', text, re.M | re.S):
        sections[m.group(1)] = m.group(2)
    for s in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "EXIT STATUS", "FILES",
              "SEE ALSO"):
        check(s in sections, "docs/fotad.8 has no %s section: %r" % (s, list(sections)))
    for sig in ("SIGHUP", "SIGTERM", "SIGINT"):
        check(sig in sections["SIGNALS"], "SIGNALS does not describe %s" % sig)
    for code in ("0", "1", "2"):
        check(re.search(r"^\.B %s$" % code, sections["EXIT STATUS"], re.M),
              "EXIT STATUS lacks %s" % code)
    for path in ("/etc/fota/fotad.conf", "/var/lib/fota/", "fotad.service"):
        check(path in sections["FILES"], "FILES does not name %s" % path)


def test_scripts():
    deb = os.path.join(SRC_DIR, "packaging")
    scripts = [os.path.join(deb, "deb.sh"), os.path.join(deb, "debian", "fota.postinst"),
               os.path.join(deb, "debian", "fota.postrm")]
    p = run([tool("shellcheck")] + scripts)
    check(p.returncode == 0, "shellcheck:\n%s" % p.stdout.decode())
    with open(os.path.join(SRC_DIR, "CMakeLists.txt")) as f:
        version = re.search(r"project\(fota VERSION ([\d.]+)", f.read()).group(1)
    p = run([tool("dpkg-parsechangelog"), "-l", os.path.join(deb, "debian", "changelog"),
             "-S", "Version"])
    check(p.stdout.decode().strip() == version, "packaging/debian/changelog is at %r, "
          "CMakeLists.txt at %s" % (p.stdout, version))
    p = subprocess.run(["make", "-n", "-f", os.path.join(deb, "debian", "rules"), "binary"],
                       capture_output=True, cwd=tempdir())
    check(p.returncode == 0, "debian/rules does not parse: %r" % p.stderr)


run_tests([test_files_and_man, test_config, test_unit, test_man_page, test_scripts])
