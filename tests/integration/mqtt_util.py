"""mqtt_util.py - Tasmota over MQTT for the integration tests (Python 3 stdlib): Debian's
mosquitto started on a loopback port with a temp config file (no system service), a minimal
MQTT 3.1.1 client (CONNECT with a will, SUBSCRIBE, PUBLISH at QoS 0, PINGREQ), and a stand-in
Tasmota device (reference arduino-ota §8; current Tasmota's MQTT face: tele/TOPIC/LWT
Online/Offline retained with the will, tele/TOPIC/INFO1 {"Info1":{"Module", "Version",
"FallbackTopic", "GroupTopic"}} after each boot, Status 5 and Status 2 answered on
stat/TOPIC/STATUS5 and STATUS2, OtaUrl, and Upgrade 1 running the OTA loop: 10 attempts
counted down, ".gz" appended from the sixth, the "-minimal" rewrite after -100/-107, 304
taken as success, {"Upgrade":"Successful. Restarting"} or {"Upgrade":"Failed ..."} on
stat/TOPIC/UPGRADE, then a restart).
"""
import json
import os
import pwd
import socket
import struct
import subprocess
import threading
import time

from arduino_util import core_request, md5
from fotatest import check, free_port, spawn, tempdir, wait_for


def mosquitto_path():
    for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto"):
        if os.access(p, os.X_OK):
            return p
    check(False, "Debian's mosquitto is not installed (scripts/deps.sh)")


