"""legacy_daemon_test.py - the legacy listener inside fotad: with no release it closes the
request (no_image); after a product's release (user1.bin, user2.bin) is uploaded through the
REST API and made current, a stock client and an extension client get the right images on
the legacy port; SIGTERM stops fotad cleanly."""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from legacy_util import (BIN_DIR, Fotad, fail, make_image, multipart,  # noqa: E402
                         stock_client, stream_client)


def main():
    if not os.access(os.path.join(BIN_DIR, "fotad"), os.X_OK):
        fail("fotad is not built in %s (FOTA_BIN_DIR): build the whole tree" % BIN_DIR)
    tmp = tempfile.mkdtemp(prefix="legacy-daemon-")
    img = {}
    for name, slot, seed in (("p1", 1, 31), ("p2", 2, 32), ("l1", 1, 41), ("l2", 2, 42),
                             ("n1", 1, 51), ("n2", 2, 52)):
        img[name] = make_image(os.path.join(tmp, name + ".bin"), slot, 48 * 1024, seed=seed)
    d = Fotad(tmp, ["--legacy-product", "plug", "--legacy-interval-ms", "2",
                    "--legacy-timeout-ms", "2000"])
    port = d.ports["legacy"]

    # nothing published yet: the request is closed without an answer
    r = stock_client(port, 1)
    if r.ok or r.length is not None:
        fail("got an answer with no release: %s" % r.error)
    d.wait_log(r"conn=\d+ peer=127\.0\.0\.1:\d+ event=end section=1 mode=paced "
               r"result=no_image .*mod=legacy")

    # two products: legacy_product picks "plug", not "light"
    d.release("light", "v9.0", {"user1.bin": img["l1"], "user2.bin": img["l2"]})
    pid = d.release("plug", "v1.0", {"user1.bin": img["p1"], "user2.bin": img["p2"]})
    r = stock_client(port, 2)
    if not r.ok or r.data != img["p2"] or r.first_read != 4:
        fail("stock client on fotad: %s (light's image: %s)" % (r.error, r.data == img["l2"]))
    if stream_client(port, 1) != img["p1"]:
        fail("stream client on fotad got the wrong bytes")
    d.wait_log(r"conn=\d+ .*section=2 mode=paced result=ok bytes=%d .*"
               r"image=\"plug v1\.0 user2\.bin\" mod=legacy" % len(img["p2"]))
    d.wait_log(r"section=1 mode=stream result=ok")

    # a new current release is what the next device gets
    body, ctype = multipart({"version": "v1.1"}, {"user1.bin": img["n1"], "user2.bin": img["n2"]})
    d.api("POST", "/v1/products/%d/roms/" % pid, body, ctype)
    d.api("POST", "/v1/products/%d/roms/v1.1/current" % pid, b"")
    r = stock_client(port, 1)
    if not r.ok or r.data != img["n1"]:
        fail("after v1.1 became current: %s" % r.error)
    d.wait_log(r"image=\"plug v1\.1 user1\.bin\"")
    rc = d.stop()
    if rc != 0:
        fail("fotad exit status %d" % rc)
    print("ok")


if __name__ == "__main__":
    main()
