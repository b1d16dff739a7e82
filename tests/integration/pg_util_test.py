"""pg_util_test.py - the PostgreSQL server of the Python tests (pg_util.py, through
tests/pg/pg_server.sh): it starts in a directory of its own, makes a database that psql
reaches over the unix socket as user fota, restarts, and at stop leaves no process and no
directory behind. As root (CI) the server runs as nobody."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import check, run_tests, wait_for  # noqa: E402
from pg_util import PgServer  # noqa: E402


def test_start_query_restart_stop():
    pg = PgServer()
    d = pg.dir
    check(pg.processes() > 0, "no server process in %s" % d)
    if os.geteuid() == 0:
        owner = os.stat(os.path.join(d, "data")).st_uid
        check(owner != 0, "the cluster belongs to root (uid %d)" % owner)
    dsn = pg.create_db("t_1")
    check(dsn == "host=%s user=fota dbname=t_1" % d, dsn)
    out = pg.sql("SELECT 1, current_user, current_setting('listen_addresses')", "t_1")
    check(out.strip() == "1|fota|", "psql: %r" % out)
    pg.restart()
    check(pg.sql("SELECT 2", "t_1").strip() == "2", "after restart")
    pg.drop_db("t_1")
    pg.stop()
    wait_for(lambda: pg.processes(d) == 0, 10, "the server's processes to end")
    check(not os.path.exists(d), "%s left behind" % d)
    pg.stop()   # a second stop does nothing


run_tests([test_start_query_restart_stop])
