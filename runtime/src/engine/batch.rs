//! Batch runs (`--mode batch`): every input is cut into splits, the splits are shared out over
//! all workers of all processes (the same way on every process and every run), each worker
//! parses its splits and pushes their records through the fused stages, rows bound for an
//! aggregate cross the key exchange, and when every worker has finished the watermark passes
//! +∞ so every window fires. Each worker writes its own part of every sink into one temporary
//! directory; only when every worker of every process succeeded does worker 0 move it into
//! place, so a failed run leaves the previous output as it was.
//!
//! **Windows fire as event time passes.** A run that holds every window to the end holds
//! every group of the whole input. So when nothing it writes leaves before the run ends (no
//! `stdout` or Kafka sink), a batch run first reads as a stream does: each worker ends a round
//! after each unit of input it read (a split, a partition, a range), reporting the largest
//! event time it has seen of each source, and the windows, joins and rolling windows the
//! cluster's watermark passed fire and let their state go. That output equals the one of
//! holding everything to the end only while no record comes behind the watermark (the input,
//! read in split order, out of event-time order by more than its source's `watermark` bound):
//! the operators count such records ([`run::behind`]), and when any came, the run throws its
//! output away and reads its input again holding every window to the end. Either way the rows
//! written are those of the batch semantics: every record counts, nothing is late.

use std::collections::HashMap;
use std::io::{self, IsTerminal};
use std::sync::Arc;
use std::time::Instant;

use super::{Core, Dataflow, Report, Shared, SourceProgress};
use crate::connectors as conn;
use crate::input::{self, Format, LineBase, Split};
use crate::mask::Key;
use crate::record::{Line, Origin};
use crate::run::{self, Base, Options, Pipeline, RunError, SourceDecl, Stat, Summary, Violations};
use crate::sink::{Outputs, SinkTo};

/// Records a worker parses before it hands the rows for other workers to the exchange.
const SEND_EVERY: u64 = 4096;

/// The largest split of a run that fires windows as event time passes: a worker ends a round,
/// and the windows the watermark passed fire, after each split it read.
const EARLY_SPLIT_BYTES: u64 = 4 << 20;

/// What a worker reports when its part of the run is over.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Done {
    stats: Vec<Stat>,
    failure: Option<String>,
    /// Rows that broke `require` steps on this worker.
    violations: Violations,
    /// The files the worker uploaded to object-store sinks.
    uploaded: Vec<crate::sink::Uploaded>,
    /// Records this worker's operators met behind the watermark (windows firing early).
    behind: u64,
}

/// [`super::gather`] of every worker's outcome (not generic: see [`super::gather_message`]).
fn gather_done(timely: &mut timely::worker::Worker, done: Done) -> Result<Vec<Done>, String> {
    super::gather(timely, done)
}

/// Runs a pipeline in batch mode on the cluster the options describe.
pub fn run<P: Pipeline>(p: &P, opts: &Options) -> Result<Summary, RunError> {
    let start = Instant::now();
    let key = if p.needs_key() { Some(Key::from_environment(opts.hmac_key_file.as_deref())?) } else { None };
    let ctx = run::context(p, key, &HashMap::new())?;
    if fires_early(p) {
        match attempt(p, opts, &ctx, start, true)? {
            Outcome::Done(summary) => return Ok(summary),
            Outcome::Behind(n) => {
                // Said even with `--quiet`: the run takes about twice as long as it would.
                #[allow(clippy::print_stderr, reason = "the run's own report")]
                {
                    eprintln!(
                        "note: in the order it was read, the input is more out of event-time order than its sources' `watermark` allows ({n} window or join updates came behind the watermark); reading it again, every window held to its end"
                    );
                }
            }
        }
    }
    match attempt(p, opts, &ctx, start, false)? {
        Outcome::Done(summary) => Ok(summary),
        Outcome::Behind(_) => {
            Err(RunError::Setup("internal: a run holding every window met a record behind the watermark".into()))
        }
    }
}

