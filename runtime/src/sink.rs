//! Sinks: rows buffered per worker and partition, written as JSON Lines, CSV or Parquet into a
//! temporary directory, and moved into place only when the whole run succeeded, so readers
//! never see half-written output.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;

use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::SchemaDescriptor;

pub use crate::pq::write::{Columns, Scratch};

use crate::value::Cell;

/// Rows a worker buffers per sink before writing them out.
pub const FLUSH_ROWS: usize = 16_384;

/// Emptied Parquet columns a sink keeps for the next partitions (each up to a row group's
/// buffers, a few megabytes).
const SPARE_COLUMNS: usize = 4;

/// A Parquet partition that took none of the last this many rows of its sink is written out,
/// its row group ended early: partitions by event day see their rows day after day, and the
/// days past are done. Measured on the ingest benchmark (BENCHMARKS.md): without it some 36 days
/// waited for [`FLUSH_ROWS`]` * 8` rows in all, each in columns of its own, allocated, freed
/// and allocated again — 7% of the run's CPU time, most of it the kernel zeroing pages.
const IDLE_ROWS: usize = 2 * FLUSH_ROWS;

/// A row type a sink can write. Generated code implements it for every row that reaches a sink.
pub trait Record: serde::Serialize + Send + Sized {
    /// Column names, in order.
    const COLUMNS: &'static [&'static str];
    /// The Parquet message type of the row.
    const PARQUET_SCHEMA: &'static str;
    /// The Arrow fields of the row, in serde_arrow's JSON form (see `crate::arrow`).
    const ARROW_SCHEMA: &'static str;
    /// Appends the row's cells, as CSV text.
    fn cells(&self, out: &mut Vec<String>);
    /// Appends the row's values to the Parquet columns of its partition, by column number.
    fn parquet_row(&self, c: &mut Columns);
    /// `rows` as one Arrow record batch of `fields` ([`crate::arrow::to_batch`]). Generated
    /// code implements it only in programs that write Arrow: elsewhere serde_arrow's
    /// serializer is not compiled for every row type a sink writes.
    #[cfg(feature = "arrow")]
    fn arrow_batch(fields: &[crate::arrow::FieldRef], rows: &[Self]) -> io::Result<crate::arrow::RecordBatch> {
        let _ = (fields, rows);
        Err(io::Error::other("internal: a row type written as Arrow by a program that writes no Arrow"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkFormat {
    Json,
    Csv,
    Parquet,
    /// Arrow IPC files (the runtime's `arrow` feature).
    Arrow,
}

impl SinkFormat {
    /// The format's name in the language (`format = …`).
    pub fn name(self) -> &'static str {
        match self {
            SinkFormat::Json => "json",
            SinkFormat::Csv => "csv",
            SinkFormat::Parquet => "parquet",
            SinkFormat::Arrow => "arrow",
        }
    }
}

#[derive(Clone, Debug)]
pub enum SinkKind {
    /// A directory of files, one folder per partition.
    Files {
        format: SinkFormat,
    },
    Stdout {
        format: SinkFormat,
    },
    /// A Kafka topic: one JSON message per row, keyed by the sink's `key` (the partition text
    /// its buffer groups rows by) when `keyed`.
    Kafka {
        topic: String,
        brokers: String,
        keyed: bool,
    },
    /// A PostgreSQL table (the runtime's `postgres` feature): rows staged per worker with
    /// binary `COPY`, published in one transaction per run (batch) or per epoch (stream).
    Postgres {
        url: String,
        table: String,
        /// The columns an upsert replaces rows by (the created table's primary key).
        key: Vec<String>,
        mode: PgMode,
        /// The rows' Parquet message type: their columns and types.
        schema: &'static str,
    },
    /// Redis hashes, one per key (the runtime's `redis` feature): `prefix` + the `key` columns'
    /// values joined by `:`, each written unless it holds a newer `version`.
    Redis {
        url: String,
        prefix: String,
        key: Vec<String>,
        /// The column whose value (milliseconds) orders a key's rows; none: the last wins.
        version: Option<String>,
        /// How long a hash lives after its last write (0: for ever).
        ttl_ms: i64,
    },
}

/// How a PostgreSQL sink's rows meet the table's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgMode {
    /// Added to the rows there.
    Append,
    /// The run's rows replace the table's (a batch run only).
    Replace,
    /// A row replaces the table's row with the same key, or is added.
    Upsert,
}

#[derive(Clone, Debug)]
pub struct SinkDecl {
    pub name: &'static str,
    pub kind: SinkKind,
    /// The directory (for file sinks).
    pub location: Option<String>,
    /// The default home of rejected records: `rejected/` beside the first file sink's
    /// directory, wherever options put that.
    pub beside_first: bool,
}

enum Open {
    Text(BufWriter<File>),
    Parquet(Box<ParquetFile>),
    /// An Arrow IPC file, with the fields of its rows.
    #[cfg(feature = "arrow")]
    Arrow(Box<(arrow_ipc::writer::FileWriter<BufWriter<File>>, Vec<crate::arrow::FieldRef>)>),
}

/// An open file of a sink, locked by the worker writing into it; `None` once closed.
type SharedFile = Arc<Mutex<Option<Open>>>;

/// A Parquet file being written, through a buffer of [`PARQUET_BUFFER`] bytes.
struct ParquetFile {
    w: SerializedFileWriter<BufWriter<File>>,
}

/// The write buffer of a Parquet file: the parquet crate's own is 8 KiB, and an ingest of
/// 349 MB made 46,453 `write` calls through it; 2,924 through this one (4–7% less CPU). Every
/// open file holds one (an ingest keeps 100 open): 1 MiB took 95 MB more memory for 1% more.
const PARQUET_BUFFER: usize = 128 << 10;

/// How sinks write Parquet: snappy, as DuckDB and Spark write by default. No dictionaries:
/// measured on the ingest benchmark they cost 15% of the run (pseudonyms, amounts and times are
/// nearly all distinct) for 1% smaller files.
fn parquet_props() -> WriterProperties {
    WriterProperties::builder().set_compression(Compression::SNAPPY).set_dictionary_enabled(false).build()
}

/// What a sink's files are opened with: a row type's CSV columns, Parquet schema and Arrow
/// fields ([`Record`]'s constants).
struct Schema {
    columns: &'static [&'static str],
    parquet: &'static str,
    #[cfg(feature = "arrow")]
    arrow: &'static str,
}

struct SinkOut {
    decl: SinkDecl,
    /// For stdout CSV: whether the header has been printed.
    header_done: std::sync::atomic::AtomicBool,
    final_dir: Option<PathBuf>,
    tmp_dir: Option<PathBuf>,
    /// Open files by (worker, partition): each worker writes its own part of every partition,
    /// so workers never share a file and names never collide across processes. The map's lock
    /// is held only to find a file; each file has its own, so workers encode their Parquet row
    /// groups at the same time (`None` once closed).
    files: Mutex<HashMap<(usize, String), SharedFile>>,
    /// A Kafka sink's producer, shared by the process's workers.
    #[cfg(feature = "kafka")]
    producer: Option<crate::connectors::kafka::Producer>,
    /// A PostgreSQL sink's connections and staging tables.
    #[cfg(feature = "postgres")]
    pg: Option<crate::connectors::postgres::PgSink>,
    /// A Redis sink's connection and (batch) spool.
    #[cfg(feature = "redis")]
    redis: Option<crate::connectors::redis::RedisSink>,
    /// An object-store sink (`s3://…`): its files are written into `tmp_dir` on this machine,
    /// then uploaded.
    #[cfg(feature = "s3")]
    s3: Option<crate::connectors::s3::S3Sink>,
    /// The lock on an object-store sink's prefix, held for the whole run (by the leading process).
    #[cfg(feature = "s3")]
    _s3_lock: Option<crate::connectors::s3::PrefixLock>,
    /// A batch run's local folder for an object-store sink's files, removed with the sink.
    _stage: Option<TempStage>,
    /// The lock on the sink's directory, held for the whole run (by the leading process).
    _lock: Option<File>,
}

