"""ROWS loans for the connector benchmarks: the 10,000 Lending Club loans of
examples/point_in_time/data/loans.csv repeated with fresh ids.

    python3 bench/make_loans.py ROWS OUT.csv
"""
import sys

rows, dst = int(sys.argv[1]), sys.argv[2]
header, *lines = open("examples/point_in_time/data/loans.csv").read().splitlines()
with open(dst, "w") as out:
    out.write(header + "\n")
    for i in range(rows):
        line = lines[i % len(lines)]
        out.write(str(i + 1) + line[line.index(","):] + "\n")
