"""cli_workflow_test.py - the seed's whole cloud-upgrade workflow (003 §4.3-4.4) through fotactl alone.

Against a real fotad on loopback ports, with HOME in a temp dir:
login; product create; user1/user2 images for v1.0 and v1.1 from `fotactl image make`; release
publish v1.0 --current; device add; device key --bin (4096 bytes, the key at offset 0); a
simulated stock NONOS device (fota-sim) activates with v1.0 and goes away; publish v1.1 with a
codename and a changelog file; release current v1.1; messages shows "device ... has version v1.1
available"; upgrade while the device is offline (queued); the device comes back, downloads
user2.bin and reports success, which `messages --follow --count 1` prints; reboot; fota-sim sees
the device boot v1.1; device show says v1.1. Then, with the device online, v1.2 through
`upgrade --wait`, which returns when the device reports success; release show/download, the
device's command history, and key rotation.
test_terminal: on a pseudo-terminal, tables are aligned with a bold header, NO_COLOR/--no-color
turn colour off, and publishing draws an upload progress bar. Python 3 stdlib only.
"""
import hashlib
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, bin_path, check, run_tests, wait_for  # noqa: E402

FOTACTL = bin_path("fotactl")
SANITIZER = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


class Ctl:
    """Runs fotactl with HOME (and nothing else) pointing into a temp dir."""

    def __init__(self, home):
        self.home = home
        self.env = dict(os.environ, HOME=home, NO_COLOR="1")
        for k in ("FOTA_SERVER", "FOTA_KEY", "XDG_CONFIG_HOME"):
            self.env.pop(k, None)

    def run(self, *args, ok=True, timeout=30):
        p = subprocess.run([FOTACTL] + list(args), capture_output=True, text=True,
                           env=self.env, timeout=timeout, cwd=self.home)
        for mark in SANITIZER:
            check(mark not in p.stderr, "sanitizer report from fotactl %s:\n%s" % (args, p.stderr))
        if ok:
            check(p.returncode == 0, "fotactl %s: exit %d\n%s%s" % (" ".join(args), p.returncode,
                                                                   p.stdout, p.stderr))
        return p

    def json(self, *args):
        return json.loads(self.run(*(list(args) + ["--json"])).stdout)

    def popen(self, *args):
        return subprocess.Popen([FOTACTL] + list(args), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env, cwd=self.home)


def sim(d, keyfile, *extra):
    """Starts fota-sim (one stock NONOS device) against d's device channel."""
    args = [bin_path("fota-sim"), "--server", "127.0.0.1", "--device-port", str(d.ports["device"]),
            "--http-port", str(d.http_port), "--keys", keyfile, "--profile", "nonos",
            "--devices", "1", "--map", "2", "--time-scale", "20", "--timeout", "30"] + list(extra)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, what, timeout=40):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("%s did not finish:\n%s\n%s" % (what, out, err[-2000:]))
    for mark in SANITIZER:
        check(mark not in err, "sanitizer report from %s:\n%s" % (what, err))
    return p.returncode, out, err


