"""retention_test.py - fotad's store module keeps the log tables within their settings: a
burst of connect/close cycles on the legacy port records one transfer each, and retention
(transfer_retention_rows = 50, retention_interval = 1 s) brings the table back to 50 rows, the
newest, keeping their ids; messages (message_retention_rows = 5) likewise. The counts are
read from fota.db itself (a second SQLite connection, as the sqlite3 shell would)."""
import os
import socket
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fotatest  # noqa: E402
from fotatest import Fotad, check, run_tests, wait_for  # noqa: E402

fotatest.DEFAULT_STORE = "sqlite"   # the counts are read from fota.db

CYCLES = 300
KEEP_TRANSFERS = 50
KEEP_MESSAGES = 5


def rows(d, sql):
    db = sqlite3.connect(os.path.join(d.data_dir, "fota.db"), timeout=10)
    try:
        return db.execute(sql).fetchone()
    finally:
        db.close()


def test_retention():
    # legacy_empty_rate 0: every empty connection is stored (legacy_flood_test: a flood's are not)
    d = Fotad(legacy=True, extra=["--legacy-empty-rate", "0",
                                  "--transfer-retention-rows", str(KEEP_TRANSFERS),
                                  "--message-retention-rows", str(KEEP_MESSAGES),
                                  "--retention-interval", "1"]).start()
    port = d.ports["legacy"]
    for _ in range(CYCLES):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.close()
    # every cycle is recorded (the ids say so even after a round deleted some)
    wait_for(lambda: (rows(d, "SELECT MAX(id) FROM transfers")[0] or 0) >= CYCLES, 20,
             "a transfer row per connection")
    d.wait_log(r"mod=store retention deleted table=transfers rows=\d+", 10)
    wait_for(lambda: rows(d, "SELECT COUNT(*) FROM transfers")[0] == KEEP_TRANSFERS, 10,
             "%d transfer rows" % KEEP_TRANSFERS)
    lo, hi = rows(d, "SELECT MIN(id), MAX(id) FROM transfers")
    check(hi - lo + 1 == KEEP_TRANSFERS and hi >= CYCLES, "kept transfers %d..%d" % (lo, hi))

    # messages: a product-wide note per deleted device
    pid = d.create_product(name="notes")["id"]
    for i in range(3 * KEEP_MESSAGES):
        dev = d.create_device(pid, name="d%d" % i)["device"]["id"]
        st, _, j = d.api("DELETE", "/v1/devices/%d/" % dev)
        check(st == 200, "delete device: %d %r" % (st, j))
    last = rows(d, "SELECT MAX(id) FROM messages")[0]
    check(last >= 3 * KEEP_MESSAGES, "messages written: %r" % last)
    wait_for(lambda: rows(d, "SELECT COUNT(*) FROM messages")[0] == KEEP_MESSAGES, 10,
             "%d messages" % KEEP_MESSAGES)
    st, _, j = d.api("GET", "/v1/messages/?limit=50")
    ids = [m["id"] for m in j["messages"]]
    check(st == 200 and ids == list(range(last, last - KEEP_MESSAGES, -1)),
          "the messages kept: %d %r" % (st, ids))
    d.stop()


run_tests([test_retention])
