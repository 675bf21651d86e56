//! What a pipeline is to the runtime. Generated code implements [`Pipeline`] (what happens to
//! a record: parsing, the fused stages, aggregates, sinks); the engine ([`crate::engine`])
//! decides how it runs, on one thread or many processes. This module holds what both sides
//! share: the trait, the part of a worker the runtime owns ([`Base`]), the run's [`Context`],
//! its [`Options`] and [`Summary`], and the in-memory run of an embedded pipeline. It depends on no
//! other module of the runtime's execution: the engine depends on it, not the other way.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clap::Parser;

use crate::input;
use crate::mask::{Key, Vault};
use crate::record::Origin;
use crate::sink::{Outputs, SinkDecl, SinkKind, SinkTo};

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
    /// A join's table: read whole from its batch binding before the other sources (in both
    /// modes), never as a stream of its own.
    pub table: bool,
    /// How often a stream run reads a join's table again (milliseconds).
    pub refresh: Option<i64>,
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
    pub fn name(self) -> &'static str {
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
    /// Labeled data decides how many records reach it: the run's report shows its counts
    /// rounded down to a multiple of [`COUNT_STEP`].
    pub private: bool,
}

/// The step to which the report rounds the counts of operators labeled data decides: a count
/// below it shows as 0, so no report tells whether one person's record passed a condition.
pub const COUNT_STEP: u64 = 10;

impl Stat {
    /// The counts rounded down to a multiple of [`COUNT_STEP`].
    pub fn coarsened(&self) -> Stat {
        let r = |n: u64| n - n % COUNT_STEP;
        Stat {
            read: r(self.read),
            written: r(self.written),
            filtered: r(self.filtered),
            rejected: r(self.rejected),
            late: r(self.late),
            expanded: self.expanded - self.expanded % COUNT_STEP as i64,
            restarted: self.restarted,
        }
    }
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
    /// At a source: followed files read again from their start because they were truncated,
    /// rewritten or replaced under their name (their rows may arrive twice downstream).
    pub restarted: u64,
}

impl Stat {
    pub fn add(&mut self, o: &Stat) {
        self.read += o.read;
        self.written += o.written;
        self.filtered += o.filtered;
        self.rejected += o.rejected;
        self.expanded += o.expanded;
        self.late += o.late;
        self.restarted += o.restarted;
    }
}

