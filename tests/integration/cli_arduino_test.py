#!/usr/bin/env python3
"""cli_arduino_test.py - fotactl and arduino products (docs/arduino.md) against a real fotad.

test_sign_matches_openssl: `release sign` writes exactly what `openssl dgst -sha256 -sign` plus
the core's trailer (signature || uint32_le(length), reference arduino-ota §7.2) gives, for a PKCS#8
and a traditional "RSA PRIVATE KEY" file, a 3072-bit key, an empty input and to standard output;
`--legacy` exactly what `openssl pkeyutl -sign` over the bare SHA-256 gives (signing.py --legacy);
a public, encrypted or EC key is refused with exit 1 and OUT is not written. No server needed.
test_products: `product create --platform arduino` with every fleet option (what the server
stores), `product arduino` shows and changes them, a private key as --signing-key is refused
before anything is sent, the server's refusal of a combination (gzip before core 2.7) is exit 1
with its reason, `product arduino` of a nonos product is exit 4.
test_releases_and_devices: `release publish` uploads firmware.bin and firmware-minimal.bin (named
by "minimal"), refuses a broken image locally (nothing uploaded), shows the MD5, gzip saving and
flash facts in `release show`; a device's check-in (the core's request bytes, §2.1) makes it
appear with its chip id, sketch MD5 and size, free space, chip size, SDK, version and last
check-in in `device show` and --json, and an explicit upgrade to the version it runs as the
version it is held on.
test_signed_publish: `release publish --sign-key` on a signed product (the standard form; the
legacy one on a core 2.5 fleet; on a gzip + signed core 3.0 fleet compressed first, then signed,
and served as uploaded), a key that is not the product's refused locally, --sign-key on an
unsigned or nonos product refused, an unsigned upload refused by the server (exit 1, 422 reason).
test_mqtt: `product mqtt` against a real mosquitto that refuses anonymous clients: the password
from a file or standard input reaches fotad (it connects) and is never printed, a missing one
is kept, --remove forgets the broker, a bad URL is the server's 422, a nonos product exit 4.
Python 3 stdlib, the openssl command and Debian's mosquitto.
"""
import gzip
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from arduino_util import build_image, core_request, exchange, md5, with_mode  # noqa: E402
from cli_workflow_test import FOTACTL, Ctl  # noqa: E402
from fotatest import check, make_image, run_tests, wait_for, write_file  # noqa: E402
from mqtt_util import Mosquitto  # noqa: E402


def read(path):
    with open(path, "rb") as f:
        return f.read()


