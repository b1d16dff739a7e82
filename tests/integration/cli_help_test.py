"""cli_help_test.py - fotactl's help, man page and bash completion agree with its command table.

Every command listed by `fotactl --help` answers `--help` with exit 0 and a usage line; every one
of them is described in docs/fotactl.1 and offered by the bash completion; the man page renders
without warnings; unknown commands and options are usage errors (exit 2) with one line on stderr.
No server needed. Python 3 stdlib only.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

BIN_DIR = os.environ.get("FOTA_BIN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")
SRC_DIR = os.environ.get("FOTA_SRC_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..")
FOTACTL = os.path.join(BIN_DIR, "fotactl")
MAN = os.path.join(SRC_DIR, "docs", "fotactl.1")
COMPLETION = os.path.join(SRC_DIR, "contrib", "bash-completion", "fotactl")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(args, home):
    env = dict(os.environ, HOME=home)
    env.pop("FOTA_SERVER", None)
    env.pop("FOTA_KEY", None)
    env.pop("XDG_CONFIG_HOME", None)
    return subprocess.run([FOTACTL] + args, capture_output=True, text=True, env=env, timeout=20)


def main():
    if not os.access(FOTACTL, os.X_OK):
        fail("%s is not built" % FOTACTL)
    home = tempfile.mkdtemp(prefix="fotactl-help-")
    try:
        r = run(["--help"], home)
        if r.returncode != 0:
            fail("fotactl --help exited %d: %s" % (r.returncode, r.stderr))
        # "  product create    create a product" lines under "commands:"
        section = r.stdout.split("commands:", 1)
        if len(section) != 2:
            fail("no commands: section in --help:\n" + r.stdout)
        commands = []
        for line in section[1].splitlines():
            if not line.strip():
                if commands:
                    break
                continue
            m = re.match(r"^  ([a-z]+(?: [a-z-]+)?)\s{2,}\S", line)
            if m:
                commands.append(m.group(1))
        expected = {"login", "product create", "product list", "product show", "release publish",
                    "release list", "release current", "device add", "device list",
                    "device show", "device key", "upgrade", "reboot", "rpc", "messages",
                    "release show", "release download", "device commands", "device rotate-keys",
                    "release delete", "device delete", "product delete", "rollout start",
                    "rollout list", "rollout show", "rollout cancel"}
        missing = expected - set(commands)
        if missing:
            fail("--help does not list %s:\n%s" % (sorted(missing), r.stdout))

        man_text = open(MAN, encoding="utf-8").read()
        comp_text = open(COMPLETION, encoding="utf-8").read()
        for cmd in commands:
            r = run(cmd.split() + ["--help"], home)
            if r.returncode != 0 or not r.stdout.startswith("usage: fotactl " + cmd):
                fail("`fotactl %s --help` exited %d:\n%s%s" % (cmd, r.returncode, r.stdout,
                                                              r.stderr))
            # Every option in the command's help is offered by the completion.
            for opt in re.findall(r"--([a-z][a-z-]+)", r.stdout):
                if "--" + opt not in comp_text:
                    fail("completion lacks --%s (from `fotactl %s --help`)" % (opt, cmd))
            # The man page describes the command ("product create" -> "product create").
            roff_cmd = cmd.replace("-", "\\-")
            if not re.search(r"(^|\n)(\.(B|BI|BR)\s+\"?|\\fB)" + re.escape(roff_cmd), man_text):
                fail("docs/fotactl.1 does not describe `%s`" % cmd)
            for word in cmd.split():
                if not re.search(r"\b" + word + r"\b", comp_text):
                    fail("completion lacks the word %r" % word)

        # The completion really completes (bash without the bash-completion package).
        bash = shutil.which("bash")
        if not bash:
            fail("bash is not installed: the completion cannot be tested")
        if bash:
            for words, want in ((["rel"], {"release"}),
                                (["release", "p"], {"publish"}),
                                (["image", ""], {"info", "check", "make"}),
                                (["release", "publish", "--c"],
                                 {"--codename", "--changelog", "--current", "--cacert"}),
                                (["messages", "--f"], {"--follow"}),
                                (["device", "key", "3", "--"], {"--bin", "--output", "--json"})):
                script = ('source "%s"; COMP_WORDS=(fotactl %s); COMP_CWORD=%d; _fotactl; '
                          'printf "%%s\\n" "${COMPREPLY[@]}"' %
                          (COMPLETION, " ".join("'%s'" % w for w in words), len(words)))
                b = subprocess.run([bash, "--norc", "-c", script], capture_output=True, text=True,
                                   timeout=20)
                got = set(b.stdout.split())
                if b.returncode != 0 or not want <= got:
                    fail("completion of %r: want %s, got %s %s" % (words, sorted(want),
                                                                  sorted(got), b.stderr))

        # The man page renders cleanly.
        groff = shutil.which("groff")
        if not groff:
            fail("groff is not installed: docs/fotactl.1 cannot be checked (apt install groff)")
        if groff:
            g = subprocess.run([groff, "-man", "-Tascii", "-ww", "-z", MAN], capture_output=True,
                               text=True, timeout=20)
            if g.returncode != 0 or g.stderr.strip():
                fail("groff warns about docs/fotactl.1:\n" + g.stderr)

        # Usage errors: exit 2, one line naming the problem.
        for args, needle in ((["frobnicate"], "command 'frobnicate'"),
                             (["product", "explode"], "unknown command"),
                             (["product", "list", "--bogus"], "unknown option --bogus"),
                             (["upgrade", "3", "--version"], "--version needs a value"),
                             (["product", "create"], "usage: fotactl product create"),
                             (["product", "list"], "no server"),
                             (["login", "--server", "http://127.0.0.1:1"], "login needs --server URL and --key KEY")):
            r = run(args, home)
            if r.returncode != 2 or needle not in r.stderr:
                fail("`fotactl %s`: want exit 2 and %r, got %d %r" % (" ".join(args), needle,
                                                                    r.returncode, r.stderr))
            if len(r.stderr.strip().splitlines()) != 1:
                fail("`fotactl %s` printed more than one line: %r" % (" ".join(args), r.stderr))
        print("ok: %d commands, help/man/completion agree" % len(commands))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
