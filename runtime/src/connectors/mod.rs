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

#[cfg(not(feature = "kafka"))]
const NO_KAFKA: &str = "this binary was built without Kafka support (pipec enables it for pipelines that use `kafka`)";

/// The URL with its password replaced by `***` (URL form and `key=value` form).
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://").map(|(s, r)| (&url[..s.len() + 3], r)) {
        let (auth, host) = match rest.rfind('@') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => return url.to_string(),
        };
        return match auth.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***{host}"),
            None => url.to_string(),
        };
    }
    url.split_whitespace()
        .map(|kv| if kv.starts_with("password=") { "password=***".to_string() } else { kv.to_string() })
        .collect::<Vec<_>>()
        .join(" ")
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
#[derive(Clone, Debug)]
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