/// Every sink of a run.
pub struct Outputs {
    sinks: Vec<SinkOut>,
    /// An in-memory run: sink buffers keep their rows for the caller and nothing is written.
    memory: bool,
    /// Whether this is a streaming run (files per epoch, published by checkpoints).
    streaming: bool,
    /// The parts every worker of the cluster uploaded to object-store sinks (batch, leader).
    uploaded: Mutex<Vec<Uploaded>>,
}

/// One file a batch run's worker uploaded to an object-store sink: sink number, key relative
/// to the sink's prefix, size.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Uploaded {
    pub sink: usize,
    pub key: String,
    pub bytes: u64,
}

/// Where one worker's sink rows go: the run's outputs, the worker's number in the cluster and
/// (streaming) the epoch its rows will be published with. Every worker has its own.
#[derive(Debug)]
pub struct SinkTo {
    pub outputs: Arc<Outputs>,
    pub worker: usize,
    epoch: std::cell::Cell<u64>,
}

impl SinkTo {
    pub fn new(outputs: Arc<Outputs>, worker: usize, epoch: u64) -> SinkTo {
        SinkTo { outputs, worker, epoch: std::cell::Cell::new(epoch) }
    }

    /// The epoch rows are being written for (streaming).
    pub fn epoch(&self) -> u64 {
        self.epoch.get()
    }

    /// Writes rows of one partition of one sink, leaving `rows` empty.
    pub fn write<R: Record>(&self, sink: usize, partition: &str, rows: &mut Vec<R>) -> io::Result<()> {
        self.outputs.write(self.worker, self.epoch.get(), sink, partition, rows)
    }

    /// Writes the rows `cols` holds, of one partition of a Parquet file sink, as the next row
    /// group of this worker's file, leaving `cols` empty.
    pub fn write_columns<R: Record>(
        &self,
        sink: usize,
        partition: &str,
        cols: &mut Columns,
        scratch: &mut Scratch,
    ) -> io::Result<()> {
        self.outputs.write_columns::<R>(self.worker, self.epoch.get(), sink, partition, cols, scratch)
    }

    /// Finishes this worker's files of the current epoch and starts the next (streaming): the
    /// closed files wait in the in-progress folder until [`Outputs::publish`] moves them.
    pub fn close_epoch(&self) -> io::Result<u64> {
        let e = self.epoch.get();
        self.outputs.close(Some(self.worker), true)?;
        self.epoch.set(e + 1);
        Ok(e)
    }
}

/// The folder inside a streaming file sink's directory where an epoch's files are written
/// before they are published.
pub const IN_PROGRESS: &str = ".pipe-inprogress";

impl std::fmt::Debug for Outputs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.sinks.iter().map(|s| s.decl.name)).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A pipeline that uses PostgreSQL was built without the runtime's `postgres` feature.
#[cfg(not(feature = "postgres"))]
fn no_postgres(sink: &str) -> io::Error {
    io::Error::other(format!(
        "sink `{sink}`: this binary was built without PostgreSQL support (pipec enables it for pipelines that use `postgres`)"
    ))
}

/// The PostgreSQL side of a sink, when it is one.
#[cfg(feature = "postgres")]
fn pg_of(s: &SinkOut) -> Option<&crate::connectors::postgres::PgSink> {
    s.pg.as_ref()
}

/// A pipeline that writes Arrow was built without the runtime's `arrow` feature (pipec turns
/// it on when a program uses Arrow; an embedding crate turns it on itself).
#[cfg(not(feature = "arrow"))]
fn no_arrow() -> io::Error {
    io::Error::other("this program writes Arrow, but pipe-runtime was built without its `arrow` feature")
}

fn pq_err(e: parquet::errors::ParquetError) -> io::Error {
    io::Error::other(e.to_string())
}

impl SinkOut {
    fn new(decl: SinkDecl, final_dir: Option<PathBuf>, tmp_dir: Option<PathBuf>) -> SinkOut {
        SinkOut {
            decl,
            final_dir,
            tmp_dir,
            files: Mutex::new(HashMap::new()),
            header_done: std::sync::atomic::AtomicBool::new(false),
            #[cfg(feature = "kafka")]
            producer: None,
            #[cfg(feature = "postgres")]
            pg: None,
            #[cfg(feature = "redis")]
            redis: None,
            #[cfg(feature = "s3")]
            s3: None,
            #[cfg(feature = "s3")]
            _s3_lock: None,
            _stage: None,
            _lock: None,
        }
    }

    /// An object-store sink's location, if this is one.
    fn s3_url(&self) -> Option<&str> {
        match (&self.decl.kind, &self.decl.location) {
            (SinkKind::Files { .. }, Some(loc)) if is_s3(loc) => Some(loc),
            _ => None,
        }
    }

    /// Checks an object-store sink's bucket (and, for a stream's leader, that no batch run
    /// committed the prefix).
    fn open_s3(&mut self, streaming: bool, leader: bool) -> io::Result<()> {
        let Some(url) = self.s3_url() else { return Ok(()) };
        let name = self.decl.name;
        #[cfg(feature = "s3")]
        {
            let fail = |e: String| io::Error::other(format!("sink `{name}`: {e}"));
            let sink = crate::connectors::s3::S3Sink::open(url).map_err(fail)?;
            if streaming && leader {
                sink.refuse_manifest().map_err(fail)?;
            }
            if leader {
                self._s3_lock = Some(sink.lock().map_err(fail)?);
            }
            self.s3 = Some(sink);
            Ok(())
        }
        #[cfg(not(feature = "s3"))]
        {
            let _ = (streaming, leader);
            Err(io::Error::other(format!("sink `{name}`: `{url}`: {}", crate::connectors::NO_S3)))
        }
    }

    /// Connects a Kafka sink's producer (a clear error when its brokers or topic are missing)
    /// or a PostgreSQL sink (whose `leader` prepares the table).
    fn connect(&mut self, streaming: bool, leader: bool) -> io::Result<()> {
        if let SinkKind::Postgres { url, table, key, mode, schema } = &self.decl.kind {
            #[cfg(feature = "postgres")]
            {
                let pg = crate::connectors::postgres::PgSink::open(
                    self.decl.name,
                    url,
                    table,
                    key,
                    *mode,
                    schema,
                    streaming,
                    leader,
                )
                .map_err(io::Error::other)?;
                self.pg = Some(pg);
                return Ok(());
            }
            #[cfg(not(feature = "postgres"))]
            {
                let _ = (url, table, key, mode, schema, streaming, leader);
                return Err(no_postgres(self.decl.name));
            }
        }
        if let SinkKind::Redis { url, prefix, key, version, ttl_ms } = &self.decl.kind {
            #[cfg(feature = "redis")]
            {
                let r = crate::connectors::redis::RedisSink::open(
                    self.decl.name,
                    url,
                    prefix,
                    key,
                    version.as_deref(),
                    *ttl_ms,
                    streaming,
                )
                .map_err(io::Error::other)?;
                self.redis = Some(r);
                return Ok(());
            }
            #[cfg(not(feature = "redis"))]
            {
                let _ = (url, prefix, key, version, ttl_ms);
                return Err(io::Error::other(format!(
                    "sink `{}`: this binary was built without Redis support (pipec enables it for pipelines that use `redis`)",
                    self.decl.name
                )));
            }
        }
        let SinkKind::Kafka { topic, brokers, .. } = &self.decl.kind else { return Ok(()) };
        let name = self.decl.name;
        #[cfg(feature = "kafka")]
        {
            let p = crate::connectors::kafka::Producer::open(topic, brokers)
                .map_err(|e| io::Error::other(format!("sink `{name}`: {e}")))?;
            self.producer = Some(p);
            Ok(())
        }
        #[cfg(not(feature = "kafka"))]
        {
            let _ = (topic, brokers);
            Err(io::Error::other(format!(
                "sink `{name}`: this binary was built without Kafka support (pipec enables it for pipelines that use `kafka`)"
            )))
        }
    }

    /// Produces rows to a Kafka sink, keyed by `key` when the sink has one.
    fn produce<R: Record>(&self, key: &str, rows: &mut Vec<R>) -> io::Result<()> {
        let SinkKind::Kafka { keyed, .. } = &self.decl.kind else { return Ok(()) };
        #[cfg(feature = "kafka")]
        {
            let Some(p) = &self.producer else {
                return Err(io::Error::other("internal: a Kafka sink without its producer"));
            };
            let mut payload = Vec::new();
            for row in rows.drain(..) {
                payload.clear();
                serde_json::to_writer(&mut payload, &row).map_err(io::Error::other)?;
                p.send(keyed.then_some(key), &payload).map_err(io::Error::other)?;
            }
            Ok(())
        }
        #[cfg(not(feature = "kafka"))]
        {
            let _ = (keyed, key, rows);
            Err(io::Error::other("this binary was built without Kafka support"))
        }
    }

