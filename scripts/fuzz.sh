#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (the `.pipe` parser and checker, the Thrift front end, the
# record decoders) with cargo fuzz, each for SECONDS (default 60), seeded from the case corpus
# and the examples' data. On the stable toolchain: RUSTC_BOOTSTRAP lets cargo fuzz pass the
# flags of libFuzzer's coverage instrumentation; no sanitizer (`-s none`: stable ships none, and
# the project has no unsafe code of its own to check). A crash fails the script and leaves its
# input in fuzz/artifacts/TARGET/; so does an input that takes more than 30 s (a hang).
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
export PATH="$HOME/.cargo/bin:$PATH" RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
seed() { # target, files...: copies each file into the target's corpus under a unique name
  local t=$1; shift
  mkdir -p "fuzz/corpus/$t"
  for f in "$@"; do cp "$f" "fuzz/corpus/$t/seed-$(echo "$f" | tr '/' '_')"; done
}
seed check $(find tests/cases examples lang-spec -name '*.pipe')
seed thrift $(find tests/cases examples -name '*.thrift')
# Records: a first byte picks the decoder (0 JSON, 1 CSV, 2 Parquet), then the record.
mkdir -p fuzz/corpus/records
n=0
while IFS= read -r line; do
  printf '\0%s' "$line" > "fuzz/corpus/records/json-$n"; n=$((n + 1))
done < <(head -q -n 20 tests/cases/codegen/features/events.jsonl examples/partner_ingest/data/applications.jsonl 2>/dev/null)
# Records in the fields of the target's JSON struct, for the fast path.
printf '\0{"id":"a","n":5,"at":1700000000000,"tags":[1.5,null,-2e3,0.1]}' > fuzz/corpus/records/json-fast-0
printf '\0 {"tags": [], "at": -12, "id": "caf\xc3\xa9", "x": {"y": [true, null]}} ' > fuzz/corpus/records/json-fast-1
printf '\001u1,5,1700000000,2023-11-14T22:20:00Z,2023-11-14,ann,"[""a""]"' > fuzz/corpus/records/csv-0
printf '\002' > fuzz/corpus/records/parquet-0 && cat tests/cases/codegen/parquet_crc/good.parquet >> fuzz/corpus/records/parquet-0
# The corrupt Parquet files earlier runs found (the decoder panicked or took minutes on them).
for f in tests/cases/codegen/parquet_crc/panics_the_decoder.parquet tests/cases/codegen/parquet_crc/slow/*.parquet; do
  { printf '\002'; cat "$f"; } > "fuzz/corpus/records/parquet-$(basename "$f" .parquet)"
done
cargo fuzz build -s none -O
for t in check thrift records; do
  echo "fuzz: $t for ${secs}s"
  log="fuzz/target/$t.log"
  if ! cargo fuzz run -s none -O "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 -timeout=30 \
    -print_final_stats=1 > "$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $t failed (the input is in fuzz/artifacts/$t/)"
    exit 1
  fi
  grep -E "stat::number_of_executed_units|^Done" "$log" || true
done
