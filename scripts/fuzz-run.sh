#!/usr/bin/env bash
# fuzz-run.sh: the libFuzzer campaign behind `make fuzz-run`. Builds the fuzz
# tree (build/fuzz, preset fuzz), runs every target of tests/fuzz/ (or those
# named in FUZZ_TARGETS) for FUZZ_RUNS executions each, or FUZZ_TIME seconds
# each when set, FUZZ_JOBS targets at a time under nice, and writes one row
# per target (commit, executions, exec/s, coverage, corpus, findings) to a
# results file. New inputs go to a work corpus, build/fuzz/work/TARGET/corpus,
# which the next campaign starts from; the committed seeds (tests/fuzz/corpus)
# are only read. A finding is saved as build/fuzz/work/TARGET/crash-* (or
# leak-, timeout-, oom-) and counted; the script exits 1 when there is one.
#
#   FUZZ_RUNS=10000000 FUZZ_TIME= FUZZ_JOBS=<cores> FUZZ_TARGETS="http_route config"
#   FUZZ_NICE=10 FUZZ_MAX_LEN= (libFuzzer's default) FUZZ_BUILD=1 (0: use the tree as built)
#   FUZZ_WORK=build/fuzz/work FUZZ_RESULTS=build/fuzz/results (kept across checkouts if given)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$top/build/fuzz
runs=${FUZZ_RUNS:-10000000}
secs=${FUZZ_TIME:-}
jobs=${FUZZ_JOBS:-$(nproc)}
niceness=${FUZZ_NICE:-10}
max_len=${FUZZ_MAX_LEN:-}
work=${FUZZ_WORK:-$build/work}
results=${FUZZ_RESULTS:-$build/results}

targets=()
if [ -n "${FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$FUZZ_TARGETS"
else
  for f in "$top"/tests/fuzz/*_fuzz.c; do
    b=$(basename "$f" _fuzz.c)
    targets+=("$b")
  done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz-run: no targets" >&2; exit 2; }
for t in "${targets[@]}"; do
  [ -f "$top/tests/fuzz/${t}_fuzz.c" ] || { echo "fuzz-run: no target $t" >&2; exit 2; }
done

# Inputs libFuzzer saved as findings in a target's directory.
artifacts() {
  find "$1" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
       -o -name 'oom-*' \) | wc -l
}

# One target (`fuzz-run.sh --one TARGET`, run by xargs below): its log, then
# its result row (tab-separated) on stdout.
run_one() {
  local t=$1 bin=$build/fuzz/${1}_fuzz dir=$work/$1
  local seeds=$top/tests/fuzz/corpus/$1 dict=$top/tests/fuzz/$1.dict
  local args=(-print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$dir/")
  mkdir -p "$dir/corpus"
  [ -f "$dict" ] && args+=(-dict="$dict")
  [ -n "$max_len" ] && args+=(-max_len="$max_len")
  if [ -n "$secs" ]; then args+=(-max_total_time="$secs"); else args+=(-runs="$runs"); fi
  local before after start end rc=0
  before=$(artifacts "$dir")
  start=$(date +%s)
  nice -n "$niceness" "$bin" "${args[@]}" "$dir/corpus" "$seeds" >"$dir/log" 2>&1 || rc=$?
  end=$(date +%s)
  after=$(artifacts "$dir")
  local execs eps rss cov ft corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | tail -1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$dir/log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$dir/log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$dir/log" | tail -1 | cut -d' ' -f2)
  corp=$(find "$dir/corpus" -type f | wc -l)
  local findings=$((after - before))
  # A run that stopped without saving an input (a set-up failure) counts too.
  [ "$rc" -ne 0 ] && [ "$findings" -eq 0 ] && findings=1
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$FUZZ_COMMIT" "${execs:-0}" \
    "${eps:-0}" "${cov:-0}" "${ft:-0}" "$corp" "$findings" "$((end - start))" "${rss:-0}" "$rc"
}

if [ "${1:-}" = --one ]; then
  run_one "$2"
  exit 0
fi

if [ "${FUZZ_BUILD:-1}" != 0 ]; then
  cmake --preset fuzz >/dev/null
  bins=()
  for t in "${targets[@]}"; do bins+=("${t}_fuzz"); done
  nice -n "$niceness" cmake --build --preset fuzz --target "${bins[@]}"
fi

FUZZ_COMMIT=$(git -C "$top" rev-parse --short=12 HEAD)
git -C "$top" diff --quiet HEAD -- 2>/dev/null || FUZZ_COMMIT="$FUZZ_COMMIT+dirty"
export FUZZ_COMMIT
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$results"
out=$results/fuzz-$stamp.tsv
limit=$([ -n "$secs" ] && echo "time=${secs}s" || echo "runs=$runs")
echo "fuzz-run: ${#targets[@]} targets, $limit each, $jobs at a time (nice $niceness)," \
     "commit $FUZZ_COMMIT"

printf 'target\tcommit\texecutions\texec_per_s\tcov\tft\tcorpus\tfindings\tseconds\tpeak_rss_mb\texit\n' >"$out"
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} "$0" --one {} >>"$out"

# The table, in target order, and the verdict.
status=0
printf '\n| target | commit | executions | exec/s | cov | corpus | findings |\n|---|---|---:|---:|---:|---:|---:|\n'
for t in "${targets[@]}"; do
  awk -F'\t' -v t="$t" '$1 == t { printf "| %s | %s | %d | %d | %d | %d | %d |\n", $1, $2, $3, $4, $5, $7, $8 }' "$out"
  f=$(awk -F'\t' -v t="$t" '$1 == t { print $8 }' "$out")
  if [ "${f:-1}" != 0 ]; then
    status=1
    echo "fuzz-run: $t: finding(s) in $work/$t (log: $work/$t/log)" >&2
  fi
done
cp "$out" "$results/latest.tsv"
echo "fuzz-run: results in $out"
exit "$status"
