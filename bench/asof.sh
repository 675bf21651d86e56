#!/usr/bin/env bash
# The as-of join of issue 15: LEFT label rows joined with RIGHT score versions (each row gets
# its member's latest score at or before its time), Pipe beside DuckDB's ASOF JOIN and Polars'
# join_asof in one run, on the same CSV files, each writing Parquet.
#
#   bench/asof.sh [LEFT] [RIGHT]     (default 1000000 each; needs python3 with duckdb, polars)
#
# Pipe runs the binary `pipec build` makes without flags, the build `pipec run` uses. Prints
# every run, then per engine the median and the spread of five, and checks all three wrote the
# same rows (count, scored rows, sum of scores).
set -euo pipefail
cd "$(dirname "$0")/.."
LEFT=${1:-1000000}
RIGHT=${2:-1000000}
WORK=${PIPE_BENCH_DIR:-target/bench}/asof_${LEFT}_${RIGHT}
mkdir -p "$WORK"
[ -f "$WORK/right.csv" ] || python3 bench/asof/gen.py "$LEFT" "$RIGHT" "$WORK"
cargo build -q --release -p pipe-compiler --bin pipec
target/release/pipec build bench/asof/pipeline.pipe -o "$WORK/asof" >/dev/null
echo "input: $LEFT labels, $RIGHT score versions ($(du -ch "$WORK"/*.csv | tail -1 | cut -f1) of CSV), $(nproc) cores"
declare -A times
summary() { # rows, scored rows and sum of scores of a Parquet file
  python3 -c "import duckdb,sys;print('rows=%s scored=%s sum=%s' % duckdb.connect().execute(\"SELECT count(*), count(score), sum(score) FROM read_parquet('$1')\").fetchone())"
}
for i in 1 2 3 4 5; do
  rm -rf "$WORK/pipe_out"
  start=$(date +%s.%N)
  "$WORK/asof" --quiet --source "labels=$WORK/left.csv" --source "scores=$WORK/right.csv" \
    --sink "training->files=$WORK/pipe_out" --sink "rejected=$WORK/pipe_rejected"
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc)
  echo "pipe $(summary "$WORK/pipe_out/*.parquet") seconds=$t"
  times[pipe]+="$t "
  for engine in duckdb polars; do
    line=$(python3 bench/asof/peers.py "$engine" "$WORK" "$WORK/$engine.parquet")
    echo "$line"
    times[$engine]+="$(echo "$line" | sed 's/.*seconds=//') "
  done
done
for engine in pipe duckdb polars; do
  sorted=$(echo "${times[$engine]}" | tr ' ' '\n' | grep . | sort -n)
  echo "$engine: median $(echo "$sorted" | sed -n 3p)s, spread $(echo "$sorted" | head -1)–$(echo "$sorted" | tail -1)s"
done
