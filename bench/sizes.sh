#!/usr/bin/env bash
# How the cost grows with the work: the ingest pipeline (examples/partner_ingest) and the daily
# pipeline (bench/daily) as a batch run, and the daily pipeline as a stream (following a
# directory that holds the input, until it has been idle for 1 s, that second subtracted), over
# 0.25M, 0.5M, 1M and 2M generated applications. Each binary is what `pipec build` gives users
# (the default profile). For every size and run: wall time and peak resident memory (GNU time's
# maximum RSS); three runs of each, medians and the spread.
#
#   bench/sizes.sh [SIZES...]      (default 250000 500000 1000000 2000000)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(250000 500000 1000000 2000000)
source bench/common.sh "${SIZES[0]}"
for n in "${SIZES[@]}"; do
  [ -f "$WORK/apps_$n.jsonl" ] || python3 "$SHARED/gen_applications.py" --rows "$n" --out "$WORK/apps_$n.jsonl"
done
"$PIPEC" build examples/partner_ingest/pipeline.pipe -o "$WORK/sizes_ingest" > /dev/null
"$PIPEC" build bench/daily/pipeline.pipe -o "$WORK/sizes_daily" > /dev/null
echo "$(nproc) cores; three runs of each; seconds and peak resident MB"
# Runs a command under GNU time; prints "seconds peak_kb".
timed() {
  /usr/bin/time -f '%e %M' -o "$WORK/sizes_time" "$@" > /dev/null 2>&1
  cat "$WORK/sizes_time"
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
spread() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%s-%s", a[1], a[NR]}'; }
printf '%-12s | %-22s | %-22s | %-22s | %-9s | %-9s | %s\n' applications "ingest s (spread)" "daily batch s (spread)" \
  "daily stream s (spread)" "batch MB" "stream MB" "batch/stream memory"
for n in "${SIZES[@]}"; do
  data="$WORK/apps_$n.jsonl"
  live="$WORK/sizes_live_$n"
  rm -rf "$live" && mkdir -p "$live" && ln -s "$(realpath "$data")" "$live/apps.jsonl"
  ing=(); bat=(); str=(); bmem=(); smem=()
  for i in 1 2 3; do
    rm -rf "$WORK/sizes_out" "$WORK/sizes_rej"
    read -r t m < <(timed "$WORK/sizes_ingest" --quiet --source "applications=$data" --sink "warehouse=$WORK/sizes_out" \
      --sink "rejected->files=$WORK/sizes_rej")
    ing+=("$t")
    rm -rf "$WORK/sizes_out" "$WORK/sizes_rej"
    read -r t m < <(timed "$WORK/sizes_daily" --quiet --source "applications=$data" --sink "daily=$WORK/sizes_out" \
      --sink "rejected->files=$WORK/sizes_rej")
    bat+=("$t"); bmem+=("$((m / 1024))")
    batch_rows=$(python3 -c "import json;s=json.load(open('$WORK/sizes_out/_pipe_summary.json'));print([o for o in s['operators'] if o['name']=='daily'][0]['written'])")
    rm -rf "$WORK/sizes_out" "$WORK/sizes_rej" "$WORK/sizes_state"
    read -r t m < <(timed "$WORK/sizes_daily" --mode stream --quiet --exit-when-idle 1s --checkpoint-interval 5s \
      --state-dir "$WORK/sizes_state" --source "applications=$live/*.jsonl" --sink "daily=$WORK/sizes_out" \
      --sink "rejected->files=$WORK/sizes_rej")
    str+=("$(awk -v t="$t" 'BEGIN {printf "%.2f", t - 1}')"); smem+=("$((m / 1024))")
    stream_rows=$(python3 -c "import json;s=json.load(open('$WORK/sizes_out/_pipe_summary.json'));print([o for o in s['operators'] if o['name']=='daily'][0]['written'])")
    [ "$batch_rows" = "$stream_rows" ] || echo "warning: $n applications: batch wrote $batch_rows rows, stream $stream_rows"
  done
  bm=$(median "${bmem[@]}"); sm=$(median "${smem[@]}")
  printf '%-12s | %-22s | %-22s | %-22s | %-9s | %-9s | %s\n' "$n" "$(median "${ing[@]}") ($(spread "${ing[@]}"))" \
    "$(median "${bat[@]}") ($(spread "${bat[@]}"))" "$(median "${str[@]}") ($(spread "${str[@]}"))" \
    "$bm" "$sm" "$(echo "scale=2; $bm / $sm" | bc)"
  rm -rf "$live"
done
