#!/usr/bin/env bash
# What checking a source's whole contract costs: the ingest workload (examples/partner_ingest)
# as written (`validate = all`, the default: every field of LoanApplication is checked, read or
# not) beside the same program with `validate = read` (only the fields it reads). Both built as
# `pipec build` gives users; five runs of each, alternating; medians and spread.
#
#   bench/validate.sh [ROWS]        (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
mkdir -p "$WORK/validate_read"
cp -r examples/partner_ingest/schemas "$WORK/validate_read/"
sed 's/^  watermark  = 5m$/  watermark  = 5m\n  validate   = read/' examples/partner_ingest/pipeline.pipe > "$WORK/validate_read/pipeline.pipe"
grep -q "validate   = read" "$WORK/validate_read/pipeline.pipe"
target/release/pipec build examples/partner_ingest/pipeline.pipe -o "$WORK/ingest_all" > /dev/null
target/release/pipec build "$WORK/validate_read/pipeline.pipe" -o "$WORK/ingest_read" > /dev/null
echo "input: $DATA ($(du -h "$DATA" | cut -f1), $ROWS applications), $(nproc) cores"
now() { date +%s.%N; }
stats() { # name, then times: median and spread (min-max)
  local name=$1; shift
  printf '%s\n' "$@" | sort -n | awk -v n="$name" '{a[NR]=$1} END {printf "%-24s median %.2fs  (min %.2fs, max %.2fs, %d runs)\n", n, a[int((NR+1)/2)], a[1], a[NR], NR}'
}
all=(); read=()
for i in 1 2 3 4 5; do
  for v in all read; do
    rm -rf "$WORK/validate_out" "$WORK/validate_rejected"
    s=$(now)
    "$WORK/ingest_$v" --quiet --source "applications=$DATA" --sink "warehouse=$WORK/validate_out" \
      --sink "rejected->files=$WORK/validate_rejected"
    e=$(now)
    t=$(echo "$e - $s" | bc)
    if [ $v = all ]; then all+=("$t"); else read+=("$t"); fi
    if [ $i = 1 ]; then
      python3 -c "import json;s=json.load(open('$WORK/validate_out/_pipe_summary.json'));print('validate = $v:', {o['name']: (o['read'], o['rejected']) for o in s['operators'] if o['name'] == 'applications'})"
    fi
  done
done
stats "validate = all" "${all[@]}"
stats "validate = read" "${read[@]}"
