"""backup_test.py - backups of a data dir (docs/backup.md).

A fotad with products, releases (real images), devices (some connected, some downloading),
keys and messages is backed up twice while it serves and while devices and messages are being
written: by GET /v1/backup and by `fotad backup --data DIR`. Each archive is restored with
`fotad restore` onto a fresh data dir; a fotad started there serves the same releases byte for
byte, takes the same admin key, lets a device identify on the device channel with its old key,
derives the same key sectors, and lists the same devices and messages. The snapshot is one
moment: of the devices a writer created one after another during the backup, the restored ones
are exactly a prefix, each with its keys.

Refusals, each a clear message with nothing written to the target: a damaged blob, a truncated
archive, another format version, not a backup, a non-empty data dir (unless --force, which moves
fotad's files aside), a data dir a fotad runs on; and a backup of a data dir holding a damaged
blob fails (both ways) without leaving a file.
"""
import hashlib
import http.client
import io
import json
import os
import re
import socket
import tarfile
import threading
import time

import fotatest
from devchan_util import StockDevice, first_frame, identify, parse_nonce, upgrade_frame
from fotatest import bin_path, check, make_image, run, run_tests, tempdir, wait_for

# A backup is of a data dir with its SQLite store (fota.db); PostgreSQL has its own tools.
fotatest.DEFAULT_STORE = "sqlite"

# ---------------------------------------------------------------- helpers


def fotad(*args, timeout=120):
    """Runs `fotad ARGS` (backup / restore); returns (status, stdout, stderr)."""
    p = run([bin_path("fotad")] + list(args), timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def fotactl_backup(d, path, *extra, key=None):
    """`fotactl backup PATH`; returns (status, stdout, stderr)."""
    p = run([bin_path("fotactl"), "--server", "http://127.0.0.1:%d" % d.http_port, "--key",
             key or d.admin_key, "backup", path] + list(extra), timeout=120)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def http_backup(d, path, key="admin"):
    """GET /v1/backup streamed into path. Returns (status, headers, body of an error)."""
    key = d.admin_key if key == "admin" else key
    conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=120)
    try:
        conn.request("GET", "/v1/backup", headers={"Authorization": "token " + key} if key
                     else {})
        resp = conn.getresponse()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        if resp.status != 200:
            return resp.status, hdrs, resp.read()
        with open(path, "wb") as f:
            while True:
                chunk = resp.read(1 << 16)
                if not chunk:
                    break
                f.write(chunk)
        return resp.status, hdrs, b""
    finally:
        conn.close()


def tar_members(path):
    with tarfile.open(path) as t:
        return [(m.name, m.size, m.mode, m.offset_data) for m in t.getmembers()]


def manifest_of(path):
    with tarfile.open(path) as t:
        first = t.getmembers()[0]
        check(first.name == "manifest.json", "first member %s" % first.name)
        return json.loads(t.extractfile(first).read())


def listing(d, path, key):
    st, _, j = d.api("GET", path)
    check(st == 200, "GET %s: %d %r" % (path, st, j))
    return j[key]


def device_key_works(d, key):
    st, _, j = d.api("GET", "/v1/device/", key=key)
    return st == 200


def rom_url(version, name):
    return "/v1/device/rom/?action=download_rom&version=%s&filename=%s" % (version, name)