class Mosquitto:
    """mosquitto on 127.0.0.1:port; users {name: password} makes it refuse anonymous
    clients (a password file made with mosquitto_passwd)."""

    def __init__(self, users=None):
        self.dir = tempdir("mosquitto-")
        self.port = free_port()
        conf = os.path.join(self.dir, "mosquitto.conf")
        # as root, mosquitto drops to the user "mosquitto", who may not read this dir
        lines = ["user %s" % pwd.getpwuid(os.geteuid()).pw_name,
                 "listener %d 127.0.0.1" % self.port, "persistence false",
                 "log_dest file %s" % os.path.join(self.dir, "mosquitto.log"),
                 "log_type error", "log_type warning", "log_type notice",
                 "max_keepalive 120"]
        if users:
            pw = os.path.join(self.dir, "passwd")
            open(pw, "w").close()
            for u, p in users.items():
                r = subprocess.run(["mosquitto_passwd", "-b", pw, u, p], capture_output=True)
                check(r.returncode == 0, "mosquitto_passwd: %r" % r.stderr)
            lines += ["allow_anonymous false", "password_file %s" % pw]
        else:
            lines.append("allow_anonymous true")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = spawn([mosquitto_path(), "-c", conf], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)

        def up():
            check(self.proc.poll() is None, "mosquitto exited: %s" % self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return True
            except OSError:
                return False
        wait_for(up, 10, "mosquitto on port %d" % self.port)

    @property
    def url(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(os.path.join(self.dir, "mosquitto.log")) as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


# ---------------------------------------------------------------- MQTT 3.1.1

def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack(">H", len(b)) + b


class MqttClient:
    """One session: on_message(topic, payload bytes) runs on the reader thread."""

    def __init__(self, port, client_id, will=None, on_message=None, username=None,
                 password=None, keepalive=60):
        self.on_message = on_message
        self.lock = threading.Lock()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        flags = 0x02
        payload = _str(client_id)
        if will:
            topic, msg, retain = will
            flags |= 0x04 | (0x20 if retain else 0)
            payload += _str(topic) + _str(msg)
        if username:
            flags |= 0x80
            payload += _str(username)
        if password:
            flags |= 0x40
            payload += _str(password)
        var = _str("MQTT") + bytes([4, flags]) + struct.pack(">H", keepalive)
        self._send(0x10, var + payload)
        t, body = self._read_packet()
        check(t == 0x20 and body[1] == 0, "CONNACK %r" % body)
        self.closed = False
        self.pid = 1
        self.suback = threading.Event()
        self.reader = threading.Thread(target=self._reader, daemon=True)
        self.reader.start()

    def _send(self, first, body):
        with self.lock:
            self.sock.sendall(bytes([first]) + _varint(len(body)) + body)

    def _recv_exact(self, n):
        out = b""
        while len(out) < n:
            b = self.sock.recv(n - len(out))
            if not b:
                raise EOFError
            out += b
        return out

    def _read_packet(self):
        first = self._recv_exact(1)[0]
        n, mult = 0, 1
        while True:
            b = self._recv_exact(1)[0]
            n += (b & 127) * mult
            mult *= 128
            if not b & 128:
                break
        return first & 0xF0, (first, self._recv_exact(n)) if first & 0xF0 == 0x30 else \
            self._recv_exact(n)

    def _reader(self):
        self.sock.settimeout(None)
        try:
            while True:
                t, body = self._read_packet()
                if t == 0x90:
                    self.suback.set()
                if t == 0x30 and self.on_message:
                    first, data = body
                    tl = struct.unpack(">H", data[:2])[0]
                    topic = data[2:2 + tl].decode()
                    at = 2 + tl + (2 if (first >> 1) & 3 else 0)
                    self.on_message(topic, data[at:])
        except (EOFError, OSError):
            pass
        self.closed = True

    def subscribe(self, *topics):
        """Subscribes at QoS 0 and waits for the SUBACK."""
        self.pid += 1
        self.suback.clear()
        body = struct.pack(">H", self.pid) + b"".join(_str(t) + b"\x00" for t in topics)
        self._send(0x82, body)
        check(self.suback.wait(10), "no SUBACK for %r" % (topics,))

    def publish(self, topic, payload, retain=False):
        if isinstance(payload, str):
            payload = payload.encode()
        self._send(0x30 | (1 if retain else 0), _str(topic) + payload)

    def ping(self):
        self._send(0xC0, b"")

    def disconnect(self):
        """A clean DISCONNECT: no will."""
        try:
            self._send(0xE0, b"")
        except OSError:
            pass
        self.close()

    def close(self):
        """Drops the connection (the broker publishes the will)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.reader.join(5)


class Recorder:
    """A client subscribed to filters, keeping (topic, payload text) in order."""

    def __init__(self, port, *filters):
        self.msgs = []
        self.cv = threading.Condition()
        self.c = MqttClient(port, "rec-%d" % id(self), on_message=self._on)
        self.c.subscribe(*filters)

    def _on(self, topic, payload):
        with self.cv:
            self.msgs.append((topic, payload.decode(errors="replace")))

    def matching(self, topic_end):
        with self.cv:
            return [(t, p) for t, p in self.msgs if t.endswith(topic_end)]

    def close(self):
        self.c.disconnect()


# ---------------------------------------------------------------- a Tasmota device

def tasmota_url_attempt(ota_url, attempt_index, ota_loader, minimal):
    """The URL of attempt n (0-based) of Every250mSeconds' loop (§8): the -minimal rewrite
    while RtcSettings.ota_loader is set (not in a minimal build), ".gz" appended from the
    sixth attempt (a URL with ".gz" anywhere makes that attempt the last)."""
    url = ota_url
    if ota_loader and not minimal:
        head, _, name = url.rpartition("/")
        dot = name.find(".")
        typ = name[dot:] if dot >= 0 else ""
        base = name[:dot] if dot >= 0 else name
        dash = name.rfind("-")
        if dash >= 0:
            base = name[:dash]
        url = head + "/" + base + "-minimal" + typ
    last = False
    if attempt_index >= 5:
        if ".gz" in url.lower():
            last = True
        else:
            url += ".gz"
    return url, last


class Tasmota:
    """A stand-in Tasmota device on the broker: mac "5C:CF:7F:XX:XX:XX", topic
    tasmota_XXXXXX, firmware image (its MD5 is what check-ins report), versions maps an
    image's MD5 to Tasmota's Version ("2.0.0(release-tasmota)", "2.0.0(minimal)")."""

    def __init__(self, broker_port, index, image, versions, area=1000000, attempt_gap=0.05):
        self.port = broker_port
        self.mac = "5C:CF:7F:%02X:%02X:%02X" % ((index >> 16) & 255, (index >> 8) & 255,
                                               index & 255)
        tail = self.mac.replace(":", "")[-6:]
        self.topic = "tasmota_" + tail
        self.client_id = "DVES_" + tail
        self.image, self.versions = image, versions
        self.area = area          # the sketch area: free space is what the image leaves
        self.hold = None          # an Event the restart after an upgrade waits for
        self.staged = None
        self.gap = attempt_gap
        self.ota_url = "http://ota.tasmota.com/tasmota/release/tasmota.bin.gz"
        self.ota_loader = 0
        self.boots = 0
        self.requests = []        # (url, status) of every attempt
        self.upgrades = []        # texts published on stat/TOPIC/UPGRADE
        self.busy = threading.Lock()
        self.mqtt = None
        self.commands = []
        self.boot()

    @property
    def version(self):
        return self.versions.get(md5(self.image), "0.0.0(unknown)")

    @property
    def free_space(self):
        return self.area - (len(self.image) + 4095) // 4096 * 4096

    @property
    def minimal(self):
        v = self.version
        return "(" in v and "minimal" in v[v.index("("):]

    def t(self, prefix, sub):
        return "%s/%s/%s" % (prefix, self.topic, sub)

    def boot(self):
        self.boots += 1
        self.mqtt = MqttClient(self.port, self.client_id, will=(self.t("tele", "LWT"), "Offline",
                                                               True), on_message=self._on)
        self.mqtt.subscribe("cmnd/%s/#" % self.topic, "cmnd/tasmotas/#",
                            "cmnd/%s_fb/#" % self.client_id)
        self.mqtt.publish(self.t("tele", "LWT"), "Online", retain=True)
        self.mqtt.publish(self.t("tele", "INFO1"), json.dumps(
            {"Info1": {"Module": "Generic", "Version": self.version,
                       "FallbackTopic": "cmnd/%s_fb/" % self.client_id,
                       "GroupTopic": "cmnd/tasmotas/"}}, separators=(",", ":")))
        if self.minimal and self.ota_loader == 1:
            self.ota_loader = 0        # "OTA: Propagating upload"
            threading.Thread(target=self.upgrade, daemon=True).start()

    def restart(self):
        """ESP.restart(): the TCP connection drops (the broker publishes Offline)."""
        self.mqtt.close()
        self.boot()

    def _on(self, topic, payload):
        cmd = topic.rsplit("/", 1)[-1]
        text = payload.decode(errors="replace")
        self.commands.append((cmd, text))
        if cmd.lower() == "status" and text == "5":
            self.mqtt.publish(self.t("stat", "STATUS5"), json.dumps({"StatusNET": {
                "Hostname": self.topic, "IPAddress": "127.0.0.1", "Gateway": "127.0.0.1",
                "Subnetmask": "255.0.0.0", "DNSServer1": "127.0.0.1", "DNSServer2": "0.0.0.0",
                "Mac": self.mac, "Webserver": 2, "HTTP_API": 1, "WifiConfig": 4,
                "WifiPower": 17.0}}, separators=(",", ":")))
        elif cmd.lower() == "status" and text == "2":
            self.mqtt.publish(self.t("stat", "STATUS2"), json.dumps({"StatusFWR": {
                "Version": self.version, "BuildDateTime": "2025-01-01T00:00:00",
                "Boot": 31, "Core": "2_7_8", "SDK": "2.2.2-dev(38a443e)", "CpuFrequency": 80,
                "Hardware": "ESP8266EX", "CR": "360/699"}}, separators=(",", ":")))
        elif cmd.lower() == "otaurl" and text:
            self.ota_url = text
            self.mqtt.publish(self.t("stat", "RESULT"), json.dumps({"OtaUrl": text}))
        elif cmd.lower() == "upgrade" and text == "1":
            self.mqtt.publish(self.t("stat", "RESULT"), json.dumps(
                {"Upgrade": "Version %s from %s" % (self.version.split("(")[0], self.ota_url)}))
            threading.Thread(target=self.upgrade, daemon=True).start()

    def attempt(self, url):
        """ESPhttpUpdate.update(client, url, version) of Tasmota's core (2.7: §2.1's bytes);
        returns (result, error): result 2 OK (staged), 1 no updates (304), 0 failed."""
        rest = url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        req = core_request("/" + path, hostport, version=self.version, mac=self.mac,
                           sketch_md5=md5(self.image), free_space=self.free_space,
                           sketch_size=len(self.image), chip_id=int(self.mac[-8:].replace(":", ""), 16))
        try:
            s = socket.create_connection((host, int(port or 80)), timeout=10)
        except OSError:
            return 0, -1, "HTTP error: connection failed"
        try:
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data:
                b = s.recv(65536)
                if not b:
                    return 0, -5, "HTTP error: connection lost"
                data += b
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ")[1])
            hdr = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                hdr[k.strip().lower()] = v.strip()
            if status == 304:
                return 1, 0, ""
            if status == 404:
                return 0, -102, "File Not Found (404)"
            if status == 403:
                return 0, -103, "Forbidden (403)"
            if status != 200:
                return 0, -104, "Wrong HTTP Code"
            length = int(hdr.get("content-length", "0") or 0)
            if length <= 0:
                return 0, -101, "Server Did Not Report Size"
            if length > self.free_space:
                return 0, -100, "Not Enough space"
            while len(body) < length:
                b = s.recv(65536)
                if not b:
                    return 0, 6, "Update error: ERROR[6]: Stream Read Timeout"
                body += b
            body = body[:length]
            if hdr.get("x-md5") and hdr["x-md5"] != md5(body):
                return 0, 7, "Update error: ERROR[7]: MD5 verification failed"
            self.staged = body
            return 2, 0, ""
        finally:
            s.close()

    def upgrade(self):
        """Every250mSeconds' OTA loop; then the restart a few seconds later (here at once)."""
        with self.busy:
            retry, ok, err, n = 10, 0, "", 0
            self.staged = None
            while True:
                retry -= 1
                if retry <= 0:
                    break
                url, last = tasmota_url_attempt(self.ota_url, n, self.ota_loader, self.minimal)
                n += 1
                if last:
                    retry = 1
                ok, code, err = self.attempt(url)
                self.requests.append((url, ok, code))
                if ok:
                    break
                if not self.minimal and code in (-100, -107):
                    self.ota_loader = 1       # try the minimal image next
                time.sleep(self.gap)
            if ok:
                text = "Successful. Restarting"
            else:
                text = "Failed " + err
            self.upgrades.append(text)
            self.mqtt.publish(self.t("stat", "UPGRADE"), json.dumps({"Upgrade": text},
                                                                    separators=(",", ":")))
            if ok:
                if ok == 2:
                    self.image = self.staged  # eboot copies it at the restart
                if self.hold is not None:
                    self.hold.wait(60)
                time.sleep(self.gap)
                self.restart()

    def close(self):
        self.mqtt.close()
