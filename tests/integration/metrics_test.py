"""metrics_test.py - GET /metrics against the real fotad: the admin key on the HTTP port (401
without it, 403 with another key), the keyless listener of metrics_bind (404 elsewhere),
`promtool check metrics` on the output (a missing promtool fails the test), no series twice, and
scrapes before and after real traffic whose values must move by the right amounts: devices,
devices online (a stock device on the channel), versions, releases and the current release per
product, rollouts by state, store operations; a ROM download (bytes, completion, nothing left in
flight), an RPC the device answers and one queued for an offline device, a legacy transfer and a
legacy connection that never asks, and refusals: HTTP 401 (a handler's and the head gate's),
an upload with a device key, ambiguous framing, the device channel's per-address limit and a
bad frame; a device over its message rate pauses its connection's reading."""
import os
import re
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, fail, run_tests, wait_for  # noqa: E402
from devchan_util import (StockDevice, active_frame, beacon_frame, first_frame,  # noqa: E402
                          http_exchange, nonos_url, parse_nonce, run_in_thread)
from legacy_util import stock_client  # noqa: E402

TOKEN = "6f2e1f3b5d8c4a7e9b0c1d2e3f4a5b6c7d8e9f0a"

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse(text):
    """{(name, ((label, value), ...)): value}; fails on a sample twice, a sample of a family
    without TYPE, or a line the text format does not allow."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        check(m, "not a sample line: %r" % line)
        name, labels, value = m.groups()
        pairs = tuple(LABEL.findall(labels or ""))
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        check(name in typed or base in typed, "sample without TYPE: %r" % line)
        key = (name, tuple(sorted(pairs)))
        check(key not in out, "series twice: %r" % line)
        out[key] = float(value)
    return out


def value(m, name, **labels):
    """A sample's value; 0 when the series is absent (a labelled series that never moved)."""
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def promtool(text):
    tool = shutil.which("promtool")
    if not tool:
        fail("promtool is missing (Debian package prometheus: scripts/deps.sh --test)")
    p = subprocess.run([tool, "check", "metrics"], input=text.encode(), capture_output=True,
                       timeout=60)
    check(p.returncode == 0, "promtool check metrics exit %d: %s%s" %
          (p.returncode, p.stdout.decode(), p.stderr.decode()))


def scrape(d, port=None, key="admin"):
    """The text of GET /metrics (HTTP port with the admin key, or a given port)."""
    st, hdrs, body = d.request("GET", "/metrics", port=port,
                               key=d.admin_key if key == "admin" else key)
    check(st == 200, "GET /metrics: %d %r" % (st, body[:200]))
    check(hdrs.get("content-type") == "text/plain; version=0.0.4; charset=utf-8",
          "content type %r" % hdrs.get("content-type"))
    return body.decode()


def test_access_and_format():
    with Fotad(extra=["--metrics-bind", "127.0.0.1:0"]) as d:
        st, _, j = d.api("GET", "/metrics", key=None)
        check(st == 401, "no key: %d %r" % (st, j))
        st, _, j = d.api("GET", "/metrics", key="0" * 40)
        check(st == 401, "unknown key: %d %r" % (st, j))
        pid = d.create_product("widget")["id"]
        dev = d.create_device(pid)
        st, _, j = d.api("GET", "/metrics", key=dev["owner_key"])
        check(st == 403, "owner key: %d %r" % (st, j))
        text = scrape(d)
        promtool(text)
        m = parse(text)
        check(value(m, "fota_build_info", version=re.search(r'version="([^"]+)"', text).group(1))
              == 1, "build info")
        check(value(m, "process_open_fds") > 0, "process_open_fds")
        # the keyless listener: the same metrics, no key; any other path is 404
        port = d.ports["metrics"]
        other = scrape(d, port=port, key=None)
        promtool(other)
        families = lambda t: re.findall(r"^# TYPE (\S+) ", t, re.M)  # noqa: E731
        check(families(other) == families(text), "the listener's families differ: %r, %r" %
              (families(other), families(text)))
        st, _, body = d.request("GET", "/", port=port)
        check(st == 404, "listener /: %d %r" % (st, body))
        st, _, body = d.request("GET", "/metrics", port=port, headers={"X": "y"})
        check(st == 200, "listener again: %d" % st)


