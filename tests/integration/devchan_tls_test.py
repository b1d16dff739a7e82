"""devchan_tls_test.py - the TLS device port (8443 role): TLS 1.2 with AES128-SHA, TLS 1.3,
and the Max Fragment Length extension echoed when the client asks (openssl s_client), with a
stock identify answered over each; TLS 1.0/1.1 refused by fotad's own policy even when the
system OpenSSL configuration would allow them."""
import os
import socket
import ssl
import subprocess
import tempfile

from devchan_util import check, first_frame, make_cert, start_fotad

KEY = "0" * 40


def read_line(s):
    data = b""
    while b"\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def plain_client_dropped(port):
    """A plain-text client on the TLS port gets no device-protocol reply: fotad closes the
    connection (at most a TLS alert record comes back) well before the 10 s hello timeout."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(first_frame(7, KEY).encode())
        data, closed = b"", False
        try:
            while len(data) < 65536:
                chunk = s.recv(4096)
                if not chunk:
                    closed = True
                    break
                data += chunk
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            pass
    check(b"status" not in data and not data.startswith(b"{"),
          "a plain-text client was answered on the TLS port: %r" % data[:200])
    check(closed, "the plain-text client's connection was not closed (got %r)" % data[:200])
    check(not data or data[0] == 0x15, "not a TLS alert: %r" % data[:20])


def main():
    d = start_fotad(tls=make_cert(tempfile.mkdtemp(prefix="fota-cert-")))
    try:
        plain_client_dropped(d.device_tls_port)
        # s_client: TLS 1.2, AES128-SHA, max fragment length 512
        p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.device_tls_port,
                            "-tls1_2", "-cipher", "AES128-SHA", "-maxfraglen", "512",
                            "-tlsextdebug", "-ign_eof"],
                           input=first_frame(5, KEY).encode(), capture_output=True, timeout=20)
        out = p.stdout.decode("utf-8", "replace")
        check("Cipher is AES128-SHA" in out, "AES128-SHA not negotiated:\n" + out[-1500:])
        check('TLS server extension "max fragment length"' in out, "MFL not echoed")
        check('{"message": "unknown key", "status": 403}' in out, "no reply over TLS 1.2")
        # TLS 1.3 with the client's defaults
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.device_tls_port), timeout=5)) as s:
            check(s.version() == "TLSv1.3", "not TLS 1.3: %s" % s.version())
            check("AES_128" in s.cipher()[0] or "AES_256" in s.cipher()[0] or "CHACHA" in
                  s.cipher()[0], "cipher %s" % (s.cipher(),))
            s.sendall(first_frame(6, KEY).encode())
            data = read_line(s)
            check(data == b'{"message": "unknown key", "status": 403}\n', "TLS 1.3 reply %r" % data)
        # the server still answers TLS clients after the plain-text one was dropped
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", d.device_tls_port), timeout=5)) as s:
            s.sendall(first_frame(8, KEY).encode())
            check(read_line(s) == b'{"message": "unknown key", "status": 403}\n',
                  "no TLS reply after the plain-text client")
    finally:
        d.stop()
    print("ok")


# An OpenSSL configuration that allows every protocol version and cipher, so
# only fotad's explicit policy (server/core/tls_policy.c) can refuse TLS 1.1.
PERMISSIVE = """openssl_conf = openssl_init
[openssl_init]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MinProtocol = TLSv1
CipherString = DEFAULT:@SECLEVEL=0
"""


def s_client(port, version, conf):
    env = dict(os.environ, OPENSSL_CONF=conf)
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, version,
                        "-cipher", "AES128-SHA:@SECLEVEL=0"],
                       input=b"", capture_output=True, timeout=20, env=env)
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


def old_versions_refused():
    tmp = tempfile.mkdtemp(prefix="fota-tlsconf-")
    conf = os.path.join(tmp, "openssl.cnf")
    with open(conf, "w") as f:
        f.write(PERMISSIVE)
    cert = make_cert(tmp)
    os.environ["OPENSSL_CONF"] = conf   # fotad inherits it
    try:
        d = start_fotad(tls=cert)
    finally:
        del os.environ["OPENSSL_CONF"]
    try:
        # Control: the same client and configuration do complete TLS 1.2.
        rc, out = s_client(d.device_tls_port, "-tls1_2", conf)
        check("Cipher is AES128-SHA" in out, "TLS 1.2 control failed:\n" + out[-1500:])
        for version in ("-tls1_1", "-tls1"):
            rc, out = s_client(d.device_tls_port, version, conf)
            check("no protocols available" not in out, "client refused %s itself" % version)
            check(rc != 0 and "Cipher is AES128-SHA" not in out,
                  "%s handshake accepted:\n%s" % (version, out[-1500:]))
            check("protocol version" in out or "unsupported protocol" in out,
                  "%s: no protocol-version alert:\n%s" % (version, out[-1500:]))
    finally:
        d.stop()


if __name__ == "__main__":
    main()
    old_versions_refused()
