//! The execution core: every run, batch or stream, on one thread or many processes, is a
//! timely dataflow. Generated code stays unaware of timely: it pushes records through its fused
//! stages and leaves rows bound for an aggregate in its outbox; this module moves those rows to
//! the worker that owns their key, tells each aggregate when the cluster's watermark lets its
//! windows fire, and coordinates checkpoints.
//!
//! The dataflow of one worker (every worker of every process builds the same one):
//!
//! ```text
//! rows (outbox) ──exchange by key hash──▶ aggregate 0 ──exchange──▶ aggregate 1 … ──▶ probe
//! reports ──broadcast──────────────────────┴─────────────────────────┴── control ──▶ probe
//! ```
//!
//! Timestamps are *rounds* (`u64`). In a round a worker reads some input (a batch run reads
//! all of it in round 0), sends the rows its outbox collected, and sends one [`Report`] to every
//! worker: how far each source has read in event time, whether it finished or is idle. When the
//! frontier passes a round, every worker has the reports of every worker for it, so each
//! aggregate operator computes the same cluster-wide watermark ([`Clock`]) and fires its
//! windows with it; the rows it emits go on to later aggregates in the same round. A stream
//! waits at the end of each round until the whole cluster has finished it, which keeps workers
//! within one round of each other and makes a round boundary a consistent cut for checkpoints.

pub mod batch;
pub mod stream;

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use timely::dataflow::channels::pact::{Exchange, Pipeline as Local};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::vec::Input;
use timely::dataflow::operators::{Capability, Concat, Exchange as _, Probe};
use timely::dataflow::{InputHandleVec, ProbeHandle, StreamVec};
use timely::worker::Worker as Timely;

use crate::input::Format;
use crate::record::{Line, Origin};
use crate::run::{Options, Pipeline, RunError, SourceDecl, Summary};

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
        "batch" => batch::run(p, opts),
        "stream" => stream::run(p, opts),
        other => Err(RunError::Setup(format!("--mode {other}: the modes are `batch` and `stream`"))),
    }
}

/// The `main` of a generated pipeline binary: parses the options, runs, prints the summary.
pub fn main<P: Pipeline>(p: P) -> std::process::ExitCode {
    let opts = <Options as clap::Parser>::parse();
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
            std::process::ExitCode::from(e.exit_code())
        }
    }
}

/// The timely configuration `--workers`, `--processes`, `--process` and `--hosts` describe.
pub fn cluster(opts: &Options) -> Result<timely::Config, RunError> {
    let threads = opts.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    let communication = if opts.processes > 1 {
        if opts.process >= opts.processes {
            return Err(RunError::Setup(format!(
                "--process {} is not one of the {} processes (they are numbered from 0)",
                opts.process, opts.processes
            )));
        }
        let addresses: Vec<String> = match &opts.hosts {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| RunError::Setup(format!("--hosts {}: {e}", file.display())))?;
                let lines: Vec<String> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(String::from)
                    .collect();
                if lines.len() < opts.processes {
                    return Err(RunError::Setup(format!(
                        "--hosts {} names {} processes, but --processes is {}",
                        file.display(),
                        lines.len(),
                        opts.processes
                    )));
                }
                lines.into_iter().take(opts.processes).collect()
            }
            None => (0..opts.processes).map(|i| format!("localhost:{}", 2101 + i)).collect(),
        };
        timely::CommunicationConfig::Cluster {
            threads,
            process: opts.process,
            addresses,
            report: false,
            zerocopy: false,
        }
    } else if threads > 1 {
        timely::CommunicationConfig::Process(threads)
    } else {
        timely::CommunicationConfig::Thread
    };
    Ok(timely::Config { communication, worker: timely::WorkerConfig::default() })
}

/// Runs `work` on every worker of this process (in the cluster the options describe) and
/// returns their results in worker order. A process that loses its peers stops with an error.
pub fn execute<T, F>(opts: &Options, work: F) -> Result<Vec<T>, RunError>
where
    T: Send + 'static,
    F: Fn(&mut Timely) -> T + Send + Sync + 'static,
{
    let work: Arc<Work> = Arc::new(move |t: &mut Timely| Box::new(work(t)) as Box<dyn Any + Send>);
    execute_erased(opts, work)?
        .into_iter()
        .map(|r| r.downcast::<T>().map(|r| *r))
        .collect::<Result<Vec<T>, _>>()
        .map_err(|_| RunError::Setup("internal: a worker returned a result of another type".into()))
}

/// A worker's work with its result's type erased.
type Work = dyn Fn(&mut Timely) -> Box<dyn Any + Send> + Send + Sync;

