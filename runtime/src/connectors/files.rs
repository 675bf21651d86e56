//! File connectors of streams: `follow(glob)` (files as they grow and as new ones appear) and
//! `stdin`. Each worker runs its own readers on threads of their own, for the files it owns,
//! and gets their lines through a bounded channel, so a slow pipeline holds the readers back
//! instead of buffering without limit.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Seek};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::Duration;

use crate::input::Format;

/// What a reader knows of its files: not looked yet, none of its own, some of its own.
pub const SCANNING: u8 = 0;
pub const NO_FILES: u8 = 1;
pub const OWNS_FILES: u8 = 2;

/// Lines a reader sends at once, at most.
pub const BATCH_LINES: usize = 4096;
/// Bytes a `follow` reader reads from a file at once, at most.
const READ_BYTES: usize = 4 << 20;
/// Batches waiting between a worker's readers and the worker, at most: the backpressure bound.
pub const CHANNEL_BATCHES: usize = 16;

/// Parses a duration option: `250ms`, `10s`, `5m`, `1h` (a bare number is milliseconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("`{s}` is not a duration such as 500ms, 10s or 1m"))?;
    let ms = match unit {
        "" | "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(format!("`{s}`: the unit must be ms, s, m or h")),
    };
    let ms = ms.ok_or_else(|| format!("`{s}` is too long a duration"))?;
    Ok(Duration::from_millis(ms))
}

/// Lines read from one file (or standard input).
#[derive(Debug)]
pub struct Batch {
    pub source: usize,
    pub file: Arc<str>,
    pub header: Option<Arc<csv::ByteRecord>>,
    pub data: Vec<u8>,
    /// (start, end, line number) of each record in `data`.
    pub lines: Vec<(usize, usize, u64)>,
    /// Per line, what the broker says of it (Kafka); empty for files.
    pub meta: Vec<crate::record::MessageMeta>,
    /// The file offset and line count after these lines: where a restart reads on (for a
    /// Kafka partition: the next offset, and 0).
    pub end_offset: u64,
    pub end_line: u64,
    /// The file was found truncated, rewritten or replaced: read again from its start.
    pub restarted: bool,
    /// The file was renamed from this name (a rotation): its position moves to the new name.
    pub renamed_from: Option<Arc<str>>,
    /// Which file these lines are of (followed files): kept in checkpoints beside the position.
    pub mark: Option<Mark>,
}

/// What tells a followed file from another under its name across a restart: its inode and a
/// hash of its first bytes (as many as were read, up to [`HEAD_BYTES`]; none: not known).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mark {
    pub ino: u64,
    pub head_len: u64,
    pub head_hash: u64,
}

/// Per file name, its [`Mark`].
pub type Marks = BTreeMap<String, Mark>;

/// The number that decides which worker follows a file: its inode, so a renamed file (a
/// rotated log) stays with the worker that was reading it. The device is left out: processes
/// on several hosts see one shared volume under different device numbers.
pub fn file_key(path: &std::path::Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| key_of(crate::input::Snapshot::of(&m).id))
}

fn key_of(id: (u64, u64)) -> u64 {
    key_of_inode(id.1)
}

/// [`file_key`] of the file with inode `ino`.
pub fn key_of_inode(ino: u64) -> u64 {
    crate::record::id_of(&ino)
}

#[derive(Debug)]
pub enum Msg {
    Batch(Batch),
    /// The source has no more input (standard input closed).
    Done(usize),
    Failed(usize, String),
}

/// Where a source has been read to: per file, the offset and line count.
pub type Positions = BTreeMap<String, (u64, u64)>;