/// Whether a batch run of `p` fires its windows as event time passes: it has windows, joins
/// or rolling windows to fire, and nothing it writes leaves before the run ends (rows written
/// to standard output or to Kafka could not be taken back if the run had to read again).
fn fires_early<P: Pipeline>(p: &P) -> bool {
    p.aggregates() > 0
        && p.sinks()
            .iter()
            .all(|s| !matches!(s.kind, crate::sink::SinkKind::Stdout { .. } | crate::sink::SinkKind::Kafka { .. }))
}

/// How one reading of a batch run's input ended.
enum Outcome {
    /// The run finished (its output published, its summary written).
    Done(Summary),
    /// Records came behind the watermark of a run firing windows early: nothing was published.
    Behind(u64),
}

/// One reading of the input: windows fire as event time passes (`early`) or all at the end.
fn attempt<P: Pipeline>(
    p: &P,
    opts: &Options,
    ctx: &Arc<run::Context>,
    start: Instant,
    early: bool,
) -> Result<Outcome, RunError> {
    let ctx = ctx.clone();

    let mut sources = p.sources();
    let names: Vec<&str> = sources.iter().map(|s| s.name).collect();
    for (name, uri) in run::overrides(&opts.sources, "source", &names)? {
        if let Some(s) = sources.iter_mut().find(|s| s.name == name) {
            match &mut s.batch {
                // A PostgreSQL source's override is its connection URL.
                Some(b) if b.postgres.is_some() => {
                    if let Some(pg) = &mut b.postgres {
                        pg.url = uri;
                    }
                }
                Some(b) => b.glob = uri,
                None => return Err(run::no_batch(s.name)),
            }
        }
    }
    if let Some(s) = sources.iter().find(|s| s.batch.is_none()) {
        return Err(run::no_batch(s.name));
    }
    let sinks = run::sink_locations(p.sinks(), &opts.sinks)?;
    let mut splits: Vec<Split> = Vec::new();
    // Kafka topics: every partition is read, by worker `n % workers` for the n-th of them.
    let mut partitions: Vec<(usize, i32)> = Vec::new();
    let cluster_workers =
        opts.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1)
            * opts.processes.max(1);
    let table_splits = Arc::new(super::table_splits(&sources, cluster_workers, true)?);
    // PostgreSQL sources: their columns checked and their tables cut into page ranges, each
    // read by worker `n % workers` for the n-th; `holds` keeps their snapshots for the run.
    let mut ranges: Vec<(usize, conn::PgRange)> = Vec::new();
    let mut holds = Vec::new();
    for (i, s) in sources.iter().enumerate().filter(|(_, s)| !s.table) {
        let Some(b) = &s.batch else { return Err(run::no_batch(s.name)) };
        if let Some(pg) = &b.postgres {
            let plan = conn::pg_plan(s.name, pg, cluster_workers).map_err(RunError::Setup)?;
            ranges.extend(plan.ranges.into_iter().map(|r| (i, r)));
            holds.push(plan.hold);
            continue;
        }
        if let Some(k) = &b.kafka {
            let parts = conn::kafka_partitions(k).map_err(|e| RunError::Setup(format!("source `{}`: {e}", s.name)))?;
            partitions.extend(parts.into_iter().map(|p| (i, p)));
            continue;
        }
        // Windows fire between units of input: smaller ones hold fewer windows open.
        let most = if early { EARLY_SPLIT_BYTES } else { input::SPLIT_BYTES };
        let planned = input::plan_at_most(i, &b.glob, b.format, cluster_workers, most)
            .map_err(|e| RunError::Setup(format!("source `{}`: {e}", s.name)))?;
        splits.extend(planned);
    }
    let total: u64 = splits.iter().map(Split::len).sum();
    let position = Arc::new(positions(&splits));
    super::cluster(opts)?;
    let outputs = Arc::new(Outputs::open(sinks, "run", opts.process == 0)?);
    let bar = progress(total, opts);
    let nodes = p.nodes();
    let splits = Arc::new(splits);
    let sources = Arc::new(sources);
    let partitions = Arc::new(partitions);
    let ranges = Arc::new(ranges);
    let group = format!("pipe-{}", P::NAME);

    let worker_outputs = outputs.clone();
    let pipeline = p.clone();
    let worker_bar = bar.clone();
    let slot = super::TableSlot::default();
    let local = opts.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    let results = super::execute(opts, move |timely| {
        let p = &pipeline;
        let (index, peers) = (timely.index(), timely.peers());
        // Worker 0 clears what a crashed run may have left in the temporary directory before
        // any worker writes there.
        let reset = if index == 0 { worker_outputs.reset().err().map(|e| e.to_string()) } else { None };
        let reset = super::gather_message(timely, reset).map_or_else(Some, |all| all.into_iter().flatten().next());
        let mut base = Base::new(ctx.clone(), SinkTo::new(worker_outputs.clone(), index, 0), p.nodes().len());
        base.workers = peers;
        let mut w = p.worker(base);
        if let Err(e) = super::load_tables(timely, p, &mut w, &table_splits, &sources, index % local == 0, &slot) {
            p.base(&mut w).io(Err(io::Error::other(e)));
        }
        let core: Core<P> = Shared::core(w);
        // The watermark's account: in a batch run every source's readers are the workers (a
        // Kafka partition is read whole by one worker).
        let clocked: Vec<SourceDecl> = sources.iter().map(|s| SourceDecl { stream: None, ..s.clone() }).collect();
        let mut df: Dataflow<P> = super::build(timely, p, &core, &clocked, i64::MIN);
        run::take_behind();

        // This worker's units of input with their sources, in the order it reads them: its
        // splits in the order of the files and of their bytes (event time mostly grows that
        // way), the sources' splits interleaved by how far into its source each starts, then
        // its partitions and ranges.
        let mut mine: Vec<usize> =
            if early { assign_in_order(&splits, &position, peers) } else { assign(&splits, peers) }
                .into_iter()
                .filter(|(_, w)| *w == index)
                .map(|(n, _)| n)
                .collect();
        mine.sort_unstable_by_key(|&n| (position[n], n));
        let mut units: Vec<(usize, Unit)> = mine.into_iter().map(|n| (splits[n].source, Unit::Split(n))).collect();
        units.extend(
            partitions
                .iter()
                .enumerate()
                .filter(|(n, _)| n % peers == index)
                .map(|(n, &(k, _))| (k, Unit::Partition(n))),
        );
        units.extend(
            ranges.iter().enumerate().filter(|(n, _)| n % peers == index).map(|(n, (k, _))| (*k, Unit::Range(n))),
        );
        let mut left = vec![0usize; sources.len()];
        for (k, _) in &units {
            left[*k] += 1;
        }
        let mut round = 0u64;
        let mut behind = 0u64;
        for (k, unit) in &units {
            {
                let mut sh = core.borrow_mut();
                match *unit {
                    Unit::Split(number) => {
                        let split = &splits[number];
                        read_split(p, &mut sh.w, number, split, &sources, &mut |w| df.forward(p, w));
                    }
                    Unit::Partition(n) => {
                        let (k, partition) = partitions[n];
                        let major = (splits.len() + n) as u64;
                        read_partition(p, &mut sh.w, major, k, partition, &sources, &group, &mut |w| df.forward(p, w));
                    }
                    Unit::Range(n) => {
                        let (k, range) = &ranges[n];
                        let major = (splits.len() + partitions.len() + n) as u64;
                        read_range(p, &mut sh.w, major, *k, range, &sources, &mut |w| df.forward(p, w));
                    }
                }
                p.end_split(&mut sh.w);
            }
            df.send_outbox(p, &core);
            left[*k] -= 1;
            if early {
                // The round's report: how far this worker has read each source.
                let seen = vec![(index, p.base(&mut core.borrow_mut().w).max_ts.clone())];
                let progress =
                    left.iter().map(|&n| SourceProgress { finished: n == 0, idle: false, pending: n > 0 }).collect();
                df.end_round(round, Report { worker: index, sources: progress, seen, ..Report::default() });
                round += 1;
            }
            timely.step();
            if early {
                // The round completes everywhere before the next unit is read, as in a stream:
                // the windows it closed fire and let go, and no operator applies rows of the
                // next round while a later one still completes this one (rows a join makes
                // while applying go through the worker's one outbox, which the next operator
                // to complete a round sends on).
                while df.probe.less_than(&round) {
                    timely.step_or_park(Some(std::time::Duration::from_millis(1)));
                }
            }
            if let Unit::Split(number) = *unit {
                worker_bar.inc(splits[number].len());
            }
            if early {
                // The control operator's account of completed rounds is the stream loop's.
                core.borrow_mut().rounds.clear();
                behind += run::take_behind();
                // Once this worker met a record behind the watermark, this reading's output
                // will be thrown away: it reads no more.
                if behind > 0 {
                    break;
                }
            }
        }
        // Every source is finished on this worker: once all are, the watermark passes +∞.
        let finished = vec![SourceProgress { finished: true, idle: false, pending: false }; sources.len()];
        df.end_round(round, Report { worker: index, sources: finished, ..Report::default() });
        let Dataflow { rows, side, probe } = df;
        drop(side);
        drop(rows);
        while !probe.done() {
            timely.step_or_park(None);
        }
        behind += run::take_behind();
        // Whether any worker met a record behind the watermark: then nothing is uploaded.
        let (behind_anywhere, unshared) = match early.then(|| super::gather_number(timely, Some(behind))) {
            Some(Ok(all)) => (all.iter().any(|&n| n.is_some_and(|n| n > 0)), None),
            Some(Err(e)) => (false, Some(e)),
            None => (false, None),
        };
        let done = {
            let mut sh = core.borrow_mut();
            p.flush(&mut sh.w);
            let failure = sh.failure.take();
            let base = p.base(&mut sh.w);
            let violations = std::mem::take(&mut base.violations);
            let closed = worker_outputs.close(Some(index), false).err();
            let failure = failure
                .or(reset)
                .or(unshared)
                .or_else(|| base.error.take().map(|e| e.to_string()))
                .or_else(|| closed.map(|e| e.to_string()));
            // Object-store sinks: each worker uploads its own files (in parallel with the others).
            // Not when a requirement failed: the run will publish nothing.
            let (uploaded, failure) = match failure {
                Some(f) => (Vec::new(), Some(f)),
                None if violations.fail() || behind_anywhere => (Vec::new(), None),
                None => match worker_outputs.upload(index) {
                    Ok(u) => (u, None),
                    Err(e) => (Vec::new(), Some(e.to_string())),
                },
            };
            Done { stats: base.stats.clone(), failure, violations, uploaded, behind }
        };
        let all = gather_done(timely, done);
        (index, all)
    })?;
    bar.finish_and_clear();
    drop(holds);

    // Every worker holds every worker's outcome; the first local one speaks for the process.
    let Some((first, all)) = results.into_iter().next() else {
        return Err(RunError::Setup("the cluster ran no workers".into()));
    };
    let all = all.map_err(RunError::Setup)?;
    let mut stats: Vec<Stat> = vec![Stat::default(); nodes.len()];
    let mut failure = None;
    let mut violations = Violations::default();
    outputs.set_uploaded(all.iter().flat_map(|d| d.uploaded.iter().cloned()).collect());
    for d in &all {
        for (a, b) in stats.iter_mut().zip(&d.stats) {
            a.add(b);
        }
        if failure.is_none() {
            failure.clone_from(&d.failure);
        }
        violations.merge(&d.violations);
    }
    // A reading that met records behind the watermark publishes nothing, Redis spools included:
    // the run reads again.
    let behind: u64 = all.iter().map(|d| d.behind).sum();
    if failure.is_none() && behind > 0 {
        outputs.abandon_spools();
        if first == 0 {
            outputs.abandon();
        }
        return Ok(Outcome::Behind(behind));
    }
    // Redis sinks spool their rows in each process until the whole run has succeeded; the
    // committing process writes its own after the commit (`Outputs::commit`).
    let failure =
        failure.or_else(|| (first != 0).then(|| outputs.commit_spools().err()).flatten().map(|e| e.to_string()));
    if let Some(e) = failure {
        outputs.abandon_spools();
        if first == 0 {
            outputs.abandon();
        }
        return Err(RunError::Io(io::Error::other(e)));
    }
    // A check no row reached — an empty input, every record rejected — did not hold.
    violations.declare(&p.checks());
    let operators = run::operators(&nodes, stats);
    let summary = Summary {
        pipeline: P::NAME,
        seconds: start.elapsed().as_secs_f64(),
        bytes: total,
        operators,
        outputs: Vec::new(),
        peak_memory: run::peak_memory(),
        checks: violations,
    };
    if summary.checks.fail() {
        outputs.abandon_spools();
        if first == 0 {
            outputs.abandon();
        }
        // `--summary FILE` still gets the report: every check, how often it failed.
        if let Some(path) = &opts.summary {
            std::fs::write(path, serde_json::to_vec_pretty(&summary).map_err(io::Error::other)?)?;
        }
        return Err(RunError::Requirements(summary.checks));
    }
    // The process of worker 0 publishes the whole cluster's output, the summary with it.
    super::report(summary, first == 0, opts, &outputs, |json| outputs.commit(json)).map(Outcome::Done)
}