// Not generic, and so compiled once, here, with timely's communication layer and worker setup
// beneath it, instead of in every generated pipeline crate (`execute`, which every pipeline
// instantiates, only erases the result's type). The same goes for [`dataflow`], [`gather`]'s
// exchange and the operators on [`Report`]s and [`Lines`] below: what does not depend on the
// pipeline's own types is kept out of generic code: the main example's crate compiles 10,180
// monomorphized items instead of 28,397 (ARCHITECTURE.md, *A pipeline's crate compiles only
// what depends on its types*).
fn execute_erased(opts: &Options, work: Arc<Work>) -> Result<Vec<Box<dyn Any + Send>>, RunError> {
    let config = cluster(opts)?;
    if opts.processes > 1 {
        // A peer that dies takes its connections with it: timely's network threads panic. Say
        // so in one line (the failure model restarts every process) instead of a backtrace.
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name().is_some_and(|n| n.starts_with("timely")) {
                #[allow(clippy::print_stderr, reason = "the binary's error report")]
                {
                    eprintln!("error: lost a process of the cluster: {info}");
                }
            } else {
                default(info);
            }
        }));
    }
    // A worker that panics (a bug, never bad data) must not leave its peers waiting for it.
    let work = move |t: &mut Timely| match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(t))) {
        Ok(v) => v,
        Err(_) => std::process::exit(101),
    };
    let guards =
        timely::execute(config, work).map_err(|e| RunError::Setup(format!("cannot start the cluster: {e}")))?;
    let mut out = Vec::new();
    for r in guards.join() {
        out.push(r.map_err(|e| RunError::Setup(format!("a worker failed: {e}")))?);
    }
    Ok(out)
}

/// The scope a worker's dataflows are built in (timestamps are rounds).
pub type Scope<'s> = timely::dataflow::Scope<'s, u64>;

/// Builds a dataflow on this worker with `build`.
pub fn dataflow(timely: &mut Timely, build: &mut dyn FnMut(Scope<'_>)) {
    timely.dataflow::<u64, _, _>(build);
}

/// What one source looks like from one worker, as a reader, at the end of a round.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SourceProgress {
    /// This worker will read nothing more from it.
    pub finished: bool,
    /// This worker has read nothing from it for longer than its `idle_timeout`.
    pub idle: bool,
    /// This worker has (or may have: it has not looked yet) input of the source to read: until
    /// it has read some, it holds the watermark at its start.
    pub pending: bool,
}

/// Reader numbers of the partitions of a partitioned source (Kafka) start here, above every
/// worker's number: each partition has its own event-time account (see [`Clock`]).
pub const PARTITION_READER: usize = 1 << 40;

/// What one partition of a partitioned source (Kafka) looks like from the worker that reads it.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartitionProgress {
    pub source: usize,
    pub partition: i32,
    /// No message for longer than the source's `idle_timeout`: it does not hold the watermark.
    pub idle: bool,
    /// It has messages (or may have: its end is not known yet). While none of its records has
    /// been parsed, such a partition holds the watermark where it is.
    pub pending: bool,
    /// Messages produced and not read yet.
    pub lag: i64,
}

/// What a worker tells every worker at the end of each round.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Report {
    pub worker: usize,
    pub sources: Vec<SourceProgress>,
    /// Per reader (a worker whose lines this worker parsed): the largest event time of each
    /// source among those lines (`i64::MIN` for none).
    pub seen: Vec<(usize, Vec<i64>)>,
    /// The partitions this worker reads, of every partitioned source.
    pub partitions: Vec<PartitionProgress>,
    /// Records this worker has read, in all.
    pub records: u64,
    /// This worker took input this round: the others end the round at once instead of
    /// waiting for theirs (a lone record is not held back by a tick).
    pub busy: bool,
    /// Worker 0: write a checkpoint at the end of this round.
    pub checkpoint: bool,
    /// Stop after this round (an interrupt, or the input idle for `--exit-when-idle`).
    pub stop: bool,
    /// The last epoch whose state this worker has written durably.
    pub durable: Option<u64>,
    /// Worker 0: the last epoch the checkpoint manifest records (complete everywhere).
    pub committed: Option<u64>,
    /// Worker 0: every worker reads the joins' tables again after this round (`refresh`).
    pub refresh: bool,
}

/// The cluster's progress as the reports of completed rounds tell it.
#[derive(Clone, Debug)]
pub struct Clock {
    latest: Vec<Option<Report>>,
    /// Per source: the declared bound on disorder and the idle timeout.
    bounds: Vec<(i64, Option<i64>)>,
    /// Per source: whether it is partitioned (Kafka): its readers are its partitions, not the
    /// workers.
    partitioned: Vec<bool>,
    /// Per source: whether it is a join's table, read before the run: it holds nothing back.
    tables: Vec<bool>,
    watermark: i64,
}

impl Clock {
    pub fn new(sources: &[SourceDecl], peers: usize, watermark: i64) -> Clock {
        Clock {
            latest: vec![None; peers],
            bounds: sources.iter().map(|s| (s.watermark, s.idle_timeout)).collect(),
            partitioned: sources
                .iter()
                .map(|s| s.stream.as_ref().is_some_and(|st| matches!(st.kind, crate::input::StreamKind::Kafka(_))))
                .collect(),
            tables: sources.iter().map(|s| s.table).collect(),
            watermark,
        }
    }

    /// Takes in one completed round's reports.
    pub fn observe(&mut self, reports: &[Report]) {
        for r in reports {
            if let Some(slot) = self.latest.get_mut(r.worker) {
                *slot = Some(r.clone());
            }
        }
        self.watermark = self.watermark.max(self.compute());
    }