/// Reads files matching `glob` as they grow and as new ones appear, in name order, sending
/// complete lines; a line without its newline yet waits for the rest. A file is followed by its
/// identity: renamed to another name the glob matches, it is read on where it was; `owns` says
/// which files (by [`file_key`]) are this reader's.
#[allow(clippy::too_many_arguments, reason = "a reader's whole configuration")]
pub fn follow(
    source: usize,
    glob_pattern: &str,
    format: Format,
    resume: Positions,
    marks: Marks,
    owns: &dyn Fn(u64) -> bool,
    tx: &SyncSender<Msg>,
    poll: Duration,
    stop: &AtomicBool,
    found: &AtomicU8,
) -> Result<(), String> {
    struct FileState {
        offset: u64,
        line: u64,
        header: Option<Arc<csv::ByteRecord>>,
        /// The file being followed under this name: its device and inode, and its first bytes
        /// as this reader read them (up to [`HEAD_BYTES`]). Unknown after a restart.
        id: Option<(u64, u64)>,
        head: Vec<u8>,
        /// After a restart, until the file is seen: the mark the checkpoint recorded.
        expect: Option<Mark>,
    }
    impl FileState {
        fn mark(&self) -> Option<Mark> {
            let (_, ino) = self.id?;
            Some(Mark { ino, head_len: self.head.len() as u64, head_hash: crate::record::id_of(&self.head) })
        }
    }
    // The files the checkpoint recorded, so a file renamed while the stream was stopped is
    // found under its new name.
    let mut files: BTreeMap<String, FileState> = resume
        .iter()
        .map(|(name, &(offset, line))| {
            let st =
                FileState { offset, line, header: None, id: None, head: Vec::new(), expect: marks.get(name).copied() };
            (name.clone(), st)
        })
        .collect();
    // Files found replaced under their name, by inode: the old file may show up under another
    // name at the next look (the listing and the look at each file are not one atomic step,
    // so a rotation can be seen as the new file first).
    let mut gone: BTreeMap<u64, (String, FileState)> = BTreeMap::new();
    let mut buf = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let mut progressed = false;
        let mut paths: Vec<PathBuf> = glob::glob(glob_pattern)
            .map_err(|e| format!("`{glob_pattern}` is not a valid glob: {e}"))?
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        // This reader's files, with their identities.
        let paths: Vec<(PathBuf, (u64, u64))> = paths
            .into_iter()
            .filter_map(|p| {
                let id = crate::input::Snapshot::of(&std::fs::metadata(&p).ok()?).id;
                owns(key_of(id)).then_some((p, id))
            })
            .collect();
        let mine = !paths.is_empty();
        // After the first look: whether this reader has files of its own.
        let _ = found.compare_exchange(
            SCANNING,
            if mine { OWNS_FILES } else { NO_FILES },
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        if mine {
            found.store(OWNS_FILES, Ordering::Relaxed);
        }
        // Renamed files (rotated logs): the state moves to the name the identity has now.
        let now: BTreeMap<u64, String> = paths.iter().map(|(p, id)| (id.1, p.display().to_string())).collect();
        let moves: Vec<(String, String)> = files
            .iter()
            .filter_map(|(name, st)| {
                let to = now.get(&st.id.map(|i| i.1).or(st.expect.map(|m| m.ino))?)?;
                (to != name).then(|| (name.clone(), to.clone()))
            })
            .collect();
        // (old name, new name, state, whether the old name keeps its position).
        let mut moved: Vec<(String, String, FileState, bool)> =
            moves.into_iter().filter_map(|(from, to)| files.remove(&from).map(|st| (from, to, st, false))).collect();
        let found_again: Vec<u64> = gone.keys().copied().filter(|ino| now.contains_key(ino)).collect();
        for ino in found_again {
            let to = &now[&ino];
            if files.get(to).is_some_and(|st| st.id.map(|i| i.1) == Some(ino)) {
                continue;
            }
            if let Some((from, st)) = gone.remove(&ino) {
                // The old name already holds the new file (and its position).
                moved.push((from, to.clone(), st, true));
            }
        }
        for (from, to, st, old_name_taken) in moved {
            #[allow(clippy::print_stderr, reason = "the stream's report of what it did about the file")]
            {
                eprintln!("pipe: `{from}` was renamed to `{to}`: reading on from byte {}", st.offset);
            }
            let renamed = Batch {
                source,
                file: Arc::from(to.as_str()),
                header: None,
                data: Vec::new(),
                lines: Vec::new(),
                meta: Vec::new(),
                end_offset: st.offset,
                end_line: st.line,
                restarted: false,
                renamed_from: (!old_name_taken).then(|| Arc::from(from.as_str())),
                mark: st.mark().or(st.expect),
            };
            if tx.send(Msg::Batch(renamed)).is_err() {
                return Ok(());
            }
            files.insert(to, st);
        }
        for (path, _) in paths {
            let name = path.display().to_string();
            let state = files.entry(name.clone()).or_insert_with(|| FileState {
                offset: 0,
                line: 0,
                header: None,
                id: None,
                head: Vec::new(),
                expect: None,
            });
            let Ok(mut f) = std::fs::File::open(&path) else { continue };
            let Ok(meta) = f.metadata() else { continue };
            let len = meta.len();
            let id = crate::input::Snapshot::of(&meta).id;
            // Another file under the name (replaced by a rename), a shorter one (truncated), or
            // the same file with other first bytes (rewritten): a new file, read from its start.
            let old_ino = state.id.map(|i| i.1).or(state.expect.map(|m| m.ino));
            let changed = if state.id.is_some_and(|was| was != id) {
                Some("replaced by another file")
            } else if let Some(m) = state.expect {
                // First look after a restart: the file the checkpoint recorded, or another.
                if m.ino != id.1 {
                    Some("replaced while the stream was stopped")
                } else {
                    match head_of(&mut f, m.head_len) {
                        Some(head) if crate::record::id_of(&head) == m.head_hash => {
                            state.head = head;
                            None
                        }
                        _ => Some("rewritten while the stream was stopped"),
                    }
                }
            } else if len < state.offset {
                Some("truncated")
            } else if len != state.offset && !state.head.is_empty() && !starts_with(&mut f, &state.head) {
                Some("rewritten")
            } else {
                None
            };
            if let Some(why) = changed {
                #[allow(clippy::print_stderr, reason = "the stream's report of what it did about the file")]
                {
                    eprintln!("pipe: `{name}` was {why} after {} bytes: reading it again from its start", state.offset);
                }
                let fresh =
                    FileState { offset: 0, line: 0, header: None, id: Some(id), head: Vec::new(), expect: None };
                let old = std::mem::replace(state, fresh);
                if let Some(ino) = old_ino.filter(|&o| o != id.1) {
                    gone.insert(ino, (name.clone(), old));
                }
                // The position goes back to the start now, so a restart does not resume the new
                // file where the old one was left.
                let restart = Batch {
                    source,
                    file: Arc::from(name.as_str()),
                    header: None,
                    data: Vec::new(),
                    lines: Vec::new(),
                    meta: Vec::new(),
                    end_offset: 0,
                    end_line: 0,
                    restarted: true,
                    renamed_from: None,
                    mark: state.mark(),
                };
                if tx.send(Msg::Batch(restart)).is_err() {
                    return Ok(());
                }
            } else {
                state.id = Some(id);
                state.expect = None;
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
            let last = match complete_lines(&mut f, state.offset, len, &mut buf, MAX_LINE_BYTES) {
                Ok(Some(last)) => last,
                Ok(None) => continue,
                Err(Some(too_long)) => return Err(format!("`{name}`: {too_long}")),
                Err(None) => continue,
            };
            let data = buf[..=last].to_vec();
            let file: Arc<str> = Arc::from(name.as_str());
            let mut lines = Vec::new();
            let mut start = 0;
            let base_offset = state.offset;
            // The first bytes as read (not read again: the file may be changing right now).
            if state.head.len() as u64 == base_offset && state.head.len() < HEAD_BYTES {
                let take = data.len().min(HEAD_BYTES - state.head.len());
                state.head.extend_from_slice(&data[..take]);
            }
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
                        meta: Vec::new(),
                        end_offset: base_offset + start as u64,
                        end_line: line_no,
                        restarted: false,
                        renamed_from: None,
                        mark: state.mark(),
                    };
                    sent_to = start;
                    if tx.send(Msg::Batch(batch)).is_err() {
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
                meta: Vec::new(),
                end_offset: base_offset + data.len() as u64,
                end_line: line_no,
                restarted: false,
                renamed_from: None,
                mark: state.mark(),
            };
            if tx.send(Msg::Batch(batch)).is_err() {
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

/// How many of a followed file's first bytes tell it from another file under its name.
const HEAD_BYTES: usize = 1024;

/// The first `n` bytes of `f`, if it has them.
fn head_of(f: &mut std::fs::File, n: u64) -> Option<Vec<u8>> {
    let mut head = vec![0u8; usize::try_from(n).ok()?];
    f.seek(io::SeekFrom::Start(0)).ok()?;
    f.read_exact(&mut head).ok()?;
    Some(head)
}

/// Whether `f` still begins with `head` (false when it cannot be read that far).
fn starts_with(f: &mut std::fs::File, head: &[u8]) -> bool {
    let mut now = vec![0u8; head.len()];
    f.seek(io::SeekFrom::Start(0)).is_ok() && f.read_exact(&mut now).is_ok() && now == head
}

/// The longest line a followed file may hold: above it the stream stops with an error naming
/// the file and where the line starts, rather than holding it all in memory.
pub const MAX_LINE_BYTES: u64 = 1 << 30;

/// Reads `f` from `offset` into `buf` up to the last complete line: at most [`READ_BYTES`], or
/// as much more as a longer line needs (the window doubles until a newline comes). The index of
/// the last newline; `Ok(None)` while the file ends inside a line (its writer has not finished
/// it); `Err(None)` on a read error (tried again at the next look), `Err(Some(why))` for a line
/// longer than `max` bytes.
fn complete_lines(
    f: &mut std::fs::File,
    offset: u64,
    len: u64,
    buf: &mut Vec<u8>,
    max: u64,
) -> Result<Option<usize>, Option<String>> {
    let mut window = READ_BYTES as u64;
    loop {
        buf.clear();
        f.seek(io::SeekFrom::Start(offset)).map_err(|_| None)?;
        let want = (len - offset).min(window);
        f.take(want).read_to_end(buf).map_err(|_| None)?;
        if let Some(last) = memchr::memrchr(b'\n', buf) {
            return Ok(Some(last));
        }
        if want == len - offset {
            return Ok(None);
        }
        if window >= max {
            return Err(Some(format!(
                "the line at byte {offset} is longer than {} MiB, the most a followed file may hold in one line",
                max >> 20
            )));
        }
        window *= 2;
    }
}

/// Reads standard input line by line; a batch goes out as soon as no more input is waiting,
/// so a record is processed when it arrives.
pub fn stdin(source: usize, format: Format, tx: &SyncSender<Msg>, stop: &AtomicBool) -> Result<(), String> {
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
                meta: Vec::new(),
                end_offset: offset,
                end_line: line_no,
                restarted: false,
                renamed_from: None,
                mark: None,
            };
            if tx.send(Msg::Batch(batch)).is_err() {
                return Ok(());
            }
        }
        if eof {
            let _ = tx.send(Msg::Done(source));
            return Ok(());
        }
    }
    Ok(())
}

pub fn parse_csv_line(line: &[u8]) -> Option<csv::ByteRecord> {
    let mut r = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(line);
    let mut rec = csv::ByteRecord::new();
    match r.read_byte_record(&mut rec) {
        Ok(true) => Some(rec),
        _ => None,
    }
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
        assert!(parse_duration("99999999999999999h").is_err(), "an overflow is an error, not a panic");
    }

    /// A `follow` reader of `DIR/*.jsonl` on its own thread, and everything it has sent.
    struct Follower {
        rx: std::sync::mpsc::Receiver<Msg>,
        stop: Arc<AtomicBool>,
        reader: std::thread::JoinHandle<Result<(), String>>,
        seen: Seen,
    }

    /// What a reader sent.
    #[derive(Default)]
    struct Seen {
        /// (file name, line text, line number) of every line.
        lines: Vec<(String, String, u64)>,
        /// (old name, new name, offset) of every rename reported.
        renames: Vec<(String, String, u64)>,
        /// The end offset of every batch, in order.
        ends: Vec<u64>,
        /// The last position and mark of each file, as a worker keeps them.
        positions: Positions,
        marks: Marks,
    }

    impl Follower {
        fn start(dir: &std::path::Path, resume: Positions, marks: Marks) -> Follower {
            let (tx, rx) = std::sync::mpsc::sync_channel(64);
            let stop = Arc::new(AtomicBool::new(false));
            let glob = format!("{}/*.jsonl", dir.display());
            let reader = {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let found = AtomicU8::new(SCANNING);
                    let poll = Duration::from_millis(5);
                    follow(0, &glob, Format::Json, resume, marks, &|_| true, &tx, poll, &stop, &found)
                })
            };
            Follower { rx, stop, reader, seen: Seen::default() }
        }

        /// Waits until the reader has sent `n` more lines (failing when it stalls).
        fn take(&mut self, n: usize) {
            let short = |f: &str| f.rsplit('/').next().unwrap_or_default().to_string();
            let seen = &mut self.seen;
            let want = seen.lines.len() + n;
            while seen.lines.len() < want {
                match self.rx.recv_timeout(Duration::from_secs(20)) {
                    Ok(Msg::Batch(b)) => {
                        seen.ends.push(b.end_offset);
                        if let Some(old) = &b.renamed_from {
                            seen.renames.push((short(old), short(&b.file), b.end_offset));
                            seen.positions.remove(&**old);
                        }
                        seen.positions.insert(b.file.to_string(), (b.end_offset, b.end_line));
                        if let Some(m) = b.mark {
                            seen.marks.insert(b.file.to_string(), m);
                        }
                        for (s, e, n) in &b.lines {
                            let text = String::from_utf8_lossy(&b.data[*s..*e]).into_owned();
                            seen.lines.push((short(&b.file), text, *n));
                        }
                    }
                    Ok(_) => {}
                    Err(e) => panic!("stalled after {:?}: {e}", seen.lines),
                }
            }
        }

        /// Stops the reader, which must have ended without an error; what it sent.
        fn stop(self) -> Seen {
            self.stop.store(true, Ordering::Relaxed);
            drop(self.rx);
            self.reader.join().expect("reader").expect("no error");
            self.seen
        }
    }

    /// An empty temporary directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipe-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn line(file: &str, text: &str, n: u64) -> (String, String, u64) {
        (file.to_string(), text.to_string(), n)
    }

    /// A followed file truncated and rewritten longer, or replaced by a rename, is a new file:
    /// its lines are read from the first (they used to be read from the old offset, losing the
    /// new file's first bytes), and the position restarts at 0 at once.
    #[test]
    fn a_followed_file_rewritten_or_replaced_is_read_again_from_its_start() {
        let dir = temp_dir("rewrite");
        let file = dir.join("a.jsonl");
        std::fs::write(&file, "one\ntwo\n").expect("write");
        let mut f = Follower::start(&dir, Positions::new(), Marks::new());
        f.take(2);

        // Truncated and rewritten longer than what was read.
        std::fs::write(&file, "alpha\nbeta\ngamma\n").expect("rewrite");
        let first_batch = f.seen.ends.len();
        f.take(3);
        assert_eq!(f.seen.ends[first_batch], 0, "the position goes back to the start first");

        // Replaced by a rename (another inode) with a longer file.
        let tmp = dir.join("a.tmp");
        std::fs::write(&tmp, "red\ngreen\nblue\nblack\n").expect("new");
        std::fs::rename(&tmp, &file).expect("rename");
        f.take(4);
        let f = f.stop();
        let texts: Vec<(&str, u64)> = f.lines.iter().map(|(_, t, n)| (t.as_str(), *n)).collect();
        assert_eq!(
            texts,
            vec![
                ("one", 1),
                ("two", 2),
                ("alpha", 1),
                ("beta", 2),
                ("gamma", 3),
                ("red", 1),
                ("green", 2),
                ("blue", 3),
                ("black", 4)
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Rotates `DIR/app.jsonl` to `app-1.jsonl`, appends a last line to it, and starts a new
    /// `app.jsonl`.
    fn rotate(dir: &std::path::Path) {
        use std::io::Write;
        std::fs::rename(dir.join("app.jsonl"), dir.join("app-1.jsonl")).expect("rotate");
        let mut old = std::fs::OpenOptions::new().append(true).open(dir.join("app-1.jsonl")).expect("open");
        old.write_all(b"three\n").expect("late line of the rotated file");
        std::fs::write(dir.join("app.jsonl"), "new\n").expect("new file");
    }

    /// A rotation to a name the glob also matches (`app.jsonl` → `app-1.jsonl`, a new
    /// `app.jsonl`) is followed by identity: the rotated file goes on where it was (its lines
    /// are not read twice), its position moves to the new name, and the new file is read whole.
    #[test]
    fn a_rotated_file_is_read_on_under_its_new_name_not_again() {
        let dir = temp_dir("rotate");
        std::fs::write(dir.join("app.jsonl"), "one\ntwo\n").expect("write");
        let mut f = Follower::start(&dir, Positions::new(), Marks::new());
        f.take(2);
        rotate(&dir);
        f.take(2);
        let mut f = f.stop();
        f.lines.sort();
        assert_eq!(
            f.lines,
            vec![
                line("app-1.jsonl", "three", 3),
                line("app.jsonl", "new", 1),
                line("app.jsonl", "one", 1),
                line("app.jsonl", "two", 2)
            ]
        );
        assert_eq!(f.renames, vec![("app.jsonl".to_string(), "app-1.jsonl".to_string(), 8)]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A rotation seen in the other order: the new file under the old name first (the rotated
    /// file is not yet under a name the glob matches), the rotated one a moment later. It is
    /// still read on where it was, not from its start.
    #[test]
    fn a_rotated_file_seen_after_its_replacement_is_read_on_not_again() {
        let dir = temp_dir("rotate-late");
        std::fs::write(dir.join("app.jsonl"), "one\ntwo\n").expect("write");
        let mut f = Follower::start(&dir, Positions::new(), Marks::new());
        f.take(2);
        std::fs::rename(dir.join("app.jsonl"), dir.join("app.rotating")).expect("move aside");
        std::fs::write(dir.join("app.jsonl"), "new\n").expect("new file");
        f.take(1);
        {
            use std::io::Write;
            let mut old = std::fs::OpenOptions::new().append(true).open(dir.join("app.rotating")).expect("open");
            old.write_all(b"three\n").expect("late line");
        }
        std::fs::rename(dir.join("app.rotating"), dir.join("app-1.jsonl")).expect("rotate");
        f.take(1);
        let mut seen = f.stop();
        seen.lines.sort();
        assert_eq!(
            seen.lines,
            vec![
                line("app-1.jsonl", "three", 3),
                line("app.jsonl", "new", 1),
                line("app.jsonl", "one", 1),
                line("app.jsonl", "two", 2)
            ]
        );
        // The old name keeps the new file's position; the rotated file has its own.
        assert_eq!(seen.positions.get(&dir.join("app.jsonl").display().to_string()), Some(&(4, 1)));
        assert_eq!(seen.positions.get(&dir.join("app-1.jsonl").display().to_string()), Some(&(14, 3)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// After a restart, the checkpoint's marks tell a followed file from another under its
    /// name: a file rotated while the stream was stopped is read on under its new name (its
    /// first lines are not read again), and the new file under the old name is read whole.
    #[test]
    fn a_file_rotated_while_the_stream_was_stopped_is_recognized_from_its_mark() {
        let dir = temp_dir("rotate-stopped");
        std::fs::write(dir.join("app.jsonl"), "one\ntwo\n").expect("write");
        let mut f = Follower::start(&dir, Positions::new(), Marks::new());
        f.take(2);
        let before = f.stop();
        assert_eq!(before.marks.len(), 1, "the file's mark goes with its position");

        // Stopped; meanwhile the file is rotated, gets a last line, and a new one takes its name.
        rotate(&dir);
        let mut f = Follower::start(&dir, before.positions, before.marks);
        f.take(2);
        let mut f = f.stop();
        f.lines.sort();
        assert_eq!(f.lines, vec![line("app-1.jsonl", "three", 3), line("app.jsonl", "new", 1)]);
        assert_eq!(f.renames, vec![("app.jsonl".to_string(), "app-1.jsonl".to_string(), 8)]);
        assert_eq!(f.positions.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A line longer than one read window (4 MiB) is read whole, and the lines after it too:
    /// a followed file never stalls on it.
    #[test]
    fn a_followed_file_reads_past_a_line_longer_than_its_read_window() {
        let dir = temp_dir("long-line");
        let long = "x".repeat(READ_BYTES * 2 + 123);
        std::fs::write(dir.join("a.jsonl"), format!("first\n{long}\nlast\n")).expect("write");
        let mut f = Follower::start(&dir, Positions::new(), Marks::new());
        f.take(3);
        let f = f.stop();
        let lines: Vec<(usize, u64)> = f.lines.iter().map(|(_, t, n)| (t.len(), *n)).collect();
        assert_eq!(lines, vec![(5, 1), (long.len(), 2), (4, 3)]);

        // Above the limit: an error naming where the line starts, not a stall.
        let mut f = std::fs::File::open(dir.join("a.jsonl")).expect("open");
        let len = f.metadata().expect("len").len();
        let mut buf = Vec::new();
        let err = complete_lines(&mut f, 6, len, &mut buf, READ_BYTES as u64).expect_err("too long");
        assert!(err.is_some_and(|e| e.contains("the line at byte 6 is longer than 4 MiB")));
        // A file that ends inside a line waits for the rest.
        std::fs::write(dir.join("b.jsonl"), "unfinished").expect("write");
        let mut f = std::fs::File::open(dir.join("b.jsonl")).expect("open");
        assert_eq!(complete_lines(&mut f, 0, 10, &mut buf, MAX_LINE_BYTES), Ok(None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