/// What every record of a run can reach: the HMAC key, the token vault, `env(…)` values.
#[derive(Debug)]
pub struct Context {
    /// Distinguishes runs (and their keys) within one process.
    id: u64,
    pub key: Option<Key>,
    mac: Option<crate::mask::KeyedHash>,
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
        match &self.mac {
            Some(m) => m.hex(value),
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
    pub out: SinkTo,
    pub stats: Vec<Stat>,
    /// The first write error; the run stops with it.
    pub error: Option<io::Error>,
    /// Rows that broke a `require` step, by requirement: the run fails with them.
    pub violations: Violations,
    /// Arrival order, for `first`/`last` ties.
    pub seq: u64,
    /// The watermark: no record older than this is expected any more (`i64::MIN` until a
    /// streaming run advances it; a batch run never does before its end).
    pub watermark: i64,
    /// The largest event time each source has read.
    pub max_ts: Vec<i64>,
    /// This worker's number in the cluster and how many there are: with more than one, each
    /// group of an aggregate lives on the worker its key hashes to ([`owner`]), and rows bound
    /// for it wait in the generated outbox for the engine's key exchange.
    pub worker: usize,
    pub workers: usize,
    /// The buffer splits are read into, reused from split to split.
    pub read_buf: Vec<u8>,
    /// The broker's metadata of the record being parsed (Kafka), for the fields a source
    /// names to receive it.
    pub message: Option<crate::record::MessageMeta>,
}

impl Base {
    pub fn new(ctx: Arc<Context>, out: SinkTo, nodes: usize) -> Base {
        Base {
            ctx,
            worker: out.worker,
            out,
            stats: vec![Stat::default(); nodes],
            error: None,
            violations: Violations::default(),
            seq: 0,
            watermark: i64::MIN,
            max_ts: Vec::new(),
            workers: 1,
            read_buf: Vec::new(),
            message: None,
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
}

thread_local! {
    /// Records this thread's operators met behind the watermark, where a run that holds every
    /// window to the end of its input would have treated them otherwise (see [`behind`]).
    static BEHIND: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Notes a record met behind the watermark in a way that depends on the watermark: a window
/// that already fired or expired, a session or rolling window it passed, a join that dropped
/// what the record could meet, a source's late stream. A batch run that fires windows as event
/// time passes ([`crate::engine::batch`]) counts these to know whether its output equals the
/// one of holding every window to the end; a stream run does not look.
#[inline]
pub fn behind() {
    BEHIND.with(|b| b.set(b.get() + 1));
}

/// The records this thread noted [`behind`] the watermark since the last call.
pub fn take_behind() -> u64 {
    BEHIND.with(|b| b.replace(0))
}

/// A pipeline as generated code describes it.
pub trait Pipeline: Clone + Send + Sync + 'static {
    type Worker;
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
    /// The checks of `expect` steps: their text and whether a failure fails the run. A batch run
    /// in which a blocking one was never evaluated (no rows reached it) fails too.
    fn checks(&self) -> Vec<(&'static str, bool)> {
        Vec::new()
    }
    fn worker(&self, base: Base) -> Self::Worker;
    fn base<'w>(&self, w: &'w mut Self::Worker) -> &'w mut Base;
    /// Parses one JSON record of source `source` and pushes it through the pipeline.
    fn json(&self, w: &mut Self::Worker, source: usize, o: &Origin<'_>);
    /// The same for a CSV record, read by the file's header.
    fn csv(&self, w: &mut Self::Worker, source: usize, rec: &csv::ByteRecord, header: &csv::ByteRecord, o: &Origin<'_>);
    /// The same for a Parquet row.
    fn parquet(&self, w: &mut Self::Worker, source: usize, row: &parquet::record::Row, o: &Origin<'_>);
    /// The same for row `row` of an Arrow record batch (`format = arrow`). Generated code
    /// implements it when a source reads Arrow; otherwise no Arrow rows reach it.
    #[cfg(feature = "arrow")]
    fn arrow(&self, w: &mut Self::Worker, source: usize, rows: &crate::arrow::Rows<'_>, row: usize) {
        let _ = (source, rows, row);
        self.base(w)
            .io(Err(io::Error::other("internal: Arrow rows reached a pipeline generated without an Arrow source")));
    }
    /// The Arrow fields a file of source `source` must have (the descriptor of `crate::arrow`);
    /// empty when the source does not read Arrow.
    #[cfg(feature = "arrow")]
    fn arrow_schema(&self, source: usize) -> &'static str {
        let _ = source;
        ""
    }
    /// The end of a split: rows waiting in blocks (to be scored together) are processed, so
    /// nothing outlives the split's buffer.
    fn end_split(&self, w: &mut Self::Worker) {
        let _ = w;
    }
    /// The watermark passes +∞: every aggregate emits its groups, downstream of it runs
    /// (an in-memory run on one worker).
    fn finish(&self, w: &mut Self::Worker);
    /// Groups held by the worker's aggregates.
    fn state_size(&self, w: &Self::Worker) -> usize;
    /// A row on its way to the worker that owns its group (generated: one variant per
    /// aggregate, holding the key, the accumulators' inputs and the event time).
    type Exchange: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static;
    /// How many aggregates the plan has, in the order `advance_one` numbers them.
    fn aggregates(&self) -> usize;
    /// The aggregate a row is for and the hash that routes its key ([`route_hash`]).
    fn route(&self, row: &Self::Exchange) -> (usize, u64);
    /// The aggregate a row is for (`route`'s first half, without hashing the key).
    fn aggregate_of(&self, row: &Self::Exchange) -> usize;
    /// Advances aggregate `k` alone to watermark `wm`: its windows that ended fire.
    fn advance_one(&self, w: &mut Self::Worker, k: usize, wm: i64);
    /// The rows this worker produced for aggregates (their owners are found by `route`).
    fn take_outbox(&self, w: &mut Self::Worker) -> Vec<Self::Exchange>;
    /// Folds rows routed to this worker into its groups.
    fn apply(&self, w: &mut Self::Worker, rows: Vec<Self::Exchange>);
    /// The aggregates' state, for a checkpoint (rows waiting to be scored are processed first).
    fn save_state(&self, w: &mut Self::Worker) -> Result<Vec<u8>, String>;
    /// Adds the groups of a checkpoint's state whose key hash `keep` accepts: a restart with
    /// another number of workers gives each worker the groups it now owns.
    fn load_state(&self, w: &mut Self::Worker, bytes: &[u8], keep: &dyn Fn(u64) -> bool) -> Result<(), String>;
    /// Writes every buffered row.
    fn flush(&self, w: &mut Self::Worker);
    /// The records of joins' tables this worker has read since the last call (the
    /// [`SourceDecl::table`] sources), serialized, for every worker to build the tables from.
    fn table_part(&self, w: &mut Self::Worker) -> Result<Vec<u8>, String> {
        let _ = w;
        Ok(Vec::new())
    }
    /// Builds every join's table from all workers' parts ([`Pipeline::table_part`]), in
    /// worker order: the matches of a key keep the order of the records in the input.
    fn build_tables(&self, parts: &[Vec<u8>]) -> Result<Tables, String> {
        let _ = parts;
        Ok(Arc::new(()))
    }
    /// Has the worker's joins read `tables` (built by [`Pipeline::build_tables`]) from now on.
    fn use_tables(&self, w: &mut Self::Worker, tables: &Tables) {
        let _ = (w, tables);
    }
}

/// Every join's table of a pipeline, as [`Pipeline::build_tables`] built them: shared by the
/// workers of a process.
pub type Tables = Arc<dyn std::any::Any + Send + Sync>;

/// A stable hash of any hashable value: FNV-1a over its hash input, the same in every process,
/// host and build — for fingerprints of plans and splits, and names derived from values. (Group
/// keys are routed with the faster [`route_hash`].)
pub fn key_hash<K: std::hash::Hash>(key: &K) -> u64 {
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
    std::hash::Hasher::finish(&h)
}

/// The hash that sends a group key to its worker through the key exchange, and decides which
/// worker keeps a group when a checkpoint is restored (with any number of workers). The same in
/// every process and host — a function of the key's hash input alone, read eight bytes at a
/// time, little-endian — so a cluster's workers agree on every key. It replaced [`key_hash`]
/// here: FNV-1a multiplies once per byte, and hashing 64-character pseudonyms took 17% of the
/// daily benchmark (BENCHMARKS.md). Each word is folded in as rustc's FxHasher does; the
/// finish is MurmurHash3's 64-bit mix, so the low bits that pick a worker depend on every
/// input bit.
pub fn route_hash<K: std::hash::Hash>(key: &K) -> u64 {
    struct Words(u64);
    impl Words {
        #[inline(always)]
        fn mix(&mut self, word: u64) {
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    impl std::hash::Hasher for Words {
        fn finish(&self) -> u64 {
            let mut k = self.0;
            k ^= k >> 33;
            k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
            k ^= k >> 33;
            k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
            k ^ (k >> 33)
        }
        fn write(&mut self, bytes: &[u8]) {
            let mut words = bytes.chunks_exact(8);
            for w in &mut words {
                let mut b = [0u8; 8];
                b.copy_from_slice(w);
                self.mix(u64::from_le_bytes(b));
            }
            let rest = words.remainder();
            // The tail, and the length: "ab" and "ab\0" differ.
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(b) ^ ((bytes.len() as u64) << 56));
        }
        fn write_u8(&mut self, i: u8) {
            self.mix(u64::from(i));
        }
        fn write_u16(&mut self, i: u16) {
            self.mix(u64::from(i));
        }
        fn write_u32(&mut self, i: u32) {
            self.mix(u64::from(i));
        }
        fn write_u128(&mut self, i: u128) {
            self.mix(i as u64);
            self.mix((i >> 64) as u64);
        }
        fn write_u64(&mut self, i: u64) {
            self.mix(i);
        }
        fn write_usize(&mut self, i: usize) {
            self.mix(i as u64);
        }
    }
    let mut h = Words(0);
    key.hash(&mut h);
    std::hash::Hasher::finish(&h)
}

/// The worker among `workers` that owns keys of hash `hash` (timely's exchange makes the same
/// choice for the hash [`Pipeline::route`] gives).
pub fn owner(hash: u64, workers: usize) -> usize {
    usize::try_from(hash % workers.max(1) as u64).unwrap_or(0)
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
    /// Stream: start over as if the stream had never run: removes the state directory's
    /// checkpoints and the files earlier streams published into the file sinks.
    #[arg(long)]
    pub reset: bool,
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
    /// Worker threads in this process (default: one per core).
    #[arg(long, alias = "threads", short = 'w')]
    pub workers: Option<usize>,
    /// Processes in the cluster (timely's `-n`); each runs this binary with the same options
    /// and its own `--process`.
    #[arg(long, short = 'n', default_value_t = 1)]
    pub processes: usize,
    /// This process's number in the cluster, from 0 (timely's `-p`).
    #[arg(long, short = 'p', default_value_t = 0)]
    pub process: usize,
    /// A file of `host:port` lines, one per process in order (timely's `-h`; default:
    /// localhost:2101, localhost:2102, …).
    #[arg(long, short = 'H')]
    pub hosts: Option<PathBuf>,
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
    /// The process's peak resident memory in bytes (Linux's `VmHWM`; absent elsewhere).
    pub peak_memory: Option<u64>,
    /// The checks of `expect` blocks (and broken `require` steps): how often each was
    /// evaluated and failed.
    pub checks: Violations,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OperatorSummary {
    pub name: &'static str,
    pub kind: &'static str,
    #[serde(flatten)]
    pub stat: Stat,
    /// Whether `read + expanded = written + filtered + rejected` holds.
    pub reconciled: bool,
    /// The counts are rounded down to a multiple of [`COUNT_STEP`] (labeled data decides them).
    pub coarsened: bool,
}

/// This process's peak resident memory in bytes, from `/proc/self/status` (`None` where there
/// is no such file).
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

impl Summary {
    /// The summary as the table a run prints.
    pub fn table(&self) -> String {
        let peak = self.peak_memory.map(|b| format!(", peak memory {:.0} MB", b as f64 / 1e6)).unwrap_or_default();
        let mut s = format!(
            "{} finished in {:.2}s ({:.1} MB read{peak})\n{:<10} {:<24} {:>12} {:>12} {:>10} {:>10}\n",
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
                match (o.reconciled, o.coarsened) {
                    (false, _) => "  (counts do not reconcile)",
                    (true, true) => "  (in steps of 10: labeled data decides them)",
                    (true, false) => "",
                }
            ));
        }
        s.push_str(&self.checks.expectations());
        for out in &self.outputs {
            s.push_str(&format!("wrote {out}\n"));
        }
        s
    }
}

/// What each `require` step and each `expect` check saw (keyed by its text, with its stream):
/// a broken requirement or blocking expectation fails the run, which then publishes nothing;
/// a broken `warn` check is reported and the run goes on. Only counts are kept — a row's values
/// may be personal data, and an error message is not a sink that is cleared to receive them.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Violations(pub std::collections::BTreeMap<String, Tally>);

/// How a check fails a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// `require COND`, checked on every row; only broken rows are counted.
    Require,
    /// A check of an `expect` block, evaluated once per group and window: fails the run.
    Expect,
    /// A `warn` check of an `expect` block: reported, the run goes on.
    Warn,
}

/// The evaluations of one check and how many of them failed.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub gate: Gate,
    pub evaluated: u64,
    pub failed: u64,
}

impl Violations {
    /// A row broke requirement `what`.
    #[cold]
    pub fn add(&mut self, what: &str) {
        self.tally(what, Gate::Require, false);
    }

