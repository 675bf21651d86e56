//! The batch runner. Generated code implements [`Pipeline`] (what happens to a record); this
//! module decides how it runs: inputs are split, rayon workers parse and push records through
//! the fused stages, partial aggregates merge, the watermark goes to +∞ after the last record
//! so every window fires, sinks commit, and the counts are reconciled and reported.

use std::collections::HashMap;
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use rayon::prelude::*;

use crate::input::{self, Format, LineBase, Split};
use crate::mask::{Key, Vault};
use crate::record::{Line, Origin};
use crate::sink::{Outputs, SinkDecl, SinkKind};

#[derive(Clone, Debug)]
pub struct SourceDecl {
    pub name: &'static str,
    /// The batch binding, when it is one this runtime reads (`files`).
    pub batch: Option<input::BatchDecl>,
    /// The stream binding, when it is one this runtime reads (`follow`, `stdin`).
    pub stream: Option<input::StreamDecl>,
    /// The declared bound on disorder (`watermark = …`), in milliseconds.
    pub watermark: i64,
    /// After this long without a record (processing time), the source stops holding the
    /// watermark back.
    pub idle_timeout: Option<i64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Source,
    Map,
    Aggregate,
    Union,
    Sink,
    Rejected,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::Source => "source",
            NodeKind::Map => "map",
            NodeKind::Aggregate => "aggregate",
            NodeKind::Union => "union",
            NodeKind::Sink => "sink",
            NodeKind::Rejected => "rejected",
        }
    }
}

#[derive(Clone, Debug)]
pub struct NodeDecl {
    pub name: &'static str,
    pub kind: NodeKind,
}

/// Counts of one operator. For every operator `read + expanded = written + filtered +
/// rejected`, where `expanded` is what `explode` added (one list of n elements adds n - 1); for
/// sources and sinks `expanded` is 0, so `read = written + filtered + rejected` exactly. For an
/// aggregate, `read` counts rows folded in and `written` the groups emitted; `filtered` counts
/// rows in groups that `k >= N` suppressed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stat {
    pub read: u64,
    pub written: u64,
    pub filtered: u64,
    pub rejected: u64,
    pub expanded: i64,
    /// Records that came for a window whose allowed lateness had passed (dropped), or, at a
    /// source with `late = to NAME`, that arrived behind the watermark.
    pub late: u64,
}

impl Stat {
    pub(crate) fn add(&mut self, o: &Stat) {
        self.read += o.read;
        self.written += o.written;
        self.filtered += o.filtered;
        self.rejected += o.rejected;
        self.expanded += o.expanded;
        self.late += o.late;
    }
}

/// What every record of a run can reach: the HMAC key, the token vault, `env(…)` values.
#[derive(Debug)]
pub struct Context {
    /// Distinguishes runs (and their keys) within one process.
    id: u64,
    pub key: Option<Key>,
    mac: Option<hmac::Hmac<sha2::Sha256>>,
    pub vault: Vault,
    pub env: HashMap<&'static str, String>,
}

impl Context {
    /// HMAC-SHA256 of `value` under the run's key, hex-encoded. The last value each thread
    /// pseudonymized is remembered: rows `explode` makes from one record repeat its ids, and
    /// each is hashed once.
    pub fn hmac(&self, value: &[u8]) -> String {
        // (context, value, pseudonym): a context is one run with one key.
        thread_local! {
            static LAST: std::cell::RefCell<(u64, Vec<u8>, String)> =
                const { std::cell::RefCell::new((0, Vec::new(), String::new())) };
        }
        let hit = LAST.with(|l| {
            l.try_borrow().ok().filter(|l| l.0 == self.id && !l.2.is_empty() && l.1 == value).map(|l| l.2.clone())
        });
        if let Some(h) = hit {
            return h;
        }
        let h = self.hmac_uncached(value);
        LAST.with(|l| {
            if let Ok(mut l) = l.try_borrow_mut() {
                l.0 = self.id;
                l.1.clear();
                l.1.extend_from_slice(value);
                l.2.clone_from(&h);
            }
        });
        h
    }

    fn hmac_uncached(&self, value: &[u8]) -> String {
        use hmac::Mac;
        match &self.mac {
            Some(m) => {
                let mut m = m.clone();
                m.update(value);
                let mut text = [0u8; 64];
                match hex::encode_to_slice(m.finalize().into_bytes(), &mut text) {
                    Ok(()) => String::from_utf8(text.to_vec()).unwrap_or_default(),
                    Err(_) => String::new(),
                }
            }
            // `run` refuses to start a pipeline that uses `hmac` without a key.
            None => String::new(),
        }
    }