/// One unit of a batch run's input, read whole by one worker.
#[derive(Clone, Copy, Debug)]
enum Unit {
    /// A split of a file (its number among the run's splits).
    Split(usize),
    /// A Kafka partition (its number among the run's partitions).
    Partition(usize),
    /// A range of a PostgreSQL table (its number among the run's ranges).
    Range(usize),
}

/// How far into its source's bytes each split starts, in millionths. A worker reads its splits
/// in this order, so the sources of a join advance together. Whatever the order of sources, a
/// record comes behind the watermark only when its own reader read a later one of the same
/// source first (the watermark is the minimum over sources and readers), which reading each
/// source's splits in file order never does with input stored in event-time order.
fn positions(splits: &[Split]) -> Vec<u64> {
    let mut totals: HashMap<usize, u64> = HashMap::new();
    for s in splits {
        *totals.entry(s.source).or_default() += s.len();
    }
    let mut before: HashMap<usize, u64> = HashMap::new();
    splits
        .iter()
        .map(|s| {
            let total = totals.get(&s.source).copied().unwrap_or(1).max(1);
            let at = before.entry(s.source).or_default();
            let position = u128::from(*at) * 1_000_000 / u128::from(total);
            *at += s.len();
            u64::try_from(position).unwrap_or(u64::MAX)
        })
        .collect()
}

