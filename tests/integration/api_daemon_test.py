"""api_daemon_test.py - fotad as a daemon: config file and flags (-t), port
in use, SIGHUP reload, graceful SIGTERM finishing an in-flight upload, kill -9
during and right after an upload (whole release or nothing after restart, temp
blobs removed), HTTPS, IPv6, data-dir permissions."""
import http.client
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import (SRC_DIR, Fotad, TestFailure, bin_path, check, make_cert,  # noqa: E402
                      make_image, multipart, recv_to_close, run, run_tests)


def run_fotad(args, timeout=10):
    """fotad run to its end (it is expected to exit by itself), sanitizer-checked."""
    return run([bin_path("fotad")] + args, timeout=timeout)


def test_config_check():
    with tempfile.TemporaryDirectory() as t:
        good = os.path.join(t, "good.conf")
        with open(good, "w") as f:
            f.write("; comment\n[fotad]\ndata = %s\nhttp_port = 0\nmax_upload = 2M\n" % t)
        p = run_fotad(["-t", "-c", good])
        check(p.returncode == 0 and b"valid" in p.stdout, "valid config: %r" % (p,))
        bad = os.path.join(t, "bad.conf")
        with open(bad, "w") as f:
            f.write("[fotad]\nhttp_port = 0\ndevice_port = eighty\n")
        p = run_fotad(["-t", "-c", bad])
        check(p.returncode == 2 and b"bad.conf:3" in p.stderr and b"device_port" in p.stderr,
              "bad value names file:line and key: %r" % p.stderr)
        with open(bad, "w") as f:
            f.write("[fotad]\nno_such_key = 1\n")
        p = run_fotad(["-t", "-c", bad])
        check(p.returncode == 2 and b"unknown option no_such_key" in p.stderr, "%r" % p.stderr)
        p = run_fotad(["-t", "--http-port", "70000"])
        check(p.returncode == 2 and b"http_port" in p.stderr, "port range %r" % p.stderr)
        p = run_fotad(["-t", "--tls-cert", "x.pem"])
        check(p.returncode == 2 and b"tls_key" in p.stderr, "cert without key %r" % p.stderr)
        p = run_fotad(["-t", "--store", "memory"])
        check(p.returncode == 2 and b'store: "memory"' in p.stderr, "memory store %r" % p.stderr)
        p = run_fotad(["-t", "--bogus"])
        check(p.returncode == 2, "unknown flag")
        p = run_fotad(["--help"])
        check(p.returncode == 0 and b"--legacy-port" in p.stdout and b"--max-upload" in p.stdout,
              "help lists the table")
        # Flags override the file: the file says http_port 1, the flag 0.
        conf = os.path.join(t, "ports.conf")
        with open(conf, "w") as f:
            f.write("http_port = 1\nlog_level = debug\n")
        with Fotad(config=conf) as d:
            st, _, j = d.api("GET", "/v1/ping/")
            check(st == 200, "flag won over file")
            check(" DEBUG " in d.log_text(), "file's log_level applied")


def test_config_doc_in_sync():
    with open(os.path.join(SRC_DIR, "docs", "config.md"), "rb") as f:
        doc = f.read()
    p = run_fotad(["--config-doc"])
    check(p.returncode == 0 and p.stdout == doc,
          "docs/config.md differs from `fotad --config-doc` (regenerate it)")


