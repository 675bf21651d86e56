//! PostgreSQL (the runtime's `postgres` feature).
//!
//! **Source.** A table is read in ranges of its pages (`ctid` ranges, which PostgreSQL scans
//! directly), one range per split, every range under the snapshot the planning connection
//! exported, so the ranges add up to one consistent reading of the table. Each range is a binary
//! `COPY (SELECT …) TO STDOUT`; every column is cast in the `SELECT` to one of eight wire types,
//! decoded here and written as a JSON line in the forms the record's JSON decoder takes, so one
//! decoder (with its rejections) serves every source. A range whose connection dies is read
//! again from the row after the last one taken. A query is one range.
//!
//! **Sink.** Each worker loads its rows with binary `COPY … FROM STDIN` into its own staging
//! table (`pipe_stage_<hash>_w<worker>`, beside the target). A batch run publishes every
//! staging table in one transaction when the whole run succeeded (`append`, `replace` or
//! `upsert`); a stream publishes each worker's epoch in one transaction with the epoch's row in
//! the bookkeeping table `pipe_sink_epochs`, after the checkpoint that records the epoch.

use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use postgres::types::{Kind, Type};
use postgres::{Client, NoTls};

use super::redact;
use crate::input::{PgColumn, PgKind, PgSource, TsUnit};
use crate::sink::{PgMode, Record};

/// Microseconds between 1970-01-01 and PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days between the two epochs.
const PG_EPOCH_DAYS: i32 = 10_957;
/// How long a connection lost mid-run is retried, with backoff, before the run fails.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// Whether an error is the connection's (worth reconnecting for), not the statement's.
fn transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        // Connection exceptions (08…), the server shutting down or the backend terminated
        // (57P01 `pg_terminate_backend`, 57P02, 57P03).
        Some(code) => code.code().starts_with("08") || code.code().starts_with("57P"),
        // No SQLSTATE: an I/O error on the socket is the connection's; anything else (a value
        // that does not serialize, …) is ours.
        None => std::error::Error::source(e).is_some_and(|s| s.is::<io::Error>()),
    }
}

/// The error of a statement, without the URL's password: `what` says what was being done.
fn describe(e: &postgres::Error, what: &str) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{what}: {}", db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            s
        }
        None => format!("{what}: {e}"),
    }
}

/// Connects, trying again for up to `patience` while the server cannot be reached.
fn connect(url: &str, patience: Duration) -> Result<Client, String> {
    let start = Instant::now();
    let mut wait = Duration::from_millis(100);
    loop {
        match Client::connect(url, NoTls).and_then(|mut c| c.batch_execute("SET TIME ZONE 'UTC'").map(|()| c)) {
            Ok(c) => return Ok(c),
            Err(e) if transient(&e) && start.elapsed() + wait < patience => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(describe(&e, &format!("cannot connect to PostgreSQL at `{}`", redact(url)))),
        }
    }
}

/// Why one attempt of [`Conn::run`] failed.
enum Fail {
    Pg(postgres::Error),
    /// The connection broke under a copy stream (worth another attempt).
    Lost(io::Error),
    /// Not worth another attempt.
    Stop(String),
}