    pub fn tokenize(&self, value: &str) -> String {
        match &self.key {
            Some(k) => self.vault.tokenize(k, value),
            None => String::new(),
        }
    }

    pub fn env(&self, name: &str) -> &str {
        self.env.get(name).map_or("", String::as_str)
    }
}

/// The part of a worker the runtime owns.
#[derive(Debug)]
pub struct Base {
    pub ctx: Arc<Context>,
    pub out: Arc<Outputs>,
    pub stats: Vec<Stat>,
    /// The first write error; the run stops with it.
    pub error: Option<io::Error>,
    /// Arrival order, for `first`/`last` ties.
    pub seq: u64,
    /// The watermark: no record older than this is expected any more (`i64::MIN` until a
    /// streaming run advances it; a batch run never does before its end).
    pub watermark: i64,
    /// The largest event time each source has read.
    pub max_ts: Vec<i64>,
    /// This worker's number and how many there are: with more than one (a stream's keyed
    /// workers), each group of an aggregate lives on the worker its key hashes to.
    pub worker: usize,
    pub workers: usize,
    /// The buffer splits are read into, reused from split to split.
    read_buf: Vec<u8>,
}

impl Base {
    pub fn new(ctx: Arc<Context>, out: Arc<Outputs>, nodes: usize) -> Base {
        Base {
            ctx,
            out,
            stats: vec![Stat::default(); nodes],
            error: None,
            seq: 0,
            watermark: i64::MIN,
            max_ts: Vec::new(),
            worker: 0,
            workers: 1,
            read_buf: Vec::new(),
        }
    }

    /// Records an I/O error from a sink write.
    pub fn io(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.error.get_or_insert(e);
        }
    }

    /// Source `source` read a record with event time `ts` (its watermark follows the largest).
    #[inline]
    pub fn saw(&mut self, source: usize, ts: i64) {
        if source >= self.max_ts.len() {
            self.max_ts.resize(source + 1, i64::MIN);
        }
        if ts > self.max_ts[source] {
            self.max_ts[source] = ts;
        }
    }

    pub fn merge(&mut self, other: &mut Base) {
        for (a, b) in self.stats.iter_mut().zip(&other.stats) {
            a.add(b);
        }
        for (k, t) in other.max_ts.iter().enumerate() {
            self.saw(k, *t);
        }
        if self.error.is_none() {
            self.error = other.error.take();
        }
    }
}

