"""The as-of join of bench/asof.sh in DuckDB (ASOF LEFT JOIN) and Polars (join_asof, backward),
each reading the same CSV files and writing Parquet; prints the rows, the rows with a score,
the sum of the scores and the seconds.

    python3 peers.py duckdb|polars DIR OUT"""

import sys
import time

engine, d, out = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
if engine == "duckdb":
    import duckdb

    con = duckdb.connect()
    con.execute(
        f"""COPY (
              SELECT l.id, l.member, l.at, r.score
              FROM read_csv('{d}/left.csv') l
              ASOF LEFT JOIN read_csv('{d}/right.csv') r ON l.member = r.member AND l.at >= r.at
            ) TO '{out}' (FORMAT parquet)"""
    )
    seconds = time.perf_counter() - start
    rows, scored, total = con.execute(f"SELECT count(*), count(score), sum(score) FROM '{out}'").fetchone()
else:
    import polars as pl

    left = pl.read_csv(f"{d}/left.csv").sort("at")
    right = pl.read_csv(f"{d}/right.csv").sort("at")
    joined = left.join_asof(right, on="at", by="member", strategy="backward")
    joined.select("id", "member", "at", "score").write_parquet(out)
    seconds = time.perf_counter() - start
    rows, scored, total = joined.height, joined["score"].count(), joined["score"].sum()
print(f"{engine} rows={rows} scored={scored} sum={total} seconds={seconds:.3f}")
