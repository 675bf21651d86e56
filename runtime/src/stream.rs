//! The streaming runner (`--mode stream`). Source tasks on tokio's blocking pool read the
//! stream bindings (`follow(glob)`: files as they grow and as new ones appear; `stdin`) and send
//! batches of lines through a bounded channel, so a slow pipeline holds the readers back instead
//! of buffering without limit. One operator loop pushes every record through the generated
//! operators, keeps each source's watermark (its largest event time minus its declared bound;
//! the pipeline's is the minimum over sources that are neither finished nor idle), advances the
//! aggregates when it rises, and writes sinks: standard output at once, files per epoch.
//!
//! Checkpoints (`--state-dir`, every `--checkpoint-interval`): the operators' state, each
//! source's position and the epoch are written to `checkpoint` atomically (temporary file,
//! fsync, rename), and only then are the epoch's sink files moved into their directories. After
//! a crash, a restart publishes the files of the last recorded epoch if the crash came between
//! the two, deletes files of any later epoch, restores the state and reads on from the recorded
//! positions: the output is the same as an uninterrupted run's, with no row lost or repeated.
//!
//! Metrics: each operator's counts, the watermark, the lag behind the wall clock and the groups
//! held, printed every `--metrics-interval` and, with `--metrics-addr`, served in Prometheus text
//! format over HTTP.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::input::{Format, StreamKind};
use crate::record::{Line, Origin};
use crate::run::{Base, NodeDecl, Options, Pipeline, RunError, SourceDecl, Stat, Summary};
use crate::sink::Outputs;

/// Lines a reader sends at once, at most.
const BATCH_LINES: usize = 4096;
/// Bytes a `follow` reader reads from a file at once, at most.
const READ_BYTES: usize = 4 << 20;
/// Batches waiting between the readers and the operators, at most: the backpressure bound.
const CHANNEL_BATCHES: usize = 16;

/// Parses a duration option: `250ms`, `10s`, `5m`, `1h` (a bare number is milliseconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{s}` is not a duration such as 500ms, 10s or 1m"))?;
    let ms = match unit {
        "" | "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        _ => return Err(format!("`{s}`: the unit must be ms, s, m or h")),
    };
    Ok(Duration::from_millis(ms))
}

/// Lines read from one file (or standard input).
struct Batch {
    source: usize,
    file: Arc<str>,
    header: Option<Arc<csv::ByteRecord>>,
    data: Vec<u8>,
    /// (start, end, line number) of each record in `data`.
    lines: Vec<(usize, usize, u64)>,
    /// The file offset and line count after these lines: where a restart reads on.
    end_offset: u64,
    end_line: u64,
}

enum Msg {
    Batch(Batch),
    /// The source has no more input (standard input closed).
    Done(usize),
    Failed(usize, String),
}

/// Where a source has been read to: per file, the offset and line count.
type Positions = BTreeMap<String, (u64, u64)>;

/// What a checkpoint records.
#[derive(serde::Serialize, serde::Deserialize)]
struct Checkpoint {
    pipeline: String,
    epoch: u64,
    positions: Vec<(String, Positions)>,
    watermark: i64,
    seq: u64,
    workers: Vec<WorkerState>,
}

const CHECKPOINT_FILE: &str = "checkpoint";

