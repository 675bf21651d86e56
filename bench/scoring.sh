#!/usr/bin/env bash
# Model scoring: the 500-tree, depth-8 LightGBM model and the XGBoost model of
# ../shared/bench/train_models.py on its 1,000,000-row score_1m.csv, Pipe (the binary `pipec
# build` makes without flags) beside the libraries' own predict at the same thread counts, three
# runs of each in one script run, medians and every run printed; and the two models fused in
# one Pipe pass against each scored by its own pipeline.
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
  # The build users get: `pipec build` (and `pipec run`) without flags.
  target/release/pipec build "$SC/$p.pipe" -o "$WORK/score_$p" 2>&1 | tail -1
done
DATA="$WORK/models/score_1m.csv"
RESULTS="$WORK/scoring_results.txt"
: > "$RESULTS"
run() { # binary threads
  "$WORK/score_$1" --quiet --threads "$2" --source "rows=$DATA" --sink "scored->files=$WORK/out_$1" --summary "$WORK/s.json"
  python3 -c "import json;print(round(json.load(open('$WORK/s.json'))['seconds'], 2))"
}
for round in 1 2 3; do
  for threads in 1 2; do
    for p in lgb xgb fused; do
      t=$(run $p $threads)
      echo "pipe_$p threads=$threads seconds=$t" | tee -a "$RESULTS"
    done
  done
done
python3 - "$WORK/models" "$RESULTS" <<'PY'
import statistics, sys, time
import lightgbm as lgb, numpy as np, pandas as pd, xgboost as xgb
d, results = sys.argv[1], sys.argv[2]
X = pd.read_csv(f"{d}/score_1m.csv").to_numpy()
booster = lgb.Booster(model_file=f"{d}/lgb_default.txt")
bst = xgb.Booster(model_file=f"{d}/xgb_rate.json")
with open(results, "a") as out:
    for _ in range(3):
        for threads in (1, 2):
            t0 = time.perf_counter(); booster.predict(X, num_threads=threads); t1 = time.perf_counter()
            bst.set_param({"nthread": threads}); bst.inplace_predict(X); t2 = time.perf_counter()
            for name, t in (("lightgbm_predict", t1 - t0), ("xgboost_inplace_predict", t2 - t1)):
                line = f"{name} threads={threads} seconds={t:.2f}"
                print(line + " (in memory, CSV already parsed)")
                out.write(line + "\n")
runs = {}
for line in open(results):
    name, threads, secs = line.split()
    runs.setdefault((name, threads), []).append(float(secs.split("=")[1]))
med = {k: statistics.median(v) for k, v in runs.items()}
for (name, threads), v in sorted(runs.items()):
    print(f"{name} {threads}: median {med[name, threads]:.2f}s (runs {', '.join(f'{x:.2f}' for x in v)})")
for threads in ("threads=1", "threads=2"):
    print(f"{threads}: pipe lgb is {med['lightgbm_predict', threads] / med['pipe_lgb', threads]:.2f}x lightgbm, "
          f"pipe xgb is {med['xgboost_inplace_predict', threads] / med['pipe_xgb', threads]:.2f}x xgboost (medians)")
PY