    /// The watermark: for every source, each reader's largest event time (a reader is the
    /// worker that read a file, whichever worker parsed its lines) minus the source's bound,
    /// and the minimum over the readers that still hold it back (not finished, not idle, and
    /// having read something); the pipeline's is the minimum over the sources not finished on
    /// every worker nor idle on every worker; +∞ once every source finished everywhere. It
    /// never goes back.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    fn compute(&self) -> i64 {
        let mut wm = i64::MAX;
        let mut holding = false;
        let mut all_finished = true;
        for (k, (bound, _)) in self.bounds.iter().enumerate() {
            let states: Vec<SourceProgress> = self
                .latest
                .iter()
                .map(|r| r.as_ref().and_then(|r| r.sources.get(k).copied()).unwrap_or_default())
                .collect();
            if states.iter().all(|s| s.finished) || self.tables.get(k).copied().unwrap_or(false) {
                continue;
            }
            all_finished = false;
            if self.partitioned.get(k).copied().unwrap_or(false) {
                // Flink's rule for Kafka: the minimum over the partitions, less those idle
                // longer than the idle timeout and those with nothing to read yet. A worker not
                // heard from yet may own partitions that hold it back.
                if self.latest.iter().any(Option::is_none) {
                    holding = true;
                    wm = i64::MIN;
                    continue;
                }
                let parts: Vec<PartitionProgress> = self
                    .latest
                    .iter()
                    .flatten()
                    .flat_map(|r| r.partitions.iter().filter(|p| p.source == k && !p.idle).copied())
                    .collect();
                if parts.is_empty() {
                    continue;
                }
                holding = true;
                let source_wm = parts
                    .iter()
                    .filter_map(|p| {
                        let reader = PARTITION_READER + usize::try_from(p.partition).unwrap_or(0);
                        match self.reader_max(reader, k) {
                            i64::MIN => p.pending.then_some(i64::MIN),
                            t => Some(t.saturating_sub(*bound)),
                        }
                    })
                    .min()
                    .unwrap_or(i64::MIN);
                wm = wm.min(source_wm);
                continue;
            }
            let holders: Vec<usize> =
                states.iter().enumerate().filter(|(_, s)| !s.finished && !s.idle).map(|(r, _)| r).collect();
            if holders.is_empty() {
                continue;
            }
            holding = true;
            // A reader that has read nothing of the source holds the others back only while it
            // has (or may have) files of its own to read.
            let source_wm = holders
                .iter()
                .filter_map(|r| match self.reader_max(*r, k) {
                    i64::MIN => states[*r].pending.then_some(i64::MIN),
                    t => Some(t.saturating_sub(*bound)),
                })
                .min()
                .unwrap_or(i64::MIN);
            wm = wm.min(source_wm);
        }
        if all_finished {
            return i64::MAX;
        }
        if !holding {
            // Every source is idle: the watermark stays where it is.
            return self.watermark;
        }
        wm
    }

    /// The largest event time of source `k` any worker has parsed from reader `r`'s lines.
    fn reader_max(&self, r: usize, k: usize) -> i64 {
        self.latest
            .iter()
            .flatten()
            .flat_map(|rep| rep.seen.iter())
            .filter(|(reader, _)| *reader == r)
            .filter_map(|(_, per)| per.get(k).copied())
            .max()
            .unwrap_or(i64::MIN)
    }

    pub fn latest(&self) -> impl Iterator<Item = &Report> {
        self.latest.iter().flatten()
    }

    /// Whether every worker has reported every source finished.
    pub fn finished(&self) -> bool {
        self.latest.iter().all(|r| r.as_ref().is_some_and(|r| r.sources.iter().all(|s| s.finished)))
    }
}

/// Whether a round's reports make its end a checkpoint (worker 0 asked, a worker is stopping,
/// or the input ended): aggregates then hold the next round's rows until the state is saved.
pub fn checkpoint_round(reports: &[Report]) -> bool {
    let all_finished = !reports.is_empty() && reports.iter().all(|r| r.sources.iter().all(|s| s.finished));
    reports.iter().any(|r| r.checkpoint || r.stop) || all_finished
}

/// Lines one worker of a stream read, for a worker of the same process to parse: reading a
/// file is one worker's job, parsing its lines is shared by every worker of the process.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Lines {
    /// The worker that parses them, and the one that read them.
    pub target: usize,
    pub reader: usize,
    pub source: usize,
    pub file: String,
    /// A CSV file's header fields.
    pub header: Option<Vec<Vec<u8>>>,
    pub data: Vec<u8>,
    /// (start, end, line number) of each record in `data` (for a Kafka message: its offset).
    pub lines: Vec<(usize, usize, u64)>,
    /// Per record, what the broker says of it (Kafka); empty for files.
    pub meta: Vec<crate::record::MessageMeta>,
    /// The high bits of the records' sequence numbers (round, reader, batch), for ties.
    pub seq: u64,
}

/// What the operators of one worker share with the loop that drives it.
pub struct Shared<P: Pipeline> {
    pub w: P::Worker,
    /// The round the driving loop is in: lines of later rounds wait (the loop may still be
    /// saving a checkpoint of an earlier one).
    pub open_round: u64,
    /// The parse operator's address, for the loop to wake it when a round opens.
    pub parse_address: Option<Rc<[usize]>>,
    /// Per reader whose lines this worker parsed: the largest event time of each source.
    pub seen: BTreeMap<usize, Vec<i64>>,
    /// Set when an aggregate completed a checkpoint round: rows of later rounds wait until the
    /// worker has saved its state.
    pub hold: bool,
    /// Completed rounds with every worker's report, for the driving loop.
    pub rounds: Vec<(u64, Vec<Report>)>,
    /// One past the latest round in which some worker took input: a worker still waiting for
    /// input in an earlier round ends it at once.
    pub heard_busy: u64,
    /// The first internal failure of an operator.
    pub failure: Option<String>,
}