fn load_checkpoint(dir: &Path) -> Result<Option<Checkpoint>, RunError> {
    let path = dir.join(CHECKPOINT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| RunError::Setup(format!("{}: not a checkpoint this pipeline wrote ({e})", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RunError::Io(e)),
    }
}

/// Writes the checkpoint so that a crash at any moment leaves either the old or the new one.
fn save_checkpoint(dir: &Path, cp: &Checkpoint) -> io::Result<()> {
    let bytes = postcard::to_stdvec(cp).map_err(io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(CHECKPOINT_FILE))?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads files matching `glob` as they grow and as new ones appear, in name order, sending
/// complete lines; a line without its newline yet waits for the rest.
fn follow(
    source: usize,
    glob_pattern: &str,
    format: Format,
    resume: Positions,
    tx: &mpsc::Sender<Msg>,
    poll: Duration,
    stop: &AtomicBool,
) -> Result<(), String> {
    struct FileState {
        offset: u64,
        line: u64,
        header: Option<Arc<csv::ByteRecord>>,
    }
    let mut files: BTreeMap<String, FileState> = BTreeMap::new();
    let mut buf = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut progressed = false;
        let mut paths: Vec<PathBuf> = glob::glob(glob_pattern)
            .map_err(|e| format!("`{glob_pattern}` is not a valid glob: {e}"))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let name = path.display().to_string();
            let state = files.entry(name.clone()).or_insert_with(|| {
                let (offset, line) = resume.get(&name).copied().unwrap_or((0, 0));
                FileState { offset, line, header: None }
            });
            let Ok(mut f) = std::fs::File::open(&path) else { continue };
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if len < state.offset {
                // Truncated or replaced: read it again from the start.
                state.offset = 0;
                state.line = 0;
                state.header = None;
            }
            if format == Format::Csv && state.header.is_none() && state.offset > 0 {
                // Resuming inside a CSV file: its header is its first line.
                let mut first = String::new();
                if io::BufReader::new(&f).read_line(&mut first).is_ok() {
                    state.header = parse_csv_line(first.trim_end().as_bytes()).map(Arc::new);
                }
            }
            if len == state.offset {
                continue;
            }
            if f.seek(io::SeekFrom::Start(state.offset)).is_err() {
                continue;
            }
            buf.clear();
            let want = usize::try_from(len - state.offset).unwrap_or(READ_BYTES).min(READ_BYTES);
            if (&mut f).take(want as u64).read_to_end(&mut buf).is_err() {
                continue;
            }
            let Some(last) = memchr::memrchr(b'\n', &buf) else { continue };
            let data = buf[..=last].to_vec();
            let file: Arc<str> = Arc::from(name.as_str());
            let mut lines = Vec::new();
            let mut start = 0;
            let base_offset = state.offset;
            let mut line_no = state.line;
            let mut sent_to = 0;
            for end in memchr::memchr_iter(b'\n', &data) {
                line_no += 1;
                let mut e = end;
                if e > start && data[e - 1] == b'\r' {
                    e -= 1;
                }
                let is_header = format == Format::Csv && base_offset == 0 && line_no == 1;
                if is_header {
                    state.header = parse_csv_line(&data[start..e]).map(Arc::new);
                } else if e > start {
                    lines.push((start, e, line_no));
                }
                start = end + 1;
                if lines.len() == BATCH_LINES {
                    let batch = Batch {
                        source,
                        file: file.clone(),
                        header: state.header.clone(),
                        data: data[sent_to..start].to_vec(),
                        lines: lines.drain(..).map(|(s, e, l)| (s - sent_to, e - sent_to, l)).collect(),
                        end_offset: base_offset + start as u64,
                        end_line: line_no,
                    };
                    sent_to = start;
                    if tx.blocking_send(Msg::Batch(batch)).is_err() {
                        return Ok(());
                    }
                }
            }
            let batch = Batch {
                source,
                file,
                header: state.header.clone(),
                data: data[sent_to..].to_vec(),
                lines: lines.into_iter().map(|(s, e, l)| (s - sent_to, e - sent_to, l)).collect(),
                end_offset: base_offset + data.len() as u64,
                end_line: line_no,
            };
            if tx.blocking_send(Msg::Batch(batch)).is_err() {
                return Ok(());
            }
            state.offset = base_offset + data.len() as u64;
            state.line = line_no;
            progressed = true;
        }
        if !progressed {
            std::thread::sleep(poll);
        }
    }
    Ok(())
}

/// Reads standard input line by line; a batch goes out as soon as no more input is waiting,
/// so a record is processed when it arrives.
fn stdin(source: usize, format: Format, tx: &mpsc::Sender<Msg>, stop: &AtomicBool) -> Result<(), String> {
    let mut reader = io::BufReader::with_capacity(1 << 16, io::stdin());
    let file: Arc<str> = Arc::from("<stdin>");
    let mut header: Option<Arc<csv::ByteRecord>> = None;
    let mut line_no = 0u64;
    let mut offset = 0u64;
    let mut line = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut data = Vec::new();
        let mut lines = Vec::new();
        let mut eof = false;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(|e| format!("standard input: {e}"))?;
            if n == 0 {
                eof = true;
                break;
            }
            offset += n as u64;
            line_no += 1;
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            if format == Format::Csv && header.is_none() {
                header = parse_csv_line(text).map(Arc::new);
            } else if !text.is_empty() {
                let start = data.len();
                data.extend_from_slice(text);
                lines.push((start, data.len(), line_no));
            }
            if reader.buffer().is_empty() || lines.len() >= BATCH_LINES {
                break;
            }
        }
        if !lines.is_empty() {
            let batch = Batch {
                source,
                file: file.clone(),
                header: header.clone(),
                data,
                lines,
                end_offset: offset,
                end_line: line_no,
            };
            if tx.blocking_send(Msg::Batch(batch)).is_err() {
                return Ok(());
            }
        }
        if eof {
            let _ = tx.blocking_send(Msg::Done(source));
            return Ok(());
        }
    }
    Ok(())
}