def openssl(*args, data=None):
    p = subprocess.run(["openssl"] + list(args), input=data, capture_output=True, timeout=60)
    check(p.returncode == 0, "openssl %s: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    return p.stdout


def keys(d, name, bits=2048, traditional=False):
    """(private.pem, public.pem) paths of a fresh RSA key."""
    priv = os.path.join(d, name + ".pem")
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:%d" % bits, "-out", priv)
    if traditional:
        openssl("rsa", "-in", priv, "-traditional", "-out", priv)
        check(b"BEGIN RSA PRIVATE KEY" in read(priv), "not a traditional key file")
    pub = os.path.join(d, name + ".pub.pem")
    openssl("pkey", "-in", priv, "-pubout", "-out", pub)
    return priv, pub


def openssl_signed(priv, path, legacy=False):
    """payload || signature || uint32_le(len), the signature from the openssl command."""
    payload = read(path)
    if legacy:
        dig = write_file(os.path.dirname(path), "digest.bin", hashlib.sha256(payload).digest())
        sig = openssl("pkeyutl", "-sign", "-inkey", priv, "-in", dig,
                      "-pkeyopt", "rsa_padding_mode:pkcs1")
    else:
        sig = openssl("dgst", "-sha256", "-sign", priv, path)
    return payload + sig + struct.pack("<I", len(sig))


def test_sign_matches_openssl():
    home = tempfile.mkdtemp(prefix="fotactl-ard-sign-")
    ctl = Ctl(home)
    pkcs8, pub = keys(home, "pkcs8")
    trad, _ = keys(home, "trad", traditional=True)
    big, _ = keys(home, "big", bits=3072)
    img = write_file(home, "firmware.bin", build_image(seed=3))
    empty = write_file(home, "empty.bin", b"")
    for key, src, legacy in ((pkcs8, img, False), (trad, img, False), (big, img, False),
                             (pkcs8, empty, False), (pkcs8, img, True), (trad, img, True)):
        out = os.path.join(home, "out.bin")
        args = ["release", "sign", "--key", key, src, out] + (["--legacy"] if legacy else [])
        p = ctl.run(*args)
        want = openssl_signed(key, src, legacy)
        got = read(out)
        check(got == want, "%s: %d bytes differ from openssl's %d" % (args, len(got), len(want)))
        check(("%d bytes in %s" % (len(want), out)) in p.stdout, "sign said %r" % p.stdout)
        os.unlink(out)
    # standard output; -k; the trailer of a 3072-bit key says 384
    p = subprocess.run([FOTACTL, "release", "sign", "-k", big, img, "-"], capture_output=True,
                       env=ctl.env, timeout=30)
    check(p.returncode == 0 and p.stdout == openssl_signed(big, img), "sign to stdout: %d %r" %
          (p.returncode, p.stderr))
    check(p.stdout[-4:] == struct.pack("<I", 384), "trailer %r" % p.stdout[-4:])
    # keys that cannot sign: exit 1, one line, OUT not written
    enc = os.path.join(home, "enc.pem")
    openssl("pkey", "-in", pkcs8, "-aes128", "-passout", "pass:secret", "-out", enc)
    ec = os.path.join(home, "ec.pem")
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec)
    for key, words in ((pub, "is a public key"), (enc, "is encrypted"), (ec, "not an RSA key"),
                       (img, "not a PEM private key")):
        out = os.path.join(home, "never.bin")
        p = ctl.run("release", "sign", "--key", key, img, out, ok=False)
        check(p.returncode == 1 and words in p.stderr and len(p.stderr.splitlines()) == 1,
              "%s: %d %r" % (key, p.returncode, p.stderr))
        check(not os.path.exists(out), "OUT written after a refusal")
    p = ctl.run("release", "sign", "--key", pkcs8, os.path.join(home, "nope.bin"), "o", ok=False)
    check(p.returncode == 1 and "cannot read" in p.stderr, "missing input: %r" % p.stderr)


def login(d, home):
    ctl = Ctl(home)
    ctl.run("login", "--server", "http://127.0.0.1:%d" % d.http_port, "--key", d.admin_key)
    return ctl


