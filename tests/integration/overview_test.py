"""overview_test.py - GET /v1/products/ID/overview against the real fotad with a stock-style
device: devices online and offline and the versions they run, then an upgrade (sys_upgrade,
D4, the download of user2.bin, D7 success) counted as one upgrade, one finished download and
its bytes in the activity of every range, and the D7 filling running_slot (user2, the slot
downloaded); a failed report counted as a failure and leaving the device on the other slot;
the ranges' buckets; refusals (a bad range, an unknown product, an owner key)."""
from devchan_util import (StockDevice, active_frame, check, copy_version, http_exchange,
                          nonos_url, parse_nonce, rpc_response_frame, run_in_thread, start_fotad,
                          upgrade_frame, wait_for)
from fotatest import make_image

TOKEN = "6f2e1f3b5d8c4a7e9b0c1d2e3f4a5b6c7d8e9f0a"
PRE = "v1.0.5t45772(a)"


def overview(d, pid, rng=None):
    st, _, j = d.api("GET", "/v1/products/%d/overview%s" % (pid, "?range=" + rng if rng else ""))
    check(st == 200 and j["status"] == 200, "overview: %s %s" % (st, j))
    o = j["overview"]
    a = o["activity"]
    n = a["range"] // a["step"]
    # every bucket present, in order, the last one holding now; totals are the columns' sums
    check(all(len(a[k]) == n for k in ("t", "upgraded", "failed", "downloads", "bytes")),
          "columns of %d buckets: %r" % (n, a))
    check(a["t"][0] == a["since"] and all(a["t"][i + 1] - a["t"][i] == a["step"]
                                          for i in range(n - 1)), "bucket times %r" % a["t"])
    check(a["t"][-1] <= o["at"] < a["t"][-1] + a["step"], "last bucket holds now")
    for k in ("upgraded", "failed", "downloads", "bytes"):
        check(o["totals"][k] == sum(a[k]), "totals.%s = sum of its column" % k)
    check(o["offline"] == o["devices"] - o["online"], "offline = devices - online")
    check(o["devices"] == sum(v["devices"] for v in o["versions"]), "versions add up")
    return o


def vers(o):
    return {v["version"]: (v["devices"], v["online"]) for v in o["versions"]}


def main():
    d = start_fotad()
    try:
        pid = d.create_product(name="plug", flash_map=2)["id"]
        user1, user2 = make_image(1, 2, "v1.1"), make_image(2, 2, "v1.1")
        d.upload_release(pid, "v1.1", files=[("user1.bin", user1), ("user2.bin", user2)])
        d.set_current(pid, "v1.1")
        keys = []
        for i in range(3):
            j = d.create_device(pid, name="plug-%d" % i)
            keys.append((j["device"]["id"], j["master_device_key"], j["owner_key"]))

        o = overview(d, pid)
        check(o["devices"] == 3 and o["online"] == 0 and vers(o) == {"": (3, 0)},
              "three new devices: %r" % o)
        check(o["current_version"] == "v1.1" and o["product_id"] == pid, "current %r" % o)
        check(o["activity"]["range"] == 86400 and o["activity"]["step"] == 900, "24h default")
        check(o["totals"] == {"upgraded": 0, "failed": 0, "downloads": 0, "bytes": 0},
              "nothing happened yet: %r" % o["totals"])

        dev_id, master, _ = keys[0]
        dev = StockDevice(d.device_port, master)
        dev.send(active_frame(1804289383, TOKEN, "18:fe:34:97:f3:cd", PRE, master))
        check('"activate_status": 1' in dev.recv_msg(), "activated")
        wait_for(lambda: overview(d, pid)["online"] == 1, 5, "one device online")
        check(vers(overview(d, pid)) == {"": (2, 0), PRE: (1, 1)}, "versions after activation")

        # an upgrade: push, D4, the download of the other slot, D7 success
        join = run_in_thread(d.api, "GET", "/v1/device/rpc/?deliver_to_device=true&action="
                             "sys_upgrade&version=v1.1&device_id=%d" % dev_id)
        push = dev.recv_msg(timeout=10)
        dev.send(rpc_response_frame(parse_nonce(push)))
        code, _, j = join()
        check(code == 200, "rpc %s %s" % (code, j))
        version = copy_version(push)
        first, _, body, _ = http_exchange(d.http_port,
                                          nonos_url(version, "user2.bin", d.http_port,
                                                    master).encode())
        check(body == user2, "download of user2.bin (%d bytes)" % len(body))
        dev.send(upgrade_frame(master, "device_upgrade_success", PRE, version))
        check('"status": 200' in dev.recv_msg(), "D7 reply")
        wait_for(lambda: overview(d, pid)["totals"]["upgraded"] == 1, 5, "upgrade counted")
        for rng in ("1h", "6h", "24h", "7d", "30d"):
            o = overview(d, pid, rng)
            check(o["totals"] == {"upgraded": 1, "failed": 0, "downloads": 1,
                                  "bytes": len(user2)}, "%s totals %r" % (rng, o["totals"]))
            a = o["activity"]
            check(a["upgraded"][-1] == 1 and a["downloads"][-1] == 1,
                  "%s: the counts in the last bucket %r" % (rng, a))
        o = overview(d, pid, "1h")
        check(o["activity"]["step"] == 60 and len(o["activity"]["t"]) == 60, "1h: 60 minutes")
        check(vers(o) == {"": (2, 0), "v1.1": (1, 1)}, "versions after the upgrade %r" % vers(o))
        check(o["downloads_per_minute"] >= 0 and o["bytes_per_minute"] >= 0, "rates")
        # the report after the download of user2.bin: the new version sits in slot 2
        v = d.device_view(dev_id)
        check(v["rom_version"] == "v1.1" and v["running_slot"] == 2, "device %r" % v)

        # a failed report after that download: a failure, and the device on the other slot
        dev.send(upgrade_frame(master, "device_upgrade_failed", "v1.1", version))
        check('"status": 200' in dev.recv_msg(), "D7 failed reply")
        wait_for(lambda: overview(d, pid)["totals"]["failed"] == 1, 5, "failure counted")
        check(d.device_view(dev_id)["running_slot"] == 1, "failed: slot 1")
        dev.close()
        wait_for(lambda: overview(d, pid)["online"] == 0, 5, "offline again")

        # refusals
        st, _, j = d.api("GET", "/v1/products/%d/overview?range=2h" % pid)
        check(st == 400 and "range" in j.get("message", ""), "bad range: %s %s" % (st, j))
        st, _, j = d.api("GET", "/v1/products/999/overview")
        check(st == 404, "unknown product: %s %s" % (st, j))
        st, _, j = d.api("GET", "/v1/products/%d/overview" % pid, key=keys[1][2])
        check(st == 403, "an owner key: %s %s" % (st, j))
    finally:
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
