#!/usr/bin/env bash
# The object store connector beside Polars (its own Rust object_store client), against one
# S3-protocol server (s3s-fs over a folder of this machine, on 127.0.0.1), in one run:
#   - write: ROWS loans from CSV to Parquet in S3, partitioned by grade
#     (bench/object_store/archive.pipe; Polars: read_csv + write_parquet(partition_by="grade"));
#   - read: the per-state monthly features of examples/object_store/features.pipe from that
#     Parquet archive (Polars: scan_parquet of the same objects, the same filter, groups,
#     aggregates and k >= 10, written as JSON).
# Pipe also writes and reads the same parts on the local disk: the difference is what the object
# store costs.
#
#   bench/object_store.sh [ROWS]     (default 1000000; needs s3s-fs and `pip install polars`)
#
# Pipe runs the binaries `pipec build` makes without flags (what `pipec run` uses). Prints every
# run, then medians and spreads of 3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
WORK=$(realpath -m "${PIPE_BENCH_DIR:-target/bench}/object_store_$ROWS")
mkdir -p "$WORK"
export PATH="$HOME/.cargo/bin:$PATH"

# ROWS loans: the 10,000 Lending Club loans repeated with fresh ids.
[ -f "$WORK/loans.csv" ] || python3 bench/make_loans.py "$ROWS" "$WORK/loans.csv"

PORT=59014
rm -rf "$WORK/s3" && mkdir -p "$WORK/s3/bench-archive"
s3s-fs --host 127.0.0.1 --port $PORT --access-key bench-access --secret-key bench-secret "$WORK/s3" >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
export AWS_ACCESS_KEY_ID=bench-access AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT PIPE_HMAC_KEY=bench-key-0123456789abcdef

cargo build -q -p pipe-compiler --bin pipec
target/debug/pipec build bench/object_store/archive.pipe -o "$WORK/archive" >/dev/null
target/debug/pipec build examples/object_store/features.pipe -o "$WORK/features" >/dev/null
echo "input: $ROWS loans ($(du -h "$WORK/loans.csv" | cut -f1) of CSV), $(nproc) cores, s3s-fs $(s3s-fs --version | cut -d' ' -f2), polars $(python3 -c 'import polars; print(polars.__version__)')"

polars() {
  python3 - "$1" "$WORK" <<'PY'
import sys, time, polars as pl
what, work = sys.argv[1], sys.argv[2]
opts = {"aws_access_key_id": "bench-access", "aws_secret_access_key": "bench-secret", "aws_region": "us-east-1",
        "aws_endpoint_url": "http://127.0.0.1:59014", "aws_allow_http": "true"}
start = time.perf_counter()
if what == "write":
    df = pl.read_csv(f"{work}/loans.csv")
    df.write_parquet("s3://bench-archive/polars/", partition_by="grade", storage_options=opts, compression="snappy")
    n = df.height
else:
    out = (pl.scan_parquet("s3://bench-archive/loans/**/*.parquet", storage_options=opts, hive_partitioning=False)
           .filter(pl.col("state").is_not_null())
           .group_by("state", "issued")
           .agg(pl.len().alias("loans"), pl.col("interest_rate").mean().alias("avg_rate"),
                pl.col("annual_income").fill_null(0.0).mean().alias("avg_income"))
           .filter(pl.col("loans") >= 10)
           .collect())
    out.write_ndjson(f"{work}/polars_features.jsonl")
    n = out.height
print(f"{n} {time.perf_counter() - start:.3f}")
PY
}

declare -A times
now() { date +%s.%N; }
for i in 1 2 3; do
  start=$(now)
  "$WORK/archive" --quiet --source "loans=$WORK/loans.csv" --sink "rejected->files=$WORK/rejected"
  t=$(echo "$(now) - $start" | bc)
  echo "pipe write: $(grep -c '"key"' "$WORK/s3/bench-archive/loans/_SUCCESS") parts, $(du -sh "$WORK/s3/bench-archive/loans" | cut -f1), seconds=$t"
  times[pipe_write]+="$t "
  rm -rf "$WORK/local"
  start=$(now)
  "$WORK/archive" --quiet --source "loans=$WORK/loans.csv" --sink "loans->s3=$WORK/local/loans" --sink "rejected->files=$WORK/rejected"
  t=$(echo "$(now) - $start" | bc)
  echo "pipe write to local files: $(du -sh "$WORK/local/loans" | cut -f1), seconds=$t"
  times[pipe_write_local]+="$t "
  read -r n t < <(polars write)
  echo "polars write: $n rows, $(du -sh "$WORK/s3/bench-archive/polars" | cut -f1), seconds=$t"
  times[polars_write]+="$t "

  rm -rf "$WORK/features_out"
  start=$(now)
  "$WORK/features" --quiet --source "loans=s3://bench-archive/loans/**/*.parquet" --sink "monthly->files=$WORK/features_out" --sink "rejected->files=$WORK/rejected2"
  t=$(echo "$(now) - $start" | bc)
  echo "pipe read: $(cat "$WORK"/features_out/*.jsonl | wc -l) feature rows, seconds=$t"
  times[pipe_read]+="$t "
  rm -rf "$WORK/features_out"
  start=$(now)
  "$WORK/features" --quiet --source "loans=$WORK/local/loans/**/*.parquet" --sink "monthly->files=$WORK/features_out" --sink "rejected->files=$WORK/rejected2"
  t=$(echo "$(now) - $start" | bc)
  echo "pipe read from local files: $(cat "$WORK"/features_out/*.jsonl | wc -l) feature rows, seconds=$t"
  times[pipe_read_local]+="$t "
  read -r n t < <(polars read)
  echo "polars read: $n feature rows, seconds=$t"
  times[polars_read]+="$t "
done
for k in pipe_write pipe_write_local polars_write pipe_read pipe_read_local polars_read; do
  sorted=$(echo "${times[$k]}" | tr ' ' '\n' | grep . | sort -n)
  med=$(echo "$sorted" | sed -n 2p)
  echo "$k: median ${med}s ($(echo "$ROWS / $med" | bc) rows/s), spread $(echo "$sorted" | head -1)–$(echo "$sorted" | tail -1)s"
done