    /// Waits until a Kafka sink's messages are all acknowledged.
    fn flush_producer(&self) -> io::Result<()> {
        #[cfg(feature = "kafka")]
        if let Some(p) = &self.producer {
            return p.flush().map_err(|e| io::Error::other(format!("sink `{}`: {e}", self.decl.name)));
        }
        Ok(())
    }
}

impl Outputs {
    /// Creates the temporary directory `run` names beside each file sink's directory (every
    /// process of a cluster writes its workers' parts into the same one). The `leader` (the
    /// process that commits) first locks every sink directory, finishes a commit a killed run
    /// left half done, and removes what dead runs left beside the directories.
    pub fn open(decls: Vec<SinkDecl>, run: &str, leader: bool) -> io::Result<Outputs> {
        let mut sinks = Vec::new();
        for decl in decls {
            let mut stage = None;
            let (final_dir, tmp_dir) = match (&decl.kind, &decl.location) {
                // An object-store sink's files are written here, then uploaded by each worker.
                (SinkKind::Files { .. }, Some(url)) if is_s3(url) => {
                    let dir = std::env::temp_dir().join(format!("pipe-s3-{}-{run}-{}", std::process::id(), decl.name));
                    let _ = std::fs::remove_dir_all(&dir);
                    stage = Some(TempStage(dir.clone()));
                    (None, Some(dir))
                }
                (SinkKind::Files { .. }, Some(dir)) => {
                    let final_dir = PathBuf::from(dir);
                    let tmp = beside(&final_dir, &format!("pipe-tmp-{run}"));
                    (Some(final_dir), Some(tmp))
                }
                _ => (None, None),
            };
            let mut s = SinkOut::new(decl, final_dir, tmp_dir);
            s._stage = stage;
            s.open_s3(false, leader)?;
            if let Some(dir) = &s.final_dir {
                not_a_file(s.decl.name, dir)?;
                if leader {
                    s._lock = Some(lock_dir(&format!("sink `{}`", s.decl.name), dir)?);
                }
            }
            s.connect(false, leader)?;
            sinks.push(s);
        }
        if leader {
            for s in &sinks {
                if let Some(dir) = &s.final_dir {
                    finish_interrupted_commit(dir)?;
                }
            }
            for s in &sinks {
                if let Some(dir) = &s.final_dir {
                    remove_leftovers(dir, s.tmp_dir.as_deref())?;
                }
            }
        }
        for s in &sinks {
            if let Some(tmp) = &s.tmp_dir {
                std::fs::create_dir_all(tmp).map_err(|e| at(e, "create", tmp))?;
            }
        }
        Ok(Outputs { sinks, memory: false, streaming: false, uploaded: Mutex::default() })
    }

    /// Uploads `worker`'s finished files of every object-store sink (a batch run, after
    /// [`Outputs::close`] for the worker), under names no other run uses; the leader's commit
    /// names them in each sink's manifest.
    pub fn upload(&self, worker: usize) -> io::Result<Vec<Uploaded>> {
        #[cfg(not(feature = "s3"))]
        {
            let _ = worker;
            Ok(Vec::new())
        }
        #[cfg(feature = "s3")]
        {
            let mut done = Vec::new();
            for (i, s) in self.sinks.iter().enumerate() {
                if let (Some(s3), Some(tmp)) = (&s.s3, &s.tmp_dir) {
                    let mine = format!("part-{worker:05}.");
                    let parts = s3
                        .upload_dir(tmp, &|name| name.starts_with(&mine), &|name| s3.batch_name(name))
                        .map_err(|e| io::Error::other(format!("sink `{}`: {e}", s.decl.name)))?;
                    done.extend(parts.into_iter().map(|p| Uploaded { sink: i, key: p.key, bytes: p.bytes }));
                }
            }
            Ok(done)
        }
    }

    /// Every part the cluster's workers uploaded (the leader, before it commits or abandons).
    pub fn set_uploaded(&self, parts: Vec<Uploaded>) {
        *lock(&self.uploaded) = parts;
    }

    /// Outputs of an in-memory run (`run_batch` of an inline pipeline): every row stays in its
    /// sink buffer, in arrival order, for [`SinkBuf::take`]; no file or terminal is touched.
    pub fn in_memory(decls: Vec<SinkDecl>) -> Outputs {
        let sinks = decls.into_iter().map(|decl| SinkOut::new(decl, None, None)).collect();
        Outputs { sinks, memory: true, streaming: false, uploaded: Mutex::default() }
    }

    pub fn is_memory(&self) -> bool {
        self.memory
    }

    /// Outputs of a streaming run. A file sink's directory is kept (published files stay);
    /// each worker's files of epoch `e` are written under `dir/.pipe-inprogress/e<e>/w<worker>/`
    /// and moved into `dir` when the epoch is published.
    /// The `leader` locks every sink directory for the run.
    pub fn open_streaming(decls: Vec<SinkDecl>, leader: bool, state_dir: Option<&Path>) -> io::Result<Outputs> {
        let mut sinks = Vec::new();
        for decl in decls {
            let (final_dir, tmp_dir) = match (&decl.kind, &decl.location) {
                (SinkKind::Files { .. }, Some(url)) if is_s3(url) => (None, Some(stream_stage(&decl, url, state_dir))),
                (SinkKind::Files { .. }, Some(dir)) => {
                    let final_dir = PathBuf::from(dir);
                    not_a_file(decl.name, &final_dir)?;
                    std::fs::create_dir_all(&final_dir).map_err(|e| at(e, "create", &final_dir))?;
                    let tmp = final_dir.join(IN_PROGRESS);
                    (Some(final_dir), Some(tmp))
                }
                _ => (None, None),
            };
            let mut s = SinkOut::new(decl, final_dir, tmp_dir);
            if let (Some(dir), true) = (&s.final_dir, leader) {
                s._lock = Some(lock_dir(&format!("sink `{}`", s.decl.name), dir)?);
            }
            s.open_s3(true, leader)?;
            s.connect(true, leader)?;
            sinks.push(s);
        }
        Ok(Outputs { sinks, memory: false, streaming: true, uploaded: Mutex::default() })
    }

    /// Before a stream starts (the leading process): PostgreSQL sinks refuse a stream without a
    /// checkpoint while their table records epochs an earlier stream published, unless `reset`.
    pub fn check_stream_start(&self, has_checkpoint: bool, reset: bool) -> io::Result<()> {
        #[cfg(feature = "postgres")]
        for s in &self.sinks {
            if let Some(pg) = pg_of(s) {
                pg.check_start(has_checkpoint, reset).map_err(io::Error::other)?;
            }
        }
        let _ = (has_checkpoint, reset);
        Ok(())
    }

    /// Recovery before a stream starts (one process of the cluster does it while the others
    /// wait): files of `committed`, the last epoch a checkpoint recorded, are published if a
    /// crash interrupted that; files of later epochs (never checkpointed) are deleted. Without
    /// a checkpoint every unpublished file is deleted.
    pub fn recover(&self, committed: Option<u64>) -> io::Result<()> {
        for s in &self.sinks {
            #[cfg(feature = "postgres")]
            if let Some(pg) = pg_of(s) {
                pg.recover(committed).map_err(io::Error::other)?;
            }
            #[cfg(feature = "s3")]
            if let (Some(s3), Some(tmp)) = (&s.s3, &s.tmp_dir) {
                for e in waiting_epochs(tmp, committed) {
                    for worker in std::fs::read_dir(tmp.join(format!("e{e}")))? {
                        let dir = worker?.path();
                        s3.upload_dir(&dir, &|_| true, &|name| name.to_string()).map_err(io::Error::other)?;
                    }
                }
                if tmp.exists() {
                    std::fs::remove_dir_all(tmp).map_err(|e| at(e, "remove", tmp))?;
                }
            }
            if let (Some(tmp), Some(dest)) = (&s.tmp_dir, &s.final_dir) {
                for e in waiting_epochs(tmp, committed) {
                    for worker in std::fs::read_dir(tmp.join(format!("e{e}")))? {
                        publish_dir(&worker?.path(), dest)?;
                    }
                }
                if tmp.exists() {
                    std::fs::remove_dir_all(tmp).map_err(|e| at(e, "remove", tmp))?;
                }
            }
        }
        Ok(())
    }