def test_port_in_use():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        with tempfile.TemporaryDirectory() as t:
            p = run_fotad(["--data", t, "--bind", "127.0.0.1", "--http-port", str(port),
                           "--device-port", "off", "--legacy-port", "off", "--https-port", "off",
                           "--device-tls-port", "off"])
            err = p.stderr.decode()
            check(p.returncode != 0, "exit status when the port is taken")
            check(re.search(r"cannot listen proto=http addr=127\.0\.0\.1:%d error=\"Address already in use\"" % port, err),
                  "clear message: %s" % err)
    finally:
        s.close()
    # A fotad whose loops share the port with SO_REUSEPORT: a second fotad (same user, same
    # option) must not join that group and silently take half of the first one's clients.
    with Fotad(extra=["--workers", "2"]) as first, tempfile.TemporaryDirectory() as t:
        try:
            p = run_fotad(["--data", t, "--bind", "127.0.0.1", "--http-port", str(first.http_port),
                           "--workers", "2", "--device-port", "off", "--legacy-port", "off",
                           "--https-port", "off", "--device-tls-port", "off"])
        except subprocess.TimeoutExpired:
            raise TestFailure("a second fotad shared the first one's SO_REUSEPORT port")
        check(p.returncode != 0 and re.search(
            r"cannot listen proto=http addr=127\.0\.0\.1:%d error=\"Address already in use\""
            % first.http_port, p.stderr.decode()), "second fotad refused: %r" % p.stderr)
        st, _, j = first.api("GET", "/v1/ping/")
        check(st == 200, "first one unaffected")


def test_first_start_files(d):
    for name in ("owner.key", "secret.key"):
        st = os.stat(os.path.join(d.data_dir, name))
        check(st.st_mode & 0o777 == 0o600, "%s mode %o" % (name, st.st_mode & 0o777))
    check(re.fullmatch(r"[0-9a-f]{40}", d.admin_key), "admin key is 40 hex")
    check(re.search(r"admin key written path=\S*owner\.key", d.log_text()), "logged where")
    if d.store == "sqlite":
        check(os.path.exists(os.path.join(d.data_dir, "fota.db")), "sqlite db created")
    # Second start: same key, not rewritten.
    key = d.admin_key
    d.stop()
    d.start()
    check(d.admin_key == key and "admin key written" not in d.log_text(), "key kept")
    st, _, j = d.api("GET", "/v1/products/")
    check(st == 200, "admin key valid after restart")


def test_data_dir_lock(d):
    p = run_fotad(["--data", d.data_dir, "--bind", "127.0.0.1", "--http-port", "0",
                   "--device-port", "off", "--legacy-port", "off", "--https-port", "off",
                   "--device-tls-port", "off"])
    check(p.returncode != 0 and b"data dir in use by another fotad" in p.stderr and
          str(d.proc.pid).encode() in p.stderr, "second fotad refused: %r" % p.stderr)
    st, _, j = d.api("GET", "/v1/ping/")
    check(st == 200, "first one unaffected")
    d.kill()                 # a crash releases the lock
    d.start()
    st, _, j = d.api("GET", "/v1/products/")
    check(st == 200, "restart after kill -9 gets the lock")


def test_sighup_reload():
    with tempfile.TemporaryDirectory() as t:
        conf = os.path.join(t, "f.conf")
        with open(conf, "w") as f:
            f.write("max_upload = 4M\nlog_level = info\n")
        with Fotad(config=conf) as d:
            with open(conf, "w") as f:
                f.write("max_upload = 64K\nlog_level = debug\nhttp_port = 9\n")
            d.proc.send_signal(signal.SIGHUP)
            d.wait_log(r"configuration reloaded changed=log_level,max_upload")
            p = d.create_product()
            ct, body = multipart({"version": "v1"}, [("f", "user1.bin", os.urandom(80 * 1024))])
            st, _, _ = d.request("POST", "/v1/products/%d/roms/" % p["id"], body,
                                 headers={"Content-Type": ct}, key=d.admin_key)
            check(st == 413, "reloaded max_upload applies: %d" % st)
            st, _, j = d.api("GET", "/v1/ping/")
            check(st == 200, "http port unchanged by reload")
            # A broken file keeps the old configuration.
            with open(conf, "w") as f:
                f.write("max_upload = lots\n")
            d.expect_error(r"reload failed")
            d.proc.send_signal(signal.SIGHUP)
            d.wait_log(r"reload failed, keeping the old configuration")


