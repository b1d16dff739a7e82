"""fleet_list_test.py - the device lists of a fleet against a real fotad: GET
/v1/products/ID/devices/ and GET /v1/devices/ in pages (limit, an opaque cursor,
every order in both directions), stable while devices are added, the total, the
search (name, MAC), the filters (tag, version, online, last check-in, name) and
their refusals; the list without a limit stays the whole list; a batch of devices made in
one request.
"""
import urllib.parse

from devchan_util import StockDevice, active_frame, check, parse_nonce, start_fotad, wait_for
from fotatest import run_tests

N = 60
TOKEN = "0" * 40


def q(params):
    return urllib.parse.urlencode(params, doseq=True)


def get(d, path, status=200, key="admin"):
    st, _, j = d.api("GET", path, key=key)
    check(st == status, "GET %s: %d %r" % (path, st, j))
    return j


def walk(d, base, params, limit):
    """Every page of base?params, limit at a time, following next_cursor; returns
    (rows, first page's total, pages)."""
    rows, cursor, total, pages = [], None, None, 0
    while True:
        p = dict(params, limit=limit)
        if cursor:
            p["cursor"] = cursor
        j = get(d, base + "?" + q(p))
        pages += 1
        check(len(j["devices"]) <= limit, "page over the limit: %d" % len(j["devices"]))
        if cursor is None:
            total = j["total"]
        else:
            check(j["total"] is None, "total on a later page: %r" % j["total"])
        rows += j["devices"]
        cursor = j["next_cursor"]
        if cursor is None:
            check(len(j["devices"]) <= limit, "last page")
            return rows, total, pages
        check(len(j["devices"]) == limit, "a short page with a next cursor")
        check(pages < 500, "endless walk")