class Fleet:
    """What the test made before the backup: the state every restore must bring back."""

    def __init__(self, d):
        self.d = d
        self.images = {}        # (product id, version, file name) -> bytes
        self.devices = []       # (device JSON, master key, owner key)
        self.products = []

    def build(self):
        d = self.d
        for pi, (name, versions) in enumerate((("plug", ["v1.0", "v1.1", "v1.2"]),
                                               ("lamp", ["v2.0"]), ("meter", ["v3.0", "v3.1"]))):
            p = d.create_product(name, serial="%08x" % (0x23700 + pi))
            self.products.append(p)
            for vi, v in enumerate(versions):
                files = [("user1.bin", make_image(1, 2, v, size=40000 + 9000 * vi, seed=pi)),
                         ("user2.bin", make_image(2, 2, v, size=52000 + 7000 * vi, seed=pi))]
                if name == "meter":   # one file shared by two releases: one blob
                    files.append(("esp_init_data_default.bin", b"\x05" * 128))
                d.upload_release(p["id"], v, files=files)
                for fn, data in files:
                    self.images[(p["id"], v, fn)] = data
            d.set_current(p["id"], versions[-1])
            for k in range(8):
                j = d.create_device(p["id"], name="%s-%02d" % (name, k),
                                    bssid="18:fe:34:00:%02x:%02x" % (pi, k))
                self.devices.append((j["device"], j["master_device_key"], j["owner_key"]))

    def catalog(self, d):
        """Products and releases as the API shows them, without what serving changes."""
        out = []
        for p in listing(d, "/v1/products/", "products"):
            roms = listing(d, "/v1/products/%d/roms/" % p["id"], "roms")
            for r in roms:
                for f in r["files"]:
                    f.pop("download_count", None)
            out.append((p["id"], p["name"], p["serial"], p["current_version"], roms))
        return out

    def devices_of(self, d):
        out = {}
        for p in self.products:
            for v in listing(d, "/v1/products/%d/devices/" % p["id"], "devices"):
                out[v["id"]] = {k: v[k] for k in ("name", "bssid", "product_id", "key_generation",
                                                  "created")}
        return out

    def messages_of(self, d):
        out, before = [], None
        while True:
            q = "/v1/messages/?limit=500" + ("&before=%d" % before if before else "")
            st, _, j = d.api("GET", q)
            check(st == 200, "messages: %d" % st)
            out += [(m["id"], m["action"], m["device_id"], json.dumps(m["body"], sort_keys=True))
                    for m in j["messages"]]
            before = j.get("next_before")
            if not before:
                return out


class Traffic:
    """What runs during a backup: devices connected (pings), a device downloading its firmware
    over and over, and a writer creating devices w-0, w-1, ... one after another."""

    def __init__(self, d, fleet):
        self.d, self.fleet = d, fleet
        self.stop = threading.Event()
        self.errors = []
        self.created = []       # (name, master key) the server confirmed, in order
        self.downloads = 0
        self.threads = []
        self.conns = []

    def start(self):
        d, fleet = self.d, self.fleet
        for dev, master, _ in fleet.devices[:4]:
            c = StockDevice(d.device_port, master)
            c.send(first_frame(1000 + dev["id"], master))
            check(parse_nonce(c.recv_msg()) == 1000 + dev["id"], "identify")
            self.conns.append(c)
        for fn in (self._write, self._download):
            t = threading.Thread(target=self._guard, args=(fn,), daemon=True)
            t.start()
            self.threads.append(t)
        wait_for(lambda: len(self.created) >= 3 and self.downloads >= 2, 30, "traffic running")

    def _guard(self, fn):
        try:
            fn()
        except Exception as e:   # reported by finish()
            self.errors.append(e)

    def _write(self):
        pid = self.fleet.products[2]["id"]
        i = 0
        while not self.stop.is_set():
            st, _, j = self.d.api("POST", "/v1/products/%d/devices/" % pid, {"name": "w-%d" % i})
            check(st == 200, "writer: %d %r" % (st, j))
            self.created.append(("w-%d" % i, j["master_device_key"]))
            i += 1

    def _download(self):
        dev, master, _ = self.fleet.devices[0]
        pid = dev["product_id"]
        want = self.fleet.images[(pid, "v1.2", "user2.bin")]
        while not self.stop.is_set():
            st, _, body = self.d.request("GET", rom_url("v1.2", "user2.bin"), key=master)
            check(st == 200 and body == want, "download during the backup: %d, %d bytes"
                  % (st, len(body)))
            self.downloads += 1

    def ping(self):
        for c in self.conns:
            c.send('{"path": "/v1/ping/", "method": "POST","meta": {"Authorization": '
                   '"token %s"}}\n' % c.devkey)
            check("ping success" in c.recv_msg(), "ping while backing up")

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
            check(not t.is_alive(), "traffic thread did not stop")
        for c in self.conns:
            c.close()
        if self.errors:
            raise self.errors[0]