    /// Finishes the open files of `worker` (or of every worker); with `sync`, makes them
    /// durable. After this a streaming epoch's files are complete in the in-progress folders.
    pub fn close(&self, worker: Option<usize>, sync: bool) -> io::Result<()> {
        let mut failure = None;
        for s in &self.sinks {
            if let Err(e) = s.flush_producer() {
                failure.get_or_insert(e);
            }
            let mine: Vec<SharedFile> = {
                let mut files = lock(&s.files);
                let keys: Vec<(usize, String)> =
                    files.keys().filter(|(w, _)| worker.is_none_or(|x| x == *w)).cloned().collect();
                keys.iter().filter_map(|k| files.remove(k)).collect()
            };
            // Taking a file waits for a row group still being written into it.
            for f in mine.iter().filter_map(|f| lock(f).take()) {
                let closed = match f {
                    Open::Text(mut w) => w.flush().and_then(|()| if sync { w.get_ref().sync_all() } else { Ok(()) }),
                    Open::Parquet(mut f) => f.w.finish().map_err(pq_err).and_then(|_| {
                        if sync {
                            f.w.inner().get_ref().sync_all()?;
                        }
                        Ok(())
                    }),
                    #[cfg(feature = "arrow")]
                    Open::Arrow(mut f) => f.0.finish().map_err(io::Error::other).and_then(|()| {
                        let out = f.0.get_mut();
                        out.flush()?;
                        if sync {
                            out.get_ref().sync_all()?;
                        }
                        Ok(())
                    }),
                };
                if let Err(e) = closed {
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Moves `worker`'s files of `epoch` into their sinks' directories (streaming). Call once
    /// the checkpoint that records the epoch is complete.
    pub fn publish(&self, worker: usize, epoch: u64) -> io::Result<()> {
        for s in &self.sinks {
            #[cfg(feature = "postgres")]
            if let Some(pg) = pg_of(s) {
                pg.publish(worker, epoch).map_err(io::Error::other)?;
            }
            #[cfg(feature = "s3")]
            if let (Some(s3), Some(tmp)) = (&s.s3, &s.tmp_dir) {
                let dir = tmp.join(format!("e{epoch}")).join(format!("w{worker}"));
                s3.upload_dir(&dir, &|_| true, &|name| name.to_string())
                    .map_err(|e| io::Error::other(format!("sink `{}`: {e}", s.decl.name)))?;
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(|e| at(e, "remove", &dir))?;
                }
            }
            if let (Some(tmp), Some(dest)) = (&s.tmp_dir, &s.final_dir) {
                publish_dir(&tmp.join(format!("e{epoch}")).join(format!("w{worker}")), dest)?;
            }
        }
        Ok(())
    }

    /// Writes `_pipe_summary.json` into every file sink's directory (the end of a stream).
    pub fn write_summaries(&self, summary_json: &[u8]) -> io::Result<Vec<PathBuf>> {
        let mut done = Vec::new();
        for s in &self.sinks {
            if let Some(dest) = &s.final_dir {
                std::fs::write(dest.join("_pipe_summary.json"), summary_json)?;
                done.push(dest.clone());
            }
            #[cfg(feature = "s3")]
            if let Some(s3) = &s.s3 {
                s3.write_summary(summary_json).map_err(io::Error::other)?;
                done.push(PathBuf::from(&s3.url));
            }
        }
        Ok(done)
    }

    pub fn decl(&self, sink: usize) -> &SinkDecl {
        &self.sinks[sink].decl
    }

    /// Writes rows of one partition of one sink for `worker` (in streaming, for `epoch`),
    /// leaving `rows` empty.
    pub fn write<R: Record>(
        &self,
        worker: usize,
        epoch: u64,
        sink: usize,
        partition: &str,
        rows: &mut Vec<R>,
    ) -> io::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        if self.memory {
            return Err(io::Error::other("internal: rows of an in-memory run reached a file writer"));
        }
        let s = &self.sinks[sink];
        let format = match s.decl.kind {
            SinkKind::Files { format } | SinkKind::Stdout { format } => format,
            SinkKind::Kafka { .. } => return s.produce(partition, rows),
            SinkKind::Postgres { .. } => {
                #[cfg(feature = "postgres")]
                if let Some(pg) = pg_of(s) {
                    return pg.write(worker, epoch, rows);
                }
                return Err(io::Error::other(format!("sink `{}`: not connected to PostgreSQL", s.decl.name)));
            }
            SinkKind::Redis { .. } => {
                #[cfg(feature = "redis")]
                if let Some(r) = &s.redis {
                    return r.write(rows);
                }
                return Err(io::Error::other(format!("sink `{}`: not connected to Redis", s.decl.name)));
            }
        };
        let text = match format {
            SinkFormat::Json => Some(json_lines(rows)?),
            SinkFormat::Csv => Some(csv_lines(rows)?),
            SinkFormat::Parquet | SinkFormat::Arrow => None,
        };
        if text.is_some() {
            rows.clear();
        }
        let schema = Schema {
            columns: R::COLUMNS,
            parquet: R::PARQUET_SCHEMA,
            #[cfg(feature = "arrow")]
            arrow: R::ARROW_SCHEMA,
        };
        let Some(file) = self.file(s, worker, epoch, partition, format, &schema, text.as_deref())? else {
            return Ok(());
        };
        let mut file = lock(&file);
        match (file.as_mut(), text) {
            (Some(Open::Text(w)), Some(t)) => w.write_all(&t),
            (Some(Open::Parquet(_)), _) => {
                Err(io::Error::other("internal: Parquet rows are written through their columns"))
            }
            #[cfg(feature = "arrow")]
            (Some(Open::Arrow(f)), _) => {
                let (w, fields) = &mut **f;
                let batch = R::arrow_batch(fields, rows)?;
                rows.clear();
                w.write(&batch).map_err(io::Error::other)
            }
            (None, _) => Err(io::Error::other(format!("internal: sink `{}` written after it was closed", s.decl.name))),
            _ => Err(io::Error::other("sink file in the wrong format")),
        }
    }

    /// Whether rows of `sink` are written to Parquet files: through [`Columns`], encoded as
    /// they arrive, not buffered as rows.
    pub fn parquet_files(&self, sink: usize) -> bool {
        let s = &self.sinks[sink];
        !self.memory && s.tmp_dir.is_some() && matches!(s.decl.kind, SinkKind::Files { format: SinkFormat::Parquet })
    }

    /// [`SinkTo::write_columns`] for `worker` (in streaming, for `epoch`).
    pub fn write_columns<R: Record>(
        &self,
        worker: usize,
        epoch: u64,
        sink: usize,
        partition: &str,
        cols: &mut Columns,
        scratch: &mut Scratch,
    ) -> io::Result<()> {
        if cols.rows() == 0 {
            return Ok(());
        }
        let s = &self.sinks[sink];
        let schema = Schema {
            columns: R::COLUMNS,
            parquet: R::PARQUET_SCHEMA,
            #[cfg(feature = "arrow")]
            arrow: R::ARROW_SCHEMA,
        };
        let Some(file) = self.file(s, worker, epoch, partition, SinkFormat::Parquet, &schema, None)? else {
            return Err(io::Error::other(format!("internal: sink `{}` has no folder for Parquet files", s.decl.name)));
        };
        let mut file = lock(&file);
        match file.as_mut() {
            Some(Open::Parquet(f)) => cols.write_to(&mut f.w, scratch).map_err(pq_err),
            None => Err(io::Error::other(format!("internal: sink `{}` written after it was closed", s.decl.name))),
            _ => Err(io::Error::other("sink file in the wrong format")),
        }
    }

    /// The open file of `worker`'s part of `partition` of sink `s` (in streaming, of `epoch`),
    /// opened on first use; `None` for a sink on standard output, which gets `text` (and the
    /// CSV header once) at once. Not generic, like everything of a sink that does not touch
    /// rows: compiled once, here, not in every pipeline's crate.
    #[allow(clippy::too_many_arguments, reason = "one sink's file: each argument names a part of it")]
    fn file(
        &self,
        s: &SinkOut,
        worker: usize,
        epoch: u64,
        partition: &str,
        format: SinkFormat,
        schema: &Schema,
        text: Option<&[u8]>,
    ) -> io::Result<Option<SharedFile>> {
        let Some(tmp) = &s.tmp_dir else {
            let out = io::stdout();
            let mut out = out.lock();
            if format == SinkFormat::Csv && !s.header_done.swap(true, std::sync::atomic::Ordering::Relaxed) {
                let mut header = csv::Writer::from_writer(Vec::new());
                header.write_record(schema.columns).map_err(io::Error::other)?;
                out.write_all(&header.into_inner().map_err(|e| io::Error::other(e.to_string()))?)?;
            }
            if let Some(t) = text {
                out.write_all(t)?;
            }
            out.flush()?;
            return Ok(None);
        };
        let key = (worker, partition.to_string());
        let mut files = lock(&s.files);
        if !files.contains_key(&key) {
            // A batch run writes one file per partition and worker; a stream one per
            // partition, worker and epoch.
            let (base, name) = if self.streaming {
                (tmp.join(format!("e{epoch}")).join(format!("w{worker}")), format!("part-{epoch:05}-{worker:05}"))
            } else {
                (tmp.clone(), format!("part-{worker:05}"))
            };
            let dir = if partition.is_empty() { base } else { base.join(partition) };
            std::fs::create_dir_all(&dir).map_err(|e| at(e, "create", &dir))?;
            let ext = match format {
                SinkFormat::Json => "jsonl",
                SinkFormat::Csv => "csv",
                SinkFormat::Parquet => "parquet",
                SinkFormat::Arrow => "arrow",
            };
            let path = dir.join(format!("{name}.{ext}"));
            let file = File::create(&path).map_err(|e| at(e, "create", &path))?;
            let open = match format {
                SinkFormat::Parquet => {
                    let schema = Arc::new(parquet::schema::parser::parse_message_type(schema.parquet).map_err(pq_err)?);
                    let file = BufWriter::with_capacity(PARQUET_BUFFER, file);
                    let w = SerializedFileWriter::new(file, schema, Arc::new(parquet_props())).map_err(pq_err)?;
                    Open::Parquet(Box::new(ParquetFile { w }))
                }
                SinkFormat::Csv => {
                    let mut w = BufWriter::new(file);
                    let mut header = csv::Writer::from_writer(Vec::new());
                    header.write_record(schema.columns).map_err(io::Error::other)?;
                    w.write_all(&header.into_inner().map_err(|e| io::Error::other(e.to_string()))?)?;
                    Open::Text(w)
                }
                SinkFormat::Json => Open::Text(BufWriter::new(file)),
                #[cfg(feature = "arrow")]
                SinkFormat::Arrow => {
                    let fields = crate::arrow::fields(schema.arrow)?;
                    let schema = crate::arrow::Schema::new(fields.clone());
                    let w = arrow_ipc::writer::FileWriter::try_new(BufWriter::new(file), &schema)
                        .map_err(|e| at(io::Error::other(e), "write", &path))?;
                    Open::Arrow(Box::new((w, fields)))
                }
                #[cfg(not(feature = "arrow"))]
                SinkFormat::Arrow => return Err(no_arrow()),
            };
            files.insert(key.clone(), Arc::new(Mutex::new(Some(open))));
        }
        let file = files.get(&key).cloned();
        drop(files);
        file.map(Some).ok_or_else(|| io::Error::other("internal: sink file not opened"))
    }

    /// Closes every file and moves each sink's directory into place. A sink that received no
    /// rows still gets its (empty) directory, so readers see the run happened. Every file of
    /// every sink is finished first; if any cannot be, no sink is replaced and the temporary
    /// directories are removed. Then the commit is recorded (a journal beside every sink
    /// directory, naming all of them) before the first directory is switched: a run killed
    /// between two switches leaves the journal, and the next run on any of these sinks
    /// finishes the switch, so the sinks end all old (killed before the journal) or all new.
    pub fn commit(&self, summary_json: &[u8]) -> io::Result<Vec<PathBuf>> {
        let mut ready = Vec::new();
        let mut failure = self.close(None, false).err();
        for s in &self.sinks {
            if let (Some(tmp), Some(dest)) = (&s.tmp_dir, &s.final_dir) {
                if failure.is_none() {
                    if let Err(e) = std::fs::write(tmp.join("_pipe_summary.json"), summary_json) {
                        failure = Some(e);
                    }
                }
                ready.push((tmp, dest));
            }
        }
        // PostgreSQL sinks publish first, each in one transaction: a failure there leaves every
        // sink as it was (the files are not switched). Only a failure after it (switching the
        // file directories) can leave a table new beside old files.
        #[cfg(feature = "postgres")]
        for s in &self.sinks {
            if let (None, Some(pg)) = (&failure, pg_of(s)) {
                failure = pg.commit_batch().err().map(io::Error::other);
            }
        }
        // Object-store sinks next: each commits by writing its manifest, last.
        #[cfg(feature = "s3")]
        if failure.is_none() {
            let uploaded = lock(&self.uploaded).clone();
            let parts_of = |i: usize| -> Vec<crate::connectors::s3::Part> {
                uploaded
                    .iter()
                    .filter(|u| u.sink == i)
                    .map(|u| crate::connectors::s3::Part { key: u.key.clone(), bytes: u.bytes })
                    .collect()
            };
            for (i, s) in self.sinks.iter().enumerate() {
                let (Some(s3), SinkKind::Files { format }) = (&s.s3, &s.decl.kind) else { continue };
                if let Err(e) = s3.commit(&parts_of(i), format.name(), summary_json) {
                    failure = Some(io::Error::other(format!("sink `{}`: {e}", s.decl.name)));
                    // The sinks not committed keep their previous output: their new parts go.
                    for (j, later) in self.sinks.iter().enumerate().skip(i) {
                        if let Some(s3) = &later.s3 {
                            s3.forget(&parts_of(j));
                        }
                    }
                    break;
                }
            }
        }
        if let Some(e) = failure {
            for (tmp, _) in ready {
                let _ = std::fs::remove_dir_all(tmp);
            }
            return Err(e);
        }
        let journal: Vec<Switch> = ready
            .iter()
            .map(|(tmp, dest)| {
                Ok(Switch {
                    tmp: std::path::absolute(tmp)?,
                    dest: std::path::absolute(dest)?,
                    old: std::path::absolute(beside(dest, &format!("pipe-old-{}", std::process::id())))?,
                    journal: std::path::absolute(beside(dest, "pipe-commit"))?,
                })
            })
            .collect::<io::Result<_>>()?;
        let text = serde_json::to_vec_pretty(&journal).map_err(io::Error::other)?;
        let record = |s: &Switch| -> io::Result<()> {
            if let Some(parent) = s.dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| at(e, "create", parent))?;
            }
            let mut f = File::create(&s.journal).map_err(|e| at(e, "write the commit journal", &s.journal))?;
            f.write_all(&text).and_then(|()| f.sync_all()).map_err(|e| at(e, "write the commit journal", &s.journal))
        };
        for (n, s) in journal.iter().enumerate() {
            if let Err(e) = record(s) {
                // Not decided: no copy may survive to be finished by the next run.
                for done in &journal[..=n] {
                    let _ = std::fs::remove_file(&done.journal);
                }
                for (tmp, _) in &ready {
                    let _ = std::fs::remove_dir_all(tmp);
                }
                return Err(e);
            }
        }
        switch(&journal, crash_point())?;
        // Redis last: it has no transaction to take back, so it is written once everything
        // else is committed.
        self.commit_spools()?;
        Ok(ready.into_iter().map(|(_, dest)| dest.clone()).collect())
    }

