"""legacy_daemon_test.py - the legacy listener inside fotad: with no release it closes the
request (no_image); after a product's release (user1.bin, user2.bin) is uploaded through the
REST API and made current, a stock client and an extension client get the right images on
the legacy port; SIGTERM stops fotad cleanly."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import Fotad, check, run_tests, tempdir  # noqa: E402
from legacy_util import make_image, publish, stock_client, stream_client  # noqa: E402


def test_legacy_port():
    tmp = tempdir("daemon-")
    img = {}
    for name, slot, seed in (("p1", 1, 31), ("p2", 2, 32), ("l1", 1, 41), ("l2", 2, 42),
                             ("n1", 1, 51), ("n2", 2, 52)):
        img[name] = make_image(os.path.join(tmp, name + ".bin"), slot, 48 * 1024, seed=seed)
    check(len({img[k] for k in img}) == 6, "the six test images are not distinct")
    with Fotad(http=True, device=False, legacy=True, log_level="debug",
               extra=["--legacy-product", "plug", "--legacy-interval-ms", "2",
                      "--legacy-timeout-ms", "2000"]) as d:
        port = d.ports["legacy"]

        # nothing published yet: the request is closed without an answer
        r = stock_client(port, 1)
        check(not r.ok and r.length is None, "got an answer with no release: %s" % r.error)
        d.wait_log(r"conn=\d+ peer=127\.0\.0\.1:\d+ event=end section=1 mode=paced "
                   r"result=no_image .*mod=legacy")

        # two products: legacy_product picks "plug", not "light"
        publish(d, "light", "v9.0", {"user1.bin": img["l1"], "user2.bin": img["l2"]})
        pid = publish(d, "plug", "v1.0", {"user1.bin": img["p1"], "user2.bin": img["p2"]})
        r = stock_client(port, 2, strict=True, interval_ms=2)
        check(r.ok and r.data == img["p2"],
              "stock client on fotad: %s (light's image: %s)" % (r.error, r.data == img["l2"]))
        check(stream_client(port, 1) == img["p1"], "stream client on fotad got the wrong bytes")
        d.wait_log(r"conn=\d+ .*section=2 mode=paced result=ok bytes=%d .*"
                   r"image=\"plug v1\.0 user2\.bin\" mod=legacy" % len(img["p2"]))
        d.wait_log(r"section=1 mode=stream result=ok")

        # a new current release is what the next device gets
        d.upload_release(pid, "v1.1", files=[("user1.bin", img["n1"]), ("user2.bin", img["n2"])])
        d.set_current(pid, "v1.1")
        r = stock_client(port, 1, strict=True, interval_ms=2)
        check(r.ok and r.data == img["n1"], "after v1.1 became current: %s" % r.error)
        d.wait_log(r"image=\"plug v1\.1 user1\.bin\"")


if __name__ == "__main__":
    run_tests([test_legacy_port])
