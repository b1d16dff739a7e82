"""rom_quick_test.py - the quick answer to a stock device's HEAD (server/rom/rom_download.c,
fota_rom_quick_head; server/http/http_quick.c): a NONOS HEAD (§3.3) whose key, release and
file the loop's caches hold is answered from its head, before evhttp parses it, with the very
bytes and log line of the full path, and only then. Counted by fota_http_quick_answers_total,
which tells the two paths apart here. On one HTTP loop:
  - the first HEAD takes the full path (cold caches), the next ones are quick, byte for byte
    the first's answer, logged as the full path logs it; a GET is never quick;
  - left to the full path: a Range, HTTP/1.1, a percent-encoded or '+' query, a trailing NUL,
    Authorization twice, another action, a wrong key, a version the caches do not hold;
  - a catalog change (a new release) sends the next HEAD to the full path, and a deleted
    device's key is refused (403) at once, not answered from the caches.
"""
import re

from devchan_util import http_exchange, libupgrade_head, nonos_url
from devchan_upgrade_test import setup
from fotatest import Fotad, check, make_image, metric_value, run_tests


def quick_count(d):
    return metric_value(d, "fota_http_quick_answers_total")


def head_of(d, req, quick, what):
    """Sends req (bytes); checks whether it was answered quickly; (header bytes, body)."""
    before = quick_count(d)
    _, header, body, closed = http_exchange(d.http_port, req)
    got = quick_count(d) - before
    check(got == (1 if quick else 0), "%s: %d quick answers, want %d" % (what, got, int(quick)))
    check(closed, "%s: not closed" % what)
    return header, body


def rom_lines(d, method):
    return [re.sub(r"req=\d+ ", "", re.sub(r" peer=\S+", "", ln.split(" INFO  ", 1)[1]))
            for ln in d.log_text().splitlines() if " INFO  rom download " in ln and
            "method=%s " % method in ln]


def test_one_loop():
    with Fotad(extra=["--workers", "1"], log_level="debug") as d:
        pid, dev_id, master, owner, user2 = setup(d)
        get = nonos_url("v1.1", "user2.bin", d.http_port, master)
        head = libupgrade_head(get)
        full, body = head_of(d, head.encode(), False, "the first HEAD")
        check(full.startswith(b"HTTP/1.0 200 OK\r\n") and body == b"", "first HEAD %r" % full)
        for i in range(3):
            h, body = head_of(d, head.encode(), True, "HEAD %d" % i)
            check(h == full and body == b"", "quick HEAD %r, full path %r" % (h, full))
        lines = rom_lines(d, "HEAD")
        check(len(lines) == 4 and len(set(lines)) == 1 and
              lines[0] == "rom download method=HEAD dev=%d product=%d version=v1.1 file=user2.bin "
              "status=200 bytes=%d loop=0" % (dev_id, pid, len(user2)), "log lines %r" % lines)
        h, body = head_of(d, get.encode(), False, "the GET")
        check(body == user2 and h == full, "GET header %r" % h)

        # left to the full path
        h, _ = head_of(d, head.replace("\r\n\r\n", "\r\nRange: bytes=0-9\r\n\r\n").encode(),
                       False, "a Range")
        check(h.startswith(b"HTTP/1.0 206 "), "Range answer %r" % h)
        h, _ = head_of(d, head.replace("HTTP/1.0", "HTTP/1.1").encode(), False, "HTTP/1.1")
        check(h.startswith(b"HTTP/1.1 200 OK\r\n"), "HTTP/1.1 answer %r" % h)
        h, _ = head_of(d, head.replace("version=v1.1", "version=v1%2E1").encode(), False,
                       "a percent-encoded version")
        check(h == full, "percent-encoded version %r" % h)
        h, _ = head_of(d, head.replace("download_rom&", "download_rom&x=a+b&").encode(), False,
                       "a '+' in the query")
        check(h == full, "'+' in the query %r" % h)
        h, _ = head_of(d, head.encode() + b"\0", False, "a trailing NUL")
        check(h == full, "trailing NUL %r" % h)
        twice = head.replace("\r\n\r\n", "\r\nAuthorization: token %s\r\n\r\n" % master)
        head_of(d, twice.encode(), False, "Authorization twice")
        h, _ = head_of(d, head.replace("download_rom", "get_rom").encode(), False,
                       "another action")
        h, _ = head_of(d, head.replace(master, owner).encode(), False, "the owner key")
        check(h == full, "owner key %r" % h)
        h, _ = head_of(d, head.replace(master, "0" * 40).encode(), False, "an unknown key")
        check(h.startswith(b"HTTP/1.0 401 "), "unknown key %r" % h)
        h, _ = head_of(d, head.replace("version=v1.1", "version=v1.9").encode(), False,
                       "an unknown version")
        check(h.startswith(b"HTTP/1.0 404 "), "unknown version %r" % h)
        head_of(d, head.encode(), True, "HEAD again")

        # a catalog change: the full path once, then quick again
        d.upload_release(pid, "v1.2", files=[("user1.bin", make_image(1, 2, "v1.2")),
                                             ("user2.bin", make_image(2, 2, "v1.2"))])
        h, _ = head_of(d, head.encode(), False, "HEAD after a new release")
        check(h == full, "after a new release %r" % h)
        head_of(d, head.encode(), True, "HEAD after the full one")
        st, _, j = d.api("DELETE", "/v1/devices/%d/" % dev_id)
        check(st in (200, 204), "delete device: %d %r" % (st, j))
        h, _ = head_of(d, head.encode(), False, "the deleted device's key")
        check(h.startswith(b"HTTP/1.0 403 ") or h.startswith(b"HTTP/1.0 401 "),
              "deleted device's key %r" % h)


run_tests([test_one_loop])
