"""sim_nonos_test.py - fota-sim's stock-device profiles against the Python
stand-in of the server (sim_standin.DeviceServer, following reference §2.4
and §3.5) until fotad has the device channel: the NONOS profile's frames
byte for byte (D1, D2, D4, D7), HEAD before GET, reboot only after FINISH;
the RTOS double GET with its trailing NUL; the fota profile resuming with
Range after a dropped download; power cuts; a wrong-slot image refused."""
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"
KEYS = ["%040x" % (0xC0FFEE * (i + 1)) for i in range(4)]

D1 = re.compile(r'^\{"nonce": \d+,"path": "/v1/device/activate/", "method": "POST", "body": '
                r'\{"encrypt_method": "PLAIN", "token": "[0-9a-f]{40}", "bssid": '
                r'"18:fe:34:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}","rom_version":"(.*)"\}, '
                r'"meta": \{"Authorization": "token ([0-9a-f]{40})"\}\}$')
D2 = re.compile(r'^\{"nonce": \d+, "path": "/v1/device/identify", "method": "GET",'
                r'"meta": \{"Authorization": "token [0-9a-f]{40}"\}\}$')
D4 = re.compile(r'^\{"status": 200, "nonce": \d+, "deliver_to_device": true\}$')
D7 = ('{"path": "/v1/messages/", "method": "POST", "meta": {"Authorization": "token %s"},'
      '"get":{"action":"device_upgrade_success"},"body":{"pre_rom_version":"%s","rom_version":"%s"}}')


def field(out, name):
    m = re.search(r"^\s+%s:\s+(\d+)" % name, out, re.M)
    return int(m.group(1)) if m else -1


def run(srv, keyfile, profile, n, extra=(), timeout_s=30, scale=50):
    return st.run_sim(["--server", "127.0.0.1", "--device-port", str(srv.chan_port),
                       "--http-port", str(srv.http_port), "--keys", keyfile, "--profile", profile,
                       "--devices", str(n), "--upgrade-to", V2, "--initial-version", V1,
                       "--time-scale", str(scale), "--timeout", str(timeout_s)] + list(extra))


