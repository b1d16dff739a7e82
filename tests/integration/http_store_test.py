"""http_store_test.py - routes that run as store jobs (FOTA_ROUTE_STORE, http.h).

With SQLite the job runs on the loop that accepted the request; with store threads (the test
hook FOTA_TEST_STORE_THREADS=1 gives SQLite the threads PostgreSQL has) it runs on a store
thread and its reply travels to the request's loop. The test route POST /v1/test/store (test
builds only, server/http/http_test.c) shows where it ran, reads a header and the body from the
request's copies, and adds output headers (at most 4); it can hold its store thread until
POST /v1/test/store/release, so a client can go away before the reply. The REST routes that run
as store jobs are used on store threads too: the catalog, a device's key sector (its headers),
the hub (a delete's DOWNLOADS_SYNC, DEVICE_BUSY, DEVICE_DELETED from a store thread) and the
rollout reads (the engine's rows through the main loop).
"""
import json
import os
import socket

from fotatest import Fotad, check, run_tests, wait_for

HEADERS = [["X-One", "1"], ["X-Two", "2"], ["X-Three", "3"], ["X-Four", "4"], ["X-Five", "5"]]


def store_call(d, body, extra_headers=None):
    h = {"X-Fota-Test": "hello from the client"}
    h.update(extra_headers or {})
    return d.api("POST", "/v1/test/store", body, headers=h)


def check_store_reply(d, on_thread):
    echo = {"a": [1, "x", None], "u": "\u00e9t\u00e9"}
    st, hdr, j = store_call(d, {"echo": echo, "headers": HEADERS})
    check(st == 200, "test store route: %d %r" % (st, j))
    check(j["echo"] == echo, "the body read from the copy: %r" % j["echo"])
    check(j["x_test"] == "hello from the client", "the header read from the copy: %r" % j)
    check(j["store_thread"] is on_thread, "ran on a store thread: %r (want %r)" %
          (j["store_thread"], on_thread))
    check((j["loop"] == -1) == on_thread, "loop index %r" % j["loop"])
    check(j["headers_refused"] == 1, "a fifth header is refused: %r" % j)
    for name, value in HEADERS[:4]:
        check(hdr.get(name.lower()) == value, "reply header %s: %r" % (name, hdr))
    check("x-five" not in hdr, "the refused header was not sent: %r" % hdr)
    check(j["released"] is None, "not held: %r" % j)
    # the JSON body limit and errors hold for the copy
    big = json.dumps({"echo": "x" * 70000})
    st, _, j = d.api("POST", "/v1/test/store", big)
    check(st == 413 and "64 KiB" in j["message"], "a body over 64 KiB: %d %r" % (st, j))
    st, _, j = d.api("POST", "/v1/test/store", "{\"echo\": ")
    check(st == 400 and "malformed JSON" in j["message"], "a broken body: %d %r" % (st, j))
    st, _, j = d.api("POST", "/v1/test/store", {"echo": 1}, key=None)
    check(st == 401, "no key: %d %r" % (st, j))
    wait_for(lambda: state(d)["detached"] == 0, what="every store request released")


def state(d):
    st, _, j = d.api("GET", "/v1/test/store/state")
    check(st == 200, "state: %d %r" % (st, j))
    return j


def test_inline():
    """SQLite without store threads: the job runs on the accepting loop."""
    hook = os.environ.pop("FOTA_TEST_STORE_THREADS", None)
    try:
        d = Fotad(store="sqlite").start()
    finally:
        if hook is not None:
            os.environ["FOTA_TEST_STORE_THREADS"] = hook
    check_store_reply(d, False)
    d.stop()


def start_threaded(*extra):
    hook = os.environ.get("FOTA_TEST_STORE_THREADS")
    os.environ["FOTA_TEST_STORE_THREADS"] = "1"
    try:
        d = Fotad(extra=list(extra)).start()
    finally:
        if hook is None:
            del os.environ["FOTA_TEST_STORE_THREADS"]
    if d.store == "sqlite":     # PostgreSQL's store has its threads without the hook
        d.wait_log(r"test store threads")
    d.wait_log(r"store threads started threads=4")
    return d


