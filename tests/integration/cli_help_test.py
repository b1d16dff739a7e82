"""cli_help_test.py - fotactl's help, man page and bash completion agree with its command table.

Every command listed by `fotactl --help` answers `--help` with exit 0, its usage line and nothing
on stderr. The man page describes every command and every option of it (by --long or -x name)
and renders without warnings. The bash completion, run as bash runs it, offers exactly the
commands of `fotactl --help` at the first word, exactly each group's verbs at the second, and
after `--` exactly the options the command's --help lists (its own and the common ones): an
option missing from the completion, or one the command no longer takes, fails. Unknown commands
and options are usage errors (exit 2) with one line on stderr. No server needed. Python 3
stdlib, bash and groff (all required: a missing one is a failure).
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

EXPECTED = {"login", "product create", "product list", "product show", "release publish",
            "release list", "release current", "device add", "device list", "device show",
            "device key", "upgrade", "reboot", "rpc", "messages", "release show",
            "release download", "device commands", "device rotate-keys", "release delete",
            "device delete", "product delete", "rollout start", "rollout list", "rollout show",
            "rollout cancel", "product arduino", "release sign", "backup"}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def run(args, home):
    env = dict(os.environ, HOME=home)
    for k in ("FOTA_SERVER", "FOTA_KEY", "FOTA_CACERT", "XDG_CONFIG_HOME"):
        env.pop(k, None)
    return subprocess.run([FOTACTL] + args, capture_output=True, text=True, env=env, timeout=20)


def listed_commands(home):
    """The commands of `fotactl --help` ("  product create    create a product" lines)."""
    r = run(["--help"], home)
    if r.returncode != 0 or r.stderr:
        fail("fotactl --help exited %d: %s" % (r.returncode, r.stderr))
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
    missing = EXPECTED - set(commands)
    if missing:
        fail("--help does not list %s:\n%s" % (sorted(missing), r.stdout))
    return commands


def options(help_text):
    """(own, common): {long name: short letter or None} of the two option sections."""
    parts = help_text.split("\ncommon options:\n")
    if len(parts) != 2:
        fail("no common options section in:\n" + help_text)
    found = []
    for part in parts:
        opts = {}
        for m in re.finditer(r"^  (?:-([a-z]), )?\s*--([a-z][a-z-]+)", part, re.M):
            opts[m.group(2)] = m.group(1)
        found.append(opts)
    own_section = "\noptions:\n" in parts[0]
    if own_section and not found[0]:
        fail("an options: section without options:\n" + help_text)
    return found[0], found[1]


def complete(queries):
    """Runs the completion for each list of words after `fotactl` (the last one is being
    completed) in one bash; returns one set of offered words per query."""
    bash = shutil.which("bash")
    if not bash:
        fail("bash is not installed: the completion cannot be tested")
    script = ['source "%s" || exit 3' % COMPLETION]
    for i, words in enumerate(queries):
        script.append("COMP_WORDS=(fotactl %s); COMP_CWORD=%d; COMPREPLY=(); _fotactl; "
                      "echo '@@ %d'; printf '%%s\\n' \"${COMPREPLY[@]}\""
                      % (" ".join("'%s'" % w for w in words), len(words), i))
    b = subprocess.run([bash, "--norc", "-c", "\n".join(script)], capture_output=True, text=True,
                       timeout=60, cwd=tempfile.gettempdir())
    if b.returncode != 0 or b.stderr:
        fail("the completion script failed (exit %d): %s" % (b.returncode, b.stderr))
    got = [set() for _ in queries]
    at = None
    for line in b.stdout.splitlines():
        if line.startswith("@@ "):
            at = int(line[3:])
        elif line and at is not None:
            got[at].add(line)
    if at != len(queries) - 1:
        fail("the completion answered %s of %d queries:\n%s" % (at, len(queries), b.stdout))
    return got


def check_man(commands, helps):
    man_text = open(MAN, encoding="utf-8").read()
    for cmd in commands:
        roff_cmd = cmd.replace("-", "\\-")
        if not re.search(r"(^|\n)(\.(B|BI|BR)\s+\"?|\\fB)" + re.escape(roff_cmd), man_text):
            fail("docs/fotactl.1 does not describe `%s`" % cmd)
        own, common = options(helps[cmd])
        for name, short in list(own.items()) + list(common.items()):
            spelled = ["\\-\\-" + name.replace("-", "\\-")] + (["\\-" + short] if short else [])
            if not any(s in man_text for s in spelled):
                fail("docs/fotactl.1 does not mention --%s of `%s`" % (name, cmd))
    groff = shutil.which("groff")
    if not groff:
        fail("groff is not installed: docs/fotactl.1 cannot be checked (apt install groff)")
    g = subprocess.run([groff, "-man", "-Tascii", "-ww", "-z", MAN], capture_output=True,
                       text=True, timeout=20)
    if g.returncode != 0 or g.stderr.strip():
        fail("groff warns about docs/fotactl.1:\n" + g.stderr)


def check_completion(commands, helps):
    groups = {}
    for cmd in commands:
        w = cmd.split()
        groups.setdefault(w[0], set()).update(w[1:])
    queries = [[""]]
    expect = [set(groups) | {"image", "help", "--help"}]
    what = ["the first word"]
    for g, verbs in sorted(groups.items()):
        if verbs:
            queries.append([g, ""])
            expect.append(verbs)
            what.append("the verbs of %s" % g)
    for cmd in commands:
        w = cmd.split()
        own, common = options(helps[cmd])
        queries.append(w + ["--"] if len(w) == 2 else w + ["3", "--"])
        expect.append({"--" + o for o in list(own) + list(common)})
        what.append("the options of `%s`" % cmd)
    # Values and files: spot checks of what follows an option or a verb.
    for words, want in ((["rel"], {"release"}),
                        (["release", "p"], {"publish"}),
                        (["image", ""], {"info", "check", "make"}),
                        (["release", "publish", "--c"],
                         {"--codename", "--changelog", "--current", "--cacert"}),
                        (["messages", "--f"], {"--follow"}),
                        (["device", "key", "3", "--"], {"--bin", "--output", "--product",
                                                        "--server", "--key", "--cacert",
                                                        "--json", "--no-color", "--help"}),
                        (["release", "publish", "--product", ""], set()),
                        (["product", "create", "x", "--platform", ""], {"nonos", "arduino"}),
                        (["product", "arduino", "x", "--flash-mode", ""],
                         {"qio", "qout", "dio", "dout", "none"}),
                        (["product", "create", "x", "--arduino-core", "3"], {"3.0", "3.1"}),
                        (["release", "sign", "--"], {"--key", "--legacy", "--json",
                                                     "--no-color", "--help"})):
        queries.append(words)
        expect.append(want)
        what.append("%r" % words)
    for got, want, w in zip(complete(queries), expect, what):
        if got != want:
            fail("completion of %s: missing %s, extra %s" % (w, sorted(want - got),
                                                              sorted(got - want)))


def check_usage_errors(home):
    for args, needle in ((["frobnicate"], "command 'frobnicate'"),
                         (["product", "explode"], "unknown command"),
                         (["product", "list", "--bogus"], "unknown option --bogus"),
                         (["upgrade", "3", "--version"], "--version needs a value"),
                         (["product", "create"], "usage: fotactl product create"),
                         (["product", "list"], "no server"),
                         (["login", "--server", "http://127.0.0.1:1"],
                          "login needs --server URL and --key KEY")):
        r = run(args, home)
        if r.returncode != 2 or needle not in r.stderr:
            fail("`fotactl %s`: want exit 2 and %r, got %d %r" % (" ".join(args), needle,
                                                                r.returncode, r.stderr))
        if len(r.stderr.strip().splitlines()) != 1 or r.stdout:
            fail("`fotactl %s` printed more than one line: %r %r" % (" ".join(args), r.stdout,
                                                                   r.stderr))


def main():
    if not os.access(FOTACTL, os.X_OK):
        fail("%s is not built" % FOTACTL)
    home = tempfile.mkdtemp(prefix="fotactl-help-")
    try:
        commands = listed_commands(home)
        helps = {}
        for cmd in commands:
            r = run(cmd.split() + ["--help"], home)
            if r.returncode != 0 or not r.stdout.startswith("usage: fotactl " + cmd) or r.stderr:
                fail("`fotactl %s --help` exited %d:\n%s%s" % (cmd, r.returncode, r.stdout,
                                                              r.stderr))
            helps[cmd] = r.stdout
        check_man(commands, helps)
        check_completion(commands, helps)
        check_usage_errors(home)
        print("ok: %d commands, help/man/completion agree" % len(commands))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
