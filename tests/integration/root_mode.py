#!/usr/bin/env python3
"""root_mode.py - lets a service user (nobody) resolve absolute paths while a test needs it.

A chroot made by mktemp (as ../shared/tools/fresh-debian.sh and CI make) has / at mode 0700:
no user but root can traverse it, so a server dropped to `nobody` cannot open any path. A
Debian system's / is 0755. A test that runs something as another user holds / traversable
(o+x, as Debian has it) from acquire to release; the first holder changes the mode and the
last one to leave restores it. Holders are named by a token and counted in a state file under
an flock, so two tests running at once (ctest -j2) never restore the mode under each other.
On a root that is already traversable, and when not root, nothing changes.

    root_mode.py acquire TOKEN     (the shell form: tests/pg/pg_server.sh)
    root_mode.py release TOKEN
    import root_mode; root_mode.acquire(token) ... root_mode.release(token)
"""
import fcntl
import os
import sys

LOCK = "/tmp/fota-root-mode.lock"
STATE = "/tmp/fota-root-mode.state"   # line 1: the mode to restore (octal); then one token a line
ROOT = "/"                            # what is held traversable


class _Locked:
    def __enter__(self):
        self.fd = os.open(LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)   # releases the flock


def _read():
    try:
        with open(STATE) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        return None
    return int(lines[0], 8), [t for t in lines[1:] if t]


def _write(mode, tokens):
    tmp = STATE + ".tmp"
    with open(tmp, "w") as f:
        f.write("%o\n%s" % (mode, "".join(t + "\n" for t in tokens)))
    os.replace(tmp, STATE)


def acquire(token):
    """Makes / traversable for every user until the last holder releases it."""
    if os.geteuid() != 0:
        return
    with _Locked():
        st = _read()
        if st is None:
            mode = os.stat(ROOT).st_mode & 0o7777
            if mode & 0o001:
                return   # already traversable: nothing to hold or restore
            os.chmod(ROOT, mode | 0o055)
            st = (mode, [])
        _write(st[0], st[1] + [token])


def release(token):
    """Drops token; the last holder gives / its original mode back."""
    if os.geteuid() != 0:
        return
    with _Locked():
        st = _read()
        if st is None:
            return
        mode, tokens = st
        if token in tokens:
            tokens.remove(token)
        if tokens:
            _write(mode, tokens)
            return
        if os.stat(ROOT).st_mode & 0o7777 != mode:
            os.chmod(ROOT, mode)
        os.unlink(STATE)


def main(argv):
    if len(argv) != 3 or argv[1] not in ("acquire", "release"):
        sys.stderr.write("usage: root_mode.py acquire|release TOKEN\n")
        return 2
    (acquire if argv[1] == "acquire" else release)(argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
