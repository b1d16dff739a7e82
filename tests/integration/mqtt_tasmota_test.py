"""mqtt_tasmota_test.py - Tasmota fleets over MQTT (docs/arduino.md, "Tasmota over MQTT"):
Debian's mosquitto on loopback and stand-in Tasmota devices (mqtt_util.Tasmota: current
Tasmota's topics and payloads, the OTA loop of reference arduino-ota §8 with the core's
request bytes). fotad discovers each device by its topic, learns its MAC with Status 5 (the
same device as its HTTP check-ins), shows the broker settings without the password, triggers
a rollout's offer with OtaUrl and Upgrade 1 within the window, and confirms by the INFO1
after the reboot (a minimal build is a step); a device's "Failed" ends its upgrade; an INFO1
missed while fotad was down is made up by Status 2.
"""
import json
import threading

from arduino_util import arduino_product, build_image, core_request, exchange, md5, release
from fotatest import check, run_tests, wait_for
from mqtt_util import Mosquitto, Recorder, Tasmota
from pull_util import devices_by_mac, rollout_create, start_fotad, wait_rollout

V1, V2, V2MIN = "1.0.0(release-tasmota)", "2.0.0(release-tasmota)", "2.0.0(minimal)"


def mqtt_state(d, pid):
    st, _, j = d.api("GET", "/v1/products/%d/mqtt" % pid)
    check(st == 200, "mqtt state: %d %r" % (st, j))
    return j["mqtt"]


def wait_found(d, pid, n, timeout=20, version=None):
    """Every one of n devices discovered (its MAC known) and Online, as the broker's state says
    and as the device list shows (its row's `arduino.mqtt`, and rom_version when given): the
    mqtt module writes a device's fields after it found it (a store job on PostgreSQL)."""
    def found():
        m = mqtt_state(d, pid)
        devs = [x for x in m.get("devices", []) if x["device_id"] and x["lwt"] == "Online"]
        if len(devs) < n:
            return None
        rows = {x["id"]: x for x in devices_by_mac(d, pid).values()}
        for x in devs:
            row = rows.get(x["device_id"])
            mq = row and row["arduino"]["mqtt"]
            if not mq or mq["topic"] != x["topic"] or mq["lwt"] != "Online":
                return None
            if version and row["rom_version"] != version:
                return None
        return devs
    return wait_for(found, timeout, "%d devices found over MQTT" % n)


def test_settings_and_discovery():
    """The broker's settings (the password never comes back), a wrong password reported and
    fixed, three devices found by topic and MAC: the HTTP check-in of the same MAC is the
    same device; a device that drops off is Offline."""
    mq = Mosquitto(users={"fotad": "s3cret-pw", "dev": "devpw"})
    d = start_fotad(public_url=True)
    devs = []
    try:
        p, key = arduino_product(d, "plugs", mqtt={"url": mq.url, "username": "fotad",
                                                    "password": "wrong"})
        check(p["mqtt"] == {"url": mq.url, "username": "fotad", "password_set": True},
              "product's mqtt: %r" % p["mqtt"])
        st, _, raw = d.api("GET", "/v1/products/%d/" % p["id"], raw=True)
        check(b"wrong" not in raw, "the password never comes back: %r" % raw)
        m = wait_for(lambda: (lambda x: x if x.get("error") else None)(mqtt_state(d, p["id"])),
                     15, "the refusal reported")
        check(not m["connected"] and "authori" in m["error"], "refused: %r" % m)
        # the right password (the user name kept)
        st, _, j = d.api("PUT", "/v1/products/%d/mqtt" % p["id"], {"password": "s3cret-pw"})
        check(st == 200 and b"s3cret" not in json.dumps(j).encode(), "put: %d %r" % (st, j))
        wait_for(lambda: mqtt_state(d, p["id"])["connected"], 15, "connected")
        img = build_image(mode=3, seed=7, irom=8000)
        devs = [TasmotaAuth(mq.port, i + 1, img, {md5(img): V1}) for i in range(3)]
        found = wait_found(d, p["id"], 3, version="1.0.0")
        by_mac = devices_by_mac(d, p["id"])
        for t in devs:
            x = by_mac[t.mac]
            check(x["arduino"]["mqtt"]["topic"] == t.topic and
                  x["arduino"]["mqtt"]["lwt"] == "Online" and
                  x["arduino"]["mqtt"]["version"] == V1, "device %r" % x)
            check(x["rom_version"] == "1.0.0", "version from INFO1: %r" % x)
            check(x["online"] is True, "online by its LWT: %r" % x)
        check({f["topic"] for f in found} == {t.topic for t in devs}, "topics %r" % found)
        # an HTTP check-in of the first: the same device, no new one
        host = "127.0.0.1:%d" % d.http_port
        a = exchange(d.http_port, core_request("/v1/arduino/%s/firmware.bin" % key, host,
                                               version=V1, mac=devs[0].mac,
                                               sketch_md5=md5(img)))
        check(a.status in (200, 304), a.status_line)
        check(len(devices_by_mac(d, p["id"])) == 3, "still 3 devices")
        # dropped off: the broker's will says Offline
        devs[2].close()
        wait_for(lambda: devices_by_mac(d, p["id"])[devs[2].mac]["arduino"]["mqtt"]["lwt"] ==
                 "Offline", 10, "Offline")
        check(devices_by_mac(d, p["id"])[devs[2].mac]["online"] is False, "offline")
        # settings: a bad URL is refused, null removes the broker
        st, _, j = d.api("PUT", "/v1/products/%d/mqtt" % p["id"], {"url": "http://x"})
        check(st == 422, "bad url: %d %r" % (st, j))
        st, _, j = d.api("PUT", "/v1/products/%d/mqtt" % p["id"], {"url": None})
        check(st == 200 and j["mqtt"] is None, "removed: %d %r" % (st, j))
        d.wait_log(r"mqtt broker left product=%d" % p["id"])
        d.stop()
    finally:
        for t in devs:
            t.close()
        d.cleanup()
        mq.stop()