def test_seed_workflow(d):
    home = tempfile.mkdtemp(prefix="fotactl-wf-")
    try:
        ctl = Ctl(home)
        url = "http://127.0.0.1:%d" % d.http_port

        # 1. login stores server and key; nothing else is passed from here on.
        p = ctl.run("login", "--server", url, "--key", d.admin_key)
        check(url in p.stdout, "login output: %r" % p.stdout)

        # 2. the product (devices built for the 1 MB 512+512 map).
        prod = ctl.json("product", "create", "plug", "--serial", "23701", "--flash-map", "2",
                        "--description", "smart plug")["product"]
        check(prod["name"] == "plug" and prod["flash_map"] == 2, "product: %r" % prod)
        listed = ctl.run("product", "list").stdout.splitlines()
        check(len(listed) == 1 and listed[0].split("\t")[:2] == [str(prod["id"]), "plug"],
              "product list: %r" % listed)

        # 3. images made by fotactl itself.
        for v in ("v1.0", "v1.1"):
            os.mkdir(os.path.join(home, v))
            for slot in (1, 2):
                ctl.run("image", "make", "--slot", str(slot), "--flash-map", "2", "--version", v,
                        "-o", os.path.join(home, v, "user%d.bin" % slot))

        # 4. v1.0, current at once.
        p = ctl.run("release", "publish", "--product", "plug", "--version", "v1.0",
                    "v1.0/user1.bin", "v1.0/user2.bin", "--current")
        check("published v1.0" in p.stdout and "current" in p.stdout, "publish: %r" % p.stdout)
        check(ctl.run("release", "current", "--product", "plug").stdout.strip() == "v1.0",
              "current is not v1.0")

        # 5. the device and its flash-ready key sector.
        added = ctl.json("device", "add", "--product", "plug", "kitchen",
                         "--bssid", "18:fe:34:00:00:00")
        dev = added["device"]
        master = added["master_device_key"]
        check(len(master) == 40, "master key: %r" % master)
        for args in ((), ("--product", "plug"), ("--product", str(prod["id"]))):
            rows = ctl.run("device", "list", *args).stdout.splitlines()
            check(len(rows) == 1 and rows[0].split("\t")[:4] ==
                  [str(dev["id"]), "kitchen", "plug" if args[-1:] != (str(prod["id"]),)
                   else str(prod["id"]), "18:fe:34:00:00:00"], "device list %r: %r" % (args, rows))
        ctl.run("device", "key", "kitchen", "--bin", "-o", "master_device_key.bin")
        keybin = os.path.join(home, "master_device_key.bin")
        data = open(keybin, "rb").read()
        check(len(data) == 4096, "key sector is %d bytes" % len(data))
        check(data[:40] == master.encode(), "key sector does not start with the key: %r" % data[:48])
        check("write_flash 0x7E000 k2.bin 0x7F000 blank.bin" in
              ctl.run("device", "key", "kitchen", "--bin", "-o", "k2.bin").stderr,
              "device key --bin does not say where to flash it (map 2: 0x7E000)")
        check(os.stat(keybin).st_mode & 0o077 == 0, "key sector file is readable by others")
        check(ctl.run("device", "key", str(dev["id"])).stdout.strip() == master,
              "device key (text) differs from the key given at add")
        keyfile = os.path.join(home, "keys.txt")
        with open(keyfile, "w") as f:
            f.write(master + "\n")

        # 6. the simulated device activates with v1.0 and goes away.
        rc, out, err = finish(sim(d, keyfile, "--initial-version", "v1.0"), "fota-sim check-in")
        check(rc == 0, "fota-sim check-in failed:\n%s\n%s" % (out, err[-2000:]))
        show = ctl.json("device", "show", "kitchen")["device"]
        check(show["rom_version"] == "v1.0", "device after check-in: %r" % show)
        wait_for(lambda: not ctl.json("device", "show", "kitchen")["device"]["online"], 10,
                 "the device to go offline")

        # 7. v1.1 with codename and changelog file, then current: an update message.
        with open(os.path.join(home, "CHANGES"), "w") as f:
            f.write("faster relay\nsecond line\n")
        ctl.run("release", "publish", "-p", "plug", "-v", "v1.1", "v1.1/user1.bin",
                "v1.1/user2.bin", "--codename", "beta", "--changelog", "@CHANGES")
        rows = [r.split("\t") for r in ctl.run("release", "list", "-p", "plug").stdout.splitlines()]
        check([r[0] for r in rows] == ["v1.1", "v1.0"], "release list: %r" % rows)
        check(rows[0][1] == "beta" and rows[0][3] == "user1.bin,user2.bin" and
              rows[0][5] == "faster relay" and rows[1][2] == "current", "release list: %r" % rows)
        p = ctl.run("release", "current", "--product", "plug", "v1.1")
        check("v1.1 is now the current release" in p.stdout, "set current: %r" % p.stdout)
        msgs = ctl.run("messages", "--product", "plug").stdout
        check("device kitchen has version v1.1 available" in msgs, "messages: %r" % msgs)
        last_id = max(m["id"] for m in ctl.json("messages", "--device", "kitchen")["messages"])

        # 8. upgrade while offline: queued.
        p = ctl.run("upgrade", "kitchen", "--version", "v1.1")
        check("queued" in p.stdout, "upgrade while offline: %r" % p.stdout)

        # 9. follow the device's messages (from the last one seen: no race), bring it back.
        follow = ctl.popen("messages", "--device", "kitchen", "--follow", "--after",
                           str(last_id), "--count", "1")
        device = sim(d, keyfile, "--initial-version", "v1.0", "--upgrade-to", "v1.1")
        rc, out, err = finish(follow, "messages --follow")
        check(rc == 0, "messages --follow: %d %s" % (rc, err))
        fields = out.strip().split("\t")
        check(len(out.strip().splitlines()) == 1 and fields[2] == "device_upgrade_success" and
              "v1.1" in fields[3], "followed message: %r" % out)

        # 10. reboot into the new slot; the simulator sees v1.1 boot.
        p = ctl.run("reboot", "kitchen")
        check("reboot for device kitchen" in p.stdout, "reboot: %r" % p.stdout)
        rc, out, err = finish(device, "fota-sim upgrade")
        check(rc == 0 and "upgraded:   1" in out, "fota-sim upgrade:\n%s\n%s" % (out, err[-2000:]))
        show = ctl.json("device", "show", "kitchen")["device"]
        check(show["rom_version"] == "v1.1", "device after upgrade: %r" % show)
        listed = ctl.run("messages", "--device", "kitchen").stdout
        check("upgraded from v1.0 to v1.1" in listed, "messages after upgrade: %r" % listed)

        # The release as stored, the file back byte for byte, the command history.
        shown = ctl.run("release", "show", "-p", "plug", "v1.1").stdout
        local2 = open(os.path.join(home, "v1.1", "user2.bin"), "rb").read()
        check("codename\tbeta" in shown and hashlib.sha256(local2).hexdigest() in shown,
              "release show: %r" % shown)
        ctl.run("release", "download", "-p", "plug", "v1.1", "user2.bin", "-o", "back.bin")
        check(open(os.path.join(home, "back.bin"), "rb").read() == local2,
              "release download differs from the uploaded user2.bin")
        cmds = [r.split("\t") for r in ctl.run("device", "commands", "kitchen").stdout.splitlines()]
        check([c[1] for c in cmds] == ["sys_reboot", "sys_upgrade"] and
              '"v1.1"' in cmds[1][2] and cmds[1][3] in ("acked", "done"),
              "device commands: %r" % cmds)

        # 11. the CI way with the device online: upgrade --wait returns on its report.
        os.mkdir(os.path.join(home, "v1.2"))
        for slot in (1, 2):
            ctl.run("image", "make", "--slot", str(slot), "--flash-map", "2", "--version", "v1.2",
                    "-o", os.path.join(home, "v1.2", "user%d.bin" % slot))
        ctl.run("release", "publish", "-p", "plug", "-v", "v1.2", "v1.2/user1.bin",
                "v1.2/user2.bin", "--current")
        device = sim(d, keyfile, "--initial-version", "v1.1", "--upgrade-to", "v1.2")
        wait_for(lambda: ctl.json("device", "show", "kitchen")["device"]["online"], 10,
                 "the device to come online")
        p = ctl.run("upgrade", "kitchen", "--version", "v1.2", "--wait", "--timeout", "30")
        check("device kitchen upgraded to v1.2" in p.stdout, "upgrade --wait: %r" % p.stdout)
        ctl.run("reboot", "kitchen")
        rc, out, err = finish(device, "fota-sim upgrade to v1.2")
        check(rc == 0 and "upgraded:   1" in out, "fota-sim v1.2:\n%s\n%s" % (out, err[-2000:]))

        # 12. a leaked key: rotate, and the key sector follows.
        rotated = ctl.json("device", "rotate-keys", "kitchen")
        check(rotated["master_device_key"] != master, "rotate-keys kept the key")
        ctl.run("device", "key", "kitchen", "--bin", "-o", "master_device_key.bin")
        check(open(keybin, "rb").read()[:40] == rotated["master_device_key"].encode(),
              "the key sector does not hold the rotated key")

        # 13. any action through the seed's RPC form: `rpc DEVICE ACTION k=v`, queued while the
        # device is away, stored with its parameters.
        wait_for(lambda: not ctl.json("device", "show", "kitchen")["device"]["online"], 10,
                 "the device to go offline")
        p = ctl.run("rpc", "kitchen", "get_switch", "tag=3")
        check("queued" in p.stdout, "rpc while offline: %r" % p.stdout)
        cmds = ctl.json("device", "commands", "kitchen")["commands"]
        newest = max(cmds, key=lambda c: c["id"])
        check(newest["action"] == "get_switch" and '"tag": "3"' in json.dumps(newest["params"]) and
              newest["state"] == "queued", "rpc command stored: %r" % newest)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def on_tty(ctl, *args, env=None):
    """Runs fotactl with stdout and stderr on a pseudo-terminal; returns (status, output)."""
    master, slave = pty.openpty()
    e = dict(ctl.env, TERM="xterm")
    e.pop("NO_COLOR", None)
    e.update(env or {})
    p = subprocess.Popen([FOTACTL] + list(args), stdout=slave, stderr=slave, env=e, cwd=ctl.home)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:   # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(timeout=30), out.decode(errors="replace")


