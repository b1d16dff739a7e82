"""cli_rollout_test.py - `fotactl rollout start|list|show|cancel` against a real fotad and fota-sim.

Four simulated stock NONOS devices come online on V1 and wait for the server's push
(--await-push); `fotactl rollout start --product plug --version V2 --online --from V1 --reboot
--window 2 --wait` starts the bulk upgrade and follows it until every device has reported: exit
0, progress lines, the last one 4/4 upgraded; fota-sim sees every device boot V2. Then `rollout
list` (table and --json), `rollout show` (and --wait on a finished rollout), a rollout that
selects nothing (exit 0, 0 devices), and the errors: a version the product does not have (exit
4), a missing --version and a bad --window (exit 2), an unknown rollout (exit 4), no key (exit 3).
Python 3 stdlib only.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sim_standin as st  # noqa: E402
from cli_workflow_test import Ctl  # noqa: E402
from fotatest import Fotad, check, finish, run_tests, wait_for  # noqa: E402

V1 = "v1.0.0t45772(a)"
V2 = "v1.0.8t45772(a)"
N = 4


def test_rollout():
    with tempfile.TemporaryDirectory() as tmp:
        d = Fotad(data_dir=os.path.join(tmp, "data"))
        d.start()
        sim = None
        try:
            pid = st.stock_product(d, tmp, V2)
            home = os.path.join(tmp, "home")
            os.mkdir(home)
            ctl = Ctl(home)
            ctl.run("login", "--server", "http://127.0.0.1:%d" % d.http_port, "--key",
                    d.admin_key)
            sim = subprocess.Popen(
                [st.sim_path(), "--server", "127.0.0.1", "--http-port", str(d.http_port),
                 "--device-port", str(d.ports["device"]), "--key", d.admin_key, "--product",
                 str(pid), "--profile", "nonos", "--devices", str(N), "--upgrade-to", V2,
                 "--initial-version", V1, "--await-push", "--time-scale", "20", "--timeout", "90"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

            def online():
                s, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
                return sum(1 for x in j.get("devices", []) if x.get("online")) == N
            wait_for(online, 30, "%d simulated devices online" % N, interval=0.2)

            r = ctl.run("rollout", "start", "--product", "plug", "--version", V2, "--online",
                        "--from", V1 + ",v0.9", "--reboot", "--window", "2", "--max-failures", "1",
                        "--wait", timeout=120)
            lines = r.stdout.strip().splitlines()
            check(lines and lines[-1].startswith("rollout 1: %d/%d upgraded, 0 in progress" % (N, N))
                  and "0 failed, 0 timed out" in lines[-1], "rollout --wait output:\n" + r.stdout)
            out, err = sim.communicate(timeout=60)
            check(sim.returncode == 0, "fota-sim rc %d\n%s\n%s" % (sim.returncode, out, err[-2000:]))
            check("AddressSanitizer" not in err and "runtime error" not in err, err[-2000:])
            s, _, j = d.api("GET", "/v1/products/%d/devices/" % pid)
            check(sorted(x["rom_version"] for x in j["devices"]) == [V2] * N, "versions %r" % j)

            # list and show
            r = ctl.run("rollout", "list")
            rows = [x.split("\t") for x in r.stdout.strip().splitlines()]
            check(len(rows) == 1 and rows[0][0] == "1" and rows[0][1] == "plug" and
                  rows[0][2] == V2 and rows[0][3] == "finished" and rows[0][4] == "-" and
                  rows[0][5] == "%d/%d" % (N, N) and "job" not in r.stdout.lower(),
                  "list %r" % rows)
            ros = ctl.json("rollout", "list")["rollouts"]
            check(len(ros) == 1 and ros[0]["succeeded"] == N and ros[0]["window"] == 2 and
                  ros[0]["reboot"] is True and ros[0]["max_failures"] == 1 and
                  ros[0]["halted"] is False and ros[0]["product_id"] == pid and
                  ros[0]["filter"] == {"online": True, "rom_version": [V1, "v0.9"]},
                  "list --json %r" % ros)
            check(ctl.run("rollout", "list", "--product", "plug").stdout == ctl.run(
                "rollout", "list").stdout, "list --product")
            r = ctl.run("rollout", "list", "--product", "nope", ok=False)
            check(r.returncode == 4, "list --product unknown %d %r" % (r.returncode, r.stderr))
            other = d.create_product(name="other")["id"]
            check(ctl.json("rollout", "list", "-p", str(other))["rollouts"] == [],
                  "other product's list")
            s_, _, j_ = d.api("GET", "/v1/rollouts/?product_id=x")
            check(s_ == 400, "product_id=x %d %r" % (s_, j_))
            r = ctl.run("rollout", "show", "1")
            check("finished" in r.stdout and V2 in r.stdout, "show:\n" + r.stdout)
            r = ctl.run("rollout", "show", "1", "--wait")
            check("%d/%d upgraded" % (N, N) in r.stdout, "show --wait on a finished one:\n" + r.stdout)
            # everything is on V2 now: nothing selected, exit 0 even with --wait
            r = ctl.run("rollout", "start", "-p", str(pid), "-v", V2, "--wait")
            check("0 devices selected, %d already on it" % N in r.stdout, "empty:\n" + r.stdout)

            # cancel: back to V1 for the (now offline) devices, queued, then cancelled
            st.upload_stock(d, pid, V1, tmp)
            r = ctl.run("rollout", "start", "-p", "plug", "-v", V1, "--stages", "1,100%",
                        "--approval")
            check("rollout 3 of plug to %s: %d devices selected" % (V1, N) in r.stdout,
                  "second rollout:\n" + r.stdout)
            # the list in words: the product by name, the stage of a rollout in stages
            rows = [x.split("\t") for x in ctl.run("rollout", "list").stdout.strip().splitlines()]
            check([w[:5] for w in rows[:1]] == [["3", "plug", V1, "running", "1/2"]] and
                  rows[0][5] == "0/%d" % N, "staged list %r" % rows)
            r = ctl.run("rollout", "cancel", "3")
            check("rollout 3 cancelled: %d devices dropped before their push" % N in r.stdout,
                  "cancel:\n" + r.stdout)
            x = ctl.json("rollout", "show", "3")["rollout"]
            check(x["state"] == "cancelled" and x["cancelled"] == N and x["queued"] == 0, "%r" % x)
            r = ctl.run("rollout", "cancel", "3", ok=False)
            check(r.returncode == 1 and "nothing to cancel" in r.stderr, "cancel twice %r" % r.stderr)
            r = ctl.run("rollout", "show", "3", "--wait", ok=False)
            check(r.returncode == 1 and "was cancelled" in r.stderr, "wait on cancelled %r" % r.stderr)

            # errors, with their exit statuses
            r = ctl.run("rollout", "start", "-p", "plug", "-v", "v9.9", ok=False)
            check(r.returncode == 4 and r.stderr.count("\n") == 1, "unknown version %d %r" % (
                r.returncode, r.stderr))
            r = ctl.run("rollout", "start", "-p", "plug", ok=False)
            check(r.returncode == 2 and "--version" in r.stderr, "no version %r" % r.stderr)
            r = ctl.run("rollout", "start", "-p", "plug", "-v", V2, "--max-failures", "-1", ok=False)
            check(r.returncode == 2 and "--max-failures" in r.stderr, "max-failures %r" % r.stderr)
            r = ctl.run("rollout", "start", "-p", "plug", "-v", V2, "--window", "0", ok=False)
            check(r.returncode == 2 and "--window" in r.stderr, "window 0 %r" % r.stderr)
            r = ctl.run("rollout", "start", "-p", "plug", "-v", V2, "--devices", "1,x", ok=False)
            check(r.returncode == 2 and "--devices" in r.stderr, "bad ids %r" % r.stderr)
            r = ctl.run("rollout", "show", "77", ok=False)
            check(r.returncode == 4, "unknown rollout %d %r" % (r.returncode, r.stderr))
            r = ctl.run("rollout", "list", "--key", "0" * 40, ok=False)
            check(r.returncode == 3, "wrong key %d %r" % (r.returncode, r.stderr))
            check(json.loads(ctl.run("rollout", "show", "1", "--json").stdout)["rollout"]["id"] == 1,
                  "show --json")
            d.stop()
            d.check_log()
        finally:
            if sim and sim.poll() is None:
                sim.kill()
                sim.communicate()
            finish(d)


if __name__ == "__main__":
    run_tests([test_rollout])