def main():
    with tempfile.TemporaryDirectory() as d:
        keyfile = os.path.join(d, "keys.txt")
        with open(keyfile, "w") as f:
            f.write("\n".join(KEYS) + "\n")
        u1 = st.write_image(os.path.join(d, "u1.bin"), 1, V2, 30000)
        u2 = st.write_image(os.path.join(d, "u2.bin"), 2, V2, 30000)

        # --- NONOS: frames byte for byte, HEAD then GET, D7, reboot
        srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2)
        rc, out, err = run(srv, keyfile, "nonos", 3)
        srv.close()
        assert rc == 0, (rc, out, err, srv.errors)
        assert field(out, "upgraded") == 3 and field(out, "activated") == 3, out
        assert not srv.errors, srv.errors
        raws = [r for _, r in srv.frames]
        d1 = [D1.match(r) for r in raws if '"/v1/device/activate/"' in r]
        assert len(d1) == 3 and all(d1), raws
        assert all(m.group(1) == V1 for m in d1)
        assert sorted(m.group(2) for m in d1) == sorted(KEYS[:3])
        assert len([r for r in raws if D2.match(r)]) == 3, raws
        assert len([r for r in raws if D4.match(r)]) >= 3, raws
        for k in KEYS[:3]:
            assert (D7 % (k, V1, V2)) in raws, (k, raws)
            reqs = [(m, t, h) for (m, t, h, _) in srv.http if h.get("authorization") == "token " + k]
            assert [m for m, _, _ in reqs] == ["HEAD", "GET"], reqs
            assert reqs[0][2]["connection"] == "close" and reqs[1][2]["connection"] == "keep-alive"
            assert reqs[1][1] == ("/v1/device/rom/?action=download_rom&version=%s&filename=user2.bin"
                                  % V2), reqs
        assert all(raw.split(b"\r\n", 1)[0].endswith(b" HTTP/1.0") for (_, _, _, raw) in srv.http)

        # --- the other flash layouts (§7.2): 512 KB map 0, 2 MB map 5, 4 MB map 6
        for m in (0, 5, 6):
            im = {"user%d.bin" % k: st.write_image(os.path.join(d, "m%d_%d.bin" % (m, k)), k, V2,
                                                   30000, map_=m) for k in (1, 2)}
            srv = st.DeviceServer(KEYS, im, V2)
            rc, out, err = run(srv, keyfile, "nonos", 1, ["--map", str(m)])
            srv.close()
            assert rc == 0, (m, rc, out, err)

        # --- --segment: a download callback may get a pbuf chain (NONOS espconn: up to
        #     the 5,840-byte window) instead of one 1,460-byte segment; same outcome,
        #     power cut while receiving included; out-of-range sizes are refused
        for extra in (["--segment", "5840"], ["--segment", "65536", "--faults", "rx@9000"]):
            srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2)
            rc, out, err = run(srv, keyfile, "nonos", 2, extra)
            srv.close()
            assert rc == 0 and field(out, "upgraded") == 2, (extra, rc, out, err)
        rc, out, err = st.run_sim(["--server", "127.0.0.1", "--segment", "100"])
        assert rc == 2 and "--segment: '100' is not a whole number from 536 to 65536" in err, \
            (rc, out, err)

        # --- RTOS: GET + NUL, aborted after the first segment, GET again
        srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2)
        rc, out, err = run(srv, keyfile, "rtos", 2)
        srv.close()
        assert rc == 0, (rc, out, err, srv.errors)
        for k in KEYS[:2]:
            reqs = [raw for (m, _, h, raw) in srv.http if h.get("authorization") == "token " + k]
            assert len(reqs) == 2 and all(r.endswith(b"\r\n\r\n\x00") for r in reqs), reqs

        # --- fota profile: JSON dialect, the download dropped once, resumed with Range
        srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2)
        rc, out, err = run(srv, keyfile, "fota", 2, ["--faults", "drop@12000"])
        srv.close()
        assert rc == 0, (rc, out, err, srv.errors)
        ranges = [h.get("range") for (_, _, h, _) in srv.http if h.get("range")]
        assert len(ranges) == 2 and all(re.match(r"bytes=\d+-$", r) for r in ranges), srv.http

        # --- power cuts in the middle of the NONOS upgrade: re-pushed, still ends on V2
        for f in ("flash@3", "flash@12", "rx@9000"):
            srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2)
            rc, out, err = run(srv, keyfile, "nonos", 2, ["--faults", f])
            srv.close()
            assert rc == 0, (f, rc, out, err)
            assert field(out, "power cuts") == 2, (f, out)

        # --- (device already on V2: no upgrade) pings every 50 s / time-scale
        #     while held; an unanswered ping
        #     makes the device drop the connection and reconnect (§2.4)
        ping = '{"path": "/v1/ping/", "method": "POST","meta": {"Authorization": "token %s"}}'
        srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2)
        rc, out, err = st.run_sim(["--server", "127.0.0.1", "--device-port", str(srv.chan_port),
                                   "--http-port", str(srv.http_port), "--keys", keyfile,
                                   "--profile", "nonos", "--devices", "1", "--initial-version", V2,
                                   "--time-scale", "100", "--hold", "2", "--timeout", "20"])
        srv.close()
        assert rc == 0, (rc, out, err)
        pings = [r for _, r in srv.frames if r == ping % KEYS[0]]
        assert len(pings) >= 2, srv.frames
        assert srv.connections == 1, srv.connections
        srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2, ping_reply=False)
        rc, out, err = st.run_sim(["--server", "127.0.0.1", "--device-port", str(srv.chan_port),
                                   "--http-port", str(srv.http_port), "--keys", keyfile,
                                   "--profile", "nonos", "--devices", "1", "--initial-version", V2,
                                   "--time-scale", "200", "--hold", "2", "--timeout", "20"])
        srv.close()
        assert rc == 0, (rc, out, err)
        assert srv.connections >= 2, srv.connections

        # --- --flash-dir keeps devices between runs: the second run boots V2
        fdir = os.path.join(d, "flash")
        os.mkdir(fdir)
        srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2)
        rc, out, err = run(srv, keyfile, "nonos", 2, ["--flash-dir", fdir])
        assert rc == 0 and field(out, "bytes") > 0, (rc, out, err)
        nhttp = len(srv.http)
        rc, out, err = run(srv, keyfile, "nonos", 2, ["--flash-dir", fdir])
        srv.close()
        assert rc == 0 and field(out, "bytes") == 0 and len(srv.http) == nhttp, (rc, out)
        assert sorted(os.listdir(fdir)) == ["dev00000.bin", "dev00001.bin"]

        # --- libupgrade's segment rules (§3.3): a status line in its own segment
        #     is tolerated; a header cut inside the status line is not
        srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2, split="status")
        rc, out, err = run(srv, keyfile, "nonos", 1)
        srv.close()
        assert rc == 0, (rc, out, err)
        srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u2}, V2, split="bad")
        rc, out, err = run(srv, keyfile, "nonos", 1, timeout_s=2, scale=400)  # watchdog 0.3 s
        srv.close()
        assert rc == 1, (rc, out)
        assert any(a == "device_upgrade_failed" for (_, a, _, _) in srv.reports), srv.reports

        # --- a user1 image served as user2.bin: refused, reported failed, exit 1
        srv = st.DeviceServer(KEYS, {"user1.bin": u1, "user2.bin": u1}, V2)
        rc, out, err = run(srv, keyfile, "nonos", 1, timeout_s=2)
        srv.close()
        assert rc == 1, (rc, out)
        assert "please check the bin file" in out, out
        assert any(a == "device_upgrade_failed" for (_, a, _, _) in srv.reports), srv.reports
    print("ok")


if __name__ == "__main__":
    main()