impl From<postgres::Error> for Fail {
    fn from(e: postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

/// A connection that is opened again when the server drops it: `run` is retried with backoff
/// (for [`RETRY_FOR`]) on connection errors, and fails at once on any other.
struct Conn {
    url: String,
    client: Option<Client>,
    /// The advisory lock this session holds for the run, taken again on every new session (a
    /// session that cannot have it back fails: another run took the table).
    lock: Option<i64>,
}

/// Takes advisory lock `key`, waiting a few seconds for a run killed a moment ago, whose
/// session the server may not have closed yet.
fn take_lock(c: &mut Client, key: i64) -> Result<bool, postgres::Error> {
    let start = Instant::now();
    loop {
        let locked: bool = c.query_one("SELECT pg_try_advisory_lock($1)", &[&key])?.get(0);
        if locked || start.elapsed() > Duration::from_secs(5) {
            return Ok(locked);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Conn {
    fn open(url: &str) -> Result<Conn, String> {
        Ok(Conn { url: url.to_string(), client: Some(connect(url, Duration::from_secs(2))?), lock: None })
    }

    /// Runs `f` (told whether an earlier attempt was cut off) until it succeeds, fails for a
    /// reason of its own, or the connection cannot be had back within [`RETRY_FOR`].
    fn run<T, E: Into<Fail>>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&mut Client, bool) -> Result<T, E>,
    ) -> Result<T, String> {
        // The patience is per outage: it starts again once a new session is open (a long read
        // that loses its connection twice is not cut short), within a bounded number of tries.
        let mut start = Instant::now();
        let mut wait = Duration::from_millis(100);
        let mut retried = false;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let client = match self.client.as_mut() {
                Some(c) => c,
                None => match connect(&self.url, Duration::ZERO) {
                    Ok(mut c) => {
                        if let Some(key) = self.lock {
                            match take_lock(&mut c, key) {
                                Ok(true) => {}
                                Ok(false) => {
                                    return Err(format!(
                                        "{what}: the connection was lost, and with it the table's lock, which another run has taken since"
                                    ))
                                }
                                // The new session was lost too: another try.
                                Err(e) if transient(&e) && start.elapsed() < RETRY_FOR => {
                                    std::thread::sleep(wait);
                                    wait = (wait * 2).min(Duration::from_secs(2));
                                    continue;
                                }
                                Err(e) => return Err(describe(&e, what)),
                            }
                        }
                        start = Instant::now();
                        self.client.insert(c)
                    }
                    Err(_) if start.elapsed() < RETRY_FOR => {
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(Duration::from_secs(2));
                        continue;
                    }
                    Err(e) => return Err(format!("{what}: gave up after {} s: {e}", RETRY_FOR.as_secs())),
                },
            };
            let lost = match f(client, retried).map_err(Into::into) {
                Ok(v) => return Ok(v),
                Err(Fail::Pg(e)) if transient(&e) => describe(&e, what),
                Err(Fail::Lost(e)) => format!("{what}: {e}"),
                Err(Fail::Pg(e)) => return Err(describe(&e, what)),
                Err(Fail::Stop(e)) => return Err(e),
            };
            if start.elapsed() >= RETRY_FOR || attempts >= 50 {
                return Err(format!("{lost} (gave up after {} s)", RETRY_FOR.as_secs()));
            }
            self.client = None;
            retried = true;
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `name` as a quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

// ---- Source ----

/// One unit of a PostgreSQL source's batch read (sent between workers for a join's table).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PgRange {
    /// The select list (`ctid` first for a table) and what it reads from.
    select: String,
    from: String,
    /// Pages `[lo, hi)` of the table; `hi` open for the last range (rows appended after the
    /// plan land there). `None` for a query.
    pages: Option<(u32, Option<u32>)>,
    /// The snapshot every range reads under, exported by the planning connection.
    snapshot: Option<String>,
    /// How rejected records name their position: `table pages a..b`.
    pub label: String,
}

/// A planned PostgreSQL source: its ranges, and the connection whose open transaction keeps
/// their snapshot alive until the run ends.
pub struct PgPlan {
    pub ranges: Vec<PgRange>,
    pub hold: Option<Client>,
}

impl std::fmt::Debug for PgPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgPlan").field("ranges", &self.ranges).finish_non_exhaustive()
    }
}

/// The SQL expression that reads column `col` (of PostgreSQL type `ty`) as record field `c`,
/// cast to the wire type `decode` takes for its kind; `None` when they cannot meet.
fn read_expr(c: &PgColumn, ty: &Type) -> Option<String> {
    let q = quote_ident(&c.name);
    let int = matches!(*ty, Type::INT2 | Type::INT4 | Type::INT8);
    let text = matches!(*ty, Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME);
    Some(match c.kind {
        PgKind::Bool if *ty == Type::BOOL => q,
        PgKind::Int if int => format!("{q}::int8"),
        PgKind::Duration if int => format!("{q}::int8"),
        PgKind::Duration if *ty == Type::INTERVAL => format!("(extract(epoch from {q}) * 1000)::int8"),
        PgKind::Double if int || matches!(*ty, Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC) => format!("{q}::float8"),
        PgKind::Text if text || *ty == Type::UUID => format!("{q}::text"),
        PgKind::Enum if text || int || matches!(ty.kind(), Kind::Enum(_)) => format!("{q}::text"),
        PgKind::Timestamp(_) if *ty == Type::TIMESTAMPTZ => q,
        PgKind::Timestamp(_) if *ty == Type::TIMESTAMP => format!("({q} AT TIME ZONE 'UTC')"),
        PgKind::Timestamp(_) if *ty == Type::DATE => format!("({q}::timestamp AT TIME ZONE 'UTC')"),
        PgKind::Date if *ty == Type::DATE => q,
        PgKind::Binary if *ty == Type::BYTEA => q,
        PgKind::Json if matches!(*ty, Type::JSON | Type::JSONB) => format!("{q}::json"),
        PgKind::Json if matches!(ty.kind(), Kind::Array(_)) => format!("to_json({q})"),
        _ => return None,
    })
}

/// What a record field of this kind may be read from (for the error that refuses a column).
fn accepted(kind: PgKind) -> &'static str {
    match kind {
        PgKind::Bool => "boolean",
        PgKind::Int => "smallint, integer or bigint",
        PgKind::Duration => "an integer (milliseconds) or an interval",
        PgKind::Double => "double precision, real, numeric or an integer",
        PgKind::Text => "text, varchar, char, name or uuid",
        PgKind::Enum => "text, varchar, a PostgreSQL enum or an integer",
        PgKind::Timestamp(_) => "timestamptz, timestamp (read as UTC) or date",
        PgKind::Date => "date",
        PgKind::Binary => "bytea",
        PgKind::Json => "json, jsonb or an array",
    }
}

/// Checks the source's columns against its record and cuts it into ranges for `workers`
/// workers: a clear error before any row is read when a field has no column or a column of a
/// type the field cannot take.
pub fn plan(name: &str, src: &PgSource, workers: usize) -> Result<PgPlan, String> {
    let mut client = connect(&src.url, Duration::from_secs(2)).map_err(|e| format!("source `{name}`: {e}"))?;
    let (from, relation) = match (&src.table, &src.query) {
        (Some(t), _) => (t.clone(), true),
        (None, Some(q)) => (format!("(\n{}\n) AS pipe_query", q.trim().trim_end_matches(';')), false),
        (None, None) => return Err(format!("source `{name}`: `postgres` needs `table` or `query`")),
    };
    let what = if relation { format!("table `{from}`") } else { "its query".to_string() };
    let stmt = client
        .prepare(&format!("SELECT * FROM {from} LIMIT 0"))
        .map_err(|e| describe(&e, &format!("source `{name}`: cannot read {what}")))?;
    let found: HashMap<&str, &Type> = stmt.columns().iter().map(|c| (c.name(), c.type_())).collect();
    let mut select = Vec::new();
    if relation {
        select.push("ctid".to_string());
    }
    for c in &src.columns {
        let Some(ty) = found.get(c.name.as_str()) else {
            let mut have: Vec<&str> = found.keys().copied().collect();
            have.sort_unstable();
            return Err(format!(
                "source `{name}`: {what} has no column `{}` (the schema's field); its columns are {}",
                c.name,
                have.join(", ")
            ));
        };
        let Some(expr) = read_expr(c, ty) else {
            return Err(format!(
                "source `{name}`: column `{}` of {what} is `{}`, which the schema's field `{}` cannot take (it reads {})",
                c.name,
                ty.name(),
                c.name,
                accepted(c.kind)
            ));
        };
        select.push(expr);
    }
    let select = select.join(", ");
    if !relation {
        return Ok(PgPlan {
            ranges: vec![PgRange { select, from, pages: None, snapshot: None, label: "query".into() }],
            hold: None,
        });
    }
    let row = client
        .query_one(
            "SELECT c.relkind::text, (pg_relation_size(c.oid) / current_setting('block_size')::bigint)::bigint \
             FROM pg_class c WHERE c.oid = $1::text::regclass",
            &[&from],
        )
        .map_err(|e| describe(&e, &format!("source `{name}`: cannot size table `{from}`")))?;
    let (kind, pages): (String, i64) = (row.get(0), row.get(1));
    if kind != "r" && kind != "m" {
        // A view has no pages to range over, and a partitioned table's `ctid`s repeat across
        // its partitions: one range, without `ctid`.
        let select = select.strip_prefix("ctid, ").unwrap_or(&select).to_string();
        return Ok(PgPlan {
            ranges: vec![PgRange { select, from: from.clone(), pages: None, snapshot: None, label: from }],
            hold: None,
        });
    }
    // One snapshot for every range: the planning connection keeps its transaction open.
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .map_err(|e| describe(&e, &format!("source `{name}`: cannot start reading `{from}`")))?;
    let snapshot: String = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(|e| describe(&e, &format!("source `{name}`: cannot export a snapshot of `{from}`")))?
        .get(0);
    let pages = u32::try_from(pages.max(0)).unwrap_or(u32::MAX);
    // Four ranges per worker (so a slow range does not hold the others up), of 64 KB of pages
    // at least (a small table is not cut into statements that each read a few rows).
    let n = (pages / 8).clamp(1, (4 * workers.max(1)) as u32);
    let bound = |i: u32| (u64::from(pages) * u64::from(i) / u64::from(n)) as u32;
    let ranges = (0..n)
        .map(|i| {
            let hi = (i + 1 < n).then(|| bound(i + 1));
            let lo = bound(i);
            PgRange {
                select: select.clone(),
                from: from.clone(),
                pages: Some((lo, hi)),
                snapshot: Some(snapshot.clone()),
                label: match hi {
                    _ if n == 1 => from.clone(),
                    Some(h) => format!("{from} pages {lo}..{h}"),
                    None => format!("{from} pages {lo}.."),
                },
            }
        })
        .collect();
    Ok(PgPlan { ranges, hold: Some(client) })
}

/// Reads one range; `take` gets each row as a JSON line and its number in the range. A
/// connection lost mid-range is opened again and the range goes on after the last row taken
/// (a table's rows come in `ctid` order); a query cannot resume and fails the run.
pub fn read(src: &PgSource, range: &PgRange, take: &mut super::TakeRow<'_>) -> Result<u64, String> {
    let mut conn = Conn::open(&src.url)?;
    let mut after: Option<(u32, u16)> = None;
    let mut n: u64 = 0;
    let mut line = Vec::with_capacity(256);
    let what = format!("reading `{}`", range.label);
    conn.run(&what, |client, retried| {
        if retried && range.pages.is_none() && n > 0 {
            return Err(Fail::Stop(format!(
                "{what}: the connection was lost after {n} rows of a query, which cannot resume where it stopped"
            )));
        }
        let mut filter = Vec::new();
        if let Some((lo, hi)) = range.pages {
            filter.push(format!("ctid >= '({lo},0)'::tid"));
            if let Some(hi) = hi {
                filter.push(format!("ctid < '({hi},0)'::tid"));
            }
            if let Some((b, o)) = after {
                filter.push(format!("ctid > '({b},{o})'::tid"));
            }
        }
        let filter = if filter.is_empty() { String::new() } else { format!(" WHERE {}", filter.join(" AND ")) };
        let sql = format!("COPY (SELECT {} FROM {}{filter}) TO STDOUT (FORMAT binary)", range.select, range.from);
        let mut tx = client.transaction()?;
        tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; SET LOCAL synchronize_seqscans = off")?;
        if let Some(s) = &range.snapshot {
            // After a lost connection the snapshot is imported again while the planning
            // connection keeps it; when that one was killed too, the range goes on under a
            // snapshot of its own (rows changed meanwhile may then be read as changed).
            let set = format!("SET TRANSACTION SNAPSHOT {}", quote_literal(s));
            if !retried {
                tx.batch_execute(&set)?;
            } else {
                tx.batch_execute("SAVEPOINT import")?;
                if tx.batch_execute(&set).is_err() {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT import")?;
                }
            }
        }
        let reader = tx.copy_out(sql.as_str())?;
        let mut r = BufReader::with_capacity(1 << 16, reader);
        let decoded = decode_rows(&mut r, src, range.pages.is_some(), &mut line, &mut |json, ctid| {
            take(json, n)?;
            n += 1;
            if let Some(c) = ctid {
                after = Some(c);
            }
            Ok(())
        });
        match decoded {
            Ok(()) => {}
            // An I/O error reading the copy is the connection's: the retry resumes.
            Err(Decode::Io(e)) => return Err(Fail::Lost(e)),
            Err(Decode::Stop(e)) => return Err(Fail::Stop(e)),
        }
        drop(r);
        Ok(tx.commit()?)
    })?;
    Ok(n)
}

enum Decode {
    Io(io::Error),
    Stop(String),
}

impl From<io::Error> for Decode {
    fn from(e: io::Error) -> Decode {
        Decode::Io(e)
    }
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), Decode> {
    r.read_exact(buf).map_err(Decode::Io)
}

/// What takes a decoded row: its JSON line and its `ctid` (block, offset) when it has one.
type TakeDecoded<'a> = dyn FnMut(&[u8], Option<(u32, u16)>) -> Result<(), String> + 'a;

/// Decodes a binary `COPY` stream: each row is written into `line` as a JSON object in the
/// forms the record decoder takes, and handed to `take` with its `ctid` (when `with_ctid`).
fn decode_rows(
    r: &mut impl Read,
    src: &PgSource,
    with_ctid: bool,
    line: &mut Vec<u8>,
    take: &mut TakeDecoded<'_>,
) -> Result<(), Decode> {
    let mut header = [0u8; 19];
    read_exact(r, &mut header)?;
    if &header[..11] != b"PGCOPY\n\xff\r\n\0" {
        return Err(Decode::Stop("PostgreSQL sent a copy stream without its signature".into()));
    }
    let ext = u32::from_be_bytes([header[15], header[16], header[17], header[18]]);
    io::copy(&mut r.take(u64::from(ext)), &mut io::sink())?;
    let mut value = Vec::new();
    loop {
        let mut count = [0u8; 2];
        read_exact(r, &mut count)?;
        let count = i16::from_be_bytes(count);
        if count == -1 {
            return Ok(());
        }
        let expected = src.columns.len() + usize::from(with_ctid);
        if usize::try_from(count).ok() != Some(expected) {
            return Err(Decode::Stop(format!("PostgreSQL sent a row of {count} columns, {expected} expected")));
        }
        line.clear();
        line.push(b'{');
        let mut ctid = None;
        for i in 0..expected {
            let mut len = [0u8; 4];
            read_exact(r, &mut len)?;
            let len = i32::from_be_bytes(len);
            let null = len < 0;
            value.clear();
            if !null {
                value.resize(usize::try_from(len).unwrap_or(0), 0);
                read_exact(r, &mut value)?;
            }
            if with_ctid && i == 0 {
                if value.len() == 6 {
                    let block = u32::from_be_bytes([value[0], value[1], value[2], value[3]]);
                    ctid = Some((block, u16::from_be_bytes([value[4], value[5]])));
                }
                continue;
            }
            let c = &src.columns[i - usize::from(with_ctid)];
            // A NULL is a missing value: the field is left out, so a default applies, an
            // optional field is null and a required one is reported missing.
            if null {
                continue;
            }
            if line.len() > 1 {
                line.push(b',');
            }
            json_str(line, &c.name);
            line.push(b':');
            json_value(line, c, &value);
        }
        line.push(b'}');
        take(line, ctid).map_err(Decode::Stop)?;
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn be_i64(v: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(v.try_into().ok()?))
}

/// One column's value (of the wire type `read_expr` cast it to) in the JSON form the record
/// decoder takes for the field. A value the field cannot hold is written as a string that
/// names it, which the decoder rejects with the field's name.
fn json_value(out: &mut Vec<u8>, c: &PgColumn, v: &[u8]) {
    let num = |out: &mut Vec<u8>, n: Option<i64>| match n {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.extend_from_slice(b"\"out of range\""),
    };
    match c.kind {
        PgKind::Bool => out.extend_from_slice(if v.first() == Some(&1) { b"true" } else { b"false" }),
        PgKind::Int | PgKind::Duration => num(out, be_i64(v)),
        PgKind::Double => match be_i64(v).map(|b| f64::from_bits(b as u64)) {
            Some(x) if x.is_finite() => {
                let _ = serde_json::to_writer(&mut *out, &x);
            }
            Some(x) if x.is_nan() => out.extend_from_slice(b"\"NaN\""),
            Some(x) if x > 0.0 => out.extend_from_slice(b"\"Infinity\""),
            Some(_) => out.extend_from_slice(b"\"-Infinity\""),
            None => out.extend_from_slice(b"null"),
        },
        PgKind::Text | PgKind::Enum => json_str(out, &String::from_utf8_lossy(v)),
        PgKind::Timestamp(unit) => {
            // ±infinity are i64::MAX/MIN: out of any range.
            let micros =
                be_i64(v).filter(|m| *m != i64::MAX && *m != i64::MIN).and_then(|m| m.checked_add(PG_EPOCH_MICROS));
            match (unit, micros) {
                (_, None) => out.extend_from_slice(b"\"infinity\""),
                (TsUnit::Seconds, Some(m)) => num(out, Some(m.div_euclid(1_000_000))),
                (TsUnit::Millis, Some(m)) => num(out, Some(m.div_euclid(1000))),
                (TsUnit::Micros, Some(m)) => num(out, Some(m)),
                (TsUnit::Nanos, Some(m)) => num(out, m.checked_mul(1000)),
                (TsUnit::Iso, Some(m)) => json_str(out, &crate::f::ts_text(m.div_euclid(1000))),
            }
        }
        PgKind::Date => {
            let days = v
                .try_into()
                .ok()
                .map(i32::from_be_bytes)
                .filter(|d| *d != i32::MAX && *d != i32::MIN)
                .and_then(|d| d.checked_add(PG_EPOCH_DAYS));
            match days {
                // A required date is read from text, an optional one from a number.
                Some(d) if c.optional => out.extend_from_slice(d.to_string().as_bytes()),
                Some(d) => json_str(out, &d.to_string()),
                None => out.extend_from_slice(b"\"infinity\""),
            }
        }
        PgKind::Binary => {
            out.push(b'[');
            for (i, b) in v.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b.to_string().as_bytes());
            }
            out.push(b']');
        }
        // `json` travels as its text.
        PgKind::Json => out.extend_from_slice(v),
    }
}

