"""legacy_seed_fleet_test.py - a seed-era fleet published through fotad end to end: its images
come from ESP8266_RTOS_SDK 1.x gen_appbin (byte 3 = size map and frequency, no slot number).
A default product (slot_check "byte3") refuses them with the precise reason; a product
created with slot_check "name" (API and `fotactl product create --slot-check name`) accepts
them, `fotactl release publish` checks them locally the same way, and fotad's legacy listener
serves them byte for byte to a seed-like client. Bad slot_check values are refused."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, bin_path, fail, multipart, run, run_tests, tempdir  # noqa: E402
from legacy_util import py_image, stock_client  # noqa: E402


def post(d, path, body, ctype="application/json"):
    """(status, parsed body), whatever the status."""
    if isinstance(body, bytes):
        st, _, j = d.api("POST", path, body, headers={"Content-Type": ctype})
    else:
        st, _, j = d.api("POST", path, body)
    return st, j


def fotactl(d, *args, ok=True):
    env = dict(os.environ, FOTA_SERVER="http://127.0.0.1:%d" % d.http_port,
               FOTA_KEY=d.admin_key, NO_COLOR="1", HOME=d.home)
    p = run([bin_path("fotactl")] + list(args), text=True, env=env)
    if ok and p.returncode != 0:
        fail("fotactl %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def files_of(files):
    """multipart() file parts from {filename: bytes}."""
    return [("file", name, data) for name, data in files.items()]


def test_seed_fleet():
    with Fotad(http=True, device=False, legacy=True, log_level="debug",
               extra=["--legacy-product", "seedfleet", "--legacy-interval-ms", "2"]) as d:
        seed_fleet(d)


def seed_fleet(d):
    tmp = tempdir("seed-")
    # what the seed's users build: user1.1024.new.2.bin / user2.1024.new.2.bin (RTOS 1.x)
    r1 = py_image(1, 40 * 1024, seed=71, rtos1=True)
    r2 = py_image(2, 40 * 1024, seed=72, rtos1=True)
    if r1[:4] != b"\xea\x04\x00\x20":
        fail("the test image is not an RTOS 1.x header: %s" % r1[:4].hex())
    d.home = tmp
    port = d.ports["legacy"]
    files = {"user1.bin": r1, "user2.bin": r2}

    # a default product keeps the strict check, with the reason and the way out
    st, body = post(d, "/v1/products/", {"name": "nonos", "flash_map": 2})
    if st != 200 or body["product"]["slot_check"] != "byte3":
        fail("default product: %d %s" % (st, body))
    strict = body["product"]["id"]
    ctype, mp = multipart({"version": "v1.0"}, files_of(files))
    st, body = post(d, "/v1/products/%d/roms/" % strict, mp, ctype)
    want = ("user1.bin has no slot number in byte 3 (0x20, a v2/legacy image, e.g. from esptool "
            "or an RTOS 1.x SDK), so devices refuse it: user1.bin must be built by NONOS >= 2.0 "
            "gen_appbin with app=1 (for devices that do not check byte 3, such as RTOS 1.x "
            "clients, create the product with slot_check \"name\")")
    if st != 422 or body.get("message") != want:
        fail("default product took an RTOS 1.x pair: %d %s" % (st, body))

    # bad values
    for bad in ("Name", "", 1, True, "slot"):
        st, body = post(d, "/v1/products/", {"name": "bad", "slot_check": bad})
        if st != 422 or "slot_check must be" not in body.get("message", ""):
            fail("slot_check=%r: want 422, got %d %s" % (bad, st, body))
    p = fotactl(d, "product", "create", "bad", "--slot-check", "bytes3", ok=False)
    if p.returncode == 0 or "--slot-check wants byte3 or name" not in p.stderr:
        fail("fotactl --slot-check bytes3: %d %s" % (p.returncode, p.stderr))

    # the seed fleet's product, through fotactl; shown by product show and the API
    p = fotactl(d, "product", "create", "seedfleet", "--slot-check", "name", "--flash-map", "2",
                "--json")
    prod = json.loads(p.stdout)["product"]
    if prod["slot_check"] != "name":
        fail("fotactl product create --slot-check name: %s" % prod)
    p = fotactl(d, "product", "show", "seedfleet")
    if "name" not in [ln.split()[-1] for ln in p.stdout.splitlines() if "slot_check" in ln]:
        fail("product show lacks slot_check name:\n" + p.stdout)

    # fotactl checks locally with the product's rule: the strict product is refused before
    # anything is sent, the seed product accepted
    # the SDK's output names, as a seed user has them (fotactl uploads them as userN.bin)
    u1 = os.path.join(tmp, "user1.1024.new.2.bin")
    u2 = os.path.join(tmp, "user2.1024.new.2.bin")
    for path, data in ((u1, r1), (u2, r2)):
        with open(path, "wb") as f:
            f.write(data)
    p = fotactl(d, "release", "publish", "--product", "nonos", "--version", "v1.0", u1, u2,
                ok=False)
    if p.returncode == 0 or "checked locally, nothing was uploaded" not in p.stderr or \
            "slot_check" not in p.stderr:
        fail("fotactl publish to the strict product: %d %s" % (p.returncode, p.stderr))
    fotactl(d, "release", "publish", "--product", "seedfleet", "--version", "v1.0", "--current",
            u1, u2)
    roms = d.api("GET", "/v1/products/%d/roms/" % prod["id"])[2]["roms"]
    slots = {f["name"]: f["slot"] for f in roms[0]["files"]}
    if slots != {"user1.bin": 1, "user2.bin": 2}:
        fail("file slots of the published release: %s" % slots)

    # a NONOS >= 2.0 image named for the wrong slot is still refused by the seed product
    ctype, mp = multipart({"version": "v1.1"}, files_of({"user1.bin": r1,
                                                          "user2.bin": py_image(1, 40 * 1024,
                                                                                seed=73)}))
    st, body = post(d, "/v1/products/%d/roms/" % prod["id"], mp, ctype)
    if st != 422 or not body.get("message", "").startswith(
            "user2.bin is a user1 image (byte 3 = 1)"):
        fail("swapped NONOS image: %d %s" % (st, body))

    # the legacy listener serves the RTOS 1.x images to a seed-like client
    for section, want_img in ((1, r1), (2, r2)):
        r = stock_client(port, section, strict=True, interval_ms=2)
        if not r.ok or r.data != want_img:
            fail("seed client, section %d: %s" % (section, r.error))
    d.wait_log(r"section=2 mode=paced result=ok bytes=%d .*image=\"seedfleet v1\.0 user2\.bin\""
               % len(r2))


if __name__ == "__main__":
    run_tests([test_seed_fleet])
