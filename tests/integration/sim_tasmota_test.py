"""sim_tasmota_test.py - fota-sim --profile tasmota (arduino-ota.md §8)
over Debian's mosquitto on loopback and a scripted HTTP server: the MQTT
face (tele/TOPIC/LWT Online, INFO1 with the version, Status 5 answered in
stat/TOPIC/STATUS5 with the MAC, OtaUrl and Upgrade 1 on the device topic
and the group topic), the OTA loop (9 attempts: 5 x the URL, 4 x URL.gz;
6 with a .gz URL; "Failed <getLastErrorString>"), a 304 taken as success
(a reboot with nothing new), and 200 devices upgraded by one group command
through the -minimal two-step (the full image does not fit: -100, the
minimal image, its reboot, then the full image)."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_ardserver as ar  # noqa: E402

V1 = "1.0.0(release-tasmota)"


def start_sim(mq, n, extra=(), scale="10", timeout=90):
    args = [ar.sim_path(), "--server", "127.0.0.1", "--profile", "tasmota", "--devices", str(n),
            "--mqtt-port", str(mq.port), "--initial-version", V1, "--time-scale", scale,
            "--timeout", str(timeout), "--json-devices", "--flash-mode", "dout"] + list(extra)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout=150):
    out, err = p.communicate(timeout=timeout)
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        assert bad not in err, err
    try:
        return p.returncode, json.loads(out), err
    except ValueError:
        raise AssertionError("fota-sim printed no JSON (rc %d):\n%s\n%s" % (p.returncode, out, err))


def lines_on(mq, topic_end):
    return [ln for ln in mq.lines() if ln.split(" ", 1)[0].endswith(topic_end)]


def test_mqtt_face_and_loop():
    srv = ar.ArdServer(lambda r: ar.reply(404, reason="Not Found"))
    mq = ar.Mosquitto()
    try:
        mq.subscribe_all()
        p = start_sim(mq, 1, ("--hold", "8"))
        info = ar.wait_for(lambda: lines_on(mq, "/INFO1"), 20, "INFO1")
        topic = info[0].split("/")[1]
        assert topic.startswith("tasmota_") and len(topic) == 14, info
        body = json.loads(info[0].split(" ", 1)[1])
        assert body["Info1"]["Version"] == V1 and body["Info1"]["GroupTopic"] == "cmnd/tasmotas/", body
        assert ("tele/%s/LWT Online" % topic) in mq.lines(), mq.lines()
        mq.publish("cmnd/%s/Status" % topic, "5")
        st5 = ar.wait_for(lambda: lines_on(mq, "/STATUS5"), 10, "STATUS5")
        net = json.loads(st5[0].split(" ", 1)[1])["StatusNET"]
        mac = net["Mac"]
        assert len(mac) == 17 and mac == mac.upper() and mac.startswith("5C:CF:7F:"), net
        mq.publish("cmnd/%s/OtaUrl" % topic, srv.url("/t/firmware.bin"))
        mq.publish("cmnd/%s/Upgrade" % topic, "1")
        up = ar.wait_for(lambda: lines_on(mq, "/UPGRADE"), 30, "the Upgrade result")
        assert up[0].endswith('{"Upgrade":"Failed File Not Found (404)"}'), up
        rc, j, err = finish(p)
        paths = [r.path for r in srv.taken()]
        assert paths == ["/t/firmware.bin"] * 5 + ["/t/firmware.bin.gz"] * 4, paths
        assert all(r.get("x-ESP8266-version") == V1 and r.get("x-ESP8266-STA-MAC") == mac
                   for r in srv.taken())
        res = [ln for ln in mq.lines() if ln.startswith("stat/%s/RESULT" % topic)]
        assert any('"Upgrade":"Version 1.0.0 from %s"' % srv.url("/t/firmware.bin") in ln for ln in res), res
        # a .gz OtaUrl: the counter drops to 1 below 5 - 6 attempts
        start = len(srv.taken())
        p = start_sim(mq, 1, ("--hold", "8", "--url", srv.url("/t/firmware.bin.gz"), "--seed", "5"))
        ar.wait_for(lambda: len(lines_on(mq, "/INFO1")) >= 2, 20, "the second INFO1")
        mq.publish("cmnd/tasmotas/Upgrade", "1")
        ar.wait_for(lambda: len(lines_on(mq, "/UPGRADE")) >= 2, 30, "the second Upgrade result")
        finish(p)
        paths = [r.path for r in srv.taken()[start:]]
        assert paths == ["/t/firmware.bin.gz"] * 6, paths
    finally:
        mq.close()
        srv.close()


def test_304_is_success():
    srv = ar.ArdServer(lambda r: ar.reply(304, reason="Not Modified"))
    mq = ar.Mosquitto()
    try:
        mq.subscribe_all()
        p = start_sim(mq, 1, ("--hold", "6", "--url", srv.url("/x/firmware.bin")))
        ar.wait_for(lambda: lines_on(mq, "/INFO1"), 20, "INFO1")
        mq.publish("cmnd/tasmotas/Upgrade", "1")
        ar.wait_for(lambda: lines_on(mq, "/UPGRADE"), 30, "the Upgrade result")
        ar.wait_for(lambda: len(lines_on(mq, "/INFO1")) >= 2, 30, "INFO1 after the restart")
        rc, j, err = finish(p)
        dev = j["per_device"][0]
        assert lines_on(mq, "/UPGRADE")[0].endswith('{"Upgrade":"Successful. Restarting"}')
        assert dev["boots"] == 2 and dev["version"] == V1, dev   # rebooted, nothing new
        assert any(ln.endswith("/LWT Offline") for ln in mq.lines()), mq.lines()
    finally:
        mq.close()
        srv.close()


def test_fleet_minimal_two_step():
    """200 devices, one group command: the full build does not fit (-100),
    so each fetches firmware-minimal.bin, reboots into it, and the minimal
    build fetches the full one from the same OtaUrl."""
    n = 200
    with tempfile.TemporaryDirectory() as tmp:
        full = ar.write_image(os.path.join(tmp, "full.bin"), "2.0.0(release-tasmota)", 200000, "dout")
        mini = ar.write_image(os.path.join(tmp, "mini.bin"), "2.0.0(minimal)", 64000, "dout")

        def handler(r):
            if r.path == "/o/firmware-minimal.bin":
                return ar.reply(200, mini)
            if r.path == "/o/firmware.bin":
                return ar.reply(200, full)
            return ar.reply(404, reason="Not Found")
        srv = ar.ArdServer(handler)
        mq = ar.Mosquitto()
        try:
            mq.subscribe_all(("tele/+/INFO1", "stat/+/UPGRADE", "fotasim/#"))
            p = start_sim(mq, n, ("--upgrade-to", "2.0.0", "--image-size", "200000",
                                  "--free-space", "131072", "--hold", "4", "--timeout", "120"),
                          scale="20", timeout=120)
            ar.wait_for(lambda: len(lines_on(mq, "/INFO1")) >= n, 60, "every device's INFO1")
            mq.publish("cmnd/tasmotas/OtaUrl", srv.url("/o/firmware.bin"))
            mq.publish("cmnd/tasmotas/Upgrade", "1")
            rc, j, err = finish(p, timeout=200)
            assert rc == 0 and j["upgraded"] == n, (rc, j["reasons"], err[-2000:])
            for dev in j["per_device"]:
                assert dev["booted"] == [V1, "other", "2.0.0"], dev
                assert dev["version"] == "2.0.0(release-tasmota)", dev
            by_mac = {}
            for r in srv.taken():
                by_mac.setdefault(r.get("x-ESP8266-STA-MAC"), []).append((r.path, r.get("x-ESP8266-version")))
            assert len(by_mac) == n, len(by_mac)
            for mac, seq in by_mac.items():
                assert seq == [("/o/firmware.bin", V1), ("/o/firmware-minimal.bin", V1),
                               ("/o/firmware.bin", "2.0.0(minimal)")], (mac, seq)
            ar.wait_for(lambda: len([ln for ln in lines_on(mq, "/INFO1")
                                     if '"Version":"2.0.0(release-tasmota)"' in ln]) == n, 20,
                        "every device's INFO1 with the new version")
        finally:
            mq.close()
            srv.close()


if __name__ == "__main__":
    for t in (test_mqtt_face_and_loop, test_304_is_success, test_fleet_minimal_two_step):
        t()
        print("ok  ", t.__name__)