impl<P: Pipeline> std::fmt::Debug for Shared<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared(hold {}, {} rounds waiting)", self.hold, self.rounds.len())
    }
}

impl<P: Pipeline> Shared<P> {
    /// What the operators and the loop of a worker share, around the generated worker `w`.
    pub fn core(w: P::Worker) -> Core<P> {
        Rc::new(RefCell::new(Shared {
            w,
            open_round: 0,
            parse_address: None,
            seen: BTreeMap::new(),
            hold: false,
            rounds: Vec::new(),
            heard_busy: 0,
            failure: None,
        }))
    }
}

pub type Core<P> = Rc<RefCell<Shared<P>>>;

/// The inputs and the probe of one worker's dataflow.
pub struct Dataflow<P: Pipeline> {
    pub rows: InputHandleVec<u64, P::Exchange>,
    /// The inputs of lines to parse and of reports.
    pub side: Box<dyn SideInputs>,
    pub probe: ProbeHandle<u64>,
}

impl<P: Pipeline> std::fmt::Debug for Dataflow<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dataflow")
    }
}

impl<P: Pipeline> Dataflow<P> {
    /// Sends what the worker's outbox holds into the key exchange.
    pub fn send_outbox(&mut self, p: &P, core: &Core<P>) {
        self.forward(p, &mut core.borrow_mut().w);
    }

    /// Sends what worker `w`'s outbox holds into the key exchange (while its core is borrowed).
    pub fn forward(&mut self, p: &P, w: &mut P::Worker) {
        let mut rows = p.take_outbox(w);
        if !rows.is_empty() {
            self.rows.send_batch(&mut rows);
        }
    }

    /// Ends round `round`: sends the report and moves every input to the next round.
    pub fn end_round(&mut self, round: u64, report: Report) {
        self.side.end_round(round, report);
        self.rows.advance_to(round + 1);
    }
}

/// The inputs of a worker's dataflow whose types do not depend on the pipeline's: behind a
/// trait object, their channels are compiled once, in the runtime.
pub trait SideInputs {
    /// Builds the parts of the dataflow that do not depend on the pipeline in `scope`: the
    /// lines' exchange to the workers that parse them, the reports' broadcast, and the control
    /// operator (probed by `probe`), which hands completed rounds to `deliver`. Returns the
    /// lines routed to this worker and every worker's reports.
    fn connect<'s>(
        &mut self,
        scope: Scope<'s>,
        probe: &ProbeHandle<u64>,
        deliver: Deliver,
    ) -> (StreamVec<'s, u64, Lines>, StreamVec<'s, u64, Report>);
    /// Sends a batch of lines to the worker that parses them.
    fn send_lines(&mut self, lines: Lines);
    /// Sends this worker's report for `round` and moves both inputs to the next round.
    fn end_round(&mut self, round: u64, report: Report);
}

/// The inputs of lines and reports of a new dataflow.
pub fn side_inputs() -> Box<dyn SideInputs> {
    Box::new(Side { lines: InputHandleVec::new(), reports: InputHandleVec::new() })
}

struct Side {
    lines: InputHandleVec<u64, Lines>,
    reports: InputHandleVec<u64, Report>,
}

impl SideInputs for Side {
    fn connect<'s>(
        &mut self,
        scope: Scope<'s>,
        probe: &ProbeHandle<u64>,
        deliver: Deliver,
    ) -> (StreamVec<'s, u64, Lines>, StreamVec<'s, u64, Report>) {
        let routed = scope.input_from(&mut self.lines).exchange(|l: &Lines| l.target as u64);
        let reports = scope.input_from(&mut self.reports).broadcast();
        control(reports.clone(), deliver).probe_with(probe);
        (routed, reports)
    }

    fn send_lines(&mut self, lines: Lines) {
        self.lines.send(lines);
    }

    fn end_round(&mut self, round: u64, report: Report) {
        self.reports.send(report);
        self.lines.advance_to(round + 1);
        self.reports.advance_to(round + 1);
    }
}

/// Where the control operator hands the completed rounds (with every worker's reports) and
/// one past the latest round in which some worker took input.
pub type Deliver = Box<dyn FnMut(Vec<(u64, Vec<Report>)>, u64)>;

/// Builds one worker's dataflow: a key exchange and an operator per aggregate, the reports'
/// broadcast and the control operator that hands completed rounds to the driving loop.
pub fn build<P: Pipeline>(
    timely: &mut Timely,
    p: &P,
    core: &Core<P>,
    sources: &[SourceDecl],
    watermark: i64,
) -> Dataflow<P> {
    let mut rows = InputHandleVec::new();
    let probe = ProbeHandle::new();
    let peers = timely.peers();
    let mut side = side_inputs();
    dataflow(timely, &mut |scope| {
        let shared = core.clone();
        let deliver: Deliver = Box::new(move |rounds, heard| {
            let mut sh = shared.borrow_mut();
            sh.heard_busy = sh.heard_busy.max(heard);
            sh.rounds.extend(rounds);
        });
        let (lines, reports) = side.connect(scope, &probe, deliver);
        let parsed = parse(lines, p.clone(), core.clone(), sources.to_vec());
        let mut stream: StreamVec<'_, u64, P::Exchange> = scope.input_from(&mut rows).concat(parsed);
        for k in 0..p.aggregates() {
            let clock = Clock::new(sources, peers, watermark);
            stream = aggregate(stream, reports.clone(), p.clone(), k, core.clone(), clock);
        }
        stream.probe_with(&probe);
    });
    Dataflow { rows, side, probe }
}