def check_restored(archive, fleet, before, traffic_created, label):
    """Restores archive onto a fresh data dir, starts fotad there and checks it serves what
    `before` recorded (and a consistent prefix of what the writer made during the backup)."""
    target = os.path.join(tempdir("restore-"), "data")
    st, out, err = fotad("restore", archive, "--data", target)
    check(st == 0, "%s: restore exit %d: %s" % (label, st, err))
    check(re.search(r"fotad restore: restored .* into %s in [0-9.]+ s: products 3, releases 6"
                    % re.escape(target), out), "%s: restore summary %r" % (label, out))
    for name in ("secret.key", "owner.key", "fota.db"):
        mode = os.stat(os.path.join(target, name)).st_mode & 0o777
        check(mode == 0o600, "%s: %s has mode %o" % (label, name, mode))
    check(not [n for n in os.listdir(target) if n.startswith(".restore-")],
          "%s: staging left behind" % label)
    r = fotatest.Fotad(data_dir=target).start()
    try:
        # the same admin key: owner.key came back and the API takes the old key
        check(r.admin_key == fleet.d.admin_key, "%s: another admin key" % label)
        check(fleet.catalog(r) == before["catalog"], "%s: releases differ" % label)
        # every file of every release, downloaded by a device of its product, byte for byte
        masters = {}
        for dev, master, _ in fleet.devices:
            masters.setdefault(dev["product_id"], master)
        for (pid, version, fn), data in sorted(fleet.images.items()):
            st, hdrs, body = r.request("GET", rom_url(version, fn), key=masters[pid])
            check(st == 200 and hashlib.sha256(body).digest() == hashlib.sha256(data).digest(),
                  "%s: %s %s of product %d: %d, %d bytes" % (label, version, fn, pid, st,
                                                               len(body)))
        # the devices of before, as they were; their keys work (the secret came back)
        devs = fleet.devices_of(r)
        for did, v in before["devices"].items():
            check(devs.get(did) == v, "%s: device %d: %r != %r" % (label, did, devs.get(did), v))
        for dev, master, owner in fleet.devices:
            check(device_key_works(r, master) and device_key_works(r, owner),
                  "%s: device %s's keys refused" % (label, dev["name"]))
            st, _, sector = r.api("GET", "/v1/devices/%d/master_device_key.bin" % dev["id"],
                                  raw=True)
            check(st == 200 and sector[:40] == master.encode(),
                  "%s: key sector of %s: %d" % (label, dev["name"], st))
        # a device identifies on the device channel with its old key; a stranger does not
        check(identify(r.device_port, fleet.devices[5][1]), "%s: old key refused" % label)
        check(not identify(r.device_port, "0123456789abcdef0123456789abcdef01234567"),
              "%s: an unknown key identified" % label)
        # the messages of before, unchanged
        msgs = set(fleet.messages_of(r))
        missing = [m for m in before["messages"] if m not in msgs]
        check(not missing, "%s: messages missing: %r" % (label, missing[:3]))
        # the writer's devices: exactly w-0 .. w-(n-1), n at least what was confirmed before
        # the backup began; each with its keys except perhaps the newest (its key rows are the
        # next transaction)
        made = {v["name"]: did for did, v in devs.items() if v["name"].startswith("w-")}
        n = len(made)
        check(sorted(made) == sorted("w-%d" % i for i in range(n)),
              "%s: the writer's devices are not a prefix: %r" % (label, sorted(made)))
        check(n >= before["written"], "%s: %d of the writer's devices, %d were confirmed "
              "before the backup" % (label, n, before["written"]))
        for name, master in traffic_created[:max(0, n - 1)]:
            check(device_key_works(r, master), "%s: %s has no keys" % (label, name))
        return n
    finally:
        r.stop()


# ---------------------------------------------------------------- tests