def test_products(d):
    home = tempfile.mkdtemp(prefix="fotactl-ard-prod-")
    ctl = login(d, home)
    priv, pub = keys(home, "fleet")
    p = ctl.run("product", "create", "plugs", "--platform", "arduino", "--arduino-core", "3.0",
                "--gzip", "--flash-mode", "dout", "--signing-key", pub, "--checkin-interval",
                "10m", "--confirm-after", "45")
    for words in ("platform", "arduino", "RSA 2048-bit public key", "600 s (10m)", "45 s",
                  "dout", "product_key"):
        check(words in p.stdout, "product create lacks %r:\n%s" % (words, p.stdout))
    check("BEGIN PUBLIC KEY" not in p.stdout, "the PEM text in the show block:\n" + p.stdout)
    j = ctl.json("product", "show", "plugs")["product"]
    check(j["platform"] == "arduino" and j["arduino_core"] == "3.0" and j["gzip"] is True and
          j["flash_mode"] == "dout" and j["checkin_interval"] == 600 and
          j["confirm_after"] == 45 and j["signing_key"].strip() == read(pub).decode().strip(),
          "stored settings %r" % j)
    # shown and changed later
    s = ctl.json("product", "arduino", "plugs")["arduino"]
    check(s["gzip"] is True and s["product_id"] == j["id"], "product arduino %r" % s)
    p = ctl.run("product", "arduino", "plugs", "--no-gzip", "--no-signing-key", "--flash-mode",
                "none", "--checkin-interval", "1d")
    check("86400 s (1d)" in p.stdout, "product arduino printed %r" % p.stdout)
    s = ctl.json("product", "arduino", "plugs")["arduino"]
    check(s["gzip"] is False and s["signing_key"] is None and s["flash_mode"] is None and
          s["checkin_interval"] == 86400 and s["confirm_after"] == 45, "after the change %r" % s)
    # a private key never leaves the machine: refused before anything is sent
    n_before = d.count_log(r"arduino settings product=")
    p = ctl.run("product", "arduino", "plugs", "--signing-key", priv, ok=False)
    check(p.returncode == 2 and "is a private key" in p.stderr, "private key: %d %r" %
          (p.returncode, p.stderr))
    p = ctl.run("product", "create", "leak", "--platform", "arduino", "--signing-key", priv,
                ok=False)
    check(p.returncode == 2 and "nothing was sent" in p.stderr, "create with a private key: %r" %
          p.stderr)
    check(d.count_log(r"arduino settings product=") == n_before, "a settings request was sent")
    check("leak" not in [x["name"] for x in ctl.json("product", "list")["products"]],
          "a product was created with a private key")
    # the server's refusals: exit 1 with its sentence
    p = ctl.run("product", "create", "old", "--platform", "arduino", "--arduino-core", "2.6",
                "--gzip", ok=False)
    check(p.returncode == 1 and "2.7" in p.stderr, "gzip on core 2.6: %d %r" % (p.returncode,
                                                                            p.stderr))
    p = ctl.run("product", "arduino", "plugs", "--arduino-core", "2.6", "--gzip", ok=False)
    check(p.returncode == 1 and "2.7" in p.stderr, "PUT gzip on 2.6: %d %r" % (p.returncode,
                                                                           p.stderr))
    ctl.run("product", "create", "lamp", "--flash-map", "2")
    p = ctl.run("product", "arduino", "lamp", ok=False)
    check(p.returncode == 4 and "not an arduino product" in p.stderr, "nonos: %d %r" %
          (p.returncode, p.stderr))
    check(ctl.json("product", "show", "lamp")["product"]["platform"] == "nonos", "lamp platform")