/// Which worker reads each split: the largest first, each to the worker with the fewest bytes
/// so far (ties to the lowest number). Every process computes the same assignment from the
/// same input, so a split is read exactly once in the cluster.
pub fn assign(splits: &[Split], workers: usize) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..splits.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&splits[a], &splits[b]);
        y.len().cmp(&x.len()).then_with(|| (x.source, &x.path, x.start).cmp(&(y.source, &y.path, y.start)))
    });
    greedy(splits, order, workers)
}

/// Which worker reads each split in a run that fires windows as it reads: the splits in the
/// order workers read them (how far into its source each starts, see [`positions`]), each to
/// the worker with the fewest bytes so far. Neighbouring splits go to different workers, so
/// the workers move through event time together and the watermark (the slowest reader's)
/// holds back little; largest-first could give one worker the first half of a file and the
/// other the second, whose windows would then all wait. The splits are at most 4 MB, so the
/// loads differ by one split at most.
fn assign_in_order(splits: &[Split], position: &[u64], workers: usize) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..splits.len()).collect();
    order.sort_by_key(|&n| (position.get(n).copied().unwrap_or(0), n));
    greedy(splits, order, workers)
}

/// Gives each split, in `order`, to the worker with the fewest bytes so far (ties to the lowest
/// number).
fn greedy(splits: &[Split], order: Vec<usize>, workers: usize) -> Vec<(usize, usize)> {
    let mut load = vec![0u64; workers.max(1)];
    let mut out = Vec::with_capacity(splits.len());
    for n in order {
        let (w, _) = load.iter().enumerate().min_by_key(|(i, l)| (**l, *i)).unwrap_or((0, &0));
        load[w] += splits[n].len().max(1);
        out.push((n, w));
    }
    out
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

/// Reads one partition of a Kafka source up to the end offset it has now and pushes its
/// messages (the `major`-th unit of the run, for the order of ties). A partition that cannot be
/// read stops the run; a message that cannot be parsed goes to `rejected` as
/// `topic/partition@offset`.
#[allow(clippy::too_many_arguments, reason = "one unit of a batch run's input")]
fn read_partition<P: Pipeline>(
    p: &P,
    w: &mut P::Worker,
    major: u64,
    k: usize,
    partition: i32,
    sources: &[SourceDecl],
    group: &str,
    send: &mut dyn FnMut(&mut P::Worker),
) {
    let decl = &sources[k];
    let Some(kafka) = decl.batch.as_ref().and_then(|b| b.kafka.as_ref()) else { return };
    let format = decl.batch.as_ref().map_or(Format::Json, |b| b.format);
    let name = conn::position_name(&kafka.topic, partition);
    let header = csv::ByteRecord::from(kafka.columns.iter().map(String::as_str).collect::<Vec<_>>());
    let group = kafka.group.as_deref().unwrap_or(group);
    let mut n: u64 = 0;
    let read = conn::kafka_read_bounded(kafka, group, partition, &mut |payload, meta| {
        p.base(w).seq = super::seq(major, n);
        n += 1;
        p.base(w).message = Some(meta.clone());
        let offset = u64::try_from(meta.offset).unwrap_or(0);
        let o = Origin { source: decl.name, file: &name, offset, line: Line::Unknown, raw: payload, with: 0 };
        match format {
            Format::Csv => match crate::connectors::files::parse_csv_line(payload) {
                Some(rec) => p.csv(w, k, &rec, &header, &o),
                None => p.json(w, k, &o),
            },
            _ => p.json(w, k, &o),
        }
        if n.is_multiple_of(SEND_EVERY) {
            send(w);
        }
    });
    p.base(w).message = None;
    if let Err(e) = read {
        p.base(w).io(Err(io::Error::other(format!("source `{}`: {e}", decl.name))));
    }
}

/// Reads one range of a PostgreSQL source and pushes its rows (the `major`-th unit of the
/// run). A range that cannot be read stops the run; a row the record cannot take goes to
/// `rejected` as `RANGE@ROW`, with the row as JSON.
pub(super) fn read_range<P: Pipeline>(
    p: &P,
    w: &mut P::Worker,
    major: u64,
    k: usize,
    range: &conn::PgRange,
    sources: &[SourceDecl],
    send: &mut dyn FnMut(&mut P::Worker),
) {
    let decl = &sources[k];
    let Some(pg) = decl.batch.as_ref().and_then(|b| b.postgres.as_ref()) else { return };
    let read = conn::pg_read(pg, range, &mut |json, n| {
        p.base(w).seq = super::seq(major, n);
        let o = Origin { source: decl.name, file: &range.label, offset: n, line: Line::Unknown, raw: json, with: 0 };
        p.json(w, k, &o);
        if (n + 1).is_multiple_of(SEND_EVERY) {
            send(w);
        }
        Ok(())
    });
    if let Err(e) = read {
        p.base(w).io(Err(io::Error::other(format!("source `{}`: {e}", decl.name))));
    }
}

/// Reads split `number` and pushes its records; every [`SEND_EVERY`] records `send` hands the
/// outbox to the exchange. A split that cannot be read stops the run (through the worker's
/// error), a record that cannot be parsed does not.
pub(super) fn read_split<P: Pipeline>(
    p: &P,
    w: &mut P::Worker,
    number: usize,
    split: &Split,
    sources: &[SourceDecl],
    send: &mut dyn FnMut(&mut P::Worker),
) -> u64 {
    let decl = &sources[split.source];
    let lines = LineBase::new(split);
    let mut n: u64 = 0;
    let Some(batch) = &decl.batch else { return 0 };
    let major = number as u64;
    let mut next = |w: &mut P::Worker, n: &mut u64| {
        p.base(w).seq = super::seq(major, *n);
        *n += 1;
        if (*n).is_multiple_of(SEND_EVERY) {
            send(w);
        }
    };
    match batch.format {
        Format::Json => {
            let mut buf = std::mem::take(&mut p.base(w).read_buf);
            if let Err(e) = split.read_into(&mut buf) {
                p.base(w).io(Err(io::Error::new(e.kind(), format!("{}: {e}", split.display))));
                return 0;
            }
            input::for_each_line(&buf, |pos, index, line| {
                next(w, &mut n);
                let o = Origin {
                    source: decl.name,
                    file: &split.display,
                    offset: split.start + pos as u64,
                    line: Line::InSplit(&lines, index),
                    raw: line,
                    with: 0,
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
                        next(w, &mut n);
                        let o = Origin {
                            source: decl.name,
                            file: &split.display,
                            offset: split.start + pos.byte(),
                            line: Line::InSplit(&lines, pos.line().saturating_sub(1)),
                            raw,
                            with: 0,
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
            let mut each = |i: usize, row: parquet::record::Row| {
                next(w, &mut n);
                let position = format!("row {i}");
                let o = Origin {
                    source: decl.name,
                    file: &split.display,
                    offset: i as u64,
                    line: Line::Unknown,
                    raw: position.as_bytes(),
                    with: 0,
                };
                p.parquet(w, split.source, &row, &o);
            };
            // An object in a store is read whole into memory, a file from the disk.
            let read = if split.object.is_some() {
                split
                    .read()
                    .map_err(|e| e.to_string())
                    .and_then(|b| crate::pq::for_each_object_row(bytes::Bytes::from(b), &mut each))
            } else {
                split.open().map_err(|e| e.to_string()).and_then(|f| crate::pq::for_each_file_row(f, &mut each))
            };
            if let Err(e) = read {
                p.base(w).io(Err(io::Error::other(format!("{}: {e}", split.display))));
            }
        }
        Format::Arrow => {
            let bytes = match split.read() {
                Ok(b) => b,
                Err(e) => {
                    p.base(w).io(Err(io::Error::new(e.kind(), format!("{}: {e}", split.display))));
                    return 0;
                }
            };
            #[cfg(feature = "arrow")]
            {
                // The file's columns are checked against the source's schema before a row is read.
                let fits = crate::arrow::fields(p.arrow_schema(split.source))
                    .map_err(|e| e.to_string())
                    .and_then(|want| crate::arrow::ipc_schema(&bytes).map(|have| (want, have)))
                    .and_then(|(want, have)| crate::arrow::check_schema(&want, &have).map(|()| want));
                let want = match fits {
                    Ok(want) => want,
                    Err(e) => {
                        p.base(w).io(Err(io::Error::other(format!("{}: {e}", split.display))));
                        return 0;
                    }
                };
                let read = crate::arrow::read_ipc_file(bytes, |first, batch| {
                    let at = crate::arrow::At { source: decl.name, file: &split.display, first };
                    crate::arrow::with_rows(batch, Some(&want), at, |rows| {
                        for i in 0..rows.len() {
                            next(w, &mut n);
                            p.arrow(w, split.source, rows, i);
                        }
                    });
                });
                if let Err(e) = read {
                    p.base(w).io(Err(io::Error::other(format!("{}: {e}", split.display))));
                }
            }
            #[cfg(not(feature = "arrow"))]
            {
                let _ = bytes;
                p.base(w).io(Err(io::Error::other(format!(
                    "{}: this pipeline reads Arrow, but pipe-runtime was built without its `arrow` feature",
                    split.display
                ))));
            }
        }
    }
    n
}