def test_online_backup_and_restore(d):
    fleet = Fleet(d)
    fleet.build()
    # messages: every device of the first product reports an upgrade on the device channel
    for dev, master, _ in fleet.devices[:6]:
        c = StockDevice(d.device_port, master)
        c.send(first_frame(7, master))
        c.recv_msg()
        c.send(upgrade_frame(master, "device_upgrade_success", "v1.0", "v1.2"))
        c.close()
    wait_for(lambda: sum(1 for m in fleet.messages_of(d) if m[1] == "device_upgrade_success")
             == 6, 10, "six device messages")
    traffic = Traffic(d, fleet)
    traffic.start()
    before = {"catalog": fleet.catalog(d), "devices": fleet.devices_of(d),
              "messages": fleet.messages_of(d), "written": len(traffic.created)}
    work = tempdir("archives-")
    via_http, via_cmd = os.path.join(work, "http.tar"), os.path.join(work, "cmd.tar")
    via_ctl = os.path.join(work, "ctl.tar")
    try:
        st, hdrs, body = http_backup(d, via_http)
        check(st == 200, "GET /v1/backup: %d %r" % (st, body))
        traffic.ping()
        st, ctl_out, err = fotactl_backup(d, via_ctl)
        check(st == 0, "fotactl backup exit %d: %s" % (st, err))
        traffic.ping()
        st, out, err = fotad("backup", "--data", d.data_dir, via_cmd)
        check(st == 0, "fotad backup exit %d: %s" % (st, err))
        traffic.ping()
        check(traffic.downloads >= 2, "downloads ran")
    finally:
        traffic.finish()
    # the reply: a tar of announced length with a dated file name
    check(hdrs.get("content-type") == "application/x-tar", "content type %r" % hdrs)
    check(int(hdrs["content-length"]) == os.path.getsize(via_http), "length")
    check(re.match(r"attachment; filename=fota-backup-\d{8}T\d{6}Z\.tar$",
                   hdrs.get("content-disposition", "")), "disposition %r" % hdrs)
    d.wait_log(r"INFO  backup sent req=\d+ bytes=%d " % os.path.getsize(via_http))
    check(re.search(r"fotad backup: wrote %s \([0-9.]+ [KM]iB\) from %s in [0-9.]+ s: products "
                    r"3, releases 6, release_files 14, devices \d+, keys \d+, commands 0, "
                    r"messages \d+, rollouts 0; 13 blobs, database schema \d+"
                    % (re.escape(via_cmd), re.escape(d.data_dir)), out),
          "fotad backup summary %r" % out)
    check(re.match(r"wrote %s \([0-9.]+ [KM]iB, 17 members, verified\): products 3, releases 6, "
                   r"release_files 14, devices \d+, keys \d+, commands 0, messages \d+, "
                   r"rollouts 0; taken \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC by fotad \S+, schema "
                   r"\d+\n$" % re.escape(via_ctl), ctl_out), "fotactl backup says %r" % ctl_out)
    for path in (via_cmd, via_ctl):
        check(oct(os.stat(path).st_mode & 0o777) == "0o600", "archive mode of %s" % path)
    check(not [n for n in os.listdir(work) if ".tmp-" in n], "temp file left")
    check(not [n for n in os.listdir(d.data_dir) if n.startswith("backup.tmp-")],
          "snapshot dir left in the data dir")
    # both are tar archives any tar reads, in the documented layout
    for path in (via_http, via_cmd, via_ctl):
        names = [m[0] for m in tar_members(path)]
        check(names[:4] == ["manifest.json", "secret.key", "owner.key", "fota.db"],
              "members %r" % names[:5])
        check(len(names) == 4 + 13 and all(re.match(r"blobs/sha256/([0-9a-f]{2})/\1[0-9a-f]{62}$",
                                                    n) for n in names[4:]), "blob names")
        check(all(m[2] == 0o600 for m in tar_members(path)), "member modes")
        man = manifest_of(path)
        check(man["format"] == "fota-backup" and man["format_version"] == 1 and
              man["counts"]["products"] == 3 and man["counts"]["releases"] == 6,
              "manifest %r" % {k: man[k] for k in man if k != "members"})
        check([m["name"] for m in man["members"]] == names[1:], "manifest member list")
    check(manifest_of(via_http)["source"] == "GET /v1/backup", "source")
    n_http = check_restored(via_http, fleet, before, traffic.created, "GET /v1/backup")
    n_ctl = check_restored(via_ctl, fleet, before, traffic.created, "fotactl backup")
    n_cmd = check_restored(via_cmd, fleet, before, traffic.created, "fotad backup")
    check(n_cmd >= n_ctl >= n_http, "a later backup has fewer of the writer's devices")


