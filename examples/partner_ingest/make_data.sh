#!/bin/sh
# Regenerates data/applications.jsonl: 1,000 nested loan applications from the shared
# generator, every 50th line malformed (truncated JSON, a wrong type, a missing field or wrong
# nested types). Needs Python 3; the committed file makes the example runnable without it.
set -eu
cd "$(dirname "$0")"
python3 ../../../shared/bench/gen_applications.py --rows 1000 --members 300 --bad-every 50 --seed 11 --out data/applications.jsonl