def fleet(d):
    """A product of N devices (names in a scrambled order, MACs by number), three of
    them connected and activated with a version, tags on some. Returns (pid, devices,
    connections)."""
    pid = d.create_product("plugs")["id"]
    other = d.create_product("lamps")["id"]
    devs = []
    for i in range(N):
        j = d.create_device(pid, name="plug-%02d" % ((i * 7) % N),
                            bssid="18:fe:34:00:%02x:%02x" % (i // 16, i))
        devs.append(j)
    d.create_device(other, name="plug-07", bssid="5c:cf:7f:00:00:01")
    conns = []
    for i, version in ((3, "v1.0"), (4, "v1.0"), (5, "v1.1")):
        master = devs[i]["master_device_key"]
        dev = StockDevice(d.device_port, master)
        dev.send(active_frame(1000 + i, TOKEN, devs[i]["device"]["bssid"], version, master))
        check(parse_nonce(dev.recv_msg()) == 1000 + i, "activation reply")
        conns.append(dev)
    for i in range(0, N, 4):
        st, _, j = d.api("PUT", "/v1/devices/%d/tags/" % devs[i]["device"]["id"],
                         {"tags": ["even4"] + (["canary"] if i % 8 == 0 else [])})
        check(st == 200, "tags: %d %r" % (st, j))
    online_ids = {devs[i]["device"]["id"] for i in (3, 4, 5)}
    wait_for(lambda: {x["id"] for x in get(d, "/v1/products/%d/devices/?online=true" % pid)
                      ["devices"]} == online_ids, 10, "three devices online")
    return pid, [x["device"] for x in devs], conns


def key_of(sort, row):
    field = {"id": "id", "name": "name", "version": "rom_version", "last_active": "last_active",
             "created": "created"}[sort]
    return (row[field], row["id"])


def test_pages_in_every_order(d, pid, devs):
    base = "/v1/products/%d/devices/" % pid
    everything = get(d, base)["devices"]
    check(len(everything) == N, "the whole list: %d" % len(everything))
    for sort in ("id", "name", "version", "last_active", "created"):
        for desc in (False, True):
            want = sorted(everything, key=lambda r: key_of(sort, r), reverse=desc)
            for limit in (1, 7, N, 1000):
                rows, total, pages = walk(d, base, {"sort": ("-" if desc else "") + sort},
                                          limit)
                check(total == N, "%s total %r" % (sort, total))
                got = [r["id"] for r in rows]
                check(got == [r["id"] for r in want],
                      "sort=%s%s limit=%d: %r" % ("-" if desc else "", sort, limit, got))
                check(pages == (N + limit - 1) // limit, "pages %d" % pages)
    # the alias, and the view of a row
    j = get(d, base + "?sort=-checkin&limit=1")
    check(j["sort"] == "-last_active" and j["devices"][0]["online"], "checkin alias %r" % j)
    row = j["devices"][0]
    for field in ("tags", "latest_rom_version", "download", "bssid", "rom_version", "online"):
        check(field in row, "%s in a row: %r" % (field, row))
    # the total of a later page when asked, and none on the first when not
    j = get(d, base + "?limit=5")
    j2 = get(d, base + "?" + q({"limit": 5, "cursor": j["next_cursor"], "total": "true"}))
    check(j2["total"] == N, "total=true on a later page: %r" % j2["total"])
    check(get(d, base + "?limit=5&total=false")["total"] is None, "total=false")


def test_stable_while_devices_come(d, pid, devs):
    base = "/v1/products/%d/devices/" % pid
    before = {r["id"] for r in get(d, base)["devices"]}
    seen, cursor, added = [], None, 0
    while True:
        p = {"sort": "name", "limit": 9}
        if cursor:
            p["cursor"] = cursor
        j = get(d, base + "?" + q(p))
        seen += [r["id"] for r in j["devices"]]
        cursor = j["next_cursor"]
        if not cursor:
            break
        # one before every position (never shown), one after it (shown later)
        d.create_device(pid, name="aaa-%d" % added)
        d.create_device(pid, name="zzz-%d" % added)
        added += 1
    old = [i for i in seen if i in before]
    check(sorted(old) == sorted(before), "every first device once: %d of %d" %
          (len(old), len(before)))
    check(len(seen) == len(set(seen)), "no device twice")
    check(len(seen) == len(before) + added, "the later ones after the position: %d" % len(seen))


def ids(d, path):
    return sorted(r["id"] for r in get(d, path)["devices"])


def test_search_and_filters(d, pid, devs):
    base = "/v1/products/%d/devices/?" % pid
    by_name = {r["name"]: r["id"] for r in devs}
    check(ids(d, base + "q=PLUG-1") == sorted(v for k, v in by_name.items() if "plug-1" in k),
          "q on names, case ignored")
    check(ids(d, base + "name=plug-13") == [by_name["plug-13"]], "exact name")
    check(ids(d, base + "name=plug-1") == [], "a name is not a prefix")
    # MAC fragments: any case, with or without separators
    want = [r["id"] for r in devs if r["bssid"].endswith(":02:2a")]
    check(ids(d, base + "q=02:2A") == want and ids(d, base + "q=022a") == want, "MAC q")
    tagged = sorted(devs[i]["id"] for i in range(0, N, 4))
    canary = sorted(devs[i]["id"] for i in range(0, N, 8))
    check(ids(d, base + "tag=even4") == tagged, "tag")
    check(ids(d, base + "tag=even4&tag=canary") == canary, "every tag")
    check(ids(d, base + "tag=even4,canary") == canary, "tags comma-separated")
    check(ids(d, base + "tag=nobody") == [], "a tag nobody carries")
    v10 = sorted(devs[i]["id"] for i in (3, 4))
    check(ids(d, base + "version=v1.0") == v10, "version")
    check(ids(d, base + "version=v1.0&version=v1.1") == sorted(v10 + [devs[5]["id"]]),
          "any of the versions")
    check(len(ids(d, base + "version=")) == N - 3, "unknown version")
    online = sorted(devs[i]["id"] for i in (3, 4, 5))
    check(ids(d, base + "online=true") == online, "online")
    check(len(ids(d, base + "online=false")) == N - 3, "offline")
    # last check-in: the three connected devices checked in; the others never
    now = get(d, "/v1/ping/", key=None)["epoch"]
    check(ids(d, base + "checkin_after=1h") == online, "checked in within the hour")
    check(len(ids(d, base + "checkin_before=%d" % (now - 3600))) == N - 3, "never seen")
    j = get(d, base + "online=true&version=v1.0&tag=even4&limit=1")
    check(j["total"] == (1 if devs[4]["id"] in tagged else 0), "combined %r" % j)
    # every product, and one
    j = get(d, "/v1/devices/?q=plug-07")
    check(len(j["devices"]) == 2 and j["total"] == 2, "across products %r" % j)
    j = get(d, "/v1/devices/?" + q({"q": "plug-07", "product_id": pid}))
    check([r["id"] for r in j["devices"]] == [by_name["plug-07"]], "product_id= %r" % j)
    get(d, "/v1/devices/?product_id=999999", status=404)


def test_refusals(d, pid, devs):
    base = "/v1/products/%d/devices/?" % pid
    first = get(d, base + "sort=name&limit=2")
    for bad, why in (("limit=0", "limit"), ("limit=1001", "limit"), ("limit=x", "limit"),
                     ("sort=size", "sort"), ("cursor=garbage", "cursor"),
                     (q({"sort": "-name", "limit": 2, "cursor": first["next_cursor"]}), "cursor"),
                     ("colour=red", "unknown parameter"), ("tag=a%20b", "not a tag"),
                     ("online=maybe", "online"), ("checkin_after=soon", "checkin_after"),
                     ("q=", "q must be"), ("total=maybe", "total"),
                     ("product_id=1", "unknown parameter")):
        j = get(d, base + bad, status=400)
        check(why in j["message"], "%s: %r" % (bad, j))
    get(d, "/v1/devices/?product_id=x", status=400)
    get(d, "/v1/products/999999/devices/?limit=5", status=404)
    get(d, "/v1/products/%d/devices/" % pid, status=401, key="0" * 40)
    get(d, "/v1/devices/", status=401, key=None)


def test_owner_keys_cannot_list(d, pid, devs):
    dev = d.create_device(pid, name="probe")
    for path in ("/v1/products/%d/devices/" % pid, "/v1/devices/"):
        get(d, path, status=403, key=dev["owner_key"])


def test_batch_create(d):
    """POST /v1/products/ID/devices/ {"count": N}: N devices in one transaction, their keys
    valid at once, in id order; the refusals."""
    pid = d.create_product(name="batch")["id"]
    path = "/v1/products/%d/devices/" % pid
    st, _, j = d.api("POST", path, {"count": 25})
    check(st == 200 and len(j["devices"]) == 25, "batch of 25: %d %r" % (st, j))
    ids = [x["id"] for x in j["devices"]]
    check(ids == sorted(ids) and len(set(ids)) == 25, "ids in order: %r" % ids)
    check(all(x["name"].startswith("device-name-") for x in j["devices"]), "default names")
    for x in (j["devices"][0], j["devices"][-1]):
        me = get(d, "/v1/device/", key=x["master_device_key"])
        check(me["device"]["id"] == x["id"], "master key of %d: %r" % (x["id"], me))
        me = get(d, "/v1/device/", key=x["owner_key"])
        check(me["device"]["id"] == x["id"], "owner key of %d: %r" % (x["id"], me))
    check(get(d, path + "?limit=1")["total"] == 25, "the product holds the 25")
    for body in ({"count": 0}, {"count": 1001}, {"count": "x"}, {"count": 2.5},
                 {"count": 2, "name": "n"}, {"count": 2, "bssid": "18:fe:34:97:f3:cd"}):
        st, _, j = d.api("POST", path, body)
        check(st == 422, "%r: %d %r" % (body, st, j))
    st, _, j = d.api("POST", "/v1/products/77777/devices/", {"count": 3})
    check(st == 404, "batch in an unknown product: %d %r" % (st, j))
    check(get(d, path + "?limit=1")["total"] == 25, "refusals made no device")


def main_test():
    d = start_fotad()
    try:
        pid, devs, conns = fleet(d)
        test_pages_in_every_order(d, pid, devs)
        test_search_and_filters(d, pid, devs)
        test_refusals(d, pid, devs)
        test_owner_keys_cannot_list(d, pid, devs)
        test_stable_while_devices_come(d, pid, devs)
        test_batch_create(d)
        for c in conns:
            c.close()
        d.stop()
    except BaseException:
        d.kill()
        raise


run_tests([main_test])
