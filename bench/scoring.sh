#!/usr/bin/env bash
# Model scoring: the 500-tree, depth-8 LightGBM model and the XGBoost model of
# ../shared/bench/train_models.py on its 1,000,000-row score_1m.csv, Pipe beside the libraries'
# own predict at the same thread counts, in one run; and the two models fused in one Pipe pass
# against each scored by its own pipeline.
#
#   bench/scoring.sh     (needs python3 with lightgbm xgboost pandas numpy)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${PIPE_BENCH_DIR:-target/bench}
mkdir -p "$WORK/models"
WORK=$(cd "$WORK" && pwd)
if [ ! -f "$WORK/models/score_1m.csv" ]; then
  python3 ../shared/bench/train_models.py "$WORK/models" > "$WORK/train.log"
fi
cargo build -q --release -p pipe-compiler --bin pipec
# The pipelines name their inputs relative to themselves; link the trained models in.
SC="$WORK/scoring"
mkdir -p "$SC"
cp bench/scoring/*.pipe bench/scoring/features.thrift "$SC/"
ln -sfn "$WORK/models" "$SC/models"
for p in lgb xgb fused; do
  target/release/pipec build --release "$SC/$p.pipe" -o "$WORK/score_$p" 2>&1 | tail -1
done
DATA="$WORK/models/score_1m.csv"
run() { # binary threads
  "$WORK/score_$1" --quiet --threads "$2" --source "rows=$DATA" --sink "scored->files=$WORK/out_$1" --summary "$WORK/s.json"
  python3 -c "import json;print(round(json.load(open('$WORK/s.json'))['seconds'], 2))"
}
for threads in 1 2; do
  echo "threads=$threads pipe_lgb=$(run lgb $threads)s pipe_xgb=$(run xgb $threads)s pipe_fused_lgb_xgb=$(run fused $threads)s"
done
python3 - "$WORK/models" <<'PY'
import sys, time
import lightgbm as lgb, numpy as np, pandas as pd, xgboost as xgb
d = sys.argv[1]
X = pd.read_csv(f"{d}/score_1m.csv").to_numpy()
booster = lgb.Booster(model_file=f"{d}/lgb_default.txt")
bst = xgb.Booster(model_file=f"{d}/xgb_rate.json")
for threads in (1, 2):
    t0 = time.perf_counter(); booster.predict(X, num_threads=threads); t1 = time.perf_counter()
    bst.set_param({"nthread": threads}); bst.inplace_predict(X); t2 = time.perf_counter()
    print(f"threads={threads} lightgbm_predict={t1 - t0:.2f}s xgboost_predict={t2 - t1:.2f}s (in memory, CSV already parsed)")
PY