class TasmotaAuth(Tasmota):
    """A stand-in that logs in to a broker with users."""

    def boot(self):
        from mqtt_util import MqttClient
        self.boots += 1
        self.mqtt = MqttClient(self.port, self.client_id, will=(self.t("tele", "LWT"), "Offline",
                                                               True), on_message=self._on,
                               username="dev", password="devpw")
        self.mqtt.subscribe("cmnd/%s/#" % self.topic)
        self.mqtt.publish(self.t("tele", "LWT"), "Online", retain=True)
        self.mqtt.publish(self.t("tele", "INFO1"), json.dumps(
            {"Info1": {"Module": "Generic", "Version": self.version,
                       "FallbackTopic": "cmnd/%s_fb/" % self.client_id,
                       "GroupTopic": "cmnd/tasmotas/"}}, separators=(",", ":")))


def fleet(d, mq, n, name, minimal=True):
    """A product on mq with 1.0.0 current and 2.0.0 (full, and a minimal build): the full
    image does not fit beside the running one (-100), the minimal one does."""
    full = build_image(mode=3, seed=21, irom=60000)     # 72656 bytes
    small = build_image(mode=3, seed=22, irom=20000)    # 36 KiB in flash
    mini = build_image(mode=3, seed=23, irom=4000)      # 20 KiB in flash
    p, key = arduino_product(d, name, mqtt={"url": mq.url})
    release(d, p["id"], "1.0.0", small, current=True)
    release(d, p["id"], "2.0.0", full, current=False, minimal=mini if minimal else None)
    versions = {md5(small): V1, md5(full): V2, md5(mini): V2MIN}
    area = 98304          # beside 1.0.0: 60 KiB free (-100); beside the minimal build: 76 KiB
    devs = [Tasmota(mq.port, i + 1, small, versions, area=area) for i in range(n)]
    wait_found(d, p["id"], n)
    return p, key, devs, full, mini


