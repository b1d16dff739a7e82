#!/usr/bin/env python3
"""api_delete_test.py - deletion against the real fotad: a release (409 while
current with devices or pushed by a running bulk upgrade; its blob leaves
DATA/blobs with the last release naming it; a download in flight finishes), a
device (keys refused at once on the API, the ROM download and the device
channel; its live connection dropped; an RPC waiting for it answered 410; its
bulk-upgrade members end as "deleted") and a product (409 while in use). 404
for unknown ids; the daemon keeps serving."""
import hashlib
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import check, make_image, recv_to_close, run_tests, wait_for  # noqa: E402
from devchan_util import StockDevice, first_frame, run_in_thread  # noqa: E402


def blob_path(d, sha):
    return os.path.join(d.data_dir, "blobs", "sha256", sha[:2], sha)


def versions(d, pid):
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % pid)
    check(st == 200, "list roms %d %r" % (st, j))
    return sorted(r["version"] for r in j["roms"])


def rom_url(version, name):
    return "/v1/device/rom/?action=download_rom&version=%s&filename=%s" % (version, name)


def test_release_delete(d):
    p = d.create_product()
    pid = p["id"]
    u1 = make_image(1, 2, "v1.0")
    d.upload_release(pid, "v1.0", [("user1.bin", u1), ("user2.bin", make_image(2, 2, "v1.0"))])
    # v1.1 shares user1.bin's bytes with v1.0 (one blob), has its own user2.bin
    d.upload_release(pid, "v1.1", [("user1.bin", u1), ("user2.bin", make_image(2, 2, "v1.1"))])
    st, _, j = d.api("POST", "/v1/products/%d/roms/v1.1/current" % pid)
    check(st == 200, "set current %d %r" % (st, j))
    dev = d.create_device(pid, name="plug")
    st, _, old = d.api("GET", "/v1/products/%d/roms/v1.0/" % pid)
    shared, lone = old["rom"]["files"][0]["sha256"], old["rom"]["files"][1]["sha256"]
    check(os.path.exists(blob_path(d, shared)) and os.path.exists(blob_path(d, lone)), "blobs")

    # the current release of a product with devices: 409, nothing removed
    st, _, j = d.api("DELETE", "/v1/products/%d/roms/v1.1/" % pid)
    check(st == 409 and "current" in j["message"], "delete current %d %r" % (st, j))
    check(versions(d, pid) == ["v1.0", "v1.1"], "both still listed")
    # not admin: 401 / 403
    st, _, _ = d.api("DELETE", "/v1/products/%d/roms/v1.0/" % pid, key=None)
    check(st == 401, "no key %d" % st)
    st, _, _ = d.api("DELETE", "/v1/products/%d/roms/v1.0/" % pid, key=dev["owner_key"])
    check(st == 403, "owner key %d" % st)

    st, _, j = d.api("DELETE", "/v1/products/%d/roms/v1.0/" % pid)
    check(st == 200 and j["rom"]["version"] == "v1.0", "delete v1.0 %d %r" % (st, j))
    check(j["blobs_removed"] == [lone] and j["blobs_kept"] == [shared], "blobs %r" % j)
    check(not os.path.exists(blob_path(d, lone)), "lone blob still on disk")
    check(os.path.exists(blob_path(d, shared)), "shared blob removed while v1.1 uses it")
    check(versions(d, pid) == ["v1.1"], "listing %r" % versions(d, pid))
    st, _, _ = d.api("GET", "/v1/products/%d/roms/v1.0/" % pid)
    check(st == 404, "get deleted %d" % st)
    st, _, _ = d.api("DELETE", "/v1/products/%d/roms/v1.0/" % pid)
    check(st == 404, "delete twice %d" % st)
    st, _, _ = d.request("GET", rom_url("v1.0", "user2.bin"), key=dev["master_device_key"])
    check(st == 404, "download of a deleted release %d" % st)
    st, _, body = d.request("GET", rom_url("v1.1", "user1.bin"), key=dev["master_device_key"])
    check(st == 200 and body == u1, "the shared file still downloads (%d)" % st)

    # 404s: unknown product, unknown version
    st, _, _ = d.api("DELETE", "/v1/products/999999/roms/v1.1/")
    check(st == 404, "unknown product %d" % st)
    st, _, _ = d.api("DELETE", "/v1/products/%d/roms/v9.9/" % pid)
    check(st == 404, "unknown version %d" % st)

    # POST ?method=DELETE; the last release naming the shared blob goes
    d.upload_release(pid, "v1.2")
    d.api("POST", "/v1/products/%d/roms/v1.2/current" % pid)
    st, _, j = d.api("POST", "/v1/products/%d/roms/v1.1/?method=DELETE" % pid)
    check(st == 200 and shared in j["blobs_removed"], "tunnelled delete %d %r" % (st, j))
    check(not os.path.exists(blob_path(d, shared)), "shared blob left after its last release")
    check(versions(d, pid) == ["v1.2"], "listing %r" % versions(d, pid))
    st, _, _ = d.api("GET", "/v1/ping/")
    check(st == 200, "still serving")


