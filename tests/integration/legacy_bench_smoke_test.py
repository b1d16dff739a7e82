"""legacy_bench_smoke_test.py - bench/legacy.py still runs (tiny sizes, a fraction of a second);
the real benchmark is run by hand, see docs/legacy.md."""
import os
import subprocess
import sys

SRC = os.environ.get("FOTA_SRC_DIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "..", "..")
r = subprocess.run([sys.executable, os.path.join(SRC, "bench", "legacy.py"), "--smoke"],
                   capture_output=True, text=True, timeout=60)
sys.stdout.write(r.stdout)
sys.stderr.write(r.stderr)
if r.returncode != 0 or "ok=4" not in r.stdout or "ok=2" not in r.stdout:
    print("FAIL: bench smoke run, status %d" % r.returncode, file=sys.stderr)
    sys.exit(1)
print("ok")
