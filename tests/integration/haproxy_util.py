"""haproxy_util.py - Debian's haproxy in front of a test's fotad instances, configured by
etc/haproxy.cfg.example itself: its frontends bind loopback ports, and each backend's server
lines point at the instances given.

    from haproxy_util import HAProxy
    lb = HAProxy([a, b]).start()       # a, b: started fotatest.Fotad
    lb.ports["http"], lb.ports["device"]
    lb.up("http") -> names of the servers haproxy counts up in that backend ("fotad1", ...)
    lb.stop()
"""
import os
import re
import signal
import socket

from fotatest import Daemon, check, free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "etc", "haproxy.cfg.example")

# Backend of the example -> the fotad listener its servers point at.
KINDS = {"fotad_http": "http", "fotad_device": "device", "fotad_device_tls": "device-tls"}


def haproxy_path():
    for d in ("/usr/sbin", "/usr/local/sbin", "/usr/bin"):
        p = os.path.join(d, "haproxy")
        if os.access(p, os.X_OK):
            return p
    check(False, "no haproxy binary: run scripts/deps.sh")


def config(instances, stats):
    """The example's text for instances (started Fotad): frontends on free loopback ports
    (returned by listener kind), servers at the instances' ports, and a stats socket (the
    test reads which servers are up). Backends for listeners the instances do not have
    are left out with their frontends."""
    text = open(EXAMPLE).read()
    sections = re.split(r"\n(?=(?:global|defaults|frontend|backend)\b)", text)
    out, ports, wanted = [], {}, set()
    for sec in sections:
        head = sec.split(None, 2)
        if head[0] == "backend":
            kind = KINDS[head[1]]
            if not all(kind in d.ports for d in instances):
                continue
            wanted.add(head[1])
            lines = [ln for ln in sec.splitlines() if not ln.strip().startswith("server ")]
            for i, d in enumerate(instances):
                lines.append("    server fotad%d 127.0.0.1:%d check port %d" %
                             (i + 1, d.ports[kind], d.ports["http"]))
            sec = "\n".join(lines) + "\n"
        out.append(sec)
    text = "\n".join(out)
    kept = []
    for sec in re.split(r"\n(?=(?:global|defaults|frontend|backend)\b)", text):
        m = re.search(r"^\s*default_backend\s+(\S+)", sec, re.M)
        if sec.startswith("frontend") and m:
            if m.group(1) not in wanted:
                continue
            port = free_port()
            ports[KINDS[m.group(1)]] = port
            sec = re.sub(r"^(\s*bind\s+)\S+", r"\g<1>127.0.0.1:%d" % port, sec, flags=re.M)
        if sec.startswith("global"):
            sec = re.sub(r"^(\s*maxconn\s+)\d+", r"\g<1>4096", sec, flags=re.M)
            sec += "    stats socket %s mode 600 level admin\n" % stats
        kept.append(sec)
    return "\n".join(kept), ports


class HAProxy(Daemon):
    label = "haproxy"

    def __init__(self, instances):
        super().__init__([haproxy_path()])
        self.instances = list(instances)
        self.stats = os.path.join(self.tmp, "stats.sock")
        self.cfg = os.path.join(self.tmp, "haproxy.cfg")
        text, self.ports = config(self.instances, self.stats)
        with open(self.cfg, "w") as f:
            f.write(text)
        # -db: in the foreground, its log on stdout; -W would fork a master
        self.args += ["-db", "-f", self.cfg]

    def start(self, timeout=15.0):
        self._launch()

        def listening():
            if not os.path.exists(self.stats):
                return False
            for port in self.ports.values():
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) != 0:
                        return False
            return True
        self._wait_ready(listening, timeout, "haproxy listening")
        # Every server counted up by its checks before the test sends anything through.
        wait_for(lambda: all(len(self.up(b)) == len(self.instances) for b in self.backends()),
                 timeout, "haproxy's checks: every instance up", interval=0.05)
        return self

    def command(self, line):
        """One command on the stats socket; its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.stats)
            s.sendall(line.encode() + b"\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    return data.decode()
                data += b

    def backends(self):
        return [b for b, kind in KINDS.items() if kind in self.ports]

    def up(self, backend):
        """Names of the servers of backend that haproxy counts UP."""
        rows = self.command("show stat").splitlines()
        names = rows[0].lstrip("# ").split(",")
        px, sv, status = names.index("pxname"), names.index("svname"), names.index("status")
        up = []
        for r in rows[1:]:
            f = r.split(",")
            if len(f) > status and f[px] == backend and f[sv].startswith("fotad") and \
                    f[status].startswith("UP"):
                up.append(f[sv])
        return up

    def stop(self, status=0, term=True, timeout=15.0):
        """A soft stop (SIGUSR1: haproxy's SIGTERM is a hard stop that ends it by the
        signal): it closes its listeners and exits 0 once its connections are gone."""
        if term and self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
        return super().stop(status, term=False, timeout=timeout)

    def check_log(self):
        # haproxy's own lines carry no fotad log level; an ALERT is its error
        text = self.all_text()
        for line in text.splitlines():
            check("[ALERT]" not in line, "haproxy alert: %s" % line)
