"""cli_fleet_test.py - fotactl on a fleet, against a real fotad: `device list` a page at a time
(the cursor it prints on standard error gives the next page, --all every page, --json the
server's reply), sorted and filtered by the server (--tag, --version, --search, --offline,
--sort); `device tag` add, remove, set and list, and the TAGS column; `upgrade` twice leaves
one upgrade queued (the first cancelled, replaced by the second), `device command cancel`
cancels a queued command (then exit 1: no longer queued), `upgrade` to the version a device
runs is refused (exit 1, the server's reason) unless --force; `messages` names the device
(listed and followed), `device show` the product, sizes and tags in words. Python 3 stdlib
only.
"""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cli_workflow_test import Ctl  # noqa: E402
from devchan_util import StockDevice, active_frame, parse_nonce, start_fotad  # noqa: E402
from fotatest import check, run_tests, wait_for  # noqa: E402

TOKEN = "0" * 40


def rows(p):
    return [line.split("\t") for line in p.stdout.splitlines()]


def ids_of(p):
    return [int(r[0]) for r in rows(p)]


def test_pages(d, ctl, pid, devs):
    all_ids = sorted(x["device"]["id"] for x in devs)
    p = ctl.run("device", "list", "-p", "fleet", "--limit", "3")
    check(ids_of(p) == all_ids[:3], "first page %r" % p.stdout)
    m = re.search(r"^3 of 7 devices; the next page: --cursor (\S+) \(or --all\)$", p.stderr,
                  re.M)
    check(m is not None, "the next page's cursor on standard error: %r" % p.stderr)
    seen = ids_of(p)
    cursor = m.group(1)
    for _ in range(5):
        p = ctl.run("device", "list", "-p", "fleet", "--limit", "3", "--cursor", cursor)
        seen += ids_of(p)
        m = re.search(r"--cursor (\S+) ", p.stderr)
        if not m:
            break
        cursor = m.group(1)
    check(seen == all_ids, "the pages together %r, want %r" % (seen, all_ids))
    p = ctl.run("device", "list", "-p", "fleet", "--all", "--limit", "2")
    check(ids_of(p) == all_ids and p.stderr == "", "--all %r %r" % (p.stdout, p.stderr))
    j = ctl.json("device", "list", "-p", "fleet", "--all", "--limit", "2")
    check([x["id"] for x in j["devices"]] == all_ids and j["total"] == 7, "--json --all %r" % j)
    j = ctl.json("device", "list", "-p", "fleet", "--limit", "2")
    check(len(j["devices"]) == 2 and j["total"] == 7 and j["next_cursor"], "--json page %r" % j)
    # the server's order: names descending
    p = ctl.run("device", "list", "-p", "fleet", "--sort", "-name", "--all")
    names = [r[1] for r in rows(p)]
    check(names == sorted(names, reverse=True) and len(names) == 7, "--sort -name %r" % names)
    p = ctl.run("device", "list", "-p", "fleet", "--search", "fl-0")
    check(sorted(ids_of(p)) == all_ids, "--search fl-0 %r" % p.stdout)
    p = ctl.run("device", "list", "-p", "fleet", "--search", "fl-03")
    check(ids_of(p) == [devs[3]["device"]["id"]], "--search fl-03 %r" % p.stdout)
    p = ctl.run("device", "list", "-p", "fleet", "--offline", "--all")
    check(sorted(ids_of(p)) == all_ids, "--offline %r" % p.stdout)
    p = ctl.run("device", "list", "-p", "fleet", "--online")
    check(p.stdout == "", "--online: nobody is connected %r" % p.stdout)
    for bad in (("--limit", "0"), ("--sort", "colour"), ("--tag", "a b"), ("--online",
                                                                          "--offline")):
        p = ctl.run("device", "list", "-p", "fleet", *bad, ok=False)
        check(p.returncode == 2, "device list %r: exit %d %r" % (bad, p.returncode, p.stderr))


