"""disk_full_test.py - fotad on a full disk, on a small tmpfs of its own.

The test re-runs itself in a private mount namespace (`unshare -m` as root, `unshare -rm`
otherwise; in a chroot whose root is no mount point, a namespace left shared) and mounts a 32 MiB tmpfs there for fotad's data dir, with disk_reserve = 1 MiB.
It fills the file system to its last byte with a file of its own (as anything else on the
host might), after truncating fotad's WAL so that any write of the database needs new room.
Then: uploads are refused with 507 "no space left on device" before anything is written (a
large one on its head, before its body is read),
creating a product fails with 507 (the store's SQLITE_FULL, not a 500 "input/output error"),
a device's ROM download is still served, DELETE of a release answers 200 (the delete gives
the reserve's room back and retries), which frees its files; the reserve comes back once the
disk has twice its size free, and writes work again; full once more, a device is deleted the
same way. A missing `unshare` or a namespace the kernel refuses fails the test."""
import os
import sys

if os.environ.get("FOTA_DISK_NS") != "1":
    # Before the harness makes its work dir: everything happens inside the namespace, whose
    # mounts vanish with its last process.
    ns = ["unshare", "-m", "--propagation", "private"]
    if os.geteuid() != 0:
        ns.insert(1, "-r")
    elif os.system("unshare -m --propagation private true 2>/dev/null") != 0:
        # A chroot whose root is no mount point cannot make its namespace private; the
        # tmpfs may then show outside too, and its lazy unmount at exit takes it away.
        ns[3] = "unchanged"
    os.environ["FOTA_DISK_NS"] = "1"
    try:
        os.execvp(ns[0], ns + [sys.executable] + sys.argv)
    except OSError as e:
        sys.exit("FAIL: cannot run %s: %s" % (ns[0], e))

import atexit
import errno
import sqlite3
import subprocess
import time

import fotatest
from fotatest import Fotad, check, make_image, run, run_tests, tempdir, wait_for

# The full disk is the one under the data dir, which holds a SQLite store's fota.db.
fotatest.DEFAULT_STORE = "sqlite"

MiB = 1024 * 1024
RESERVE = 1 * MiB
FLASH_MAP = 6                     # 4 MiB flash: 1 MiB slots
mnt = None


