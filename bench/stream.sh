#!/usr/bin/env bash
# Streaming throughput and memory: the `daily` pipeline (bench/daily/pipeline.pipe) in
# `--mode stream`, following a directory that holds the 1M applications (100K members: 100K
# keys per day), until the input has been idle for 1 s. Reports events/s (applications and
# exploded tradeline rows) per core, and the resident memory sampled every 0.25 s.
#
#   bench/stream.sh [ROWS]       (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
target/release/pipec build --release bench/daily/pipeline.pipe -o "$WORK/daily"
LIVE="$WORK/stream_live"
rm -rf "$LIVE" "$WORK/stream_out" "$WORK/stream_rejected" "$WORK/stream_state"
mkdir -p "$LIVE"
ln -s "$(realpath "$DATA")" "$LIVE/apps.jsonl"
CORES=$(nproc)
start=$(date +%s.%N)
"$WORK/daily" --mode stream --quiet --exit-when-idle 1s --checkpoint-interval 5s \
  --state-dir "$WORK/stream_state" --source "applications=$LIVE/*.jsonl" --sink "daily=$WORK/stream_out" --sink "rejected->files=$WORK/stream_rejected" &
PID=$!
samples=()
while kill -0 $PID 2>/dev/null; do
  rss=$(awk '/VmRSS/ {print $2}' /proc/$PID/status 2>/dev/null || true)
  [ -n "$rss" ] && samples+=("$rss")
  sleep 0.25
done
wait $PID
end=$(date +%s.%N)
secs=$(echo "$end - $start - 1" | bc)
rows=$(python3 -c "import json;s=json.load(open('$WORK/stream_out/_pipe_summary.json'));ops={o['name']:o for o in s['operators']};print(ops['applications']['read'], ops['member_daily']['read'], ops['daily']['written'])")
read -r apps tradelines out <<< "$rows"
echo "stream daily: $apps applications ($tradelines tradeline rows) -> $out rows in ${secs}s on $CORES cores"
echo "throughput: $(echo "$apps / $secs / $CORES" | bc) applications/s/core, $(echo "$tradelines / $secs / $CORES" | bc) tradeline events/s/core"
n=${#samples[@]}
echo "resident memory (MB) at 25/50/75/100% of the run: $(for q in 1 2 3 4; do i=$(( (n * q) / 4 - 1 )); [ $i -lt 0 ] && i=0; echo -n "$(( ${samples[$i]} / 1024 )) "; done)(peak $(( $(printf '%s\n' "${samples[@]}" | sort -n | tail -1) / 1024 )))"