fn parse_csv_line(line: &[u8]) -> Option<csv::ByteRecord> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line);
    let mut rec = csv::ByteRecord::new();
    match r.read_byte_record(&mut rec) {
        Ok(true) => Some(rec),
        _ => None,
    }
}

/// The metrics of a running stream, as Prometheus text.
fn prometheus(
    name: &str,
    nodes: &[NodeDecl],
    stats: &[Stat],
    watermark: i64,
    state: usize,
    checkpoints: u64,
) -> String {
    let mut out = String::new();
    type Counter = (&'static str, &'static str, fn(&Stat) -> u64);
    let counters: [Counter; 5] = [
        ("read", "Records an operator received.", |s| s.read),
        ("written", "Records an operator emitted.", |s| s.written),
        ("filtered", "Records a `where` or `k >= N` removed.", |s| s.filtered),
        ("rejected", "Records that failed and went to `rejected`.", |s| s.rejected),
        ("late", "Records that came too late for their window (or behind the watermark).", |s| s.late),
    ];
    for (metric, help, get) in counters {
        out.push_str(&format!(
            "# HELP pipe_records_{metric}_total {help}\n# TYPE pipe_records_{metric}_total counter\n"
        ));
        for (i, (n, s)) in nodes.iter().zip(stats).enumerate() {
            out.push_str(&format!(
                "pipe_records_{metric}_total{{pipeline=\"{name}\",operator=\"{}\",kind=\"{:?}\",index=\"{i}\"}} {}\n",
                n.name.replace('"', "'"),
                n.kind,
                get(s)
            ));
        }
    }
    let now = now_ms();
    let (wm, lag) = if watermark == i64::MIN || watermark == i64::MAX {
        ("NaN".to_string(), "NaN".to_string())
    } else {
        (watermark.to_string(), (now.saturating_sub(watermark) as f64 / 1000.0).to_string())
    };
    out.push_str(&format!(
        "# HELP pipe_watermark_milliseconds The watermark, in milliseconds since the epoch.\n# TYPE pipe_watermark_milliseconds gauge\npipe_watermark_milliseconds{{pipeline=\"{name}\"}} {wm}\n"
    ));
    out.push_str(&format!(
        "# HELP pipe_lag_seconds How far the watermark is behind the wall clock.\n# TYPE pipe_lag_seconds gauge\npipe_lag_seconds{{pipeline=\"{name}\"}} {lag}\n"
    ));
    out.push_str(&format!(
        "# HELP pipe_state_groups Groups the aggregates hold.\n# TYPE pipe_state_groups gauge\npipe_state_groups{{pipeline=\"{name}\"}} {state}\n"
    ));
    out.push_str(&format!(
        "# HELP pipe_checkpoints_total Checkpoints completed.\n# TYPE pipe_checkpoints_total counter\npipe_checkpoints_total{{pipeline=\"{name}\"}} {checkpoints}\n"
    ));
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Serves `/metrics` from the latest text.
async fn serve_metrics(listener: tokio::net::TcpListener, text: Arc<Mutex<String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { continue };
        let text = text.clone();
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let first = req.split(|b| *b == b'\n').next().unwrap_or_default();
            let ok = first.starts_with(b"GET /metrics ") || first.starts_with(b"GET / ");
            let body = if ok { text.lock().map(|t| t.clone()).unwrap_or_default() } else { "not found\n".into() };
            let status = if ok { "200 OK" } else { "404 Not Found" };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

/// Work for one worker thread, run on its worker.
type Task<'a, P> = Box<dyn FnOnce(&P, &mut <P as Pipeline>::Worker) -> Reply<P> + Send + 'a>;

/// What a worker reports after each task.
struct Reply<P: Pipeline> {
    worker: usize,
    outbox: Vec<(usize, u64, P::Exchange)>,
    stats: Vec<Stat>,
    max_ts: Vec<i64>,
    groups: usize,
    error: Option<io::Error>,
    state: Option<Result<Vec<u8>, String>>,
}

fn reply<P: Pipeline>(p: &P, w: &mut P::Worker, state: Option<Result<Vec<u8>, String>>) -> Reply<P> {
    let outbox = p.take_outbox(w);
    let groups = p.state_size(w);
    let base = p.base(w);
    Reply {
        worker: base.worker,
        outbox,
        stats: base.stats.clone(),
        max_ts: base.max_ts.clone(),
        groups,
        error: base.error.take(),
        state,
    }
}

/// What a checkpoint holds per worker.
#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerState {
    operators: Vec<u8>,
    stats: Vec<Stat>,
    max_ts: Vec<i64>,
}

/// The keyed workers, driven in rounds: every worker does its part of a step, the rows they
/// produced for groups other workers own are delivered, and only then does the next step (the
/// next aggregate's watermark, a checkpoint) start. So each aggregate sees every row emitted
/// before its watermark, whatever worker produced it.
struct Pool<'a, P: Pipeline> {
    txs: Vec<std::sync::mpsc::Sender<Task<'a, P>>>,
    rx: std::sync::mpsc::Receiver<(usize, Reply<P>)>,
    stats: Vec<Vec<Stat>>,
    max_ts: Vec<Vec<i64>>,
    groups: Vec<usize>,
}

