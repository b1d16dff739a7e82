"""loops_test.py - fotad with several HTTP event loops (--workers 4, SO_REUSEPORT): work that
crosses loops. Many parallel ROM downloads (bytes verified, served by more than one loop);
RPCs whose HTTP connections land on worker loops while the device's connection lives on the
main loop (the device's D4 reply completes them on their own loop); live message feeds
(SSE) opened on several loops, each receiving a message published on the main loop; release
uploads (a main-loop route with a deferred reply) through workers; and a key rotation that
ends the old key at once on every loop despite the per-loop download cache."""
import http.client
import re
import socket
import threading

from devchan_util import (StockDevice, start_fotad, check, first_frame, parse_nonce, run_in_thread,
                          wait_for)
from devchan_upgrade_test import setup
from fotatest import make_image

N_LOOPS = 4


def loops_seen(d, regex):
    """Loop indexes (0 = main) in log lines matching regex (a `loop=N` suffix; none = 0)."""
    out = set()
    for line in d.log_text().splitlines():
        if re.search(regex, line):
            m = re.search(r" loop=(\d+)", line)
            out.add(int(m.group(1)) if m else 0)
    return out


def download(port, key, version="v1.1", name="user2.bin"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request("GET", "/v1/device/rom/?action=download_rom&version=%s&filename=%s"
                  % (version, name), headers={"Authorization": "token " + key})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def parallel(n, fn):
    out = [None] * n
    errs = []

    def one(i):
        try:
            out[i] = fn(i)
        except BaseException as e:  # reported below
            errs.append(e)
    ts = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    check(not errs, "worker thread failed: %r" % errs[:1])
    return out


def downloads(d, master, user2):
    res = parallel(24, lambda i: [download(d.http_port, master) for _ in range(4)])
    flat = [x for r in res for x in r]
    check(len(flat) == 96, "96 downloads done, %d" % len(flat))
    bad = [(st, len(b)) for st, b in flat if st != 200 or b != user2]
    check(not bad, "every download complete and exact: %r" % bad[:3])
    seen = wait_for(lambda: len(loops_seen(d, r"rom download .*status=200")) >= 2 and
                    loops_seen(d, r"rom download .*status=200"), 5, "downloads on 2+ loops")
    check(seen - {0}, "downloads served by worker loops: %r" % seen)
    # the ledger counted them (completion callbacks run on the loop that served each)
    def user2_count():
        st, _, j = d.api("GET", "/v1/products/1/roms/")
        check(st == 200, "rom list %s %r" % (st, j))
        return {f["name"]: f for f in j["roms"][0]["files"]}["user2.bin"]["download_count"]
    wait_for(lambda: user2_count() >= 96, 5, "96 completions in the ledger")
    check(user2_count() == 96, "each download counted once: %d" % user2_count())


def rpcs(d, dev, owner):
    """8 RPCs, one connection each: they land on several loops; the device (main loop)
    answers each push in turn and every caller gets its own device reply."""
    joins = [run_in_thread(d.api, "GET", "/v1/device/rpc/?deliver_to_device=true&"
                           "action=get_switch&tag=%d&timeout=20" % i, None, owner)
             for i in range(8)]
    tags = set()
    for _ in range(8):
        push = dev.recv_msg(timeout=10)
        n = parse_nonce(push)
        m = re.search(r'"tag": "(\d+)"', push)
        check(m, "push carries its tag: %r" % push)
        tag = m.group(1)
        tags.add(tag)
        dev.send('{"status": 200, "nonce": %d, "deliver_to_device": true, "switch": "t%s"}\n'
                 % (n, tag))
    check(len(tags) == 8, "8 distinct pushes %r" % tags)
    for i, join in enumerate(joins):
        st, _, j = join()
        check(st == 200 and j.get("switch") == "t%d" % i, "rpc %d reply %s %r" % (i, st, j))
    seen = loops_seen(d, r"http req=.* path=/v1/device/rpc/ status=")
    return seen


class Follower:
    """A raw SSE reader of /v1/messages/?follow=true."""

    def __init__(self, d, key):
        self.s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
        self.s.sendall(("GET /v1/messages/?follow=true HTTP/1.1\r\nHost: x\r\n"
                        "Authorization: token %s\r\n\r\n" % key).encode())
        self.buf = b""
        self.read_until(b": follow")

    def read_until(self, marker, timeout=10):
        self.s.settimeout(timeout)
        while marker not in self.buf:
            chunk = self.s.recv(65536)
            check(chunk, "feed closed while waiting for %r" % marker)
            self.buf += chunk
        return self.buf

    def close(self):
        self.s.close()


def feeds(d, dev, master):
    fs = [Follower(d, d.admin_key) for _ in range(8)]
    seen = wait_for(lambda: loops_seen(d, r"http req=.* path=/v1/messages/ status=200"), 5,
                    "feeds opened")
    # a D7 report on the device channel (main loop) is published to every loop's followers
    dev.send('{"path": "/v1/messages/", "method": "POST", "meta": {"Authorization": '
             '"token %s"}, "get": {"action": "loops_probe"}, "body": {"x": 1}}\n' % master)
    check("success" in dev.recv_msg(timeout=10), "D7 reply")
    for f in fs:
        f.read_until(b"loops_probe")
        f.close()
    return seen


def upload_via_workers(d, pid):
    """Release uploads (a main-loop route whose reply is deferred to the blob writer thread)
    from several connections at once: each gets its 200 on its own loop."""
    def one(i):
        files = [("user1.bin", make_image(1, 2, "v2.%d" % i, None, 100 + i)),
                 ("user2.bin", make_image(2, 2, "v2.%d" % i, None, 100 + i))]
        return d.upload_release(pid, "v2.%d" % i, files=files)
    parallel(6, one)
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % pid)
    versions = sorted(r["version"] for r in j["roms"])
    check(versions == sorted(["v1.1"] + ["v2.%d" % i for i in range(6)]), "releases %r" % versions)