def test_offline_and_refusals():
    # a small data dir, its fotad stopped: `fotad backup` works without a fotad too
    d = fotatest.Fotad().start()
    p = d.create_product("solo")
    d.upload_release(p["id"], "v1.0")
    dev = d.create_device(p["id"], name="one")
    d.stop()
    work = tempdir("archives-")
    good = os.path.join(work, "good.tar")
    st, out, err = fotad("backup", "--data", d.data_dir, good)
    check(st == 0, "offline backup: %d %s" % (st, err))
    data = open(good, "rb").read()
    members = tar_members(good)

    def refused(archive_bytes, want, name):
        path = os.path.join(work, name + ".tar")
        with open(path, "wb") as f:
            f.write(archive_bytes)
        new = os.path.join(work, name + "-new")           # does not exist
        empty = tempdir(name + "-empty-")                  # exists, empty
        for target in (new, empty):
            st, out, err = fotad("restore", "--data", target, path)
            check(st == 1 and re.search(want, err), "%s: exit %d, %r" % (name, st, err))
            check("nothing was written to %s" % target in err, "%s: %r" % (name, err))
        check(not os.path.exists(new), "%s: %s was made" % (name, new))
        check(os.listdir(empty) == [], "%s: %s holds %r" % (name, empty, os.listdir(empty)))

    # a damaged blob: one byte of its content flipped
    blob = [m for m in members if m[0].startswith("blobs/")][0]
    bad = bytearray(data)
    bad[blob[3] + 100] ^= 0x40
    refused(bytes(bad), r"member %s is damaged: its bytes hash to" % re.escape(blob[0]),
            "damaged")
    # truncated: inside the database, and just before the end marker
    db = [m for m in members if m[0] == "fota.db"][0]
    refused(data[:db[3] + 4096], r"truncated after \d+ bytes, inside member fota.db", "cut")
    refused(data[:-1024], r"end marker is missing|truncated", "cut-end")
    # another format version (the archive rebuilt with Python's tarfile)
    with tarfile.open(good) as t:
        out_buf = io.BytesIO()
        with tarfile.open(fileobj=out_buf, mode="w", format=tarfile.USTAR_FORMAT) as o:
            for m in t.getmembers():
                content = t.extractfile(m).read()
                if m.name == "manifest.json":
                    man = json.loads(content)
                    man["format_version"] = 2
                    content = json.dumps(man).encode()
                    m.size = len(content)
                o.addfile(m, io.BytesIO(content))
    refused(out_buf.getvalue(), r"backup format version 2, this fotad reads version 1: restore "
            r"it with the fotad that wrote it", "version")
    # not a backup at all
    refused(b"PK\x03\x04" + b"\x00" * 4000, r"not a tar archive", "zip")
    refused(b"", r"the file is empty", "empty")

    # the good archive restores; a data dir with files needs --force, which moves them aside
    st, out, err = fotad("restore", good, "--data", d.data_dir)
    check(st == 1 and re.search(r"is not empty \(.*fota\.db.*\): restore into a new directory, or "
                                r"give --force", err), "non-empty: %d %r" % (st, err))
    st, out, err = fotad("restore", "--force", good, "--data", d.data_dir)
    check(st == 0, "--force: %d %r" % (st, err))
    aside = [n for n in os.listdir(d.data_dir) if n.startswith("replaced-")]
    check(len(aside) == 1 and "fota.db" in os.listdir(os.path.join(d.data_dir, aside[0])),
          "moved aside: %r" % os.listdir(d.data_dir))
    d.start()
    check(device_key_works(d, dev["master_device_key"]), "device key after --force")
    # a data dir a fotad runs on is refused before anything else
    st, out, err = fotad("restore", "--force", good, "--data", d.data_dir)
    check(st == 1 and re.search(r"a fotad \(pid %d\) is running on %s: stop it first"
                                % (d.proc.pid, re.escape(d.data_dir)), err),
          "running: %d %r" % (st, err))
    # a damaged blob in the data dir: both kinds of backup fail, naming the release
    sha = [f["sha256"] for f in d.upload_release(p["id"], "v1.1")["rom"]["files"]
           if f["name"] == "user2.bin"][0]
    with open(os.path.join(d.data_dir, "blobs", "sha256", sha[:2], sha), "r+b") as f:
        f.seek(200)
        byte = f.read(1)[0]
        f.seek(200)
        f.write(bytes([byte ^ 0xff]))
    out_file = os.path.join(work, "never.tar")
    st, out, err = fotad("backup", "--data", d.data_dir, out_file)
    check(st == 1 and re.search(r"blob .*%s \(user2\.bin of release v1\.1 of product solo\) is "
                                r"damaged: its bytes hash to [0-9a-f]{16}\.\.\., not to its name"
                                % sha, err), "damaged source: %d %r" % (st, err))
    check(not [n for n in os.listdir(work) if n.startswith("never.tar")], "file left")
    d.expect_error(r"backup failed req=\d+ error=\"blob .* is damaged")
    d.expect_error(r"http (req=\d+ method=GET path=/v1/backup status=500|refused req=\d+ "
                   r"status=500 message=\"backup failed)")
    st, hdrs, body = http_backup(d, out_file)
    check(st == 500 and b"(user2.bin of release v1.1 of product solo) is damaged" in body,
          "GET /v1/backup of a damaged blob: %d %r" % (st, body))
    st, out, err = fotactl_backup(d, out_file)
    check(st == 1 and re.search(r"^fotactl: server error \(HTTP 500\): backup failed: blob .* \(user2\.bin of release v1\.1 "
                                r"of product solo\) is damaged", err, re.M),
          "fotactl backup of a damaged blob: %d %r" % (st, err))
    check(not [n for n in os.listdir(work) if n.startswith("never.tar")], "fotactl left a file")
    st, out, err = fotactl_backup(d, out_file, key=dev["owner_key"])
    check(st == 3, "fotactl backup with a device key: %d %r" % (st, err))
    # keys: none 401, a device key 403
    st, _, _ = http_backup(d, out_file, key=None)
    check(st == 401, "no key: %d" % st)
    st, _, _ = http_backup(d, out_file, key=dev["owner_key"])
    check(st == 403, "device key: %d" % st)
    check(not [n for n in os.listdir(d.data_dir) if n.startswith("backup.tmp-")],
          "snapshot dir left after failures")
    d.stop()
    # usage
    st, out, err = fotad("backup")
    check(st == 2 and "which archive?" in err, "no archive: %d %r" % (st, err))
    st, out, err = fotad("restore", "--frobnicate", good)
    check(st == 2 and "unknown option --frobnicate" in err, "bad option: %d %r" % (st, err))


