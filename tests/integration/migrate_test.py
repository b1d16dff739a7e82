"""migrate_test.py - `fotad migrate --from sqlite:DATA --to postgresql:DSN --data DIR`
(docs/store.md, "Moving to PostgreSQL").

A fotad on SQLite gets a fleet with every kind of row through the REST API, the device channel,
downloads, the legacy port and Arduino check-ins: products, releases with files (one file
shared by two releases), devices (one with rotated keys, one deleted), tags, commands (queued,
cancelled), messages (device reports), download records, a cancelled rollout with its members
and stages, legacy transfers, an Arduino product and device. A migrate while it runs is
refused. Once it is stopped, the fleet moves into a PostgreSQL started by the test; a fotad on
PostgreSQL with the target data dir then lists the same products, releases, devices, tags,
commands, messages, rollouts and transfers (JSON compared), takes the same admin key, identifies
devices by their master keys on the device channel (a rotated device by its new one only),
answers their owner keys, serves every release file byte for byte, knows the Arduino device at
its next check-in, and hands new rows ids above every id the SQLite fleet ever used. The release
files are in PostgreSQL's blobs too (each of rom_files' files, its size): a second fotad on the
database whose data dir holds only secret.key fetches them at its start and serves what the
SQLite fotad served, byte for byte (every file on the admin route, a device's ESP8266 download,
the Arduino release at a new device's check-in).

Refusals, each with a clear message and the target unchanged: a second migrate into the now
non-empty database, a source whose schema version is not this fotad's (newer, older), a target
data dir with another secret.key.
"""
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3

from arduino_util import arduino_product, build_image, checkin, md5, release
from devchan_util import StockDevice, first_frame, identify, parse_nonce, upgrade_frame
from fotatest import Fotad, bin_path, check, make_image, run, run_tests, tempdir, wait_for
from pg_util import PgServer


def fotad_cmd(*args):
    p = run([bin_path("fotad")] + list(args), timeout=180)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def migrate(src, dsn, target):
    return fotad_cmd("migrate", "--from", "sqlite:" + src, "--to", "postgresql:" + dsn,
                     "--data", target)


def get(d, path, key="admin"):
    st, _, j = d.api("GET", path, key=key)
    check(st == 200, "GET %s: %d %r" % (path, st, j))
    return j


def rom_url(version, name):
    return "/v1/device/rom/?action=download_rom&version=%s&filename=%s" % (version, name)


