"""Writes the as-of join benchmark's input: LEFT label rows (id, member, at) and RIGHT score
versions (member, at, score), as CSV with millisecond times, deterministic (seeded). Members
are drawn from 100,000; a member's versions never share a millisecond, so every engine's
tie rule gives the same rows.

    python3 gen.py LEFT RIGHT OUT_DIR"""

import random
import sys

left, right, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(20261202)
MEMBERS = 100_000
T0 = 1_700_000_000_000
SPAN = 180 * 86_400_000  # half a year

with open(f"{out}/right.csv", "w") as f:
    f.write("member,at,score\n")
    seen = set()
    n = 0
    while n < right:
        m, at = rng.randrange(MEMBERS), T0 + rng.randrange(SPAN)
        if (m, at) in seen:
            continue
        seen.add((m, at))
        f.write(f"m{m},{at},{rng.randrange(300, 851)}\n")
        n += 1

with open(f"{out}/left.csv", "w") as f:
    f.write("id,member,at\n")
    for i in range(left):
        f.write(f"{i},m{rng.randrange(MEMBERS)},{T0 + rng.randrange(SPAN)}\n")