def upload_request(d, pid, version, seed):
    files = [("file", "user1.bin", make_image(1, 2, None, None, seed)),
             ("file", "user2.bin", make_image(2, 2, None, None, seed))]
    ct, body = multipart({"version": version}, files)
    head = ("POST /v1/products/%d/roms/ HTTP/1.1\r\nHost: x\r\nAuthorization: token %s\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\n\r\n" % (pid, d.admin_key, ct, len(body)))
    return head.encode(), body


def blob_files(d):
    out = []
    for root, _, files in os.walk(os.path.join(d.data_dir, "blobs")):
        out += [os.path.join(root, f) for f in files]
    return out


def test_graceful_sigterm_finishes_upload(d):
    p = d.create_product()
    head, body = upload_request(d, p["id"], "v2.0", 11)
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    s.sendall(head + body[: len(body) // 2])
    d.proc.send_signal(signal.SIGTERM)
    d.wait_log(r"shutting down signal=SIGTERM")
    s.sendall(body[len(body) // 2:])
    reply = recv_to_close(s)
    s.close()
    check(reply.startswith(b"HTTP/1.1 200"), "in-flight upload finished: %r" % reply[:200])
    check(b"Connection: close" in reply, "reply during drain closes the connection")
    d.stop(term=False)   # exit status 0 after the drain, a clean log
    d.start()
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % p["id"])
    check([r["version"] for r in j["roms"]] == ["v2.0"], "release kept %r" % j)
    # New connections are refused while draining: covered by the listener
    # being closed; a fresh start serves again.


def test_drain_closes_idle_and_streams(d):
    # A keep-alive connection that already carried a request, and a live
    # message stream: SIGTERM ends both and exits well before shutdown_grace.
    idle = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
    idle.request("GET", "/v1/ping/")
    r = idle.getresponse()
    r.read()
    check(r.status == 200 and not r.will_close, "keep-alive connection")
    fol = http.client.HTTPConnection("127.0.0.1", d.http_port, timeout=10)
    fol.request("GET", "/v1/messages/?follow=true", headers={"Authorization": "token " + d.admin_key})
    fr = fol.getresponse()
    check(fr.readline().startswith(b": follow"), "stream open")
    d.proc.send_signal(signal.SIGTERM)
    rest = fr.read()   # returns when fotad ends the stream
    check(b"data:" not in rest, "stream ended without events: %r" % rest)
    d.stop(term=False, timeout=5)   # exit status 0 well before the 10 s shutdown_grace
    idle.close()
    fol.close()
    d.start()


def test_kill9_during_upload(d):
    p = d.create_product()
    d.upload_release(p["id"], "v1.0")
    before = sorted(blob_files(d))
    # 1. Headers and half the body, then SIGKILL.
    head, body = upload_request(d, p["id"], "v1.1", 21)
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    s.sendall(head + body[: len(body) // 2])
    d.kill()
    s.close()
    # A crash in the middle of a blob write leaves a temp file behind.
    tmpdir = os.path.join(d.data_dir, "blobs", "tmp")
    os.makedirs(tmpdir, exist_ok=True)
    with open(os.path.join(tmpdir, "upload.partial"), "wb") as f:
        f.write(b"\xea\x04" + os.urandom(1000))
    d.start()
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % p["id"])
    check([r["version"] for r in j["roms"]] == ["v1.0"], "no partial release %r" % j)
    check(os.listdir(tmpdir) == [], "temp blob removed at start: %r" % os.listdir(tmpdir))
    check(sorted(blob_files(d)) == before, "no new blob after a killed upload")
    # 2. The whole body, SIGKILL right away: after restart the release is
    #    there complete (both files, blobs present and matching) or absent.
    head, body = upload_request(d, p["id"], "v1.2", 22)
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    s.sendall(head + body)
    d.kill()
    s.close()
    d.start()
    st, _, j = d.api("GET", "/v1/products/%d/roms/" % p["id"])
    vers = [r["version"] for r in j["roms"]]
    check(vers in (["v1.0"], ["v1.2", "v1.0"]), "all or nothing: %r" % vers)
    for rom in j["roms"]:
        check(len(rom["files"]) == 2, "complete file list %r" % rom)
        for f in rom["files"]:
            path = os.path.join(d.data_dir, "blobs", "sha256", f["sha256"][:2], f["sha256"])
            check(os.path.getsize(path) == f["size"], "blob of %s durable" % f["name"])
    # The daemon keeps serving, and the version can be uploaded (or is a 409).
    if vers == ["v1.0"]:
        d.upload_release(p["id"], "v1.2")


def test_https():
    with tempfile.TemporaryDirectory() as t:
        cert, key = make_cert(t)
        with Fotad(https=True, tls=(cert, key)) as d:
            check("https" in d.ports, "https port logged: %r" % d.ports)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c = http.client.HTTPSConnection("127.0.0.1", d.ports["https"], context=ctx, timeout=10)
            c.request("GET", "/v1/products/", headers={"Authorization": "token " + d.admin_key})
            r = c.getresponse()
            j = json.loads(r.read())
            c.close()
            check(r.status == 200 and j["status"] == 200 and j["products"] == [], "https %r" % j)


def test_bad_tls_material():
    with tempfile.TemporaryDirectory() as t:
        bogus = os.path.join(t, "x.pem")
        with open(bogus, "w") as f:
            f.write("not a pem\n")
        p = run_fotad(["--data", t, "--bind", "127.0.0.1", "--http-port", "0", "--https-port",
                       "0", "--device-port", "off", "--device-tls-port", "off", "--legacy-port",
                       "off", "--tls-cert", bogus, "--tls-key", bogus])
        check(p.returncode != 0 and b"cannot load TLS certificate" in p.stderr, "%r" % p.stderr)
        p = run_fotad(["-t", "--tls-cert", bogus, "--tls-key", bogus])
        check(p.returncode == 2 and b"does not load" in p.stderr, "-t loads TLS: %r" % p.stderr)
        p = run_fotad(["-t", "--bind", "localhost"])
        check(p.returncode == 2 and b"bind" in p.stderr, "-t checks bind: %r" % p.stderr)


def test_ipv6():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
    except OSError as e:
        raise TestFailure("cannot bind ::1 (%s): the loopback needs IPv6 for this test" % e)
    with Fotad(extra=["--bind", "::1"]) as d:
        check(re.search(r"listening proto=http addr=\[::1\]:%d" % d.http_port, d.log_text()),
              "ipv6 listening line")
        c = http.client.HTTPConnection("::1", d.http_port, timeout=10)
        c.request("GET", "/v1/ping/")
        r = c.getresponse()
        check(r.status == 200, "ping over ::1")
        r.read()
        c.close()


def test_http10_and_head(d):
    s = socket.create_connection(("127.0.0.1", d.http_port), timeout=10)
    s.sendall(b"GET /v1/ping/ HTTP/1.0\r\n\r\n")
    data = recv_to_close(s)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"Content-Length: (\d+)", head)
    check(m and int(m.group(1)) == len(body), "HTTP/1.0 reply has an exact Content-Length: %r" % data)
    st, h, body = d.request("HEAD", "/v1/products/", key=d.admin_key)
    check(st == 200 and body == b"" and int(h["content-length"]) > 10, "HEAD")


if __name__ == "__main__":
    run_tests([test_config_check, test_config_doc_in_sync, test_port_in_use,
               test_first_start_files, test_data_dir_lock, test_sighup_reload,
               test_graceful_sigterm_finishes_upload, test_drain_closes_idle_and_streams,
               test_kill9_during_upload, test_https,
               test_bad_tls_material, test_ipv6, test_http10_and_head])
