#!/bin/sh
# Regenerates data/applications.jsonl: 3,000 nested loan applications from the shared
# generator, event times up to 4 minutes out of order (inside the source's 5-minute watermark
# bound), every 100th line malformed. Needs Python 3; the committed file makes the example
# runnable without it.
set -eu
cd "$(dirname "$0")"
python3 ../../../shared/bench/gen_applications.py --rows 3000 --members 200 --bad-every 100 --disorder-ms 240000 --seed 13 --out data/applications.jsonl
