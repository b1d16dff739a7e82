"""sim_esphome_test.py - fota-sim --profile esphome (arduino-ota.md §9)
against a scripted HTTP server: HTTP/1.1 keep-alive with no x-ESP8266
headers (the manifest and the firmware on one connection), the manifest's
version compared as a string (equal: nothing fetched), ota.path joined
relative, from the host, or absolute; the MD5 compared with the digest in
lower case (an upper-case or wrong one is refused, the device keeps its
image); the flash action with md5_url (the first 32 bytes; a shorter file
refused) and a firmware served chunked (ESPHome reads the raw socket)."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_ardserver as ar  # noqa: E402

V1, V2 = "1.3.0", "1.4.0"


def manifest(version, path, md5):
    return json.dumps({"name": "plug", "version": version,
                       "builds": [{"chipFamily": "ESP32", "ota": {"path": "no", "md5": "no"}},
                                  {"chipFamily": "ESP8266", "ota": {"path": path, "md5": md5}}]}).encode()


def sim(srv, n, url, extra=(), scale="10"):
    rc, out, err = ar.run_sim(["--server", "127.0.0.1", "--profile", "esphome", "--devices", str(n),
                               "--url", srv.url(url), "--initial-version", V1, "--time-scale", scale,
                               "--timeout", "40", "--json-devices"] + list(extra), timeout=80)
    return rc, json.loads(out), err


def test_manifest_paths():
    with tempfile.TemporaryDirectory() as tmp:
        img = ar.write_image(os.path.join(tmp, "v2.bin"), V2, 50000)
        for path, fw in (("firmware.bin", "/v1/arduino/K/d/{index}/firmware.bin"),
                         ("/fw/v2.bin", "/fw/v2.bin"),
                         ("http://127.0.0.1:PORT/abs/v2.bin", "/abs/v2.bin")):
            def handler(r, path=path):
                if r.path.endswith("/manifest.json"):
                    p = path.replace("PORT", str(srv.port))
                    return ar.reply(200, manifest(V2, p, ar.md5(img)), keep=True)
                if r.path.endswith(".bin"):
                    return ar.reply(200, img, keep=True)
                return ar.reply(404, reason="Not Found", keep=True)
            srv = ar.ArdServer(handler)
            try:
                rc, j, err = sim(srv, 3, "/v1/arduino/K/d/{index}/manifest.json", ("--upgrade-to", V2))
            finally:
                srv.close()
            assert rc == 0 and j["upgraded"] == 3, (path, j["reasons"], err)
            reqs = srv.taken()
            for i in range(3):
                mine = [r for r in reqs if r.path.startswith("/v1/arduino/K/d/%d/" % i) or
                        (not r.path.startswith("/v1/") and r.conn in
                         {q.conn for q in reqs if q.path == "/v1/arduino/K/d/%d/manifest.json" % i})]
                # the manifest, the firmware, and after the reboot the manifest again
                # (equal version: the device is done)
                assert [r.path for r in mine] == ["/v1/arduino/K/d/%d/manifest.json" % i,
                                                  fw.replace("{index}", str(i)),
                                                  "/v1/arduino/K/d/%d/manifest.json" % i], \
                    (path, [r.line for r in mine])
                # one connection: keep-alive, HTTP/1.1, ESPHome's agent, no x-ESP8266 headers
                assert mine[0].conn == mine[1].conn and mine[1].nth == 1, [(r.conn, r.nth) for r in mine]
                for r in mine:
                    assert r.line.endswith(" HTTP/1.1") and r.get("Connection") == "keep-alive"
                    assert r.get("User-Agent") == "ESPHome/2024.11.0 (https://esphome.io)"
                    assert not [k for k, _ in r.headers if k.lower().startswith("x-esp8266")], r.raw


def test_version_and_md5_rules():
    with tempfile.TemporaryDirectory() as tmp:
        img = ar.write_image(os.path.join(tmp, "v2.bin"), V2, 50000)
        for version, md5, updates, reason in (
                (V1, ar.md5(img), False, None),                     # equal: no update
                (V2, ar.md5(img).upper(), False, "esphome: MD5 mismatch (0x8B)"),
                (V2, "0" * 32, False, "esphome: MD5 mismatch (0x8B)"),
                ("0.9.0", ar.md5(img), True, None)):                # older: still "available"
            def handler(r, version=version, md5=md5):
                if r.path.endswith("manifest.json"):
                    return ar.reply(200, manifest(version, "fw.bin", md5), keep=True)
                return ar.reply(200, img, keep=True)
            srv = ar.ArdServer(handler)
            try:
                rc, j, err = sim(srv, 1, "/m/manifest.json", ("--hold", "2", "--checkin-interval", "600"))
            finally:
                srv.close()
            dev = j["per_device"][0]
            fetched = [r.path for r in srv.taken() if r.path == "/m/fw.bin"]
            assert bool(fetched) == updates or (not updates and reason and len(fetched) == 1), \
                (version, md5, fetched)
            assert dev["version"] == (V2 if updates else V1), (version, dev)
            if reason:
                assert dev["reason"] == reason or reason in json.dumps(j["reasons"]), (version, j)


def test_flash_action():
    with tempfile.TemporaryDirectory() as tmp:
        img = ar.write_image(os.path.join(tmp, "v2.bin"), V2, 50000)
        h = ar.md5(img)
        for md5file, chunked, ok, reason in (
                (h + "  firmware.bin\n", False, True, None),
                (h[:20], False, False, "esphome: MD5 invalid (0x10)"),
                (h, True, False, "esphome: connection error (0x12)")):
            def handler(r, md5file=md5file, chunked=chunked):
                if r.path == "/f/firmware.md5":
                    return ar.reply(200, md5file.encode(), keep=True)
                if chunked:
                    body = b"%x\r\n" % len(img) + img + b"\r\n0\r\n\r\n"
                    return ar.Reply(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
                return ar.reply(200, img, keep=True)
            srv = ar.ArdServer(handler)
            try:
                rc, j, err = sim(srv, 1, "/f/firmware.bin",
                                 ("--md5-url", srv.url("/f/firmware.md5"), "--upgrade-to", V2,
                                  "--max-attempts", "1"))
            finally:
                srv.close()
            dev = j["per_device"][0]
            assert (rc == 0) == ok and dev["version"] == (V2 if ok else V1), (md5file, chunked, dev)
            if reason:
                assert reason in json.dumps(j["reasons"]), (md5file, j["reasons"])


if __name__ == "__main__":
    for t in (test_manifest_paths, test_version_and_md5_rules, test_flash_action):
        t()
        print("ok  ", t.__name__)