/// The parse operator: pushes the lines routed to this worker through the pipeline and sends
/// the rows its outbox collected into the key exchange. Lines of a round the driving loop has
/// not opened yet wait.
fn parse<'s, P: Pipeline>(
    lines: StreamVec<'s, u64, Lines>,
    p: P,
    core: Core<P>,
    sources: Vec<SourceDecl>,
) -> StreamVec<'s, u64, P::Exchange> {
    lines.unary(Local, "parse", move |_cap, info| {
        core.borrow_mut().parse_address = Some(info.address.clone());
        let mut waiting: BTreeMap<u64, (Capability<u64>, Vec<Lines>)> = BTreeMap::new();
        move |input, output| {
            input.for_each(|cap, data| {
                let (Some(&t), Some(c)) = (cap.least(), cap.retain_least(0)) else { return };
                waiting.entry(t).or_insert_with(|| (c, Vec::new())).1.append(data);
            });
            let mut sh = core.borrow_mut();
            let open = sh.open_round;
            while let Some(entry) = waiting.first_entry() {
                if *entry.key() > open {
                    break;
                }
                let (cap, batches) = entry.remove();
                for batch in &batches {
                    if let Some(decl) = sources.get(batch.source) {
                        // The event times go to the reader's account (see `Clock`).
                        let seen = sh.seen.remove(&batch.reader).unwrap_or_default();
                        let before = std::mem::replace(&mut p.base(&mut sh.w).max_ts, seen);
                        parse_lines(&p, &mut sh.w, decl, batch);
                        let seen = std::mem::replace(&mut p.base(&mut sh.w).max_ts, before);
                        sh.seen.insert(batch.reader, seen);
                    }
                }
                let mut rows = p.take_outbox(&mut sh.w);
                if !rows.is_empty() {
                    output.session(&cap).give_container(&mut rows);
                }
            }
        }
    })
}

/// Pushes one batch of lines through the pipeline.
fn parse_lines<P: Pipeline>(p: &P, w: &mut P::Worker, decl: &SourceDecl, b: &Lines) {
    let format = decl.stream.as_ref().map_or(Format::Json, |s| s.format);
    let header = b.header.as_ref().map(|fields| csv::ByteRecord::from(fields.clone())).unwrap_or_default();
    for (i, &(start, end, line)) in b.lines.iter().enumerate() {
        p.base(w).seq = b.seq | ((i as u64 & 0xfff) << 12);
        let Some(raw) = b.data.get(start..end) else { continue };
        // A Kafka message's position is `topic/partition@offset`.
        let o = match b.meta.get(i) {
            Some(m) => {
                p.base(w).message = Some(m.clone());
                Origin { source: decl.name, file: &b.file, offset: line, line: Line::Unknown, raw, with: 0 }
            }
            None => Origin { source: decl.name, file: &b.file, offset: 0, line: Line::Known(line), raw, with: 0 },
        };
        match format {
            Format::Csv => {
                if let Some(rec) = crate::connectors::files::parse_csv_line(raw) {
                    p.csv(w, b.source, &rec, &header, &o);
                }
            }
            _ => p.json(w, b.source, &o),
        }
    }
    p.base(w).message = None;
    p.end_split(w);
}

/// The operator of aggregate `k`: folds the rows routed to this worker into its groups, passes
/// rows for later aggregates on, and when the frontier passes a round, fires the windows the
/// cluster's watermark closed and sends what they emit into the next exchange.
fn aggregate<'s, P: Pipeline>(
    rows: StreamVec<'s, u64, P::Exchange>,
    reports: StreamVec<'s, u64, Report>,
    p: P,
    k: usize,
    core: Core<P>,
    mut clock: Clock,
) -> StreamVec<'s, u64, P::Exchange> {
    let route = p.clone();
    let pact = Exchange::new(move |row: &P::Exchange| route.route(row).1);
    let name = format!("aggregate {k}");
    rows.binary_frontier(reports, pact, Local, &name, move |_cap, _info| {
        // The first round not completed yet, rows that wait for theirs, capabilities to emit
        // at each open round, and the reports of each open round.
        let mut cur: u64 = 0;
        let mut stash: BTreeMap<u64, Vec<P::Exchange>> = BTreeMap::new();
        let mut caps: BTreeMap<u64, Capability<u64>> = BTreeMap::new();
        let mut rounds: BTreeMap<u64, Vec<Report>> = BTreeMap::new();
        move |(rows_in, rows_frontier), (reports_in, reports_frontier), output| {
            reports_in.for_each(|cap, data| {
                let Some(&t) = cap.least() else { return };
                if let Some(c) = cap.retain_least(0) {
                    caps.entry(t).or_insert(c);
                }
                rounds.entry(t).or_default().append(data);
            });
            let mut sh = core.borrow_mut();
            if !sh.hold {
                if let Some(waiting) = stash.remove(&cur) {
                    p.apply(&mut sh.w, waiting);
                }
            }
            rows_in.for_each(|cap, data| {
                let Some(&t) = cap.least() else { return };
                let mut mine = Vec::new();
                let mut later = Vec::new();
                for row in data.drain(..) {
                    if p.aggregate_of(&row) == k {
                        mine.push(row);
                    } else {
                        later.push(row);
                    }
                }
                if !later.is_empty() {
                    output.session(&cap).give_container(&mut later);
                }
                if mine.is_empty() {
                    return;
                }
                if t <= cur && !sh.hold {
                    p.apply(&mut sh.w, mine);
                } else {
                    if let Some(c) = cap.retain_least(0) {
                        caps.entry(t).or_insert(c);
                    }
                    stash.entry(t).or_default().extend(mine);
                }
            });
            // Complete every round the frontier has passed, in order.
            while !rows_frontier.less_equal(&cur) && !reports_frontier.less_equal(&cur) {
                if let Some(waiting) = stash.remove(&cur) {
                    p.apply(&mut sh.w, waiting);
                }
                let reports = rounds.remove(&cur).unwrap_or_default();
                clock.observe(&reports);
                let wm = clock.watermark();
                {
                    let base = p.base(&mut sh.w);
                    base.watermark = base.watermark.max(wm);
                }
                p.advance_one(&mut sh.w, k, wm);
                let mut fired = p.take_outbox(&mut sh.w);
                if !fired.is_empty() {
                    match caps.get(&cur) {
                        Some(c) => output.session(c).give_container(&mut fired),
                        None => {
                            sh.failure.get_or_insert_with(|| format!("aggregate {k}: no capability for round {cur}"));
                        }
                    }
                }
                if checkpoint_round(&reports) {
                    sh.hold = true;
                }
                caps.retain(|t, _| *t > cur);
                // The next round with anything to do.
                let next = [
                    rows_frontier.frontier().iter().min().copied(),
                    reports_frontier.frontier().iter().min().copied(),
                    stash.keys().next().copied(),
                    rounds.keys().next().copied(),
                ]
                .into_iter()
                .flatten()
                .min();
                match next {
                    Some(n) => cur = n.max(cur + 1),
                    None => {
                        cur = u64::MAX;
                        break;
                    }
                }
            }
        }
    })
}