// ---- Sink ----

/// A sink column, from the row's Parquet schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkColumn {
    pub name: String,
    pub sql: &'static str,
    pub optional: bool,
}

/// The columns of a row from its Parquet message type (`Record::PARQUET_SCHEMA`), each with the
/// SQL type a created table gives it.
pub fn sink_columns(schema: &str) -> Result<Vec<SinkColumn>, String> {
    let body = schema
        .split_once('{')
        .and_then(|(_, b)| b.rsplit_once('}'))
        .map(|(b, _)| b)
        .ok_or_else(|| "internal: a row schema without a body".to_string())?;
    let mut out = Vec::new();
    for field in body.split(';').map(str::trim).filter(|f| !f.is_empty()) {
        let mut words = field.split_whitespace();
        let (rep, physical, name) = (words.next(), words.next(), words.next());
        let (Some(rep), Some(physical), Some(name)) = (rep, physical, name) else {
            return Err(format!("internal: cannot read the row schema's field `{field}`"));
        };
        let logical: String = words.collect::<Vec<_>>().join(" ");
        let sql = match (physical, logical.as_str()) {
            ("BOOLEAN", _) => "boolean",
            ("INT64", l) if l.starts_with("(TIMESTAMP") => "timestamptz",
            ("INT64", _) => "bigint",
            ("INT32", "(DATE)") => "date",
            ("INT32", _) => "integer",
            ("DOUBLE", _) => "double precision",
            ("BYTE_ARRAY", "(UTF8)") => "text",
            ("BYTE_ARRAY", "(JSON)") => "jsonb",
            ("BYTE_ARRAY", _) => "bytea",
            _ => return Err(format!("internal: the row schema's field `{name}` has type {physical}")),
        };
        out.push(SinkColumn { name: name.to_string(), sql, optional: rep == "OPTIONAL" });
    }
    Ok(out)
}