    /// Writes what this process's Redis sinks spooled during a batch run: every process of the
    /// cluster calls it once the whole run has succeeded, before the commit.
    pub fn commit_spools(&self) -> io::Result<()> {
        #[cfg(feature = "redis")]
        for s in &self.sinks {
            if let Some(r) = &s.redis {
                r.commit_batch().map_err(io::Error::other)?;
            }
        }
        Ok(())
    }

    /// Drops what this process's Redis sinks spooled (a failed batch run).
    pub fn abandon_spools(&self) {
        #[cfg(feature = "redis")]
        for s in &self.sinks {
            if let Some(r) = &s.redis {
                r.abandon();
            }
        }
    }

    /// Empties the temporary directories (what a crashed run left there), before any worker
    /// writes into them.
    pub fn reset(&self) -> io::Result<()> {
        for s in &self.sinks {
            #[cfg(feature = "postgres")]
            if let Some(pg) = pg_of(s) {
                pg.drop_stages().map_err(io::Error::other)?;
            }
            if let Some(tmp) = &s.tmp_dir {
                if tmp.exists() {
                    std::fs::remove_dir_all(tmp).map_err(|e| at(e, "remove", tmp))?;
                }
                std::fs::create_dir_all(tmp).map_err(|e| at(e, "create", tmp))?;
            }
        }
        Ok(())
    }

