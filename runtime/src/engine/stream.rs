//! Streaming runs (`--mode stream`). Every worker follows the files it owns (a file belongs to
//! the worker its inode hashes to; standard input to worker 0) and works in rounds: it takes
//! what its readers sent (waiting at most a tick for the first batch), pushes the records
//! through the fused stages, sends the rows for aggregates into the key exchange and its
//! [`Report`] to every worker, then waits until the whole cluster has finished the round. The
//! aggregates fire on the cluster's watermark as the round completes (see `engine`).
//!
//! Checkpoints (`--state-dir`, every `--checkpoint-interval`, and when the run ends): worker 0
//! marks a round; at its end every worker closes its sink files of the epoch and writes its
//! state; the round after, worker 0 sees every worker's state durable and writes the
//! manifest; the round after that, every worker publishes its files of the epoch. A restart
//! publishes the files of the manifest's epoch if a crash interrupted that, deletes later
//! ones, restores the state and reads on from the recorded positions: the output is the same
//! as an uninterrupted run's, with no row lost or repeated.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Clock, Core, Dataflow, PartitionProgress, Report, Shared, SourceProgress, PARTITION_READER};
use crate::checkpoint::{self, Manifest, Positions, WorkerState};
use crate::connectors::files::{self, parse_duration, Msg, CHANNEL_BATCHES};
use crate::connectors::{self as conn, ReaderShared};
use crate::input::{Format, StreamKind};
use crate::metrics::{self, Status};
use crate::run::{self, Base, NodeDecl, Options, Pipeline, RunError, SourceDecl, Stat, Summary, Violations};
use crate::sink::{Outputs, SinkTo};

/// The longest a worker waits for input before it ends a round anyway (so watermarks, idle
/// sources and checkpoints move without input).
const TICK: Duration = Duration::from_millis(50);
/// How long a worker waiting for input parks between looks at its readers.
const WAIT_STEP: Duration = Duration::from_micros(200);
/// Lines a worker takes from its readers in one round, at most (what is waiting, up to this).
const LINES_PER_ROUND: u64 = 16_384;
/// Batches a worker takes from its readers in one round, at most.
const BATCHES_PER_ROUND: usize = 16;

/// The settings every worker of a stream shares.
struct Setup {
    sources: Vec<SourceDecl>,
    /// The splits of the joins' tables, read before the run.
    tables: Vec<crate::input::Split>,
    table_slot: super::TableSlot,
    /// Per source: its Kafka partitions (asked of the brokers at start), for the others none.
    partitions: Vec<Option<Vec<i32>>>,
    /// The consumer group Kafka sources commit their offsets to.
    group: String,
    nodes: Vec<NodeDecl>,
    state_dir: Option<PathBuf>,
    poll: Duration,
    checkpoint_every: Duration,
    metrics_every: Duration,
    exit_idle: Option<Duration>,
    quiet: bool,
    process: usize,
    /// Workers per process.
    local_workers: usize,
    /// Ctrl-C or SIGTERM: stop after a last checkpoint.
    interrupted: Arc<AtomicBool>,
    /// Per local worker, its latest status (for the metrics of this process).
    status: Arc<Mutex<Vec<Status>>>,
    metrics_text: Option<Arc<Mutex<String>>>,
}

