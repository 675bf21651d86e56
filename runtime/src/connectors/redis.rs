//! Redis, an online feature store (the runtime's `redis` feature).
//!
//! Each row becomes one hash, `PREFIX` + its key values joined by `:`, holding the row's
//! fields as text (numbers in decimal, timestamps in RFC 3339, nested values as JSON; a null
//! field is removed from the hash) and `_pipe_version`, the row's version (its window end, or
//! the field `version` names) in milliseconds. One Lua script writes a row atomically unless
//! the hash holds a newer version, so a re-fired or replayed window never overwrites a newer
//! one, and refreshes the hash's TTL. Rows go in pipelines of `EVALSHA` calls.
//!
//! A batch run spools its rows in a temporary file per process and writes them only once the
//! whole run succeeded; a stream writes an epoch's rows as they come (a replay after a crash
//! writes the same versions again, which changes nothing).

use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::redact;
use crate::sink::Record;

/// Writes a row unless the hash holds a newer version. KEYS[1] the hash; ARGV[1] the version
/// (`''` for none), ARGV[2] the TTL in ms (`0` for none), ARGV[3] the number n of fields set,
/// then n field/value pairs, then the fields to remove. Returns 1 when written, 0 when older.
const WRITE_ROW: &str = r"
local version = ARGV[1]
if version ~= '' then
  local held = redis.call('HGET', KEYS[1], '_pipe_version')
  if held and tonumber(held) > tonumber(version) then return 0 end