def test_releases_and_devices(d):
    home = tempfile.mkdtemp(prefix="fotactl-ard-rel-")
    ctl = login(d, home)
    ctl.run("product", "create", "plugs", "--platform", "arduino", "--gzip", "--arduino-core",
            "2.7")
    key = ctl.json("product", "show", "plugs")["product_key"]
    full = build_image(mode=3, seed=11, irom=60000)
    mini = build_image(mode=3, seed=12, irom=9000)
    d1 = os.path.join(home, "v1")
    os.mkdir(d1)
    pf = write_file(d1, "tasmota.bin", full)
    pm = write_file(d1, "tasmota-minimal.bin", mini)
    p = ctl.run("release", "publish", "-p", "plugs", "-v", "14.4.1", pm, pf, "--current",
                "--no-progress")
    check("published 14.4.1" in p.stdout, "publish printed %r" % p.stdout)
    rom = ctl.json("release", "show", "-p", "plugs", "14.4.1")["rom"]
    names = sorted(f["name"] for f in rom["files"])
    check(names == ["firmware-minimal.bin", "firmware-minimal.bin.gz", "firmware.bin",
                    "firmware.bin.gz"], "stored files %r" % names)
    byname = {f["name"]: f for f in rom["files"]}
    check(byname["firmware.bin"]["md5"] == md5(full), "firmware.bin md5 %r" % byname)
    p = ctl.run("release", "show", "-p", "plugs", "14.4.1")
    gzf = byname["firmware.bin.gz"]
    # piped: tab-separated rows without the header
    for words in (md5(full), gzf["md5"], "dout 4M",
                  "%d%% smaller (%d bytes)" % (gzf["gzip_saving"]["percent"],
                                               gzf["gzip_saving"]["bytes"]),
                  "gzip_saving"):
        check(words in p.stdout, "release show lacks %r:\n%s" % (words, p.stdout))
    # a broken image is refused locally: nothing uploaded
    bad = bytearray(full)
    bad[0x1000] = 0
    pb = write_file(home, "firmware.bin", bytes(bad))
    p = ctl.run("release", "publish", "-p", "plugs", "-v", "14.4.2", pb, ok=False)
    check(p.returncode == 1 and "checked locally, nothing was uploaded" in p.stderr and
          pb in p.stderr, "local refusal: %d %r" % (p.returncode, p.stderr))
    p = ctl.run("release", "publish", "-p", "plugs", "-v", "14.4.2", pf, pf, ok=False)
    check(p.returncode == 2 and "are both firmware.bin" in p.stderr, "two full: %r" % p.stderr)
    p = ctl.run("release", "publish", "-p", "plugs", "-v", "14.4.2", pm, ok=False)
    check(p.returncode == 2 and "needs firmware.bin" in p.stderr, "minimal alone: %r" % p.stderr)
    # --no-check: the server's own refusal (422) names the file
    p = ctl.run("release", "publish", "-p", "plugs", "-v", "14.4.2", pb, "--no-check", ok=False)
    check(p.returncode == 1 and "firmware.bin" in p.stderr, "server refusal: %r" % p.stderr)
    vs = [r["version"] for r in ctl.json("release", "list", "-p", "plugs")["roms"]]
    check(vs == ["14.4.1"], "releases %r" % vs)

    # a device checks in with the core's request: fotactl shows what it said
    host = "127.0.0.1:%d" % d.http_port
    req = core_request("/v1/arduino/%s/firmware.bin" % key, host, version="14.4.1(tasmota)",
                       mac="5C:CF:7F:01:02:03", sketch_md5=md5(with_mode(full, 2)),
                       sketch_size=len(full), chip_id=66051, free_space=1 << 20,
                       sdk="2.2.2-dev(38a443e)")
    a = exchange(d.http_port, req)
    check(a.status == 304, "a device on the target: %s" % a.status_line)
    p = ctl.run("device", "show", "5C:CF:7F:01:02:03")
    for words in ("arduino (the last check-in)", "chip_id", "66051", "5C:CF:7F:01:02:03",
                  md5(with_mode(full, 2)), str(len(full)), "1048576", "4194304",
                  "2.2.2-dev(38a443e)", "14.4.1(tasmota)", "last_checkin", "sketch"):
        check(words in p.stdout, "device show lacks %r:\n%s" % (words, p.stdout))
    check("1970" not in p.stdout.split("last_checkin", 1)[1].splitlines()[0],
          "last_checkin is not a time:\n" + p.stdout)
    dev = ctl.json("device", "show", "5C:CF:7F:01:02:03")["device"]
    ard = dev["arduino"]
    check(ard["chip_id"] == 66051 and ard["sketch_md5"] == md5(with_mode(full, 2)) and
          ard["sketch_size"] == len(full) and ard["free_space"] == 1 << 20 and
          ard["chip_size"] == 4194304 and ard["sdk_version"] == "2.2.2-dev(38a443e)" and
          ard["version"] == "14.4.1(tasmota)" and ard["last_checkin"] > 0, "device %r" % ard)
    rows = ctl.run("device", "list", "-p", "plugs").stdout
    check("5C:CF:7F:01:02:03" in rows, "device list:\n" + rows)
    # an explicit upgrade to the version it runs holds it there (its pin)
    ctl.run("upgrade", "5C:CF:7F:01:02:03", "--version", "14.4.1")
    check(exchange(d.http_port, req).status == 304, "still current")
    p = ctl.run("device", "show", "5C:CF:7F:01:02:03")
    check("14.4.1 until the current release (14.4.1) changes" in p.stdout,
          "device show lacks the pin:\n" + p.stdout)


