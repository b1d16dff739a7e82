"""arduino_upload_test.py - releases of arduino products (reference arduino-ota §1, §6, §7,
§10.1): what is refused with 422 and why, the core >= 2.7 "wrong checksum" image accepted, the
facts recorded per file, gzip products (compressed at the best level, served as the gzip
container, the plain image when eboot could not inflate in place), signed products (standard
and the 2.5 legacy form, tampered, unsigned, another flash mode, signed gzip served as uploaded)
and the fleet-settings route.
"""
import gzip
import struct

from arduino_util import (arduino_product, build_image, check_image_answer, checkin, gz,
                          make_key, md5, sign, upload, with_mode)
from fotatest import check, run_tests


def refused(d, pid, files, words):
    j = upload(d, pid, "9.9.9", files, expect=422)
    check(words in j["message"], "reason %r lacks %r" % (j["message"], words))


def rom_files(j):
    return {f["name"]: f for f in j["rom"]["files"]}


def test_refusals(d):
    p, _ = arduino_product(d)
    img = build_image(seed=1)
    refused(d, p["id"], [("firmware.bin", b"\x00" + img[1:])], "magic")
    refused(d, p["id"], [("firmware.bin", img[:0x1200])], "firmware.bin: ")
    bad_mode = bytearray(img)
    bad_mode[2] = 7
    refused(d, p["id"], [("firmware.bin", bytes(bad_mode))], "flash mode")
    bad_size = bytearray(img)
    bad_size[3] = 0x50
    refused(d, p["id"], [("firmware.bin", bytes(bad_size))], "size code")
    z = bytearray(gz(img))
    z[-4:] = struct.pack("<I", len(img) + 1)
    refused(d, p["id"], [("firmware.bin", bytes(z))], "ISIZE")
    refused(d, p["id"], [("firmware.bin", gz(img) + gz(img))], "more than one member")
    refused(d, p["id"], [("firmware.bin", img), ("tasmota.bin", img)], "firmware.bin (required)")
    j = upload(d, p["id"], "9.9.9", [("firmware-minimal.bin", img)], expect=400)
    check("firmware.bin is required" in j["message"], repr(j))
    p26, _ = arduino_product(d, arduino_core="2.6")
    refused(d, p26["id"], [("firmware.bin", gz(img))], "2.7")
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % p["id"])
    check(j["roms"] == [], "a refused upload left a release: %r" % j["roms"])


def test_facts_and_core27_checksum(d):
    p, key = arduino_product(d)
    img = build_image(mode=2, seed=2)           # CRC words patched after the checksum
    j = upload(d, p["id"], "1.0.0", [("firmware.bin", img)])
    f = rom_files(j)["firmware.bin"]
    check(f["md5"] == md5(img) and f["gzip"] is False and f["signature"] == "none", repr(f))
    im = f["image"]
    check(im["size"] == len(img) and im["md5"] == md5(img), repr(im))
    check(im["flash_mode"] == "dio" and im["flash_size"] == 4 << 20, repr(im))
    check(im["sketch_size"] == len(img), repr(im))
    check(im["sketch_md5"] == [md5(with_mode(img, m)) for m in range(4)], repr(im))
    check(list(rom_files(j)) == ["firmware.bin"], repr(rom_files(j)))
    st, _, s = d.api("GET", "/v1/products/%d/arduino" % p["id"])
    check(st == 200 and s["arduino"]["flash_mode"] == "dio", "fleet mode from the first release: %r"
          % s)
    # esptool-ck (core <= 2.5.0): 4 segments, plain checksum
    upload(d, p["id"], "1.0.1", [("firmware.bin", build_image(nsketch=4, crc=False, seed=3))])


def test_gzip_product(d):
    p, key = arduino_product(d, gzip=True)
    img = build_image(irom=80000, seed=4)
    j = upload(d, p["id"], "1.0.0", [("firmware.bin", img)])
    files = rom_files(j)
    check(set(files) == {"firmware.bin", "firmware.bin.gz"}, repr(files))
    check(files["firmware.bin.gz"]["gzip"] is True, repr(files))
    sav = j["rom"]["gzip_saving"]
    check(sav["image"] == len(img) and sav["gzip"] == files["firmware.bin.gz"]["size"], repr(sav))
    check(0 < sav["percent"] < 100, repr(sav))
    d.set_current(p["id"], "1.0.0")
    for name in ("firmware.bin", "firmware.bin.gz"):
        a = checkin(d, key, name=name, mac="5C:CF:7F:00:00:01")
        check(a.status == 200 and a.body[:2] == b"\x1f\x8b", "%s: gzip body" % name)
        check_image_answer(a, a.body)
        check(gzip.decompress(a.body) == img, "inflates to the image")
        check(struct.unpack("<I", a.body[-4:])[0] == len(img), "ISIZE")
        check(len(a.body) == files["firmware.bin.gz"]["size"], "the stored container")
    # a device that runs it (any mode byte, gzip is never rewritten): 304
    check(checkin(d, key, sketch_md5=md5(with_mode(img, 0))).status == 304, "runs it")
    # eboot could not inflate in place with this little room: the plain image instead
    zlen = files["firmware.bin.gz"]["size"]
    a = checkin(d, key, mac="5C:CF:7F:00:00:02", free_space=len(img) + 4096, sketch_size=4096)
    roundup = lambda n: (n + 4095) & ~4095
    check(len(img) + roundup(zlen) > len(img) + 4096 + roundup(4096), "the test's numbers")
    check_image_answer(a, img)
    # an uploaded gzip file is served as it is
    z = gz(img)
    j = upload(d, p["id"], "1.0.1", [("firmware.bin.gz", z)])
    d.set_current(p["id"], "1.0.1")
    check_image_answer(checkin(d, key, name="firmware.bin.gz", mac="5C:CF:7F:00:00:03"), z)
    # on a product without gzip, a gzip upload is served inflated
    p2, key2 = arduino_product(d)
    j = upload(d, p2["id"], "1.0.0", [("firmware.bin", z)])
    check(list(rom_files(j)) == ["firmware.bin"], repr(rom_files(j)))
    d.set_current(p2["id"], "1.0.0")
    check_image_answer(checkin(d, key2), img)


