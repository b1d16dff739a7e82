"""fleet_tags_test.py - devices' tags against a real fotad: one device's (GET, PUT, POST
/v1/devices/ID/tags/, PUT and DELETE /v1/devices/ID/tags/TAG), many devices' at once by a
selection (POST /v1/products/ID/tags/) with a product's tags and their counts, the device view
showing them, a deleted device losing them, the refusals.
"""
from devchan_util import check, start_fotad
from fotatest import run_tests


def api(d, method, path, body=None, status=200, key="admin"):
    st, _, j = d.api(method, path, body, key=key)
    check(st == status, "%s %s: %d %r" % (method, path, st, j))
    return j


def tags_path(dev_id, tag=None):
    return "/v1/devices/%d/tags/%s" % (dev_id, tag or "")


def test_one_device(d, pid, ids):
    a = ids[0]
    check(api(d, "GET", tags_path(a))["tags"] == [], "no tags yet")
    check(api(d, "PUT", tags_path(a), {"tags": ["zeta", "Alpha", "site=berlin"]})["tags"] ==
          ["Alpha", "site=berlin", "zeta"], "PUT sets, sorted")
    check(api(d, "POST", tags_path(a), {"tags": ["beta", "zeta"]})["tags"] ==
          ["Alpha", "beta", "site=berlin", "zeta"], "POST adds")
    check(api(d, "PUT", tags_path(a, "floor:1"))["tags"] ==
          ["Alpha", "beta", "floor:1", "site=berlin", "zeta"], "PUT one")
    check(api(d, "DELETE", tags_path(a, "zeta"))["tags"] ==
          ["Alpha", "beta", "floor:1", "site=berlin"], "DELETE one")
    check(api(d, "DELETE", tags_path(a, "zeta"))["tags"] ==
          ["Alpha", "beta", "floor:1", "site=berlin"], "DELETE of one it lacks")
    j = api(d, "POST", tags_path(a, "beta") + "?method=DELETE")
    check("beta" not in j["tags"], "tunnelled DELETE %r" % j)
    view = api(d, "GET", "/v1/devices/%d/" % a)["device"]
    check(view["tags"] == ["Alpha", "floor:1", "site=berlin"], "the device view %r" % view)
    check(api(d, "PUT", tags_path(a), {"tags": []})["tags"] == [], "PUT [] clears")
    # refusals
    for body, st in (({"tags": ["a b"]}, 422), ({"tags": ["x" * 64]}, 422), ({"tags": "a"}, 400),
                     ({"tags": [1]}, 422), ({"labels": ["a"]}, 400),
                     ({"tags": ["t%d" % i for i in range(33)]}, 400)):
        j = api(d, "PUT", tags_path(a), body, status=st)
        check("tag" in j["message"] or "unknown key" in j["message"], "%r: %r" % (body, j))
    api(d, "PUT", tags_path(a), {"tags": ["t%d" % i for i in range(32)]})
    j = api(d, "PUT", tags_path(a, "one-more"), status=422)
    check("at most 32" in j["message"], "33rd tag %r" % j)
    api(d, "PUT", tags_path(a, "has%20space"), status=422)
    api(d, "GET", tags_path(999999), status=404)
    api(d, "PUT", tags_path(999999, "x"), status=404)
    owner = d.create_device(pid, name="owner-probe")
    api(d, "GET", tags_path(owner["device"]["id"]), status=403, key=owner["owner_key"])
    api(d, "PUT", tags_path(owner["device"]["id"], "x"), status=403, key=owner["owner_key"])
    api(d, "PUT", tags_path(a), {"tags": []})
    st, _, _ = d.api("DELETE", "/v1/devices/%d/" % owner["device"]["id"])
    check(st == 200, "delete the probe")


def test_many_devices(d, pid, ids):
    base = "/v1/products/%d/tags/" % pid
    j = api(d, "POST", base, {"filter": {}, "add": ["fleet"]})
    check(j["devices"] == len(ids) and j["tags"] == [{"tag": "fleet", "devices": len(ids)}],
          "every device %r" % j)
    j = api(d, "POST", base, {"filter": {"device_ids": ids[:3] + [999999]}, "add": ["canary"]})
    check(j["devices"] == 3, "device_ids: only the product's %r" % j)
    j = api(d, "POST", base, {"filter": {"tag": "canary"}, "add": ["wave1"],
                              "remove": ["fleet"]})
    check(j["devices"] == 3, "by tag %r" % j)
    counts = {t["tag"]: t["devices"] for t in api(d, "GET", base)["tags"]}
    check(counts == {"fleet": len(ids) - 3, "canary": 3, "wave1": 3}, "counts %r" % counts)
    listed = api(d, "GET", "/v1/products/%d/devices/?tag=wave1&tag=canary" % pid)
    check(sorted(r["id"] for r in listed["devices"]) == sorted(ids[:3]), "list by tags")
    for body in ({"add": ["x"]}, {"filter": [], "add": ["x"]}, {"filter": {}},
                 {"filter": {}, "add": ["a b"]}, {"filter": {"colour": 1}, "add": ["x"]},
                 {"filter": {}, "add": ["x"], "speed": 1}):
        st, _, j = d.api("POST", base, body)
        check(st in (400, 422), "%r: %d %r" % (body, st, j))
    # another product's devices are out of reach
    other = d.create_product("other")["id"]
    od = d.create_device(other, name="o")["device"]["id"]
    j = api(d, "POST", base, {"filter": {"device_ids": [od]}, "add": ["x"]})
    check(j["devices"] == 0 and api(d, "GET", tags_path(od))["tags"] == [], "other product")
    api(d, "GET", "/v1/products/999999/tags/", status=404)
    # a deleted device takes its tags along
    st, _, _ = d.api("DELETE", "/v1/devices/%d/" % ids[0])
    check(st == 200, "delete a device")
    counts = {t["tag"]: t["devices"] for t in api(d, "GET", base)["tags"]}
    check(counts["canary"] == 2, "after the delete %r" % counts)
    ids.pop(0)


def main_test():
    d = start_fotad()
    try:
        pid = d.create_product("tagged")["id"]
        ids = [d.create_device(pid, name="t-%02d" % i)["device"]["id"] for i in range(12)]
        test_one_device(d, pid, ids)
        test_many_devices(d, pid, ids)
        d.stop()
    except BaseException:
        d.kill()
        raise


run_tests([main_test])
