# Shared by the bench scripts (sourced): the input of ROWS generated applications in $WORK,
# and a release pipec. Sets ROWS, WORK, SHARED, DATA, PIPEC and PIPE_HMAC_KEY.
ROWS=${1:-1000000}
WORK=${PIPE_BENCH_DIR:-target/bench}
SHARED=../shared/bench
mkdir -p "$WORK"
DATA="$WORK/apps_$ROWS.jsonl"
if [ ! -f "$DATA" ]; then
  python3 "$SHARED/gen_applications.py" --rows "$ROWS" --out "$DATA"
fi
# PIPEC=path uses a pipec already built (the pipelines it builds are the same: their profile
# does not depend on pipec's).
if [ -z "${PIPEC:-}" ]; then
  cargo build -q --release -p pipe-compiler --bin pipec
  PIPEC=target/release/pipec
fi
export PIPE_HMAC_KEY=bench-key-0123456789abcdef