impl<'a, P: Pipeline> Pool<'a, P> {
    /// Runs a task on each worker that gets one and waits for their replies.
    fn round(&mut self, mut task: impl FnMut(usize) -> Option<Task<'a, P>>) -> Result<Vec<Reply<P>>, RunError> {
        let mut sent = 0;
        for (k, tx) in self.txs.iter().enumerate() {
            if let Some(t) = task(k) {
                tx.send(t).map_err(|_| RunError::Setup("a worker stopped".into()))?;
                sent += 1;
            }
        }
        let mut replies = Vec::with_capacity(sent);
        for _ in 0..sent {
            let (k, mut r) = self.rx.recv().map_err(|_| RunError::Setup("a worker stopped".into()))?;
            if let Some(e) = r.error.take() {
                return Err(RunError::Io(e));
            }
            self.stats[k] = std::mem::take(&mut r.stats);
            self.max_ts[k] = std::mem::take(&mut r.max_ts);
            self.groups[k] = r.groups;
            replies.push(r);
        }
        Ok(replies)
    }

    /// Delivers rows to the workers that own their groups, until none are left in flight.
    fn exchange(&mut self, mut replies: Vec<Reply<P>>) -> Result<Vec<Reply<P>>, RunError> {
        let n = self.txs.len();
        let mut kept = Vec::new();
        loop {
            let mut inbox: Vec<Vec<(u64, P::Exchange)>> = (0..n).map(|_| Vec::new()).collect();
            let mut any = false;
            for r in &mut replies {
                for (owner, seq, m) in r.outbox.drain(..) {
                    inbox[owner.min(n - 1)].push((seq, m));
                    any = true;
                }
            }
            kept.append(&mut replies);
            if !any {
                return Ok(kept);
            }
            // Each owner folds its rows in arrival order, as one worker would.
            let mut inbox: Vec<Option<Vec<P::Exchange>>> = inbox
                .into_iter()
                .map(|mut v| {
                    v.sort_by_key(|(seq, _)| *seq);
                    (!v.is_empty()).then(|| v.into_iter().map(|(_, m)| m).collect())
                })
                .collect();
            replies = self.round(|k| {
                let rows = inbox[k].take()?;
                Some(Box::new(move |p: &P, w: &mut P::Worker| {
                    p.apply(w, rows);
                    reply(p, w, None)
                }))
            })?;
        }
    }

    /// Fires what watermark `wm` allows, aggregate by aggregate, then writes the sinks.
    fn advance(&mut self, p: &P, wm: i64) -> Result<(), RunError> {
        for k in 0..p.aggregates() {
            let replies = self.round(|_| {
                Some(Box::new(move |p: &P, w: &mut P::Worker| {
                    p.base(w).watermark = wm;
                    p.advance_one(w, k, wm);
                    reply(p, w, None)
                }))
            })?;
            self.exchange(replies)?;
        }
        self.round(|_| {
            Some(Box::new(move |p: &P, w: &mut P::Worker| {
                p.base(w).watermark = wm;
                p.flush(w);
                reply(p, w, None)
            }))
        })?;
        Ok(())
    }

