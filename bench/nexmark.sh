#!/usr/bin/env bash
# Nexmark (issue 17): the stream-processing benchmark of Flink, Arroyo and RisingWave, on Pipe.
#
#   bench/nexmark.sh [EVENTS] [QUERIES]    (default 10000000 events; q0 q1 q2 q5 q7 q8)
#
# The events come from the `nexmark` crate's generator (bench/nexmark/gen, built here, outside
# the workspace) at the Flink suite's rate of 10 million events per second of event time, as
# JSON Lines, one directory per kind (person 2%, auction 6%, bid 92%), four files each. Each
# query (bench/nexmark/qN.pipe, Flink's SQL in our language) runs in `--mode stream`, following
# the files until idle for 0.3 s, at 1 and 2 workers, three runs each, writing its rows to
# standard output (into a file: Flink's runs write to a discarding sink).
#
# The figure beside Flink's is the nexmark project's own metric, events per second per core:
# the events the query reads divided by the CPU seconds (user + system) the run took — Flink's
# "Throughput/Cores" is events / (cores x seconds), cores measured from CPU use. Flink counts
# every generated event (its queries filter one stream of all three kinds); we count only the
# kinds a query reads, and our time includes parsing JSON (Flink's generator hands rows over in
# memory). After the runs, bench/nexmark/check.py recomputes each query with DuckDB from the
# same files and compares the rows (skipped, saying why, without python3's duckdb).
#
# Pipe runs the binary `pipec build` makes without flags, the build `pipec run` uses.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-10000000}
QUERIES=${2:-q0 q1 q2 q5 q7 q8}
WORK=${PIPE_BENCH_DIR:-target/bench}/nexmark
DATA="$WORK/events_$EVENTS"
IDLE_MS=300
mkdir -p "$WORK"
cargo build -q --release -p pipe-compiler --bin pipec
if [ ! -f "$DATA/counts" ]; then
  CARGO_TARGET_DIR="${PIPE_BENCH_DIR:-target/bench}/nexmark-gen" \
    cargo build -q --release --manifest-path bench/nexmark/gen/Cargo.toml
  rm -rf "$DATA"
  "${PIPE_BENCH_DIR:-target/bench}/nexmark-gen/release/nexmark-gen" "$EVENTS" "$DATA" 4 > "$DATA.counts"
  mv "$DATA.counts" "$DATA/counts"
fi
# persons=P auctions=A bids=B
eval "$(tr ' ' '\n' < "$DATA/counts")"
echo "input: $EVENTS events (persons=$persons auctions=$auctions bids=$bids, $(du -sh "$DATA" | cut -f1) of JSON), $(nproc) cores"
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)] " (" a[1] "–" a[NR] ")"}'; }

for q in $QUERIES; do
  target/release/pipec build "bench/nexmark/$q.pipe" -o "$WORK/$q" >/dev/null
  case $q in
    q8) read_events=$((persons + auctions)); sources=(--source "persons=$DATA/person/*.jsonl" --source "auctions=$DATA/auction/*.jsonl") ;;
    *) read_events=$bids; sources=(--source "bids=$DATA/bid/*.jsonl") ;;
  esac
  for workers in 1 2; do
    per_core="" per_worker=""
    for run in 1 2 3; do
      /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$WORK/$q" --mode stream --quiet --workers "$workers" \
        --exit-when-idle ${IDLE_MS}ms "${sources[@]}" --sink "rejected->files=$WORK/rejected_$q" > "$WORK/$q.out"
      read -r wall user sys kb < "$WORK/time"
      rows=$(wc -l < "$WORK/$q.out")
      cpu=$(echo "$user + $sys" | bc)
      core_rate=$(echo "$read_events / $cpu" | bc)
      worker_rate=$(echo "$read_events / ($wall - $IDLE_MS / 1000) / $workers" | bc)
      echo "$q, $workers worker(s), run $run: ${wall}s wall, ${cpu}s CPU, peak $((kb / 1024)) MB, $rows rows:" \
        "$core_rate events/s per core, $worker_rate events/s per worker"
      per_core+="$core_rate " per_worker+="$worker_rate "
    done
    echo "$q, $workers worker(s): median $(echo "$per_core" | median) events/s per core (CPU time)," \
      "$(echo "$per_worker" | median) events/s per worker (wall time)"
  done
done

if python3 -c "import duckdb" 2>/dev/null; then
  for q in $QUERIES; do
    python3 bench/nexmark/check.py "$q" "$DATA" "$WORK/$q.out"
  done
else
  echo "rows not checked: python3 has no duckdb (pip install duckdb)"
fi
