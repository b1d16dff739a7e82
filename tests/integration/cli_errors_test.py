"""cli_errors_test.py - fotactl's bad inputs: each gives the right one-line reason and exit status.

Against a real fotad on loopback: a wrong key (401 -> "the key was refused", exit 3), a key that
is not an admin key (403, exit 3), a missing image file (exit 1, nothing uploaded), a wrong-slot
image and a truncated image (refused locally with the codec's reason, nothing uploaded: the
server never sees a POST to /roms/), unknown devices and products by name and by id (exit 4),
refusals that carry the server's message (duplicate version, bad flash map: exit 1; an upgrade
to a version the product does not have: the server's 404 text, exit 4), and a server that is down (exit 5, "cannot connect to http://HOST:PORT
(connection refused)"). Errors are one line on stderr; --json changes nothing about that.
test_follow_server_stops: `messages --follow` into a pipe whose reader is gone dies of SIGPIPE
at the next message (like tail -f | head -1); one whose server shuts down exits 5 and says so.
test_new_user: the mistakes a first try makes get a sentence that names them: a key that is
not 40 hex characters is malformed (exit 2, nothing asked of the server, nothing saved by login),
and a server URL on fotad's device port says that is the device port and the REST API is on the
HTTP port (exit 5).
test_https: an https fotad with a self-signed certificate is refused with a TLS reason that
points to --cacert; --cacert, FOTA_CACERT and the login-saved cacert make it work.
Python 3 stdlib only (plus the openssl command to make the certificate).
"""
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, free_port, make_image, run_tests  # noqa: E402
from cli_workflow_test import Ctl  # noqa: E402


def expect(ctl, args, status, needle, env=None):
    """Runs fotactl args; checks the exit status and a one-line stderr containing needle."""
    saved = ctl.env
    if env:
        ctl.env = dict(saved, **env)
    try:
        p = ctl.run(*args, ok=False)
    finally:
        ctl.env = saved
    check(p.returncode == status and needle in p.stderr,
          "fotactl %s: want exit %d and %r, got %d\nstdout %r\nstderr %r"
          % (" ".join(args), status, needle, p.returncode, p.stdout, p.stderr))
    lines = p.stderr.strip().splitlines()
    check(len(lines) == 1 and lines[0].startswith("fotactl: "),
          "fotactl %s: stderr is not one 'fotactl: ...' line: %r" % (" ".join(args), p.stderr))
    return p


def uploads(d):
    """How many POSTs to a release upload the server has logged."""
    return len(re.findall(r"method=POST path=/v1/products/\d+/roms/ ", d.log_text()))