    /// The directories of the file sinks and the prefixes of the object-store sinks.
    pub fn locations(&self) -> Vec<String> {
        self.sinks
            .iter()
            .filter_map(|s| {
                s.final_dir.as_ref().map(|d| d.display().to_string()).or_else(|| s.s3_url().map(String::from))
            })
            .collect()
    }

    /// Removes the temporary directories of a failed run, and the parts its workers uploaded.
    pub fn abandon(&self) {
        let _ = self.close(None, false);
        #[cfg(feature = "s3")]
        {
            let uploaded = lock(&self.uploaded).clone();
            for (i, s) in self.sinks.iter().enumerate() {
                if let Some(s3) = &s.s3 {
                    let mine: Vec<crate::connectors::s3::Part> = uploaded
                        .iter()
                        .filter(|u| u.sink == i)
                        .map(|u| crate::connectors::s3::Part { key: u.key.clone(), bytes: u.bytes })
                        .collect();
                    s3.forget(&mine);
                }
            }
        }
        for s in &self.sinks {
            #[cfg(feature = "postgres")]
            if let Some(pg) = pg_of(s) {
                let _ = pg.drop_stages();
            }

            if let Some(tmp) = &s.tmp_dir {
                let _ = std::fs::remove_dir_all(tmp);
            }
        }
    }
}

/// Moves every file under `from` to the same relative place under `to` (replacing a file of
/// that name), then removes `from`. Each move is a rename, so a reader sees a file whole or not
/// at all; a publish interrupted by a crash is finished by running it again.
fn publish_dir(from: &Path, to: &Path) -> io::Result<()> {
    if !from.is_dir() {
        return Ok(());
    }
    let mut stack = vec![from.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| at(e, "read", &dir))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(from).map_err(io::Error::other)?;
            let dest = to.join(rel);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(|e| at(e, "create", parent))?;
            }
            std::fs::rename(&path, &dest).map_err(|e| at(e, "publish", &path))?;
        }
    }
    std::fs::remove_dir_all(from).map_err(|e| at(e, "remove", from))
}

/// One sink directory of a batch commit: the new contents `tmp` replace `dest`, whose old
/// contents move to `old` until every sink is switched. `journal` is this sink's copy of the
/// commit record (each copy names every sink of the commit).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Switch {
    tmp: PathBuf,
    dest: PathBuf,
    old: PathBuf,
    journal: PathBuf,
}

/// The files streams published into sink directory `dir` (named `part-EPOCH-WORKER.EXT`; a
/// batch run's files are `part-WORKER.EXT`).
pub fn published_parts(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                if name != IN_PROGRESS {
                    stack.push(path);
                }
                continue;
            }
            let stem = name.split('.').next().unwrap_or_default();
            let mut parts = stem.strip_prefix("part-").unwrap_or_default().split('-');
            let numbers = |p: Option<&str>| p.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if numbers(parts.next()) && numbers(parts.next()) && parts.next().is_none() {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Every recorded epoch (≤ `committed`) whose files still wait in a stream's in-progress
/// folder `tmp` (a crash can interrupt the publishing of the last two), oldest first.
fn waiting_epochs(tmp: &Path, committed: Option<u64>) -> Vec<u64> {
    let mut waiting: Vec<u64> = match std::fs::read_dir(tmp) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_prefix('e')?.parse().ok()))
            .filter(|e| committed.is_some_and(|c| *e <= c))
            .collect(),
        Err(_) => Vec::new(),
    };
    waiting.sort_unstable();
    waiting
}

/// Whether a sink location is in an object store.
pub fn is_s3(location: &str) -> bool {
    location.starts_with("s3://")
}

/// A folder removed when dropped.
#[derive(Debug)]
struct TempStage(PathBuf);

impl Drop for TempStage {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a stream's object-store sink keeps each epoch's files until they are uploaded: in the
/// state directory (they must outlive a crash, to be uploaded by the restart).
fn stream_stage(decl: &SinkDecl, url: &str, state_dir: Option<&Path>) -> PathBuf {
    match state_dir {
        Some(d) => d.join("s3-stage").join(decl.name),
        None => std::env::temp_dir().join(format!("pipe-s3-stage-{:016x}", crate::run::key_hash(&(url, decl.name)))),
    }
}

/// The parts streams published at a sink location (a folder or an `s3://` prefix).
pub fn published_at(location: &str) -> io::Result<Vec<String>> {
    if !is_s3(location) {
        return Ok(published_parts(Path::new(location)).iter().map(|p| p.display().to_string()).collect());
    }
    #[cfg(feature = "s3")]
    {
        let sink = crate::connectors::s3::S3Sink::open(location).map_err(io::Error::other)?;
        sink.published_parts().map_err(io::Error::other)
    }
    #[cfg(not(feature = "s3"))]
    Err(io::Error::other(format!("`{location}`: {}", crate::connectors::NO_S3)))
}

/// Removes parts [`published_at`] found (`--reset`).
pub fn remove_published(location: &str, parts: &[String]) -> io::Result<()> {
    if !is_s3(location) {
        for p in parts {
            std::fs::remove_file(p).map_err(|e| at(e, "remove", Path::new(p)))?;
        }
        return Ok(());
    }
    #[cfg(feature = "s3")]
    {
        let sink = crate::connectors::s3::S3Sink::open(location).map_err(io::Error::other)?;
        sink.delete(parts).map_err(io::Error::other)
    }
    #[cfg(not(feature = "s3"))]
    Err(io::Error::other(format!("`{location}`: {}", crate::connectors::NO_S3)))
}

/// `.NAME.pipe-WHAT` beside directory `dir` (named `NAME`).
fn beside(dir: &Path, what: &str) -> PathBuf {
    let name = dir.file_name().map_or("out".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!(".{name}.{what}"))
}

/// An I/O error that names the operation and the path.
fn at(e: io::Error, op: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {op} `{}`: {e}", path.display()))
}

/// A sink writes a directory: an existing regular file at its path is refused, not moved aside.
fn not_a_file(sink: &str, dir: &Path) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(m) if !m.is_dir() => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "sink `{sink}`: `{}` is a file, and a sink writes a directory there: move the file away or give the sink another path",
                dir.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// Locks `dir` (a sink directory or a state directory) for this process with an exclusive
/// lock on `.NAME.pipe-lock` beside it, which holds the holder's PID. The operating system
/// releases it when the process ends, however it ends.
pub fn lock_dir(what: &str, dir: &Path) -> io::Result<File> {
    use std::io::Read;
    let path = beside(dir, "pipe-lock");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| at(e, "create", parent))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| at(e, "open the lock", &path))?;
    match f.try_lock() {
        Ok(()) => {
            f.set_len(0).and_then(|()| writeln!(f, "{}", std::process::id())).map_err(|e| at(e, "write", &path))?;
            Ok(f)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{what}: `{}` is in use by another run (PID {}, lock `{}`): wait for it to end, or give this run another path",
                    dir.display(),
                    holder.trim(),
                    path.display()
                ),
            ))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(at(e, "lock", &path)),
    }
}