def test_store_threads():
    """Store threads: the job runs on one, its reply is sent by the request's loop."""
    d = start_threaded()
    check_store_reply(d, True)
    d.stop()


def test_rest_on_store_threads():
    """The REST routes that run as store jobs answer from store threads."""
    d = start_threaded()
    pid = d.create_product(flash_map=4)["id"]
    st, _, j = d.api("GET", "/v1/products/%d/" % pid)
    check(st == 200 and j["product"]["id"] == pid, "product: %d %r" % (st, j))
    dev = d.create_device(pid)
    did = dev["device"]["id"]
    st, hdr, data = d.api("GET", "/v1/devices/%d/master_device_key.bin" % did, raw=True)
    check(st == 200 and len(data) == 4096, "key sector: %d, %d bytes" % (st, len(data)))
    check(hdr.get("content-disposition") == "attachment; filename=master_device_key.bin",
          "key sector headers: %r" % hdr)
    check(hdr.get("x-fota-flash-address", "").startswith("0x"), "flash address: %r" % hdr)
    st, _, j = d.api("GET", "/v1/devices/%d/" % did)
    check(st == 200 and j["device"]["download_bytes"] == 0, "device: %d %r" % (st, j))
    st, _, j = d.api("GET", "/v1/device/", key=dev["owner_key"])
    check(st == 200 and j["device"]["id"] == did, "device by its key: %d %r" % (st, j))
    st, _, j = d.api("PUT", "/v1/devices/%d/tags/" % did, {"tags": ["north"]})
    check(st == 200, "tags: %d %r" % (st, j))
    st, _, j = d.api("GET", "/v1/products/%d/devices/?tag=north" % pid)
    check(st == 200 and [x["id"] for x in j["devices"]] == [did], "list: %d %r" % (st, j))
    st, _, j = d.api("GET", "/v1/products/%d/overview" % pid)
    check(st == 200 and j["overview"]["devices"] == 1, "overview: %d %r" % (st, j))
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % pid)
    check(st == 200 and j["roms"] == [], "releases: %d %r" % (st, j))
    st, _, j = d.api("GET", "/v1/rollouts/?product_id=%d" % pid)
    check(st == 200 and j["rollouts"] == [], "rollouts: %d %r" % (st, j))
    st, _, j = d.api("GET", "/v1/rollouts/999/")
    check(st == 404, "no rollout: %d %r" % (st, j))
    st, _, data = d.api("GET", "/metrics", raw=True)
    check(st == 200 and b"fota_http_requests_total" in data, "metrics: %d" % st)
    st, _, j = d.api("DELETE", "/v1/devices/%d/" % did)
    check(st == 200 and j["connections_closed"] == 0, "device delete: %d %r" % (st, j))
    st, _, j = d.api("DELETE", "/v1/products/%d/" % pid)
    check(st == 200, "product delete: %d %r" % (st, j))
    check(d.count_log(r"method=DELETE path=/v1/devices/%d/ status=200" % did) == 1,
          "the delete's access line")
    d.stop()


def test_client_gone():
    """A client that goes away while its handler holds a store thread: the reply that follows
    finds no connection (libevent keeps the request for it and frees it then), nothing leaks
    (the sanitizers), and fotad goes on serving. One loop: the close is read before the
    release's request is (its FIN is in before that connection is made)."""
    d = start_threaded("--workers", "1")
    body = json.dumps({"hold": True, "echo": "gone"}).encode()
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    s.sendall(b"POST /v1/test/store HTTP/1.1\r\nHost: x\r\nAuthorization: token %s\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" %
              (d.admin_key.encode(), len(body), body))
    wait_for(lambda: state(d)["held"] == 1, what="the handler holds its store thread")
    s.close()
    st, _, j = d.api("POST", "/v1/test/store/release", {})
    check(st == 200 and j["held"] == 1, "release: %d %r" % (st, j))
    wait_for(lambda: state(d)["detached"] == 0 and state(d)["held"] == 0,
             what="the held request released")
    d.wait_log(r"path=/v1/test/store status=200")
    check_store_reply(d, True)
    d.stop()


if __name__ == "__main__":
    run_tests([test_inline, test_store_threads, test_rest_on_store_threads, test_client_gone])
