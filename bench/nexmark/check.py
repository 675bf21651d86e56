"""Checks a Nexmark query's rows from Pipe against DuckDB on the same events (bench/nexmark.sh).

    python3 bench/nexmark/check.py QUERY EVENTS_DIR PIPE_OUTPUT

Each query is written here as Flink's Nexmark SQL does it (windows aligned to the epoch, the
sliding window of q5 every 2 s over 10 s, q7's `BETWEEN rowtime - 10 s AND rowtime` where a
window's rowtime is its end less 1 ms), and
the two sides' rows are compared as multisets (EXCEPT ALL both ways). Prints one line; exits 1
when they differ.
"""

import sys

import duckdb

QUERY, DATA, OUT = sys.argv[1], sys.argv[2], sys.argv[3]

KINDS = {
    "person": "id BIGINT, name VARCHAR, email_address VARCHAR, credit_card VARCHAR, city VARCHAR, "
    "state VARCHAR, date_time BIGINT, extra VARCHAR",
    "auction": "id BIGINT, item_name VARCHAR, description VARCHAR, initial_bid BIGINT, reserve BIGINT, "
    "date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra VARCHAR",
    "bid": "auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, date_time BIGINT, "
    "extra VARCHAR",
}

# DuckDB's SQL for each query, its columns named and typed as Pipe's output gives them
# (timestamps as epoch milliseconds).
REFERENCE = {
    "q0": "SELECT auction, bidder, price, date_time, extra FROM bid",
    "q1": "SELECT auction, bidder, 0.908::DOUBLE * price AS price, date_time, extra FROM bid",
    "q2": "SELECT auction, price FROM bid WHERE auction % 123 = 0",
    "q5": """
        WITH w AS (
            SELECT auction, date_time // 2000 * 2000 - k * 2000 AS ws
            FROM bid, (SELECT unnest(range(0, 5)) AS k)
        ), counts AS (SELECT auction, ws, count(*) AS num FROM w GROUP BY auction, ws),
        maxes AS (SELECT ws, max(num) AS maxn FROM counts GROUP BY ws)
        SELECT auction, num, ws AS window_start, ws + 10000 AS window_end
        FROM counts JOIN maxes USING (ws) WHERE num >= maxn""",
    "q7": """
        WITH m AS (SELECT date_time // 10000 * 10000 + 9999 AS rowtime, max(price) AS maxprice FROM bid GROUP BY 1)
        SELECT b.auction, b.price, b.bidder, b.date_time, b.extra
        FROM bid b JOIN m ON b.price = m.maxprice AND b.date_time BETWEEN m.rowtime - 10000 AND m.rowtime""",
    "q8": """
        WITH p AS (SELECT DISTINCT id, name, date_time // 10000 * 10000 AS ws FROM person),
        a AS (SELECT DISTINCT seller, date_time // 10000 * 10000 AS ws FROM auction)
        SELECT p.id, p.name, p.ws AS starttime FROM p JOIN a ON p.id = a.seller AND p.ws = a.ws""",
}

# Pipe's columns per query: timestamps come out as RFC 3339 text.
PIPE = {
    "q0": ("auction BIGINT, bidder BIGINT, price BIGINT, date_time VARCHAR, extra VARCHAR", ["date_time"]),
    "q1": ("auction BIGINT, bidder BIGINT, price DOUBLE, date_time VARCHAR, extra VARCHAR", ["date_time"]),
    "q2": ("auction BIGINT, price BIGINT", []),
    "q5": ("auction BIGINT, num BIGINT, window_start VARCHAR, window_end VARCHAR", ["window_start", "window_end"]),
    "q7": ("auction BIGINT, price BIGINT, bidder BIGINT, date_time VARCHAR, extra VARCHAR", ["date_time"]),
    "q8": ("id BIGINT, name VARCHAR, starttime VARCHAR", ["starttime"]),
}


def columns(spec: str) -> str:
    pairs = [c.strip().split(" ", 1) for c in spec.split(",")]
    return "{" + ", ".join(f"'{n}': '{t}'" for n, t in pairs) + "}"


def main() -> int:
    db = duckdb.connect()
    for kind, spec in KINDS.items():
        db.execute(
            f"CREATE VIEW {kind} AS SELECT * FROM read_json('{DATA}/{kind}/*.jsonl', "
            f"format = 'newline_delimited', columns = {columns(spec)})"
        )
    spec, times = PIPE[QUERY]
    names = [c.strip().split(" ", 1)[0] for c in spec.split(",")]
    select = ", ".join(
        f"epoch_ms(CAST({n} AS TIMESTAMPTZ)) AS {n}" if n in times else n for n in names
    )
    db.execute(
        f"CREATE VIEW pipe AS SELECT {select} FROM read_json('{OUT}', format = 'newline_delimited', "
        f"columns = {columns(spec)})"
    )
    db.execute(f"CREATE VIEW reference AS {REFERENCE[QUERY]}")
    (ours,) = db.execute("SELECT count(*) FROM pipe").fetchone()
    (theirs,) = db.execute("SELECT count(*) FROM reference").fetchone()
    (missing,) = db.execute("SELECT count(*) FROM (SELECT * FROM reference EXCEPT ALL SELECT * FROM pipe)").fetchone()
    (extra,) = db.execute("SELECT count(*) FROM (SELECT * FROM pipe EXCEPT ALL SELECT * FROM reference)").fetchone()
    same = missing == 0 and extra == 0
    print(
        f"{QUERY}: {'same rows as DuckDB' if same else 'DIFFERENT from DuckDB'} "
        f"(pipe {ours} rows, duckdb {theirs}; {missing} missing, {extra} extra)"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