    /// Check `what` of an `expect` block held or not for one group.
    pub fn check(&mut self, what: &str, blocking: bool, held: bool) {
        self.tally(what, if blocking { Gate::Expect } else { Gate::Warn }, held);
    }

    fn tally(&mut self, what: &str, gate: Gate, held: bool) {
        let failed = u64::from(!held);
        match self.0.get_mut(what) {
            Some(t) => {
                t.evaluated += 1;
                t.failed += failed;
            }
            None => {
                self.0.insert(what.to_string(), Tally { gate, evaluated: 1, failed });
            }
        }
    }

    pub fn merge(&mut self, o: &Violations) {
        for (what, t) in &o.0 {
            match self.0.get_mut(what) {
                Some(mine) => {
                    mine.evaluated += t.evaluated;
                    mine.failed += t.failed;
                }
                None => {
                    self.0.insert(what.clone(), *t);
                }
            }
        }
    }

    /// Whether a requirement or a blocking expectation failed, or a blocking expectation was
    /// never evaluated: the run fails.
    pub fn fail(&self) -> bool {
        self.0.values().any(|t| t.gate != Gate::Warn && (t.failed > 0 || t.evaluated == 0))
    }

    /// Adds the declared checks no row reached (a batch run over an empty input, say), as
    /// evaluated no times.
    pub fn declare(&mut self, checks: &[(&'static str, bool)]) {
        for (what, blocking) in checks {
            if !self.0.contains_key(*what) {
                let gate = if *blocking { Gate::Expect } else { Gate::Warn };
                self.0.insert(what.to_string(), Tally { gate, evaluated: 0, failed: 0 });
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The exit code of a run these failed: 3 when a requirement did, else 4.
    pub fn exit_code(&self) -> u8 {
        if self.0.values().any(|t| t.failed > 0 && t.gate == Gate::Require) {
            RunError::REQUIREMENT_EXIT
        } else {
            RunError::EXPECTATION_EXIT
        }
    }

    /// The checks of `expect` blocks as a table: each with how often it was evaluated and
    /// failed (empty without `expect` blocks).
    pub fn expectations(&self) -> String {
        let checks: Vec<(&String, &Tally)> = self.0.iter().filter(|(_, t)| t.gate != Gate::Require).collect();
        if checks.is_empty() {
            return String::new();
        }
        let mut s = format!("{:<8} {:>9} {:>9}  {}\n", "check", "evaluated", "failed", "expectation");
        for (what, t) in checks {
            let verdict = match (t.failed, t.gate) {
                (0, Gate::Expect) if t.evaluated == 0 => "FAILED",
                (0, _) if t.evaluated == 0 => "WARN",
                (0, _) => "ok",
                (_, Gate::Warn) => "WARN",
                _ => "FAILED",
            };
            s.push_str(&format!("{verdict:<8} {:>9} {:>9}  {what}\n", t.evaluated, t.failed));
        }
        s
    }
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let broken: Vec<(&String, &Tally)> =
            self.0.iter().filter(|(_, t)| t.gate != Gate::Warn && (t.failed > 0 || t.evaluated == 0)).collect();
        let rows = broken.iter().filter(|(_, t)| t.gate == Gate::Require).count();
        let checks = broken.len() - rows;
        let mut parts = Vec::new();
        if rows > 0 {
            parts.push(format!("{rows} requirement{}", if rows == 1 { "" } else { "s" }));
        }
        if checks > 0 {
            parts.push(format!("{checks} expectation{}", if checks == 1 { "" } else { "s" }));
        }
        write!(f, "{} failed; nothing was published:", parts.join(" and "))?;
        for (what, t) in broken {
            match t.gate {
                Gate::Require => {
                    write!(f, "\n  {what}: false for {} row{}", t.failed, if t.failed == 1 { "" } else { "s" })?
                }
                _ if t.evaluated == 0 => write!(f, "\n  {what}: never evaluated (no rows reached it)")?,
                _ => write!(
                    f,
                    "\n  {what}: failed {} of {} time{}",
                    t.failed,
                    t.evaluated,
                    if t.evaluated == 1 { "" } else { "s" }
                )?,
            }
        }
        let table = self.expectations();
        if !table.is_empty() {
            write!(f, "\n{}", table.trim_end())?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Setup(String),
    /// Rows broke `require` steps or blocking `expect` checks (the binary exits with
    /// [`RunError::exit_code`]).
    #[error("{0}")]
    Requirements(Violations),
    #[error(transparent)]
    Key(#[from] crate::mask::KeyError),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

impl RunError {
    /// The exit code of a run that failed a `require` step: a gate, told apart from errors (1).
    pub const REQUIREMENT_EXIT: u8 = 3;
    /// The exit code of a run whose data broke a blocking check of an `expect` block.
    pub const EXPECTATION_EXIT: u8 = 4;

    /// The code the binary exits with.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Requirements(v) => v.exit_code(),
            _ => 1,
        }
    }
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
    let mac = key.as_ref().map(|k| crate::mask::KeyedHash::new(k.bytes()));
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
    let mut w = p.worker(Base::new(ctx, SinkTo::new(outputs, 0, 0), nodes.len()));
    feed(&mut w);
    p.end_split(&mut w);
    p.finish(&mut w);
    p.flush(&mut w);
    let base = p.base(&mut w);
    if let Some(e) = base.error.take() {
        return Err(RunError::Io(e));
    }
    if base.violations.fail() {
        return Err(RunError::Requirements(std::mem::take(&mut base.violations)));
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
            // Checked on the exact counts, then shown coarsened where labeled data decides them.
            reconciled: n.kind == NodeKind::Aggregate
                || stat.read as i64 + stat.expanded
                    == (stat.written + stat.filtered + stat.rejected + stat.late) as i64,
            stat: if n.private { stat.coarsened() } else { stat },
            coarsened: n.private,
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

pub(crate) fn no_batch(source: &str) -> RunError {
    RunError::Setup(format!(
        "source `{source}` has no batch binding this runtime reads (`files`); run it with `--mode stream`"
    ))
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
        s.location = Some(match first_dir.as_deref().and_then(|d| d.strip_prefix("s3://")) {
            // In the same bucket, beside the prefix.
            Some(rest) => {
                let rest = rest.trim_end_matches('/');
                match rest.rsplit_once('/') {
                    Some((parent, _)) => format!("s3://{parent}/rejected"),
                    None => format!("s3://{rest}/rejected"),
                }
            }
            None => {
                let parent = first_dir
                    .as_deref()
                    .and_then(|d| std::path::Path::new(d).parent().map(std::path::Path::to_path_buf));
                parent.unwrap_or_default().join("rejected").display().to_string()
            }
        });
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
    // An object-store prefix inside another's: the outer sink's commit would delete the inner
    // one's parts, and readers of the outer would read them.
    let prefixes: Vec<(String, &str)> = sinks
        .iter()
        .filter(|s| matches!(s.kind, SinkKind::Files { .. }))
        .filter_map(|s| {
            s.location
                .as_deref()
                .filter(|l| l.starts_with("s3://"))
                .map(|l| (l.trim_end_matches('/').to_string(), s.name))
        })
        .collect();
    for (outer, a) in &prefixes {
        if let Some((inner, b)) = prefixes.iter().find(|(inner, _)| inner.starts_with(&format!("{outer}/"))) {
            let fix = if b.starts_with("rejected") { " (pass `--sink rejected->files=…` elsewhere)" } else { "" };
            return Err(RunError::Setup(format!(
                "sink `{b}` writes `{inner}`, inside sink `{a}`'s `{outer}`: give each its own prefix{fix}"
            )));
        }
    }
    Ok(sinks)
}

#[cfg(test)]
mod tests {
    use super::{owner, route_hash};

    #[test]
    fn route_hashes_are_the_same_in_every_build_and_on_every_host() {
        // Pinned (computed apart from this code, from the definition): the workers of a
        // cluster must agree on them — little-endian words, no seed.
        assert_eq!(route_hash(&("m-00000042".to_string(), 19_000i64)), 0x019e_4a7f_ec5c_510f);
        assert_eq!(route_hash(&7i64), 0x1e41_f903_378a_420a);
        assert_ne!(route_hash(&"ab".to_string()), route_hash(&"ab\0".to_string()));
    }

    #[test]
    fn pseudonymized_keys_spread_evenly_over_the_workers() {
        // Keys that share long prefixes and differ only in a few characters, as ids do.
        for workers in [2usize, 3, 4, 7, 8] {
            let mut counts = vec![0usize; workers];
            for i in 0..20_000 {
                counts[owner(route_hash(&(format!("acct-{:07}-{}", i / 7, i % 7), i64::from(i % 90))), workers)] += 1;
            }
            let even = 20_000 / workers;
            for c in &counts {
                assert!(c.abs_diff(even) * 10 < even, "{workers} workers: {counts:?}");
            }
        }
    }
}