def test_signed(d):
    priv, pub = make_key()
    other, _ = make_key()
    p, key = arduino_product(d, signing_key=pub, flash_mode="dout")
    check(p["signing_key"] == pub and p["flash_mode"] == "dout", repr(p))
    img = build_image(mode=3, seed=5)
    signed = sign(img, priv)
    j = upload(d, p["id"], "1.0.0", [("firmware.bin", signed)])
    f = rom_files(j)["firmware.bin"]
    check(f["signature"] == "standard" and f["size"] == len(signed), repr(f))
    check(f["image"]["size"] == len(img) and f["image"]["md5"] == md5(img), repr(f))
    d.set_current(p["id"], "1.0.0")
    check_image_answer(checkin(d, key), signed)
    check(checkin(d, key, sketch_md5=md5(img)).status == 304, "runs the payload")
    refused(d, p["id"], [("firmware.bin", img)], "no signature trailer")
    tampered = bytearray(signed)
    tampered[0x1100] ^= 1
    refused(d, p["id"], [("firmware.bin", bytes(tampered))], "does not verify")
    refused(d, p["id"], [("firmware.bin", sign(img, other))], "does not verify")
    refused(d, p["id"], [("firmware.bin", sign(img, priv, legacy=True))], "legacy")
    refused(d, p["id"], [("firmware.bin", sign(build_image(mode=2, seed=6), priv))], "flash mode")
    # core 2.5: the legacy form
    p25, _ = arduino_product(d, signing_key=pub, arduino_core="2.5")
    j = upload(d, p25["id"], "1.0.0", [("firmware.bin", sign(img, priv, legacy=True))])
    check(rom_files(j)["firmware.bin"]["signature"] == "legacy", repr(j))
    refused(d, p25["id"], [("firmware.bin", signed)], "legacy")
    # signed gzip: core 3.0 and the gzip option; served as uploaded, never recompressed
    st, _, e = d.api("POST", "/v1/products/", {"name": "sg27", "platform": "arduino",
                                               "gzip": True, "signing_key": pub,
                                               "arduino_core": "2.7"})
    check(st == 422 and "3.0.0" in e["message"], "signed gzip on 2.7: %d %r" % (st, e))
    pg, keyg = arduino_product(d, signing_key=pub, gzip=True, arduino_core="3.0")
    sgz = sign(gz(img), priv)
    j = upload(d, pg["id"], "1.0.0", [("firmware.bin.gz", sgz)])
    check(list(rom_files(j)) == ["firmware.bin.gz"], repr(rom_files(j)))
    d.set_current(pg["id"], "1.0.0")
    check_image_answer(checkin(d, keyg), sgz)
    refused(d, pg["id"], [("firmware.bin", signed)], ".gz")
    # the private key is refused as signing_key
    st, _, e = d.api("POST", "/v1/products/", {"name": "priv", "platform": "arduino",
                                               "signing_key": open(priv).read()})
    check(st == 422 and "private" in e["message"], "private key: %d %r" % (st, e))


def test_settings(d):
    p, _ = arduino_product(d)
    check(p["gzip"] is False and p["arduino_core"] == "3.1" and p["flash_mode"] is None, repr(p))
    check(p["checkin_interval"] == 3600 and p["confirm_after"] == 60, repr(p))
    st, _, j = d.api("PUT", "/v1/products/%d/arduino" % p["id"],
                     {"checkin_interval": 120, "flash_mode": "qio", "gzip": True})
    check(st == 200 and j["arduino"]["checkin_interval"] == 120, "%d %r" % (st, j))
    check(j["arduino"]["flash_mode"] == "qio" and j["arduino"]["gzip"] is True, repr(j))
    st, _, j = d.api("GET", "/v1/products/%d/" % p["id"])
    check(j["product"]["checkin_interval"] == 120 and j["product"]["platform"] == "arduino",
          repr(j))
    for bad in ({"arduino_core": "2.8"}, {"flash_mode": "fast"}, {"checkin_interval": 0},
                {"arduino_core": "2.6"}, {"signing_key": "not a key"}):
        st, _, j = d.api("PUT", "/v1/products/%d/arduino" % p["id"], bad)
        check(st == 422, "%r: %d %r" % (bad, st, j))
    st, _, j = d.api("POST", "/v1/products/", {"name": "x", "platform": "esp32"})
    check(st == 422, "platform esp32: %d" % st)
    check(d.api("GET", "/v1/products/%d/arduino" % p["id"], key=None)[0] == 401, "no key")


run_tests([test_refusals, test_facts_and_core27_checksum, test_gzip_product, test_signed,
           test_settings])
