"""pg_util.py - a PostgreSQL server of a test's own, from Python (tests/pg/pg_server.sh).

    from pg_util import PgServer
    pg = PgServer()             # initdb + start: a unix socket in a dir of its own, no TCP
    pg.create_db("t_1")
    dsn = pg.dsn("t_1")         # "host=DIR user=fota dbname=t_1" (fotad: store = postgresql:DSN)
    pg.sql("SELECT 1", "t_1")   # psql's unaligned rows, as text
    pg.stop()                   # also at exit, after a failure or a signal

    sb = PgServer.standby_of(pg)   # a streaming standby (pg_basebackup -R), read-only
    pg.crash()                  # the primary lost at once (immediate stop)
    sb.promote()                # the standby becomes the primary

As root the server runs as nobody (initdb and postgres refuse root), which cannot reach a work
dir under /root: its dir is then under /tmp, removed by stop(); otherwise it is in the test's
work dir (tempfile, which fotatest.py points there).
"""
import atexit
import os
import shutil
import subprocess
import tempfile

from fotatest import check

HERE = os.path.dirname(os.path.abspath(__file__))
PG_SERVER = os.path.join(HERE, "..", "pg", "pg_server.sh")


class PgServer:
    def __init__(self, start=True):
        self.dir = None
        if start:
            self.start()

    def start(self, source=None):
        """initdb and start; with source (a running PgServer), a standby of it instead."""
        parent = "/tmp" if os.geteuid() == 0 else None
        self.dir = tempfile.mkdtemp(prefix="fota-pg-", dir=parent)
        atexit.register(self.stop)
        how = ["standby", source.dir] if source else ["start"]
        # The watchdog of pg_server.sh stops the server should this process die unstopped.
        p = subprocess.run([PG_SERVER] + how + [self.dir, str(os.getpid())], capture_output=True,
                           text=True, timeout=120)
        check(p.returncode == 0, "pg_server.sh %s %s: exit %d\n%s%s" %
              (how[0], self.dir, p.returncode, p.stdout, p.stderr))
        return self

    @classmethod
    def standby_of(cls, primary):
        """A hot standby streaming from primary, started (read-only until promote())."""
        return cls(start=False).start(source=primary)

    def promote(self):
        p = subprocess.run([PG_SERVER, "promote", self.dir], capture_output=True, text=True,
                           timeout=120)
        check(p.returncode == 0, "pg_server.sh promote: exit %d\n%s" % (p.returncode, p.stderr))

    def crash(self):
        """Stops the server at once (immediate mode), as if its machine were lost; its dir
        stays until stop()."""
        p = subprocess.run([PG_SERVER, "crash", self.dir], capture_output=True, text=True,
                           timeout=120)
        check(p.returncode == 0, "pg_server.sh crash: exit %d\n%s" % (p.returncode, p.stderr))

    def restart(self):
        p = subprocess.run([PG_SERVER, "restart", self.dir], capture_output=True, text=True,
                           timeout=120)
        check(p.returncode == 0, "pg_server.sh restart: exit %d\n%s" % (p.returncode, p.stderr))

    def stop(self):
        """Stops the server and removes its dir; a second call does nothing."""
        if not self.dir:
            return
        d, self.dir = self.dir, None
        p = subprocess.run([PG_SERVER, "stop", d], capture_output=True, text=True, timeout=120)
        shutil.rmtree(d, ignore_errors=True)
        check(p.returncode == 0, "pg_server.sh stop %s: exit %d\n%s" % (d, p.returncode, p.stderr))

    def dsn(self, dbname="postgres"):
        return "host=%s user=fota dbname=%s" % (self.dir, dbname)

    def sql(self, statement, dbname="postgres"):
        """Runs one statement with psql; its rows as unaligned text ('|' between columns)."""
        p = subprocess.run(["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d",
                            self.dsn(dbname), "-c", statement],
                           capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, "psql %r: exit %d\n%s" % (statement, p.returncode, p.stderr))
        return p.stdout

    def processes(self, d=None):
        """The processes whose working directory is the cluster's (every process of a
        PostgreSQL server sits there): 0 once it has stopped."""
        want = os.path.join(d or self.dir, "data")
        n = 0
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                n += os.readlink("/proc/%s/cwd" % pid) == want
            except OSError:
                pass   # gone, a zombie, or not ours to read
        return n

    def create_db(self, name):
        self.sql('CREATE DATABASE "%s" TEMPLATE template0' % name)
        return self.dsn(name)

    def drop_db(self, name):
        self.sql('DROP DATABASE "%s" WITH (FORCE)' % name)
