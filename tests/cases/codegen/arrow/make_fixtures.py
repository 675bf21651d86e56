"""Writes the Arrow IPC fixtures of this case with pyarrow and Polars (other Arrow writers than
the runtime's): `foreign/pyarrow.arrow` has the columns of `Account` in other encodings than
Pipe writes (microsecond and second timestamps without a zone, int32 and int16 integers, large
strings, an enum as plain strings and as numbers, a large list, float32) and two batches; one
of its rows has a null where the schema requires a value. `wrong/accounts.arrow` has `rate` as
strings. Run from this directory: python3 make_fixtures.py (needs pyarrow)."""

import datetime as dt

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

UTC = dt.timezone.utc

payment = pa.struct([
    pa.field("at", pa.timestamp("us"), nullable=False),
    pa.field("amount", pa.float32()),
    pa.field("note", pa.large_string()),
    pa.field("ignored", pa.int8()),
])

schema = pa.schema([
    pa.field("id", pa.large_string(), nullable=False),
    pa.field("opened", pa.timestamp("s")),
    pa.field("since", pa.timestamp("ns", tz="Europe/Paris")),
    pa.field("rate", pa.float64()),
    pa.field("score", pa.float32()),
    pa.field("active", pa.bool_()),
    pa.field("grade", pa.string()),
    pa.field("previous", pa.int32()),
    pa.field("blob", pa.large_binary()),
    pa.field("tags", pa.large_list(pa.string())),
    pa.field("codes", pa.list_(pa.int16())),
    pa.field("payments", pa.list_(payment)),
    pa.field("limits", pa.map_(pa.string(), pa.int32())),
    pa.field("last", payment),
    pa.field("visits", pa.int32()),
    pa.field("extra", pa.string()),
])

def ts(y, mo, d, h=0, mi=0, s=0, us=0):
    return dt.datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)

rows = [
    dict(id="p1", opened=ts(2023, 11, 14, 22, 13, 20), since=ts(2023, 11, 15), rate=0.0525, score=712.5,
         active=True, grade="A", previous=2, blob=b"\x00\x01\xff", tags=["new", ""], codes=[3, -1],
         payments=[dict(at=ts(2023, 11, 14, 22, 13, 20, 123999), amount=125.5, note="first", ignored=1),
                   dict(at=dt.datetime(1969, 12, 31, 23, 59, 58, 500000, tzinfo=UTC), amount=None, note=None, ignored=None)],
         limits=[("card", 5000), ("loan", 0)], last=dict(at=ts(2023, 11, 14), amount=1.0, note="x", ignored=None),
         visits=4, extra="not in the schema"),
    dict(id="p2", opened=None, since=ts(1970, 1, 1), rate=1.0, score=None, active=False, grade="B",
         previous=None, blob=b"", tags=[], codes=None, payments=[], limits=[], last=None, visits=None, extra=None),
]
second = [
    dict(id="p3", opened=ts(2000, 2, 29), since=ts(2000, 2, 29, 10), rate=-2.5, score=1.25, active=True,
         grade="C", previous=1, blob=b"\x07", tags=["ü"], codes=[], payments=[], limits=[("x", -1)], last=None,
         visits=1, extra="e"),
    # `opened` is required by the schema: this row is rejected, the others are read.
    dict(id="p4", opened=None, since=ts(2000, 1, 1), rate=0.0, score=None, active=True, grade="A",
         previous=None, blob=b"", tags=[], codes=None, payments=[], limits=[], last=None, visits=None, extra=None),
]

def write(path, schema, batches):
    with ipc.new_file(path, schema) as w:
        for b in batches:
            w.write_batch(pa.RecordBatch.from_pylist(b, schema=schema))

rows[1]["opened"] = ts(1970, 1, 1)
write("foreign/pyarrow.arrow", schema, [rows, second])

# The same table as a Feather file (an IPC file compressed with LZ4, pyarrow's default), and
# compressed with ZSTD, which the runtime does not read.
import pyarrow.feather as feather
table = pa.Table.from_batches([pa.RecordBatch.from_pylist(b, schema=schema) for b in (rows, second)])
feather.write_feather(table, "compressed/feather.arrow")
feather.write_feather(table, "compressed/zstd.arrow", compression="zstd")

pl.DataFrame({
    "id": ["q1", "q2"],
    "opened": pl.Series([dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 2)], dtype=pl.Datetime("us")),
    "since": pl.Series([ts(2024, 1, 1), ts(2024, 1, 2, 6)], dtype=pl.Datetime("ms", "UTC")),
    "rate": [0.5, 1.5],
    "score": [None, 3.0],
    "active": [True, False],
    "grade": pl.Series(["B", "C"], dtype=pl.Categorical),
    "previous": pl.Series(["A", None], dtype=pl.Enum(["A", "B", "C"])),
    "blob": pl.Series([b"\x01", b""], dtype=pl.Binary),
    "tags": [["x", "y"], []],
    "codes": [[1, 2], None],
    "payments": [[{"at": dt.datetime(2024, 1, 1), "amount": 2.0, "note": "p"}], []],
    "last": [None, {"at": dt.datetime(2024, 1, 3), "amount": None, "note": None}],
    "visits": [7, None],
}).write_ipc("foreign/polars.arrow")

wrong = pa.schema([pa.field("id", pa.string()), pa.field("opened", pa.timestamp("ms")),
                   pa.field("since", pa.timestamp("ms")), pa.field("rate", pa.string()),
                   pa.field("active", pa.bool_()), pa.field("grade", pa.string()), pa.field("blob", pa.binary()),
                   pa.field("tags", pa.list_(pa.string())),
                   pa.field("payments", pa.list_(pa.struct([pa.field("at", pa.timestamp("ms"))]))),
                   pa.field("limits", pa.map_(pa.string(), pa.int64()))])
write("wrong/accounts.arrow", wrong, [[dict(id="w", opened=ts(2020, 1, 1), since=ts(2020, 1, 1), rate="high",
                                            active=True, grade="A", blob=b"", tags=[], payments=[], limits=[])]])
