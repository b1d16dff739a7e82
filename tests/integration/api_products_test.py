"""api_products_test.py - the REST API: products, releases, devices, keys,
messages, device-facing endpoints and the seed's curl line, against the real
fotad (SQLite store) on loopback."""
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, make_image, multipart, recv_to_close, run_tests  # noqa: E402


def test_ping_and_errors(d):
    st, h, j = d.api("GET", "/v1/ping/", key=None)
    check(st == 200 and isinstance(j["epoch"], int) and j["epoch"] > 1_600_000_000, "ping %r" % j)
    st, h, body = d.request("GET", "/v1/ping/")
    check(h.get("content-length") == str(len(body)) and body.endswith(b"}\n"),
          "Content-Length %r for a %d-byte body" % (h.get("content-length"), len(body)))
    st, h, body = d.request("HEAD", "/v1/ping/")
    check(st == 200 and body == b"" and int(h["content-length"]) > 0, "HEAD: no body, length set")
    st, _, j = d.api("GET", "/v1/nothing/here/")
    check(st == 404 and "message" in j, "unknown endpoint 404 %r" % j)
    st, _, j = d.api("GET", "/v1/products/", key=None)
    check(st == 401, "no key 401 %r" % j)
    st, _, j = d.api("GET", "/v1/products/", key="0" * 40)
    check(st == 401, "wrong key 401")
    st, _, j = d.api("GET", "/v1/products/", key="short")
    check(st == 401, "malformed key 401")
    st, _, j = d.request("GET", "/v1/products/", headers={"Authorization": "Token " + d.admin_key})[0:3]
    check(st == 200, "capital Token accepted")
    st, _, j = d.api("DELETE", "/v1/products/")
    check(st == 405, "method not allowed 405")


def test_products(d):
    st, _, j = d.api("POST", "/v1/products/", {"name": "humiture", "serial": "f3ec8e37",
                                               "description": "desc/with/slashes",
                                               "flash_map": 2})
    check(st == 200, "create %r" % j)
    p = j["product"]
    check(p["name"] == "humiture" and p["serial"] == "f3ec8e37" and p["flash_map"] == 2, "%r" % p)
    check(len(j["product_key"]) == 40, "product key returned")
    st, _, j = d.api("POST", "/v1/products/", {"name": "humiture"})
    check(st == 409, "duplicate product name 409: %d" % st)
    st, _, j = d.api("POST", "/v1/products/", b"{not json", headers={"Content-Type": "application/json"})
    check(st == 400 and "malformed JSON" in j["message"], "malformed JSON 400 %r" % j)
    st, _, j = d.api("POST", "/v1/products/", {"serial": "x"})
    check(st == 400, "missing name 400")
    st, _, j = d.api("POST", "/v1/products/", {"name": "x", "flash_map": 7})
    check(st == 422, "bad flash map 422 %r" % j)
    st, _, j = d.api("POST", "/v1/products/", [1, 2])
    check(st == 400, "array body 400")
    d.create_device(p["id"])
    st, _, j = d.api("GET", "/v1/products/")
    check(st == 200 and len(j["products"]) == 1, "list %r" % j)
    q = j["products"][0]
    check(q["devices_total"] == 1 and q["devices_activated"] == 0, "counts %r" % q)
    st, _, j = d.api("GET", "/v1/products/%d/" % p["id"])
    check(st == 200 and j["product"]["id"] == p["id"], "get")
    st, _, j = d.api("GET", "/v1/products/999/")
    check(st == 404, "unknown product 404")
    st, _, j = d.api("GET", "/v1/products/abc/")
    check(st == 404, "non-numeric id 404")
    # Keys of other roles cannot administer.
    dev = d.create_device(p["id"])
    st, _, j = d.api("GET", "/v1/products/", key=dev["owner_key"])
    check(st == 403, "owner key on admin endpoint 403")