def test_signed_publish(d):
    home = tempfile.mkdtemp(prefix="fotactl-ard-signed-")
    ctl = login(d, home)
    priv, pub = keys(home, "fleet")
    other, _ = keys(home, "other")
    img = build_image(mode=3, seed=21)
    pf = write_file(home, "sketch.ino.bin", img)
    ctl.run("product", "create", "signed", "--platform", "arduino", "--signing-key", pub,
            "--flash-mode", "dout")
    # unsigned: the server refuses (422) with its reason
    p = ctl.run("release", "publish", "-p", "signed", "-v", "1.0.0", pf, ok=False)
    check(p.returncode == 1 and "signature" in p.stderr.lower(), "unsigned: %d %r" %
          (p.returncode, p.stderr))
    p = ctl.run("release", "publish", "-p", "signed", "-v", "1.0.0", pf, "--sign-key", other,
                ok=False)
    check(p.returncode == 1 and "does not belong to the public key" in p.stderr,
          "another key: %r" % p.stderr)
    ctl.run("release", "publish", "-p", "signed", "-v", "1.0.0", pf, "--sign-key", priv)
    f = {x["name"]: x for x in ctl.json("release", "show", "-p", "signed", "1.0.0")["rom"]["files"]}
    check(f["firmware.bin"]["signature"] == "standard", "signed release %r" % f)
    ctl.run("release", "download", "-p", "signed", "1.0.0", "firmware.bin", "-o",
            os.path.join(home, "got.bin"))
    check(read(os.path.join(home, "got.bin")) == openssl_signed(priv, pf),
          "the stored file is not the openssl-signed image")
    check("standard" in ctl.run("release", "show", "-p", "signed", "1.0.0").stdout,
          "release show lacks the signature form")

    # a core 2.5 fleet: the legacy form
    ctl.run("product", "create", "old", "--platform", "arduino", "--arduino-core", "2.5",
            "--signing-key", pub)
    ctl.run("release", "publish", "-p", "old", "-v", "1.0.0", pf, "--sign-key", priv)
    f = ctl.json("release", "show", "-p", "old", "1.0.0")["rom"]["files"][0]
    check(f["signature"] == "legacy", "core 2.5 release %r" % f)

    # gzip + signed (core 3.0): compressed here, then signed, served as uploaded
    ctl.run("product", "create", "gzsigned", "--platform", "arduino", "--arduino-core", "3.0",
            "--gzip", "--signing-key", pub)
    key = ctl.json("product", "show", "gzsigned")["product_key"]
    ctl.run("release", "publish", "-p", "gzsigned", "-v", "2.0.0", pf, "--sign-key", priv,
            "--current")
    f = {x["name"]: x for x in
         ctl.json("release", "show", "-p", "gzsigned", "2.0.0")["rom"]["files"]}
    check(list(f) == ["firmware.bin.gz"], "gzip + signed files %r" % list(f))
    check(f["firmware.bin.gz"]["gzip"] is True and f["firmware.bin.gz"]["signature"] ==
          "standard" and f["firmware.bin.gz"]["image"]["md5"] == md5(img), "facts %r" % f)
    a = exchange(d.http_port, core_request("/v1/arduino/%s/firmware.bin" % key,
                                           "127.0.0.1:%d" % d.http_port, version="1.0.0"))
    check(a.status == 200 and a.body[:2] == b"\x1f\x8b", "served %s" % a.status_line)
    body, slen = a.body[:-4], struct.unpack("<I", a.body[-4:])[0]
    check(slen == 256 and gzip.decompress(body[:-slen]) == img, "the served file is not "
          "gzip(image) || signature || length")

    # --sign-key where it makes no sense
    ctl.run("product", "create", "plain", "--platform", "arduino")
    p = ctl.run("release", "publish", "-p", "plain", "-v", "1.0.0", pf, "--sign-key", priv,
                ok=False)
    check(p.returncode == 1 and "has no signing key" in p.stderr, "unsigned product: %r" %
          p.stderr)
    ctl.run("product", "create", "lamp", "--flash-map", "2")
    u1 = write_file(home, "user1.bin", make_image(1, 2, "v1.0"))
    u2 = write_file(home, "user2.bin", make_image(2, 2, "v1.0"))
    p = ctl.run("release", "publish", "-p", "lamp", "-v", "v1.0", u1, u2, "--sign-key", priv,
                ok=False)
    check(p.returncode == 2 and "for arduino products" in p.stderr, "nonos: %r" % p.stderr)
    check(json.dumps(ctl.json("release", "list", "-p", "plain")["roms"]) == "[]",
          "a refused publish left a release")


