#!/usr/bin/env bash
# The `daily` workload of ../../shared/bench/peers.py, Pipe (batch) beside DuckDB in the same
# run: 1M nested loan applications -> tradeline rows -> per member and day: distinct accounts,
# total balance, largest utilization -> Parquet.
#
#   bench/daily.sh [ROWS]        (default 1000000; needs python3 with duckdb for the peer)
#
# Prints one line per run and the best of three for each engine; both use every core.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
target/release/pipec build --release bench/daily/pipeline.pipe -o "$WORK/daily"
echo "input: $DATA ($(du -h "$DATA" | cut -f1), $ROWS applications), $(nproc) cores"
best() { sort -n | head -1; }
pipe_times=()
for i in 1 2 3; do
  rm -rf "$WORK/pipe_daily"
  start=$(date +%s.%N)
  "$WORK/daily" --quiet --source "applications=$DATA" --sink "daily=$WORK/pipe_daily" --sink "rejected->files=$WORK/daily_rejected"
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  rows=$(python3 -c "import json;s=json.load(open('$WORK/pipe_daily/_pipe_summary.json'));print([o for o in s['operators'] if o['name']=='daily'][0]['written'])")
  echo "pipe   daily rows_out=$rows seconds=$t"
  pipe_times+=("$t")
done
duck_times=()
for i in 1 2 3; do
  rm -rf "$WORK/duck_daily" "$WORK/duck_daily.parquet"
  line=$(python3 "$SHARED/peers.py" duckdb daily "$DATA" "$WORK/duck_daily")
  echo "$line"
  duck_times+=("$(echo "$line" | sed 's/.*seconds=//')")
done
P=$(printf '%s\n' "${pipe_times[@]}" | best)
D=$(printf '%s\n' "${duck_times[@]}" | best)
echo "best: pipe ${P}s, duckdb ${D}s, pipe/duckdb throughput = $(echo "scale=2; $D / $P" | bc)x"
