"""pull_util.py - what the tests of pull-based rollouts share (Python 3 stdlib): fotad with
its public_url, releases of distinct images, an ESPhttpUpdate device that sends the core's
exact request bytes (arduino_util.core_request, reference arduino-ota §2.1) and flashes what it
is served, and rollouts driven and read over the REST API.
"""
import json
import os
import signal

from arduino_util import build_image, core_request, exchange, md5
from fotatest import Fotad, check, tempdir, wait_for


def start_fotad(public_url=False, log_level="info"):
    """fotad on ephemeral ports; with public_url, that setting names its own HTTP port
    (loaded by a SIGHUP once the port is known)."""
    conf = os.path.join(tempdir("conf-"), "fotad.conf")
    open(conf, "w").close()
    d = Fotad(config=conf, log_level=log_level).start()
    if public_url:
        with open(conf, "w") as f:
            f.write("public_url = http://127.0.0.1:%d\n" % d.http_port)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log(r"configuration reloaded changed=.*public_url")
    return d


def images(n, seed=100):
    """n distinct images, one per release."""
    return [build_image(mode=3, seed=seed + i, irom=8000) for i in range(n)]


class PullDevice:
    """A sketch calling ESPhttpUpdate.update(client, URL, version): its flash holds one image
    (reported as x-ESP8266-sketch-md5), versions maps an image's MD5 to the version string
    the sketch sends. checkin() sends the core's request; a 200 with the whole body is
    flashed (the device reboots into it at once unless reboot=False)."""

    def __init__(self, d, key, mac, image, versions, free_space=1000000):
        self.d, self.key, self.mac = d, key, mac
        self.image, self.versions = image, versions
        self.free_space = free_space
        self.staged = None
        self.got = []          # status of every check-in

    @property
    def version(self):
        return self.versions.get(md5(self.image), "0.0.0")

    def checkin(self, reboot=True, name="firmware.bin"):
        host = "127.0.0.1:%d" % self.d.http_port
        req = core_request("/v1/arduino/%s/%s" % (self.key, name), host, version=self.version,
                           mac=self.mac, sketch_md5=md5(self.image),
                           free_space=self.free_space, sketch_size=len(self.image))
        a = exchange(self.d.http_port, req)
        self.got.append(a.status)
        if a.status == 200 and a.h("Content-Length") == str(len(a.body)):
            check(a.h("x-MD5") == md5(a.body), "x-MD5 of the body")
            self.staged = a.body
            if reboot:
                self.reboot()
        return a

    def reboot(self):
        if self.staged is not None:
            self.image, self.staged = self.staged, None


def mac_of(i, prefix="5C:CF:7F"):
    return "%s:%02X:%02X:%02X" % (prefix, (i >> 16) & 255, (i >> 8) & 255, i & 255)


def rollout_create(d, pid, version, **opts):
    body = {"product_id": pid, "version": version}
    body.update(opts)
    st, _, j = d.api("POST", "/v1/rollouts/", body)
    check(st == 202, "create rollout: %d %r" % (st, j))
    return j["rollout"]


def rollout_get(d, rid):
    st, _, j = d.api("GET", "/v1/rollouts/%d/" % rid)
    check(st == 200, "rollout %d: %d %r" % (rid, st, j))
    return j["rollout"]


def rollout_members(d, rid):
    """{device_id: member} of every member (paged)."""
    out, cursor = {}, None
    for _ in range(10000):
        path = "/v1/rollouts/%d/devices/?limit=1000" % rid + ("&cursor=%d" % cursor if cursor
                                                               else "")
        st, _, j = d.api("GET", path)
        check(st == 200, "members: %d %r" % (st, j))
        for m in j["devices"]:
            out[m["device_id"]] = m
        cursor = j["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("members: no last page")


def wait_rollout(d, rid, pred, what, timeout=20.0):
    return wait_for(lambda: (lambda r: r if pred(r) else None)(rollout_get(d, rid)), timeout,
                    "rollout %d %s" % (rid, what))


def devices_by_mac(d, pid):
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
    check(st == 200, "devices: %d" % st)
    return {x["name"]: x for x in j["devices"]}


def commands(d, device_id):
    st, _, j = d.api("GET", "/v1/devices/%d/commands/" % device_id)
    check(st == 200, "commands of %d: %d %r" % (device_id, st, j))
    return j["commands"]


def dumps(x):
    return json.dumps(x, sort_keys=True)
