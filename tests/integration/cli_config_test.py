"""cli_config_test.py - where fotactl takes its server and key from, and what login writes.

A stdlib HTTP stub on 127.0.0.1:0 records each request's Authorization header and Host, so the
test sees which key and server fotactl really used:
- `login --server --key` writes HOME/.config/fota/config (file 0600, directory 0700), and only
  after the server accepted the key; a refused key (401) writes nothing and says so;
- the file is used when nothing overrides it; FOTA_SERVER/FOTA_KEY override the file;
  --server/--key override both; XDG_CONFIG_HOME wins over HOME;
- one process reuses one connection for several requests (keep-alive);
- connection refused names the server that was tried.
HOME is a temp dir: the real ~/.config is never touched. Python 3 stdlib only.
"""
import http.server
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading

BIN_DIR = os.environ.get("FOTA_BIN_DIR") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")
FOTACTL = os.path.join(BIN_DIR, "fotactl")
GOOD = {"a" * 40, "b" * 40, "c" * 40}


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Stub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive
    seen = []                       # (port, path, authorization, client port)
    lock = threading.Lock()

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        with Stub.lock:
            Stub.seen.append((self.server.server_port, self.path, auth, self.client_address[1]))
        key = auth[len("token "):] if auth.startswith("token ") else ""
        if key in GOOD:
            code, body = 200, {"status": 200, "products": [
                {"id": 7, "name": "plug", "serial": "23701", "flash_map": 2}]}
            if self.path.startswith("/v1/products/7/devices/"):
                body = {"status": 200, "devices": [{"id": 3, "name": "kitchen"}]}
        else:
            code, body = 401, {"status": 401, "message": "invalid key"}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def start_stub():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(args, home, env_extra=None):
    env = dict(os.environ, HOME=home, NO_COLOR="1")
    for k in ("FOTA_SERVER", "FOTA_KEY", "XDG_CONFIG_HOME"):
        env.pop(k, None)
    env.update(env_extra or {})
    return subprocess.run([FOTACTL] + args, capture_output=True, text=True, env=env, timeout=20)


def last(n=1):
    with Stub.lock:
        return Stub.seen[-n:]


def main():
    if not os.access(FOTACTL, os.X_OK):
        fail("%s is not built" % FOTACTL)
    s1, s2, s3 = start_stub(), start_stub(), start_stub()
    u1, u2, u3 = ["http://127.0.0.1:%d" % s.server_port for s in (s1, s2, s3)]
    home = tempfile.mkdtemp(prefix="fotactl-conf-")
    try:
        cfg = os.path.join(home, ".config", "fota", "config")

        # A refused key is not saved.
        r = run(["login", "--server", u1, "--key", "f" * 40], home)
        if r.returncode != 3 or "the key was refused" not in r.stderr:
            fail("login with a bad key: want exit 3 'the key was refused', got %d %r"
                 % (r.returncode, r.stderr))
        if os.path.exists(cfg):
            fail("a refused key was saved")

        r = run(["login", "--server", u1, "--key", "a" * 40], home)
        if r.returncode != 0:
            fail("login failed: %d %r" % (r.returncode, r.stderr))
        if last()[0][2] != "token " + "a" * 40:
            fail("login did not present the key: %r" % (last(),))
        st = os.stat(cfg)
        if stat.S_IMODE(st.st_mode) != 0o600:
            fail("config mode %o, want 600" % stat.S_IMODE(st.st_mode))
        if stat.S_IMODE(os.stat(os.path.dirname(cfg)).st_mode) != 0o700:
            fail("config directory is not 0700")
        text = open(cfg).read()
        if u1 not in text or "a" * 40 not in text:
            fail("config lacks server or key:\n" + text)

        # The file alone.
        r = run(["product", "list"], home)
        if r.returncode != 0 or last()[0][0] != s1.server_port or \
                last()[0][2] != "token " + "a" * 40:
            fail("file config not used: %d %r %r" % (r.returncode, r.stderr, last()))
        if r.stdout.split("\t")[:2] != ["7", "plug"]:
            fail("piped product list is not tab-separated rows: %r" % r.stdout)

        # Environment beats the file.
        r = run(["product", "list"], home, {"FOTA_SERVER": u2, "FOTA_KEY": "b" * 40})
        if r.returncode != 0 or last()[0][0] != s2.server_port or \
                last()[0][2] != "token " + "b" * 40:
            fail("FOTA_SERVER/FOTA_KEY did not override the file: %r" % (last(),))

        # Flags beat the environment.
        r = run(["product", "list", "--server", u3, "--key", "c" * 40], home,
                {"FOTA_SERVER": u2, "FOTA_KEY": "b" * 40})
        if r.returncode != 0 or last()[0][0] != s3.server_port or \
                last()[0][2] != "token " + "c" * 40:
            fail("--server/--key did not override the environment: %r" % (last(),))

        # Common options may also come before the command.
        r = run(["--server", u3, "--key=" + "c" * 40, "--json", "product", "list"], home)
        if r.returncode != 0 or last()[0][0] != s3.server_port or \
                json.loads(r.stdout)["products"][0]["name"] != "plug":
            fail("options before the command: %d %r %r" % (r.returncode, r.stdout, r.stderr))

        # The source of a refused key is named.
        r = run(["product", "list"], home, {"FOTA_KEY": "e" * 40})
        if r.returncode != 3 or "the key was refused (key from FOTA_KEY)" not in r.stderr:
            fail("refused env key: %d %r" % (r.returncode, r.stderr))

        # Keep-alive: a name lookup and the list it feeds go over one connection.
        before = len(Stub.seen)
        r = run(["device", "list", "--product", "plug"], home)
        reqs = Stub.seen[before:]
        if r.returncode != 0 or len(reqs) != 2 or reqs[0][3] != reqs[1][3]:
            fail("device list --product NAME: want 2 requests on one connection, got %r (%d %r)"
                 % (reqs, r.returncode, r.stderr))
        if "kitchen" not in r.stdout:
            fail("device list output: %r" % r.stdout)

        # A config others can read still works, with a warning.
        os.chmod(cfg, 0o644)
        r = run(["product", "list"], home)
        os.chmod(cfg, 0o600)
        if r.returncode != 0 or "can be read by other users" not in r.stderr:
            fail("no warning about a 0644 config: %d %r" % (r.returncode, r.stderr))

        # XDG_CONFIG_HOME wins over HOME.
        xdg = os.path.join(home, "xdg")
        r = run(["login", "--server", u2, "--key", "b" * 40], home, {"XDG_CONFIG_HOME": xdg})
        if r.returncode != 0 or not os.path.exists(os.path.join(xdg, "fota", "config")):
            fail("login did not honour XDG_CONFIG_HOME: %d %r" % (r.returncode, r.stderr))
        if u1 not in open(cfg).read():
            fail("login with XDG_CONFIG_HOME rewrote the HOME config")

        # Connection refused names the server tried.
        dead = "http://127.0.0.1:%d" % free_port()
        r = run(["product", "list", "--server", dead], home)
        want = "cannot connect to %s (connection refused)" % dead
        if r.returncode != 5 or want not in r.stderr or len(r.stderr.splitlines()) != 1:
            fail("server down: want exit 5 %r, got %d %r" % (want, r.returncode, r.stderr))
        print("ok: login, precedence flag > env > file, XDG, keep-alive, connection refused")
    finally:
        for s in (s1, s2, s3):
            s.shutdown()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
