"""legacy_bench_smoke_test.py - bench/legacy.py still runs (tiny sizes, a fraction of a second)
and every download of its three runs (stream, paced, HTTP ROM) ends with the right bytes; the
real benchmark is run by hand, see docs/legacy.md."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fotatest import SRC_DIR, check, run, run_tests  # noqa: E402


def test_bench_smoke():
    p = run([sys.executable, os.path.join(SRC_DIR, "bench", "legacy.py"), "--smoke"],
            timeout=60, text=True)
    sys.stdout.write(p.stdout)
    runs = re.findall(r"^(\S.*?)\s+n=(\d+)\s+ok=(\d+)", p.stdout, re.M)
    check(p.returncode == 0, "bench smoke run: exit status %d\n%s" % (p.returncode, p.stderr))
    check([r[0].split()[0] for r in runs] == ["stream", "paced", "http"],
          "want the stream, paced and http runs, got %r" % runs)
    check(all(n == ok and int(n) > 0 for _, n, ok in runs), "failed downloads: %r" % runs)


if __name__ == "__main__":
    run_tests([test_bench_smoke])
