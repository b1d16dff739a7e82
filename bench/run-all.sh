#!/usr/bin/env bash
# bench/run-all.sh - runs every benchmark at full size, one after the other. The run writes
# one result file, bench/results/DATE-TIME-COMMIT.md (each benchmark's summary and raw
# output); when every benchmark succeeded it also becomes the "Latest full run" section of
# docs/benchmarks.md (the goals table above it is written by hand). `make bench` builds
# build/ (gcc -O2) and installs nginx and wrk (scripts/deps.sh --bench) first. Each script
# raises its own fd and port limits and says so; everything runs on loopback, bounded in time.
#   bench/run-all.sh [--smoke] [--bin-dir DIR]   (--smoke: tiny sizes, nothing written)
# A new benchmark joins by adding a line to BENCHES.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
args=("$@")
BENCHES=(
  "downloads.py"     # 1: ROM downloads vs nginx (wrk, 100 and 1,000 connections)
  "checkins.py"      # 5: device check-ins (fota-pingload), pings/s, fsyncs
  "devices.py"       # 2: 19,000 idle fota-sim devices held 5 min, RSS per device, CPU per ping
  "fanout.py"        # 3: bulk upgrade pushed to 19,000 online devices, delivered/acked times
  "wave.py"          # 4: 10,000 devices upgraded end to end (512 KiB), vs the transfer bound
  "arduino.py"       # 6: Arduino-core check-ins (304) and downloads vs nginx; upload stall
  "pullwave.py"      # 7: rollouts of 1,000 arduino sketches and 200 Tasmota devices over MQTT
  "scaleout.py"      # 8: instances on one PostgreSQL: pings/s summed, 100,000 devices on 6
)
smoke=0
for a in "${args[@]}"; do [ "$a" = --smoke ] && smoke=1; done
if [ $smoke -eq 0 ]; then
  FOTA_BENCH_RUN=$(python3 "$here/benchlib.py" new-run) || exit 1
  export FOTA_BENCH_RUN
  echo "=== results: $FOTA_BENCH_RUN"
fi
fail=0
for b in "${BENCHES[@]}"; do
  echo "=== bench/$b ${args[*]:-}"
  if ! python3 "$here/$b" "${args[@]}"; then
    echo "=== bench/$b FAILED"
    fail=1
  fi
done
if [ $smoke -eq 0 ] && [ $fail -eq 0 ]; then
  python3 "$here/benchlib.py" latest "$FOTA_BENCH_RUN" || fail=1
  echo "=== docs/benchmarks.md: latest full run is $FOTA_BENCH_RUN"
fi
exit $fail