class Fleet:
    """What the SQLite fotad is given; the listings every fotad after the move must show."""

    def __init__(self):
        self.images = {}        # (product id, version, file name) -> bytes
        self.devices = {}       # device id -> (device JSON, master key, owner key)
        self.products = []
        self.rotated = None     # (device id, old master, new master)
        self.deleted = None     # the deleted device's id
        self.arduino = None     # (product, product key, device id)
        self.served = {}        # what the SQLite fotad served: (route, ...) -> bytes

    def build(self, d):
        for pi, (name, versions) in enumerate((("plug", ["v1.0", "v1.1"]), ("lamp", ["v2.0"]))):
            p = d.create_product(name, serial="%08x" % (0x4d00 + pi))
            self.products.append(p)
            for vi, v in enumerate(versions):
                files = [("user1.bin", make_image(1, 2, v, size=30000 + 5000 * vi, seed=pi)),
                         ("user2.bin", make_image(2, 2, v, size=36000 + 3000 * vi, seed=pi)),
                         ("esp_init_data_default.bin", b"\x05" * 128)]   # one blob, 3 files
                d.upload_release(p["id"], v, files=files, changelog="line one\nline\ttwo \\ end")
                for fn, data in files:
                    self.images[(p["id"], v, fn)] = data
            d.set_current(p["id"], versions[-1])
            for k in range(4):
                j = d.create_device(p["id"], name="%s-%d 'q\"é" % (name, k),
                                    bssid="18:fe:34:00:%02x:%02x" % (pi, k))
                self.devices[j["device"]["id"]] = (j["device"], j["master_device_key"],
                                                   j["owner_key"])
        plug, lamp = self.products
        ids = sorted(self.devices)
        # tags
        for i in ids[:3]:
            st, _, j = d.api("PUT", "/v1/devices/%d/tags/" % i, {"tags": ["canary", "eu"]})
            check(st == 200, "tags: %d %r" % (st, j))
        # a device that connects and reports: messages, its version, a download record
        did = ids[0]
        dev, master, owner = self.devices[did]
        c = StockDevice(d.device_port, master)
        c.send(first_frame(4242, master))
        check(parse_nonce(c.recv_msg()) == 4242, "identify")
        c.send(upgrade_frame(master, "device_upgrade_success", "v0.9", "v1.0"))
        c.send(upgrade_frame(master, "device_upgrade_failed", "v1.0", "v1.1"))
        wait_for(lambda: len(get(d, "/v1/messages/?device_id=%d" % did)["messages"]) >= 2, 10,
                 "two device messages")
        st, _, body = d.request("GET", rom_url("v1.1", "user2.bin"), key=master)
        check(st == 200 and body == self.images[(plug["id"], "v1.1", "user2.bin")],
              "download before the move: %d" % st)
        self.served[("device", did, "v1.1", "user2.bin")] = body
        c.close()
        wait_for(lambda: d.device_view(did)["online"] is False, 10, "device offline")
        # commands: queued for offline devices, one cancelled
        for i in ids[1:3]:
            st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_reboot"
                             "&device_id=%d" % i)
            check(st == 202, "queued command: %d %r" % (st, j))
        cid = j["command"]["id"]
        st, _, j = d.api("DELETE", "/v1/devices/%d/commands/%d/" % (ids[2], cid))
        check(st == 200, "cancel command: %d %r" % (st, j))
        # a rollout of the lamp's fleet, cancelled (its members, commands and stages stay)
        st, _, j = d.api("POST", "/v1/rollouts/", {"product_id": plug["id"], "version": "v1.1",
                                                   "filter": {"tag": "canary"}, "window": 2})
        check(st == 202, "rollout: %d %r" % (st, j))
        rid = j["rollout"]["id"]
        wait_for(lambda: get(d, "/v1/rollouts/%d/" % rid)["rollout"]["total"] >= 2, 10,
                 "rollout members")
        st, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % rid)
        check(st == 200, "cancel rollout: %d %r" % (st, j))
        wait_for(lambda: get(d, "/v1/rollouts/%d/" % rid)["rollout"]["state"] == "cancelled",
                 10, "rollout cancelled")
        # rotated keys: the old master must stay refused after the move
        rot = ids[5]
        st, _, j = d.api("POST", "/v1/devices/%d/rotate_keys" % rot)
        check(st == 200, "rotate: %d %r" % (st, j))
        self.rotated = (rot, self.devices[rot][1], j["master_device_key"])
        self.devices[rot] = (self.devices[rot][0], j["master_device_key"], j["owner_key"])
        # a deleted device: its id is never handed out again
        self.deleted = ids[-1]
        st, _, j = d.api("DELETE", "/v1/devices/%d/" % self.deleted)
        check(st == 200, "delete device: %d %r" % (st, j))
        del self.devices[self.deleted]
        # legacy transfers
        for _ in range(2):
            socket.create_connection(("127.0.0.1", d.ports["legacy"]), timeout=5).close()
        wait_for(lambda: len(get(d, "/v1/legacy/transfers/")["transfers"]) >= 2, 10,
                 "legacy transfers")
        # an Arduino product, its release and a device that checked in
        ap, pkey = arduino_product(d, name="ard", checkin_interval=600)
        img = build_image(seed=7)
        release(d, ap["id"], "2.0.0", img)
        self.images[(ap["id"], "2.0.0", "firmware.bin")] = bytes(img)
        a = checkin(d, pkey, version="1.0.0", mac="DE:BA:7A:B1:E0:42")
        check(a.status == 200 and a.body == bytes(img), "arduino check-in: %s" % a.status_line)
        self.served[("arduino", pkey)] = a.body
        devs = get(d, "/v1/products/%d/devices/" % ap["id"])["devices"]
        check(len(devs) == 1, "one arduino device: %r" % devs)
        self.arduino = (ap, pkey, devs[0]["id"])
        self.products.append(ap)

    def listings(self, d):
        """Everything the API lists, as JSON text per path."""
        out = {}

        def put(path):
            j = get(d, path)
            out[path] = json.dumps(j, sort_keys=True)
            return j
        for p in put("/v1/products/")["products"]:
            put("/v1/products/%d/" % p["id"])
            put("/v1/products/%d/roms/" % p["id"])
            put("/v1/products/%d/tags/" % p["id"])
            for dv in put("/v1/products/%d/devices/?limit=100" % p["id"])["devices"]:
                put("/v1/devices/%d/" % dv["id"])
                put("/v1/devices/%d/tags/" % dv["id"])
                put("/v1/devices/%d/commands/" % dv["id"])
        put("/v1/devices/?limit=100&sort=name")
        put("/v1/messages/?limit=500")
        for r in put("/v1/rollouts/")["rollouts"]:
            put("/v1/rollouts/%d/" % r["id"])
            put("/v1/rollouts/%d/devices/" % r["id"])
        put("/v1/legacy/transfers/")
        return out