def test_release_upload_and_current(d):
    p = d.create_product(flash_map=2)
    dev = d.create_device(p["id"], name="device-name-00000000")
    j = d.upload_release(p["id"], "v1.0", changelog="first")
    rom = j["rom"]
    check(rom["version"] == "v1.0" and len(rom["files"]) == 2, "rom %r" % rom)
    names = sorted(f["name"] for f in rom["files"])
    check(names == ["user1.bin", "user2.bin"], "file names %r" % names)
    for f in rom["files"]:
        check(len(f["sha256"]) == 64 and f["size"] > 0 and f["slot"] in (1, 2), "file %r" % f)
        blob = os.path.join(d.data_dir, "blobs", "sha256", f["sha256"][:2], f["sha256"])
        check(os.path.exists(blob), "blob stored at %s" % blob)
    # One release, and its stored files byte for byte (GET and HEAD).
    st, _, j = d.api("GET", "/v1/products/%d/roms/v1.0/" % p["id"])
    check(st == 200 and j["rom"]["version"] == "v1.0", "get one %r" % j)
    st, h, data = d.request("GET", "/v1/products/%d/roms/v1.0/files/user2.bin" % p["id"],
                            key=d.admin_key)
    check(st == 200 and data == make_image(2, 2, "v1.0"), "stored user2.bin is the upload")
    check(h["content-type"] == "application/octet-stream" and
          h["content-length"] == str(len(data)), "file headers %r" % h)
    st, h, body = d.request("HEAD", "/v1/products/%d/roms/v1.0/files/user2.bin" % p["id"],
                            key=d.admin_key)
    check(st == 200 and body == b"" and h["content-length"] == str(len(data)), "HEAD file")
    st, _, j = d.api("GET", "/v1/products/%d/roms/v1.0/files/nope.bin" % p["id"])
    check(st == 404, "unknown file 404")
    st, _, j = d.api("GET", "/v1/products/%d/roms/v7/" % p["id"])
    check(st == 404, "unknown release 404")
    # Duplicate version: 409 and nothing new.
    d.upload_release(p["id"], "v1.0", expect=409)
    d.upload_release(p["id"], "v1.1", changelog="second")
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % p["id"])
    check(st == 200 and [r["version"] for r in j["roms"]] == ["v1.1", "v1.0"], "list %r" % j)
    # Device reports v1.0 through the store? It has no version yet: no message.
    st, _, j = d.api("POST", "/v1/products/%d/roms/v1.1/current" % p["id"])
    check(st == 200 and j["rom"]["current"] is True and j["notified"] == 0, "current %r" % j)
    st, _, j = d.api("GET", "/v1/products/%d/" % p["id"])
    check(j["product"]["current_version"] == "v1.1", "current version %r" % j)
    st, _, j = d.api("POST", "/v1/products/%d/roms/v9.9/current" % p["id"])
    check(st == 404, "unknown version 404")
    # Tunnelled PUT works too.
    st, _, j = d.api("POST", "/v1/products/%d/roms/v1.0/current?method=PUT" % p["id"])
    check(st == 200, "tunnelled PUT %r" % j)
    # Device-facing listing.
    st, _, j = d.api("GET", "/v1/device/rom/", key=dev["master_device_key"])
    check(st == 200 and j["recommended_rom_version"] == "v1.0" and len(j["productRoms"]) == 2,
          "device rom %r" % j)
    st, _, j = d.api("GET", "/v1/device/rom/?is_format_simple=true", key=dev["owner_key"])
    check(st == 200 and {"life_cycle": "release", "recommended": True, "version": "v1.0"}
          in j["productRoms"], "simple %r" % j)