    /// Every operator's counts, summed over the workers.
    fn stats(&self) -> Vec<Stat> {
        let mut total: Vec<Stat> = Vec::new();
        for s in &self.stats {
            if total.len() < s.len() {
                total.resize(s.len(), Stat::default());
            }
            for (t, x) in total.iter_mut().zip(s) {
                t.add(x);
            }
        }
        total
    }

    /// The largest event time each source has read, over the workers.
    fn max_ts(&self) -> Vec<i64> {
        let mut out: Vec<i64> = Vec::new();
        for m in &self.max_ts {
            if out.len() < m.len() {
                out.resize(m.len(), i64::MIN);
            }
            for (o, x) in out.iter_mut().zip(m) {
                *o = (*o).max(*x);
            }
        }
        out
    }
}

/// The coordinator: the sources' progress, the watermark, checkpoints.
struct Runner<'a, 'p, P: Pipeline> {
    p: &'p P,
    pool: Pool<'a, P>,
    sources: Vec<SourceDecl>,
    outputs: Arc<Outputs>,
    nodes: Vec<NodeDecl>,
    positions: Vec<Positions>,
    finished: Vec<bool>,
    last_input: Vec<Instant>,
    state_dir: Option<PathBuf>,
    watermark: i64,
    seq: u64,
    checkpoints: u64,
    records: u64,
}