def check_same(before, after):
    check(sorted(before) == sorted(after), "listed paths differ: %r" %
          sorted(set(before) ^ set(after)))
    for path in sorted(before):
        check(before[path] == after[path], "GET %s differs after the move:\n  sqlite %s\n"
              "  postgresql %s" % (path, before[path][:1500], after[path][:1500]))


def check_served(d2, fleet):
    # every release file, byte for byte (admin route; a device's download)
    for (pid, v, fn), data in fleet.images.items():
        st, _, body = d2.request("GET", "/v1/products/%d/roms/%s/files/%s" % (pid, v, fn),
                                 key=d2.admin_key)
        check(st == 200 and body == data, "file %s of %s: %d, %d bytes (want %d)" %
              (fn, v, st, len(body), len(data)))
    did = min(fleet.devices)
    dev, master, owner = fleet.devices[did]
    pid = dev["product_id"]
    for v in ("v1.0", "v1.1"):
        st, _, body = d2.request("GET", rom_url(v, "user1.bin"), key=master)
        check(st == 200 and body == fleet.images[(pid, v, "user1.bin")],
              "device download of %s: %d" % (v, st))
    # keys: master keys on the device channel, owner keys on REST; rotated ones as rotated
    for i, (dv, master, owner) in sorted(fleet.devices.items()):
        if fleet.arduino and i == fleet.arduino[2]:
            continue
        check(identify(d2.device_port, master), "device %d's master key refused" % i)
        st, _, j = d2.api("GET", "/v1/device/", key=owner)
        check(st == 200 and j["device"]["id"] == i, "owner key of device %d: %d %r" % (i, st, j))
    rot, old, new = fleet.rotated
    check(not identify(d2.device_port, old), "the rotated device's old master key identifies")
    check(identify(d2.device_port, new), "the rotated device's new master key is refused")
    # the Arduino device is known: its check-in on the current version is a 304, no new device
    ap, pkey, adev = fleet.arduino
    a = checkin(d2, pkey, sketch_md5=md5(fleet.images[(ap["id"], "2.0.0", "firmware.bin")]),
                mac="DE:BA:7A:B1:E0:42")
    check(a.status == 304, "arduino check-in after the move: %s" % a.status_line)
    devs = get(d2, "/v1/products/%d/devices/" % ap["id"])["devices"]
    check([x["id"] for x in devs] == [adev], "arduino devices after the move: %r" % devs)


def admin_file(d, pid, v, fn):
    return d.request("GET", "/v1/products/%d/roms/%s/files/%s" % (pid, v, fn), key=d.admin_key)


def record_admin_files(d, fleet):
    """Every release file as d serves it on the admin route, into fleet.served."""
    for (pid, v, fn), data in fleet.images.items():
        st, _, body = admin_file(d, pid, v, fn)
        check(st == 200 and body == data, "file %s of %s on the SQLite fotad: %d" % (fn, v, st))
        fleet.served[("admin", pid, v, fn)] = body


def check_served_from_db(d3, fleet):
    """d3's data dir had no release file: what it serves came from PostgreSQL's blobs."""
    for key, want in sorted(fleet.served.items()):
        if key[0] == "admin":
            st, _, body = admin_file(d3, *key[1:])
        elif key[0] == "device":
            _, did, v, fn = key
            st, _, body = d3.request("GET", rom_url(v, fn), key=fleet.devices[did][1])
        else:
            a = checkin(d3, key[1], version="1.0.0", mac="DE:BA:7A:B1:E0:43")   # a new device
            st, body = a.status, a.body
        check(st == 200 and body == want, "%r from the empty data dir: %d, %d bytes (the SQLite "
              "fotad served %d)" % (key, st, len(body or b""), len(want)))


def check_new_ids(d2, fleet, max_ids):
    """New rows take ids above every id the SQLite fleet used (the deleted device's too)."""
    p = d2.create_product("after-move")
    check(p["id"] > max_ids["products"], "new product id %d" % p["id"])
    j = d2.create_device(p["id"], name="new")
    check(j["device"]["id"] > max(max_ids["devices"], fleet.deleted),
          "new device id %d (deleted one %d)" % (j["device"]["id"], fleet.deleted))
    st, _, c = d2.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_reboot"
                      "&device_id=%d" % j["device"]["id"])
    check(st == 202 and c["command"]["id"] > max_ids["commands"], "new command %r" % c)