def test_tags(d, ctl, pid, devs):
    a, b, c = (x["device"]["id"] for x in devs[:3])
    p = ctl.run("device", "tag", str(a), "add", "canary", "site=berlin")
    check(p.stdout.split() == ["canary", "site=berlin"], "tag add %r" % p.stdout)
    ctl.run("device", "tag", str(b), "add", "canary")
    ctl.run("device", "tag", str(c), "set", "floor:2", "site=berlin")
    p = ctl.run("device", "tag", str(a), "list")
    check(p.stdout.split() == ["canary", "site=berlin"], "tag list %r" % p.stdout)
    p = ctl.run("device", "list", "-p", "fleet", "--tag", "canary")
    check(ids_of(p) == [a, b], "--tag canary %r" % p.stdout)
    check(rows(p)[0][-1] == "canary,site=berlin" and rows(p)[1][-1] == "canary",
          "the TAGS column %r" % p.stdout)
    p = ctl.run("device", "list", "-p", "fleet", "--tag", "canary,site=berlin")
    check(ids_of(p) == [a], "--tag canary,site=berlin (both) %r" % p.stdout)
    p = ctl.run("device", "tag", str(a), "remove", "canary")
    check(p.stdout.split() == ["site=berlin"], "tag remove %r" % p.stdout)
    p = ctl.run("device", "list", "-p", "fleet", "--tag", "canary")
    check(ids_of(p) == [b], "after the remove %r" % p.stdout)
    p = ctl.run("device", "tag", str(c), "set")
    check(p.stdout == "", "tag set (none) %r" % p.stdout)
    check(d.api("GET", "/v1/devices/%d/tags/" % c)[2]["tags"] == [], "the server's view")
    p = ctl.run("device", "tag", str(a), "add", "no spaces", ok=False)
    check(p.returncode == 1 and "not a tag" in p.stderr, "a bad tag %d %r" % (p.returncode,
                                                                           p.stderr))
    p = ctl.run("device", "tag", str(a), "paint", "x", ok=False)
    check(p.returncode == 2, "an unknown verb: exit %d" % p.returncode)
    j = ctl.json("device", "tag", str(b), "list")
    check(j["tags"] == ["canary"] and j["device_id"] == b, "--json %r" % j)


def commands(d, dev_id):
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % dev_id)
    check(st == 200, "commands %d %r" % (st, j))
    return {c["id"]: c for c in j["commands"]}


def test_commands(d, ctl, pid, devs):
    dev = devs[4]["device"]["id"]
    ctl.run("upgrade", str(dev), "--version", "v1.1")
    ctl.run("upgrade", str(dev), "--version", "v1.2")
    cs = commands(d, dev)
    ups = sorted(cs.values(), key=lambda c: c["id"])
    check(len(ups) == 2 and ups[0]["state"] == "cancelled" and
          ups[0]["result"]["replaced_by"] == ups[1]["id"] and ups[1]["state"] == "queued",
          "the second upgrade replaces the first %r" % ups)
    p = ctl.run("device", "command", "cancel", str(dev), str(ups[1]["id"]))
    check("cancelled command %d" % ups[1]["id"] in p.stdout and "v1.2" in p.stdout,
          "cancel printed %r" % p.stdout)
    check(commands(d, dev)[ups[1]["id"]]["state"] == "cancelled", "the server's row")
    p = ctl.run("device", "command", "cancel", str(dev), str(ups[1]["id"]), ok=False)
    check(p.returncode == 1 and "only a queued command" in p.stderr,
          "twice: exit %d %r" % (p.returncode, p.stderr))
    p = ctl.run("device", "command", "cancel", str(dev), "999999", ok=False)
    check(p.returncode == 4, "an unknown command: exit %d %r" % (p.returncode, p.stderr))
    p = ctl.run("device", "command", "cancel", str(dev), "seven", ok=False)
    check(p.returncode == 2, "not an id: exit %d" % p.returncode)

    # a device that runs v1.1: the upgrade to v1.1 is refused unless --force
    on = devs[5]
    did, master = on["device"]["id"], on["master_device_key"]
    sock = StockDevice(d.device_port, master)
    sock.send(active_frame(7, TOKEN, "18:fe:34:00:00:05", "v1.1", master))
    check(parse_nonce(sock.recv_msg()) == 7, "activation reply")
    sock.close()
    wait_for(lambda: d.api("GET", "/v1/devices/%d/" % did)[2]["device"]["rom_version"] ==
             "v1.1" and not d.api("GET", "/v1/devices/%d/" % did)[2]["device"]["online"],
             10, "v1.1 known, offline again")
    p = ctl.run("upgrade", str(did), "--version", "v1.1", ok=False)
    check(p.returncode == 1 and "already runs v1.1" in p.stderr, "the refusal %d %r" %
          (p.returncode, p.stderr))
    check(commands(d, did) == {}, "nothing queued by the refusal")
    ctl.run("upgrade", str(did), "--version", "v1.1", "--force")
    cs = list(commands(d, did).values())
    check(len(cs) == 1 and cs[0]["params"] == {"version": "v1.1"} and cs[0]["state"] == "queued",
          "--force queued it %r" % cs)
    p = ctl.run("device", "list", "-p", "fleet", "--version", "v1.1")
    check(ids_of(p) == [did], "--version v1.1 %r" % p.stdout)
    return did