impl<'a, P: Pipeline> Runner<'a, '_, P> {
    /// Splits a batch between the workers, which parse and transform their parts; rows bound
    /// for an aggregate go to the worker owning their group.
    fn process(&mut self, b: Batch) -> Result<(), RunError> {
        let n = self.pool.txs.len();
        let decl = &self.sources[b.source];
        let format = decl.stream.as_ref().map_or(Format::Json, |s| s.format);
        let name = decl.name;
        let lines = b.lines.len();
        let batch = Arc::new(b);
        let per = lines.div_ceil(n).max(1);
        let seq = self.seq;
        let replies = self.pool.round(|k| {
            let (from, to) = (k * per, ((k + 1) * per).min(lines));
            if from >= to {
                return None;
            }
            let batch = batch.clone();
            Some(Box::new(move |p: &P, w: &mut P::Worker| {
                let empty = csv::ByteRecord::new();
                for (i, &(start, end, line)) in batch.lines[from..to].iter().enumerate() {
                    // Ties of `first`/`last` go by arrival over the whole stream, whichever
                    // worker a record lands on.
                    p.base(w).seq = (seq + (from + i) as u64) << 16;
                    let raw = &batch.data[start..end];
                    let o = Origin { source: name, file: &batch.file, offset: 0, line: Line::Known(line), raw };
                    match format {
                        Format::Csv => {
                            if let Some(rec) = parse_csv_line(raw) {
                                p.csv(w, batch.source, &rec, batch.header.as_deref().unwrap_or(&empty), &o);
                            }
                        }
                        _ => p.json(w, batch.source, &o),
                    }
                }
                p.end_split(w);
                reply(p, w, None)
            }))
        })?;
        self.pool.exchange(replies)?;
        self.seq += lines as u64;
        self.records += lines as u64;
        self.positions[batch.source].insert(batch.file.to_string(), (batch.end_offset, batch.end_line));
        self.last_input[batch.source] = Instant::now();
        Ok(())
    }

    /// The pipeline's watermark: the minimum over sources that are neither finished nor idle
    /// of (largest event time − declared bound); +∞ when every source finished.
    fn compute_watermark(&self) -> i64 {
        let max_ts = self.pool.max_ts();
        let mut wm = i64::MAX;
        let mut holding = false;
        for (k, s) in self.sources.iter().enumerate() {
            if self.finished[k] {
                continue;
            }
            if s.idle_timeout
                .is_some_and(|t| self.last_input[k].elapsed().as_millis() >= u128::try_from(t).unwrap_or(0))
            {
                continue;
            }
            holding = true;
            let max = max_ts.get(k).copied().unwrap_or(i64::MIN);
            wm = wm.min(if max == i64::MIN { i64::MIN } else { max.saturating_sub(s.watermark) });
        }
        if !holding && !self.finished.iter().all(|f| *f) {
            // Every source is idle: the watermark stays where it is.
            return self.watermark;
        }
        wm.max(self.watermark)
    }

    /// Fires what the watermark allows (windows a late record updated fire again even when the
    /// watermark stays) and writes what reached the sinks.
    fn advance(&mut self) -> Result<(), RunError> {
        self.watermark = self.compute_watermark();
        self.pool.advance(self.p, self.watermark)
    }

    /// Records the state and publishes the epoch's files.
    fn checkpoint(&mut self) -> Result<(), RunError> {
        let replies = self.pool.round(|_| {
            Some(Box::new(|p: &P, w: &mut P::Worker| {
                let state = p.save_state(w);
                p.flush(w);
                reply(p, w, Some(state))
            }))
        })?;
        let mut ordered: Vec<Option<Vec<u8>>> = vec![None; self.pool.txs.len()];
        for r in replies {
            let operators = r.state.unwrap_or_else(|| Err("no state".into())).map_err(RunError::Setup)?;
            if let Some(slot) = ordered.get_mut(r.worker) {
                *slot = Some(operators);
            }
        }
        self.outputs.close_epoch()?;
        if let Some(dir) = &self.state_dir {
            let states: Vec<WorkerState> = ordered
                .into_iter()
                .enumerate()
                .map(|(k, ops)| WorkerState {
                    operators: ops.unwrap_or_default(),
                    stats: self.pool.stats[k].clone(),
                    max_ts: self.pool.max_ts[k].clone(),
                })
                .collect();
            let cp = Checkpoint {
                pipeline: P::NAME.to_string(),
                epoch: self.outputs.epoch(),
                positions: self
                    .sources
                    .iter()
                    .map(|s| s.name.to_string())
                    .zip(self.positions.iter().cloned())
                    .collect(),
                watermark: self.watermark,
                seq: self.seq,
                workers: states,
            };
            save_checkpoint(dir, &cp)?;
        }
        self.outputs.publish_epoch()?;
        self.checkpoints += 1;
        Ok(())
    }

    fn summary_line(&self, started: Instant) -> String {
        let stats = self.pool.stats();
        let groups: usize = self.pool.groups.iter().sum();
        let rejected: u64 = stats
            .iter()
            .zip(&self.nodes)
            .filter(|(_, n)| n.kind == crate::run::NodeKind::Rejected)
            .map(|(s, _)| s.read)
            .sum();
        let late: u64 = stats.iter().map(|s| s.late).sum();
        let wm = if self.watermark == i64::MIN { "none yet".to_string() } else { crate::f::ts_text(self.watermark) };
        format!(
            "{} after {:.0}s: {} records, watermark {wm}, {groups} groups, {rejected} rejected, {late} late, {} checkpoints",
            P::NAME,
            started.elapsed().as_secs_f64(),
            self.records,
            self.checkpoints
        )
    }

    fn prometheus(&self) -> String {
        let groups: usize = self.pool.groups.iter().sum();
        prometheus(P::NAME, &self.nodes, &self.pool.stats(), self.watermark, groups, self.checkpoints)
    }
}