def rotation_stops_cached_key(d, dev_id, master, user2):
    """Downloads cache key and release lookups per loop; a key rotation (a store write) ends
    the old key at once on every loop, and the new key works at once."""
    res = parallel(8, lambda i: download(d.http_port, master))
    check(all(st == 200 and b == user2 for st, b in res), "downloads before the rotation")
    st, _, j = d.api("POST", "/v1/devices/%d/rotate_keys" % dev_id)
    check(st == 200, "rotate %s %r" % (st, j))
    res = parallel(8, lambda i: download(d.http_port, master))
    check(all(st == 401 for st, _ in res), "old key refused at once: %r" % [x[0] for x in res])
    res = parallel(8, lambda i: download(d.http_port, j["master_device_key"]))
    check(all(st == 200 and b == user2 for st, b in res), "new key works at once")


def main():
    d = start_fotad("--workers", str(N_LOOPS))
    try:
        d.wait_log(r"http workers loops=%d" % N_LOOPS)
        pid, dev_id, master, owner, user2 = setup(d)
        dev = StockDevice(d.device_port, master)
        dev.send(first_frame(5, master))
        check(parse_nonce(dev.recv_msg()) == 5, "identify reply")
        downloads(d, master, user2)
        rpc_loops = rpcs(d, dev, owner)
        feed_loops = feeds(d, dev, master)
        upload_via_workers(d, pid)
        # with 4 loops and 8+ connections each, worker loops took part (p(all on main) ~ 4^-8)
        check(rpc_loops - {0}, "RPCs answered on worker loops: %r" % rpc_loops)
        check(feed_loops - {0}, "feeds on worker loops: %r" % feed_loops)
        dev.close()
        rotation_stops_cached_key(d, dev_id, master, user2)
    finally:
        d.stop()
    print("ok")


if __name__ == "__main__":
    main()
