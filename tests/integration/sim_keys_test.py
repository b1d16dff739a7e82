"""sim_keys_test.py - fota-sim's device keys against the real fotad: a key
file that is missing, malformed or short of keys is refused at start (exit
2, naming the file and what is wrong); keys the server does not know end
the run at once (exit 1) with the server's reason ("activation refused" for
a new device, "unknown key" for an activated one whose key was rotated),
not after the 300 s timeout; the master_device_key.bin sector that fotad
and fotactl give is read directly (one sector per device)."""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, bin_path, check, run_tests  # noqa: E402

V1 = "v1.0.0t45772(a)"


def sim(d, *args, deadline=60):
    """fota-sim against d without --timeout: a run that waits for the default
    300 s is stopped at the deadline and fails the test."""
    cmd = [bin_path("fota-sim"), "--server", "127.0.0.1", "--http-port", str(d.http_port),
           "--device-port", str(d.ports["device"]), "--profile", "nonos",
           "--initial-version", V1, "--time-scale", "20"] + list(args)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=deadline)
    except subprocess.TimeoutExpired:
        check(False, "fota-sim %s still running after %d s (waiting in silence)" %
              (" ".join(args), deadline))
    for bad in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
        check(bad not in p.stderr, "sanitizer report from fota-sim:\n" + p.stderr)
    return p.returncode, p.stdout, p.stderr


def field(out, name):
    m = re.search(r"^\s+%s:\s+(\d+)" % name, out, re.M)
    return int(m.group(1)) if m else -1


def test_bad_files(d):
    with tempfile.TemporaryDirectory() as tmp:
        missing = os.path.join(tmp, "nokeys.txt")
        rc, out, err = sim(d, "--keys", missing)
        check(rc == 2 and ("--keys %s: No such file or directory" % missing) in err,
              "missing key file: rc %d %r" % (rc, err))
        bad = os.path.join(tmp, "bad.txt")
        with open(bad, "w") as f:
            f.write("%040x\n\nshortkey\n" % 1)
        rc, out, err = sim(d, "--keys", bad, "--devices", "2")
        check(rc == 2 and "line 3 is not a master key (40 hex digits; it has 8 characters)" in err,
              "malformed key file: rc %d %r" % (rc, err))
        one = os.path.join(tmp, "one.txt")
        with open(one, "w") as f:
            f.write("%040x\n" % 1)
        rc, out, err = sim(d, "--keys", one, "--devices", "3")
        check(rc == 2 and ("--keys %s holds 1 key for 3 devices" % one) in err,
              "short key file: rc %d %r" % (rc, err))
        sec = os.path.join(tmp, "sector.bin")
        with open(sec, "wb") as f:
            f.write(b"%080x" % 1 + b"\xff" * 4016 + b"junk" * 1024)
        rc, out, err = sim(d, "--keys", sec)
        check(rc == 2 and "sector 2 is not a master_device_key.bin sector" in err,
              "bad second key sector: rc %d %r" % (rc, err))


def test_unknown_keys(d):
    """Keys fotad never issued: activation refused, reported at once."""
    with tempfile.TemporaryDirectory() as tmp:
        keys = os.path.join(tmp, "keys.txt")
        with open(keys, "w") as f:
            f.write("".join("%040x\n" % (0xBAD0 + i) for i in range(3)))
        for extra in (("--keys", keys, "--devices", "3"), ("--devices", "2")):
            rc, out, err = sim(d, *extra)
            n = int(extra[-1])
            check(rc == 1 and "%d x the server refused the device key: activation refused (403)" % n
                  in out and field(out, "activated") == 0,
                  "%s: rc %d\n%s\n%s" % (extra, rc, out, err))


def test_key_sector(d):
    """master_device_key.bin as fotad serves it: the device activates with the
    key and token of the sector (one sector per device); after a key rotation
    the activated device's identify is refused with fotad's reason."""
    p = d.create_product(name="plug", flash_map=2)
    devs = [d.create_device(p["id"], name="k%d" % i) for i in range(2)]
    with tempfile.TemporaryDirectory() as tmp:
        sectors = []
        for x in devs:
            st, h, data = d.api("GET", "/v1/devices/%d/master_device_key.bin" % x["device"]["id"],
                                raw=True)
            check(st == 200 and len(data) == 4096, "key sector: %d %d" % (st, len(data)))
            sectors.append(data)
        one = os.path.join(tmp, "master_device_key.bin")
        with open(one, "wb") as f:
            f.write(sectors[0])
        fdir = os.path.join(tmp, "flash")
        os.mkdir(fdir)
        rc, out, err = sim(d, "--keys", one, "--flash-dir", fdir)
        check(rc == 0 and field(out, "activated") == 1, "key sector: rc %d\n%s\n%s" % (rc, out, err))
        both = os.path.join(tmp, "both.bin")
        with open(both, "wb") as f:
            f.write(sectors[0] + sectors[1])
        rc, out, err = sim(d, "--keys", both, "--devices", "2", "--json-devices")
        check(rc == 0, "two key sectors: rc %d\n%s\n%s" % (rc, out, err))
        check(json.loads(out)["activated"] == 2, "both sectors' devices activated: %s" % out)
        for x in devs:
            st, _, j = d.api("GET", "/v1/devices/%d" % x["device"]["id"])
            check(st == 200 and j["device"]["activated"], "device %r: %r" % (x, j))

        st, _, j = d.api("POST", "/v1/devices/%d/rotate_keys" % devs[0]["device"]["id"])
        check(st == 200, "rotate_keys: %d %r" % (st, j))
        rc, out, err = sim(d, "--keys", one, "--flash-dir", fdir)
        check(rc == 1 and "1 x the server refused the device key: unknown key (403)" in out,
              "rotated key: rc %d\n%s\n%s" % (rc, out, err))


if __name__ == "__main__":
    run_tests([test_bad_files, test_unknown_keys, test_key_sector])
