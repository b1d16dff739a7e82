"""cluster_test.py - two fotad on one PostgreSQL (docs/scale-out.md): each registers its row;
a release made on A is listed on B and downloadable there; one deleted on A is refused on B,
whose release cache held it until its listener heard of the change (fota_gen; the figures
are printed, never asserted); a device's keys
rotated on A are refused on B and the new ones taken; a fotad whose secret.key differs
refuses to start; a listener whose connection is cut reconnects and B's caches still follow
A's writes; a clean stop marks the instance dead at once. An instance copies the release
files PostgreSQL holds into its DATA/blobs at start only, so the test copies each new one from
A's data dir to B's."""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import instances, poll_until, start_instance  # noqa: E402
from fotatest import check, make_image, run_tests, wait_for  # noqa: E402
from pg_util import PgServer  # noqa: E402

PG = None


def download(d, key, version, name="user1.bin"):
    st, _, body = d.request("GET", "/v1/device/rom/?action=download_rom&version=%s&filename=%s"
                            % (version, name), key=key)
    return st, body


def share_blobs(a, b):
    """The release files A holds, copied into B's blob store (B fetches the files PostgreSQL
    holds at its start only; docs/scale-out.md)."""
    src = os.path.join(a.data_dir, "blobs", "sha256")
    shutil.copytree(src, os.path.join(b.data_dir, "blobs", "sha256"), dirs_exist_ok=True)


def roms(d, pid):
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % pid)
    check(st == 200, "roms of %d: %d %r" % (pid, st, j))
    return [r["version"] for r in j.get("roms", [])]


def test_two_instances():
    DB = "two"
    PG.create_db(DB)
    a = start_instance(PG, DB, "a")
    b = start_instance(PG, DB, "b", like=a)
    live = instances(PG, DB)
    check(live == {"a": 1, "b": 1}, "instances: %r" % live)
    check(PG.sql("SELECT count(*) FROM cluster WHERE k = 'secret_fp'", DB).strip() == "1",
          "one secret fingerprint")

    # A release made on A: B's download of it was refused before (its release cache may hold
    # "no such release"); it is served once B's listener has heard of the catalog change.
    pid = a.create_product(name="plug", flash_map=2)["id"]
    dev = a.create_device(pid, name="d1")
    mk = dev["master_device_key"]
    a.upload_release(pid, "v1")
    a.set_current(pid, "v1")
    share_blobs(a, b)
    wait_for(lambda: download(b, mk, "v1")[0] == 200, 10, "v1 served on B")
    st, _ = download(b, mk, "v2")
    check(st == 404, "v2 before it exists on B: %d" % st)
    img = make_image(1, 2, "v2")
    a.upload_release(pid, "v2", files=[("user1.bin", img), ("user2.bin", make_image(2, 2, "v2"))])
    share_blobs(a, b)
    t0 = time.monotonic()
    listed = poll_until(lambda: "v2" in roms(b, pid), 10, "v2 listed on B")
    wait_for(lambda: download(b, mk, "v2")[0] == 200, 10, "v2 served on B", interval=0.002)
    served = time.monotonic() - t0
    check(download(b, mk, "v2")[1] == img, "B serves A's bytes of v2")
    print("release made on A: listed on B after %.1f ms, downloadable after %.1f ms"
          % (listed * 1000, served * 1000))

    # A release deleted on A: B's release cache held it (B served it just now), and drops it.
    st, _, j = a.api("DELETE", "/v1/products/%d/roms/v2/" % pid)
    check(st == 200, "delete v2 on A: %d %r" % (st, j))
    gone = poll_until(lambda: download(b, mk, "v2")[0] == 404, 10, "v2 refused on B")
    print("release deleted on A: refused on B after %.1f ms" % (gone * 1000))

    # Keys rotated on A: B refuses the old master key (its key cache held it) and takes the
    # new one.
    st, _, j = b.api("GET", "/v1/device/", key=mk)
    check(st == 200, "old key on B before the rotation: %d %r" % (st, j))
    st, _, j = a.api("POST", "/v1/devices/%d/rotate_keys" % dev["device"]["id"])
    check(st == 200, "rotate on A: %d %r" % (st, j))
    mk2 = j["master_device_key"]
    refused = poll_until(lambda: b.api("GET", "/v1/device/", key=mk)[0] == 401, 10,
                         "the old key refused on B")
    st, _, j = b.api("GET", "/v1/device/", key=mk2)
    check(st == 200, "new key on B: %d %r" % (st, j))
    print("key rotated on A: refused on B after %.1f ms" % (refused * 1000))

    # B's listener loses its connection: it reconnects, moves every generation, and follows
    # A's writes again.
    PG.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
           " WHERE application_name = 'fotad cluster' AND datname = '%s'" % DB)
    a.wait_log(r"cluster listener reconnected")
    b.wait_log(r"cluster listener reconnected")
    a.upload_release(pid, "v3")
    share_blobs(a, b)
    wait_for(lambda: download(b, mk2, "v3")[0] == 200, 10, "v3 served on B after reconnect")

    # A clean stop: the row says dead at once, the other instance stays.
    b.stop()
    check(instances(PG, DB) == {"a": 1}, "after B stopped: %r" % instances(PG, DB))
    check("cluster instance left" in b.log_text(), "B logged its leave")
    a.stop()


def test_wrong_secret():
    """A fotad whose secret.key is not the cluster's derives other device keys: it refuses to
    start, says why, and leaves no instance row."""
    DB = "intruder"
    PG.create_db(DB)
    a = start_instance(PG, DB, "a")
    b = start_instance(PG, DB, "intruder", secret=os.urandom(32), start=False)
    b.expect_error(r"secret\.key differs from the cluster's \(copy DATA/secret\.key from the "
                   r"first instance\)")
    b.expect_error(r"module failed to start|cannot start|fotad stopped")
    b._launch()
    rc = b.proc.wait(30)
    check(rc != 0, "fotad with another secret exited %d" % rc)
    b.stop(status=rc, term=False)
    check("secret.key differs from the cluster's" in b.log_text(), b.log_text()[-2000:])
    check(instances(PG, DB) == {"a": 1}, "no row for the intruder: %r" % instances(PG, DB))
    check(PG.sql("SELECT count(*) FROM api_keys WHERE kind = 1", DB).strip() == "1",
          "the intruder wrote no admin key")
    a.stop()


def test_restart_same_name():
    """An instance started again with its name takes its earlier row's place: one live row."""
    DB = "restart"
    PG.create_db(DB)
    a = start_instance(PG, DB, "a2")
    a.kill()
    a2 = start_instance(PG, DB, "a2", like=a)
    check(instances(PG, DB).get("a2") == 1, "a2 live once: %r" % instances(PG, DB))
    n = PG.sql("SELECT count(*) FROM instances WHERE name = 'a2' AND state = 1", DB).strip()
    check(n == "1", "one live row named a2, got %s" % n)
    a2.stop()


if __name__ == "__main__":
    PG = PgServer()
    run_tests([test_two_instances, test_wrong_secret, test_restart_same_name])