def test_bad_inputs(d):
    home = tempfile.mkdtemp(prefix="fotactl-err-")
    try:
        ctl = Ctl(home)
        url = "http://127.0.0.1:%d" % d.http_port
        ctl.run("login", "--server", url, "--key", d.admin_key)
        ctl.run("product", "create", "plug", "--flash-map", "2")
        added = ctl.json("device", "add", "--product", "plug", "kitchen")
        owner = added["owner_key"]
        u1, u2 = make_image(1, 2, "v1.0"), make_image(2, 2, "v1.0")
        for name, data in (("user1.bin", u1), ("user2.bin", u2), ("wrong/user1.bin", u2),
                           ("short/user1.bin", u1[:len(u1) // 2])):
            os.makedirs(os.path.dirname(os.path.join(home, name)), exist_ok=True)
            with open(os.path.join(home, name), "wb") as f:
                f.write(data)

        # Keys.
        expect(ctl, ["product", "list", "--key", "0" * 40], 3, "the key was refused")
        expect(ctl, ["product", "list"], 3, "the key was refused (key from FOTA_KEY)",
               env={"FOTA_KEY": "1" * 40})
        # An owner key: its own device by id only, nothing else.
        other = ctl.json("device", "add", "--product", "plug", "hall")["device"]["id"]
        mine = str(added["device"]["id"])
        expect(ctl, ["product", "list", "--key", owner], 3, "the key is not allowed to do this")
        expect(ctl, ["device", "show", "kitchen", "--key", owner], 3,
               "finding device 'kitchen' by name needs the admin key: give the device id")
        expect(ctl, ["device", "show", str(other), "--key", owner], 3,
               "the key is not allowed to do this")
        check(ctl.json("device", "show", mine, "--key", owner)["device"]["name"] == "kitchen",
              "an owner key cannot show its own device")

        # Files and images: refused before anything is sent.
        before = uploads(d)
        expect(ctl, ["release", "publish", "-p", "plug", "-v", "v1.0", "user1.bin",
                     "missing/user2.bin"], 1,
               "cannot read missing/user2.bin (no such file or directory)")
        p = expect(ctl, ["release", "publish", "-p", "plug", "-v", "v1.0", "wrong/user1.bin",
                         "user2.bin"], 1, "user1.bin is a user2 image")
        check("nothing was uploaded" in p.stderr, "wrong slot: %r" % p.stderr)
        expect(ctl, ["release", "publish", "-p", "plug", "-v", "v1.0", "short/user1.bin",
                     "user2.bin", "--json"], 1, "user1.bin")
        expect(ctl, ["release", "publish", "-p", "plug", "-v", "v1.0", "user1.bin"], 1,
               "user2.bin is missing")
        check(uploads(d) == before, "a locally refused release reached the server")
        check(ctl.json("release", "list", "-p", "plug")["roms"] == [],
              "a refused release is listed")

        # The server's own refusal of a wrong-slot image, when the local check is skipped.
        expect(ctl, ["release", "publish", "-p", "plug", "-v", "v1.0", "wrong/user1.bin",
                     "user2.bin", "--no-check"], 1, "user1.bin")
        check(uploads(d) == before + 1, "--no-check did not upload")

        # Unknown things: exit 4.
        expect(ctl, ["device", "show", "ghost"], 4, "no such device 'ghost'")
        expect(ctl, ["device", "show", "999"], 4, "no such device '999'")
        expect(ctl, ["upgrade", "999", "--version", "v1.0"], 4, "no such device '999'")
        expect(ctl, ["reboot", "ghost"], 4, "no such device 'ghost'")
        expect(ctl, ["device", "key", "ghost", "--bin", "-o", "k.bin"], 4,
               "no such device 'ghost'")
        check(not os.path.exists(os.path.join(home, "k.bin")), "a key file for no device")
        expect(ctl, ["release", "list", "--product", "nope"], 4, "no such product 'nope'")
        expect(ctl, ["product", "show", "999"], 4, "no such product '999'")

        # The server's message for other 4xx.
        ctl.run("release", "publish", "-p", "plug", "-v", "v1.0", "user1.bin", "user2.bin")
        expect(ctl, ["release", "publish", "-p", "plug", "-v", "v1.0", "user1.bin", "user2.bin"],
               1, "v1.0 of product")
        expect(ctl, ["product", "create", "lamp", "--flash-map", "7"], 1, "flash_map")
        expect(ctl, ["upgrade", "kitchen", "--version", "v9.9"], 4, "has no release v9.9")
        expect(ctl, ["upgrade", "kitchen", "--version", "v1.0", "--wait", "--timeout", "1"], 1,
               "device kitchen did not report the upgrade to v1.0 within 1 s")
        expect(ctl, ["upgrade", "kitchen", "--version", "v1.0", "--timeout", "1"], 2,
               "goes with --wait")
        expect(ctl, ["release", "current", "-p", "plug", "v9.9"], 4, "v9.9")

        # Server down.
        dead = "http://127.0.0.1:%d" % free_port()
        expect(ctl, ["product", "list", "--server", dead], 5,
               "cannot connect to %s (connection refused)" % dead)
        expect(ctl, ["upgrade", "kitchen", "--version", "v1.0", "--json"], 5,
               "cannot connect to %s (connection refused)" % dead, env={"FOTA_SERVER": dead})
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_follow_server_stops(d):
    home = tempfile.mkdtemp(prefix="fotactl-follow-")
    follow = None
    try:
        ctl = Ctl(home)
        ctl.run("login", "--server", "http://127.0.0.1:%d" % d.http_port, "--key", d.admin_key)
        pid = ctl.json("product", "create", "plug")["product"]["id"]
        d.upload_release(pid, "v1.0")
        d.upload_release(pid, "v1.1")
        newest = ctl.json("messages")["messages"][0]["id"]
        # --after replays the release message once the stream is live: when it is printed,
        # fotactl is surely subscribed.
        follow = ctl.popen("messages", "--follow", "--after", str(newest - 1))
        ready, _, _ = select.select([follow.stdout], [], [], 10)
        check(ready, "no replayed message within 10 s")
        line = follow.stdout.readline()
        check("rom_released" in line and "release v1.1 published" in line, "replay: %r" % line)
        # Like tail -f | head -1: with the reader gone, the next message ends a second
        # follower (SIGPIPE), it does not stream into a closed pipe forever.
        headless = ctl.popen("messages", "--follow")
        headless.stdout.close()
        deadline = time.monotonic() + 15
        n = 0
        while headless.poll() is None and time.monotonic() < deadline:
            n += 1
            d.upload_release(pid, "v2.%d" % n)
            try:
                headless.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
        check(headless.poll() == -signal.SIGPIPE,
              "follow into a closed pipe: %r %r" % (headless.poll(), headless.stderr.read()))
        d.stop()
        out, err = follow.communicate(timeout=20)
        check(follow.returncode == 5 and re.search(r"ended the message stream after \d+ message",
                                                   err),
              "follow after shutdown: %d %r" % (follow.returncode, err))
    finally:
        if follow and follow.poll() is None:
            follow.kill()
            follow.wait()
        shutil.rmtree(home, ignore_errors=True)


def test_new_user(d):
    home = tempfile.mkdtemp(prefix="fotactl-new-")
    try:
        ctl = Ctl(home)
        url = "http://127.0.0.1:%d" % d.http_port
        config = os.path.join(home, ".config", "fota", "config")
        asked = len(re.findall(r"path=/v1/products/ ", d.log_text()))
        for key, why in (("abc", "3 characters"), ("0" * 41, "41 characters"),
                         ("0" * 39 + "g", "a character that is not hex")):
            expect(ctl, ["login", "--server", url, "--key", key], 2,
                   "the key from --key is malformed (40 hex characters expected, got %s)" % why)
        check(not os.path.exists(config), "login saved a malformed key")
        expect(ctl, ["product", "list", "--server", url], 2,
               "the key from FOTA_KEY is malformed (40 hex characters expected, got 3 characters)",
               env={"FOTA_KEY": "abc"})
        check(len(re.findall(r"path=/v1/products/ ", d.log_text())) == asked,
              "a malformed key was sent to the server")
        # The device channel's port instead of the HTTP port.
        dev = d.ports["device"]
        for args in (["login", "--server", "http://127.0.0.1:%d" % dev, "--key", d.admin_key],
                     ["--server", "127.0.0.1:%d" % dev, "--key", d.admin_key, "product", "list"]):
            expect(ctl, args, 5, "http://127.0.0.1:%d does not answer in HTTP (%d may be fotad's "
                   "device port): the REST API is on the HTTP port, 80 by default" % (dev, dev))
        check(not os.path.exists(config), "login saved the device port")
        ctl.run("login", "--server", url, "--key", d.admin_key)
        check(os.path.exists(config), "login with the admin key saved nothing")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def test_https():
    home = tempfile.mkdtemp(prefix="fotactl-tls-")
    try:
        cert, key = os.path.join(home, "cert.pem"), os.path.join(home, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with Fotad(https=True, tls=(cert, key)) as d:
            url = "https://127.0.0.1:%d" % d.ports["https"]
            ctl = Ctl(home)
            p = expect(ctl, ["product", "list", "--server", url, "--key", d.admin_key], 5,
                       "TLS with %s failed" % url)
            check("--cacert" in p.stderr, "no hint at --cacert: %r" % p.stderr)
            ctl.run("product", "list", "--server", url, "--key", d.admin_key, "--cacert", cert)
            ctl.env = dict(ctl.env, FOTA_CACERT=cert)
            ctl.run("product", "list", "--server", url, "--key", d.admin_key)
            ctl.env.pop("FOTA_CACERT")
            ctl.run("login", "--server", url, "--key", d.admin_key, "--cacert", "cert.pem")
            text = open(os.path.join(home, ".config", "fota", "config")).read()
            check("cacert = " + os.path.realpath(cert) in text, "cacert not saved: %r" % text)
            p = ctl.run("product", "create", "plug")
            check("plug" in p.stdout, "https product create: %r" % p.stdout)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    run_tests([test_bad_inputs, test_new_user, test_follow_server_stops, test_https])
