#!/usr/bin/env bash
# The ingest workload of ../../shared/bench/peers.py, Pipe beside DuckDB and Polars on the same
# machine in the same run: 1M nested loan applications (JSON Lines) -> explode tradelines,
# pseudonymize two ids, derive utilization, keep balance >= 0, Parquet partitioned by event day.
# Pipe's binary is what `pipec build` gives users (the default profile, as `pipec run` builds).
#
#   bench/ingest.sh [ROWS]        (default 1000000; needs python3 with duckdb and polars)
#
# Five runs of each engine, alternating; prints every run, then the medians with the spread
# (min-max) and peak memory. All use every core. Pipe's time is the whole process (start,
# planning, commit); the peers' is their own timer around the query (peers.py), without
# Python's start. Polars pseudonymizes with its built-in hash, not SHA-256 (peers.py).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
"$PIPEC" build examples/partner_ingest/pipeline.pipe -o "$WORK/partner_ingest" > /dev/null
echo "input: $DATA ($(du -h "$DATA" | cut -f1), $ROWS applications), $(nproc) cores"
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%s-%s", a[1], a[NR]}'; }
declare -A times mem
peer() { # ENGINE: one run of peers.py, its time and peak memory recorded
  rm -rf "$WORK/$1_out"
  line=$(/usr/bin/time -f '%M' -o "$WORK/$1_time" python3 "$SHARED/peers.py" "$1" ingest "$DATA" "$WORK/$1_out")
  m=$(cat "$WORK/$1_time")
  echo "$line peak_mb=$((m / 1024))"
  times[$1]+="$(echo "$line" | sed 's/.*seconds=//') "; mem[$1]+="$((m / 1024)) "
}
for i in 1 2 3 4 5; do
  rm -rf "$WORK/pipe_out" "$WORK/pipe_rejected"
  /usr/bin/time -f '%e %M' -o "$WORK/pipe_time" "$WORK/partner_ingest" --quiet --source "applications=$DATA" \
    --sink "warehouse=$WORK/pipe_out" --sink "rejected->files=$WORK/pipe_rejected"
  read -r t m < "$WORK/pipe_time"
  rows=$(python3 -c "import json;s=json.load(open('$WORK/pipe_out/_pipe_summary.json'));print([o for o in s['operators'] if o['name']=='warehouse'][0]['written'])")
  echo "pipe   ingest rows_out=$rows seconds=$t peak_mb=$((m / 1024))"
  times[pipe]+="$t "; mem[pipe]+="$((m / 1024)) "
  peer duckdb
  peer polars
done
# shellcheck disable=SC2086 # the lists are space-separated numbers
for e in pipe duckdb polars; do
  echo "median: $e $(median ${times[$e]})s ($(spread ${times[$e]})), $(median ${mem[$e]}) MB"
done
# shellcheck disable=SC2086
P=$(median ${times[pipe]}); D=$(median ${times[duckdb]}); L=$(median ${times[polars]})
echo "pipe/duckdb throughput = $(echo "scale=2; $D / $P" | bc)x, pipe/polars = $(echo "scale=2; $L / $P" | bc)x"