def test_inflight_download(d):
    """A download that started before the delete gets every byte."""
    pid = d.create_product()["id"]
    big = make_image(2, 4, "v2.0", size=400000, seed=3)
    d.upload_release(pid, "v2.0", [("user1.bin", make_image(1, 4, "v2.0")), ("user2.bin", big)],
                     flash_map=4)
    dev = d.create_device(pid)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # the server cannot send it all
    s.settimeout(10)
    s.connect(("127.0.0.1", d.http_port))
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: token %s\r\nConnection: close\r\n\r\n"
               % (rom_url("v2.0", "user2.bin"), dev["master_device_key"])).encode())
    got = s.recv(2048)
    check(got.startswith(b"HTTP/1.1 200"), "download start %r" % got[:80])
    st, _, j = d.api("DELETE", "/v1/products/%d/roms/v2.0/" % pid)
    check(st == 200 and len(j["blobs_removed"]) == 2, "delete during download %d %r" % (st, j))
    got += recv_to_close(s)
    s.close()
    body = got.split(b"\r\n\r\n", 1)[1]
    check(hashlib.sha256(body).hexdigest() == hashlib.sha256(big).hexdigest(),
          "in-flight download got %d of %d bytes" % (len(body), len(big)))


def test_release_busy_rollout(d):
    pid = d.create_product()["id"]
    d.upload_release(pid, "v1.0")
    d.upload_release(pid, "v1.1")
    d.api("POST", "/v1/products/%d/roms/v1.0/current" % pid)
    dev = d.create_device(pid)   # offline: the rollout's member stays queued, the rollout running
    st, _, j = d.api("POST", "/v1/rollouts/", {"product_id": pid, "version": "v1.1"})
    check(st == 202, "bulk upgrade %d %r" % (st, j))
    rid = j["rollout"]["id"]
    st, _, j = d.api("DELETE", "/v1/products/%d/roms/v1.1/" % pid)
    check(st == 409 and ("rollout %d" % rid) in j["message"], "busy release %d %r" % (st, j))
    check(versions(d, pid) == ["v1.0", "v1.1"], "nothing removed")
    # the rollout waits only for a device that is then deleted: the release may go
    # (409 while the rollout that just started has not written its command row yet)
    def deleted():
        st, _, j = d.api("DELETE", "/v1/devices/%d/" % dev["device"]["id"])
        check(st in (200, 409), "delete the queued device %d %r" % (st, j))
        check(st == 200 or "rollout %d" % rid in j["message"], "409 names the rollout %r" % j)
        return st == 200
    wait_for(deleted, 5, "the queued device deleted")
    # its member ended as deleted: the rollout is over
    st, _, j = d.api("GET", "/v1/rollouts/%d/" % rid)
    x = j["rollout"]
    check(st == 200 and x["state"] == "finished" and x["deleted"] == 1 and x["queued"] == 0 and
          x["failed"] == 0 and x["succeeded"] == 0, "rollout after the delete %d %r" % (st, x))
    st, _, j = d.api("DELETE", "/v1/products/%d/roms/v1.1/" % pid)
    check(st == 200, "release of a rollout left with deleted devices only %d %r" % (st, j))


