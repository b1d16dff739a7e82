#!/usr/bin/env python3
"""cli_delete_test.py - `fotactl release delete`, `device delete` and `product delete`
against a real fotad: what they print (and --json), exit 1 with the server's reason when the
thing is still in use, exit 4 for unknown names, and that what they delete is gone from the
listings. Python 3 stdlib only."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, make_image, run_tests, write_file  # noqa: E402
from cli_workflow_test import Ctl  # noqa: E402


def test_cli_delete():
    home = tempfile.mkdtemp(prefix="fotactl-del-")
    try:
        with Fotad() as d:
            ctl = Ctl(home)
            ctl.run("login", "--server", "http://127.0.0.1:%d" % d.http_port, "--key", d.admin_key)
            ctl.run("product", "create", "lamp", "--flash-map", "2")
            for v in ("v1.0", "v1.1"):
                u1 = write_file(home, "user1.bin", make_image(1, 2, v))
                u2 = write_file(home, "user2.bin", make_image(2, 2, v))
                ctl.run("release", "publish", "-p", "lamp", "-v", v, u1, u2, "--no-progress")
            ctl.run("release", "current", "-p", "lamp", "v1.1")
            ctl.run("device", "add", "-p", "lamp", "desk")

            # in use: exit 1 with the server's reason on one line
            p = ctl.run("release", "delete", "-p", "lamp", "v1.1", ok=False)
            check(p.returncode == 1 and "current" in p.stderr and
                  len(p.stderr.strip().splitlines()) == 1, "current: %d %r" % (p.returncode,
                                                                             p.stderr))
            p = ctl.run("product", "delete", "lamp", ok=False)
            check(p.returncode == 1 and "1 device(s) and 2 release(s)" in p.stderr,
                  "product in use: %d %r" % (p.returncode, p.stderr))
            # unknown: exit 4
            p = ctl.run("release", "delete", "-p", "lamp", "v9.9", ok=False)
            check(p.returncode == 4, "unknown version: %d %r" % (p.returncode, p.stderr))
            p = ctl.run("device", "delete", "nosuch", ok=False)
            check(p.returncode == 4, "unknown device: %d %r" % (p.returncode, p.stderr))
            p = ctl.run("product", "delete", "nosuch", ok=False)
            check(p.returncode == 4, "unknown product: %d %r" % (p.returncode, p.stderr))
            # both spellings of the product; usage error for both at once
            p = ctl.run("release", "delete", "-p", "lamp", "lamp", "v1.0", ok=False)
            check(p.returncode == 2, "product twice: %d %r" % (p.returncode, p.stderr))

            p = ctl.run("release", "delete", "lamp", "v1.0")
            check(p.stdout.startswith("deleted release v1.0 of lamp (2 stored files removed"),
                  "release delete printed %r" % p.stdout)
            vs = [r["version"] for r in ctl.json("release", "list", "-p", "lamp")["roms"]]
            check(vs == ["v1.1"], "releases after delete %r" % vs)

            j = ctl.json("device", "delete", "desk")
            check(j["device"]["name"] == "desk" and j["connections_closed"] == 0, "json %r" % j)
            check(ctl.json("device", "list")["devices"] == [], "devices left")
            p = ctl.run("release", "delete", "--product", "lamp", "v1.1")   # no device left
            check("deleted release v1.1" in p.stdout, "current release delete %r" % p.stdout)
            p = ctl.run("product", "delete", "lamp")
            check(p.stdout.strip().startswith("deleted product lamp (id "), "printed %r" % p.stdout)
            check(ctl.json("product", "list")["products"] == [], "products left")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    run_tests([test_cli_delete])