def test_rollout_over_mqtt():
    """A rollout offers 2.0.0 to 6 devices, 2 at a time: each is told OtaUrl (its product's
    URL under public_url) and Upgrade 1, refuses the full image (-100), takes firmware-
    minimal.bin, reboots into it (INFO1 of the minimal build: a step), fetches the full image
    and reboots: its INFO1 confirms. The rollout finishes with 6 successes."""
    mq = Mosquitto()
    d = None
    devs = []
    try:
        d = start_fotad(public_url=True)
        rec = Recorder(mq.port, "cmnd/#")
        p, key, devs, full, mini = fleet(d, mq, 6, "tas")
        r = rollout_create(d, p["id"], "2.0.0", window=2)
        check(r["total"] == 6 and r["waiting"] == 6, "online by LWT: %r" % r)
        busy = []

        def sample():   # never more than 2 devices between their trigger and confirmation
            x = wait_rollout(d, r["id"], lambda x: True, "")
            busy.append(x["in_progress"])
            return x["state"] == "finished"
        wait_for(sample, 60, "rollout finished", interval=0.05)
        r = wait_rollout(d, r["id"], lambda x: True, "")
        check(r["succeeded"] == 6 and r["failed"] == 0 and r["timed_out"] == 0, "counts %r" % r)
        check(max(busy) <= 2, "window: %r" % max(busy))
        url = "http://127.0.0.1:%d/v1/arduino/%s/firmware.bin" % (d.http_port, key)
        for t in devs:
            check(t.version == V2, "%s runs %s" % (t.topic, t.version))
            paths = [u.rsplit("/", 1)[1] for u, ok, code in t.requests]
            check(paths == ["firmware.bin", "firmware-minimal.bin", "firmware.bin"],
                  "%s fetched %r" % (t.topic, t.requests))
            check(("OtaUrl", url) in t.commands and ("Upgrade", "1") in t.commands,
                  "%s was told %r" % (t.topic, t.commands))
        by_mac = devices_by_mac(d, p["id"])
        check(all(by_mac[t.mac]["rom_version"] == "2.0.0" for t in devs), "rom_versions")
        ups = [tp for tp, pl in rec.matching("/Upgrade")]
        check(len(ups) == 6, "one Upgrade per device: %r" % ups)
        st, _, j = d.api("GET", "/v1/messages/?product_id=%d&limit=200" % p["id"])
        ok = [x for x in j["messages"] if x["action"] == "device_upgrade_success"]
        check(len(ok) == 6 and all(x["body"]["version"] == V2 for x in ok), "messages %r" % ok)
        check(mqtt_state(d, p["id"])["confirmed"] == 6, "confirmed by INFO1")
        rec.close()
        d.stop()
    finally:
        for t in devs:
            t.close()
        if d:
            d.cleanup()
        mq.stop()


def test_failed_and_missed_info1():
    """A release too big without a minimal build: Tasmota's loop ends "Failed ..." and that
    fails the member (max_failures 0 pauses the rollout; it is cancelled then). Then an upgrade whose INFO1 fotad
    misses while it is stopped is confirmed after the start by Status 2."""
    mq = Mosquitto()
    d = None
    devs = []
    try:
        d = start_fotad(public_url=True)
        p, key, devs, full, mini = fleet(d, mq, 2, "fail", minimal=False)
        r = rollout_create(d, p["id"], "2.0.0", window=1, max_failures=0)
        r = wait_rollout(d, r["id"], lambda x: x["state"] == "paused", "paused", timeout=30)
        check(r["failed"] == 1 and r["halted"] and r["waiting"] + r["queued"] == 1,
              "counts %r" % r)
        st, _, j = d.api("POST", "/v1/rollouts/%d/cancel" % r["id"])
        check(st == 200 and j["rollout"]["cancelled"] == 1, "cancel %d %r" % (st, j))
        first = next(t for t in devs if t.upgrades)
        check(first.upgrades[-1].startswith("Failed"), "Tasmota's result %r" % first.upgrades)
        st, _, j = d.api("GET", "/v1/messages/?product_id=%d" % p["id"])
        bad = [x for x in j["messages"] if x["action"] == "device_upgrade_failed" and
               "Failed" in x["body"].get("reason", "")]
        check(bad, "the failure's message: %r" % j["messages"][:5])

        # a small 3.0.0 that fits: the device downloads it, fotad stops before its reboot
        v3 = build_image(mode=3, seed=31, irom=9000)
        release(d, p["id"], "3.0.0", v3, current=False)
        for t in devs:
            t.versions[md5(v3)] = "3.0.0(release-tasmota)"
            t.hold = threading.Event()
        other = next(t for t in devs if t is not first)
        r = rollout_create(d, p["id"], "3.0.0", window=1, filter={"device_ids": [
            devices_by_mac(d, p["id"])[other.mac]["id"]]})
        wait_for(lambda: other.staged is not None or other.image == v3, 20, "downloaded")
        d.stop()
        other.hold.set()                   # reboots: its INFO1 goes nowhere
        wait_for(lambda: other.boots >= 2 and other.version.startswith("3.0.0"), 10, "rebooted")
        d.start()
        r = wait_rollout(d, r["id"], lambda x: x["state"] == "finished", "confirmed", timeout=20)
        check(r["succeeded"] == 1, "counts %r" % r)
        check(("Status", "2") in other.commands, "asked Status 2: %r" % other.commands)
        d.stop()
    finally:
        for t in devs:
            if t.hold:
                t.hold.set()
            t.close()
        if d:
            d.cleanup()
        mq.stop()


run_tests([test_settings_and_discovery, test_rollout_over_mqtt, test_failed_and_missed_info1])