end
local n = tonumber(ARGV[3])
local set = {}
for i = 0, n - 1 do
  set[#set + 1] = ARGV[4 + 2 * i]
  set[#set + 1] = ARGV[5 + 2 * i]
end
if version ~= '' then
  set[#set + 1] = '_pipe_version'
  set[#set + 1] = version
end
if #set > 0 then redis.call('HSET', KEYS[1], unpack(set)) end
for i = 4 + 2 * n, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
if tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
";

/// How long a connection lost mid-run is retried, with backoff, before the run fails.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// One row, as it is written: its hash, version, fields set and fields removed.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Entry {
    key: String,
    version: Option<i64>,
    set: Vec<(String, String)>,
    unset: Vec<String>,
}

/// A Redis sink of one run.
pub struct RedisSink {
    name: &'static str,
    url: String,
    prefix: String,
    key: Vec<String>,
    version: Option<String>,
    ttl_ms: i64,
    streaming: bool,
    conn: Mutex<Option<(redis::Connection, String)>>,
    /// A batch run's rows, until the run has succeeded.
    spool: Mutex<Option<(std::path::PathBuf, BufWriter<std::fs::File>)>>,
}

impl Drop for RedisSink {
    /// A spool left by a run that never committed is removed with the sink.
    fn drop(&mut self) {
        self.abandon();
    }
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedisSink({} at {})", self.name, redact(&self.url))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether an error is the connection's (worth reconnecting for).
fn transient(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

impl RedisSink {
    /// Connects (a clear error naming the URL, without its password, when nobody answers).
    #[allow(clippy::too_many_arguments, reason = "a sink's whole declaration")]
    pub fn open(
        name: &'static str,
        url: &str,
        prefix: &str,
        key: &[String],
        version: Option<&str>,
        ttl_ms: i64,
        streaming: bool,
    ) -> Result<RedisSink, String> {
        let sink = RedisSink {
            name,
            url: url.to_string(),
            prefix: prefix.to_string(),
            key: key.to_vec(),
            version: version.map(str::to_string),
            ttl_ms,
            streaming,
            conn: Mutex::new(None),
            spool: Mutex::new(None),
        };
        let conn = sink.connect().map_err(|e| format!("sink `{name}`: {e}"))?;
        *lock(&sink.conn) = Some(conn);
        Ok(sink)
    }

    /// A connection with the script loaded (its SHA1).
    fn connect(&self) -> Result<(redis::Connection, String), String> {
        let at = format!("cannot connect to Redis at `{}`", redact(&self.url));
        let client = redis::Client::open(self.url.as_str()).map_err(|e| format!("{at}: {e}"))?;
        let mut c = client.get_connection_with_timeout(Duration::from_secs(5)).map_err(|e| format!("{at}: {e}"))?;
        let sha: String =
            redis::cmd("SCRIPT").arg("LOAD").arg(WRITE_ROW).query(&mut c).map_err(|e| format!("{at}: {e}"))?;
        Ok((c, sha))
    }

    /// A row's entry: its fields in their text forms, its key and version.
    fn entry<R: Record>(&self, row: &R) -> Result<Entry, String> {
        let value = crate::record::with_text_rows(|| serde_json::to_value(row)).map_err(|e| e.to_string())?;
        let serde_json::Value::Object(fields) = value else { return Err("a row that is not a struct".into()) };
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        };
        let mut key = self.prefix.clone();
        for (i, k) in self.key.iter().enumerate() {
            if i > 0 {
                key.push(':');
            }
            match fields.get(k).and_then(text) {
                // `:` and `\` inside a value are escaped, so two keys never name one hash.
                Some(v) => {
                    for ch in v.chars() {
                        if ch == ':' || ch == '\\' {
                            key.push('\\');
                        }
                        key.push(ch);
                    }
                }
                None => return Err(format!("the key `{k}` is null")),
            }
        }
        let version = match self.version.as_ref().and_then(|v| fields.get(v)) {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => crate::f::parse_iso(s),
            _ => None,
        };
        let mut entry = Entry { key, version, set: Vec::new(), unset: Vec::new() };
        for c in R::COLUMNS {
            match fields.get(*c).and_then(text) {
                Some(v) => entry.set.push(((*c).to_string(), v)),
                None => entry.unset.push((*c).to_string()),
            }
        }
        Ok(entry)
    }

    /// Takes rows: a stream writes them now; a batch run spools them until it has succeeded.
    pub fn write<R: Record>(&self, rows: &mut Vec<R>) -> io::Result<()> {
        let fail = |e: String| io::Error::other(format!("sink `{}`: {e}", self.name));
        let entries: Vec<Entry> = rows.iter().map(|r| self.entry(r)).collect::<Result<_, _>>().map_err(fail)?;
        rows.clear();
        if self.streaming {
            return self.send(&entries).map_err(fail);
        }
        let mut spool = lock(&self.spool);
        if spool.is_none() {
            let path = std::env::temp_dir().join(format!(
                "pipe-redis-{}-{}-{}.spool",
                std::process::id(),
                self.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
                crate::record::id_of(&self.url)
            ));
            let file = std::fs::File::create(&path)
                .map_err(|e| fail(format!("cannot spool rows in `{}`: {e}", path.display())))?;
            *spool = Some((path, BufWriter::new(file)));
        }
        if let Some((_, w)) = spool.as_mut() {
            for e in &entries {
                serde_json::to_writer(&mut *w, e).map_err(io::Error::other)?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Writes what a batch run spooled (called once the run has succeeded), then removes it.
    pub fn commit_batch(&self) -> Result<(), String> {
        let Some((path, mut w)) = lock(&self.spool).take() else { return Ok(()) };
        let fail = |e: String| format!("sink `{}`: {e}", self.name);
        w.flush().map_err(|e| fail(e.to_string()))?;
        drop(w);
        let file = std::fs::File::open(&path).map_err(|e| fail(e.to_string()))?;
        let mut batch = Vec::with_capacity(crate::sink::FLUSH_ROWS);
        let mut result = Ok(());
        for line in BufReader::new(file).lines() {
            let line = line.map_err(|e| fail(e.to_string()))?;
            batch.push(serde_json::from_str::<Entry>(&line).map_err(|e| fail(e.to_string()))?);
            if batch.len() >= crate::sink::FLUSH_ROWS {
                result = self.send(&batch).map_err(fail);
                batch.clear();
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok() && !batch.is_empty() {
            result = self.send(&batch).map_err(fail);
        }
        let _ = std::fs::remove_file(&path);
        result
    }

    /// Drops what a failed batch run spooled.
    pub fn abandon(&self) {
        if let Some((path, _)) = lock(&self.spool).take() {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Writes entries in one pipeline, again (on a new connection) when the connection is lost
    /// or the server forgot the script: every write is idempotent.
    fn send(&self, entries: &[Entry]) -> Result<(), String> {
        if entries.is_empty() {
            return Ok(());
        }
        let start = Instant::now();
        let mut wait = Duration::from_millis(100);
        loop {
            let mut guard = lock(&self.conn);
            let (conn, sha) = match guard.as_mut() {
                Some(c) => c,
                None => match self.connect() {
                    Ok(c) => guard.insert(c),
                    Err(e) if start.elapsed() < RETRY_FOR => {
                        let _ = e;
                        drop(guard);
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(Duration::from_secs(2));
                        continue;
                    }
                    Err(e) => return Err(format!("{e} (gave up after {} s)", RETRY_FOR.as_secs())),
                },
            };
            let mut pipe = redis::pipe();
            for e in entries {
                let cmd = pipe.cmd("EVALSHA").arg(sha.as_str()).arg(1).arg(&e.key);
                cmd.arg(e.version.map(|v| v.to_string()).unwrap_or_default()).arg(self.ttl_ms).arg(e.set.len());
                for (f, v) in &e.set {
                    cmd.arg(f).arg(v);
                }
                for f in &e.unset {
                    cmd.arg(f);
                }
                cmd.ignore();
            }
            match pipe.query::<()>(conn) {
                Ok(()) => return Ok(()),
                Err(e) if (transient(&e) || e.code() == Some("NOSCRIPT")) && start.elapsed() < RETRY_FOR => {
                    *guard = None;
                    drop(guard);
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(format!("writing to Redis at `{}`: {e}", redact(&self.url)));
                }
            }
        }
    }
}