def test_census_and_store():
    with Fotad() as d:
        m0 = parse(scrape(d))
        check(not any(k[0] == "fota_devices" for k in m0), "devices before any product: %r" %
              [k for k in m0 if k[0] == "fota_devices"])
        for state in ("running", "cancelling", "cancelled", "finished", "interrupted"):
            check(value(m0, "fota_rollouts", state=state) == 0, "rollouts %s at start" % state)
        creates0 = value(m0, "fota_store_op_duration_seconds_count", op="device_create")

        pid = d.create_product("plug")["id"]
        d.create_product("light")
        d.upload_release(pid, "v1.0")
        d.upload_release(pid, "v1.1")
        d.set_current(pid, "v1.1")
        devs = [d.create_device(pid) for _ in range(3)]
        m1 = parse(scrape(d))
        promtool(scrape(d))
        plug = {"product": "plug", "platform": "nonos"}
        light = {"product": "light", "platform": "nonos"}
        check(value(m1, "fota_devices", **plug) == 3, "devices of plug")
        check(("fota_devices", tuple(sorted(light.items()))) in m1, "light has no series")
        check(value(m1, "fota_devices", **light) == 0, "devices of light")
        check(value(m1, "fota_devices_online", **plug) == 0, "online before any connects")
        check(value(m1, "fota_devices_version", version="(none)", **plug) == 3,
              "devices without a version")
        check(value(m1, "fota_releases", **plug) == 2 and value(m1, "fota_releases", **light) == 0,
              "releases")
        check(value(m1, "fota_release_current_info", version="v1.1", **plug) == 1,
              "current release")
        check(value(m1, "fota_store_op_duration_seconds_count", op="device_create") ==
              creates0 + 3, "device_create calls timed")
        check(value(m1, "fota_store_errors_total") == 0, "store errors")

        # a stock device identifies with its version: online, and its version counted
        dev = StockDevice(d.device_port, devs[0]["master_device_key"])
        dev.send(first_frame(5, devs[0]["master_device_key"]))
        dev.recv_msg()

        def online():
            m = parse(scrape(d))
            return value(m, "fota_devices_online", **plug) == 1 and m
        m2 = wait_for(online, 10, "fota_devices_online = 1")
        check(value(m2, "fota_devices", **plug) == 3, "devices after the connect")
        dev.close()
        wait_for(lambda: value(parse(scrape(d)), "fota_devices_online", **plug) == 0, 10,
                 "fota_devices_online back to 0")

        # a rollout to the offline fleet: running, then cancelled
        st, _, j = d.api("POST", "/v1/rollouts/", {"product_id": pid, "version": "v1.1"})
        check(st == 202, "rollout: %d %r" % (st, j))
        m3 = parse(scrape(d))
        check(value(m3, "fota_rollouts", state="running") == 1, "one running rollout")
        rid = j["rollout"]["id"]
        st, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % rid)
        check(st in (200, 202), "cancel: %d %r" % (st, j))
        wait_for(lambda: value(parse(scrape(d)), "fota_rollouts", state="cancelled") == 1, 10,
                 "the rollout cancelled")
        m4 = parse(scrape(d))
        check(value(m4, "fota_rollouts", state="running") == 0, "no running rollout left")


def test_versions_capped():
    with Fotad(extra=["--metrics-versions", "2"]) as d:
        pid = d.create_product("cap")["id"]
        # versions as devices report them when they activate: 3 x a, 2 x b, 1 x c, 1 none ->
        # a and b, then c as "(other)" and the silent one as "(none)"
        for i, v in enumerate(["a", "a", "a", "b", "b", "c", None]):
            key = d.create_device(pid)["master_device_key"]
            if v is None:
                continue
            dev = StockDevice(d.device_port, key)
            dev.send(active_frame(100 + i, TOKEN, "18:fe:34:00:00:%02x" % i, v, key))
            check('"status": 200' in dev.recv_msg(), "activation of a device running %s" % v)
            dev.close()
        m = parse(scrape(d))
        cap = {"product": "cap", "platform": "nonos"}
        got = {k[1]: v for k, v in m.items() if k[0] == "fota_devices_version"}
        want = {tuple(sorted(dict(cap, version=v).items())): n
                for v, n in (("a", 3), ("b", 2), ("(other)", 1), ("(none)", 1))}
        check(got == want, "versions %r, wanted %r" % (got, want))


