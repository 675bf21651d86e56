"""Writes the join and rolling-window benchmark's input (bench/joins.sh): N events of each of
two streams, `views.jsonl` and `buys.jsonl`, as JSON Lines {"key", "at", "value"} over one day,
10,000 keys, in time order but up to 30 s disordered (within the pipelines' 1-minute
watermark), deterministic (seeded).

    python3 gen.py N OUT_DIR"""

import random
import sys

n, out = int(sys.argv[1]), sys.argv[2]
T0 = 1_700_000_000_000
DAY = 86_400_000
for name, seed in (("views", 1), ("buys", 2)):
    rng = random.Random(20261202 + seed)
    with open(f"{out}/{name}.jsonl", "w") as f:
        for i in range(n):
            at = T0 + i * DAY // n - rng.randrange(30_000)
            f.write(f'{{"key":"k{rng.randrange(10_000)}","at":{at},"value":{rng.randrange(100_000) / 100}}}\n')