def test_names_and_sizes(d, ctl, pid, did):
    """messages name the device (also when following), device show the product; sizes and
    tags read as words."""
    d.set_current(pid, "v1.2")
    want = "device fl-05 has version v1.2 available"
    p = ctl.run("messages", "-p", "fleet")
    ups = [r for r in rows(p) if r[2] == "rom_update_available"]
    check(len(ups) == 1 and ups[0][1] == "fl-05" and ups[0][3] == want,
          "messages name the device %r" % p.stdout)
    p = ctl.run("messages", "--device", str(did))
    check(rows(p)[-1][1] == "fl-05", "--device ID %r" % p.stdout)
    newest = ctl.json("messages", "-p", "fleet")["messages"][0]
    check(newest["action"] == "rom_update_available" and newest["device_id"] == did,
          "--json keeps the ids %r" % newest)
    p = ctl.run("messages", "-p", "fleet", "--follow", "--after", str(newest["id"] - 1),
                "--count", "1")
    check(p.stdout.split("\t")[1:3] == ["fl-05", "rom_update_available"],
          "--follow names the device %r" % p.stdout)
    p = ctl.run("device", "show", "fl-05")
    show = dict(line.split("\t", 1) for line in p.stdout.splitlines() if "\t" in line)
    check(show.get("product") == "fleet (%d)" % pid and "product_id" not in show and
          show.get("tags") == "-" and show.get("download_bytes") == "0 bytes" and
          show.get("download") == "-", "device show %r" % show)
    p = ctl.run("device", "show", "fl-00")
    show = dict(line.split("\t", 1) for line in p.stdout.splitlines() if "\t" in line)
    check(show.get("tags") == "site=berlin", "device show's tags %r" % show)
    j = ctl.json("device", "show", "fl-05")["device"]
    check(j["product_id"] == pid and j["tags"] == [] and j["download_bytes"] == 0,
          "--json keeps the server's shape %r" % j)


def main_test():
    d = start_fotad()
    try:
        home = tempfile.mkdtemp(prefix="fotactl-fleet-")
        ctl = Ctl(home)
        ctl.run("login", "--server", "http://127.0.0.1:%d" % d.http_port, "--key", d.admin_key)
        pid = d.create_product("fleet")["id"]
        d.upload_release(pid, "v1.1")
        d.upload_release(pid, "v1.2")
        devs = [d.create_device(pid, name="fl-%02d" % i) for i in range(7)]
        test_pages(d, ctl, pid, devs)
        test_tags(d, ctl, pid, devs)
        did = test_commands(d, ctl, pid, devs)
        test_names_and_sizes(d, ctl, pid, did)
        d.stop()
    except BaseException:
        d.kill()
        raise


run_tests([main_test])
