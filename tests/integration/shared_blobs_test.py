"""shared_blobs_test.py - release files kept in PostgreSQL for every instance.

Two fotad on one PostgreSQL (B with A's secret.key and admin key). A release uploaded on A:
- B serves it byte for byte (the Espressif download with a device's key, and the admin's file
  download), from a copy in its own DATA/blobs named by the file's SHA-256;
- an instance started after the release copies it at start (its prefetch round), and one
  running when the release is made copies it after the catalog change reaches it.
A release whose stored piece is damaged in the database: an instance without a copy logs the
corrupt blob, keeps no file of it, answers its downloads 503 with Retry-After, and goes on
serving the releases it has.
"""
import hashlib
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, finish, make_image, run_tests, wait_for  # noqa: E402
from devchan_util import check_rom_header, http_exchange, nonos_url  # noqa: E402
from pg_util import PgServer  # noqa: E402


def instance(tmp, name, dsn, like=None):
    d = os.path.join(tmp, name)
    if like:
        os.makedirs(d, mode=0o700)
        for key in ("secret.key", "owner.key"):
            shutil.copy2(os.path.join(like.data_dir, key), os.path.join(d, key))
    f = Fotad(data_dir=d, extra=["--store", dsn])
    # Callers not yet moved off the loops trip the loop guard; this test is about the files.
    f.expect_error(r"store op called on an event loop")
    f.start()
    return f


def blob_path(d, data):
    """The file named by data's SHA-256 under d's DATA/blobs, or None."""
    sha = hashlib.sha256(data).hexdigest()
    for root, _, names in os.walk(os.path.join(d.data_dir, "blobs")):
        if sha in names:
            return os.path.join(root, sha)
    return None


def download(d, master, version, name, image):
    url = nonos_url(version, name, d.http_port, master)
    first, header, body, closed = http_exchange(d.http_port, url.encode())
    check_rom_header(first, header, len(image), name)
    check(body == image and closed,
          "%s %s from %s: %d bytes of %d" % (version, name, d.label, len(body), len(image)))


def admin_file(d, pid, version, name):
    st, _, body = d.request("GET", "/v1/products/%d/roms/%s/files/%s" % (pid, version, name),
                            key=d.admin_key)
    return st, body


def test_release_files_shared():
    pg = PgServer()
    tmp = tempfile.mkdtemp(prefix="shared-blobs-", dir=os.environ.get("FOTA_TEST_TMP"))
    a = b = c = None
    try:
        pg.sql("CREATE DATABASE fota")
        dsn = "postgresql:" + pg.dsn("fota")
        a = instance(tmp, "a", dsn)
        b = instance(tmp, "b", dsn, like=a)
        pid = a.create_product(name="plug", serial="45772", flash_map=2)["id"]
        user1, user2 = make_image(1, 2, "v1.1"), make_image(2, 2, "v1.1")
        a.upload_release(pid, "v1.1", files=[("user1.bin", user1), ("user2.bin", user2)])
        t0 = time.monotonic()

        # B, running, copies the release once the catalog change reaches it.
        wait_for(lambda: blob_path(b, user1) and blob_path(b, user2), 15,
                 "B's copies of v1.1", interval=0.02)
        print("B holds v1.1's files %.0f ms after A's upload answered" %
              ((time.monotonic() - t0) * 1000))
        master = a.create_device(pid, name="plug-1")["master_device_key"]
        for image in (user1, user2):
            with open(blob_path(b, image), "rb") as f:
                check(f.read() == image, "B's copy differs from the upload")
        download(b, master, "v1.1", "user2.bin", user2)
        download(b, master, "v1.1", "user1.bin", user1)
        st, body = admin_file(b, pid, "v1.1", "user1.bin")
        check(st == 200 and body == user1, "admin download on B: %d, %d bytes" % (st, len(body)))

        # A release whose first piece of user2.bin is damaged in the database.
        bad1, bad2 = make_image(1, 2, "v1.2"), make_image(2, 2, "v1.2")
        b.stop()
        b = None
        a.upload_release(pid, "v1.2", files=[("user1.bin", bad1), ("user2.bin", bad2)])
        sha = hashlib.sha256(bad2).hexdigest()
        pg.sql("UPDATE blob_chunks SET data = overlay(data placing '\\xff'::bytea from 100 for 1)"
               " WHERE sha256 = '%s' AND idx = 0" % sha, "fota")

        # C starts after both releases: its prefetch copies v1.1 and v1.2's user1.bin, and
        # refuses the damaged file.
        c = Fotad(data_dir=os.path.join(tmp, "c"), extra=["--store", dsn])
        os.makedirs(c.data_dir, mode=0o700, exist_ok=True)
        for key in ("secret.key", "owner.key"):
            shutil.copy2(os.path.join(a.data_dir, key), os.path.join(c.data_dir, key))
        c.expect_error(r"store op called on an event loop")
        c.expect_error(r"blob corrupt in the shared store")
        c.expect_error(r"status=503")
        c.start()
        c.wait_log(r"shared blobs prefetched copied=3 failed=1 referenced=4", 15)
        check(c.count_log(r"ERROR .*blob corrupt in the shared store.*" + sha) >= 1,
              "the damaged blob is logged by its hash")
        check(blob_path(c, bad2) is None, "no file of the damaged blob on C")
        check(blob_path(c, bad1) is not None, "v1.2's sound file copied on C")
        url = nonos_url("v1.2", "user2.bin", c.http_port, master)
        first, header, body, closed = http_exchange(c.http_port, url.encode())
        check(b" 503 " in first, "the damaged file's download on C: %r" % first)
        check(b"retry-after: 10" in header.lower(), "Retry-After on the 503: %r" % header)
        st, _ = admin_file(c, pid, "v1.2", "user2.bin")
        check(st == 503, "the damaged file's admin download on C: %d" % st)
        check(blob_path(c, bad2) is None, "still no file of the damaged blob on C")
        download(c, master, "v1.1", "user2.bin", user2)   # the others are served
        download(c, master, "v1.2", "user1.bin", bad1)
        c.stop()
        c = None
        a.stop()
        a = None
    finally:
        for d in (a, b, c):
            if d:
                finish(d)
        pg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run_tests([test_release_files_shared])
