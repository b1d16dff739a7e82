"""sim_arduino_test.py - fota-sim --profile arduino (the ESP8266 Arduino
core's ESPhttpUpdate client, shared/reference/arduino-ota.md) against a
scripted HTTP server: the request bytes of §2.1 per core line (order,
spelling, HTTP/1.0, Content-Length: 0 last from 2.6, the version header only
when non-empty, Authorization's place), every verdict of §0.3/§4 with the
core's getLastErrorString, a plain rollout to devices whose flash mode
differs from the build's (the check-in MD5 is the rewritten variant, and a
server that accepts the 4 variants answers 304 after it), gzip (the inflated
image's MD5) and signed images (--pubkey: standard, core 2.5's raw digest,
unsigned and tampered refused with 12)."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_ardserver as ar  # noqa: E402

V1, V2 = "1.0.0", "2.0.0"


def sim(srv, n, extra=(), url="/fw/firmware.bin", scale="4", timeout=60):
    args = ["--server", "127.0.0.1", "--profile", "arduino", "--devices", str(n),
            "--url", srv.url(url), "--initial-version", V1, "--time-scale", scale,
            "--timeout", str(timeout), "--json-devices", "--seed", "3"] + list(extra)
    rc, out, err = ar.run_sim(args, timeout=timeout + 30)
    try:
        return rc, json.loads(out), err
    except ValueError:
        raise AssertionError("fota-sim printed no JSON (rc %d):\n%s\n%s" % (rc, out, err))


def expected_request(dev, core, path, host, version, auth=None):
    a = dev["arduino"]
    lines = ["GET %s HTTP/1.0" % path, "Host: %s" % host, "User-Agent: ESP8266-http-Update"]
    if auth and core >= 27:
        lines.append("Authorization: Basic " + auth)
    lines.append("Connection: close")
    if auth and core < 27:
        lines.append("Authorization: Basic " + auth)
    ap = "%02X" % (int(a["mac"][:2], 16) | 2) + a["mac"][2:]
    lines += ["x-ESP8266-Chip-ID: %d" % a["chip_id"], "x-ESP8266-STA-MAC: " + a["mac"],
              "x-ESP8266-AP-MAC: " + ap, "x-ESP8266-free-space: %d" % a["free_space"],
              "x-ESP8266-sketch-size: %d" % a["sketch_size"], "x-ESP8266-sketch-md5: " + a["sketch_md5"],
              "x-ESP8266-chip-size: 4194304",
              "x-ESP8266-sdk-version: " + ("2.2.2-dev(38a443e)" if core >= 27 else "2.2.1(cfd48f3)"),
              "x-ESP8266-mode: sketch"]
    if version:
        lines.append("x-ESP8266-version: " + version)
    if core >= 26:
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_request_bytes():
    srv = ar.ArdServer(lambda r: ar.reply(304, reason="Not Modified"))
    try:
        for core, extra, version, url, auth in (
                (31, (), V1, "/fw/firmware.bin?x=1", None),
                (30, (), V1, "/fw/firmware.bin?x=1", None),
                (27, (), V1, "/fw/firmware.bin?x=1", None),
                (26, (), V1, "/fw/firmware.bin?x=1", None),
                (25, (), V1, "/fw/firmware.bin?x=1", None),
                (31, ("--sketch-version", ""), None, "/fw/firmware.bin", None),
                (31, ("--sketch-version", "my sketch 7"), "my sketch 7", "/a", None),
                (31, (), V1, "/", "dTpw"),
                (26, (), V1, "/", "dTpw")):
            start = len(srv.taken())
            full = srv.url(url).replace("http://", "http://u:p@") if auth else srv.url(url)
            args = ["--server", "127.0.0.1", "--profile", "arduino", "--devices", "1", "--url", full,
                    "--initial-version", V1, "--json-devices", "--timeout", "30",
                    "--core", "%d.%d" % (core // 10, core % 10)] + list(extra)
            rc, out, err = ar.run_sim(args)
            assert rc == 0, (core, rc, out, err)
            dev = json.loads(out)["per_device"][0]
            reqs = srv.taken()[start:]
            assert len(reqs) == 1, reqs
            want = expected_request(dev, core, url, "127.0.0.1:%d" % srv.port, version, auth)
            assert reqs[0].raw == want, (core, extra, reqs[0].raw, want)
            assert dev["arduino"]["last_result"] == "NO_UPDATES", dev
    finally:
        srv.close()


def first_then_304(answer):
    """The scenario's answer to a device's first request, 304 afterwards."""
    seen = set()

    def handler(r):
        mac = r.get("x-ESP8266-STA-MAC")
        if mac in seen:
            return ar.reply(304, reason="Not Modified")
        seen.add(mac)
        return answer
    return handler


def raw(text, body=b""):
    return ar.Reply(text.encode().replace(b"\n", b"\r\n") + body)


def test_verdicts():
    with tempfile.TemporaryDirectory() as tmp:
        img = ar.write_image(os.path.join(tmp, "v2.bin"), V2)
        big = bytearray(img)
        big[3] = 0x90                                  # the header says 16 MB; the chip has 4
        gz = ar.write_image(os.path.join(tmp, "v2.gz"), V2, extra=("--gzip",))
        h = ar.md5(img)
        L = len(img)
        cases = [
            # (answer, ok, last_error, last_error_string, extra args)
            (ar.reply(200, img, [("x-MD5", h)]), True, 0, "", ()),
            (ar.reply(200, img, [("x-MD5", h.upper())]), True, 0, "", ()),
            (ar.reply(200, gz, [("x-MD5", ar.md5(gz))]), True, 0, "", ()),
            (ar.reply(200, img, length=False), False, -101, "Server Did Not Report Size", ()),
            (raw("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n", b"%x\r\n" % L + img + b"\r\n0\r\n\r\n"),
             False, -101, "Server Did Not Report Size", ()),
            (raw("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\nContent-Length: %d\n\n" % L,
                 b"%x\r\n" % L + img + b"\r\n0\r\n\r\n"), False, -106, "Verify Bin Header Failed", ()),
            (raw("HTTP/1.1 200 OK\nTransfer-Encoding: gzip\nContent-Length: %d\n\n" % L, img),
             False, -9, "HTTP error: Transfer-Encoding not supported", ()),
            (ar.reply(200, b""), False, -101, "Server Did Not Report Size", ()),
            (raw("HTTP/1.1 200 OK\nContent-Length: 8388608\n\n", img), False, -100,
             "Not Enough space", ()),
            (ar.reply(200, b"\x00" + img[1:]), False, -106, "Verify Bin Header Failed", ()),
            (ar.reply(200, bytes(big)), False, -107, "New Binary Does Not Fit Flash Size", ()),
            (ar.reply(200, b"\x1f\x00" + img[2:]), False, 10,
             "Update error: ERROR[10]: Magic byte is not 0xE9", ()),
            (ar.reply(200, b"\x1f\x00" + img[2:]), False, 10,
             "Update error: ERROR[10]: Magic byte is wrong, not 0xE9", ("--core", "2.7")),
            (ar.reply(200, img, [("x-MD5", "0" * 32)]), False, 7,
             "Update error: ERROR[7]: MD5 verification failed: expected: %s, calculated: %s" % ("0" * 32, h),
             ()),
            (ar.reply(200, img, [("x-MD5", "abc")]), False, -105, "Wrong MD5", ()),
            (ar.reply(200, img, [("x-MD5", h), ("X-md5", h)]), False, -105, "Wrong MD5", ()),
            (raw("HTTP/1.1 200 OK\nContent-Length: %d\n\n" % L, img[:-1000]), False, 6,
             "Update error: ERROR[6]: Stream Read Timeout", ("--time-scale", "60")),
            (ar.reply(401, reason="Unauthorized"), False, -108, "Unauthorized (401)", ()),
            (ar.reply(401, reason="Unauthorized"), False, -104, "Wrong HTTP Code", ("--core", "2.7")),
            (ar.reply(403, reason="Forbidden"), False, -103, "Forbidden (403)", ()),
            (ar.reply(404, reason="Not Found"), False, -102, "File Not Found (404)", ()),
            (ar.reply(500, reason="Error"), False, -104, "Wrong HTTP Code", ()),
            (ar.reply(302, headers=[("Location", "/elsewhere")], reason="Found"), False, -104,
             "Wrong HTTP Code", ()),
            (ar.reply(307, headers=[("Location", "/elsewhere")], reason="Moved"), False, -104,
             "Wrong HTTP Code", ()),
            (raw("HTTP/1.0 OK\n\n"), False, -7, "HTTP error: no HTTP server", ()),
            (ar.reply(304, reason="Not Modified"), None, 0, "", ()),
        ]
        for i, (answer, ok, err, text, extra) in enumerate(cases):
            srv = ar.ArdServer(first_then_304(answer))
            try:
                rc, j, e = sim(srv, 1, extra)
            finally:
                srv.close()
            dev = j["per_device"][0]
            a = dev["arduino"]
            what = "case %d %r: %r" % (i, answer.data[:60], dev)
            if ok:                                     # updated, restarted, then 304
                assert rc == 0 and dev["booted"] == [V1, "other"] and dev["version"] == V2 and \
                    a["checkins"] == 2, what
            elif ok is None:
                assert rc == 0 and a["last_result"] == "NO_UPDATES" and a["checkins"] == 1, what
            else:
                assert rc == 1 and a["last_result"] == "FAILED" and dev["booted"] == [V1], what
            assert a["last_error"] == err and a["last_error_string"] == text, what


def test_rollout_mode_rewrite():
    """20 dout devices, a dio build: each downloads it once; its next check-in
    reports the MD5 of the image with byte 2 = 3, which the server knows."""
    with tempfile.TemporaryDirectory() as tmp:
        img = ar.write_image(os.path.join(tmp, "v2.bin"), V2, flash_mode="dio")
        variants = ar.mode_md5s(img)
        dout = bytearray(img)
        dout[2] = 3

        def handler(r):
            if r.get("x-ESP8266-sketch-md5") in variants:
                return ar.reply(304, reason="Not Modified")
            return ar.reply(200, img, [("x-MD5", ar.md5(img))])
        srv = ar.ArdServer(handler)
        try:
            rc, j, err = sim(srv, 20, ("--upgrade-to", V2, "--flash-mode", "dout", "--hold", "2",
                                       "--checkin-interval", "2"))
        finally:
            srv.close()
        assert rc == 0 and j["upgraded"] == 20, (rc, j["reasons"], err)
        reqs = srv.taken()
        served = [r for r in reqs if r.get("x-ESP8266-sketch-md5") not in variants]
        assert len(served) == 20, "%d downloads for 20 devices" % len(served)
        after = [r.get("x-ESP8266-sketch-md5") for r in reqs if r.get("x-ESP8266-version") == V2]
        assert after and set(after) == {ar.md5(bytes(dout))}, set(after)
        assert all(r.get("x-ESP8266-sketch-size") == str(len(img)) for r in reqs
                   if r.get("x-ESP8266-version") == V2)


def test_gzip_and_signatures():
    with tempfile.TemporaryDirectory() as tmp:
        img = ar.write_image(os.path.join(tmp, "v2.bin"), V2)
        gz = ar.write_image(os.path.join(tmp, "v2.gz"), V2, extra=("--gzip",))
        key, pub = os.path.join(tmp, "private.key"), os.path.join(tmp, "public.key")
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", pub], check=True,
                       capture_output=True)
        signed = ar.write_image(os.path.join(tmp, "v2.signed"), V2, extra=("--sign-key", key))
        # the trailer is openssl dgst -sha256 -sign's signature + its length (§7.4)
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, os.path.join(tmp, "v2.bin")],
                             check=True, capture_output=True).stdout
        assert signed == img + sig + len(sig).to_bytes(4, "little"), "trailer differs from openssl's"
        legacy = ar.write_image(os.path.join(tmp, "v2.legacy"), V2, extra=("--sign-key", key,
                                                                           "--legacy-sign", "--core", "2.5"))
        sgz = ar.write_image(os.path.join(tmp, "v2.sgz"), V2, extra=("--gzip", "--sign-key", key))
        tampered = bytearray(signed)
        tampered[3000] ^= 0x40
        for body, extra, ok, err in (
                (gz, (), True, 0),
                (signed, ("--pubkey", pub), True, 0),
                (sgz, ("--pubkey", pub), True, 0),
                (legacy, ("--pubkey", pub, "--core", "2.5"), True, 0),
                (signed, ("--pubkey", pub, "--core", "2.5"), False, 12),
                (legacy, ("--pubkey", pub), False, 12),
                (img, ("--pubkey", pub), False, 12),
                (bytes(tampered), ("--pubkey", pub), False, 12),
                (signed, (), True, 0)):              # a device without a verifier takes it
            srv = ar.ArdServer(first_then_304(ar.reply(200, body)))
            try:
                rc, j, e = sim(srv, 1, ("--flash-mode", "dio") + extra)
            finally:
                srv.close()
            dev = j["per_device"][0]
            what = "%s %d bytes: %r" % (extra, len(body), dev)
            if ok:
                assert rc == 0 and dev["booted"] == [V1, "other"] and dev["version"] == V2, what
                # the check-in after: the image itself, never the bytes served
                plain = legacy[:-260] if body is legacy else img   # core 2.5: no CRC words
                assert dev["arduino"]["sketch_md5"] == ar.md5(plain), what
                assert dev["arduino"]["sketch_size"] == len(plain), what
            else:
                assert dev["arduino"]["last_error"] == err, what
                assert dev["arduino"]["last_error_string"] == \
                    "Update error: ERROR[12]: Signature verification failed", what


if __name__ == "__main__":
    for t in (test_request_bytes, test_verdicts, test_rollout_mode_rewrite, test_gzip_and_signatures):
        t()
        print("ok  ", t.__name__)
