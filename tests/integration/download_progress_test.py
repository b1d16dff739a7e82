#!/usr/bin/env python3
"""download_progress_test.py - GET /v1/devices/ID/ shows the device's current
or last firmware download (file, bytes sent, total, state): a quarter of a
6 MiB release file read over a raw socket with a small receive buffer
(downloading), the connection dropped (aborted), then a whole image
(complete); the product's device list carries the same record and
download_bytes sums the completed downloads (the store's ledger)."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import check, make_image, run_tests, wait_for  # noqa: E402

SIZE = 256 * 1024
# Larger than the server's socket send buffer can hold at once (tcp_wmem max:
# 4 MiB by default) plus a 4 KiB receive buffer: reading half of it leaves
# the download in progress.
BIG = 6 << 20


def rom_get(port, key, version, name, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(("GET /v1/device/rom/?action=download_rom&version=%s&filename=%s HTTP/1.1\r\n"
               "Host: x\r\nAuthorization: token %s\r\n\r\n" % (version, name, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        check(b, "connection closed in the header")
        head += b
    check(head.startswith(b"HTTP/1.1 200"), "status %r" % head[:40])
    return s


def device(d, dev_id):
    st, _, j = d.api("GET", "/v1/devices/%d/" % dev_id)
    check(st == 200, "device %d: %d" % (dev_id, st))
    return j["device"]


def test_progress(d):
    p = d.create_product(flash_map=6)
    img1 = make_image(1, 6, "v2.0", SIZE)
    big = os.urandom(BIG)
    d.upload_release(p["id"], "v2.0", files=[("user1.bin", img1),
                                              ("user2.bin", make_image(2, 6, "v2.0", SIZE)),
                                              ("data.bin", big)])
    j = d.create_device(p["id"], name="plug")
    dev, key = j["device"], j["master_device_key"]
    dv = device(d, dev["id"])
    check(dv["download"] is None and dv["download_bytes"] == 0, "no download yet %r" % dv)

    # Half the image, then look while the connection is still open.
    s = rom_get(d.http_port, key, "v2.0", "data.bin", rcvbuf=4096)
    got = 0
    while got < BIG // 4:
        b = s.recv(min(65536, BIG // 4 - got))
        check(b, "closed early at %d" % got)
        got += len(b)
    dl = device(d, dev["id"])["download"]
    check(dl is not None, "download shown")
    check(dl["file"] == "data.bin" and dl["version"] == "v2.0", "file %r" % dl)
    check(dl["total"] == BIG and dl["size"] == BIG and dl["offset"] == 0, "total %r" % dl)
    # Bytes sent may run ahead of bytes read by what the socket buffers hold.
    check(got <= dl["bytes"] < dl["total"], "bytes %d read, %r" % (got, dl))
    check(dl["state"] == "downloading", "state %r" % dl)
    s.close()
    wait_for(lambda: device(d, dev["id"])["download"]["state"] == "aborted", 10,
             "the dropped download to show as aborted")
    dl = device(d, dev["id"])["download"]
    check(got <= dl["bytes"] < dl["total"], "aborted bytes %r" % dl)

    # A whole download: complete, every byte, and the ledger has it.
    s = rom_get(d.http_port, key, "v2.0", "user1.bin")
    body = b""
    while len(body) < len(img1):
        b = s.recv(1 << 20)
        check(b, "closed early at %d" % len(body))
        body += b
    s.close()
    check(body == img1, "image bytes")
    wait_for(lambda: device(d, dev["id"])["download"]["state"] == "complete" and
             device(d, dev["id"])["download"]["file"] == "user1.bin", 10, "complete")
    dv = device(d, dev["id"])
    dl = dv["download"]
    check(dl["bytes"] == dl["total"] == len(img1), "complete bytes %r" % dl)
    wait_for(lambda: device(d, dev["id"])["download_bytes"] >= len(img1), 10, "ledger")
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % p["id"])
    row = [x for x in j["devices"] if x["id"] == dev["id"]][0]
    check(row["download"]["state"] == "complete" and row["download"]["file"] == "user1.bin",
          "list row %r" % row)


if __name__ == "__main__":
    run_tests([test_progress])
