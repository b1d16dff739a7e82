"""devchan_bad_test.py - bad input on the device channel: unknown keys, invalid JSON, a frame
before identify, a line over 2048 bytes, a silent connection, a flood from one address, a
connection that identifies as a second device. Each gets the documented refusal and a closed
connection; fotad stays up and serves others."""
import socket
import time

from devchan_util import (StockDevice, active_frame, beacon_frame, check, first_frame,
                          parse_nonce, start_fotad, wait_for)

BADKEY = "0" * 40
TOKEN = "f" * 40


def online(d, dev_id):
    st, _, j = d.api("GET", "/v1/devices/%d/" % dev_id)
    check(st == 200, "GET device %d: %s %r" % (dev_id, st, j))
    return j["device"]["online"]


def switch_refused(d):
    """A connection identified as device A that identifies (or activates) as device B is
    refused and closed: A goes offline with it, B never comes online on it."""
    pid = d.create_product()["id"]
    a, b = d.create_device(pid, name="a"), d.create_device(pid, name="b")
    ka, kb = a["master_device_key"], b["master_device_key"]
    ida, idb = a["device"]["id"], b["device"]["id"]
    for frame in (first_frame(11, kb),
                  active_frame(12, TOKEN, "18:fe:34:00:00:0b", "v1.0.5t45772(a)", kb)):
        dev = StockDevice(d.device_port, ka)
        dev.send(first_frame(10, ka))
        check('"status": 200' in dev.recv_msg(), "identify as a")
        wait_for(lambda: online(d, ida), 10, "device a online")
        dev.send(frame)
        msg = dev.recv_msg()
        check(msg == '{"message": "connection already identified with another key", '
              '"status": 409}\n', "switch refusal %r" % msg)
        check(dev.closed(), "connection not closed after identifying as another device")
        wait_for(lambda: not online(d, ida), 10, "device a offline after its connection closed")
        check(not online(d, idb), "device b online on a's connection")
        d.wait_log(r'device refused conn=\d+ dev=%d peer=127\.0\.0\.1:\d+ status=409 '
                   r'reason="identify as device %d on an identified connection"' % (ida, idb))
        d.wait_log(r"device offline conn=\d+ dev=%d" % ida)


def main():
    d = start_fotad("--http-timeout", "2", "--device-max-per-addr", "8")
    try:
        # identify with an unknown key: refusal (no "device", no "activate_status") + close
        dev = StockDevice(d.device_port, BADKEY)
        dev.send(first_frame(846930886, BADKEY))
        msg = dev.recv_msg()
        check(msg == '{"message": "unknown key", "status": 403}\n', "refusal %r" % msg)
        check(dev.closed(), "connection not closed after an unknown key")

        # activation with an unknown key: "activate_status": 0 with the echoed nonce
        dev = StockDevice(d.device_port, BADKEY)
        dev.send(active_frame(1804289383, TOKEN, "18:fe:34:97:f3:cd", "v1.0.5t45772(a)", BADKEY))
        msg = dev.recv_msg()
        check('"activate_status": 0' in msg and parse_nonce(msg) == 1804289383,
              "activation refusal %r" % msg)
        check(dev.closed(), "connection not closed after a refused activation")

        # invalid JSON
        dev = StockDevice(d.device_port, BADKEY)
        dev.send(b'{"path": "/v1/ping/", \n')
        check(dev.recv_msg() == '{"message": "invalid json", "status": 400}\n', "invalid json")
        check(dev.closed(), "not closed after invalid JSON")

        # a ping before identify
        dev = StockDevice(d.device_port, BADKEY)
        dev.send(beacon_frame(BADKEY))
        check(dev.recv_msg() == '{"message": "identify first", "status": 401}\n', "401")
        check(dev.closed(), "not closed after a frame before identify")

        # a line over 2048 bytes (no newline at all)
        dev = StockDevice(d.device_port, BADKEY)
        dev.send(b"{" + b"x" * 3000)
        check(dev.recv_msg() == '{"message": "line too long", "status": 413}\n', "413")
        check(dev.closed(), "not closed after a long line")

        # a connection that says nothing: closed after the hello timeout (http_timeout 2 s)
        t0 = time.monotonic()
        dev = StockDevice(d.device_port, BADKEY)
        check(dev.closed(timeout=8), "silent connection not closed")
        check(time.monotonic() - t0 >= 1.5, "silent connection closed too early")

        # flood: at most 8 from one address; the 9th is closed at once and logged
        socks = [socket.create_connection(("127.0.0.1", d.device_port)) for _ in range(8)]
        d.wait_log(r"device connected conn=\d+ .*", 5)
        extra = socket.create_connection(("127.0.0.1", d.device_port))
        extra.settimeout(5)
        check(extra.recv(10) == b"", "9th connection from one address not closed")
        # the line names the setting a fleet behind one NAT address raises
        d.wait_log(r'device connection refused conn=\d+ dev=0 peer=127\.0\.0\.1:\d+ '
                   r'reason="too many connections from this address" device_max_per_addr=8 ')
        for s in socks:
            s.close()
        extra.close()
        # the loop still serves: a fresh connection gets a refusal reply. fotad counts the
        # flood's sockets until it has read their close, so a connection made before that is
        # still the 9th: retry until the count is back (bounded), each try a real connection.
        def serves():
            try:
                dev = StockDevice(d.device_port, BADKEY)
                dev.send(beacon_frame(BADKEY))
                return "identify first" in dev.recv_msg()
            except OSError:
                return False
        deadline = time.monotonic() + 5
        while not serves():
            check(time.monotonic() < deadline, "server not serving after the flood")
        d.wait_log(r'reason="line over 2048 bytes"')
        d.wait_log(r'reason="identify with an unknown key"')
        switch_refused(d)
    finally:
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
