#!/usr/bin/env python3
"""image_cli_test.py - `fotactl image make|info|check` end to end: a made
image reports the right slot, flash map and a valid CRC (table and --json);
single flipped bytes across header, irom, segments, checksum and CRC all make
`image info` exit 1 and say "invalid"; the release check accepts a good pair
and refuses swapped, mismatched and non-image files."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fotatest  # noqa: E402
from fotatest import bin_path, check, run_tests, tempdir  # noqa: E402


def run(*args, want=None):
    """fotactl ARGS (a sanitizer report fails, also when the exit status is the one wanted)."""
    p = fotatest.run([bin_path("fotactl"), *args], text=True)
    check(want is None or p.returncode == want,
          f"fotactl {' '.join(args)} -> {p.returncode}, wanted {want}\n"
          f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def test_image_cli():
    d = tempdir("image-")
    u1 = os.path.join(d, "user1.bin")
    u2 = os.path.join(d, "user2.bin")
    run("image", "make", "--slot", "1", "--flash-map", "2", "--version", "v1.1", "-o", u1, want=0)
    run("image", "make", "--slot", "2", "--flash-map", "2", "--version", "v1.1",
        "--size", "20000", "-o", u2, want=0)
    check(os.path.getsize(u2) <= 20000 and os.path.getsize(u2) > 20000 - 16,
          f"--size 20000 gave {os.path.getsize(u2)} bytes")

    # human report
    p = run("image", "info", u1, want=0)
    out = p.stdout
    check("status     valid" in out, "status line: " + out)
    check("slot       user1" in out, "slot line: " + out)
    check("size map 2 (1MB 512+512)" in out, "flash line: " + out)
    check(" valid (computed " in out.split("crc", 1)[1], "crc line: " + out)
    check("version    v1.1" in out, "version line: " + out)

    # JSON report, both files at once
    p = run("image", "info", "--json", u1, u2, want=0)
    rep = json.loads(p.stdout)
    check(len(rep) == 2, "two reports")
    a, b = rep
    check(a["valid"] is True and a["slot"] == 1 and b["slot"] == 2, "slots in JSON")
    check(a["size_map"] == 2 and a["layout"] == "v2" and a["variant"] == "nonos2", "layout in JSON")
    check(a["crc"]["state"] == "valid" and a["crc"]["stored"] == a["crc"]["computed"], "crc in JSON")
    check(a["checksum"]["valid"] is True and a["checksum"]["offset"] % 16 == 15, "checksum in JSON")
    check(a["version"] == "v1.1" and len(a["sha256"]) == 64, "version/sha in JSON")
    check(len(a["segments"]) == 3, "segments in JSON")

    # flip single bytes all over the image
    data = open(u1, "rb").read()
    size = len(data)
    segs = a["segments"]
    chk = a["checksum"]["offset"]
    positions = {0, 1, 2, 3, 4, 7, 8, 12, 15,               # first header, irom header
                 16, 17, 100, a["irom"]["offset"] + a["irom"]["len"] - 1,   # irom
                 a["irom"]["offset"] + a["irom"]["len"],       # E9 header
                 a["irom"]["offset"] + a["irom"]["len"] + 3,
                 chk - 1, chk,                                 # padding, checksum
                 size - 4, size - 3, size - 2, size - 1}       # CRC
    for s in segs:
        positions |= {s["offset"] - 8, s["offset"] - 4, s["offset"], s["offset"] + s["len"] // 2,
                      s["offset"] + s["len"] - 1}
    bad = os.path.join(d, "bad.bin")
    for pos in sorted(positions):
        for mask in (0x01, 0xFF):
            flipped = bytearray(data)
            flipped[pos] ^= mask
            with open(bad, "wb") as f:
                f.write(flipped)
            p = run("image", "info", bad)
            check(p.returncode == 1, f"flip 0x{mask:02x} at {pos}: exit {p.returncode}")
            check("invalid" in p.stdout and "invalid" in p.stderr,
                  f"flip at {pos}: no 'invalid' in output:\n{p.stdout}\n{p.stderr}")
    check(len(positions) >= 30, "enough positions sampled")

    # truncated and non-image files
    with open(bad, "wb") as f:
        f.write(data[:-7])
    p = run("image", "info", bad, want=1)
    check("truncated" in p.stderr, "truncation reason: " + p.stderr)
    html = os.path.join(d, "page.html")
    with open(html, "w") as f:
        f.write("<!DOCTYPE html><html><body>Not Found</body></html>\n")
    p = run("image", "info", html, want=1)
    check("HTML page" in p.stderr, "html reason: " + p.stderr)
    p = run("image", "info", "--json", html, want=1)
    check(json.loads(p.stdout)[0]["kind"] == "an HTML page", "html kind in JSON")

    # release rules
    p = run("image", "check", "--flash-map", "2", u1, u2, want=0)
    check("accepted" in p.stdout, p.stdout)
    p = run("image", "check", "--flash-map", "5", u1, u2, want=1)
    check("user1.bin is built for flash size map 2" in p.stderr, p.stderr)
    swapped = os.path.join(d, "swap")
    os.mkdir(swapped)
    os.link(u1, os.path.join(swapped, "user2.bin"))
    os.link(u2, os.path.join(swapped, "user1.bin"))
    p = run("image", "check", "--flash-map", "2", os.path.join(swapped, "user1.bin"),
            os.path.join(swapped, "user2.bin"), want=1)
    check("user1.bin is a user2 image" in p.stderr, p.stderr)
    p = run("image", "check", "--json", u1, want=1)
    j = json.loads(p.stdout)
    check(j["accepted"] is False and "user2.bin is missing" in j["reason"], p.stdout)

    # usage errors
    run("image", "make", "--slot", "3", "-o", bad, want=2)
    run("image", "make", "--slot", "1", want=2)
    run("image", "make", "--slot", "1", "--flash-map", "7", "-o", bad, want=2)
    run("image", "frobnicate", want=2)
    run("image", "info", want=2)
    run("image", "--help", want=0)
    run("--help", want=0)


if __name__ == "__main__":
    run_tests([test_image_cli])
