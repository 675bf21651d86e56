//! Where records come from in a stream. Batch inputs are planned into splits by
//! [`crate::input`]; the stream bindings have readers here: files (`follow`, `stdin`) always,
//! Kafka with the `kafka` feature (without it, a Kafka binding is refused at start).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

pub mod files;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "s3")]
pub mod s3;

/// Why an `s3://` location cannot be used by a binary built without the `s3` feature.
#[cfg(not(feature = "s3"))]
pub const NO_S3: &str =
    "this binary was built without object store support (pipec enables it for pipelines that use `s3`)";

/// `s3://` + the bucket and key of an `s3(…)` connector's argument (written with or without the
/// scheme).
pub fn s3_url(path: &str) -> String {
    if path.starts_with("s3://") {
        path.to_string()
    } else {
        format!("s3://{}", path.trim_start_matches('/'))
    }
}

/// The splits of the objects an `s3://bucket/glob` names (see `s3::plan`).
pub fn s3_plan(
    source: usize,
    url: &str,
    format: crate::input::Format,
    workers: usize,
) -> Result<Vec<crate::input::Split>, String> {
    #[cfg(feature = "s3")]
    return s3::plan(source, url, format, workers);
    #[cfg(not(feature = "s3"))]
    {
        let _ = (source, format, workers);
        Err(format!("`{url}`: {NO_S3}"))
    }
}

#[cfg(not(feature = "kafka"))]
const NO_KAFKA: &str = "this binary was built without Kafka support (pipec enables it for pipelines that use `kafka`)";

/// The URL with its password replaced by `***`: the user-info of a URL, a `password=` query
/// parameter, and the `password` of a `key=value` string (quoted or not, spaces around `=` or
/// not).
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (auth_end, query) = (rest.find(['/', '?']).unwrap_or(rest.len()), rest.find('?'));
        let mut out = format!("{scheme}://");
        match rest[..auth_end].rfind('@') {
            Some(at) => match rest[..at].split_once(':') {
                Some((user, _)) => out.push_str(&format!("{user}:***{}", &rest[at..auth_end])),
                None => out.push_str(&rest[..auth_end]),
            },
            None => out.push_str(&rest[..auth_end]),
        }
        let path_end = query.unwrap_or(rest.len());
        out.push_str(&rest[auth_end.min(path_end)..path_end]);
        if let Some(q) = query {
            let params: Vec<String> = rest[q + 1..]
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            out.push('?');
            out.push_str(&params.join("&"));
        }
        return out;
    }
    // `key=value` pairs: values may be quoted ('a b', with \' inside) and `=` may have spaces.
    let mut out = String::new();
    let mut rest = url;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim();
        out.push_str(&rest[..=eq]);
        let after = &rest[eq + 1..];
        let value_start = after.len() - after.trim_start().len();
        let v = &after[value_start..];
        let len = if let Some(quoted) = v.strip_prefix('\'') {
            let mut end = quoted.len();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                if c == '\\' {
                    chars.next();
                } else if c == '\'' {
                    end = i + 1;
                    break;
                }
            }
            1 + end
        } else {
            v.find(char::is_whitespace).unwrap_or(v.len())
        };
        out.push_str(&after[..value_start]);
        if key.rsplit(char::is_whitespace).next().is_some_and(|k| k.eq_ignore_ascii_case("password")) {
            out.push_str("***");
        } else {
            out.push_str(&v[..len]);
        }
        rest = &v[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted_in_every_form() {
        assert_eq!(redact("postgresql://u:s3cret@h:5432/db"), "postgresql://u:***@h:5432/db");
        assert_eq!(redact("redis://:s3cret@h:6379/0"), "redis://:***@h:6379/0");
        assert_eq!(
            redact("postgresql://u@h/db?sslmode=off&password=s3cret"),
            "postgresql://u@h/db?sslmode=off&password=***"
        );
        assert_eq!(redact("postgresql://h/db"), "postgresql://h/db");
        assert_eq!(redact("host=h password=s3cret user=u"), "host=h password=*** user=u");
        assert_eq!(redact("host=h password = 's3 cr\\'et' user=u"), "host=h password = *** user=u");
        assert_eq!(redact("password='a b'"), "password=***");
        for r in [redact("host=h password = 's3 cr\\'et' user=u"), redact("password='s3 cret'")] {
            assert!(!r.contains("s3"), "{r}");
        }
    }
}

