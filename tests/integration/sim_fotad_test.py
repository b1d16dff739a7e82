"""sim_fotad_test.py - fota-sim against the real fotad: the simulator
registers its devices through the REST API (POST /v1/products/ID/devices/
with the admin key), the devices activate on the device channel, the sim
asks for sys_upgrade by RPC, the devices download from fotad's ROM
endpoint, report D7, are rebooted by RPC and come up on the new version.
Profiles nonos, rtos and fota (with a dropped download resumed by Range),
power cuts, the channel over TLS, and seed-dfu on fotad's legacy port."""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from fotatest import Fotad, check, run_tests  # noqa: E402

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"


def field(out, name):
    m = re.search(r"^\s+%s:\s+(\d+)" % name, out, re.M)
    return int(m.group(1)) if m else -1


def sim(d, pid, profile, n, seed, extra=()):
    return st.run_sim(["--server", "127.0.0.1", "--http-port", str(d.ports["http"]),
                       "--device-port", str(d.ports["device"]), "--key", d.admin_key,
                       "--product", str(pid), "--profile", profile, "--devices", str(n),
                       "--upgrade-to", V2, "--initial-version", V1, "--seed", str(seed),
                       "--time-scale", "20", "--timeout", "60"] + list(extra), timeout=90)


def test_profiles(d):
    with tempfile.TemporaryDirectory() as tmp:
        pid = st.stock_product(d, tmp, V2)
        for seed, profile, n, extra in ((1, "nonos", 4, ()), (2, "rtos", 2, ()),
                                        (3, "fota", 2, ("--faults", "drop@15000")),
                                        (4, "nonos", 2, ("--faults", "flash@12")),
                                        (5, "nonos", 2, ("--faults", "rx@20000"))):
            rc, out, err = sim(d, pid, profile, n, seed, extra)
            check(rc == 0, "%s %s: rc %d\n%s\n%s\n%s" % (profile, extra, rc, out, err,
                                                      d.log_text()[-3000:]))
            check(field(out, "upgraded") == n and field(out, "activated") == n,
                  "%s: %s" % (profile, out))
            if "--faults" in extra and not extra[1].startswith("drop"):
                check(field(out, "power cuts") == n, "%s: %s" % (extra, out))
        st_, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
        check(st_ == 200, "device list %r" % j)
        devs = j.get("devices", [])
        check(len(devs) == 12, "12 registered devices, got %d" % len(devs))
        check(all(x.get("rom_version") == V2 for x in devs),
              "fotad saw every D7: %r" % [x.get("rom_version") for x in devs])


