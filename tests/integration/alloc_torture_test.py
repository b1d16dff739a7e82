"""alloc_torture_test.py - fotad under allocation failure (curl's torture idea): a
representative request sequence (create a product, upload and publish a release, create a
device, download its ROM as the device, list releases, devices and messages, activate and ping
on the device channel, delete the device) is run against a fresh fotad whose N-th allocation
after `fotad ready` fails (FOTA_ALLOC_FAIL_AT, a hook of the sanitizer trees). For every N
tried, fotad must end by the allocation policy's abort: exit by SIGABRT with the line
`fotad: out of memory allocating ...` last, no sanitizer report, no ERROR line, no reply
other than the right one before it. Without a failure the sequence must succeed.

N is sampled, not exhaustive, to bound the run time: every N from 1 to 12, then the step
between two Ns grows by a factor of 1.12 per run, each N placed at a random point of its step
(the seed is printed, FOTA_TORTURE_SEED repeats a run), until a run completes the whole
sequence (N is past the sequence's last allocation, 1,500 to 2,500: the kernel spreads the
connections over the loops), then 30 Ns drawn uniformly from the second half of the sequence,
where the growing steps are sparse. About 90 fotad runs of 0.1-0.5 s each; the summary says
at which step the runs ended."""
import http.client
import os
import random
import re
import signal
import time

from fotatest import (Fotad, TestFailure, check, make_image, run_tests, sanitizer_report,
                      wait_for)
from devchan_util import StockDevice, active_frame, beacon_frame

OOM_LINE = re.compile(r"^fotad: out of memory allocating \d+ bytes$")
VERSION = "v1.1"
DIED = (OSError, http.client.HTTPException)


STEPS = ("start", "product", "upload", "current", "device", "download", "list", "devices",
         "channel", "messages", "delete", "done")
reached = []   # the step each run was at when fotad went (for the summary)


def step(name):
    reached[-1] = STEPS.index(name)


def sequence(d, images):
    """The requests; any status but the expected one fails the test."""
    step("product")
    p = d.create_product(name="torture")
    pid = p["id"]
    step("upload")
    d.upload_release(pid, VERSION, files=images)
    step("current")
    d.set_current(pid, VERSION)
    step("device")
    j = d.create_device(pid, name="t-1", bssid="18:fe:34:00:00:01")
    dev_id, master = j["device"]["id"], j["master_device_key"]
    step("download")
    st, _, body = d.request("GET", "/v1/device/rom/?action=download_rom&version=%s&filename="
                            "user2.bin" % VERSION, key=master)
    check(st == 200 and body == images[1][1], "ROM download: %d, %d bytes" % (st, len(body)))
    step("list")
    st, _, j = d.api("GET", "/v1/device/rom/", key=master)
    check(st == 200 and j["recommended_rom_version"] == VERSION, "release list: %d %r" % (st, j))
    step("devices")
    st, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
    check(st == 200 and len(j["devices"]) == 1, "device list: %d %r" % (st, j))
    step("channel")
    dev = StockDevice(d.device_port, master)
    try:
        dev.send(active_frame(1804289383, "0" * 40, "18:fe:34:00:00:01", VERSION, master))
        check('"activate_status": 1' in dev.recv_msg(), "activation")
        dev.send(beacon_frame(master))
        check('"status": 200' in dev.recv_msg(), "ping")
    finally:
        dev.close()
    step("messages")
    st, _, j = d.api("GET", "/v1/messages/?limit=10")
    check(st == 200, "messages: %d %r" % (st, j))
    step("delete")
    st, _, j = d.api("DELETE", "/v1/devices/%d/" % dev_id)
    check(st == 200, "delete device: %d %r" % (st, j))
    step("done")


def died(d):
    """1 once fotad's process has exited (within a deadline: a client sees a reset first)."""
    try:
        wait_for(lambda: d.proc.poll() is not None, 10.0, "fotad to exit")
        return True
    except TestFailure:
        return False


def check_abort(d, n):
    """fotad ended by the allocation policy: SIGABRT, the out-of-memory line last, nothing
    else wrong in its log (no sanitizer report, no ERROR line)."""
    if d.proc is not None:
        d.stop(status=-signal.SIGABRT, term=False)
    else:   # it died before `fotad ready` was seen
        d.check_log()
        check(d.returncode == -signal.SIGABRT, "fail at %d: exit status %s" % (n, d.returncode))
    lines = [ln for ln in d.log_text().splitlines() if ln.strip()]
    check(lines and OOM_LINE.match(lines[-1]),
          "fail at %d: the last line is not the out-of-memory abort:\n%s" %
          (n, "\n".join(lines[-5:])))


def run_once(images, n):
    """One fotad with allocation n failing (0: none). True if the sequence completed."""
    if n:
        os.environ["FOTA_ALLOC_FAIL_AT"] = str(n)
    d = Fotad()
    reached.append(0)
    try:
        try:
            d.start()   # the failure may come before the harness saw `fotad ready`
        except TestFailure:
            if not n or d.returncode is None:
                raise
            check_abort(d, n)
            return False
        finally:
            os.environ.pop("FOTA_ALLOC_FAIL_AT", None)
        try:
            sequence(d, images)
        except DIED + (TestFailure,):
            if not n or not died(d):
                raise
            check(not sanitizer_report(d.log_text()), "fail at %d: sanitizer report" % n)
            check_abort(d, n)
            return False
        # Completed; an armed failure may still come during the shutdown.
        d.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: d.proc.poll() is not None, 15.0, "fotad to stop")
        if d.proc.returncode == -signal.SIGABRT:
            check_abort(d, n)
        else:
            d.stop(status=0, term=False)
        return True
    finally:
        d.cleanup()


def test_torture():
    images = [("user1.bin", make_image(1, 2, VERSION)), ("user2.bin", make_image(2, 2, VERSION))]
    seed = int(os.environ.get("FOTA_TORTURE_SEED") or time.time_ns() % 1000000)
    print("torture: seed %d (FOTA_TORTURE_SEED repeats this run)" % seed)
    rnd = random.Random(seed)
    check(run_once(images, 0), "the sequence without failures")
    start = time.monotonic()
    n, grow, runs = 1, 1.0, 0
    while True:
        runs += 1
        if run_once(images, n):
            break
        check(runs < 200, "no run completed up to allocation %d" % n)
        if n >= 12:
            grow *= 1.12
        lo = n + 1
        n = lo + int(rnd.random() * grow) if n >= 12 else lo
    print("torture: %d runs, the sequence completes from allocation %d on (%.1fs)" %
          (runs, n, time.monotonic() - start))
    # The geometric steps are sparse late in the sequence: 30 more Ns drawn uniformly from
    # its second half (a draw past its end, which varies a little between runs, completes).
    for m in sorted(rnd.randrange(n // 2, n) for _ in range(30)):
        run_once(images, m)
    hist = {}
    for r in reached[1:-1]:
        hist[STEPS[r]] = hist.get(STEPS[r], 0) + 1
    print("torture: runs ended at " + ", ".join("%s %d" % (k, hist[k]) for k in STEPS if k in hist))


if __name__ == "__main__":
    run_tests([test_torture])
