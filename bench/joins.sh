#!/usr/bin/env bash
# Joins and rolling windows in stream mode (issue 15): the interval join's throughput per core,
# and the rolling window's resident memory as the input grows.
#
#   bench/joins.sh [N]     (default 1000000 events per stream; needs python3 for the input)
#
# 1. `interval.pipe`: N views joined with N purchases of their key in the 10 minutes before
#    (10,000 keys over one day), `--mode stream` following the files until idle for 0.3 s,
#    at 1 and 2 workers, three runs each: events (both streams) per second per worker.
# 2. `rolling.pipe`: each of N/4, N/2 and N views with its key's views of the hour before, in
#    stream mode and as a batch backfill: peak resident memory (/usr/bin/time) and time.
# Pipe runs the binary `pipec build` makes without flags, the build `pipec run` uses.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
WORK=${PIPE_BENCH_DIR:-target/bench}/joins
mkdir -p "$WORK"
# PIPEC=path uses a pipec already built (the pipelines it builds do not depend on its profile).
if [ -z "${PIPEC:-}" ]; then
  cargo build -q --release -p pipe-compiler --bin pipec
  PIPEC=target/release/pipec
fi
"$PIPEC" build bench/joins/interval.pipe -o "$WORK/interval" >/dev/null
"$PIPEC" build bench/joins/rolling.pipe -o "$WORK/rolling" >/dev/null
IDLE_MS=300
IDLE=0.3
# The input at each size, each stream in its own directory for `follow`.
input() {
  local dir="$WORK/in_$1"
  if [ ! -f "$dir/views/views.jsonl" ]; then
    mkdir -p "$dir/views" "$dir/buys"
    python3 bench/joins/gen.py "$1" "$dir"
    mv "$dir/views.jsonl" "$dir/views/" && mv "$dir/buys.jsonl" "$dir/buys/"
  fi
  echo "$dir"
}
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] " (" a[1] "–" a[NR] ")"}'; }

dir=$(input "$N")
echo "interval join, stream mode: $N views + $N purchases, $(nproc) cores"
for workers in 1 2; do
  rates=""
  for run in 1 2 3; do
    rm -rf "$WORK/out_interval"
    start=$(date +%s.%N)
    "$WORK/interval" --mode stream --quiet --workers "$workers" --exit-when-idle ${IDLE_MS}ms \
      --source "views=$dir/views/*.jsonl" --source "buys=$dir/buys/*.jsonl" \
      --sink "attributed->files=$WORK/out_interval" --sink "rejected=$WORK/out_rejected"
    end=$(date +%s.%N)
    secs=$(echo "$end - $start - $IDLE" | bc)
    rows=$(cat "$WORK"/out_interval/*.jsonl | wc -l)
    rate=$(echo "2 * $N / $secs / $workers" | bc)
    echo "  $workers worker(s), run $run: ${secs}s, $rows rows, $rate events/s per worker"
    rates+="$rate "
  done
  echo "  $workers worker(s): median $(echo "$rates" | median) events/s per worker"
done

echo "rolling window (1h), peak resident memory by input size"
for n in $((N / 4)) $((N / 2)) "$N"; do
  d=$(input "$n")
  for mode in stream batch; do
    rm -rf "$WORK/out_rolling"
    src="views=$d/views/*.jsonl"
    args=(--quiet --workers 2 --source "$src" --sink "recent->files=$WORK/out_rolling" --sink "rejected=$WORK/out_rejected")
    [ "$mode" = stream ] && args+=(--mode stream --exit-when-idle ${IDLE_MS}ms)
    /usr/bin/time -f "%M %e" -o "$WORK/time" "$WORK/rolling" "${args[@]}"
    read -r kb secs < "$WORK/time"
    echo "  $n events, $mode: peak $((kb / 1024)) MB, ${secs}s, $(cat "$WORK"/out_rolling/*.jsonl | wc -l) rows"
  done
done