def test_whole_sequence(d):
    """The seed's sequence for every profile, step by step in fotad's log: activate (with
    the old version), sys_upgrade pushed and answered, HEAD (nonos) and GET from the ROM
    endpoint, device_upgrade_success reported, sys_reboot pushed, the device drops its
    connection and comes back running the new image (fota-sim's boot log), answered
    pings keep that connection (no further reconnect while it is held)."""
    with tempfile.TemporaryDirectory() as tmp:
        pid = st.stock_product(d, tmp, V2)
        for seed, profile in ((11, "nonos"), (12, "rtos"), (13, "fota")):
            start = len(d.log_text())
            rc, out, err = sim(d, pid, profile, 2, seed,
                               ("--hold", "3", "--time-scale", "50", "--json-devices"))
            check(rc == 0, "%s: rc %d\n%s\n%s" % (profile, rc, out, err))
            devs = json.loads(out)["per_device"]
            log = d.log_text()[start:]
            for x in devs:
                check(x["state"] == "done" and x["booted"] == [V1, V2] and x["power_cuts"] == 0,
                      "%s: %r" % (profile, x))
                dev = r"dev=%d\b" % x["id"]
                lines = [ln for ln in log.splitlines() if re.search(dev, ln)]

                def first(pat, after=0, lines=lines):
                    for i in range(after, len(lines)):
                        if re.search(pat, lines[i]):
                            return i
                    check(False, "%s dev %d: no /%s/ after line %d:\n%s" %
                          (profile, x["id"], pat, after, "\n".join(lines)))
                # channel events are logged in order by the device loop; downloads by
                # the HTTP loops, whose lines can come before the device loop's
                # "command delivered" of the push that caused them (a fast device sends
                # D4 and its HEAD while fotad's device loop is still logging), so
                # only "after the device came online" is certain for them
                i = first(r"device activated .*rom_version=" + re.escape(V1))
                on = i = first(r"device online", i)
                u = first(r"command delivered .*action=sys_upgrade", i)
                i = first(r"command reply .*status=200", u)
                if profile == "nonos":
                    first(r"rom download .*method=HEAD .*file=user2.bin status=200", on)
                first(r"rom download .*method=GET .*file=user2.bin status=200", on)
                first(r"device report .*action=device_upgrade_success pre=%s new=%s" %
                          (re.escape(V1), re.escape(V2)), i)
                # fota-sim's app asks for sys_reboot (REST, an HTTP loop) as the image
                # is verified, while the device sends D7: the device loop may take the
                # bus's push before it reads the D4/D7 lines (after a store write
                # stalled it), so the reboot is only certain to follow the upgrade push
                b = first(r"command delivered .*action=sys_reboot", u)
                # the rebooting device drops its connection: fotad sees the close first
                # ("device offline"), or the new connection first, which then replaces
                # the old one ("device reconnected, old connection dropped", or
                # "retiring" while the old one still holds the D7 report). Both follow
                # the reboot's push; the D7 report's line is logged once the store wrote
                # it, which on PostgreSQL (a store job) can come after the new connection
                i = first(r"device offline|device reconnected, old connection "
                          r"(?:dropped|retiring)", b)
                i = first(r"device online", i)
                online = [ln for ln in lines if "device online" in ln]
                check(len(online) == 2, "%s dev %d: %d connections (pings unanswered?):\n%s" %
                      (profile, x["id"], len(online), "\n".join(lines)))
        st_, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
        check(all(x["rom_version"] == V2 for x in j["devices"]), "rom_version: %r" % j)


def test_tls_channel():
    """CLIENT_SSL_ENABLE devices: the channel over TLS (8443), downloads on HTTP."""
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        with Fotad(device_tls=True, tls=(cert, key)) as d:
            pid = st.stock_product(d, tmp, V2)
            rc, out, err = st.run_sim(["--server", "127.0.0.1", "--http-port", str(d.ports["http"]),
                                       "--device-port", str(d.ports["device-tls"]), "--tls",
                                       "--key", d.admin_key, "--product", str(pid), "--profile",
                                       "nonos", "--devices", "3", "--upgrade-to", V2,
                                       "--initial-version", V1, "--time-scale", "20",
                                       "--timeout", "60"], timeout=90)
            check(rc == 0 and field(out, "upgraded") == 3, "TLS: %d\n%s\n%s" % (rc, out, err))
            log = d.log_text()
            check(len(re.findall(r"device online .*tls=1", log)) == 3 and
                  not re.search(r"device online .*tls=0", log), "fotad saw 3 TLS devices")


def test_seed_dfu_legacy_port():
    """seed-dfu devices on fotad's legacy port (current release of --legacy-product)."""
    with tempfile.TemporaryDirectory() as tmp, \
            Fotad(legacy=True, extra=["--legacy-product", "plug"]) as d:
        pid = st.stock_product(d, tmp, V2)
        st_, _, j = d.api("POST", "/v1/products/%d/roms/%s/current" % (pid, V2), b"")
        check(st_ == 200, "set current: %d %r" % (st_, j))
        rc, out, err = st.run_sim(["--server", "127.0.0.1", "--legacy-port", str(d.ports["legacy"]),
                                   "--profile", "seed-dfu", "--devices", "3", "--upgrade-to", V2,
                                   "--initial-version", V1, "--timeout", "60"], timeout=90)
        check(rc == 0 and field(out, "upgraded") == 3, "seed-dfu on fotad: %d\n%s\n%s" % (rc, out, err))


if __name__ == "__main__":
    for b in ("fotad", "fota-sim"):
        if not os.access(os.path.join(st.BIN, b), os.X_OK):
            print("FAIL: %s is not built in %r (FOTA_BIN_DIR): build the whole tree" % (b, st.BIN),
                  file=sys.stderr)
            sys.exit(1)
    run_tests([test_profiles, test_whole_sequence, test_tls_channel, test_seed_dfu_legacy_port])
