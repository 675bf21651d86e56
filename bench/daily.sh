#!/usr/bin/env bash
# The `daily` workload of ../../shared/bench/peers.py, Pipe (batch) beside DuckDB in the same
# run: 1M nested loan applications -> tradeline rows -> per member and day: distinct accounts,
# total balance, largest utilization -> Parquet. Pipe's binary is what `pipec build` gives users
# (the default profile).
#
#   bench/daily.sh [ROWS]        (default 1000000; needs python3 with duckdb for the peer)
#
# Five runs of each engine, alternating; prints every run, then the medians with the spread
# (min-max) and peak memory. Both use every core.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
"$PIPEC" build bench/daily/pipeline.pipe -o "$WORK/daily" > /dev/null
echo "input: $DATA ($(du -h "$DATA" | cut -f1), $ROWS applications), $(nproc) cores"
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%s-%s", a[1], a[NR]}'; }
pipe_times=(); pipe_mem=(); duck_times=(); duck_mem=()
for i in 1 2 3 4 5; do
  rm -rf "$WORK/pipe_daily" "$WORK/daily_rejected"
  /usr/bin/time -f '%e %M' -o "$WORK/daily_time" "$WORK/daily" --quiet --source "applications=$DATA" \
    --sink "daily=$WORK/pipe_daily" --sink "rejected->files=$WORK/daily_rejected"
  read -r t m < "$WORK/daily_time"
  rows=$(python3 -c "import json;s=json.load(open('$WORK/pipe_daily/_pipe_summary.json'));print([o for o in s['operators'] if o['name']=='daily'][0]['written'])")
  echo "pipe   daily rows_out=$rows seconds=$t peak_mb=$((m / 1024))"
  pipe_times+=("$t"); pipe_mem+=("$((m / 1024))")
  rm -rf "$WORK/duck_daily" "$WORK/duck_daily.parquet"
  line=$(/usr/bin/time -f '%M' -o "$WORK/duck_time" python3 "$SHARED/peers.py" duckdb daily "$DATA" "$WORK/duck_daily")
  m=$(cat "$WORK/duck_time")
  echo "$line peak_mb=$((m / 1024))"
  duck_times+=("$(echo "$line" | sed 's/.*seconds=//')"); duck_mem+=("$((m / 1024))")
done
P=$(median "${pipe_times[@]}"); D=$(median "${duck_times[@]}")
echo "median: pipe ${P}s ($(spread "${pipe_times[@]}")), $(median "${pipe_mem[@]}") MB;" \
  "duckdb ${D}s ($(spread "${duck_times[@]}")), $(median "${duck_mem[@]}") MB;" \
  "pipe/duckdb throughput = $(echo "scale=2; $D / $P" | bc)x"