/// The output of an operator that emits nothing (it is there for the probe).
type Unit<'a> = timely::dataflow::operators::generic::OutputBuilderSession<
    'a,
    u64,
    timely::container::CapacityContainerBuilder<Vec<()>>,
>;

/// Hands every completed round, with all workers' reports, to the driving loop.
fn control<'s>(reports: StreamVec<'s, u64, Report>, mut deliver: Deliver) -> StreamVec<'s, u64, ()> {
    reports.unary_frontier(Local, "control", move |_cap, _info| {
        let mut rounds: BTreeMap<u64, Vec<Report>> = BTreeMap::new();
        move |(input, frontier), _output: &mut Unit<'_>| {
            let mut heard = 0;
            input.for_each(|cap, data| {
                let Some(&t) = cap.least() else { return };
                if data.iter().any(|r| r.busy) {
                    heard = heard.max(t + 1);
                }
                rounds.entry(t).or_default().append(data);
            });
            let done: Vec<u64> = rounds.keys().copied().filter(|t| !frontier.less_equal(t)).collect();
            let done: Vec<(u64, Vec<Report>)> =
                done.into_iter().filter_map(|t| rounds.remove(&t).map(|r| (t, r))).collect();
            if !done.is_empty() || heard > 0 {
                deliver(done, heard);
            }
        }
    })
}

/// Finishes a run's summary: the process of worker 0 (`leader`) writes it beside the output
/// with `publish` (which returns the directories written), the others name the directories;
/// `--summary FILE` gets a copy in every process.
pub(crate) fn report(
    mut summary: Summary,
    leader: bool,
    opts: &Options,
    outputs: &crate::sink::Outputs,
    publish: impl FnOnce(&[u8]) -> std::io::Result<Vec<std::path::PathBuf>>,
) -> Result<Summary, RunError> {
    let json = |s: &Summary| serde_json::to_vec_pretty(s).map_err(std::io::Error::other);
    summary.outputs = if leader {
        publish(&json(&summary)?)?.iter().map(|p| p.display().to_string()).collect()
    } else {
        outputs.locations()
    };
    if let Some(path) = &opts.summary {
        std::fs::write(path, json(&summary)?)?;
    }
    Ok(summary)
}

/// Where the first worker of each process leaves the joins' tables for the others.
pub type TableSlot = Arc<std::sync::Mutex<Option<Result<crate::run::Tables, String>>>>;

/// The splits of every join's table read from files (the sources marked
/// [`SourceDecl::table`], read from their batch binding in both modes). A table in PostgreSQL
/// is checked here when `check_pg` (its columns against the record, at setup) and cut into
/// ranges when it is read ([`pg_table_ranges`]).
pub fn table_splits(
    sources: &[SourceDecl],
    workers: usize,
    check_pg: bool,
) -> Result<Vec<crate::input::Split>, RunError> {
    let mut splits = Vec::new();
    for (i, s) in sources.iter().enumerate().filter(|(_, s)| s.table) {
        let Some(b) = s.batch.as_ref().filter(|b| b.kafka.is_none()) else {
            return Err(RunError::Setup(format!(
                "source `{}`: a join's table is read from files, an object store or PostgreSQL, not from Kafka",
                s.name
            )));
        };
        if let Some(pg) = &b.postgres {
            if check_pg {
                crate::connectors::pg_plan(s.name, pg, workers).map_err(RunError::Setup)?;
            }
            continue;
        }
        let planned = crate::input::plan_for(i, &b.glob, b.format, workers)
            .map_err(|e| RunError::Setup(format!("source `{}`: {e}", s.name)))?;
        splits.extend(planned);
    }
    Ok(splits)
}