def sqlite_max_ids(path):
    db = sqlite3.connect(path)
    try:
        out = {}
        for t in ("products", "devices", "commands", "messages", "roms"):
            out[t] = db.execute("SELECT COALESCE(MAX(id), 0) FROM %s" % t).fetchone()[0]
        return out
    finally:
        db.close()


def sqlite_counts(path, tables):
    db = sqlite3.connect(path)
    try:
        return {t: db.execute("SELECT count(*) FROM %s" % t).fetchone()[0] for t in tables}
    finally:
        db.close()


def pg_counts(pg, db, tables):
    return {t: int(pg.sql("SELECT count(*) FROM %s" % t, db)) for t in tables}


def sqlite_blobs(path):
    """{sha256: size} of every file the source's releases name."""
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT sha256, MAX(size) FROM rom_files GROUP BY sha256"))
    finally:
        db.close()


def check_pg_blobs(pg, db, blobs, out):
    """Every release file in PostgreSQL's blobs, whole; the summary counts them."""
    rows = pg.sql("SELECT b.sha256, b.size, COALESCE(SUM(length(c.data)), 0) FROM blobs b"
                  " LEFT JOIN blob_chunks c ON c.sha256 = b.sha256 GROUP BY b.sha256, b.size", db)
    got = {}
    for line in rows.split():
        h, size, stored = line.split("|")
        check(int(size) == int(stored), "blob %s: size %s, its pieces hold %s" % (h, size, stored))
        got[h] = int(size)
    check(got == blobs, "blobs in postgresql %r, the source's files %r" % (got, blobs))
    m = re.search(r"^release files into postgresql \(blobs\): (\d+) \(.*\) in ([0-9.]+) s, "
                  r"(\d+) put, (\d+) already there", out, re.M)
    check(m and int(m.group(1)) == len(blobs) and int(m.group(3)) == len(blobs),
          "summary of the blobs (%d of %d bytes):\n%s" % (len(blobs), sum(blobs.values()), out))