/// Which SQL types an existing table's column may have to take a row column of type `sql`
/// (the staging table holds `sql`; publishing casts by assignment).
fn fits(sql: &str, existing: &str) -> bool {
    let base = existing.split('(').next().unwrap_or(existing).trim();
    let numeric = ["smallint", "integer", "bigint", "numeric", "real", "double precision"];
    match sql {
        "bigint" | "integer" => numeric.contains(&base),
        "double precision" => ["numeric", "real", "double precision"].contains(&base),
        "text" => ["text", "character varying", "character", "name"].contains(&base),
        "timestamptz" => base.starts_with("timestamp"),
        "jsonb" => base == "jsonb" || base == "json",
        other => base == other,
    }
}

/// What one staging table is for: a worker of the run.
fn stage_name(table_hash: u32, worker: usize) -> String {
    format!("pipe_stage_{table_hash:08x}_w{worker}")
}

/// The worker a staging table (`…_w<worker>`) belongs to.
fn stage_worker(name: &str) -> usize {
    name.rsplit("_w").next().and_then(|w| w.trim_matches('"').parse().ok()).unwrap_or(0)
}

fn fnv(text: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// A PostgreSQL sink of one run.
pub struct PgSink {
    name: &'static str,
    url: String,
    table: String,
    key: Vec<String>,
    mode: PgMode,
    streaming: bool,
    columns: Vec<SinkColumn>,
    /// The target's schema (quoted), where staging tables are made.
    schema: String,
    hash: u32,
    /// The leading process's connection: holds the run's advisory lock, publishes.
    leader: Mutex<Option<Conn>>,
    /// Each worker's connection, opened on its first rows.
    workers: Mutex<HashMap<usize, Conn>>,
    /// Staging tables this process created.
    created: Mutex<std::collections::HashSet<usize>>,
    /// Per worker, the epochs it staged rows of that are not published yet (a stream).
    pending: Mutex<HashMap<usize, std::collections::BTreeSet<u64>>>,
    /// Rows written per worker (the `_pipe_seq` of the next row).
    seq: Mutex<HashMap<usize, i64>>,
}

impl std::fmt::Debug for PgSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgSink({} → {} at {})", self.name, self.table, redact(&self.url))
    }
}

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS pipe_sink_epochs (\
     sink text NOT NULL, target text NOT NULL, worker integer NOT NULL, epoch bigint NOT NULL, \
     rows bigint NOT NULL, published_at timestamptz NOT NULL DEFAULT now(), \
     PRIMARY KEY (target, sink, worker, epoch))";