/// The ranges of the joins' tables in PostgreSQL (source index, range), planned by worker 0
/// under one snapshot and sent to every worker, so the whole cluster reads one consistent
/// table. Worker 0 keeps the connection holding the snapshot in `hold` until every worker has
/// read its share. Every worker must call it at the same point.
pub fn pg_table_ranges(
    timely: &mut Timely,
    sources: &[SourceDecl],
    hold: &mut Vec<crate::connectors::PgPlan>,
) -> Result<Vec<(usize, crate::connectors::PgRange)>, String> {
    let tables: Vec<(usize, &crate::input::PgSource)> = sources
        .iter()
        .enumerate()
        .filter(|(_, s)| s.table)
        .filter_map(|(i, s)| s.batch.as_ref().and_then(|b| b.postgres.as_ref()).map(|pg| (i, pg)))
        .collect();
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let planned = (timely.index() == 0).then(|| {
        let mut ranges = Vec::new();
        for (i, pg) in &tables {
            let mut plan = crate::connectors::pg_plan(sources[*i].name, pg, timely.peers())?;
            ranges.extend(std::mem::take(&mut plan.ranges).into_iter().map(|r| (*i, r)));
            hold.push(plan);
        }
        Ok::<_, String>(ranges)
    });
    gather(timely, planned)?
        .into_iter()
        .flatten()
        .next()
        .unwrap_or_else(|| Err("internal: no plan of the tables".into()))
}

/// Reads the tables of the pipeline's joins into worker `w` before it reads anything else:
/// each worker reads its share of the tables' splits (a bad record goes to `rejected` like any
/// other), every worker gets every worker's records, and the first worker of each process
/// builds the tables once for all of its workers. Every worker must call it at the same point.
pub fn load_tables<P: Pipeline>(
    timely: &mut Timely,
    p: &P,
    w: &mut P::Worker,
    splits: &[crate::input::Split],
    sources: &[SourceDecl],
    first_local: bool,
    slot: &TableSlot,
) -> Result<(), String> {
    if !sources.iter().any(|s| s.table) {
        return Ok(());
    }
    let mut hold = Vec::new();
    let ranges = pg_table_ranges(timely, sources, &mut hold);
    let part = ranges.and_then(|r| read_table_part(p, w, splits, &r, sources, timely.index(), timely.peers()));
    let t = share_tables(timely, p, part, first_local, slot)?;
    drop(hold);
    p.use_tables(w, &t);
    Ok(())
}

/// This worker's share of the tables' splits and PostgreSQL ranges, read into `w` and taken
/// out serialized, with a fingerprint of what it was shared out from (every worker must have
/// planned the same).
pub fn read_table_part<P: Pipeline>(
    p: &P,
    w: &mut P::Worker,
    splits: &[crate::input::Split],
    ranges: &[(usize, crate::connectors::PgRange)],
    sources: &[SourceDecl],
    index: usize,
    peers: usize,
) -> Result<(u64, Vec<u8>), String> {
    for (number, _) in batch::assign(splits, peers).into_iter().filter(|(_, owner)| *owner == index) {
        batch::read_split(p, w, number, &splits[number], sources, &mut |_| {});
        p.end_split(w);
    }
    // Ranges come after the splits in the tables' order (their records' sequence numbers).
    for (n, (k, range)) in ranges.iter().enumerate().filter(|(n, _)| n % peers == index) {
        batch::read_range(p, w, (splits.len() + n) as u64, *k, range, sources, &mut |_| {});
        p.end_split(w);
    }
    let part = p.table_part(w)?;
    if let Some(e) = p.base(w).error.take() {
        return Err(e.to_string());
    }
    let labels: Vec<&str> = ranges.iter().map(|(_, r)| r.label.as_str()).collect();
    Ok((splits_fingerprint(splits) ^ crate::run::key_hash(&labels), part))
}

/// A hash of the files splits were planned from (names, identities, lengths, modification
/// times): equal when a listing found the same files unchanged.
pub fn splits_fingerprint(splits: &[crate::input::Split]) -> u64 {
    let plan: Vec<_> = splits
        .iter()
        .map(|s| (s.source, &*s.display, s.start, s.end, s.planned.id, s.planned.len, s.planned.modified))
        .collect();
    crate::run::key_hash(&plan)
}

/// Every worker's part to every worker; the first worker of each process builds the tables
/// and leaves them in `slot` for the others. Every worker must call it at the same point.
pub fn share_tables<P: Pipeline>(
    timely: &mut Timely,
    p: &P,
    part: Result<(u64, Vec<u8>), String>,
    first_local: bool,
    slot: &TableSlot,
) -> Result<crate::run::Tables, String> {
    let parts = gather_part(timely, part);
    if first_local {
        let built = parts.into_iter().collect::<Result<Vec<_>, _>>().and_then(|parts| {
            if parts.windows(2).any(|w| w[0].0 != w[1].0) {
                return Err("the table's files changed while the workers listed them".to_string());
            }
            p.build_tables(&parts.into_iter().map(|(_, bytes)| bytes).collect::<Vec<_>>())
        });
        *slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(built);
    }
    // Every process has built its tables.
    gather_number(timely, None)?;
    let built = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    built.unwrap_or_else(|| Err("internal: the tables were not built".into()))
}

