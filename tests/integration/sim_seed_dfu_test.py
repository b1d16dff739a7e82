"""sim_seed_dfu_test.py - fota-sim's seed-dfu profile (the seed's dfu_ota.c
client, port 5555) against the legacy listener (`fotad legacy`), its 1280-byte-buffer overflow reported as a failure
against an unpaced server, and power cuts during the upgrade."""
import json
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fotatest  # noqa: E402
import sim_standin as st  # noqa: E402

V1 = "v1.0.0t45772(a)"
V2 = "v2.0.0t45772(a)"


def start_legacy(fw1, fw2):
    """`fotad legacy` through the harness (its exit status and output checked at stop). The
    gap after each acknowledged chunk is 60 ms, not the default 20: the kernel acknowledges a
    chunk before fota-sim reads it, so a simulator stalled longer than the gap (a loaded test
    machine) reads two chunks at once and counts the overflow a real device would have."""
    return fotatest.Dropin(["-fw1", fw1, "-fw2", fw2, "--port", "0",
                            "--bind", "127.0.0.1", "--interval-ms", "60"]).start()


def summary_field(out, name):
    m = re.search(r"^\s+%s:\s+(\d+)" % name, out, re.M)
    return int(m.group(1)) if m else -1


def main():
    with tempfile.TemporaryDirectory() as d:
        fw1 = os.path.join(d, "user1.bin")
        fw2 = os.path.join(d, "user2.bin")
        img1 = st.write_image(fw1, 1, V2, 40000)
        st.write_image(fw2, 2, V2, 40000)

        srv = start_legacy(fw1, fw2)
        port = srv.port
        try:
            base = ["--server", "127.0.0.1", "--legacy-port", str(port), "--profile", "seed-dfu",
                    "--upgrade-to", V2, "--initial-version", V1, "--timeout", "60"]
            rc, out, err = st.run_sim(base + ["--devices", "4"])
            assert rc == 0, (rc, out, err)
            assert summary_field(out, "upgraded") == 4, out
            # (>=: a host that stalls longer than the server's pacing interval
            # sees chunks merged, counts an overflow and the device retries)
            assert summary_field(out, "bytes") >= 4 * (len(img1) + 4), out
            # the same as one JSON object (for scripts and benchmarks)
            rc, out, err = st.run_sim(base + ["--devices", "2", "--json"])
            j = json.loads(out)
            assert rc == 0 and j["upgraded"] == 2 and j["failed"] == 0 and j["result"] == "ok", out
            assert j["bytes"] >= 2 * (len(img1) + 4) and j["reasons"] == {}, out
            # streaming extension (0x81/0x82): unpaced, no 1280-byte limit
            rc, out, err = st.run_sim(base + ["--devices", "3", "--stream-ext"])
            assert rc == 0, (rc, out, err)
            # power cut at flash operations (erase of the slot, writes, the flip)
            for f in ("flash@0", "flash@60", "flash@125", "rx@20000", "drop@15000"):
                rc, out, err = st.run_sim(base + ["--devices", "2", "--faults", f])
                assert rc == 0, (f, rc, out, err)
                assert summary_field(out, "upgraded") == 2, (f, out)
                if not f.startswith("drop"):
                    assert summary_field(out, "power cuts") == 2, (f, out)
        finally:
            srv.stop()

        # an unpaced server overflows the stock client's 1280-byte buffer
        lg = st.LegacyServer(open(fw1, "rb").read(), open(fw2, "rb").read(), paced=False)
        try:
            rc, out, err = st.run_sim(["--server", "127.0.0.1", "--legacy-port", str(lg.port),
                                       "--profile", "seed-dfu", "--devices", "2", "--upgrade-to", V2,
                                       "--initial-version", V1, "--max-attempts", "2",
                                       "--timeout", "30"])
            assert rc == 1, (rc, out, err)
            assert "seed receive buffer overflow (1280 bytes)" in out, out
            assert summary_field(out, "upgraded") == 0, out
        finally:
            lg.close()
    print("ok")


if __name__ == "__main__":
    main()