def test_terminal(d):
    """On a terminal: coloured, aligned tables and an upload progress bar; NO_COLOR and
    --no-color turn colour off; piped output stays plain (checked by the test above)."""
    home = tempfile.mkdtemp(prefix="fotactl-tty-")
    try:
        ctl = Ctl(home)
        ctl.run("login", "--server", "http://127.0.0.1:%d" % d.http_port, "--key", d.admin_key)
        ctl.run("product", "create", "plug", "--flash-map", "2")
        ctl.run("product", "create", "lamp-with-a-long-name", "--flash-map", "4",
                "--description", "second")
        rc, out = on_tty(ctl, "product", "list")
        check(rc == 0 and out.startswith("\033[1mID"), "no bold header on a tty: %r" % out)
        rows = [re.sub(r"\033\[[0-9;]*m", "", r) for r in out.splitlines()]
        check(len(rows) == 3, "product list rows: %r" % rows)
        for col in ("NAME", "SERIAL", "MAP"):
            at = rows[0].index(col)
            check(all(r[at - 2:at] == "  " and r[at] != " " for r in rows[1:]),
                  "column %s is not aligned: %r" % (col, rows))
        for env, args in (({"NO_COLOR": "1"}, ()), ({}, ("--no-color",))):
            rc, out = on_tty(ctl, "product", "list", *args, env=env)
            check(rc == 0 and "\033[" not in out and out.startswith("ID  "),
                  "colour not off with %r %r: %r" % (env, args, out))
        for slot in (1, 2):
            ctl.run("image", "make", "--slot", str(slot), "--flash-map", "2", "--version", "v1.0",
                    "--size", "200000", "-o", "user%d.bin" % slot)
        rc, out = on_tty(ctl, "release", "publish", "-p", "plug", "-v", "v1.0", "user1.bin",
                         "user2.bin")
        check(rc == 0 and "uploading [" + "#" * 40 + "] 100%" in out and
              "published v1.0" in out, "no progress bar on a tty: %r" % out[-400:])
        check(out.count("100%") == 1, "the full bar is drawn more than once: %r" % out[-400:])
        p = ctl.run("release", "publish", "-p", "plug", "-v", "v1.1", "user1.bin", "user2.bin")
        check("uploading" not in p.stderr, "progress bar when stderr is not a tty: %r" % p.stderr)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    run_tests([test_seed_workflow, test_terminal])