def mount_tmpfs():
    global mnt
    mnt = tempdir("tmpfs-")
    p = run(["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "fota-disk-test", mnt])
    check(p.returncode == 0, "mount tmpfs: %s" % p.stderr.decode(errors="replace"))
    # Lazily, before the harness removes its work dir (atexit runs this first): fotad may
    # still hold files in it.
    atexit.register(lambda: subprocess.run(["umount", "-l", mnt]))


def free_bytes():
    st = os.statvfs(mnt)
    return st.f_bavail * st.f_frsize


def held(path):
    """Bytes a file really holds (allocated blocks), 0 when absent."""
    try:
        return os.stat(path).st_blocks * 512
    except FileNotFoundError:
        return 0


def fill(path):
    """Writes path until the file system refuses; returns the bytes written."""
    n = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (MiB, 4096, 512):
            buf = b"\xa5" * chunk
            while True:
                try:
                    f.write(buf)
                except OSError as e:
                    check(e.errno == errno.ENOSPC, "filling the disk: %s" % e)
                    break
                n += chunk
    return n


def truncate_wal(data):
    """Empties fotad's WAL (another connection may checkpoint it): from then on any database
    write needs new room on the disk."""
    db = sqlite3.connect(os.path.join(data, "fota.db"), timeout=10)
    busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    db.close()
    check(busy == 0, "WAL checkpoint blocked")


def test_disk_full():
    mount_tmpfs()
    data = os.path.join(mnt, "data")
    reserve = os.path.join(data, "reserve")
    d = Fotad(data_dir=data, extra=["--disk-reserve", "1M"]).start()
    check(held(reserve) >= RESERVE and os.path.getsize(reserve) == RESERVE,
          "DATA/reserve holds %d bytes, size %d" % (held(reserve), os.path.getsize(reserve)))

    pid = d.create_product(name="full", flash_map=FLASH_MAP)["id"]
    d.upload_release(pid, "v1", flash_map=FLASH_MAP)
    d.set_current(pid, "v1")
    master = d.create_device(pid, name="plug")["master_device_key"]
    big = [("user1.bin", make_image(1, FLASH_MAP, "v2", size=900 * 1024)),
           ("user2.bin", make_image(2, FLASH_MAP, "v2", size=900 * 1024))]
    d.upload_release(pid, "v2", files=big, flash_map=FLASH_MAP)

    truncate_wal(data)
    before = free_bytes()
    filled = fill(os.path.join(mnt, "filler"))
    check(free_bytes() == 0, "free after filling: %d" % free_bytes())

    d.expect_error(r"no space left on device")   # the store's line and the 507 replies
    d.expect_error(r"status=507")                  # their access-log lines
    # refused on its head (an upload body) and, when small, before its files are written
    files = [("user1.bin", make_image(1, FLASH_MAP, "v3", size=300 * 1024)),
             ("user2.bin", make_image(2, FLASH_MAP, "v3", size=300 * 1024))]
    j = d.upload_release(pid, "v3", files=files, flash_map=FLASH_MAP, expect=507)
    check("no space left on device for an upload" in j["message"], "upload refusal: %r" % j)
    files = [("user1.bin", make_image(1, FLASH_MAP, "v3")),
             ("user2.bin", make_image(2, FLASH_MAP, "v3"))]
    j = d.upload_release(pid, "v3", files=files, flash_map=FLASH_MAP, expect=507)
    check("no space left on device for an upload" in j["message"], "upload refusal: %r" % j)
    check(not os.listdir(os.path.join(data, "blobs", "tmp")), "an upload left a temp file")
    st, _, j = d.api("POST", "/v1/products/", {"name": "another", "flash_map": 2})
    check(st == 507 and "no space left on device" in j["message"],
          "product create on a full disk: %d %r" % (st, j))
    check("input/output error" not in d.log_text(), "EIO in the log")
    # the log says it too, in the store's line (once a second at most) and the access lines
    d.wait_log(r"ERROR no space left on device op=\w+ error=\"database or disk is full\"")
    d.wait_log(r"method=POST path=/v1/products/ status=507 ")

    # downloads go on (their ledger is best-effort)
    st, _, body = d.request("GET", "/v1/device/rom/?action=download_rom&version=v1&filename="
                            "user1.bin", key=master)
    check(st == 200 and body == make_image(1, FLASH_MAP, "v1"),
          "download at 0 bytes free: %d, %d bytes" % (st, len(body)))

    # an admin can free space: the delete uses the reserve
    t0 = time.monotonic()
    st, _, j = d.api("DELETE", "/v1/products/%d/roms/v2/" % pid)
    check(st == 200 and len(j["blobs_removed"]) == 2, "delete at 0 bytes free: %d %r" % (st, j))
    d.wait_log(r"disk reserve given back for op=rom_delete bytes=%d" % RESERVE)
    after = free_bytes()
    check(after >= 2 * 900 * 1024, "free after the delete: %d" % after)
    # twice the reserve is free again: it comes back
    wait_for(lambda: held(reserve) >= RESERVE, 10, "the disk reserve back")
    refill_s = time.monotonic() - t0
    d.wait_log(r"disk reserve restored path=\S+ bytes=%d" % RESERVE)
    pid2 = d.create_product(name="another", flash_map=2)["id"]
    check(pid2 > pid, "product ids")
    check(d.count_log(r"download not counted") == 0, "the ledger logged each failure")
    print("figures: tmpfs=32MiB reserve=%d free_before_fill=%d filled=%d free_after_delete=%d "
          "free_now=%d reserve_back_after_s=%.2f" % (RESERVE, before, filled, after,
                                                     free_bytes(), refill_s))

    # full again: a device (its keys, commands, ledger rows) can be deleted the same way
    dev = d.create_device(pid2, name="gone")["device"]["id"]
    truncate_wal(data)
    fill(os.path.join(mnt, "filler2"))
    check(free_bytes() == 0, "free after filling again: %d" % free_bytes())
    st, _, j = d.api("DELETE", "/v1/devices/%d/" % dev)
    check(st == 200, "device delete at 0 bytes free: %d %r" % (st, j))
    d.wait_log(r"disk reserve given back for op=device_delete")
    st, _, j = d.api("GET", "/v1/devices/%d/" % dev)
    check(st == 404, "the deleted device: %d %r" % (st, j))
    d.stop()


run_tests([test_disk_full])