/// A pipeline as generated code describes it.
pub trait Pipeline: Sync {
    type Worker: Send;
    const NAME: &'static str;
    fn nodes(&self) -> Vec<NodeDecl>;
    fn sources(&self) -> Vec<SourceDecl>;
    fn sinks(&self) -> Vec<SinkDecl>;
    /// Whether any stage needs the HMAC key (`hmac`, `tokenize`, or a mask that uses them).
    fn needs_key(&self) -> bool;
    /// Connectors the program declares that have no runner yet (a pipeline embedded in Rust
    /// compiles with them, for `run_batch`); `run` refuses to start while there are any.
    fn unavailable(&self) -> Vec<&'static str> {
        Vec::new()
    }
    /// The environment variables `env(…)` reads.
    fn env_vars(&self) -> &'static [&'static str];
    fn worker(&self, base: Base) -> Self::Worker;
    fn base<'w>(&self, w: &'w mut Self::Worker) -> &'w mut Base;
    /// Parses one JSON record of source `source` and pushes it through the pipeline.
    fn json(&self, w: &mut Self::Worker, source: usize, o: &Origin<'_>);
    /// The same for a CSV record, read by the file's header.
    fn csv(&self, w: &mut Self::Worker, source: usize, rec: &csv::ByteRecord, header: &csv::ByteRecord, o: &Origin<'_>);
    /// The same for a Parquet row.
    fn parquet(&self, w: &mut Self::Worker, source: usize, row: &parquet::record::Row, o: &Origin<'_>);
    /// The end of a split: rows waiting in blocks (to be scored together) are processed, so
    /// nothing outlives the split's buffer.
    fn end_split(&self, w: &mut Self::Worker) {
        let _ = w;
    }
    /// Merges another worker's partial aggregates and buffers into this one.
    fn merge(&self, into: &mut Self::Worker, from: Self::Worker);
    /// The watermark passes +∞: every aggregate emits its groups, downstream of it runs.
    fn finish(&self, w: &mut Self::Worker);
    /// The watermark reached `wm`: windows that ended fire (streaming).
    fn advance(&self, w: &mut Self::Worker, wm: i64);
    /// Groups held by the worker's aggregates.
    fn state_size(&self, w: &Self::Worker) -> usize;
    /// A row sent to the worker that owns its group (generated: one variant per aggregate).
    type Exchange: Send + 'static;
    /// How many aggregates the plan has, in the order `advance_one` numbers them.
    fn aggregates(&self) -> usize;
    /// Advances aggregate `k` alone to watermark `wm` (streaming with several workers).
    fn advance_one(&self, w: &mut Self::Worker, k: usize, wm: i64);
    /// The rows this worker produced for aggregates, with their owners and arrival sequence.
    fn take_outbox(&self, w: &mut Self::Worker) -> Vec<(usize, u64, Self::Exchange)>;
    /// Folds rows other workers sent into this worker's groups.
    fn apply(&self, w: &mut Self::Worker, rows: Vec<Self::Exchange>);
    /// The aggregates' state, for a checkpoint (rows waiting to be scored are processed first).
    fn save_state(&self, w: &mut Self::Worker) -> Result<Vec<u8>, String>;
    /// Restores a checkpoint's aggregate state.
    fn load_state(&self, w: &mut Self::Worker, bytes: &[u8]) -> Result<(), String>;
    /// Writes every buffered row.
    fn flush(&self, w: &mut Self::Worker);
}

/// The worker that owns the groups of `key` among `workers`: FNV-1a over the key's hash
/// input, the same in every process and every build, so a restarted stream finds each group
/// where its checkpoint left it.
pub fn owner<K: std::hash::Hash>(key: &K, workers: usize) -> usize {
    struct Fnv(u64);
    impl std::hash::Hasher for Fnv {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    key.hash(&mut h);
    usize::try_from(std::hash::Hasher::finish(&h) % workers.max(1) as u64).unwrap_or(0)
}

/// Run-time options of a generated pipeline binary (`pipec run FILE -- …` passes them on).
#[derive(Debug, Clone, Parser)]
#[command(about = "A pipeline compiled by pipec.")]
pub struct Options {
    /// Which bindings the sources use: `batch` (read every file, then stop) or `stream`
    /// (follow the stream bindings until they end or the run is stopped).
    #[arg(long, default_value = "batch")]
    pub mode: String,
    /// Stream: where checkpoints are kept; a restart with the same directory goes on from the
    /// last one, and file sinks get every row exactly once.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Stream: how often to checkpoint and publish file-sink output.
    #[arg(long, default_value = "10s")]
    pub checkpoint_interval: String,
    /// Stream: how often to print progress (0 for never).
    #[arg(long, default_value = "10s")]
    pub metrics_interval: String,
    /// Stream: serve metrics in Prometheus text format at this address (e.g. 127.0.0.1:9898).
    #[arg(long)]
    pub metrics_addr: Option<String>,
    /// Stream: how often `follow` looks for new data.
    #[arg(long, default_value = "100ms")]
    pub poll_interval: String,
    /// Stream: end the run (every window fires) after this long without input.
    #[arg(long)]
    pub exit_when_idle: Option<String>,
    /// Reads source NAME from URI (a file glob) instead of its declared binding.
    #[arg(long = "source", value_name = "NAME=URI")]
    pub sources: Vec<String>,
    /// Writes sink NAME to URI (a directory) instead of its declared location.
    #[arg(long = "sink", value_name = "NAME=URI")]
    pub sinks: Vec<String>,
    /// Reads the HMAC key from this file instead of the PIPE_HMAC_KEY environment variable.
    #[arg(long)]
    pub hmac_key_file: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Also writes the run summary (JSON) to this file.
    #[arg(long)]
    pub summary: Option<PathBuf>,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Prints nothing but errors.
    #[arg(long, short)]
    pub quiet: bool,
}

impl Default for Options {
    /// The options of a binary started without arguments.
    fn default() -> Options {
        Options::parse_from(["pipeline"])
    }
}

/// What a run did, per operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub pipeline: &'static str,
    pub seconds: f64,
    pub bytes: u64,
    pub operators: Vec<OperatorSummary>,
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OperatorSummary {
    pub name: &'static str,
    pub kind: &'static str,
    #[serde(flatten)]
    pub stat: Stat,
    /// Whether `read + expanded = written + filtered + rejected` holds.
    pub reconciled: bool,
}

impl Summary {
    /// The summary as the table a run prints.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{} finished in {:.2}s ({:.1} MB read)\n{:<10} {:<24} {:>12} {:>12} {:>10} {:>10}\n",
            self.pipeline,
            self.seconds,
            self.bytes as f64 / 1e6,
            "operator",
            "name",
            "read",
            "written",
            "filtered",
            "rejected"
        );
        for o in &self.operators {
            let read = if o.stat.expanded != 0 {
                format!("{}{:+}", o.stat.read, o.stat.expanded)
            } else {
                o.stat.read.to_string()
            };
            s.push_str(&format!(
                "{:<10} {:<24} {:>12} {:>12} {:>10} {:>10}{}\n",
                o.kind,
                o.name,
                read,
                o.stat.written,
                o.stat.filtered,
                o.stat.rejected,
                if o.reconciled { "" } else { "  (counts do not reconcile)" }
            ));
        }
        for out in &self.outputs {
            s.push_str(&format!("wrote {out}\n"));
        }
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Setup(String),
    #[error(transparent)]
    Key(#[from] crate::mask::KeyError),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

/// The context of a run: the key (when the pipeline needs one) and every `env(…)` value, from
/// `env` or else the process environment. A missing variable is an error before any input.
pub(crate) fn context<P: Pipeline>(
    p: &P,
    key: Option<Key>,
    env: &HashMap<String, String>,
) -> Result<Arc<Context>, RunError> {
    let mut values = HashMap::new();
    for name in p.env_vars() {
        match env.get(*name).cloned().or_else(|| std::env::var(name).ok()) {
            Some(v) => {
                values.insert(*name, v);
            }
            None => {
                return Err(RunError::Setup(format!(
                    "environment variable `{name}` is not set (the pipeline reads it with env(\"{name}\"))"
                )))
            }
        }
    }
    let mac = key.as_ref().map(|k| {
        use hmac::Mac;
        hmac::Hmac::<sha2::Sha256>::new_from_slice(k.bytes()).expect("HMAC takes keys of any length")
    });
    static RUNS: AtomicU64 = AtomicU64::new(1);
    let id = RUNS.fetch_add(1, Ordering::Relaxed);
    Ok(Arc::new(Context { id, key, mac, vault: Vault::default(), env: values }))
}

/// Settings of an in-memory run (the `run_batch_with` of an inline pipeline).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The HMAC key for `hmac`, `tokenize` and the masks that use them; `None` reads it from
    /// `PIPE_HMAC_KEY`, as the pipeline binaries do.
    pub hmac_key: Option<Key>,
    /// Values for `env("NAME")`; a name not given here is read from the process environment.
    pub env: HashMap<String, String>,
}

impl Settings {
    /// Settings with this HMAC key (at least 16 bytes).
    pub fn with_hmac_key(key: impl Into<Vec<u8>>) -> Result<Settings, crate::mask::KeyError> {
        Ok(Settings { hmac_key: Some(Key::new(key)?), env: HashMap::new() })
    }
}

/// Runs a pipeline on rows held in memory, in batch mode: `feed` pushes every input row into
/// the worker, the watermark then passes +∞ so every window fires, and the worker is returned
/// with each sink's rows kept in its buffer (see [`Outputs::in_memory`]). One thread; records
/// that fail go to `rejected` as in a file run, so the run fails only on its setup (a missing
/// key or environment variable).
pub fn run_memory<P: Pipeline>(
    p: &P,
    settings: &Settings,
    feed: impl FnOnce(&mut P::Worker),
) -> Result<(P::Worker, Vec<OperatorSummary>), RunError> {
    let key = match (&settings.hmac_key, p.needs_key()) {
        (_, false) => None,
        (Some(k), true) => Some(k.clone()),
        (None, true) => Some(Key::from_environment(None)?),
    };
    let ctx = context(p, key, &settings.env)?;
    let outputs = Arc::new(Outputs::in_memory(p.sinks()));
    let nodes = p.nodes();
    let mut w = p.worker(Base::new(ctx, outputs, nodes.len()));
    feed(&mut w);
    p.end_split(&mut w);
    p.finish(&mut w);
    p.flush(&mut w);
    let base = p.base(&mut w);
    if let Some(e) = base.error.take() {
        return Err(RunError::Io(e));
    }
    let operators = operators(&nodes, base.stats.clone());
    Ok((w, operators))
}

pub(crate) fn operators(nodes: &[NodeDecl], stats: Vec<Stat>) -> Vec<OperatorSummary> {
    nodes
        .iter()
        .zip(stats)
        .map(|(n, stat)| OperatorSummary {
            name: n.name,
            kind: n.kind.name(),
            stat,
            reconciled: n.kind == NodeKind::Aggregate
                || stat.read as i64 + stat.expanded
                    == (stat.written + stat.filtered + stat.rejected + stat.late) as i64,
        })
        .collect()
}

pub(crate) fn overrides(list: &[String], what: &str, known: &[&str]) -> Result<HashMap<String, String>, RunError> {
    let mut map = HashMap::new();
    for item in list {
        let Some((name, uri)) = item.split_once('=') else {
            return Err(RunError::Setup(format!("--{what} takes NAME=URI, not `{item}`")));
        };
        if !known.contains(&name) {
            return Err(RunError::Setup(format!(
                "--{what}: the pipeline has no {what} `{name}` (it has {})",
                known.join(", ")
            )));
        }
        map.insert(name.to_string(), uri.to_string());
    }
    Ok(map)
}

fn no_batch(source: &str) -> RunError {
    RunError::Setup(format!(
        "source `{source}` has no batch binding this runtime reads (`files`); run it with `--mode stream`"
    ))
}

/// Runs a pipeline in the mode its options ask for.
pub fn run<P: Pipeline>(p: &P, opts: &Options) -> Result<Summary, RunError> {
    // Everything that can be wrong with the setup is reported before any input is read.
    let unavailable = p.unavailable();
    if !unavailable.is_empty() {
        return Err(RunError::Setup(format!(
            "{}; this pipeline runs only in memory (`run_batch`) for now",
            unavailable.join("; ")
        )));
    }
    match opts.mode.as_str() {
        "batch" => run_batch(p, opts),
        "stream" => crate::stream::run(p, opts),
        other => Err(RunError::Setup(format!("--mode {other}: the modes are `batch` and `stream`"))),
    }
}

/// The sinks with `--sink NAME=DIR` applied, checked (two sinks may not share a directory),
/// and the default `rejected/` placed beside the first file sink.
pub(crate) fn sink_locations(mut sinks: Vec<SinkDecl>, overridden: &[String]) -> Result<Vec<SinkDecl>, RunError> {
    let names: Vec<&str> = sinks.iter().map(|s| s.name).collect();
    for (name, uri) in overrides(overridden, "sink", &names)? {
        if let Some(s) = sinks.iter_mut().find(|s| s.name == name) {
            if !matches!(s.kind, SinkKind::Files { .. }) {
                return Err(RunError::Setup(format!("--sink {name}: only file sinks take a location")));
            }
            s.location = Some(uri);
        }
    }
    let first_dir = sinks
        .iter()
        .find(|s| !s.beside_first && matches!(s.kind, SinkKind::Files { .. }))
        .and_then(|s| s.location.clone());
    for s in sinks.iter_mut().filter(|s| s.beside_first) {
        let parent =
            first_dir.as_deref().and_then(|d| std::path::Path::new(d).parent().map(std::path::Path::to_path_buf));
        s.location = Some(parent.unwrap_or_default().join("rejected").display().to_string());
    }
    // Two sinks writing one directory would overwrite each other's files.
    let mut dirs: Vec<(PathBuf, &str)> = Vec::new();
    for s in sinks.iter().filter(|s| matches!(s.kind, SinkKind::Files { .. })) {
        if let Some(loc) = &s.location {
            let dir = PathBuf::from(loc);
            if let Some((_, other)) = dirs.iter().find(|(d, _)| *d == dir) {
                return Err(RunError::Setup(format!(
                    "sinks `{other}` and `{}` both write to `{loc}`; give each its own directory",
                    s.name
                )));
            }
            dirs.push((dir, s.name));
        }
    }
    Ok(sinks)
}

/// Runs a pipeline in batch mode.
fn run_batch<P: Pipeline>(p: &P, opts: &Options) -> Result<Summary, RunError> {
    let start = Instant::now();
    let key = if p.needs_key() { Some(Key::from_environment(opts.hmac_key_file.as_deref())?) } else { None };
    let ctx = context(p, key, &HashMap::new())?;

    let mut sources = p.sources();
    let names: Vec<&str> = sources.iter().map(|s| s.name).collect();
    for (name, uri) in overrides(&opts.sources, "source", &names)? {
        if let Some(s) = sources.iter_mut().find(|s| s.name == name) {
            match &mut s.batch {
                Some(b) => b.glob = uri,
                None => return Err(no_batch(s.name)),
            }
        }
    }
    if let Some(s) = sources.iter().find(|s| s.batch.is_none()) {
        return Err(no_batch(s.name));
    }
    let sinks = sink_locations(p.sinks(), &opts.sinks)?;
    let mut splits: Vec<Split> = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        let Some(b) = &s.batch else { return Err(no_batch(s.name)) };
        let planned = input::plan(i, &b.glob, b.format, input::SPLIT_BYTES)
            .map_err(|e| RunError::Setup(format!("source `{}`: {e}", s.name)))?;
        splits.extend(planned);
    }
    let total: u64 = splits.iter().map(Split::len).sum();
    // Larger splits first, so the last worker to finish is not the one with the biggest file.
    splits.sort_by_key(|s| std::cmp::Reverse(s.len()));

    let pool = {
        let mut b = rayon::ThreadPoolBuilder::new();
        if let Some(n) = opts.threads {
            b = b.num_threads(n);
        }
        b.build().map_err(|e| RunError::Setup(e.to_string()))?
    };
    let outputs = Arc::new(Outputs::open(sinks)?);
    let bar = progress(total, opts);
    let records = AtomicU64::new(0);
    let nodes = p.nodes();

    // One long-lived worker per thread takes splits from a shared queue (largest first), so
    // each keeps its buffers and partial aggregates for the whole run and the partials are
    // merged once per thread at the end.
    let next = AtomicUsize::new(0);
    let threads = pool.current_num_threads().min(splits.len()).max(1);
    let worker = pool.install(|| {
        (0..threads)
            .into_par_iter()
            .map(|_| {
                let mut w = p.worker(Base::new(ctx.clone(), outputs.clone(), nodes.len()));
                while let Some(split) = splits.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let n = read_split(p, &mut w, split, &sources);
                    p.end_split(&mut w);
                    records.fetch_add(n, Ordering::Relaxed);
                    bar.inc(split.len());
                    bar.set_message(format!("{} records", records.load(Ordering::Relaxed)));
                }
                w
            })
            .reduce_with(|mut a, b| {
                p.merge(&mut a, b);
                a
            })
    });
    let mut w = worker.unwrap_or_else(|| p.worker(Base::new(ctx.clone(), outputs.clone(), nodes.len())));
    p.finish(&mut w);
    p.flush(&mut w);
    bar.finish_and_clear();
    let base = p.base(&mut w);
    if let Some(e) = base.error.take() {
        drop(w);
        if let Ok(o) = Arc::try_unwrap(outputs) {
            o.abandon();
        }
        return Err(RunError::Io(e));
    }
    let stats = base.stats.clone();
    drop(w);
    let operators = operators(&nodes, stats);
    let mut summary = Summary { pipeline: P::NAME, seconds: 0.0, bytes: total, operators, outputs: Vec::new() };
    let Ok(outputs) = Arc::try_unwrap(outputs) else {
        return Err(RunError::Setup("internal: a worker still holds the outputs".into()));
    };
    summary.seconds = start.elapsed().as_secs_f64();
    let json = serde_json::to_vec_pretty(&summary).map_err(io::Error::other)?;
    summary.outputs = outputs.commit(&json)?.iter().map(|p| p.display().to_string()).collect();
    if let Some(path) = &opts.summary {
        std::fs::write(path, serde_json::to_vec_pretty(&summary).map_err(io::Error::other)?)?;
    }
    Ok(summary)
}

fn progress(total: u64, opts: &Options) -> indicatif::ProgressBar {
    if opts.no_progress || opts.quiet || !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Reads one split and pushes its records; returns how many it read. A split that cannot be
/// read stops the run (through the worker's error), a record that cannot be parsed does not.
fn read_split<P: Pipeline>(p: &P, w: &mut P::Worker, split: &Split, sources: &[SourceDecl]) -> u64 {
    let decl = &sources[split.source];
    let lines = LineBase::new(split);
    let mut n = 0;
    let Some(batch) = &decl.batch else { return 0 };
    match batch.format {
        Format::Json => {
            let mut buf = std::mem::take(&mut p.base(w).read_buf);
            if let Err(e) = split.read_into(&mut buf) {
                p.base(w).io(Err(io::Error::new(e.kind(), format!("{}: {e}", split.display))));
                return 0;
            }
            input::for_each_line(&buf, |pos, index, line| {
                n += 1;
                let o = Origin {
                    source: decl.name,
                    file: &split.display,
                    offset: split.start + pos as u64,
                    line: Line::InSplit(&lines, index),
                    raw: line,
                };
                p.json(w, split.source, &o);
            });
            p.base(w).read_buf = buf;
        }
        Format::Csv => {
            let buf = match split.read() {
                Ok(b) => b,
                Err(e) => {
                    p.base(w).io(Err(io::Error::new(e.kind(), format!("{}: {e}", split.display))));
                    return 0;
                }
            };
            let header = split.header.as_deref().map(Vec::as_slice).unwrap_or_default();
            let header = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(header)
                .byte_records()
                .next()
                .and_then(Result::ok)
                .unwrap_or_default();
            let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(buf.as_slice());
            let mut rec = csv::ByteRecord::new();
            loop {
                let pos = reader.position().clone();
                match reader.read_byte_record(&mut rec) {
                    Ok(false) => break,
                    Ok(true) => {
                        let end = reader.position().byte() as usize;
                        let start = pos.byte() as usize;
                        let raw = buf.get(start..end).unwrap_or_default();
                        let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
                        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                        if rec.len() == 1 && rec.get(0).is_some_and(<[u8]>::is_empty) {
                            continue;
                        }
                        n += 1;
                        let o = Origin {
                            source: decl.name,
                            file: &split.display,
                            offset: split.start + pos.byte(),
                            line: Line::InSplit(&lines, pos.line().saturating_sub(1)),
                            raw,
                        };
                        p.csv(w, split.source, &rec, &header, &o);
                    }
                    Err(e) => {
                        // A CSV error (bad UTF-8 is not one: records are bytes) ends the file.
                        p.base(w).io(Err(io::Error::other(format!("{}: {e}", split.display))));
                        break;
                    }
                }
            }
        }
        Format::Parquet => {
            let file = match std::fs::File::open(split.path.as_ref()) {
                Ok(f) => f,
                Err(e) => {
                    p.base(w).io(Err(io::Error::new(e.kind(), format!("{}: {e}", split.display))));
                    return 0;
                }
            };
            let reader = match parquet::file::serialized_reader::SerializedFileReader::new(file) {
                Ok(r) => r,
                Err(e) => {
                    p.base(w).io(Err(io::Error::other(format!("{}: {e}", split.display))));
                    return 0;
                }
            };
            let rows = match parquet::file::reader::FileReader::get_row_iter(&reader, None) {
                Ok(r) => r,
                Err(e) => {
                    p.base(w).io(Err(io::Error::other(format!("{}: {e}", split.display))));
                    return 0;
                }
            };
            for (i, row) in rows.enumerate() {
                n += 1;
                let position = format!("row {i}");
                match row {
                    Ok(row) => {
                        let o = Origin {
                            source: decl.name,
                            file: &split.display,
                            offset: i as u64,
                            line: Line::Unknown,
                            raw: position.as_bytes(),
                        };
                        p.parquet(w, split.source, &row, &o);
                    }
                    Err(e) => {
                        p.base(w).io(Err(io::Error::other(format!("{}: {e}", split.display))));
                        break;
                    }
                }
            }
        }
    }
    n
}

/// The `main` of a generated pipeline binary: parses the options, runs, prints the summary.
pub fn main<P: Pipeline>(p: P) -> std::process::ExitCode {
    let opts = Options::parse();
    match run(&p, &opts) {
        Ok(s) => {
            if !opts.quiet {
                #[allow(clippy::print_stderr, reason = "the run summary is the binary's report")]
                {
                    eprint!("{}", s.table());
                }
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            #[allow(clippy::print_stderr, reason = "the binary's error report")]
            {
                eprintln!("error: {e}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}