/// `PIPE_TEST_CRASH_COMMIT_AFTER=N`: the process aborts (as a kill would stop it) right after
/// the `N`-th sink directory of a batch commit is switched. For the tests of the commit only.
fn crash_point() -> Option<usize> {
    std::env::var("PIPE_TEST_CRASH_COMMIT_AFTER").ok().and_then(|n| n.parse().ok())
}

/// Switches every sink directory of a commit whose new contents are still waiting, then
/// removes the journal copies and the old contents. Running it again after an interruption
/// finishes the same commit.
fn switch(journal: &[Switch], crash_after: Option<usize>) -> io::Result<()> {
    for (n, s) in journal.iter().enumerate() {
        if s.tmp.exists() {
            if s.dest.exists() {
                if s.old.exists() {
                    std::fs::remove_dir_all(&s.old).map_err(|e| at(e, "remove", &s.old))?;
                }
                std::fs::rename(&s.dest, &s.old).map_err(|e| at(e, "move aside", &s.dest))?;
            }
            std::fs::rename(&s.tmp, &s.dest).map_err(|e| at(e, "move into place", &s.tmp))?;
            if crash_after == Some(n + 1) {
                std::process::abort();
            }
        }
    }
    for s in journal {
        match std::fs::remove_file(&s.journal) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(at(e, "remove", &s.journal)),
            _ => {}
        }
    }
    for s in journal {
        if s.old.exists() {
            std::fs::remove_dir_all(&s.old).map_err(|e| at(e, "remove", &s.old))?;
        }
    }
    Ok(())
}

/// A commit journal beside `dir` means a run was killed while switching its sinks: the
/// switch is finished (every sink of that run gets its new contents).
fn finish_interrupted_commit(dir: &Path) -> io::Result<()> {
    let path = beside(dir, "pipe-commit");
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(at(e, "read the commit journal", &path)),
    };
    let journal: Vec<Switch> = match serde_json::from_slice(&text) {
        Ok(j) => j,
        // Cut short while it was written: the commit was never decided, and its new contents
        // are removed with the other leftovers.
        Err(_) => return std::fs::remove_file(&path).map_err(|e| at(e, "remove", &path)),
    };
    switch(&journal, None)?;
    let sinks: Vec<String> = journal.iter().map(|s| s.dest.display().to_string()).collect();
    #[allow(clippy::print_stderr, reason = "the run's report of what it repaired")]
    {
        eprintln!("pipe: finished the commit of a run that was stopped while publishing: {}", sinks.join(", "));
    }
    Ok(())
}

/// Removes what dead runs left beside `dir`: temporary and old directories (the lock is held,
/// so no live run owns them). `keep` is this run's temporary directory.
fn remove_leftovers(dir: &Path, keep: Option<&Path>) -> io::Result<()> {
    let name = dir.file_name().map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let Some(parent) = dir.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }) else {
        return Ok(());
    };
    let Ok(entries) = std::fs::read_dir(parent) else { return Ok(()) };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let ours = [format!(".{name}.pipe-tmp-"), format!(".{name}.pipe-old-")];
        if ours.iter().any(|p| file.starts_with(p.as_str()))
            && keep.is_none_or(|k| k.file_name() != Some(&e.file_name()))
        {
            std::fs::remove_dir_all(e.path()).map_err(|err| at(err, "remove", &e.path()))?;
        }
    }
    Ok(())
}

fn json_lines<R: Record>(rows: &[R]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(rows.len() * 128);
    for r in rows {
        serde_json::to_writer(&mut out, r)?;
        out.push(b'\n');
    }
    Ok(out)
}

fn csv_lines<R: Record>(rows: &[R]) -> io::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(rows.len() * 64));
    let mut cells = Vec::with_capacity(R::COLUMNS.len());
    for r in rows {
        cells.clear();
        r.cells(&mut cells);
        w.write_record(&cells).map_err(io::Error::other)?;
    }
    w.into_inner().map_err(|e| io::Error::other(e.to_string()))
}

/// One value of a Kafka sink's `key`, as the message key's text (null: empty).
pub fn key_segment(value: Option<&dyn Cell>) -> String {
    let mut text = String::new();
    if let Some(v) = value {
        v.cell(&mut text);
    }
    text
}

/// One partition folder name segment, `name=value`, escaped the way Hive escapes it.
pub fn partition_segment(name: &str, value: Option<&dyn Cell>) -> String {
    let mut text = String::new();
    if let Some(v) = value {
        v.cell(&mut text);
    }
    if text.is_empty() {
        return format!("{name}=__HIVE_DEFAULT_PARTITION__");
    }
    let mut out = format!("{name}=");
    for c in text.chars() {
        if c.is_control() || "\"#%'*/:=?\\\u{7f}{[]^".contains(c) {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The hasher of a sink's partitions: every row looks its partition up (SipHash, std's
/// default, took 1% of an ingest's cycles).
type Fast = foldhash::fast::RandomState;

/// Rows of one sink in one worker, by partition. The partition is kept as its typed key
/// (`K`, a tuple of the `partition_by` values); its folder path is computed only when the rows
/// are written. A Parquet file sink keeps no rows: each is encoded into its partition's
/// [`Columns`] as it arrives and dropped, so its strings are freed while still in cache.
pub struct SinkBuf<R, K = ()> {
    pub sink: usize,
    parts: HashMap<K, Vec<R>, Fast>,
    /// A Parquet file sink's partitions, each with the count of `encoded` at its last row.
    columns: HashMap<K, (Columns, usize), Fast>,
    /// Rows encoded into `columns` so far.
    encoded: usize,
    /// Rows held in all (buffered or encoded).
    rows: usize,
    path: fn(&K) -> String,
    /// Emptied buffers kept for the next partitions, so batches reuse their memory.
    spare: Vec<Vec<R>>,
    spare_columns: Vec<Columns>,
    /// Whether the sink writes Parquet files, with the row's schema (known at the first row).
    parquet: Option<Option<Arc<SchemaDescriptor>>>,
    scratch: Scratch,
    /// Every row of an in-memory run, in arrival order.
    kept: Vec<R>,
}

impl<R, K> std::fmt::Debug for SinkBuf<R, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = self.parts.len() + self.columns.len();
        write!(f, "SinkBuf(sink {}, {} rows in {parts} partitions)", self.sink, self.rows)
    }
}

fn no_partition<K>(_: &K) -> String {
    String::new()
}

impl<R: Record> SinkBuf<R, ()> {
    pub fn new(sink: usize) -> SinkBuf<R, ()> {
        SinkBuf::partitioned(sink, no_partition)
    }
}

impl<R: Record, K: std::hash::Hash + Eq + Clone> SinkBuf<R, K> {
    pub fn partitioned(sink: usize, path: fn(&K) -> String) -> SinkBuf<R, K> {
        SinkBuf {
            sink,
            parts: HashMap::default(),
            columns: HashMap::default(),
            encoded: 0,
            rows: 0,
            path,
            spare: Vec::new(),
            spare_columns: Vec::new(),
            parquet: None,
            scratch: Scratch::default(),
            kept: Vec::new(),
        }
    }

    /// The rows an in-memory run sent here, in arrival order.
    pub fn take(&mut self) -> Vec<R> {
        std::mem::take(&mut self.kept)
    }

    /// Buffers a row; writes its partition out when that is full (one Parquet row group), and
    /// every partition when the worker holds too many rows in all.
    pub fn push(&mut self, out: &SinkTo, key: K, row: R) -> io::Result<()> {
        if out.outputs.memory {
            self.kept.push(row);
            return Ok(());
        }
        let parquet = match &self.parquet {
            Some(p) => p.clone(),
            None => {
                let p = if out.outputs.parquet_files(self.sink) {
                    let schema = parquet::schema::parser::parse_message_type(R::PARQUET_SCHEMA).map_err(pq_err)?;
                    Some(Arc::new(SchemaDescriptor::new(Arc::new(schema))))
                } else {
                    None
                };
                self.parquet = Some(p.clone());
                p
            }
        };
        let held = match parquet {
            Some(schema) => {
                self.encoded += 1;
                let cols = match self.columns.get_mut(&key) {
                    Some((cols, last)) => {
                        *last = self.encoded;
                        cols
                    }
                    None => {
                        let fresh = match self.spare_columns.pop() {
                            Some(cols) => cols,
                            None => Columns::new(&schema, &parquet_props()).map_err(pq_err)?,
                        };
                        &mut self.columns.entry(key.clone()).or_insert((fresh, self.encoded)).0
                    }
                };
                row.parquet_row(cols);
                drop(row);
                cols.row_done(&mut self.scratch);
                self.rows += 1;
                if cols.rows() >= FLUSH_ROWS {
                    // Written, the columns go back to the spares: a partition that gets no
                    // more rows does not keep a row group's worth of buffers.
                    self.write_partition(out, &key)?;
                }
                if self.encoded.is_multiple_of(FLUSH_ROWS) {
                    let encoded = self.encoded;
                    let idle: Vec<K> = self
                        .columns
                        .iter()
                        .filter(|(_, (_, last))| encoded - last >= IDLE_ROWS)
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in idle {
                        self.write_partition(out, &k)?;
                    }
                }
                self.rows
            }
            None => {
                let rows = match self.parts.get_mut(&key) {
                    Some(rows) => rows,
                    None => {
                        let fresh = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(1024));
                        self.parts.entry(key.clone()).or_insert(fresh)
                    }
                };
                rows.push(row);
                self.rows += 1;
                if rows.len() >= FLUSH_ROWS {
                    self.rows -= rows.len();
                    out.write(self.sink, &(self.path)(&key), rows)?;
                }
                self.rows
            }
        };
        if held >= 8 * FLUSH_ROWS {
            self.flush(out)?;
        }
        Ok(())
    }

    /// Writes the rows of Parquet partition `key` as a row group; its columns go back to the
    /// spares.
    fn write_partition(&mut self, out: &SinkTo, key: &K) -> io::Result<()> {
        if let Some((mut cols, _)) = self.columns.remove(key) {
            self.rows -= cols.rows();
            out.write_columns::<R>(self.sink, &(self.path)(key), &mut cols, &mut self.scratch)?;
            if self.spare_columns.len() < SPARE_COLUMNS {
                self.spare_columns.push(cols);
            }
        }
        Ok(())
    }

    pub fn flush(&mut self, out: &SinkTo) -> io::Result<()> {
        for (k, mut rows) in self.parts.drain() {
            if !rows.is_empty() {
                out.write(self.sink, &(self.path)(&k), &mut rows)?;
            }
            if self.spare.len() < 4 {
                self.spare.push(rows);
            }
        }
        for (k, (mut cols, _)) in self.columns.drain() {
            out.write_columns::<R>(self.sink, &(self.path)(&k), &mut cols, &mut self.scratch)?;
            if self.spare_columns.len() < SPARE_COLUMNS {
                self.spare_columns.push(cols);
            }
        }
        self.rows = 0;
        Ok(())
    }
}