def test_one_at_a_time_and_shutdown(d):
    """A client that stops reading holds its backup open: a second one is refused (409) while
    fotad serves everything else; SIGTERM ends the stalled stream short of its length and fotad
    exits cleanly. HEAD answers the headers alone; HTTPS streams the same archive."""
    p = d.create_product("big", flash_map=6)
    for i in range(6):   # about 11 MB of firmware: more than the socket buffers hold
        v = "v%d.0" % i
        d.upload_release(p["id"], v, flash_map=6,
                         files=[("user1.bin", make_image(1, 6, v, size=900000, seed=i)),
                                ("user2.bin", make_image(2, 6, v, size=900000, seed=i))])
    dev = d.create_device(p["id"], name="reader")
    st, hdrs, body = d.request("HEAD", "/v1/backup", key=d.admin_key)
    check(st == 200 and body == b"" and int(hdrs["content-length"]) > 10 << 20,
          "HEAD: %d %r" % (st, hdrs))
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.connect(("127.0.0.1", d.http_port))
    slow.sendall(("GET /v1/backup HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token %s\r\n"
                  "\r\n" % d.admin_key).encode())
    head = b""
    slow.settimeout(30)
    while b"\r\n\r\n" not in head:
        more = slow.recv(1)
        check(more, "no reply header")
        head += more
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    st, _, j = d.api("GET", "/v1/backup")
    check(st == 409 and "a backup is being taken already" in j["message"], "second: %d %r"
          % (st, j))
    st, _, body = d.request("GET", rom_url("v5.0", "user2.bin"), key=dev["master_device_key"])
    check(st == 200 and body == make_image(2, 6, "v5.0", size=900000, seed=5),
          "download during a stalled backup: %d, %d bytes" % (st, len(body)))
    d.stop()
    d.wait_log(r"WARN  backup not completed req=\d+ queued=\d+ size=%d reason=\"fotad is "
               r"shutting down\"" % length)
    got = 0
    while True:
        try:
            more = slow.recv(1 << 16)
        except (ConnectionResetError, socket.timeout):
            break
        if not more:
            break
        got += len(more)
    slow.close()
    check(got < length, "the stalled stream was not cut short (%d of %d)" % (got, length))
    # over HTTPS (a mapped file instead of sendfile), checked by fotactl as it arrives
    cert = fotatest.make_cert()
    t = fotatest.Fotad(data_dir=d.data_dir, https=True, tls=cert).start()
    try:
        out = os.path.join(tempdir("tls-"), "tls.tar")
        p = run([bin_path("fotactl"), "--server", "https://127.0.0.1:%d" % t.ports["https"],
                 "--cacert", cert[0], "--key", t.admin_key, "backup", out], timeout=120)
        check(p.returncode == 0 and b"16 members, verified" in p.stdout,
              "fotactl backup over HTTPS: %d %r %r" % (p.returncode, p.stdout, p.stderr))
    finally:
        t.stop()


run_tests([test_online_backup_and_restore, test_offline_and_refusals,
           test_one_at_a_time_and_shutdown])
