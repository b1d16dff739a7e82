"""legacy_dropin_test.py - `fotad legacy` takes the seed's command line: missing options,
missing files and images that do not belong in their slot are refused with the seed-like
message and a non-zero exit; a good start prints the absolute firmware paths, the server's
addresses and the port, and SIGTERM stops it cleanly."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Dropin, check, fail, run_tests, tempdir  # noqa: E402
from legacy_util import make_image, py_image, stock_client  # noqa: E402


def refused(args, pattern, what, cwd=None, status=1):
    """The command line is refused: exit status 1 (2 for a bad command line, as fotad's) and a
    message matching pattern (an `ERROR :: ...` line is the expected refusal, any other ERROR
    line fails)."""
    srv = Dropin(args, cwd=cwd)
    srv.expect_error(r"^ERROR :: ")
    srv.start(ready=False)
    srv.stop(status=status, term=False)
    text = srv.all_text()
    check(re.search(pattern, text, re.M), "%s: no message matching %r in:\n%s" %
          (what, pattern, text))
    check("ready to be connected" not in text, "%s: started anyway:\n%s" % (what, text))


def test_command_line():
    tmp = tempdir("dropin-")
    u1, u2 = os.path.join(tmp, "user1.bin"), os.path.join(tmp, "user2.bin")
    img1 = make_image(u1, 1, 16 * 1024)
    make_image(u2, 2, 16 * 1024)
    missing = os.path.join(tmp, "nope.bin")

    refused([], r"-fw1 should be specified", "no arguments", status=2)
    refused(["-fw1", u1], r"-fw2 should be specified", "no -fw2", status=2)
    refused(["-fw1"], r"ERROR :: -fw1/--user1 should be followed by firmware location\.",
            "-fw1 without value", status=2)
    refused(["-fw1", u1, "--user2"], r"-fw2/--user2 should be followed by firmware location",
            "--user2 without value", status=2)
    refused(["-fw1", missing, "-fw2", u2], r"ERROR :: %s does not exist!" % missing,
            "missing user1")
    # the slots swapped: user2.bin given as -fw1
    refused(["-fw1", u2, "-fw2", u1], r"refused for -fw1: built for user2 .*not user1",
            "wrong slot")
    # a corrupted byte breaks the CRC
    bad = os.path.join(tmp, "badcrc.bin")
    data = bytearray(img1)
    data[100] ^= 0xFF
    with open(bad, "wb") as f:
        f.write(bytes(data))
    refused(["-fw1", bad, "-fw2", u2], r"refused for -fw1: .*(CRC|checksum)", "bad CRC")
    html = os.path.join(tmp, "page.bin")
    with open(html, "w") as f:
        f.write("<html><body>404</body></html>\n")
    refused(["-fw1", u1, "-fw2", html], r"refused for -fw2: not an ESP8266 image", "HTML file")
    refused(["-fw1", u1, "-fw2", u2, "--chunk", "4096"], r"--chunk needs a valid value",
            "chunk over 1280", status=2)
    refused(["-fw1", u1, "-fw2", u2, "--bogus"], r"unknown argument --bogus", "unknown option",
            status=2)
    refused(["-fw1", u1, "-fw2", u2, "--prot", "5555"],
            r"unknown argument --prot: did you mean --port\?", "misspelt option", status=2)

    # a good start, relative paths as the seed's users type them
    srv = Dropin(["-fw1", "user1.bin", "-fw2", "user2.bin", "--port", "0",
                  "--bind", "127.0.0.1"], cwd=tmp).start()
    out = srv.out_text()
    for want in ("firmware1 : %s" % os.path.realpath(u1), "firmware2 : %s" % os.path.realpath(u2),
                 "ip address of this server:", "127.0.0.1"):
        if want not in out:
            fail("startup output lacks %r:\n%s" % (want, out))
    # the port is taken now: a second server on it fails to bind, with status 1
    refused(["-fw1", u1, "-fw2", u2, "--port", str(srv.port), "--bind", "127.0.0.1"],
            r"bind failed", "port in use")
    srv.stop()

    # a bracketed IPv6 literal binds (loopback only: tests never listen beyond it)
    srv = Dropin(["-fw1", u1, "-fw2", u2, "--port", "0", "--bind", "[::1]",
                  "--interval-ms", "1"]).start()
    r = stock_client(srv.port, 1, host="::1", strict=True, interval_ms=1)
    if not r.ok or r.data != img1:
        fail("client over ::1 on [::1]: %s" % r.error)
    srv.stop()

    # RTOS 1.x images (the seed's SDK) carry no slot number: accepted with a note, served
    r1, r2 = os.path.join(tmp, "rtos1.bin"), os.path.join(tmp, "rtos2.bin")
    with open(r1, "wb") as f:
        f.write(py_image(1, 8 * 1024, seed=3, rtos1=True))
    with open(r2, "wb") as f:
        f.write(py_image(2, 8 * 1024, seed=4, rtos1=True))
    srv = Dropin(["-fw1", r1, "-fw2", r2, "--port", "0", "--bind", "127.0.0.1",
                  "--interval-ms", "1"]).start()
    check("note :: firmware1 has no slot number" in srv.out_text(),
          "no note about the missing slot number:\n" + srv.out_text())
    r = stock_client(srv.port, 2, strict=True, interval_ms=1)
    with open(r2, "rb") as f:
        if not r.ok or r.data != f.read():
            fail("RTOS 1.x image not served: %s" % r.error)
    srv.stop()


if __name__ == "__main__":
    run_tests([test_command_line])