impl Record for crate::record::Rejected {
    const COLUMNS: &'static [&'static str] = &["source", "position", "raw", "reason"];
    const PARQUET_SCHEMA: &'static str = "message rejected { REQUIRED BYTE_ARRAY source (UTF8); REQUIRED BYTE_ARRAY position (UTF8); REQUIRED BYTE_ARRAY raw (UTF8); REQUIRED BYTE_ARRAY reason (UTF8); }";
    const ARROW_SCHEMA: &'static str = r#"[{"name":"source","data_type":"Utf8"},{"name":"position","data_type":"Utf8"},{"name":"raw","data_type":"Utf8"},{"name":"reason","data_type":"Utf8"}]"#;
    fn cells(&self, out: &mut Vec<String>) {
        out.extend([self.source.clone(), self.position.clone(), self.raw.clone(), self.reason.clone()]);
    }
    #[cfg(feature = "arrow")]
    fn arrow_batch(fields: &[crate::arrow::FieldRef], rows: &[Self]) -> io::Result<crate::arrow::RecordBatch> {
        crate::arrow::to_batch(fields, rows)
    }
    fn parquet_row(&self, c: &mut Columns) {
        c.bytes(0, self.source.as_bytes());
        c.bytes(1, self.position.as_bytes());
        c.bytes(2, self.raw.as_bytes());
        c.bytes(3, self.reason.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A files sink `out` of `format` in a new, empty folder named after `name`.
    fn files_sink(name: &str, format: SinkFormat) -> (PathBuf, SinkDecl) {
        let dir = std::env::temp_dir().join(format!("pipe-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let location = Some(dir.display().to_string());
        (dir, SinkDecl { name: "out", kind: SinkKind::Files { format }, location, beside_first: false })
    }

    #[test]
    fn recovery_publishes_every_recorded_epoch_and_drops_the_rest() {
        let (dir, decl) = files_sink("recover", SinkFormat::Json);
        let outputs = Outputs::open_streaming(vec![decl], true, None).expect("open");
        // Epochs 3 and 4 were recorded, but a crash came before both were published; epoch 5
        // was never recorded.
        for (e, w) in [(3, 0), (4, 1), (5, 0)] {
            let d = dir.join(IN_PROGRESS).join(format!("e{e}")).join(format!("w{w}"));
            std::fs::create_dir_all(&d).expect("dirs");
            std::fs::write(d.join(format!("part-{e:05}-{w:05}.jsonl")), "{}\n").expect("file");
        }
        outputs.recover(Some(4)).expect("recover");
        assert!(dir.join("part-00003-00000.jsonl").exists());
        assert!(dir.join("part-00004-00001.jsonl").exists());
        assert!(!dir.join("part-00005-00000.jsonl").exists());
        assert!(!dir.join(IN_PROGRESS).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A Parquet partition that took none of the last `IDLE_ROWS` rows is written out and its
    /// columns serve the next partition; the rows of every partition are in its file once.
    #[test]
    fn an_idle_parquet_partition_is_written_out_and_its_columns_reused() {
        let (dir, decl) = files_sink("idle", SinkFormat::Parquet);
        let out = SinkTo::new(Arc::new(Outputs::open(vec![decl], "t", true).expect("open")), 0, 0);
        let mut buf: SinkBuf<crate::record::Rejected, String> = SinkBuf::partitioned(0, |k| format!("p={k}"));
        let row = |n: usize| {
            let origin = crate::record::Origin::joined("feed", n as u64, 0);
            crate::record::Rejected::new(&origin, &crate::record::Reject(format!("row {n}")))
        };
        let mut sent: HashMap<String, usize> = HashMap::new();
        let mut push = |buf: &mut SinkBuf<_, String>, key: &str, n: usize| {
            buf.push(&out, key.to_string(), row(n)).expect("push");
            *sent.entry(key.to_string()).or_default() += 1;
        };
        for n in 0..10 {
            push(&mut buf, "day1", n);
        }
        // Day 2 takes the rows from here on: day 1 goes idle, and is written once it has had
        // none of the last IDLE_ROWS rows.
        let mut n = 10;
        while n < 10 + IDLE_ROWS - 1 {
            push(&mut buf, "day2", n);
            n += 1;
        }
        assert!(buf.columns.contains_key("day1"), "written before it was idle for IDLE_ROWS rows");
        while n < 10 + IDLE_ROWS + FLUSH_ROWS {
            push(&mut buf, "day2", n);
            n += 1;
        }
        assert!(!buf.columns.contains_key("day1"), "still held after {} rows of another day", n - 10);
        // The next day takes columns already allocated.
        let sets = buf.spare_columns.len() + buf.columns.len();
        for _ in 0..5 {
            push(&mut buf, "day3", n);
            n += 1;
        }
        assert_eq!(buf.spare_columns.len() + buf.columns.len(), sets, "new columns for day 3");
        buf.flush(&out).expect("flush");
        out.outputs.commit(b"{}").expect("commit");
        for (key, rows) in &sent {
            let mut read = 0;
            for f in std::fs::read_dir(dir.join(format!("p={key}"))).expect("partition") {
                let file = File::open(f.expect("entry").path()).expect("open");
                crate::pq::for_each_row(file, |_, _| read += 1).expect("read");
            }
            assert_eq!(read, *rows, "{key}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn partition_folders_escape_like_hive() {
        assert_eq!(partition_segment("state", Some(&"CA".to_string())), "state=CA");
        assert_eq!(partition_segment("p", Some(&"a/b=c".to_string())), "p=a%2Fb%3Dc");
        assert_eq!(partition_segment("p", None), "p=__HIVE_DEFAULT_PARTITION__");
    }
}
