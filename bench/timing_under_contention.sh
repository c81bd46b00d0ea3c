#!/usr/bin/env bash
# The timing tests (pytest -m timing) N times in a row while a CPU-burning process, bounded in time, holds one core.
# Prints one line per run and a tally; record the result in bench/RESULTS.md ("Timing tests under CPU contention").
# Usage: bash bench/timing_under_contention.sh [RUNS=5]
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-5}
PY=${PY:-.venv/bin/python}
# the burner: one busy Python loop pinned to core 0, stopped by timeout after 30 min at the latest
timeout 1800 taskset -c 0 "$PY" -c "while True: pass" &
BURNER=$!
trap 'kill $BURNER 2>/dev/null' EXIT
passed=0
for i in $(seq 1 "$RUNS"); do
  start=$(date +%s)
  if out=$(timeout 900 "$PY" -m pytest -q -p no:cacheprovider -m timing 2>&1); then
    passed=$((passed + 1)); verdict=pass
  else
    verdict=FAIL
  fi
  echo "run $i: $verdict in $(( $(date +%s) - start )) s: $(echo "$out" | grep -E '^[0-9]+ (passed|failed)|^FAILED' | tr '\n' ' ')"
done
echo "$passed of $RUNS runs passed with a CPU burner on core 0 (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
[ "$passed" -eq "$RUNS" ]
