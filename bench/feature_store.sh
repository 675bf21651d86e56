#!/usr/bin/env bash
# The PostgreSQL and Redis connectors beside their physical limits, on one machine in one run:
#   - PostgreSQL sink (examples/feature_store/load.pipe: CSV → table `loans`, staged with binary
#     COPY by every worker and published in one transaction) beside `psql \copy` of the same CSV
#     into an empty table of the same columns;
#   - PostgreSQL source (a pipeline reading the table in page ranges and writing the row count)
#     beside `COPY loans TO STDOUT (FORMAT binary)` into a file;
#   - Redis sink (bench/feature_store/redis_rows.pipe: one versioned hash per loan through the
#     Lua script) beside `redis-benchmark` pipelining plain `HSET`s of the same width.
#
#   bench/feature_store.sh [ROWS]     (default 1000000; needs postgresql and redis-server)
#
# Pipe runs the binaries `pipec build` makes without flags (what `pipec run` uses). Servers are
# started on 127.0.0.1 in throwaway directories. Prints every run, then medians and spreads of 3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
WORK=$(realpath -m "${PIPE_BENCH_DIR:-target/bench}/feature_store_$ROWS")
mkdir -p "$WORK"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# ROWS loans: the 10,000 Lending Club loans repeated with fresh ids.
[ -f "$WORK/loans.csv" ] || python3 bench/make_loans.py "$ROWS" "$WORK/loans.csv"

PG=$WORK/pg
PORT=55432
REDIS_PORT=56379
if [ ! -d "$PG/data" ]; then
  mkdir -p "$PG" && [ "$(id -u)" != 0 ] || chown postgres "$PG"
  as_pg "$PGBIN/initdb" -D "$PG/data" -U postgres --auth=trust >/dev/null
fi
as_pg "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/log" -o "-p $PORT -k $PG -c listen_addresses=127.0.0.1" -w start >/dev/null
redis-server --port $REDIS_PORT --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
trap 'as_pg "$PGBIN/pg_ctl" -D "$PG/data" -m fast stop >/dev/null; redis-cli -p $REDIS_PORT shutdown nosave >/dev/null 2>&1 || true' EXIT
export DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/postgres" REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
psql() { "$PGBIN/psql" -q -h 127.0.0.1 -p $PORT -U postgres -v ON_ERROR_STOP=1 "$@"; }

cargo build -q -p pipe-compiler --bin pipec
target/debug/pipec build examples/feature_store/load.pipe -o "$WORK/load" >/dev/null
target/debug/pipec build bench/feature_store/count.pipe -o "$WORK/count" >/dev/null
target/debug/pipec build bench/feature_store/redis_rows.pipe -o "$WORK/redis_rows" >/dev/null
echo "input: $ROWS loans ($(du -h "$WORK/loans.csv" | cut -f1) of CSV), $(nproc) cores, $("$PGBIN/postgres" --version), $(redis-server --version | cut -d' ' -f3)"

declare -A times
now() { date +%s.%N; }
for i in 1 2 3; do
  # PostgreSQL sink.
  start=$(now)
  "$WORK/load" --quiet --source "loans=$WORK/loans.csv" --sink "rejected->files=$WORK/rejected"
  t=$(echo "$(now) - $start" | bc)
  echo "pipe postgres sink: $(psql -tAc 'SELECT count(*) FROM loans') rows, seconds=$t"
  times[pipe_sink]+="$t "
  psql -c "DROP TABLE IF EXISTS copy_target; CREATE TABLE copy_target (LIKE loans)"
  start=$(now)
  psql -c "\\copy copy_target FROM '$WORK/loans.csv' CSV HEADER"
  t=$(echo "$(now) - $start" | bc)
  echo "psql \\copy: $(psql -tAc 'SELECT count(*) FROM copy_target') rows, seconds=$t"
  times[psql_copy_in]+="$t "

  # PostgreSQL source.
  rm -rf "$WORK/count_out"
  start=$(now)
  "$WORK/count" --quiet --sink "counted->files=$WORK/count_out" --sink "rejected->files=$WORK/rejected2"
  t=$(echo "$(now) - $start" | bc)
  echo "pipe postgres source: $(cat "$WORK"/count_out/*.jsonl) seconds=$t"
  times[pipe_source]+="$t "
  start=$(now)
  psql -c "\\copy (SELECT * FROM loans) TO '$WORK/copy.bin' (FORMAT binary)"
  t=$(echo "$(now) - $start" | bc)
  echo "COPY TO file: $(du -h "$WORK/copy.bin" | cut -f1), seconds=$t"
  times[copy_out]+="$t "

  # Redis sink.
  redis-cli -p $REDIS_PORT flushall >/dev/null
  start=$(now)
  "$WORK/redis_rows" --quiet --source "loans=$WORK/loans.csv" --sink "rejected->files=$WORK/rejected3"
  t=$(echo "$(now) - $start" | bc)
  echo "pipe redis sink: $(redis-cli -p $REDIS_PORT dbsize) hashes, seconds=$t"
  times[pipe_redis]+="$t "
  redis-cli -p $REDIS_PORT flushall >/dev/null
  start=$(now)
  redis-benchmark -p $REDIS_PORT -q -n "$ROWS" -r "$ROWS" -P 1000 \
    HSET loan:__rand_int__ loan_id 1 state CA grade C loan_amount 28000 interest_rate 14.07 \
    annual_income 90000.0 issued 2018-03-01T00:00:00.000Z loan_status Current >/dev/null
  t=$(echo "$(now) - $start" | bc)
  echo "redis-benchmark HSET -P 1000: seconds=$t"
  times[redis_benchmark]+="$t "
done
for k in pipe_sink psql_copy_in pipe_source copy_out pipe_redis redis_benchmark; do
  sorted=$(echo "${times[$k]}" | tr ' ' '\n' | grep . | sort -n)
  med=$(echo "$sorted" | sed -n 2p)
  echo "$k: median ${med}s ($(echo "$ROWS / $med" | bc) rows/s), spread $(echo "$sorted" | head -1)–$(echo "$sorted" | tail -1)s"
done
