#!/usr/bin/env bash
# Kafka beside followed files, and the latency with a broker in the path.
#
# 1. Throughput: ROWS generated applications produced (keyed by member) to a 2-partition topic
#    of a tansu broker on 127.0.0.1; the `daily` pipeline (bench/kafka/pipeline.pipe, built as
#    `pipec build` builds it without flags) in `--mode stream` reads the topic until it has been
#    idle for 1 s (that second is subtracted); the same binary then follows the same records in
#    a file (`--source applications=GLOB`). RUNS runs of each, alternating; medians and spread.
# 2. Latency (measured first, on the empty broker): 5,000 events/s for 10 s produced to a topic read by bench/latency/kafka.pipe (a
#    `select` to standard output), each timed from its send to its output line
#    (tests/examples/kafka_latency.rs).
#
#   bench/kafka.sh [ROWS] [RUNS]       (default 200000 applications, 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${2:-3}
source bench/common.sh "${1:-200000}"
TANSU=${TANSU:-$(command -v tansu || echo "$HOME/.cargo/bin/tansu")}
[ -x "$TANSU" ] || { echo "no tansu broker: run scripts/services.sh --start first" >&2; exit 1; }
cargo build -q --release -p pipe-tests --example kafka_produce --example kafka_latency

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export KAFKA_BROKERS=127.0.0.1:$PORT
"$TANSU" broker --storage-engine memory://tansu/ --listener-url "tcp://$KAFKA_BROKERS" \
  --advertised-listener-url "tcp://$KAFKA_BROKERS" >"$WORK/tansu.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done
"$TANSU" topic create applications --broker "tcp://$KAFKA_BROKERS" --partitions 2
"$TANSU" topic create pings --broker "tcp://$KAFKA_BROKERS" --partitions 2
"$TANSU" topic create pings-bare --broker "tcp://$KAFKA_BROKERS" --partitions 2

# Latency first, while the broker holds little (tansu's in-memory storage answers more slowly
# the more it holds): a bare consumer (the broker's share), then the pipeline.
target/release/pipec build bench/latency/kafka.pipe -o "$WORK/kafka_latency"
echo -n "bare consumer: "
target/release/examples/kafka_latency "$KAFKA_BROKERS" pings-bare - 5000 10
echo -n "pipeline:      "
target/release/examples/kafka_latency "$KAFKA_BROKERS" pings "$WORK/kafka_latency" 5000 10

start=$(date +%s.%N)
target/release/examples/kafka_produce "$KAFKA_BROKERS" applications "$DATA"
echo "produced in $(echo "$(date +%s.%N) - $start" | bc) s"

target/release/pipec build bench/kafka/pipeline.pipe -o "$WORK/kafka_daily"
LIVE="$WORK/kafka_live"
rm -rf "$LIVE" && mkdir -p "$LIVE" && ln -s "$(realpath "$DATA")" "$LIVE/apps.jsonl"
CORES=$(nproc)

# One stream run until idle; prints its seconds (less the idle second) and the rows it read.
# The broker's CPU time so far, in seconds (user + system).
broker_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$BROKER/stat"; }

# One stream run until idle; prints its seconds (less the idle second), the applications it
# read and the broker's CPU seconds meanwhile.
run() {
  rm -rf "$WORK/kafka_state" "$WORK/kafka_out" "$WORK/kafka_rejected"
  local s e c0 c1
  c0=$(broker_cpu)
  s=$(date +%s.%N)
  "$WORK/kafka_daily" --mode stream --quiet --exit-when-idle 1s --checkpoint-interval 5s \
    --state-dir "$WORK/kafka_state" --sink "daily=$WORK/kafka_out" --sink "rejected->files=$WORK/kafka_rejected" "$@"
  e=$(date +%s.%N)
  c1=$(broker_cpu)
  local read
  read=$(python3 -c "import json;s=json.load(open('$WORK/kafka_out/_pipe_summary.json'));print({o['name']:o for o in s['operators']}['applications']['read'])")
  echo "$(echo "$e - $s - 1" | bc) $read $(echo "$c1 - $c0" | bc)"
}

kafka=() files=()
for i in $(seq 1 "$RUNS"); do
  read -r secs n cpu <<< "$(run)"
  [ "$n" = "$ROWS" ] || { echo "the Kafka run read $n of $ROWS applications" >&2; exit 1; }
  kafka+=("$secs")
  read -r secs n _ <<< "$(run --source "applications=$LIVE/*.jsonl")"
  [ "$n" = "$ROWS" ] || { echo "the file run read $n of $ROWS applications" >&2; exit 1; }
  files+=("$secs")
  echo "run $i: kafka ${kafka[-1]} s (the broker used $cpu s of CPU meanwhile), files ${files[-1]} s"
done
summary() {
  python3 - "$ROWS" "$CORES" "$@" <<'EOF'
import statistics, sys
rows, cores, secs = int(sys.argv[1]), int(sys.argv[2]), sorted(map(float, sys.argv[3:]))
m = statistics.median(secs)
print(f"{m:.2f} s ({secs[0]:.2f}-{secs[-1]:.2f}): {rows / m / cores:,.0f} applications/s/core")
EOF
}
echo "stream daily from Kafka ($ROWS applications, 2 partitions, $CORES cores): $(summary "${kafka[@]}")"
echo "stream daily following a file (same binary):                      $(summary "${files[@]}")"

