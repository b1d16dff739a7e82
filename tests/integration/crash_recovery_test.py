#!/usr/bin/env python3
"""A crash between the durable blob writes of a release upload and its
release transaction (FOTA_TEST_CRASH_AT=after_blobs) leaves no release rows;
the next start deletes the orphan blobs (and only those), and the same
upload then succeeds."""
import hashlib
import re
import http.client
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, make_image, run_tests, wait_for  # noqa: E402


def blob_path(data_dir, h):
    return os.path.join(data_dir, "blobs", "sha256", h[:2], h)


def test_crash_after_blobs():
    data = tempfile.mkdtemp(prefix="fotatest-crash-")
    try:
        # Run 1: a release that commits (its blobs must survive the sweep).
        with Fotad(data_dir=data) as d:
            p = d.create_product()
            j = d.upload_release(p["id"], "v1.0")
            kept = [f["sha256"] for f in j["rom"]["files"]]
        # Run 2: dies after the blobs of v2.0 are durable, before the rows.
        files = [("user1.bin", make_image(1, 2, "v2.0")), ("user2.bin", make_image(2, 2, "v2.0"))]
        orphans = [hashlib.sha256(b).hexdigest() for _, b in files]
        check(not set(orphans) & set(kept), "v2.0 files differ from v1.0")
        d = Fotad(data_dir=data)
        os.environ["FOTA_TEST_CRASH_AT"] = "after_blobs"
        try:
            d.start()
        finally:
            del os.environ["FOTA_TEST_CRASH_AT"]
        try:
            try:
                d.upload_release(p["id"], "v2.0", files=files)
                check(False, "upload answered although fotad should have died")
            except (http.client.HTTPException, ConnectionError, OSError):
                pass
            wait_for(lambda: d.proc.poll() is not None, 10, "fotad to die at the crash point")
            check(d.proc.returncode == -9, "killed by SIGKILL, got %r" % d.proc.returncode)
            check("test crash point=after_blobs" in d.log_text(), "crash point logged")
            for h in orphans:
                check(os.path.exists(blob_path(data, h)), "blob %s durable before the crash" % h)
            d.kill()
        finally:
            d.cleanup()
        # Run 3: no v2.0 rows, orphans swept (logged), v1.0 intact, re-upload works.
        with Fotad(data_dir=data) as d:
            d.wait_log(r"orphan blobs swept removed=2 kept_young=0 referenced=2")
            for h in orphans:
                check(re.search(r"orphan blob deleted sha256=%s " % h, d.log_text()),
                      "deletion of %s logged" % h)
                check(not os.path.exists(blob_path(data, h)), "orphan %s gone" % h)
            for h in kept:
                check(os.path.exists(blob_path(data, h)), "referenced blob %s kept" % h)
            st, _, j = d.api("GET", "/v1/products/%d/roms/" % p["id"])
            check(st == 200 and [r["version"] for r in j["roms"]] == ["v1.0"], "roms %r" % j)
            j = d.upload_release(p["id"], "v2.0", files=files)
            check(sorted(f["sha256"] for f in j["rom"]["files"]) == sorted(orphans), "re-upload")
            for h in orphans:
                check(os.path.exists(blob_path(data, h)), "blob %s written again" % h)
        # Run 4: nothing to sweep, so no sweep line.
        with Fotad(data_dir=data) as d:
            check("orphan blob" not in d.log_text(), "clean start sweeps nothing")
            st, _, j = d.api("GET", "/v1/products/%d/roms/" % p["id"])
            check(sorted(r["version"] for r in j["roms"]) == ["v1.0", "v2.0"], "roms %r" % j)
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    run_tests([test_crash_after_blobs])