/// Every worker's part of the tables. Not through [`gather`]: serde would move a part's bytes
/// one at a time and keep every part twice while decoding. A part crosses as a tag byte (1
/// read, 0 failed), then the fingerprint (little-endian) and the records, or the message.
fn gather_part(timely: &mut Timely, part: TablePart) -> Vec<TablePart> {
    gather_bytes(timely, part_bytes(part)).into_iter().map(part_of).collect()
}

/// A part of the tables as [`gather_part`] sends it.
fn part_bytes(part: TablePart) -> Vec<u8> {
    match part {
        Ok((fingerprint, mut records)) => {
            let mut b = Vec::with_capacity(records.len() + 9);
            b.push(1);
            b.extend_from_slice(&fingerprint.to_le_bytes());
            b.append(&mut records);
            b
        }
        Err(why) => [&[0u8][..], why.as_bytes()].concat(),
    }
}

/// A part of the tables from the bytes [`part_bytes`] made.
fn part_of(mut b: Vec<u8>) -> TablePart {
    match (b.first(), b.get(1..9).and_then(|f| <[u8; 8]>::try_from(f).ok())) {
        (Some(1), Some(fingerprint)) => {
            b.drain(..9);
            Ok((u64::from_le_bytes(fingerprint), b))
        }
        (Some(0), _) => Err(String::from_utf8_lossy(&b[1..]).into_owned()),
        _ => Err("internal: a worker's part of the tables could not be read".into()),
    }
}

/// A worker's part of the tables: the fingerprint of what it was read from and the serialized
/// records, or why it could not be read.
type TablePart = Result<(u64, Vec<u8>), String>;

/// Every worker contributes `value` and gets every worker's, in worker order: a barrier that
/// also moves a little data (run summaries, commit decisions). Every worker must call it at the
/// same point of its program. The values cross as bytes (postcard): one exchange, compiled
/// here, serves every type.
pub fn gather<T>(timely: &mut Timely, value: T) -> Result<Vec<T>, String>
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    // Every worker takes part in the exchange even when its value could not be encoded: the
    // others would wait for it forever.
    let (bytes, unencoded) = match postcard::to_allocvec(&value) {
        Ok(b) => (b, None),
        Err(e) => (Vec::new(), Some(format!("internal: a worker's value to share: {e}"))),
    };
    let all = gather_bytes(timely, bytes);
    if let Some(e) = unencoded {
        return Err(e);
    }
    all.iter().map(|b| postcard::from_bytes(b).map_err(|e| format!("internal: a worker's shared value: {e}"))).collect()
}

/// [`gather`] of a message (the drivers share failures this way). The drivers are generic
/// over the pipeline: calling instances made here keeps their code out of its crate.
pub fn gather_message(timely: &mut Timely, value: Option<String>) -> Result<Vec<Option<String>>, String> {
    gather(timely, value)
}

/// [`gather`] of a count or a fingerprint.
pub fn gather_number(timely: &mut Timely, value: Option<u64>) -> Result<Vec<Option<u64>>, String> {
    gather(timely, value)
}

/// A worker's index and its encoded value.
type Indexed = (usize, Vec<u8>);

fn gather_bytes(timely: &mut Timely, value: Vec<u8>) -> Vec<Vec<u8>> {
    let mut input = InputHandleVec::new();
    let probe = ProbeHandle::new();
    let got: Rc<RefCell<Vec<Indexed>>> = Rc::default();
    let sink = got.clone();
    let index = timely.index();
    timely.dataflow::<u64, _, _>(|scope| {
        scope
            .input_from(&mut input)
            .broadcast()
            .unary_frontier(Local, "gather", move |_cap, _info| {
                move |(input, _frontier), _output: &mut Unit<'_>| {
                    input.for_each(|_cap, data| {
                        sink.borrow_mut().append(data);
                    });
                }
            })
            .probe_with(&probe);
    });
    input.send((index, value));
    drop(input);
    while !probe.done() {
        timely.step_or_park(None);
    }
    let mut all = std::mem::take(&mut *got.borrow_mut());
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, v)| v).collect()
}

/// Sequence numbers for `first`/`last` ties: a record's place in the input (split or round,
/// reader and batch, line), so every scale orders ties the same way; the low 12 bits count the
/// rows one record sends to aggregates.
pub fn seq(major: u64, minor: u64) -> u64 {
    (major << 36) | ((minor & 0xff_ffff) << 12)
}

#[cfg(test)]
mod tests {
    use super::{part_bytes, part_of};

    #[test]
    fn a_part_of_the_tables_crosses_as_it_was_read() {
        let records = vec![0u8, 1, 2, 255, 7];
        assert_eq!(
            part_of(part_bytes(Ok((0x0102_0304_0506_0708, records.clone())))),
            Ok((0x0102_0304_0506_0708, records))
        );
        assert_eq!(part_of(part_bytes(Ok((7, Vec::new())))), Ok((7, Vec::new())));
        let failed = "source `t`: cannot read `t.csv`".to_string();
        assert_eq!(part_of(part_bytes(Err(failed.clone()))), Err(failed));
        // Bytes no worker sent: an error, never a panic.
        for bad in [vec![], vec![1, 2, 3], vec![9, 0, 0, 0, 0, 0, 0, 0, 0]] {
            assert!(part_of(bad).is_err_and(|e| e.starts_with("internal")));
        }
    }
}
