"""operator_messages_test.py - what fotad tells the people running and calling it: a key
sent as `Bearer` is told the scheme is token; a misspelt option of fotad or of `fotad legacy`
exits 2 naming the option meant; the start-up line lists only the ports that listen; a
product key asking for another product's device's messages gets 403, as for a device that
does not exist (200 with an empty list told which ids exist); names given through the API
(products', devices', an MQTT broker's user name) reach the log with their control bytes
escaped, and an MQTT user name with control bytes is refused (MQTT text has none)."""
import re

from fotatest import Fotad, bin_path, check, make_cert, run, run_tests


def test_bearer_scheme(d):
    st, _, j = d.request("GET", "/v1/products/", headers={"Authorization": "Bearer " + d.admin_key})
    body = j.decode()
    check(st == 401 and "scheme is token" in body, "Bearer: %d %s" % (st, body))
    st, _, j = d.api("GET", "/v1/products/", key="0" * 40)
    check(st == 401 and j["message"] == "invalid key", "wrong key: %d %r" % (st, j))


def test_misspelt_options():
    for args, meant in ((["--htp-port", "8080"], "--http-port"),
                        (["legacy", "--prot", "5555"], "--port")):
        p = run([bin_path("fotad")] + args)
        err = p.stderr.decode()
        check(p.returncode == 2, "fotad %s: exit %d, want 2:\n%s" % (args, p.returncode, err))
        check("unknown argument %s: did you mean %s?" % (args[-2], meant) in err,
              "fotad %s: message %r" % (args, err))


def test_startup_line():
    with Fotad() as d:   # no certificate, legacy off
        line = re.search(r"fotad starting .*", d.log_text()).group(0)
        for port in ("https=", "device_tls=", "legacy="):
            check(port not in line, "start-up line names %s without it listening: %s" % (port, line))
        check(" http=" in line and " device=" in line, "start-up line: %s" % line)
    cert, key = make_cert()
    with Fotad(https=True, device_tls=True, tls=(cert, key)) as d:
        line = re.search(r"fotad starting .*", d.log_text()).group(0)
        check("https=" in line and "device_tls=" in line, "start-up line with TLS: %s" % line)


def test_messages_of_another_product(d):
    a = d.create_product()
    b = d.create_product()
    dev_b = d.create_device(b["id"])["device"]
    st, _, ja = d.api("GET", "/v1/products/%d/" % a["id"])
    check(st == 200 and ja.get("product_key"), "product key of a: %d %r" % (st, ja))
    pkey = ja["product_key"]
    dev_a = d.create_device(a["id"])
    for key, role in ((pkey, "product key"), (dev_a["owner_key"], "owner key"),
                      (dev_a["master_device_key"], "master device key")):
        for dev_id, what in ((dev_b["id"], "another product's device"), (999999, "no device")):
            st, _, j = d.api("GET", "/v1/messages/?device_id=%d" % dev_id, key=key)
            check(st == 403, "%s of a, %s: %d %r" % (role, what, st, j))
    st, _, j = d.api("GET", "/v1/messages/?device_id=%d" % dev_b["id"])
    check(st == 200, "the admin key reads any device's messages: %d %r" % (st, j))
    st, _, j = d.api("GET", "/v1/messages/?device_id=999999")
    check(st == 404, "the admin key: no device is 404: %d %r" % (st, j))


def test_control_bytes_in_names_escaped(d):
    name = "evil\x1b[31m\r\nERROR forged line"
    p = d.create_product(name=name)
    d.create_device(p["id"], name="dev\x1b]0;title\x07\nx")
    st, _, _ = d.api("DELETE", "/v1/products/%d/" % d.create_product(name="gone\rx")["id"])
    check(st == 200, "delete product: %d" % st)
    # An arduino product's MQTT user name (its broker: a closed loopback port): MQTT text has
    # no control characters (libmosquitto refuses them: no client, an ERROR line); in the
    # log, one with spaces stays one value.
    body = {"name": "tasmota", "platform": "arduino",
            "mqtt": {"url": "mqtt://127.0.0.1:1", "username": "u\x1b[2J\r\nERROR forged mqtt"}}
    st, _, j = d.api("POST", "/v1/products/", body)
    check(st == 422 and "mqtt.username holds a control character" in j["message"],
          "MQTT user name with control bytes: %d %r" % (st, j))
    body["mqtt"]["username"] = "ops team=1"
    st, _, j = d.api("POST", "/v1/products/", body)
    check(st == 200, "arduino product with a broker: %d %r" % (st, j))
    path = "/v1/products/%d/mqtt" % j["product"]["id"]
    st, _, j = d.api("PUT", path, {"username": "v\x7f\tw\nERROR forged put"})
    check(st == 422, "PUT MQTT user name with control bytes: %d %r" % (st, j))
    st, _, j = d.api("PUT", path, {"username": "ops team=2"})
    check(st == 200, "PUT MQTT user name: %d %r" % (st, j))
    d.wait_log(r'mqtt settings product=\d+ broker=mqtt://127\.0\.0\.1:1 user="ops team=2"')
    d.wait_log(r'mqtt broker product=\d+ broker=mqtt://127\.0\.0\.1:1 user="ops team=\d"')
    text = d.log_text()
    for bad in ("\x1b", "\r", "\x07", "\x7f", "\t", "\nERROR forged", "\nx"):
        check(bad not in text, "raw %r from an API name in the log" % bad)
    check(re.search(r'product created id=\d+ name="evil\?\[31m\?\?ERROR forged line"', text),
          "escaped product name not in the log:\n%s" % text[-2000:])


run_tests([test_bearer_scheme, test_misspelt_options, test_startup_line,
           test_messages_of_another_product, test_control_bytes_in_names_escaped])
