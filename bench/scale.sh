#!/usr/bin/env bash
# Scaling of the execution core on one machine: the `daily` workload (bench/daily/pipeline.pipe,
# batch) on 1 and 2 workers in one process, and as a cluster of 2 processes of 1 worker on
# loopback; plus the bytes the 2-process cluster moves over loopback per exchanged row (every
# tradeline row goes to the worker that owns its member: half of them to the other process).
# The binary is what `pipec build` gives users. Five runs of each; medians and spread.
#
#   bench/scale.sh [ROWS]        (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
target/release/pipec build bench/daily/pipeline.pipe -o "$WORK/daily_scale" > /dev/null  # the default profile: what `pipec run` gives
BIN="$WORK/daily_scale"
echo "input: $DATA ($(du -h "$DATA" | cut -f1), $ROWS applications), $(nproc) cores"
HOSTS="$WORK/hosts"
printf '127.0.0.1:4711\n127.0.0.1:4712\n' > "$HOSTS"
lo_bytes() { awk '/^ *lo:/ {print $2}' /proc/net/dev; }
now() { date +%s.%N; }
stats() { # name, then times: median and spread (min-max)
  local name=$1; shift
  printf '%s\n' "$@" | sort -n | awk -v n="$name" '{a[NR]=$1} END {printf "%-28s median %.2fs  (min %.2fs, max %.2fs, %d runs)\n", n, a[int((NR+1)/2)], a[1], a[NR], NR}'
}
one=(); two=(); cluster=(); bytes=()
for i in 1 2 3 4 5; do
  for w in 1 2; do
    rm -rf "$WORK/scale_out"
    s=$(now); "$BIN" --quiet --workers $w --source "applications=$DATA" --sink "daily=$WORK/scale_out" --sink "rejected->files=$WORK/scale_rejected"; e=$(now)
    t=$(echo "$e - $s" | bc)
    if [ $w = 1 ]; then one+=("$t"); else two+=("$t"); fi
  done
  rm -rf "$WORK/scale_out"
  b0=$(lo_bytes)
  s=$(now)
  "$BIN" --quiet --workers 1 --processes 2 --process 1 --hosts "$HOSTS" --source "applications=$DATA" --sink "daily=$WORK/scale_out" --sink "rejected->files=$WORK/scale_rejected" > /dev/null 2>&1 &
  "$BIN" --quiet --workers 1 --processes 2 --process 0 --hosts "$HOSTS" --source "applications=$DATA" --sink "daily=$WORK/scale_out" --sink "rejected->files=$WORK/scale_rejected" > /dev/null 2>&1
  wait
  e=$(now)
  b1=$(lo_bytes)
  cluster+=("$(echo "$e - $s" | bc)")
  bytes+=("$((b1 - b0))")
done
rows=$(python3 -c "import json;s=json.load(open('$WORK/scale_out/_pipe_summary.json'));print([o for o in s['operators'] if o['kind']=='aggregate'][0]['read'])")
stats "1 process, 1 worker" "${one[@]}"
stats "1 process, 2 workers" "${two[@]}"
stats "2 processes x 1 worker" "${cluster[@]}"
b=$(printf '%s\n' "${bytes[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "rows into the aggregate: $rows; loopback bytes per run (median): $b; bytes per row crossing processes: $(echo "scale=1; $b / ($rows / 2)" | bc)"