def test_release_refusals(d):
    p = d.create_product(flash_map=2)
    base = "/v1/products/%d/roms/" % p["id"]

    def count_blobs():
        n = 0
        for _, _, files in os.walk(os.path.join(d.data_dir, "blobs")):
            n += len(files)
        return n

    def roms():
        return d.api("GET", base)[2]["roms"]
    u1, u2 = make_image(1), make_image(2)
    # Wrong slot: user2 content named user1.bin -> 422 naming the file.
    j = d.upload_release(p["id"], "v1.0", files=[("user1.bin", u2), ("user2.bin", u2)],
                         expect=422)
    check("user1.bin" in j["message"], "refusal names the file: %r" % j)
    # Missing user2.bin.
    j = d.upload_release(p["id"], "v1.0", files=[("user1.bin", u1)], expect=422)
    check("user2.bin" in j["message"], "missing user2 named: %r" % j)
    # HTML page instead of an image.
    j = d.upload_release(p["id"], "v1.0", files=[("user1.bin", b"<html>nope</html>"),
                                                 ("user2.bin", u2)], expect=422)
    check("user1.bin" in j["message"], "html refusal %r" % j)
    # Image for another flash map (map 6 layout on a map 2 product).
    j = d.upload_release(p["id"], "v1.0", files=[("user1.bin", make_image(1, 6)),
                                                 ("user2.bin", make_image(2, 6))], expect=422)
    # Bad version strings.
    for bad in ("", "1.0 beta", "x" * 40, "../../etc", "v1..2"):
        ct, body = multipart({"version": bad}, [("f", "user1.bin", u1), ("f", "user2.bin", u2)])
        st, _, j = d.api("POST", base, body, headers={"Content-Type": ct})
        check(st in (400, 422), "bad version %r: %d" % (bad, st))
    # Bad file name.
    ct, body = multipart({"version": "v2"}, [("f", "../user1.bin", u1), ("f", "user2.bin", u2)])
    st, _, j = d.api("POST", base, body, headers={"Content-Type": ct})
    check(st == 422, "bad file name %d %r" % (st, j))
    # Not multipart / malformed / truncated.
    st, _, j = d.api("POST", base, b"version=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
    check(st == 400, "not multipart 400")
    ct, body = multipart({"version": "v3"}, [("f", "user1.bin", u1), ("f", "user2.bin", u2)])
    st, _, j = d.api("POST", base, body[: len(body) // 2], headers={"Content-Type": ct})
    check(st == 400 and "truncated" in j["message"], "truncated 400 %r" % j)
    st, _, j = d.api("POST", base, b"garbage without boundary\r\n",
                     headers={"Content-Type": "multipart/form-data; boundary=zzz"})
    check(st == 400, "malformed multipart 400 %r" % j)
    # Too many files.
    files = [("f", "file%d.bin" % i, b"x") for i in range(11)]
    ct, body = multipart({"version": "v4"}, files)
    st, _, j = d.api("POST", base, body, headers={"Content-Type": ct})
    check(st == 422, "11 files 422 %r" % j)
    check(roms() == [] and count_blobs() == 0, "no release row and no blob after refusals")
    # Unknown product.
    ct, body = multipart({"version": "v1"}, [("f", "user1.bin", u1), ("f", "user2.bin", u2)])
    st, _, j = d.api("POST", "/v1/products/4242/roms/", body, headers={"Content-Type": ct})
    check(st == 404, "unknown product 404")
    # Duplicate version leaves no extra blob.
    d.upload_release(p["id"], "v1.0")
    n = count_blobs()
    d.upload_release(p["id"], "v1.0", files=[("user1.bin", make_image(1, 2, None, None, 7)),
                                             ("user2.bin", make_image(2, 2, None, None, 7))],
                     expect=409)
    check(count_blobs() == n, "409 leaves no blob")


def test_concurrent_uploads(d):
    """Uploads run one after another on a worker thread: parallel clients all
    get an answer, a version uploaded twice at once is 200 once and 409 once,
    and every file row names a complete blob."""
    import threading
    p = d.create_product()
    jobs = [("v3.0", 1), ("v3.1", 2), ("v3.2", 3), ("v3.2", 4)]
    results = {}

    def up(i, version, seed):
        ct, body = multipart({"version": version},
                             [("f", "user1.bin", make_image(1, 2, None, 32 * 1024, seed)),
                              ("f", "user2.bin", make_image(2, 2, None, 32 * 1024, seed))])
        results[i] = d.request("POST", "/v1/products/%d/roms/" % p["id"], body,
                               headers={"Content-Type": ct}, key=d.admin_key)[0]
    for i, (v, seed) in enumerate(jobs):
        make_image(1, 2, None, 32 * 1024, seed)
        make_image(2, 2, None, 32 * 1024, seed)
    threads = [threading.Thread(target=up, args=(i, v, s)) for i, (v, s) in enumerate(jobs)]
    for t in threads:
        t.start()
    st, _, j = d.api("GET", "/v1/ping/")
    check(st == 200, "ping while uploading")
    for t in threads:
        t.join(30)
    check(sorted(results.values()) == [200, 200, 200, 409], "statuses %r" % results)
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % p["id"])
    check(sorted(r["version"] for r in j["roms"]) == ["v3.0", "v3.1", "v3.2"], "roms %r" % j)
    for rom in j["roms"]:
        for f in rom["files"]:
            path = os.path.join(d.data_dir, "blobs", "sha256", f["sha256"][:2], f["sha256"])
            check(os.path.exists(path) and os.path.getsize(path) == f["size"], "blob %r" % f)


def test_oversized_body():
    with Fotad(extra=["--max-upload", "64K"]) as d:
        p = d.create_product()
        big = os.urandom(70 * 1024)
        ct, body = multipart({"version": "v1"}, [("f", "user1.bin", big)])
        st, h, data = d.request("POST", "/v1/products/%d/roms/" % p["id"], body,
                                headers={"Content-Type": ct}, key=d.admin_key)
        check(st == 413, "oversized body 413, got %d" % st)
        # Larger body: the client may still be sending when fotad decides; it
        # must still read the 413 (fotad uses evhttp's lingering close).
        ct, body = multipart({"version": "v1"}, [("f", "user1.bin", os.urandom(4 << 20))])
        st, h, data = d.request("POST", "/v1/products/%d/roms/" % p["id"], body,
                                headers={"Content-Type": ct}, key=d.admin_key)
        check(st == 413, "large oversized body 413, got %d" % st)
        st, _, j = d.api("GET", "/v1/ping/")
        check(st == 200, "still serving after 413")


def raw_exchange(port, head, timeout):
    """Sends `head` on a fresh socket and reads the whole reply (fotad closes
    the connection after these errors). socket.timeout if none arrives."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(head)
        data = recv_to_close(s)
    finally:
        s.close()
    hdr, _, body = data.partition(b"\r\n\r\n")
    status = int(hdr.split(b" ", 2)[1]) if hdr.startswith(b"HTTP/1.") else 0
    ctype = [l.split(b":", 1)[1].strip() for l in hdr.split(b"\r\n")
             if l.lower().startswith(b"content-type:")]
    return status, ctype, body


def test_http_layer_errors_json():
    # http_timeout 120 s: a reply that waits for it would hit the 10 s socket
    # timeout below instead (the bug: no answer to a huge declared body).
    with Fotad(extra=["--max-upload", "64K", "--http-timeout", "120"]) as d:
        p = d.create_product()
        path = "/v1/products/%d/roms/" % p["id"]
        for cl, want in (("20000000", 413), ("99000000000000000000", 413), ("70000", 413),
                         ("-5", 400), ("12abc", 400)):
            head = ("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: token %s\r\n"
                    "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: %s\r\n\r\n"
                    % (path, d.admin_key, cl)).encode()
            st, ctype, body = raw_exchange(d.http_port, head, 10.0)
            check(st == want, "Content-Length %s: status %d" % (cl, st))
            check(ctype == [b"application/json"], "Content-Length %s: type %r" % (cl, ctype))
            j = json.loads(body)
            check(j["status"] == want and j["message"], "Content-Length %s: %r" % (cl, j))
            if want == 413:
                check("max_upload (65536 bytes)" in j["message"], "413 message %r" % j)
        # Headers over the limit, a broken request line, an unknown method.
        for head, want in ((b"GET /v1/ping/ HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 400),
                           (b"GARBAGE\r\n\r\n", 400),
                           (b"PATCH /v1/ping/ HTTP/1.1\r\nHost: x\r\n\r\n", 501)):
            st, ctype, body = raw_exchange(d.http_port, head, 10.0)
            check(st == want and ctype == [b"application/json"], "%r: %d %r" % (head[:20], st, ctype))
            check(json.loads(body)["status"] == want, "%r body %r" % (head[:20], body))
        st, _, j = d.api("GET", "/v1/ping/")
        check(st == 200, "still serving")


def test_devices_and_keys(d):
    p = d.create_product(flash_map=2)
    p2 = d.create_product(flash_map=6)
    j = d.create_device(p["id"], name="plug-1", bssid="18:FE:34:97:F3:CD")
    dev = j["device"]
    mk, ok = j["master_device_key"], j["owner_key"]
    check(len(mk) == 40 and len(ok) == 40 and mk != ok, "keys")
    check(dev["bssid"] == "18:fe:34:97:f3:cd" and dev["name"] == "plug-1", "device %r" % dev)
    st, _, j = d.api("POST", "/v1/products/%d/devices/" % p["id"], {"bssid": "nope"})
    check(st == 422, "bad bssid 422")
    st, _, j = d.api("POST", "/v1/products/777/devices/", {})
    check(st == 404, "device in unknown product 404")
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % p["id"])
    check(st == 200 and len(j["devices"]) == 1, "list %r" % j)
    st, _, j = d.api("GET", "/v1/devices/%d/" % dev["id"])
    check(st == 200 and j["device"]["id"] == dev["id"], "get by admin")
    st, _, j = d.api("GET", "/v1/devices/%d/" % dev["id"], key=ok)
    check(st == 200, "get by own owner key")
    other = d.create_device(p2["id"])
    st, _, j = d.api("GET", "/v1/devices/%d/" % dev["id"], key=other["owner_key"])
    check(st == 403, "foreign device key 403")
    st, _, j = d.api("GET", "/v1/devices/9999/")
    check(st == 404, "unknown device 404")
    st, _, j = d.api("GET", "/v1/device/", key=mk)
    check(st == 200 and j["device"]["id"] == dev["id"], "GET /v1/device/ %r" % j)
    st, _, j = d.api("GET", "/v1/device/")
    check(st == 403, "admin key on /v1/device/ 403")
    st, _, j = d.api("POST", "/v1/device/?method=PUT", {"device": {"name": "renamed"}}, key=ok)
    check(st == 200, "rename %r" % j)
    st, _, j = d.api("GET", "/v1/device/", key=ok)
    check(j["device"]["name"] == "renamed", "renamed")
    # master_device_key.bin: the 4 KiB sector, key at 0, token at 40, flag at 80.
    st, h, data = d.api("GET", "/v1/devices/%d/master_device_key.bin" % dev["id"], raw=True)
    check(st == 200 and len(data) == 4096, "bin %d %d" % (st, len(data)))
    check(data[:40] == mk.encode(), "devkey at offset 0")
    check(all(c in b"0123456789abcdef" for c in data[40:80]), "token at 40")
    check(data[80] == 0 and data[81:] == b"\xff" * (4096 - 81), "activeflag 0, rest erased")
    check(h.get("x-fota-flash-address") == "0x7E000", "flash address %r" % h)
    st, _, j = d.api("GET", "/v1/devices/%d/master_device_key.bin" % dev["id"], key=ok)
    check(st == 403, "owner key cannot fetch the master key")
    # Rotation: new keys work, the old ones stop at once, the .bin follows.
    st, _, j = d.api("POST", "/v1/devices/%d/rotate_keys" % dev["id"])
    check(st == 200 and j["device"]["key_generation"] == 1, "rotate %r" % j)
    mk2, ok2 = j["master_device_key"], j["owner_key"]
    check(mk2 != mk and ok2 != ok, "new keys")
    st, _, _ = d.api("GET", "/v1/device/", key=mk)
    check(st == 401, "old master key refused")
    st, _, _ = d.api("GET", "/v1/device/", key=ok)
    check(st == 401, "old owner key refused")
    st, _, j = d.api("GET", "/v1/device/", key=ok2)
    check(st == 200, "new owner key works")
    st, _, data = d.api("GET", "/v1/devices/%d/master_device_key.bin" % dev["id"], raw=True)
    check(data[:40] == mk2.encode(), "bin has the new key")
    st, _, j = d.api("POST", "/v1/devices/%d/rotate_keys" % dev["id"], key=ok2)
    check(st == 403, "owner cannot rotate")
    mk, ok = mk2, ok2
    # Keys survive a restart (derived from DATA/secret.key, hashes in the DB).
    d.stop()
    d.start()
    st, _, j = d.api("GET", "/v1/device/", key=mk)
    check(st == 200, "master key still valid after restart")
    st, h, data2 = d.api("GET", "/v1/devices/%d/master_device_key.bin" % dev["id"], raw=True)
    check(data2 == data, "same sector after restart")


def activate(d, master_key, rom_version):
    """Activates a device on the device channel as stock IoT_Demo firmware does
    (D1 frame of espressif-protocol §2.3) so it reports rom_version."""
    s = socket.create_connection(("127.0.0.1", d.ports["device"]), timeout=10)
    try:
        s.sendall(('{"nonce": 12345,"path": "/v1/device/activate/", "method": "POST", "body": '
                   '{"encrypt_method": "PLAIN", "token": "%s", "bssid": "18:fe:34:97:f3:cd",'
                   '"rom_version":"%s"}, "meta": {"Authorization": "token %s"}}\n'
                   % ("0" * 40, rom_version, master_key)).encode())
        buf = b""
        while b"\n" not in buf:
            c = s.recv(4096)
            check(c, "device channel closed: %r" % buf)
            buf += c
        check(b'"activate_status": 1' in buf, "activated: %r" % buf)
    finally:
        s.close()


def test_update_available_messages(d):
    check("device" in d.ports, "fotad opened no device channel port: %s" % d.log_text()[-2000:])
    p = d.create_product()
    old = d.create_device(p["id"], name="device-name-00000000")
    new = d.create_device(p["id"], name="device-name-11111111")
    quiet = d.create_device(p["id"], name="never-seen")
    activate(d, old["master_device_key"], "v1.0")
    activate(d, new["master_device_key"], "v1.1")
    st, _, j = d.api("GET", "/v1/devices/%d/" % old["device"]["id"])
    check(j["device"]["rom_version"] == "v1.0" and j["device"]["activated"], "activated %r" % j)
    d.upload_release(p["id"], "v1.1")
    st, _, j = d.api("POST", "/v1/products/%d/roms/v1.1/current" % p["id"])
    check(st == 200 and j["notified"] == 1, "one older device notified: %r" % j)
    st, _, j = d.api("GET", "/v1/messages/?product_id=%d" % p["id"])
    ups = [m for m in j["messages"] if m["action"] == "rom_update_available"]
    check(len(ups) == 1 and ups[0]["device_id"] == old["device"]["id"], "message %r" % ups)
    b = ups[0]["body"]
    check(b["device"] == "device-name-00000000" and b["version"] == "v1.1" and
          b["from_version"] == "v1.0" and b["text_zh"] == "设备 device-name-00000000 有版本 v1.1 更新",
          "body %r" % b)
    check(quiet["device"]["id"] not in [m["device_id"] for m in ups], "unknown version skipped")
    st, _, j = d.api("GET", "/v1/products/%d/" % p["id"])
    check(j["product"]["devices_activated"] == 2 and j["product"]["devices_total"] == 3,
          "activated/total %r" % j["product"])


def test_rpc_and_curl(d):
    p = d.create_product()
    j = d.create_device(p["id"])
    dev, ok = j["device"], j["owner_key"]
    d.upload_release(p["id"], "v1.1")
    # The seed's curl line, verbatim apart from host and key.
    url = "http://127.0.0.1:%d/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade&version=v1.1" % d.http_port
    out = subprocess.run(["curl", "-sS", "-X", "GET", "-H", "Content-Type:application/json", "-H",
                          "Authorization: token " + ok, url], capture_output=True, timeout=20)
    check(out.returncode == 0, "curl failed: %r" % out.stderr)
    j = json.loads(out.stdout)
    # 202: the device has never connected, the command is queued (200 once delivered).
    check(j["status"] == 202 and j["command"]["action"] == "sys_upgrade" and
          j["command"]["params"] == {"version": "v1.1"} and j["command"]["state"] == "queued",
          "curl sys_upgrade %r" % j)
    check(0 < j["nonce"] < 2**31, "nonce 31-bit")
    url = "http://127.0.0.1:%d/v1/device/rpc/?deliver_to_device=true&action=sys_reboot" % d.http_port
    out = subprocess.run(["curl", "-sS", "-X", "GET", "-H", "Content-Type:application/json", "-H",
                          "Authorization: token " + ok, url], capture_output=True, timeout=20)
    check(out.returncode == 0, "curl failed: %r" % out.stderr)
    j = json.loads(out.stdout)
    check(j["status"] == 202 and j["command"]["action"] == "sys_reboot", "reboot %r" % j)
    # Admin needs device_id=.
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_reboot")
    check(st == 400, "admin without device_id 400")
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_reboot&device_id=%d" % dev["id"])
    check(st == 202, "admin with device_id %r" % j)
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_reboot&device_id=999")
    check(st == 404, "admin unknown device 404")
    other = d.create_device(p["id"])
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_reboot&device_id=%d" % dev["id"],
                     key=other["owner_key"])
    check(st == 403, "foreign device 403")
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade&version=v9.9", key=ok)
    check(st == 404, "unknown version 404")
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade", key=ok)
    check(st == 400, "missing version 400")
    st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true", key=ok)
    check(st == 400, "missing action 400")
    # The command history, newest first.
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev["id"])
    acts = [c["action"] for c in j["commands"]]
    check(st == 200 and acts[:3] == ["sys_reboot", "sys_reboot", "sys_upgrade"], "commands %r" % acts)
    check(all(c["device_id"] == dev["id"] and c["nonce"] > 0 for c in j["commands"]), "rows")
    st, _, j = d.api("GET", "/v1/devices/%d/commands/?limit=1" % dev["id"], key=ok)
    check(st == 200 and len(j["commands"]) == 1, "own key, limit %r" % j)
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev["id"], key=other["owner_key"])
    check(st == 403, "foreign key 403")


def test_messages(d):
    p = d.create_product()
    dev = d.create_device(p["id"])
    d.upload_release(p["id"], "v1.0")
    d.upload_release(p["id"], "v1.1")
    st, _, j = d.api("GET", "/v1/messages/?product_id=%d" % p["id"])
    check(st == 200 and [m["action"] for m in j["messages"]] == ["rom_released", "rom_released"],
          "messages %r" % j)
    check(j["messages"][0]["id"] > j["messages"][1]["id"], "newest first")
    st, _, j = d.api("GET", "/v1/messages/?product_id=%d&limit=1" % p["id"])
    check(len(j["messages"]) == 1 and j["next_before"], "paged %r" % j)
    st, _, j2 = d.api("GET", "/v1/messages/?product_id=%d&limit=1&before=%d" % (p["id"], j["next_before"]))
    check(len(j2["messages"]) == 1 and j2["messages"][0]["id"] < j["messages"][0]["id"], "page 2")
    st, _, j = d.api("GET", "/v1/messages/?product_id=999")
    check(st == 404, "unknown product filter 404")
    st, _, j = d.api("GET", "/v1/messages/?limit=0")
    check(st == 400, "bad limit 400")
    st, _, j = d.api("GET", "/v1/messages/", key=dev["owner_key"])
    check(st == 200 and j["messages"] == [], "device sees only its own %r" % j)


def test_follow(d):
    import http.client
    p = d.create_product()
    conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
    conn.request("GET", "/v1/messages/?follow=true&product_id=%d" % p["id"],
                 headers={"Authorization": "token " + d.admin_key})
    resp = conn.getresponse()
    check(resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream", "sse")
    check(resp.readline().startswith(b": follow"), "opening comment")
    resp.readline()
    d.upload_release(p["id"], "v2.0")
    line = b""
    while not line.startswith(b"data: "):
        line = resp.readline()
        check(line != b"", "stream ended early")
    m = json.loads(line[6:])
    check(m["action"] == "rom_released" and m["body"]["version"] == "v2.0", "event %r" % m)
    conn.close()


def test_follow_replay(d):
    # Last-Event-ID: the messages after it are replayed oldest first, then the live ones,
    # each once.
    import http.client
    p = d.create_product()
    for v in ("v3.0", "v3.1", "v3.2"):
        d.upload_release(p["id"], v)
    st, _, j = d.api("GET", "/v1/messages/?product_id=%d" % p["id"])
    ids = sorted(m["id"] for m in j["messages"])
    check(st == 200 and len(ids) == 3, "three messages %r" % j)
    conn = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
    conn.request("GET", "/v1/messages/?follow=true&product_id=%d" % p["id"],
                 headers={"Authorization": "token " + d.admin_key, "Last-Event-ID": str(ids[0])})
    resp = conn.getresponse()
    check(resp.status == 200 and resp.getheader("Content-Type") == "text/event-stream", "sse")
    check(resp.readline().startswith(b": follow"), "opening comment")
    d.upload_release(p["id"], "v3.3")
    seen = []
    while len(seen) < 3:
        line = resp.readline()
        check(line != b"", "stream ended early after %r" % seen)
        if line.startswith(b"data: "):
            m = json.loads(line[6:])
            seen.append((m["id"], m["body"]["version"]))
    check([v for _, v in seen] == ["v3.1", "v3.2", "v3.3"], "replay, then live: %r" % seen)
    check([i for i, _ in seen][:2] == ids[1:], "replayed ids %r of %r" % (seen, ids))
    # nothing more: a repeat would come before this upload's event
    d.upload_release(p["id"], "v3.4")
    line = b""
    while not line.startswith(b"data: "):
        line = resp.readline()
        check(line != b"", "stream ended early")
    check(json.loads(line[6:])["body"]["version"] == "v3.4", "no event twice: %r" % line)
    conn.close()


if __name__ == "__main__":
    run_tests([test_ping_and_errors, test_products, test_release_upload_and_current,
               test_release_refusals, test_concurrent_uploads, test_oversized_body, test_http_layer_errors_json,
               test_devices_and_keys,
               test_update_available_messages, test_rpc_and_curl, test_messages, test_follow,
               test_follow_replay])
