"""devchan_upgrade_test.py - the seed's nine steps with a stock-style client, plain and TLS:
activate -> ping -> sys_upgrade via the seed's curl line (version=v1.1) -> D4 reply ->
HEAD+GET of the other slot's image with the 15-byte-copied version, byte-identical ->
D7 success -> GET /v1/devices/ID/ shows v1.1 -> sys_reboot -> the device reconnects.
Every reply is checked byte-level against espressif-protocol.md §2.4/§2.5/§3.5."""
import json
import ssl
import subprocess
import tempfile

from devchan_util import (StockDevice, active_frame, beacon_frame, check, copy_version,
                          check_rom_header, content_length, first_frame, http_exchange,
                          libupgrade_head, make_cert, nonos_url, parse_nonce, rpc_response_frame,
                          run_in_thread, start_fotad, timer_frame, upgrade_frame, wait_for)

from fotatest import make_image

TOKEN = "6f2e1f3b5d8c4a7e9b0c1d2e3f4a5b6c7d8e9f0a"
BSSID = "18:fe:34:97:f3:cd"
PRE = "v1.0.5t45772(a)"


def setup(d):
    pid = d.create_product(name="plug", serial="45772", flash_map=2)["id"]
    user1, user2 = make_image(1, 2, "v1.1"), make_image(2, 2, "v1.1")
    d.upload_release(pid, "v1.1", files=[("user1.bin", user1), ("user2.bin", user2)])
    j = d.create_device(pid, name="plug-1")
    return pid, j["device"]["id"], j["master_device_key"], j["owner_key"], user2


def curl_rpc(d, owner, query):
    """The seed's curl line (Linux form), pointed at this fotad."""
    url = "http://127.0.0.1:%d/v1/device/rpc/?deliver_to_device=true&%s" % (d.http_port, query)
    p = subprocess.run(["curl", "-s", "-X", "GET", "-H", "Content-Type:application/json", "-H",
                        "Authorization: token " + owner, "-w", "\n%{http_code}", url],
                       capture_output=True, timeout=60)
    body, _, code = p.stdout.decode().rpartition("\n")
    return int(code), json.loads(body)