def test_migrate():
    pg = PgServer()
    d1 = Fotad(legacy=True, extra=["--legacy-empty-rate", "0"]).start()
    fleet = Fleet()
    fleet.build(d1)
    src = d1.data_dir
    target = os.path.join(tempdir(), "pgdata")
    dsn = pg.create_db("fleet")

    # no move while a fotad serves the source: what it wrote after the copy would be lost
    st, out, err = migrate(src, dsn, target)
    check(st == 1 and "is running on" in err and "stop it first" in err,
          "migrate of a running fotad's data dir: %d %r %r" % (st, out, err))
    check(not os.path.exists(target), "the refused migrate left %s" % target)

    admin = d1.admin_key
    d1.stop()
    # The listings to compare come from a fotad started again on the source: what the store
    # holds (presence written at the stop included), without per-instance memory (a download's
    # progress).
    d1 = Fotad(data_dir=src, legacy=True).start()
    record_admin_files(d1, fleet)
    before = fleet.listings(d1)
    d1.stop()
    db_path = os.path.join(src, "fota.db")
    max_ids = sqlite_max_ids(db_path)
    tables = ["products", "roms", "rom_files", "devices", "api_keys", "commands", "messages",
              "downloads", "transfers", "id_floor", "arduino_products", "arduino_blobs",
              "arduino_devices", "rollouts", "rollout_members", "rollout_stages",
              "rollout_samples", "device_tags", "product_minutes"]
    counts = sqlite_counts(db_path, tables)
    blobs = sqlite_blobs(db_path)
    check(len(blobs) == len({hashlib.sha256(b).hexdigest() for b in fleet.images.values()}),
          "the source names %d files, the fleet uploaded others" % len(blobs))
    for t in ("products", "roms", "rom_files", "devices", "api_keys", "commands", "messages",
              "downloads", "transfers", "id_floor", "arduino_products", "arduino_blobs",
              "arduino_devices", "rollouts", "rollout_members", "rollout_stages",
              "device_tags"):
        check(counts[t] > 0, "the fleet has no %s rows: the test would not test them" % t)

    # a target data dir with another secret.key is refused
    other = os.path.join(tempdir(), "other")
    os.mkdir(other, 0o700)
    with open(os.path.join(other, "secret.key"), "wb") as f:
        f.write(os.urandom(32))
    st, out, err = migrate(src, dsn, other)
    check(st == 1 and "secret.key differs" in err, "other secret.key: %d %r" % (st, err))

    # the move
    st, out, err = migrate(src, dsn, target)
    check(st == 0, "migrate: exit %d\n%s%s" % (st, out, err))
    print(out)
    for t in tables:
        check(("  %s " % t) in out, "summary names no table %s:\n%s" % (t, out))
    check("secret.key: copied" in out and "owner.key: copied" in out, "summary:\n%s" % out)
    check(pg_counts(pg, "fleet", tables) == counts, "row counts: %r against %r" %
          (pg_counts(pg, "fleet", tables), counts))
    check_pg_blobs(pg, "fleet", blobs, out)
    for name in ("secret.key", "owner.key"):
        with open(os.path.join(src, name), "rb") as a, open(os.path.join(target, name), "rb") as b:
            check(a.read() == b.read(), "%s differs" % name)
        mode = os.stat(os.path.join(target, name)).st_mode & 0o777
        check(mode == 0o600, "%s mode %o" % (name, mode))
    for (_, _, _), data in fleet.images.items():
        h = hashlib.sha256(data).hexdigest()
        check(os.path.exists(os.path.join(target, "blobs", "sha256", h[:2], h)),
              "release file %s not in the target" % h)

    # fotad on PostgreSQL with the target data dir: the same fleet
    d2 = Fotad(data_dir=target, legacy=True, extra=["--store", "postgresql:" + dsn])
    # the loop guard's line while callers still run store ops on loops (P10-P13)
    d2.expect_error(r"store op called on an event loop")
    d2.start()
    check(d2.admin_key == admin, "admin key changed")
    after = fleet.listings(d2)
    check_same(before, after)
    check_served(d2, fleet)
    check_new_ids(d2, fleet, max_ids)
    d2.stop()

    # a second instance on the database with an empty data dir but for secret.key (owner and
    # master keys derive from it) and owner.key (the admin key the database holds; the
    # harness uses it): its start-up fetch brings every release file from the database,
    # checked against its name
    empty = os.path.join(tempdir(), "empty")
    os.mkdir(empty, 0o700)
    for name in ("secret.key", "owner.key"):
        shutil.copy2(os.path.join(target, name), os.path.join(empty, name))
    d3 = Fotad(data_dir=empty, legacy=True, extra=["--store", "postgresql:" + dsn])
    d3.expect_error(r"store op called on an event loop")
    d3.start()
    m = d3.wait_log(r"shared blobs prefetched .*$", timeout=30)
    check(m.group(0).endswith("copied=%d failed=0 referenced=%d" % (len(blobs), len(blobs))),
          "start-up fetch of %d blobs: %s" % (len(blobs), m.group(0)))
    for h in blobs:
        check(os.path.exists(os.path.join(empty, "blobs", "sha256", h[:2], h)),
              "blob %s not fetched into the empty data dir" % h)
    check_served_from_db(d3, fleet)
    d3.stop()

    # a second move into the now non-empty database: refused, nothing changed
    n_before = pg.sql("SELECT count(*) FROM devices", "fleet")
    st, out, err = migrate(src, dsn, target)
    st, out, err = migrate(src, dsn, target)
    check(st == 1 and "is not empty" in err and "devices" in err,
          "second migrate: %d %r %r" % (st, out, err))
    check(pg.sql("SELECT count(*) FROM devices", "fleet") == n_before, "target changed")

    # a source whose schema version is not this fotad's
    dsn2 = pg.create_db("fleet2")
    target2 = os.path.join(tempdir(), "pgdata2")
    db = sqlite3.connect(db_path)
    newest = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
    db.execute("INSERT INTO schema_migrations (version, applied) VALUES (?, 0)", (newest + 1,))
    db.commit()
    st, out, err = migrate(src, dsn2, target2)
    check(st == 1 and ("schema version %d" % (newest + 1)) in err,
          "newer source: %d %r" % (st, err))
    check(not os.path.exists(target2), "a refused source made the target data dir")
    db.execute("DELETE FROM schema_migrations WHERE version >= ?", (newest,))
    db.commit()
    db.close()
    st, out, err = migrate(src, dsn2, target2)
    check(st == 1 and ("schema version %d" % (newest - 1)) in err and "start this fotad" in err,
          "older source: %d %r" % (st, err))
    check(pg.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", "fleet2").strip()
          == "0", "a refused source touched the target database")

    # the source's own data dir as the target's: its files are in place
    db = sqlite3.connect(db_path)
    db.execute("INSERT INTO schema_migrations (version, applied) VALUES (?, 0)", (newest,))
    db.commit()
    db.close()
    st, out, err = migrate(src, dsn2, src)
    check(st == 0 and "in place" in out, "migrate in place: %d\n%s%s" % (st, out, err))
    check(pg_counts(pg, "fleet2", tables) == counts, "row counts in place")
    check_pg_blobs(pg, "fleet2", blobs, out)
    pg.stop()


if __name__ == "__main__":
    run_tests([test_migrate])