def test_mqtt(d):
    home = tempfile.mkdtemp(prefix="fotactl-ard-mqtt-")
    ctl = login(d, home)
    secret = "s3cret-" + hashlib.sha256(home.encode()).hexdigest()[:8]
    broker = Mosquitto(users={"fotad": secret})
    try:
        ctl.run("product", "create", "tasmotas", "--platform", "arduino")
        check(ctl.run("product", "mqtt", "tasmotas").stdout == "no broker\n", "before: no broker")
        pw = write_file(home, "mqtt.pw", (secret + "\n").encode())
        p = ctl.run("product", "mqtt", "tasmotas", "--url", broker.url, "--username", "fotad",
                    "--password-file", pw)
        check(broker.url in p.stdout and "password_set" in p.stdout and secret not in p.stdout,
              "product mqtt printed %r" % p.stdout)

        def connected():
            return ctl.json("product", "mqtt", "tasmotas")["mqtt"]["connected"] is True
        wait_for(connected, 15, "fotad connected to the broker with the password")
        j = ctl.json("product", "mqtt", "tasmotas")
        check(secret not in json.dumps(j) and j["mqtt"]["password_set"] is True, repr(j))
        # another user name, the password kept; then from standard input
        ctl.run("product", "mqtt", "tasmotas", "--username", "fotad")
        check(ctl.json("product", "mqtt", "tasmotas")["mqtt"]["password_set"] is True,
              "the password was not kept")
        p = subprocess.run([FOTACTL, "product", "mqtt", "tasmotas", "--password-file", "-"],
                           input=secret, capture_output=True, text=True, env=ctl.env, timeout=30)
        check(p.returncode == 0 and secret not in p.stdout, "stdin: %d %r" % (p.returncode,
                                                                           p.stderr))
        p = ctl.run("product", "mqtt", "tasmotas", "--remove", "--url", broker.url, ok=False)
        check(p.returncode == 2 and "--remove takes no other option" in p.stderr, p.stderr)
        p = ctl.run("product", "mqtt", "tasmotas", "--url", "http://x", ok=False)
        check(p.returncode == 1 and "mqtt://" in p.stderr, "bad url: %d %r" % (p.returncode,
                                                                           p.stderr))
        check(ctl.run("product", "mqtt", "tasmotas", "--remove").stdout == "no broker\n",
              "after --remove")
        ctl.run("product", "create", "lamp", "--flash-map", "2")
        p = ctl.run("product", "mqtt", "lamp", ok=False)
        check(p.returncode == 4, "nonos: %d %r" % (p.returncode, p.stderr))
    finally:
        broker.stop()


if __name__ == "__main__":
    run_tests([test_sign_matches_openssl, test_products, test_releases_and_devices,
               test_signed_publish, test_mqtt])
