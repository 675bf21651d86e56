#!/usr/bin/env bash
# The ingest workload of ../../shared/bench/peers.py, Pipe beside DuckDB on the same machine in
# the same run: 1M nested loan applications (JSON Lines) -> explode tradelines, pseudonymize
# two ids, derive utilization, keep balance >= 0, Parquet partitioned by event day.
#
#   bench/ingest.sh [ROWS]        (default 1000000; needs python3 with duckdb for the peer)
#
# Prints one line per run and the best of three for each engine. Pipe is built with
# `pipec build --release`; both engines use every core.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
PIPEC=target/release/pipec
"$PIPEC" build --release examples/partner_ingest/pipeline.pipe -o "$WORK/partner_ingest"
echo "input: $DATA ($(du -h "$DATA" | cut -f1), $ROWS applications), $(nproc) cores"
best() { sort -n | head -1; }
pipe_times=()
for i in 1 2 3; do
  rm -rf "$WORK/pipe_out" "$WORK/pipe_rejected"
  start=$(date +%s.%N)
  "$WORK/partner_ingest" --quiet --source "applications=$DATA" --sink "warehouse=$WORK/pipe_out" \
    --sink "rejected->files=$WORK/pipe_rejected"
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  rows=$(python3 -c "import json;print(json.load(open('$WORK/pipe_out/_pipe_summary.json'))['operators'][2]['written'])")
  echo "pipe   ingest rows_out=$rows seconds=$t"
  pipe_times+=("$t")
done
duck_times=()
for i in 1 2 3; do
  rm -rf "$WORK/duck_out"
  line=$(python3 "$SHARED/peers.py" duckdb ingest "$DATA" "$WORK/duck_out")
  echo "$line"
  duck_times+=("$(echo "$line" | sed 's/.*seconds=//')")
done
P=$(printf '%s\n' "${pipe_times[@]}" | best)
D=$(printf '%s\n' "${duck_times[@]}" | best)
echo "best: pipe ${P}s, duckdb ${D}s, pipe/duckdb throughput = $(echo "scale=2; $D / $P" | bc)x"