def flow(tls):
    certdir = tempfile.mkdtemp(prefix="fota-cert-")
    d = start_fotad(tls=make_cert(certdir) if tls else None)
    try:
        pid, dev_id, master, owner, user2 = setup(d)
        port = d.device_tls_port if tls else d.device_port
        # 1. activate (D1), then the stock device identifies (D2) and fetches timers (D6)
        dev = StockDevice(port, master, tls=tls)
        if tls:
            check(dev.cipher[0] == "AES128-SHA", "cipher %s" % (dev.cipher,))
        dev.send(active_frame(1804289383, TOKEN, BSSID, PRE, master))
        msg = dev.recv_msg()
        check(msg == ('{"activate_status": 1, "device": {"id": %d}, "message": "device activated", '
                      '"nonce": 1804289383, "status": 200}\n' % dev_id), "activation reply %r" % msg)
        check(msg[msg.find('"activate_status": ') + 19] == "1", "pstr[19] != '1'")
        dev.send(first_frame(846930886, master))
        msg = dev.recv_msg()
        check('"activate_status": ' not in msg and parse_nonce(msg) == 846930886 and "device" in msg
              and '"method": ' not in msg, "identify reply %r" % msg)
        dev.send(timer_frame(master))
        msg = dev.recv_msg()
        check(msg.startswith('{"status": 200, "timestamp": ') and msg.endswith(', "timers": ""}\n')
              and "/v1/device/timers/" not in msg, "timers reply %r" % msg)
        v = d.device_view(dev_id)
        check(v["activated"] and v["bssid"] == BSSID and v["rom_version"] == PRE, "device %r" % v)
        # 2. ping
        dev.send(beacon_frame(master))
        check(dev.recv_msg() == '{"message": "ping success", "status": 200}\n', "ping reply")
        wait_for(lambda: d.device_view(dev_id)["online"], 5, "device online")
        # 3. sys_upgrade via the seed's curl line (blocks until the D4)
        join = run_in_thread(curl_rpc, d, owner, "action=sys_upgrade&version=v1.1")
        push = dev.recv_msg(timeout=10)
        nonce = parse_nonce(push)
        expect = ('{"deliver_to_device": true, "get": {"action": "sys_upgrade", "version": '
                  '"v1.1~~~~~~~~~~~"}, "meta": {"Authorization": "token %s"}, "method": "GET", '
                  '"nonce": %d, "path": "/v1/device/rpc/"}\n' % (owner, nonce))
        check(push == expect, "push %r" % push)
        check(0 < nonce <= 0x7FFFFFFF and len(push) < 1460 and "\\/" not in push, "push rules")
        check('"activate_status": ' not in push and '"action": "sys_upgrade"' in push, "dispatch")
        version = copy_version(push)  # what IoT_Demo puts into its URL and its D7
        check(version == "v1.1~~~~~~~~~~~", "15-byte copy %r" % version)
        # 4. the device answers at once
        dev.send(rpc_response_frame(nonce))
        code, j = join()
        check(code == 200 and j["status"] == 200 and j["nonce"] == nonce, "rpc reply %s %s"
              % (code, j))
        check(j["command"]["state"] in ("acked", 3), "command state %r" % j["command"])
        # 5. NONOS >= 2.0: HEAD (Connection: close), then GET (keep-alive) of the other slot
        url = nonos_url(version, "user2.bin", d.http_port, master)
        first, header, body, closed = http_exchange(d.http_port, libupgrade_head(url).encode())
        check_rom_header(first, header, len(user2), "user2.bin")
        check(body == b"" and closed, "HEAD sent a body (%d bytes) or stayed open" % len(body))
        first, header, body, closed = http_exchange(d.http_port, url.encode())
        check_rom_header(first, header, len(user2), "user2.bin")
        check(body == user2, "GET body differs (%d vs %d bytes)" % (len(body), len(user2)))
        check(closed, "connection not closed after the body")
        if tls:  # the same download over HTTPS (443 role): no sendfile, same bytes
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            first, header, body, closed = http_exchange(d.ports["https"], url.encode(), tls=ctx)
            check(b"200 OK\r\n" in header and content_length(header) == len(user2), "https hdr")
            check(body == user2 and closed, "HTTPS body differs (%d bytes)" % len(body))
        # 6. D7 success with the copied version
        dev.send(upgrade_frame(master, "device_upgrade_success", PRE, version))
        check(dev.recv_msg() == '{"message": "send message success", "status": 200}\n', "D7 reply")
        # 7. the API shows the new version
        wait_for(lambda: d.device_view(dev_id)["rom_version"] == "v1.1", 5, "rom_version v1.1")
        # 8. sys_reboot: done when written (stock devices do not answer)
        code, j = curl_rpc(d, owner, "action=sys_reboot")
        check(code == 200, "sys_reboot %s %s" % (code, j))
        push = dev.recv_msg()
        check('"action": "sys_reboot"' in push and '"action": "sys_upgrade"' not in push,
              "reboot push %r" % push)
        # 9. the device reboots into the new image and identifies again
        dev.close()
        wait_for(lambda: not d.device_view(dev_id)["online"], 5, "device offline after reboot")
        dev = StockDevice(port, master, tls=tls)
        dev.send(first_frame(12345, master))
        msg = dev.recv_msg()
        check(parse_nonce(msg) == 12345 and '"activate_status": ' not in msg, "re-identify")
        wait_for(lambda: d.device_view(dev_id)["online"], 5, "device online after reboot")
        dev.close()
    finally:
        d.stop()


def main():
    flow(tls=False)
    flow(tls=True)
    print("ok")


if __name__ == "__main__":
    main()