impl PgSink {
    /// Connects; the `leader` takes the table's advisory lock for the run and creates the
    /// table from the row's columns, or checks the one there.
    #[allow(clippy::too_many_arguments, reason = "a sink's whole declaration")]
    pub fn open(
        name: &'static str,
        url: &str,
        table: &str,
        key: &[String],
        mode: PgMode,
        schema: &str,
        streaming: bool,
        leader: bool,
    ) -> Result<PgSink, String> {
        let columns = sink_columns(schema)?;
        let fail = |e: String| format!("sink `{name}`: {e}");
        if streaming && mode == PgMode::Replace {
            return Err(fail(
                "`mode = replace` has no meaning in a stream, which never ends: use `upsert` (with `key`) or `append`"
                    .into(),
            ));
        }
        if mode == PgMode::Upsert && key.is_empty() {
            return Err(fail("`mode = upsert` needs `key = [..]`: the columns a row replaces by".into()));
        }
        for k in key {
            if !columns.iter().any(|c| &c.name == k) {
                return Err(fail(format!("the key `{k}` is not a column of the rows this sink receives")));
            }
        }
        let mut conn = Conn::open(url).map_err(fail)?;
        let hash = fnv(table);
        let mut sink = PgSink {
            name,
            url: url.to_string(),
            table: table.to_string(),
            key: key.to_vec(),
            mode,
            streaming,
            columns,
            schema: String::new(),
            hash,
            leader: Mutex::new(None),
            workers: Mutex::new(HashMap::new()),
            created: Mutex::new(Default::default()),
            pending: Mutex::new(HashMap::new()),
            seq: Mutex::new(HashMap::new()),
        };
        if leader {
            sink.prepare_table(&mut conn).map_err(fail)?;
        }
        sink.schema = conn
            .run("finding the table's schema", |c, _| -> Result<String, Fail> {
                // The table's schema; before the leading process created it (another process
                // of a cluster can get here first), the one it will be created in.
                let row = c.query_one(
                    "SELECT COALESCE((SELECT quote_ident(n.nspname) FROM pg_class r \
                     JOIN pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = to_regclass($1)), \
                     CASE WHEN strpos($1, '.') > 0 THEN split_part($1, '.', 1) ELSE quote_ident(current_schema()) END)",
                    &[&table],
                )?;
                Ok(row.get::<_, String>(0))
            })
            .map_err(fail)?;
        if leader {
            *lock(&sink.leader) = Some(conn);
        }
        Ok(sink)
    }