def test_device_delete(d):
    pid = d.create_product()["id"]
    d.upload_release(pid, "v1.0")
    d.api("POST", "/v1/products/%d/roms/v1.0/current" % pid)
    a, b = d.create_device(pid, name="a"), d.create_device(pid, name="b")
    aid, master, owner = a["device"]["id"], a["master_device_key"], a["owner_key"]
    st, _, _ = d.api("GET", "/v1/devices/%d/" % aid, key=owner)
    check(st == 200, "owner key before %d" % st)
    st, _, _ = d.request("GET", rom_url("v1.0", "user1.bin"), key=master)
    check(st == 200, "download before %d" % st)
    conn = StockDevice(d.ports["device"], master)
    conn.send(first_frame(1, master))
    check('"status": 200' in conn.recv_msg(), "identify")
    wait_for(lambda: d.api("GET", "/v1/devices/%d/" % aid)[2]["device"]["online"], 5, "online")
    # an RPC waiting for the device's reply when it is deleted: answered at once with 410
    # (its timeout is 60 s: a 504 could only come long after the join below gives up)
    join = run_in_thread(d.api, "GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_upgrade"
                         "&version=v1.0&timeout=60&device_id=%d" % aid)
    check('"sys_upgrade"' in conn.recv_msg(), "push before the delete")

    st, _, j = d.api("DELETE", "/v1/devices/%d/" % aid)
    check(st == 200 and j["device"]["id"] == aid and j["connections_closed"] == 1,
          "delete device %d %r" % (st, j))
    check(conn.closed(5.0), "the deleted device's connection is still open")
    st, _, j = join(10)
    check(st == 410 and "deleted" in j["message"] and j["command"]["device_id"] == aid,
          "the waiting rpc %d %r" % (st, j))
    # its keys stop working at once: API, ROM download, device channel
    st, _, _ = d.api("GET", "/v1/devices/%d/" % aid, key=owner)
    check(st == 401, "owner key after %d" % st)
    st, _, _ = d.request("GET", rom_url("v1.0", "user1.bin"), key=master)
    check(st == 401, "download with the deleted device's key %d" % st)
    again = StockDevice(d.ports["device"], master)
    again.send(first_frame(2, master))
    check(again.closed(5.0), "the device channel still accepts the deleted device")
    again.close()
    conn.close()
    d.wait_log(r"device deleted dev=%d product=%d connections_closed=1" % (aid, pid))
    st, _, j = d.api("GET", "/v1/devices/%d/" % aid)
    check(st == 404, "get deleted device %d" % st)
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
    check([x["id"] for x in j["devices"]] == [b["device"]["id"]], "listing %r" % j)
    st, _, _ = d.api("DELETE", "/v1/devices/%d/" % aid)
    check(st == 404, "delete twice %d" % st)
    st, _, _ = d.api("DELETE", "/v1/devices/999999/")
    check(st == 404, "unknown device %d" % st)
    st, _, _ = d.api("DELETE", "/v1/devices/%d/" % b["device"]["id"], key=b["owner_key"])
    check(st == 403, "a device cannot delete itself %d" % st)
    # a new device never gets the deleted id (nor its keys)
    c = d.create_device(pid, name="c")
    check(c["device"]["id"] > aid and c["master_device_key"] != master, "id reused %r" % c)
    st, _, _ = d.request("GET", rom_url("v1.0", "user1.bin"), key=b["master_device_key"])
    check(st == 200, "the other device still downloads %d" % st)


def test_product_delete(d):
    pid = d.create_product(name="doomed")["id"]
    d.upload_release(pid, "v1.0")
    d.api("POST", "/v1/products/%d/roms/v1.0/current" % pid)
    dev = d.create_device(pid)
    st, _, j = d.api("DELETE", "/v1/products/%d/" % pid)
    check(st == 409 and "1 device(s) and 1 release(s)" in j["message"], "in use %d %r" % (st, j))
    st, _, j = d.api("GET", "/v1/products/%d/" % pid)
    pkey = j["product_key"]
    st, _, _ = d.request("GET", "/v1/device/rom/?action=rom_list", key=pkey)
    check(st == 200, "product key before delete %d" % st)
    d.api("DELETE", "/v1/devices/%d/" % dev["device"]["id"])
    # no device left: the current release may go now
    st, _, j = d.api("DELETE", "/v1/products/%d/roms/v1.0/" % pid)
    check(st == 200, "delete the last (current) release %d %r" % (st, j))
    st, _, j = d.api("DELETE", "/v1/products/%d/" % pid)
    check(st == 200 and j["product"]["name"] == "doomed", "delete product %d %r" % (st, j))
    st, _, j = d.api("GET", "/v1/products/")
    check(all(x["id"] != pid for x in j["products"]), "still listed %r" % j)
    st, _, _ = d.request("GET", "/v1/device/rom/?action=rom_list", key=pkey)
    check(st == 401, "product key after delete %d" % st)
    st, _, _ = d.api("DELETE", "/v1/products/%d/" % pid)
    check(st == 404, "delete twice %d" % st)
    check(d.create_product(name="doomed")["id"] > pid, "name free, id not reused")
    st, _, _ = d.api("GET", "/v1/ping/")
    check(st == 200, "still serving")


if __name__ == "__main__":
    run_tests([test_release_delete, test_inflight_download, test_release_busy_rollout,
               test_device_delete, test_product_delete])