/// Runs a pipeline in streaming mode until every source ends (standard input closes), the
/// input has been idle for `--exit-when-idle`, or the process is interrupted (Ctrl-C or
/// SIGTERM: a last checkpoint is written, so a restart goes on from there).
pub fn run<P: Pipeline>(p: &P, opts: &Options) -> Result<Summary, RunError> {
    let started = Instant::now();
    let mut sources = p.sources();
    let names: Vec<&str> = sources.iter().map(|s| s.name).collect();
    for (name, uri) in run::overrides(&opts.sources, "source", &names)? {
        if let Some(s) = sources.iter_mut().find(|s| s.name == name) {
            // A join's table is read from its batch binding in both modes.
            if let Some(b) = s.batch.as_mut().filter(|_| s.table) {
                // A PostgreSQL table's override is its connection URL.
                match &mut b.postgres {
                    Some(pg) => pg.url = uri,
                    None => b.glob = uri,
                }
                continue;
            }
            match &mut s.stream {
                Some(st) => st.kind = if uri == "-" { StreamKind::Stdin } else { StreamKind::Follow(uri) },
                None => return Err(no_stream(s.name)),
            }
        }
    }
    for s in sources.iter().filter(|s| !s.table) {
        match &s.stream {
            None => return Err(no_stream(s.name)),
            Some(st) if matches!(st.format, Format::Parquet | Format::Arrow) => {
                return Err(RunError::Setup(format!(
                    "source `{}`: {} files cannot be followed",
                    s.name,
                    if st.format == Format::Arrow { "Arrow" } else { "Parquet" }
                )))
            }
            Some(_) => {}
        }
    }
    let stdin_sources =
        sources.iter().filter(|s| s.stream.as_ref().is_some_and(|x| x.kind == StreamKind::Stdin)).count();
    if stdin_sources > 1 {
        return Err(RunError::Setup("only one source can read standard input".into()));
    }
    let partitions = sources
        .iter()
        .map(|s| match s.stream.as_ref().map(|st| &st.kind) {
            Some(StreamKind::Kafka(decl)) => {
                conn::kafka_partitions(decl).map(Some).map_err(|e| RunError::Setup(format!("source `{}`: {e}", s.name)))
            }
            _ => Ok(None),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key =
        if p.needs_key() { Some(crate::mask::Key::from_environment(opts.hmac_key_file.as_deref())?) } else { None };
    let ctx = run::context(p, key, &HashMap::new())?;
    let sinks = run::sink_locations(p.sinks(), &opts.sinks)?;
    super::cluster(opts)?;
    // One run at a time on a state directory (and on each sink, in `open_streaming`): a second
    // would interleave its checkpoints and epochs with the first's.
    let _state_lock = match (&opts.state_dir, opts.process) {
        (Some(dir), 0) => Some(crate::sink::lock_dir("the state directory", dir)?),
        _ => None,
    };
    if opts.reset && opts.process == 0 {
        reset(&sinks, opts.state_dir.as_deref())?;
    }
    let manifest = match &opts.state_dir {
        Some(dir) => checkpoint::load_manifest(dir)?,
        None => None,
    };
    if let Some(m) = &manifest {
        if m.format != checkpoint::FORMAT {
            return Err(RunError::Setup(format!(
                "the state directory holds a checkpoint in format {} (this runtime reads format {}): start over with --reset",
                m.format,
                checkpoint::FORMAT
            )));
        }
        if m.pipeline != P::NAME {
            return Err(RunError::Setup(format!(
                "the state directory holds a checkpoint of `{}`, not of `{}`",
                m.pipeline,
                P::NAME
            )));
        }
    }
    if manifest.is_none() && !opts.reset {
        refuse_lost_state(&sinks, opts.state_dir.as_deref())?;
    }
    let outputs = Arc::new(Outputs::open_streaming(sinks, opts.process == 0, opts.state_dir.as_deref())?);
    if opts.process == 0 {
        outputs.check_stream_start(manifest.is_some(), opts.reset)?;
    }

    let (rt, interrupted, metrics_text) = services(opts)?;
    let cluster_workers =
        opts.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1)
            * opts.processes.max(1);
    let tables = super::table_splits(&sources, cluster_workers, true)?;
    let setup = Arc::new(Setup {
        tables,
        table_slot: super::TableSlot::default(),
        sources,
        partitions,
        group: format!("pipe-{}", P::NAME),
        nodes: p.nodes(),
        state_dir: opts.state_dir.clone(),
        poll: parse_duration(&opts.poll_interval).map_err(RunError::Setup)?,
        checkpoint_every: parse_duration(&opts.checkpoint_interval).map_err(RunError::Setup)?,
        metrics_every: parse_duration(&opts.metrics_interval).map_err(RunError::Setup)?,
        exit_idle: opts.exit_when_idle.as_deref().map(parse_duration).transpose().map_err(RunError::Setup)?,
        quiet: opts.quiet,
        process: opts.process,
        local_workers: opts
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
            .max(1),
        interrupted,
        status: Arc::new(Mutex::new(Vec::new())),
        metrics_text,
    });

    let pipeline = p.clone();
    let worker_outputs = outputs.clone();
    let results = super::execute(opts, move |timely| {
        let r = match worker(timely, &pipeline, &setup, &ctx, &worker_outputs, started) {
            Ok(stats) => Ok(stats),
            // A source that failed: every worker stopped with it, after a last checkpoint.
            Err(Failure::Source(e)) => Err(e.to_string()),
            // Writing the output or the state failed: the process stops at once; the other
            // processes lose it and stop too, and a restart goes on from the last checkpoint.
            Err(Failure::Fatal(e)) => {
                #[allow(clippy::print_stderr, reason = "the binary's error report")]
                {
                    eprintln!("error: {e}");
                }
                std::process::exit(i32::from(e.exit_code()));
            }
        };
        // Every worker learns every worker's outcome, so every process fails or ends together.
        let all = gather_outcome(timely, r);
        (timely.index(), all)
    })?;
    rt.shutdown_background();
    let Some((first, all)) = results.into_iter().next() else {
        return Err(RunError::Setup("the cluster ran no workers".into()));
    };
    let all = all.map_err(RunError::Setup)?;
    let nodes = p.nodes();
    let mut stats = vec![Stat::default(); nodes.len()];
    let mut checks = Violations::default();
    for r in &all {
        match r {
            Ok((s, v)) => {
                for (a, b) in stats.iter_mut().zip(s) {
                    a.add(b);
                }
                checks.merge(v);
            }
            Err(e) => return Err(RunError::Setup(e.clone())),
        }
    }
    let operators = run::operators(&nodes, stats);
    let summary = Summary {
        pipeline: P::NAME,
        seconds: started.elapsed().as_secs_f64(),
        bytes: 0,
        operators,
        outputs: Vec::new(),
        peak_memory: run::peak_memory(),
        checks,
    };
    super::report(summary, first == 0, opts, &outputs, |json| outputs.write_summaries(json))
}

fn no_stream(source: &str) -> RunError {
    RunError::Setup(format!(
        "source `{source}` has no stream binding this runtime reads (`follow`, `stdin`, `kafka`); run it with `--mode batch`"
    ))
}

/// What a worker restored from the last checkpoint.
struct Restored {
    manifest: Option<Manifest>,
    positions: Vec<Positions>,
    marks: Vec<files::Marks>,
    watermark: i64,
}

/// Worker 0 finishes what a crash interrupted (publishing the manifest's epoch, discarding
/// later ones) while every other worker waits; then each worker takes its share of the state.
fn restore<P: Pipeline>(
    timely: &mut timely::worker::Worker,
    p: &P,
    setup: &Setup,
    outputs: &Outputs,
    w: &mut P::Worker,
) -> Result<Restored, RunError> {
    let (index, peers) = (timely.index(), timely.peers());
    let manifest = match &setup.state_dir {
        Some(d) => checkpoint::load_manifest(d)?,
        None => None,
    };
    let recovered = if index == 0 {
        let r = outputs.recover(manifest.as_ref().map(|m| m.epoch));
        if let Some(d) = &setup.state_dir {
            checkpoint::discard_after(d, manifest.as_ref().map(|m| m.epoch));
        }
        r.err().map(|e| e.to_string())
    } else {
        None
    };
    if let Some(e) = super::gather_message(timely, recovered).map_or_else(Some, |all| all.into_iter().flatten().next())
    {
        return Err(RunError::Setup(format!("cannot recover the sinks: {e}")));
    }
    let mut positions = vec![Positions::new(); setup.sources.len()];
    let mut marks = vec![files::Marks::new(); setup.sources.len()];
    let (Some(m), Some(dir)) = (&manifest, &setup.state_dir) else {
        return Ok(Restored { manifest, positions, marks, watermark: i64::MIN });
    };
    let states = checkpoint::load_workers(dir, m)?;
    // The watermark of the checkpoint's own round. After a run whose input ended it is +∞ and
    // every window has fired: the next run keeps the positions and counts and starts its
    // windows and watermark afresh, so what comes next is not all late.
    let watermark = states.iter().map(|s| s.watermark).min().unwrap_or(i64::MIN);
    let ended = watermark == i64::MAX;
    let keep = |hash: u64| run::owner(hash, peers) == index;
    for (old, st) in states.into_iter().enumerate() {
        if !ended {
            p.load_state(w, &st.operators, &keep)
                .map_err(|e| RunError::Setup(format!("the checkpoint does not restore: {e}")))?;
        }
        let base = p.base(w);
        if old % peers == index && st.stats.len() == base.stats.len() {
            for (a, b) in base.stats.iter_mut().zip(&st.stats) {
                a.add(b);
            }
        }
        for (name, pos) in st.positions {
            if let Some(k) = setup.sources.iter().position(|s| s.name == name) {
                let their_marks = st.marks.iter().find(|(n, _)| *n == name).map(|(_, m)| m);
                // Each file is in the state of the worker that read it; should two states name
                // it, the further position wins (a file is only ever read forward), with its mark.
                for (file, at) in pos {
                    let further = positions[k].get(&file).is_none_or(|slot| at.0 > slot.0);
                    if further {
                        match their_marks.and_then(|m| m.get(&file)) {
                            Some(m) => marks[k].insert(file.clone(), *m),
                            None => marks[k].remove(&file),
                        };
                        positions[k].insert(file, at);
                    }
                }
            }
        }
    }
    // A followed file is this worker's when its identity hashes here (as its reader decides):
    // the others' positions go to their readers.
    for (k, s) in setup.sources.iter().enumerate() {
        if matches!(s.stream.as_ref().map(|st| &st.kind), Some(StreamKind::Follow(_))) {
            // By the inode the checkpoint recorded (the file may have been renamed since).
            let recorded = marks[k].clone();
            positions[k].retain(|file, _| {
                let key = match recorded.get(file) {
                    Some(m) => Some(files::key_of_inode(m.ino)),
                    None => files::file_key(Path::new(file)),
                };
                key.is_some_and(|key| run::owner(key, peers) == index)
            });
            let kept = positions[k].clone();
            marks[k].retain(|file, _| kept.contains_key(file));
        }
    }
    // The watermark goes on from the checkpoint's; each reader's event times start afresh.
    p.base(w).watermark = if ended { i64::MIN } else { watermark };
    Ok(Restored { manifest, positions, marks, watermark: p.base(w).watermark })
}

/// A Kafka source (by index) and the next offset of each partition a worker reads.
type SourceOffsets = (usize, BTreeMap<i32, i64>);

/// The readers of one worker: a thread per source it reads.
struct Readers {
    rx: Receiver<Msg>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Sources this worker reads nothing from (standard input belongs to worker 0).
    none: Vec<bool>,
    /// Per source, what its reader knows of its files (`files::SCANNING`, …).
    found: Vec<Arc<AtomicU8>>,
    /// Per Kafka source, what its reader knows of this worker's partitions.
    kafka: Vec<Option<Arc<ReaderShared>>>,
    started: Instant,
}

impl Readers {
    fn start(setup: &Setup, index: usize, peers: usize, positions: &[Positions], marks: &[files::Marks]) -> Readers {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(CHANNEL_BATCHES);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut none = vec![false; setup.sources.len()];
        let found: Vec<Arc<AtomicU8>> =
            setup.sources.iter().map(|_| Arc::new(AtomicU8::new(files::SCANNING))).collect();
        let mut kafka = vec![None; setup.sources.len()];
        for (k, s) in setup.sources.iter().enumerate() {
            // A join's table was read before the run: nothing to follow.
            if s.table {
                none[k] = true;
                continue;
            }
            let Some(st) = s.stream.clone() else { continue };
            if let StreamKind::Kafka(decl) = &st.kind {
                let mine: Vec<i32> = setup.partitions[k]
                    .iter()
                    .flatten()
                    .copied()
                    .filter(|p| conn::partition_owner(*p, peers) == index)
                    .collect();
                // A worker without partitions has nothing to read: it is finished with the source.
                found[k].store(files::OWNS_FILES, Ordering::Relaxed);
                if mine.is_empty() {
                    none[k] = true;
                    continue;
                }
                let shared = Arc::new(ReaderShared::default());
                // Known before the reader has asked the brokers anything: until then each
                // partition is pending and holds the watermark, so a worker whose reader starts
                // sooner cannot move it past records its peers have not read yet.
                shared.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(
                    mine.iter().map(|&p| (p, conn::PartitionState { position: 0, high: -1, last_message: None })),
                );
                kafka[k] = Some(shared.clone());
                let header = (st.format == Format::Csv).then(|| {
                    Arc::new(csv::ByteRecord::from(decl.columns.iter().map(String::as_str).collect::<Vec<_>>()))
                });
                let group = decl.group.clone().unwrap_or_else(|| setup.group.clone());
                let (tx, stop, resume, decl) = (tx.clone(), stop.clone(), positions[k].clone(), decl.clone());
                threads.push(std::thread::spawn(move || {
                    let r = conn::kafka_follow(k, &decl, header, &group, &mine, &resume, &tx, &stop, &shared);
                    if let Err(e) = r {
                        let _ = tx.send(Msg::Failed(k, e));
                    }
                }));
                continue;
            }
            if st.kind == StreamKind::Stdin {
                if index != 0 {
                    none[k] = true;
                    continue;
                }
                found[k].store(files::OWNS_FILES, Ordering::Relaxed);
            }
            let (tx, stop, resume, poll) = (tx.clone(), stop.clone(), positions[k].clone(), setup.poll);
            let file_marks = marks[k].clone();
            let found = found[k].clone();
            threads.push(std::thread::spawn(move || {
                let owns = |key: u64| run::owner(key, peers) == index;
                let r = match &st.kind {
                    StreamKind::Follow(glob) => {
                        files::follow(k, glob, st.format, resume, file_marks, &owns, &tx, poll, &stop, &found)
                    }
                    StreamKind::Stdin => files::stdin(k, st.format, &tx, &stop),
                    StreamKind::Kafka(_) => Ok(()),
                };
                if let Err(e) = r {
                    let _ = tx.send(Msg::Failed(k, e));
                }
            }));
        }
        Readers { rx, stop, threads, none, found, kafka, started: Instant::now() }
    }

    /// The state of this worker's Kafka partitions, for its report: idle after the source's
    /// `idle_timeout` without a message, pending until the first message of a partition that
    /// has (or may have) messages.
    fn partitions(&self, sources: &[SourceDecl]) -> Vec<PartitionProgress> {
        let mut out = Vec::new();
        for (k, shared) in self.kafka.iter().enumerate() {
            let Some(shared) = shared else { continue };
            let idle_after = sources[k].idle_timeout.map(|t| Duration::from_millis(u64::try_from(t).unwrap_or(0)));
            let parts = shared.partitions.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for (&partition, st) in parts.iter() {
                let quiet_for = st.last_message.unwrap_or(self.started).elapsed();
                out.push(PartitionProgress {
                    source: k,
                    partition,
                    idle: idle_after.is_some_and(|t| quiet_for >= t),
                    // Consulted while none of the partition's records has been parsed in this
                    // run: a partition that has (or may have) messages holds the watermark, the
                    // next may be older than the others' (a message just received is not
                    // parsed yet); one known to be empty does not.
                    pending: st.high != 0 || st.last_message.is_some(),
                    lag: st.lag(),
                });
            }
        }
        out
    }

    /// Hands the offsets a published checkpoint recorded to the Kafka readers, to commit to
    /// the consumer group.
    fn commit(&self, positions: &[SourceOffsets]) {
        for (k, offsets) in positions {
            if let Some(Some(shared)) = self.kafka.get(*k) {
                *shared.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(offsets.clone());
            }
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.rx);
        for t in self.threads {
            // A reader blocked on standard input cannot be woken; it ends with the process.
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

/// Why a worker's stream ended early.
enum Failure {
    /// A source failed; every worker stopped in step.
    Source(RunError),
    /// This worker cannot go on (a sink or the state could not be written).
    Fatal(RunError),
}

impl From<RunError> for Failure {
    fn from(e: RunError) -> Failure {
        Failure::Fatal(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Fatal(RunError::Io(e))
    }
}

/// A worker's outcome: its operators' counts and the rows that broke requirements, or why it
/// stopped.
type Outcome = Result<(Vec<Stat>, Violations), String>;

/// [`super::gather`] of every worker's outcome (not generic: see [`super::gather_message`]).
fn gather_outcome(timely: &mut timely::worker::Worker, outcome: Outcome) -> Result<Vec<Outcome>, String> {
    super::gather(timely, outcome)
}

/// One worker's whole stream: restore, rounds until the end, the last checkpoint.
fn worker<P: Pipeline>(
    timely: &mut timely::worker::Worker,
    p: &P,
    setup: &Setup,
    ctx: &Arc<run::Context>,
    outputs: &Arc<Outputs>,
    started: Instant,
) -> Result<(Vec<Stat>, Violations), Failure> {
    let (index, peers) = (timely.index(), timely.peers());
    let mut base = Base::new(ctx.clone(), SinkTo::new(outputs.clone(), index, 0), setup.nodes.len());
    base.workers = peers;
    let mut w = p.worker(base);
    let restored = restore(timely, p, setup, outputs, &mut w)?;
    let epoch0 = restored.manifest.as_ref().map_or(0, |m| m.epoch + 1);
    let watermark0 = restored.watermark;
    p.base(&mut w).out = SinkTo::new(outputs.clone(), index, epoch0);
    let first = index % setup.local_workers.max(1) == 0;
    super::load_tables(timely, p, &mut w, &setup.tables, &setup.sources, first, &setup.table_slot)
        .map_err(|e| Failure::from(RunError::Setup(e)))?;
    let core: Core<P> = Shared::core(w);
    let mut df: Dataflow<P> = super::build(timely, p, &core, &setup.sources, watermark0);
    let wake_parser = core.borrow().parse_address.clone().map(|a| timely.activator_for(a));
    // The workers of this process, which share the parsing of what each reads.
    let local = setup.local_workers.max(1);
    let first_local = index - index % local;
    let mut batches_sent: u64 = 0;
    // The node of each source, in source order.
    let source_nodes: Vec<usize> =
        setup.nodes.iter().enumerate().filter(|(_, n)| n.kind == run::NodeKind::Source).map(|(i, _)| i).collect();
    let readers = Readers::start(setup, index, peers, &restored.positions, &restored.marks);
    let mut positions = restored.positions;
    let mut marks = restored.marks;
    let n = setup.sources.len();
    let mut finished: Vec<bool> = readers.none.clone();
    let mut last_input = vec![Instant::now(); n];
    let mut last_any = Instant::now();
    let mut records: u64 = 0;
    let mut clock = Clock::new(&setup.sources, peers, watermark0);
    let mut durable: Option<u64> = restored.manifest.as_ref().map(|m| m.epoch);
    let mut committed: Option<u64> = durable;
    let mut published: Option<u64> = durable;
    let mut last_checkpoint = Instant::now();
    let mut last_metrics = Instant::now();
    let mut checkpoints: u64 = 0;
    // The epoch of the last checkpoint once the run is ending: it stops when that is published.
    let mut closing: Option<u64> = None;
    // Per checkpoint not yet published: the Kafka offsets it recorded, for the consumer group.
    let mut to_commit: BTreeMap<u64, Vec<SourceOffsets>> = BTreeMap::new();
    let mut failure: Option<RunError> = None;
    let slot = {
        let mut s = setup.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.push(Status::default());
        s.len() - 1
    };

    // `refresh`: the shortest interval of the tables that have one.
    let refresh_every = setup.sources.iter().filter(|s| s.table).filter_map(|s| s.refresh).min();
    // The files the joins' tables were last read from.
    let mut tables_read = super::splits_fingerprint(&setup.tables);
    // A PostgreSQL table with `refresh` has no listing to compare: it counts as changed.
    let pg_tables = setup
        .sources
        .iter()
        .any(|s| s.table && s.refresh.is_some() && s.batch.as_ref().is_some_and(|b| b.postgres.is_some()));
    let mut last_refresh = Instant::now();
    let mut round: u64 = 0;
    loop {
        // Read (not once the run is ending).
        let mut taken_this_round = false;
        if closing.is_none() && failure.is_none() {
            let mut taken = 0;
            let mut connected = true;
            let mut lines_taken: u64 = 0;
            let deadline = Instant::now() + TICK;
            while taken < BATCHES_PER_ROUND && lines_taken < LINES_PER_ROUND {
                // What the readers have; with nothing yet, wait a little until input comes,
                // another worker ends this round (stepping the dataflow to hear it), or a
                // tick passed. A lone worker just waits on its readers.
                let msg = match readers.rx.try_recv() {
                    Ok(m) => m,
                    Err(e) => {
                        connected &= e == TryRecvError::Empty;
                        let now = Instant::now();
                        if taken > 0 || core.borrow().heard_busy > round || now >= deadline {
                            break;
                        }
                        if peers == 1 && connected {
                            match readers.rx.recv_timeout(deadline - now) {
                                Ok(m) => m,
                                Err(RecvTimeoutError::Timeout) => break,
                                Err(RecvTimeoutError::Disconnected) => continue,
                            }
                        } else {
                            timely.step_or_park(Some(WAIT_STEP));
                            continue;
                        }
                    }
                };
                match msg {
                    Msg::Batch(b) => {
                        let k = b.source;
                        let lines = b.lines.len() as u64;
                        lines_taken += lines;
                        if let Some(old) = &b.renamed_from {
                            positions[k].remove(&**old);
                            marks[k].remove(&**old);
                        }
                        if let Some(m) = b.mark {
                            marks[k].insert(b.file.to_string(), m);
                        }
                        positions[k].insert(b.file.to_string(), (b.end_offset, b.end_line));
                        if b.restarted {
                            // The summary's account of file-identity changes, at the source.
                            if let Some(&node) = source_nodes.get(k) {
                                let mut sh = core.borrow_mut();
                                if let Some(s) = p.base(&mut sh.w).stats.get_mut(node) {
                                    s.restarted += 1;
                                }
                            }
                        }
                        if b.lines.is_empty() {
                            // Where a Kafka partition starts: a position, no records.
                            continue;
                        }
                        // Each Kafka partition has its own event-time account; a file's lines go
                        // to the account of the worker that read them.
                        let reader = match readers.kafka[k] {
                            Some(_) => PARTITION_READER + conn::partition_of(&b.file).map_or(0, |p| p as usize),
                            None => index,
                        };
                        // Round, reader and batch: the high bits of the records' sequence numbers.
                        let seq = super::seq(round, ((index as u64 & 0xff) << 16) | ((taken as u64 & 0xf) << 12));
                        df.side.send_lines(super::Lines {
                            target: first_local + (batches_sent % local as u64) as usize,
                            reader,
                            source: k,
                            file: b.file.to_string(),
                            header: b.header.as_ref().map(|h| h.iter().map(<[u8]>::to_vec).collect()),
                            data: b.data,
                            lines: b.lines,
                            meta: b.meta,
                            seq,
                        });
                        batches_sent += 1;
                        taken += 1;
                        records += lines;
                        last_input[k] = Instant::now();
                        last_any = Instant::now();
                    }
                    Msg::Done(k) => finished[k] = true,
                    Msg::Failed(k, e) => {
                        failure = Some(RunError::Setup(format!("source `{}`: {e}", setup.sources[k].name)));
                        break;
                    }
                }
            }
            taken_this_round = taken > 0;
            if failure.is_some() {
                // Every worker stops after this round (with a last checkpoint, so a restart
                // after the cause is fixed goes on from here), then the run fails.
                setup.interrupted.store(true, Ordering::Relaxed);
            }
        } else {
            std::thread::sleep(Duration::from_millis(5));
        }
        df.send_outbox(p, &core);
        let seen: Vec<(usize, Vec<i64>)> = core.borrow().seen.iter().map(|(r, m)| (*r, m.clone())).collect();
        let report = Report {
            worker: index,
            sources: (0..n)
                .map(|k| SourceProgress {
                    // `--exit-when-idle`: the input has ended; once every worker says so, the
                    // watermark passes +∞ and every window fires.
                    finished: finished[k] || setup.exit_idle.is_some_and(|d| last_any.elapsed() >= d),
                    idle: setup.sources[k]
                        .idle_timeout
                        .is_some_and(|t| last_input[k].elapsed().as_millis() >= u128::try_from(t).unwrap_or(0)),
                    pending: readers.found[k].load(Ordering::Relaxed) != files::NO_FILES,
                })
                .collect(),
            seen,
            partitions: readers.partitions(&setup.sources),
            records,
            busy: taken_this_round,
            checkpoint: index == 0 && closing.is_none() && last_checkpoint.elapsed() >= setup.checkpoint_every,
            stop: setup.interrupted.load(Ordering::Relaxed),
            durable,
            committed: if index == 0 { committed } else { None },
            refresh: index == 0
                && closing.is_none()
                && refresh_every.is_some_and(|r| last_refresh.elapsed().as_millis() >= u128::try_from(r).unwrap_or(0)),
        };
        if report.refresh {
            last_refresh = Instant::now();
        }
        if report.checkpoint {
            last_checkpoint = Instant::now();
        }
        df.end_round(round, report);
        // Short parks: progress from other workers does not always wake a parked worker.
        while df.probe.less_than(&(round + 1)) {
            timely.step_or_park(Some(WAIT_STEP));
        }
        let completed = std::mem::take(&mut core.borrow_mut().rounds);
        if let Some(f) = core.borrow_mut().failure.take() {
            return Err(Failure::Fatal(RunError::Setup(f)));
        }
        let completed_refresh = completed.iter().any(|(_, reports)| reports.iter().any(|r| r.worker == 0 && r.refresh));
        for (_, reports) in completed {
            clock.observe(&reports);
            // Worker 0: every worker's state of an epoch is durable, so the checkpoint is
            // complete; record it in the manifest.
            if index == 0 {
                let all_durable = reports.iter().map(|r| r.durable).min().flatten();
                if reports.len() == peers && all_durable > committed {
                    if let (Some(dir), Some(e)) = (&setup.state_dir, all_durable) {
                        let m = Manifest {
                            pipeline: P::NAME.to_string(),
                            epoch: e,
                            workers: peers,
                            format: checkpoint::FORMAT,
                        };
                        checkpoint::commit(dir, &m)?;
                    }
                    committed = all_durable;
                }
            }
            // Every worker: publish what the manifest records.
            if let Some(c) = reports.iter().find(|r| r.worker == 0).and_then(|r| r.committed) {
                let from = published.map_or(0, |x| x + 1);
                for e in from..=c {
                    outputs.publish(index, e)?;
                }
                if published.is_none_or(|x| x < c) {
                    published = Some(c);
                }
                let done: Vec<u64> = to_commit.range(..=c).map(|(e, _)| *e).collect();
                if let Some(last) = done.last().and_then(|e| to_commit.get(e)) {
                    readers.commit(last);
                }
                for e in done {
                    to_commit.remove(&e);
                }
            }
            let ending = clock.finished() || reports.iter().any(|r| r.stop);
            if super::checkpoint_round(&reports) && closing.is_none() {
                // The end of this round is a consistent cut: save this worker's part.
                let mut sh = core.borrow_mut();
                p.flush(&mut sh.w);
                let state = p.save_state(&mut sh.w).map_err(RunError::Setup)?;
                let base = p.base(&mut sh.w);
                if let Some(e) = base.error.take() {
                    return Err(Failure::Fatal(RunError::Io(e)));
                }
                if base.violations.fail() {
                    return Err(Failure::Fatal(RunError::Requirements(std::mem::take(&mut base.violations))));
                }
                let e = base.out.close_epoch()?;
                if let Some(dir) = &setup.state_dir {
                    let st = WorkerState {
                        operators: state,
                        stats: base.stats.clone(),
                        watermark: clock.watermark(),
                        // The files and partitions this worker reads (it was handed every
                        // position of the checkpoint it started from).
                        positions: setup
                            .sources
                            .iter()
                            .enumerate()
                            .zip(&positions)
                            .map(|((k, s), pos)| {
                                let mine = pos
                                    .iter()
                                    .filter(|(name, _)| owns_position(setup, k, name, index, peers))
                                    .map(|(f, at)| (f.clone(), *at))
                                    .collect();
                                (s.name.to_string(), mine)
                            })
                            .collect(),
                        marks: setup.sources.iter().zip(&marks).map(|(s, m)| (s.name.to_string(), m.clone())).collect(),
                    };
                    checkpoint::save_worker(dir, e, index, &st)?;
                }
                let offsets: Vec<SourceOffsets> = (0..n)
                    .filter(|k| readers.kafka[*k].is_some())
                    .map(|k| {
                        let mine = positions[k]
                            .iter()
                            .filter(|(name, _)| owns_position(setup, k, name, index, peers))
                            .filter_map(|(name, at)| Some((conn::partition_of(name)?, i64::try_from(at.0).ok()?)))
                            .collect();
                        (k, mine)
                    })
                    .collect();
                if !offsets.is_empty() {
                    to_commit.insert(e, offsets);
                }
                durable = Some(e);
                checkpoints += 1;
                sh.hold = false;
                drop(sh);
                if ending {
                    closing = Some(e);
                }
            } else if ending && closing.is_none() {
                closing = durable;
            }
        }
        if closing.is_some() && published >= closing {
            break;
        }
        // Worker 0 asked for the tables to be read again after this round: every worker reads
        // its share (its core released while the parts cross, so its operators can run), the
        // first of each process builds them, and every worker's joins use them from the next
        // round on. Bad records go to `rejected` again.
        if completed_refresh {
            // The files as they are now: each worker lists them; when every worker found them
            // as they were at the last reading, nothing is read again.
            let planned = super::table_splits(&setup.sources, peers, false).map_err(|e| e.to_string());
            let listed = planned.as_ref().ok().map(|s| super::splits_fingerprint(s));
            // A table in PostgreSQL has no listing to compare: it is read again every time.
            // (Values that could not be shared count as changed: the tables are read again.)
            let unchanged = super::gather_number(timely, listed)
                .is_ok_and(|all| all.iter().all(|f| *f == Some(tables_read)))
                && !pg_tables;
            let first = index % setup.local_workers.max(1) == 0;
            let shared = if unchanged {
                Ok(None)
            } else {
                let mut hold = Vec::new();
                let ranges = super::pg_table_ranges(timely, &setup.sources, &mut hold);
                let part = planned.and_then(|splits| {
                    let ranges = ranges?;
                    let mut sh = core.borrow_mut();
                    super::read_table_part(p, &mut sh.w, &splits, &ranges, &setup.sources, index, peers)
                        .map(|(_, part)| (super::splits_fingerprint(&splits), part))
                });
                let read = part.as_ref().map(|(f, _)| *f).ok();
                let shared = super::share_tables(timely, p, part, first, &setup.table_slot);
                drop(hold);
                shared.map(|t| Some((t, read)))
            };
            match shared {
                Ok(None) => {}
                Ok(Some((t, read))) => {
                    p.use_tables(&mut core.borrow_mut().w, &t);
                    if let Some(f) = read {
                        tables_read = f;
                    }
                }
                // A table being replaced, or unreadable for a moment, is read again at the next
                // interval; the joins keep the table they have.
                Err(e) if index == 0 && !setup.quiet => {
                    #[allow(clippy::print_stderr, reason = "the stream's warning; the run goes on")]
                    {
                        eprintln!("warning: a join's table was not read again (the joins keep the one they have): {e}");
                    }
                }
                Err(_) => {}
            }
        }
        // Rows that reached sinks this round are written (standard output at once; files
        // into the epoch's part, published with its checkpoint).
        {
            let mut sh = core.borrow_mut();
            p.flush(&mut sh.w);
            let base = p.base(&mut sh.w);
            if let Some(e) = base.error.take() {
                return Err(Failure::Fatal(RunError::Io(e)));
            }
            if base.violations.fail() {
                return Err(Failure::Fatal(RunError::Requirements(std::mem::take(&mut base.violations))));
            }
        }
        // Metrics of this process.
        let status = {
            let mut sh = core.borrow_mut();
            let groups = p.state_size(&sh.w);
            let base = p.base(&mut sh.w);
            Status {
                stats: base.stats.clone(),
                watermark: clock.watermark(),
                groups,
                checkpoints,
                records,
                cluster_records: clock.latest().map(|r| r.records).sum(),
                partition_lag: clock
                    .latest()
                    .filter(|r| r.worker == index)
                    .flat_map(|r| r.partitions.iter())
                    .map(|p| (setup.sources[p.source].name.to_string(), p.partition, p.lag))
                    .collect(),
                checks: base.violations.clone(),
            }
        };
        publish_status(p, setup, slot, status, started, &mut last_metrics);
        round += 1;
        // The next round is open: lines other workers read for it may be parsed now.
        core.borrow_mut().open_round = round;
        if let Some(a) = &wake_parser {
            a.activate();
        }
    }
    readers.stop();
    let Dataflow { rows, side, probe } = df;
    drop(side);
    drop(rows);
    while !probe.done() {
        timely.step_or_park(Some(TICK));
    }
    if let Some(e) = failure {
        return Err(Failure::Source(e));
    }
    let mut sh = core.borrow_mut();
    let base = p.base(&mut sh.w);
    Ok((base.stats.clone(), std::mem::take(&mut base.violations)))
}

/// Whether this worker reads the file or partition a position names: a Kafka partition belongs
/// to `partition % workers`; a worker's file positions are those of the files its readers
/// follow (the restored ones were shared out by file identity at the start).
fn owns_position(setup: &Setup, source: usize, name: &str, index: usize, peers: usize) -> bool {
    if setup.partitions[source].is_some() {
        return conn::partition_of(name).is_some_and(|p| conn::partition_owner(p, peers) == index);
    }
    true
}

/// Records this worker's status for the process's metrics; the first worker of the process
/// prints the progress line and renders the Prometheus text.
fn publish_status<P: Pipeline>(
    p: &P,
    setup: &Setup,
    slot: usize,
    status: Status,
    started: Instant,
    last_metrics: &mut Instant,
) {
    let _ = p;
    let mut all = setup.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(s) = all.get_mut(slot) {
        *s = status;
    }
    if slot != 0 {
        return;
    }
    let mut total = Status::default();
    for s in all.iter() {
        total.add(s);
    }
    drop(all);
    if let Some(text) = &setup.metrics_text {
        let t = metrics::prometheus(P::NAME, &setup.nodes, setup.process, &total);
        if let Ok(mut m) = text.lock() {
            *m = t;
        }
    }
    if !setup.metrics_every.is_zero() && last_metrics.elapsed() >= setup.metrics_every {
        *last_metrics = Instant::now();
        if !setup.quiet {
            let rejected: u64 = total
                .stats
                .iter()
                .zip(&setup.nodes)
                .filter(|(_, n)| n.kind == run::NodeKind::Rejected)
                .map(|(s, _)| s.read)
                .sum();
            let late: u64 = total.stats.iter().map(|s| s.late).sum();
            let wm = match total.watermark {
                i64::MIN => "none yet".to_string(),
                i64::MAX => "end of input".to_string(),
                t => crate::f::ts_text(t),
            };
            #[allow(clippy::print_stderr, reason = "the stream's periodic report")]
            {
                eprintln!(
                    "{} process {} after {:.0}s: {} records (cluster {}), watermark {wm}, {} groups, {rejected} rejected, {late} late, {} checkpoints",
                    P::NAME,
                    setup.process,
                    started.elapsed().as_secs_f64(),
                    total.records,
                    total.cluster_records,
                    total.groups,
                    total.checkpoints
                );
            }
        }
    }
}

/// A stream with no checkpoint to go on from starts at the beginning of its input, so it would
/// write again every row a sink already holds from an earlier run: when a file sink holds
/// files a stream published (`part-EPOCH-WORKER.*`), the run stops and says why, unless told
/// `--reset`.
fn refuse_lost_state(sinks: &[crate::sink::SinkDecl], state_dir: Option<&Path>) -> Result<(), RunError> {
    for s in sinks {
        let (crate::sink::SinkKind::Files { .. }, Some(dir)) = (&s.kind, &s.location) else { continue };
        let parts = crate::sink::published_at(dir).map_err(|e| RunError::Setup(format!("sink `{}`: {e}", s.name)))?;
        let Some(part) = parts.into_iter().next() else { continue };
        let state = match state_dir {
            Some(d) => format!("the state directory `{}` holds no checkpoint", d.display()),
            None => "this run has no state directory (`--state-dir`)".to_string(),
        };
        return Err(RunError::Setup(format!(
            "sink `{}`: `{dir}` holds output a stream published (`{}`), but {state}: starting over would write those rows again. \
             Run with the state directory that stream used, or pass `--reset` to start from the beginning anyway (the files stay)",
            s.name,
            part
        )));
    }
    Ok(())
}

/// `--reset`: the stream starts over as if it had never run: the state directory's checkpoints
/// and the files earlier streams published into the file sinks are removed (a stream that
/// starts over writes them again; keeping them would count every row twice).
fn reset(sinks: &[crate::sink::SinkDecl], state_dir: Option<&Path>) -> Result<(), RunError> {
    if let Some(dir) = state_dir {
        checkpoint::clear(dir).map_err(|e| RunError::Setup(format!("cannot reset `{}`: {e}", dir.display())))?;
    }
    for s in sinks {
        let (crate::sink::SinkKind::Files { .. }, Some(dir)) = (&s.kind, &s.location) else { continue };
        let fail = |e: io::Error| RunError::Setup(format!("cannot reset sink `{}`: {e}", s.name));
        let parts = crate::sink::published_at(dir).map_err(fail)?;
        crate::sink::remove_published(dir, &parts).map_err(fail)?;
    }
    Ok(())
}

/// The stream's tokio runtime, with the interrupt flag its signal handler sets and, with
/// `--metrics-addr`, the text its metrics server serves. Not generic: compiled once, here.
fn services(opts: &Options) -> Result<Services, RunError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| RunError::Setup(format!("cannot start the stream runtime: {e}")))?;
    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        rt.spawn(async move {
            #[cfg(unix)]
            {
                let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
                    return;
                };
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            flag.store(true, Ordering::Relaxed);
        });
    }
    let metrics_text = match &opts.metrics_addr {
        Some(addr) => {
            let text = Arc::new(Mutex::new(String::new()));
            let listener = rt
                .block_on(tokio::net::TcpListener::bind(addr))
                .map_err(|e| RunError::Setup(format!("--metrics-addr {addr}: {e}")))?;
            rt.spawn(metrics::serve_metrics(listener, text.clone()));
            Some(text)
        }
        None => None,
    };
    Ok((rt, interrupted, metrics_text))
}

/// What [`services`] started.
type Services = (tokio::runtime::Runtime, Arc<AtomicBool>, Option<Arc<Mutex<String>>>);