    fn prepare_table(&self, conn: &mut Conn) -> Result<(), String> {
        let table = self.table.clone();
        let exists: bool = conn.run("looking for the table", |c, _| {
            c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).map(|r| r.get(0))
        })?;
        if !exists {
            let mut cols: Vec<String> = self
                .columns
                .iter()
                .map(|c| format!("{} {}{}", quote_ident(&c.name), c.sql, if c.optional { "" } else { " NOT NULL" }))
                .collect();
            if !self.key.is_empty() {
                cols.push(format!(
                    "PRIMARY KEY ({})",
                    self.key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", ")
                ));
            }
            let sql = format!("CREATE TABLE IF NOT EXISTS {table} ({})", cols.join(", "));
            conn.run(&format!("creating table `{table}`"), |c, _| c.batch_execute(&sql))?;
        }
        // The run's lock, on the table's identity (`orders` and `public.orders` are one table),
        // held by this session for the run and taken again by every new one.
        let key: i64 = conn.run("locking the table for this run", |c, _| {
            c.query_one("SELECT 8100988574046601216 + to_regclass($1)::oid::bigint", &[&table]).map(|r| r.get(0))
        })?;
        let locked = conn.run("locking the table for this run", |c, _| take_lock(c, key))?;
        if !locked {
            return Err(format!("another run is writing table `{table}` (it holds the table's advisory lock)"));
        }
        conn.lock = Some(key);
        if exists {
            self.check_table(conn)?;
        }
        if self.streaming {
            conn.run("creating the bookkeeping table pipe_sink_epochs", |c, _| c.batch_execute(BOOKKEEPING))?;
        }
        Ok(())
    }

    /// An existing table must have every row column, in a type it takes, nullable where the
    /// row's is; its other columns need defaults; an upsert's key needs a unique index.
    fn check_table(&self, conn: &mut Conn) -> Result<(), String> {
        let table = self.table.clone();
        let rows = conn.run("reading the table's columns", |c, _| {
            c.query(
                "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull, atthasdef OR attidentity <> '' OR attgenerated <> '' \
                 FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped",
                &[&table],
            )
        })?;
        let have: Vec<(String, String, bool, bool)> =
            rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
        for c in &self.columns {
            let Some((_, ty, not_null, _)) = have.iter().find(|h| h.0 == c.name) else {
                return Err(format!(
                    "table `{table}` has no column `{}`; the rows have {}",
                    c.name,
                    self.columns.iter().map(|c| format!("`{}` {}", c.name, c.sql)).collect::<Vec<_>>().join(", ")
                ));
            };
            if !fits(c.sql, ty) {
                return Err(format!(
                    "column `{}` of table `{table}` is `{ty}`, which cannot hold the rows' `{}`",
                    c.name, c.sql
                ));
            }
            if *not_null && c.optional {
                return Err(format!(
                    "column `{}` of table `{table}` is NOT NULL, and the rows' `{}` may be null",
                    c.name, c.name
                ));
            }
        }
        for (name, _, not_null, has_default) in &have {
            if *not_null && !has_default && !self.columns.iter().any(|c| &c.name == name) {
                return Err(format!(
                    "table `{table}` has a NOT NULL column `{name}` without a default, which the rows do not fill"
                ));
            }
        }
        if self.mode == PgMode::Upsert {
            let key = self.key.clone();
            let unique: bool = conn.run("reading the table's unique indexes", |c, _| {
                c.query_one(
                    "SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1::text::regclass AND i.indisunique \
                     AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a \
                          WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) = \
                         (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) k))",
                    &[&table, &key],
                )
                .map(|r| r.get(0))
            })?;
            if !unique {
                return Err(format!(
                    "`mode = upsert` needs a unique index or primary key on ({}) of table `{table}`",
                    self.key.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn stage(&self, worker: usize) -> String {
        format!("{}.{}", self.schema, stage_name(self.hash, worker))
    }

    /// The staging tables in the database for this table (any run's, any worker's).
    fn stages(&self, conn: &mut Conn) -> Result<Vec<String>, String> {
        let pattern = format!("pipe\\_stage\\_{:08x}\\_w%", self.hash);
        let schema = self.schema.clone();
        conn.run("listing staging tables", |c, _| {
            c.query(
                "SELECT quote_ident(n.nspname) || '.' || quote_ident(r.relname) FROM pg_class r \
                 JOIN pg_namespace n ON n.oid = r.relnamespace WHERE quote_ident(n.nspname) = $1 AND r.relname LIKE $2",
                &[&schema, &pattern],
            )
        })
        .map(|rows| {
            // By worker, so an upsert applies them in one order every time (rows of a key
            // staged by two workers: the higher worker's wins).
            let mut names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            names.sort_by_key(|n| stage_worker(n));
            names
        })
    }

    fn with_leader<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, String>) -> Result<T, String> {
        let mut guard = lock(&self.leader);
        let conn = match guard.as_mut() {
            Some(c) => c,
            None => guard.insert(Conn::open(&self.url)?),
        };
        f(conn)
    }

    /// Drops every staging table of this sink (a batch run's start and failure).
    pub fn drop_stages(&self) -> Result<(), String> {
        self.with_leader(|conn| {
            for t in self.stages(conn)? {
                conn.run("dropping a staging table", |c, _| c.batch_execute(&format!("DROP TABLE IF EXISTS {t}")))?;
            }
            Ok(())
        })
        .map_err(|e| format!("sink `{}`: {e}", self.name))
    }

    /// Loads rows of `worker` (in a stream, of `epoch`) into its staging table.
    pub fn write<R: Record>(&self, worker: usize, epoch: u64, rows: &mut Vec<R>) -> io::Result<()> {
        let first = {
            let mut seq = lock(&self.seq);
            let s = seq.entry(worker).or_insert(0);
            let first = *s;
            *s += rows.len() as i64;
            first
        };
        let mut data = Vec::with_capacity(rows.len() * 64 + 32);
        data.extend_from_slice(b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0");
        let fields = i16::try_from(self.columns.len() + 2).map_err(io::Error::other)?;
        crate::record::with_arrow_rows(|| -> io::Result<()> {
            for (i, row) in rows.iter().enumerate() {
                data.extend_from_slice(&fields.to_be_bytes());
                put(&mut data, Some(&(first + i as i64).to_be_bytes()));
                put(&mut data, Some(&(epoch as i64).to_be_bytes()));
                row.serialize(copy::RowSer { out: &mut data, columns: &self.columns, at: 0 })
                    .map_err(|e| io::Error::other(format!("sink `{}`: {e}", self.name)))?;
            }
            Ok(())
        })?;
        data.extend_from_slice(&(-1i16).to_be_bytes());
        rows.clear();
        self.load(worker, epoch, first, &data)
    }

    /// Loads rows encoded for `COPY … (FORMAT binary)`, the first numbered `first`, into the
    /// staging table of `worker`. Not generic: the client's code is compiled once, here.
    fn load(&self, worker: usize, epoch: u64, first: i64, data: &[u8]) -> io::Result<()> {
        let stage = self.stage(worker);
        let create = !lock(&self.created).contains(&worker);
        let cols: Vec<String> = self.columns.iter().map(|c| format!("{} {}", quote_ident(&c.name), c.sql)).collect();
        let create_sql = format!(
            "CREATE TABLE IF NOT EXISTS {stage} (_pipe_seq bigint NOT NULL, _pipe_epoch bigint NOT NULL, {})",
            cols.join(", ")
        );
        let mut conns = lock(&self.workers);
        let conn = match conns.get_mut(&worker) {
            Some(c) => c,
            None => conns.entry(worker).or_insert(Conn::open(&self.url).map_err(io::Error::other)?),
        };
        if create {
            conn.run("creating a staging table", |c, _| c.batch_execute(&create_sql))
                .map_err(|e| io::Error::other(format!("sink `{}`: {e}", self.name)))?;
            lock(&self.created).insert(worker);
        }
        if self.streaming {
            lock(&self.pending).entry(worker).or_default().insert(epoch);
        }
        let copy_sql = format!("COPY {stage} FROM STDIN (FORMAT binary)");
        let check_sql = format!("SELECT EXISTS (SELECT 1 FROM {stage} WHERE _pipe_seq = $1)");
        conn.run(&format!("loading rows into `{}`", self.table), |c, retried| -> Result<(), Fail> {
            // A copy whose acknowledgement was lost with the connection may have landed.
            if retried && c.query_one(&check_sql, &[&first])?.get::<_, bool>(0) {
                return Ok(());
            }
            let mut w = c.copy_in(copy_sql.as_str())?;
            w.write_all(data).map_err(Fail::Lost)?;
            w.finish()?;
            Ok(())
        })
        .map_err(|e| io::Error::other(format!("sink `{}`: {e}", self.name)))
    }

    /// The statement that moves staged rows (those `filter` selects) into the table.
    fn apply_sql(&self, stage: &str, filter: &str) -> String {
        let cols = self.columns.iter().map(|c| quote_ident(&c.name)).collect::<Vec<_>>().join(", ");
        match self.mode {
            PgMode::Append | PgMode::Replace => {
                format!("INSERT INTO {} ({cols}) SELECT {cols} FROM {stage}{filter} ORDER BY _pipe_seq", self.table)
            }
            PgMode::Upsert => {
                let key = self.key.iter().map(|k| quote_ident(k)).collect::<Vec<_>>().join(", ");
                let set: Vec<String> = self
                    .columns
                    .iter()
                    .filter(|c| !self.key.contains(&c.name))
                    .map(|c| format!("{0} = EXCLUDED.{0}", quote_ident(&c.name)))
                    .collect();
                let action =
                    if set.is_empty() { "NOTHING".to_string() } else { format!("UPDATE SET {}", set.join(", ")) };
                // The latest row of each key wins (an upsert may touch a row once per statement).
                format!(
                    "INSERT INTO {} ({cols}) SELECT {cols} FROM (SELECT DISTINCT ON ({key}) * FROM {stage}{filter} \
                     ORDER BY {key}, _pipe_epoch DESC, _pipe_seq DESC) latest ON CONFLICT ({key}) DO {action}",
                    self.table
                )
            }
        }
    }

    /// Publishes a batch run: every worker's staging table in one transaction (the table
    /// emptied first for `replace`), then the staging tables are dropped.
    pub fn commit_batch(&self) -> Result<(), String> {
        self.with_leader(|conn| {
            let stages = self.stages(conn)?;
            let mut statements = Vec::new();
            if self.mode == PgMode::Replace {
                statements.push(format!("DELETE FROM {}", self.table));
            }
            for s in &stages {
                statements.push(self.apply_sql(s, ""));
            }
            conn.run(&format!("publishing into `{}`", self.table), |c, retried| {
                // The transaction drops the staging tables: when a lost connection's commit
                // happened, they are gone and there is nothing left to do.
                if retried {
                    if let Some(first) = stages.first() {
                        let there: bool = c.query_one("SELECT to_regclass($1) IS NOT NULL", &[first])?.get(0);
                        if !there {
                            return Ok(());
                        }
                    }
                }
                let mut tx = c.transaction()?;
                for s in &statements {
                    tx.batch_execute(s)?;
                }
                for s in &stages {
                    tx.batch_execute(&format!("DROP TABLE {s}"))?;
                }
                tx.commit()
            })
        })
        .map_err(|e| format!("sink `{}`: {e}", self.name))
    }

    /// Publishes `worker`'s staged rows of epochs up to `epoch` (a stream, once the checkpoint
    /// that records the epoch is complete), in one transaction with the epoch's bookkeeping row.
    pub fn publish(&self, worker: usize, epoch: u64) -> Result<(), String> {
        let staged = {
            let mut pending = lock(&self.pending);
            let Some(epochs) = pending.get_mut(&worker) else { return Ok(()) };
            let later = epochs.split_off(&(epoch + 1));
            let staged = !epochs.is_empty();
            *epochs = later;
            staged
        };
        if !staged {
            return Ok(());
        }
        let stage = self.stage(worker);
        self.publish_stage(&stage, worker, epoch)
    }

    fn publish_stage(&self, stage: &str, worker: usize, epoch: u64) -> Result<(), String> {
        let e = epoch as i64;
        let filter = format!(" WHERE _pipe_epoch <= {e}");
        let apply = self.apply_sql(stage, &filter);
        let count = format!("SELECT count(*) FROM {stage}{filter}");
        let delete = format!("DELETE FROM {stage}{filter}");
        let (name, table) = (self.name.to_string(), self.table.clone());
        let w = worker as i32;
        self.with_leader(|conn| {
            conn.run(&format!("publishing epoch {epoch} into `{}`", self.table), |c, _| {
                let mut tx = c.transaction()?;
                let rows: i64 = tx.query_one(&count, &[])?.get(0);
                tx.batch_execute(&apply)?;
                tx.batch_execute(&delete)?;
                tx.execute(
                    "INSERT INTO pipe_sink_epochs (sink, target, worker, epoch, rows) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT DO NOTHING",
                    &[&name, &table, &w, &e, &rows],
                )?;
                tx.commit()
            })
        })
        .map_err(|e| format!("sink `{}`: {e}", self.name))
    }

    /// Before a stream starts: staged rows of epochs up to `committed` (recorded by the last
    /// checkpoint, not yet published when the run stopped) are published; later ones, which
    /// the restarted stream will write again, are deleted.
    pub fn recover(&self, committed: Option<u64>) -> Result<(), String> {
        let stages = self.with_leader(|conn| self.stages(conn)).map_err(|e| format!("sink `{}`: {e}", self.name))?;
        for stage in stages {
            let worker = stage_worker(&stage);
            if let Some(c) = committed {
                self.publish_stage(&stage, worker, c)?;
            }
            let keep = committed.map_or(-1, |c| c as i64);
            self.with_leader(|conn| {
                conn.run("dropping unrecorded staged rows", |c, _| {
                    c.batch_execute(&format!("DELETE FROM {stage} WHERE _pipe_epoch > {keep}"))
                })
            })
            .map_err(|e| format!("sink `{}`: {e}", self.name))?;
        }
        Ok(())
    }

    /// Before a stream starts (the leading process): a stream that has no checkpoint to go on
    /// from would write again every row an earlier stream published into the table, so it is
    /// refused while `pipe_sink_epochs` records such epochs, unless `reset` (which forgets them;
    /// the table's rows stay).
    pub fn check_start(&self, has_checkpoint: bool, reset: bool) -> Result<(), String> {
        let (name, table) = (self.name.to_string(), self.table.clone());
        let fail = |e: String| format!("sink `{}`: {e}", self.name);
        self.with_leader(|conn| {
            if reset {
                return conn.run("forgetting the published epochs (--reset)", |c, _| {
                    c.execute("DELETE FROM pipe_sink_epochs WHERE sink = $1 AND target = $2", &[&name, &table]).map(|_| ())
                });
            }
            if has_checkpoint {
                return Ok(());
            }
            let epochs: i64 = conn.run("reading pipe_sink_epochs", |c, _| {
                c.query_one("SELECT count(*) FROM pipe_sink_epochs WHERE sink = $1 AND target = $2", &[&name, &table])
                    .map(|r| r.get(0))
            })?;
            if epochs > 0 {
                return Err(format!(
                    "table `{table}` holds rows a stream published ({epochs} epochs in pipe_sink_epochs), but this run has no checkpoint to go on from: \
                     starting over would write those rows again. Run with the state directory that stream used, or pass `--reset` to start \
                     from the beginning anyway (the epochs are forgotten; the table's rows stay)"
                ));
            }
            Ok(())
        })
        .map_err(fail)
    }

    /// Where the rows go, for the run's summary.
    pub fn location(&self) -> String {
        format!("{} at {}", self.table, redact(&self.url))
    }
}

fn put(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            out.extend_from_slice(&(v.len() as i32).to_be_bytes());
            out.extend_from_slice(v);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// A row written as one tuple of a binary `COPY`, its fields in the columns' types.
mod copy {
    use serde::ser::{self, Impossible, Serialize};

    use super::{put, SinkColumn, PG_EPOCH_DAYS, PG_EPOCH_MICROS};

    #[derive(Debug)]
    pub struct Error(String);

    impl std::fmt::Display for Error {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Error {}
    impl ser::Error for Error {
        fn custom<T: std::fmt::Display>(msg: T) -> Error {
            Error(msg.to_string())
        }
    }

    fn wrong(col: &SinkColumn, what: &str) -> Error {
        Error(format!("column `{}` ({}) cannot take {what}", col.name, col.sql))
    }

    /// The whole row: a struct whose fields are the columns, in order.
    pub struct RowSer<'a> {
        pub out: &'a mut Vec<u8>,
        pub columns: &'a [SinkColumn],
        pub at: usize,
    }

    impl ser::SerializeStruct for RowSer<'_> {
        type Ok = ();
        type Error = Error;
        fn serialize_field<T: ?Sized + Serialize>(&mut self, _: &'static str, value: &T) -> Result<(), Error> {
            let Some(col) = self.columns.get(self.at) else {
                return Err(Error("a row with more fields than columns".into()));
            };
            self.at += 1;
            if col.sql == "jsonb" {
                // Nested values as JSON text, in the forms of JSON files (ISO timestamps).
                let v =
                    crate::record::with_text_rows(|| serde_json::to_vec(value)).map_err(|e| Error(e.to_string()))?;
                if v == b"null" {
                    put(self.out, None);
                } else {
                    let mut j = Vec::with_capacity(v.len() + 1);
                    j.push(1u8);
                    j.extend_from_slice(&v);
                    put(self.out, Some(&j));
                }
                return Ok(());
            }
            value.serialize(CellSer { out: self.out, col })
        }
        fn end(self) -> Result<(), Error> {
            Ok(())
        }
    }

    macro_rules! not_a_row {
        ($($f:ident($($t:ty),*) -> $r:ty;)*) => {$(
            fn $f(self, $(_: $t),*) -> Result<$r, Error> { Err(Error("a sink row must be a struct".into())) }
        )*};
    }

    impl<'a> ser::Serializer for RowSer<'a> {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = Impossible<(), Error>;
        type SerializeTuple = Impossible<(), Error>;
        type SerializeTupleStruct = Impossible<(), Error>;
        type SerializeTupleVariant = Impossible<(), Error>;
        type SerializeMap = Impossible<(), Error>;
        type SerializeStruct = RowSer<'a>;
        type SerializeStructVariant = Impossible<(), Error>;
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<RowSer<'a>, Error> {
            Ok(self)
        }
        not_a_row! {
            serialize_bool(bool) -> ();
            serialize_i8(i8) -> (); serialize_i16(i16) -> (); serialize_i32(i32) -> (); serialize_i64(i64) -> ();
            serialize_u8(u8) -> (); serialize_u16(u16) -> (); serialize_u32(u32) -> (); serialize_u64(u64) -> ();
            serialize_f32(f32) -> (); serialize_f64(f64) -> (); serialize_char(char) -> ();
            serialize_str(&str) -> (); serialize_bytes(&[u8]) -> (); serialize_none() -> (); serialize_unit() -> ();
            serialize_unit_struct(&'static str) -> ();
            serialize_unit_variant(&'static str, u32, &'static str) -> ();
            serialize_seq(Option<usize>) -> Self::SerializeSeq;
            serialize_tuple(usize) -> Self::SerializeTuple;
            serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
            serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
            serialize_map(Option<usize>) -> Self::SerializeMap;
            serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
        }
        fn serialize_some<T: ?Sized + Serialize>(self, _: &T) -> Result<(), Error> {
            Err(Error("a sink row must be a struct".into()))
        }
        fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<(), Error> {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Error> {
            Err(Error("a sink row must be a struct".into()))
        }
    }

    /// One column's value (rows are serialized in their Arrow forms: timestamps in
    /// milliseconds, dates in days, enums by name, doubles as they are).
    struct CellSer<'a> {
        out: &'a mut Vec<u8>,
        col: &'a SinkColumn,
    }

    impl CellSer<'_> {
        fn int(self, n: i64) -> Result<(), Error> {
            match self.col.sql {
                "bigint" => put(self.out, Some(&n.to_be_bytes())),
                "integer" => {
                    put(self.out, Some(&i32::try_from(n).map_err(|_| wrong(self.col, "this value"))?.to_be_bytes()))
                }
                "double precision" => put(self.out, Some(&(n as f64).to_be_bytes())),
                "timestamptz" => {
                    let micros = n.checked_mul(1000).and_then(|m| m.checked_sub(PG_EPOCH_MICROS));
                    put(
                        self.out,
                        Some(&micros.ok_or_else(|| wrong(self.col, "a timestamp this far out"))?.to_be_bytes()),
                    );
                }
                "date" => {
                    let d = i32::try_from(n).ok().and_then(|d| d.checked_sub(PG_EPOCH_DAYS));
                    put(self.out, Some(&d.ok_or_else(|| wrong(self.col, "a date this far out"))?.to_be_bytes()));
                }
                _ => return Err(wrong(self.col, "an integer")),
            }
            Ok(())
        }
    }

    impl<'a> ser::Serializer for CellSer<'a> {
        type Ok = ();
        type Error = Error;
        type SerializeSeq = Bytes<'a>;
        type SerializeTuple = Impossible<(), Error>;
        type SerializeTupleStruct = Impossible<(), Error>;
        type SerializeTupleVariant = Impossible<(), Error>;
        type SerializeMap = Impossible<(), Error>;
        type SerializeStruct = Impossible<(), Error>;
        type SerializeStructVariant = Impossible<(), Error>;

        fn serialize_bool(self, v: bool) -> Result<(), Error> {
            if self.col.sql != "boolean" {
                return Err(wrong(self.col, "a boolean"));
            }
            put(self.out, Some(&[u8::from(v)]));
            Ok(())
        }
        fn serialize_i8(self, v: i8) -> Result<(), Error> {
            self.int(i64::from(v))
        }
        fn serialize_i16(self, v: i16) -> Result<(), Error> {
            self.int(i64::from(v))
        }
        fn serialize_i32(self, v: i32) -> Result<(), Error> {
            self.int(i64::from(v))
        }
        fn serialize_i64(self, v: i64) -> Result<(), Error> {
            self.int(v)
        }
        fn serialize_u8(self, v: u8) -> Result<(), Error> {
            self.int(i64::from(v))
        }
        fn serialize_u16(self, v: u16) -> Result<(), Error> {
            self.int(i64::from(v))
        }
        fn serialize_u32(self, v: u32) -> Result<(), Error> {
            self.int(i64::from(v))
        }
        fn serialize_u64(self, v: u64) -> Result<(), Error> {
            let n = i64::try_from(v).map_err(|_| wrong(self.col, "this value"))?;
            self.int(n)
        }
        fn serialize_f32(self, v: f32) -> Result<(), Error> {
            self.serialize_f64(f64::from(v))
        }
        fn serialize_f64(self, v: f64) -> Result<(), Error> {
            if self.col.sql != "double precision" {
                return Err(wrong(self.col, "a double"));
            }
            put(self.out, Some(&v.to_be_bytes()));
            Ok(())
        }
        fn serialize_char(self, v: char) -> Result<(), Error> {
            self.serialize_str(&v.to_string())
        }
        fn serialize_str(self, v: &str) -> Result<(), Error> {
            if self.col.sql != "text" {
                return Err(wrong(self.col, "text"));
            }
            put(self.out, Some(v.as_bytes()));
            Ok(())
        }
        fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
            if self.col.sql != "bytea" {
                return Err(wrong(self.col, "bytes"));
            }
            put(self.out, Some(v));
            Ok(())
        }
        fn serialize_none(self) -> Result<(), Error> {
            put(self.out, None);
            Ok(())
        }
        fn serialize_some<T: ?Sized + Serialize>(self, v: &T) -> Result<(), Error> {
            v.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), Error> {
            self.serialize_none()
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<(), Error> {
            self.serialize_none()
        }
        fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Result<(), Error> {
            self.serialize_str(variant)
        }
        fn serialize_newtype_struct<T: ?Sized + Serialize>(self, _: &'static str, v: &T) -> Result<(), Error> {
            v.serialize(self)
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Error> {
            Err(wrong(self.col, "a variant"))
        }
        fn serialize_seq(self, len: Option<usize>) -> Result<Bytes<'a>, Error> {
            // Only binary values are sequences here (nested values are JSON columns).
            if self.col.sql != "bytea" {
                return Err(wrong(self.col, "a list"));
            }
            Ok(Bytes { out: self.out, bytes: Vec::with_capacity(len.unwrap_or(0)) })
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, Error> {
            Err(wrong(self.col, "a tuple"))
        }
        fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeTupleStruct, Error> {
            Err(wrong(self.col, "a tuple"))
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, Error> {
            Err(wrong(self.col, "a variant"))
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, Error> {
            Err(wrong(self.col, "a map"))
        }
        fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, Error> {
            Err(wrong(self.col, "a struct"))
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, Error> {
            Err(wrong(self.col, "a variant"))
        }
    }

    /// A binary value serialized as a sequence of bytes (serde's form of `Vec<u8>`).
    pub struct Bytes<'a> {
        out: &'a mut Vec<u8>,
        bytes: Vec<u8>,
    }

    impl ser::SerializeSeq for Bytes<'_> {
        type Ok = ();
        type Error = Error;
        fn serialize_element<T: ?Sized + Serialize>(&mut self, v: &T) -> Result<(), Error> {
            let b = serde_json::to_value(v).ok().and_then(|v| v.as_u64()).and_then(|b| u8::try_from(b).ok());
            self.bytes.push(b.ok_or_else(|| Error("a binary value holds something other than bytes".into()))?);
            Ok(())
        }
        fn end(self) -> Result<(), Error> {
            put(self.out, Some(&self.bytes));
            Ok(())
        }
    }
}