/// The name a partition's position has in checkpoints and in rejected records' positions.
pub fn position_name(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

/// The partition a position name (`topic/partition`) names.
pub fn partition_of(name: &str) -> Option<i32> {
    name.rsplit('/').next()?.parse().ok()
}

/// The worker of `workers` that reads partition `p` (the same on every process).
pub fn partition_owner(partition: i32, workers: usize) -> usize {
    usize::try_from(partition).unwrap_or(0) % workers.max(1)
}

/// What one partition's reader knows, for the watermark and the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct PartitionState {
    /// The next offset to read.
    pub position: i64,
    /// The partition's end offset, as last asked (-1 before the first answer).
    pub high: i64,
    /// When the last message came.
    pub last_message: Option<Instant>,
}

impl PartitionState {
    /// Messages produced and not read yet.
    pub fn lag(&self) -> i64 {
        if self.high < 0 {
            0
        } else {
            (self.high - self.position).max(0)
        }
    }
}

/// What a worker's Kafka reader shares with the worker: its partitions' state, and the
/// offsets of the last published checkpoint for it to commit to the group.
#[derive(Debug, Default)]
pub struct ReaderShared {
    pub partitions: Mutex<BTreeMap<i32, PartitionState>>,
    pub commit: Mutex<Option<BTreeMap<i32, i64>>>,
}

/// The partitions of a Kafka topic, asked of its brokers.
pub fn kafka_partitions(decl: &crate::input::KafkaDecl) -> Result<Vec<i32>, String> {
    #[cfg(feature = "kafka")]
    return kafka::partitions(decl);
    #[cfg(not(feature = "kafka"))]
    {
        let _ = decl;
        Err(NO_KAFKA.into())
    }
}

/// Follows partitions of a Kafka topic (see `kafka::follow`).
#[allow(clippy::too_many_arguments, reason = "a reader's whole configuration")]
pub fn kafka_follow(
    source: usize,
    decl: &crate::input::KafkaDecl,
    header: Option<std::sync::Arc<csv::ByteRecord>>,
    group: &str,
    parts: &[i32],
    resume: &files::Positions,
    tx: &std::sync::mpsc::SyncSender<files::Msg>,
    stop: &std::sync::atomic::AtomicBool,
    shared: &ReaderShared,
) -> Result<(), String> {
    #[cfg(feature = "kafka")]
    return kafka::follow(source, decl, header, group, parts, resume, tx, stop, shared);
    #[cfg(not(feature = "kafka"))]
    {
        let _ = (source, decl, header, group, parts, resume, tx, stop, shared);
        Err(NO_KAFKA.into())
    }
}

/// Reads one partition of a Kafka topic up to its end offset now (see `kafka::read_bounded`).
pub fn kafka_read_bounded(
    decl: &crate::input::KafkaDecl,
    group: &str,
    partition: i32,
    take: &mut dyn FnMut(&[u8], &crate::record::MessageMeta),
) -> Result<u64, String> {
    #[cfg(feature = "kafka")]
    return kafka::read_bounded(decl, group, partition, take);
    #[cfg(not(feature = "kafka"))]
    {
        let _ = (decl, group, partition, take);
        Err(NO_KAFKA.into())
    }
}

#[cfg(not(feature = "postgres"))]
const NO_POSTGRES: &str =
    "this binary was built without PostgreSQL support (pipec enables it for pipelines that use `postgres`)";

#[cfg(feature = "postgres")]
pub use postgres::{PgPlan, PgRange};

/// One unit of a PostgreSQL source's read (never built without the `postgres` feature).
#[cfg(not(feature = "postgres"))]
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PgRange {
    pub label: String,
}

/// A planned PostgreSQL source (never built without the `postgres` feature).
#[cfg(not(feature = "postgres"))]
#[derive(Debug)]
pub struct PgPlan {
    pub ranges: Vec<PgRange>,
    pub hold: Option<()>,
}

/// Checks a PostgreSQL source's columns and cuts it into ranges (see `postgres::plan`).
pub fn pg_plan(name: &str, src: &crate::input::PgSource, workers: usize) -> Result<PgPlan, String> {
    #[cfg(feature = "postgres")]
    return postgres::plan(name, src, workers);
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (name, src, workers);
        Err(NO_POSTGRES.into())
    }
}

/// What takes a PostgreSQL source's rows: each as a JSON line, with its number in its range.
pub type TakeRow<'a> = dyn FnMut(&[u8], u64) -> Result<(), String> + 'a;

/// Reads one range of a PostgreSQL source, each row as a JSON line (see `postgres::read`).
pub fn pg_read(src: &crate::input::PgSource, range: &PgRange, take: &mut TakeRow<'_>) -> Result<u64, String> {
    #[cfg(feature = "postgres")]
    return postgres::read(src, range, take);
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (src, range, take);
        Err(NO_POSTGRES.into())
    }
}