def raw_status(d, data):
    """The status of the reply to data sent on a fresh connection (0: closed first)."""
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    try:
        s.sendall(data)
        got = b""
        while b"\r\n" not in got:
            b = s.recv(4096)
            if not b:
                return 0
            got += b
        return int(got.split(b" ")[1])
    finally:
        s.close()


def moved(before, after):
    """{key: after - before} for every series that changed."""
    return {k: after.get(k, 0.0) - before.get(k, 0.0) for k in set(before) | set(after)
            if after.get(k, 0.0) != before.get(k, 0.0)}


def wait_metric(d, pred, what, timeout=10):
    """Scrapes until pred(parsed) holds; returns the parsed scrape."""
    def ok():
        m = parse(scrape(d))
        return m if pred(m) else None
    return wait_for(ok, timeout, what)


def test_traffic():
    with Fotad(legacy=True, extra=["--legacy-product", "plug", "--legacy-interval-ms", "1",
                                   "--legacy-timeout-ms", "1500",
                                   "--device-max-per-addr", "2"]) as d:
        pid = d.create_product("plug")["id"]
        d.upload_release(pid, "v1.1")
        d.set_current(pid, "v1.1")
        dv = d.create_device(pid)
        master, owner = dv["master_device_key"], dv["owner_key"]
        st, _, body = d.request("GET", "/v1/products/%d/roms/v1.1/files/user1.bin" % pid,
                                key=d.admin_key)
        check(st == 200, "user1.bin: %d" % st)
        size = len(body)
        m0 = parse(scrape(d))
        rom, legacy = {"endpoint": "rom"}, {"endpoint": "legacy"}

        # a ROM download, as the stock firmware asks for it
        _, head, got, _ = http_exchange(d.http_port,
                                        nonos_url("v1.1", "user1.bin", d.http_port,
                                                  master).encode())
        check(got == body, "download: %d bytes of %d (%r)" % (len(got), size, head[:80]))
        m1 = wait_metric(d, lambda m: value(m, "fota_downloads_total", result="complete",
                                            **rom) == 1, "the download counted")
        check(value(m1, "fota_download_bytes_total", **rom) == size,
              "rom bytes %r != %d" % (value(m1, "fota_download_bytes_total", **rom), size))
        check(value(m1, "fota_downloads_total", result="aborted", **rom) == 0, "aborted")
        check(value(m1, "fota_downloads_in_flight", **rom) == 0, "in flight after the end")

        # the device online: one channel connection; an RPC it answers, one while offline
        dev = StockDevice(d.device_port, master)
        dev.send(first_frame(5, master))
        dev.recv_msg()
        m2 = wait_metric(d, lambda m: value(m, "fota_device_connections") == 1, "a connection")
        join = run_in_thread(d.api, "POST", "/v1/datastreams/status/datapoint/"
                             "?deliver_to_device=true", {"datapoint": {"x": 1}}, owner)
        n = parse_nonce(dev.recv_msg())
        dev.send('{"status": 200, "datapoint": {"x": 1}, "nonce": %d, "deliver_to_device": true}\n'
                 % n)
        st, _, j = join()
        check(st == 200, "datastream RPC: %d %r" % (st, j))

        # refusals on the device channel: a third connection from 127.0.0.1 (limit 2), then a
        # line that is not JSON
        extra = StockDevice(d.device_port, master)
        over = StockDevice(d.device_port, master)
        check(over.closed(), "the connection over the per-address limit stays open")
        over.close()
        extra.send("not json\n")
        check(extra.closed(), "a bad frame leaves the connection open")
        extra.close()
        dev.close()
        wait_metric(d, lambda m: value(m, "fota_device_connections") == 0, "no connection left")
        st, _, j = d.api("GET", "/v1/device/rpc/?deliver_to_device=true&action=sys_reboot",
                         key=owner)
        check(st == 202, "RPC to an offline device: %d %r" % (st, j))

        # a legacy transfer, and a legacy connection that never sends its request byte
        r = stock_client(d.ports["legacy"], 1)
        check(r.ok and r.data == body, "legacy transfer: %s" % r.error)
        idle = StockDevice(d.ports["legacy"], "")
        check(idle.closed(timeout=10), "legacy: an idle connection is never closed")
        idle.close()
        # HTTP: a request without a key; refused on their heads: an upload without a key,
        # one with a device's key, two different Content-Lengths
        st, _, _ = d.api("GET", "/v1/products/", key=None)
        check(st == 401, "no key: %d" % st)
        up = ("POST /v1/products/%d/roms/ HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n"
              "Content-Type: multipart/form-data; boundary=b\r\n\r\n")
        for head, want in ((up % (pid, "", 1 << 20), 401),
                           (up % (pid, "Authorization: token %s\r\n" % owner, 1 << 20), 403),
                           ("POST /v1/products/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                            "Content-Length: 3\r\n\r\nabc", 400)):
            st = raw_status(d, head.encode())
            check(st == want, "refused on its head: %d, not %d (%r)" % (st, want, head[:60]))

        m3 = wait_metric(d, lambda m: value(m, "fota_legacy_transfers_total", result="timeout")
                         == 1 and value(m, "fota_legacy_transfers_total", result="ok") == 1,
                         "the legacy connections counted")
        delta = moved(m0, m3)
        want = {
            ("fota_downloads_total", (("endpoint", "rom"), ("result", "complete"))): 1,
            ("fota_download_bytes_total", (("endpoint", "rom"),)): size,
            ("fota_download_bytes_total", (("endpoint", "legacy"),)): size,
            ("fota_rpcs_total", (("result", "ok"),)): 1,
            ("fota_rpcs_total", (("result", "queued"),)): 1,
            ("fota_rpc_duration_seconds_count", ()): 1,
            ("fota_legacy_transfers_total", (("result", "ok"),)): 1,
            ("fota_legacy_transfers_total", (("result", "timeout"),)): 1,
            ("fota_refused_total", (("listener", "legacy"), ("reason", "timeout"))): 1,
            ("fota_refused_total", (("listener", "device"), ("reason", "per_addr"))): 1,
            ("fota_refused_total", (("listener", "device"), ("reason", "bad_frame"))): 1,
            ("fota_refused_total", (("listener", "http"), ("reason", "unauthorized"))): 2,
            ("fota_refused_total", (("listener", "http"), ("reason", "upload_forbidden"))): 1,
            ("fota_refused_total", (("listener", "http"), ("reason", "bad_request"))): 1,
        }
        for k, v in want.items():
            check(delta.get(k) == v, "%s moved by %r, not %r" % (k, delta.get(k), v))
        for k, v in delta.items():   # nothing else refused, failed or left in flight
            check(not k[0].startswith("fota_refused") or k in want, "also refused: %r" % (k,))
            check(k[0] not in ("fota_downloads_in_flight", "fota_device_connections",
                               "fota_store_errors_total", "fota_legacy_queued"),
                  "%r moved by %r" % (k, v))
        check(value(m2, "fota_rpc_duration_seconds_count") == 0, "RPC latency before the RPC")
        promtool(scrape(d))


def test_paused():
    with Fotad(extra=["--device-msg-rate", "1", "--device-msg-burst", "2"]) as d:
        pid = d.create_product("chatty")["id"]
        key = d.create_device(pid)["master_device_key"]
        m0 = parse(scrape(d))
        dev = StockDevice(d.device_port, key)
        dev.send(first_frame(5, key) + beacon_frame(key) * 3)   # 4 messages, a burst of 2
        for _ in range(4):
            dev.recv_msg()
        m1 = parse(scrape(d))
        dev.close()
        check(value(m1, "fota_device_paused_total", reason="rate") >
              value(m0, "fota_device_paused_total", reason="rate"), "no pause for the rate")
        check(value(m1, "fota_device_paused_total", reason="unread") == 0, "paused as unread")


if __name__ == "__main__":
    run_tests([test_access_and_format, test_census_and_store, test_versions_capped,
               test_traffic, test_paused])