/// Runs a pipeline in streaming mode until every source ends (standard input closes), the
/// input has been idle for `--exit-when-idle`, or the process is interrupted (Ctrl-C or
/// SIGTERM: a last checkpoint is written, so a restart goes on from there).
pub fn run<P: Pipeline>(p: &P, opts: &Options) -> Result<Summary, RunError> {
    let started = Instant::now();
    let mut sources = p.sources();
    let names: Vec<&str> = sources.iter().map(|s| s.name).collect();
    for (name, uri) in crate::run::overrides(&opts.sources, "source", &names)? {
        if let Some(s) = sources.iter_mut().find(|s| s.name == name) {
            match &mut s.stream {
                Some(st) => st.kind = if uri == "-" { StreamKind::Stdin } else { StreamKind::Follow(uri) },
                None => return Err(no_stream(s.name)),
            }
        }
    }
    for s in &sources {
        match &s.stream {
            None => return Err(no_stream(s.name)),
            Some(st) if st.format == Format::Parquet => {
                return Err(RunError::Setup(format!("source `{}`: Parquet files cannot be followed", s.name)))
            }
            Some(_) => {}
        }
    }
    let stdin_sources =
        sources.iter().filter(|s| s.stream.as_ref().is_some_and(|x| x.kind == StreamKind::Stdin)).count();
    if stdin_sources > 1 {
        return Err(RunError::Setup("only one source can read standard input".into()));
    }
    let key =
        if p.needs_key() { Some(crate::mask::Key::from_environment(opts.hmac_key_file.as_deref())?) } else { None };
    let ctx = crate::run::context(p, key, &HashMap::new())?;
    let sinks = crate::run::sink_locations(p.sinks(), &opts.sinks)?;
    let n_workers = opts.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);

    let checkpoint = match &opts.state_dir {
        Some(d) => load_checkpoint(d)?,
        None => None,
    };
    if let Some(cp) = &checkpoint {
        if cp.pipeline != P::NAME {
            return Err(RunError::Setup(format!(
                "the state directory holds a checkpoint of `{}`, not of `{}`",
                cp.pipeline,
                P::NAME
            )));
        }
        if cp.workers.len() != n_workers {
            return Err(RunError::Setup(format!(
                "the checkpoint was made with {} workers: run with --threads {} (groups live on the worker their key hashes to)",
                cp.workers.len(),
                cp.workers.len()
            )));
        }
    }
    let outputs = Arc::new(Outputs::open_streaming(sinks, checkpoint.as_ref().map(|c| c.epoch))?);
    let nodes = p.nodes();
    let mut workers = Vec::new();
    for k in 0..n_workers {
        let mut base = Base::new(ctx.clone(), outputs.clone(), nodes.len());
        base.worker = k;
        base.workers = n_workers;
        workers.push(p.worker(base));
    }
    let mut positions = vec![Positions::new(); sources.len()];
    let (mut watermark, mut seq) = (i64::MIN, 0);
    if let Some(cp) = checkpoint {
        for (w, st) in workers.iter_mut().zip(cp.workers) {
            p.load_state(w, &st.operators)
                .map_err(|e| RunError::Setup(format!("the checkpoint does not restore: {e}")))?;
            let base = p.base(w);
            base.max_ts = st.max_ts;
            base.watermark = cp.watermark;
            if st.stats.len() == base.stats.len() {
                base.stats = st.stats;
            }
        }
        watermark = cp.watermark;
        seq = cp.seq;
        for (name, pos) in cp.positions {
            if let Some(k) = sources.iter().position(|s| s.name == name) {
                positions[k] = pos;
            }
        }
    }

    let poll = parse_duration(&opts.poll_interval).map_err(RunError::Setup)?;
    let checkpoint_every = parse_duration(&opts.checkpoint_interval).map_err(RunError::Setup)?;
    let metrics_every = parse_duration(&opts.metrics_interval).map_err(RunError::Setup)?;
    let exit_idle = opts.exit_when_idle.as_deref().map(parse_duration).transpose().map_err(RunError::Setup)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| RunError::Setup(format!("cannot start the stream runtime: {e}")))?;
    let (tx, mut rx) = mpsc::channel::<Msg>(CHANNEL_BATCHES);
    let stop = Arc::new(AtomicBool::new(false));
    for (k, s) in sources.iter().enumerate() {
        let Some(st) = s.stream.clone() else { continue };
        let (tx, stop, resume) = (tx.clone(), stop.clone(), positions[k].clone());
        rt.spawn_blocking(move || {
            let r = match &st.kind {
                StreamKind::Follow(glob) => follow(k, glob, st.format, resume, &tx, poll, &stop),
                StreamKind::Stdin => stdin(k, st.format, &tx, &stop),
            };
            if let Err(e) = r {
                let _ = tx.blocking_send(Msg::Failed(k, e));
            }
        });
    }
    drop(tx);

    let metrics_text = Arc::new(Mutex::new(String::new()));
    if let Some(addr) = &opts.metrics_addr {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| RunError::Setup(format!("--metrics-addr {addr}: {e}")))?;
        rt.spawn(serve_metrics(listener, metrics_text.clone()));
    }

    let quiet = opts.quiet;
    let n = sources.len();
    let outcome = std::thread::scope(|scope| -> Result<Vec<Stat>, RunError> {
        let (reply_tx, reply_rx) = std::sync::mpsc::channel::<(usize, Reply<P>)>();
        let mut txs = Vec::new();
        for (k, mut w) in workers.into_iter().enumerate() {
            let (task_tx, task_rx) = std::sync::mpsc::channel::<Task<'_, P>>();
            txs.push(task_tx);
            let reply_tx = reply_tx.clone();
            scope.spawn(move || {
                for task in task_rx {
                    let r = task(p, &mut w);
                    if reply_tx.send((k, r)).is_err() {
                        break;
                    }
                }
            });
        }
        let pool = Pool {
            txs,
            rx: reply_rx,
            stats: vec![Vec::new(); n_workers],
            max_ts: vec![Vec::new(); n_workers],
            groups: vec![0; n_workers],
        };
        let mut r = Runner {
            p,
            pool,
            sources,
            outputs: outputs.clone(),
            nodes,
            positions,
            finished: vec![false; n],
            last_input: vec![Instant::now(); n],
            state_dir: opts.state_dir.clone(),
            watermark,
            seq,
            checkpoints: 0,
            records: 0,
        };
        // Every worker reports once, so counts and event times restored from a checkpoint show.
        r.pool.round(|_| Some(Box::new(|p: &P, w: &mut P::Worker| reply(p, w, None))))?;
        let ended = rt.block_on(async {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_checkpoint = Instant::now();
            let mut last_metrics = Instant::now();
            let mut last_any = Instant::now();
            let interrupted = tokio::signal::ctrl_c();
            tokio::pin!(interrupted);
            #[cfg(unix)]
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| RunError::Setup(e.to_string()))?;
            loop {
                #[cfg(unix)]
                let terminated = term.recv();
                #[cfg(not(unix))]
                let terminated = std::future::pending::<Option<()>>();
                tokio::select! {
                    m = rx.recv() => match m {
                        Some(Msg::Batch(b)) => {
                            r.process(b)?;
                            last_any = Instant::now();
                        }
                        Some(Msg::Done(k)) => r.finished[k] = true,
                        Some(Msg::Failed(k, e)) => {
                            return Err(RunError::Setup(format!("source `{}`: {e}", r.sources[k].name)));
                        }
                        None => {}
                    },
                    _ = tick.tick() => {}
                    _ = &mut interrupted => return Ok(false),
                    _ = terminated => return Ok(false),
                }
                r.advance()?;
                if r.finished.iter().all(|f| *f) {
                    return Ok(true);
                }
                if exit_idle.is_some_and(|d| last_any.elapsed() >= d) {
                    return Ok(true);
                }
                if last_checkpoint.elapsed() >= checkpoint_every {
                    r.checkpoint()?;
                    last_checkpoint = Instant::now();
                }
                if !metrics_every.is_zero() && last_metrics.elapsed() >= metrics_every {
                    if !quiet {
                        #[allow(clippy::print_stderr, reason = "the stream's periodic report")]
                        {
                            eprintln!("{}", r.summary_line(started));
                        }
                    }
                    last_metrics = Instant::now();
                }
                if opts.metrics_addr.is_some() {
                    let text = r.prometheus();
                    if let Ok(mut t) = metrics_text.lock() {
                        *t = text;
                    }
                }
            }
        });
        stop.store(true, Ordering::Relaxed);
        if ended? {
            // The input ended: the watermark passes +∞ and every window fires.
            r.watermark = i64::MAX;
            r.pool.advance(p, i64::MAX)?;
        }
        r.checkpoint()?;
        Ok(r.pool.stats())
    });
    rt.shutdown_background();
    let stats = outcome?;
    let operators = crate::run::operators(&p.nodes(), stats);
    let mut summary = Summary {
        pipeline: P::NAME,
        seconds: started.elapsed().as_secs_f64(),
        bytes: 0,
        operators,
        outputs: Vec::new(),
    };
    let json = serde_json::to_vec_pretty(&summary).map_err(io::Error::other)?;
    summary.outputs = outputs.write_summaries(&json)?.iter().map(|p| p.display().to_string()).collect();
    if let Some(path) = &opts.summary {
        std::fs::write(path, serde_json::to_vec_pretty(&summary).map_err(io::Error::other)?)?;
    }
    Ok(summary)
}

fn no_stream(source: &str) -> RunError {
    RunError::Setup(format!(
        "source `{source}` has no stream binding this runtime reads (`follow`, `stdin`); run it with `--mode batch`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_the_language() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("40"), Ok(Duration::from_millis(40)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
