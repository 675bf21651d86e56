//! Batch inputs: a source's glob becomes a list of splits (whole files, or byte ranges of large
//! line-oriented files cut at line starts) that rayon workers read independently.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Files in a text format larger than this are cut into ranges of about this size.
pub const SPLIT_BYTES: u64 = 32 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Parquet,
    /// Arrow IPC files (the runtime's `arrow` feature).
    Arrow,
}

/// A batch binding: `files(glob, format = …)`, or a Kafka topic read up to the end offsets it
/// has when the run starts (`kafka` is then set and `glob` unused).
#[derive(Clone, Debug)]
pub struct BatchDecl {
    pub glob: String,
    pub format: Format,
    pub kafka: Option<KafkaDecl>,
    /// `postgres(url = …, table = … | query = …)`: rows read with binary `COPY` (then `glob`
    /// and `format` are unused).
    pub postgres: Option<PgSource>,
}

/// A PostgreSQL batch binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgSource {
    /// A connection URL or `key=value` string (its password is never printed).
    pub url: String,
    /// A table (or view), read in parallel ranges of its pages...
    pub table: Option<String>,
    /// ... or a query, read whole by one worker.
    pub query: Option<String>,
    /// The record's fields the pipeline reads, each with the form its decoder takes.
    pub columns: Vec<PgColumn>,
}

/// One field of a PostgreSQL source's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgColumn {
    pub name: String,
    pub kind: PgKind,
    pub optional: bool,
}

/// What a record field is, as far as reading it from PostgreSQL goes: which column types it
/// accepts and how its value is handed to the record's decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgKind {
    Bool,
    Int,
    /// Milliseconds, from an integer or an `interval`.
    Duration,
    Double,
    Text,
    /// An enum, from its name (text or a PostgreSQL enum) or its number.
    Enum,
    /// A timestamp, handed over in the text unit the schema declares for the field.
    Timestamp(TsUnit),
    Date,
    Binary,
    /// Lists, sets, maps and structs: from `json`, `jsonb` or an array column.
    Json,
}

/// The unit a schema declares for a timestamp field in text formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsUnit {
    Seconds,
    Millis,
    Micros,
    Nanos,
    Iso,
}

/// Where a Kafka source starts reading when no checkpoint says where it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KafkaStart {
    /// The oldest message each partition retains.
    Earliest,
    /// Only messages produced after the run starts.
    Latest,
    /// The offsets committed to the consumer group (the earliest where it committed none).
    Group,
    /// The first message at or after this time (milliseconds since the epoch).
    Timestamp(i64),
}

/// `kafka(topic = …, brokers = …, group = …, start = …)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KafkaDecl {
    pub topic: String,
    pub brokers: String,
    /// The consumer group offsets are committed to after each checkpoint; `pipe-<pipeline>`
    /// when none is named.
    pub group: Option<String>,
    pub start: KafkaStart,
    /// The record's fields in declaration order: the columns of CSV messages, which carry no
    /// header.
    pub columns: Vec<String>,
}

/// Where a stream binding reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamKind {
    /// `follow(glob)`: files read as they grow and as new ones appear.
    Follow(String),
    /// `stdin`: standard input, one record per line.
    Stdin,
    /// `kafka(…)`: a topic, its partitions shared out over the workers.
    Kafka(KafkaDecl),
}

/// A stream binding.
#[derive(Clone, Debug)]
pub struct StreamDecl {
    pub kind: StreamKind,
    pub format: Format,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "json" | "jsonl" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            "parquet" => Some(Format::Parquet),
            "arrow" => Some(Format::Arrow),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "jsonl",
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Arrow => "arrow",
        }
    }
}

/// An object in a store (the `s3` feature), read by byte ranges.
pub trait Remote: Send + Sync + std::fmt::Debug {
    /// Bytes `[start, end)` into `buf`, replacing what it held.
    fn read_range(&self, start: u64, end: u64, buf: &mut Vec<u8>) -> io::Result<()>;
}

/// A part of one input file that one worker reads: the lines that start in `[start, end)`.
#[derive(Debug, Clone)]
pub struct Split {
    pub source: usize,
    pub path: Arc<PathBuf>,
    /// The path as the rejected output names it.
    pub display: Arc<str>,
    pub start: u64,
    pub end: u64,
    /// A CSV file's header line, which every split of the file reads its records by.
    pub header: Option<Arc<Vec<u8>>>,
    /// The file as it was when the run planned its splits.
    pub planned: Snapshot,
    /// An object in a store (`s3://…`), read by ranges instead of from `path`.
    pub object: Option<Arc<dyn Remote>>,
}

/// What identifies a file's contents cheaply: its device and inode (a file replaced by a
/// rename is another file), its length and its modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub id: (u64, u64),
    pub len: u64,
    pub modified: Option<std::time::SystemTime>,
}

impl Snapshot {
    pub fn of(m: &std::fs::Metadata) -> Snapshot {
        #[cfg(unix)]
        let id = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let id = (0, 0);
        Snapshot { id, len: m.len(), modified: m.modified().ok() }
    }

    /// Why `now` is not the file that was planned, if it is not.
    fn changed(&self, now: &Snapshot) -> Option<String> {
        if now.id != self.id {
            Some("replaced by another file".into())
        } else if now.len != self.len {
            Some(format!("its length went from {} to {} bytes", self.len, now.len))
        } else if now.modified != self.modified {
            Some("rewritten (its modification time changed)".into())
        } else {
            None
        }
    }
}

impl Split {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The split's bytes.
    pub fn read(&self) -> io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.read_into(&mut buf)?;
        Ok(buf)
    }

    /// The split's bytes into `buf` (a worker reuses one buffer for all its splits).
    pub fn read_into(&self, buf: &mut Vec<u8>) -> io::Result<()> {
        if let Some(o) = &self.object {
            return o.read_range(self.start, self.end, buf);
        }
        buf.clear();
        let mut f = self.open()?;
        f.seek(SeekFrom::Start(self.start))?;
        let len = usize::try_from(self.len()).unwrap_or(0);
        if buf.capacity() < len {
            // A fresh buffer, a little larger than needed: growing the old one would copy its
            // stale bytes (realloc does not know they are stale), and splits of nearly the
            // same size would each grow it again.
            *buf = Vec::with_capacity(len + len / 16);
        }
        f.take(self.len()).read_to_end(buf)?;
        if buf.len() as u64 != self.len() {
            return Err(changed_error(&format!(
                "it ended after {} of the planned {} bytes",
                self.start + buf.len() as u64,
                self.planned.len
            )));
        }
        Ok(())
    }

    /// Opens the split's file, which must still be the file the run planned: a batch run reads
    /// one consistent snapshot of its input or stops (a file truncated, rewritten, replaced or
    /// grown while the run reads it would give rows of two versions, or lose some).
    pub fn open(&self) -> io::Result<File> {
        if self.object.is_some() {
            return Err(io::Error::other("internal: an object in a store is read by ranges, not opened"));
        }
        let f = File::open(self.path.as_ref())?;
        let now = Snapshot::of(&f.metadata()?);
        match self.planned.changed(&now) {
            Some(why) => Err(changed_error(&why)),
            None => Ok(f),
        }
    }
}

fn changed_error(why: &str) -> io::Error {
    io::Error::other(format!(
        "the file changed while the run read it ({why}): nothing was published; run again once it is complete"
    ))
}

/// The files a glob names, sorted; a pattern that names none is an error (a typo in a path
/// should not look like an empty input).
pub fn expand(pattern: &str) -> Result<Vec<PathBuf>, String> {
    let paths = glob::glob(pattern).map_err(|e| format!("bad file pattern `{pattern}`: {e}"))?;
    let mut files = Vec::new();
    for p in paths {
        let p = p.map_err(|e| format!("cannot read `{}`: {}", e.path().display(), e.error()))?;
        if p.is_file() {
            files.push(p);
        }
    }
    if files.is_empty() {
        return Err(format!("no files match `{pattern}`"));
    }
    files.sort();
    Ok(files)
}

/// Splits every file of `pattern` for source number `source`.
/// [`plan`] for a run of `workers` workers in all: splits of at most [`SPLIT_BYTES`], and
/// small enough (down to 1 MB) that a source's files make at least four splits per worker, so
/// a single file of tens of megabytes is still read by every worker.
pub fn plan_for(source: usize, pattern: &str, format: Format, workers: usize) -> Result<Vec<Split>, String> {
    plan_at_most(source, pattern, format, workers, SPLIT_BYTES)
}

/// [`plan_for`] with splits of at most `max` bytes (at least 1 MB).
pub fn plan_at_most(
    source: usize,
    pattern: &str,
    format: Format,
    workers: usize,
    max: u64,
) -> Result<Vec<Split>, String> {
    if pattern.starts_with("s3://") {
        return crate::connectors::s3_plan(source, pattern, format, workers);
    }
    let max = max.max(1 << 20);
    let splits = plan(source, pattern, format, max)?;
    let total: u64 = splits.iter().map(Split::len).sum();
    let target = (total / (4 * workers.max(1) as u64)).clamp(1 << 20, max);
    if target < max && splits.len() < 4 * workers {
        return plan(source, pattern, format, target);
    }
    Ok(splits)
}

pub fn plan(source: usize, pattern: &str, format: Format, target: u64) -> Result<Vec<Split>, String> {
    let mut splits = Vec::new();
    for path in expand(pattern)? {
        let why = |e: io::Error| format!("cannot read `{}`: {e}", path.display());
        let planned = Snapshot::of(&std::fs::metadata(&path).map_err(why)?);
        let len = planned.len;
        let display: Arc<str> = path.display().to_string().into();
        let path = Arc::new(path.clone());
        let mut header = None;
        let mut start = 0;
        let splittable = match format {
            Format::Parquet | Format::Arrow => false,
            Format::Json => true,
            Format::Csv => {
                let line = first_line(&path).map_err(why)?;
                start = line.len() as u64;
                header = Some(Arc::new(line));
                // A quoted field may hold a newline; only files without quotes are cut.
                !contains_byte(&path, b'"').map_err(why)?
            }
        };
        let mut cuts = vec![start];
        if splittable && target > 0 {
            let mut at = start + target;
            while at < len {
                let next = line_start_at_or_after(&path, at).map_err(why)?;
                if next >= len {
                    break;
                }
                cuts.push(next);
                at = next + target;
            }
        }
        cuts.push(len);
        for w in cuts.windows(2) {
            if w[1] > w[0] || (matches!(format, Format::Parquet | Format::Arrow) && len > 0) {
                splits.push(Split {
                    source,
                    path: path.clone(),
                    display: display.clone(),
                    start: w[0],
                    end: w[1],
                    header: header.clone(),
                    planned,
                    object: None,
                });
            }
        }
    }
    Ok(splits)
}

/// The first line of a file, with its newline.
fn first_line(path: &Path) -> io::Result<Vec<u8>> {
    let mut f = File::open(path)?;
    let mut line = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(line);
        }
        if let Some(i) = memchr::memchr(b'\n', &chunk[..n]) {
            line.extend_from_slice(&chunk[..=i]);
            return Ok(line);
        }
        line.extend_from_slice(&chunk[..n]);
    }
}

fn contains_byte(path: &Path, b: u8) -> io::Result<bool> {
    let mut f = File::open(path)?;
    let mut chunk = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(false);
        }
        if memchr::memchr(b, &chunk[..n]).is_some() {
            return Ok(true);
        }
    }
}

/// The offset of the first line that starts at or after `at`.
fn line_start_at_or_after(path: &Path, at: u64) -> io::Result<u64> {
    let mut f = File::open(path)?;
    f.seek(SeekFrom::Start(at - 1))?;
    let mut pos = at - 1;
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = f.read(&mut chunk)?;
        if n == 0 {
            return Ok(pos);
        }
        if let Some(i) = memchr::memchr(b'\n', &chunk[..n]) {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
}

/// Line numbers for a split that does not start at the top of its file: the count of lines
/// before it is computed only if a record of the split is rejected.
#[derive(Debug)]
pub struct LineBase {
    path: Arc<PathBuf>,
    object: Option<Arc<dyn Remote>>,
    start: u64,
    first: OnceLock<Option<u64>>,
}

impl LineBase {
    pub fn new(split: &Split) -> LineBase {
        let first = OnceLock::new();
        if split.start == 0 {
            let _ = first.set(Some(1));
        } else if let Some(h) = &split.header {
            if split.start == h.len() as u64 {
                let _ = first.set(Some(2));
            }
        }
        LineBase { path: split.path.clone(), object: split.object.clone(), start: split.start, first }
    }

    /// The 1-based number of the split's first line.
    pub fn first_line(&self) -> Option<u64> {
        *self.first.get_or_init(|| {
            if let Some(o) = &self.object {
                // In ranges of 8 MB: the bytes before a split may be gigabytes.
                let (mut at, mut lines, mut chunk) = (0u64, 0u64, Vec::new());
                while at < self.start {
                    let end = self.start.min(at + (8 << 20));
                    o.read_range(at, end, &mut chunk).ok()?;
                    lines += memchr::memchr_iter(b'\n', &chunk).count() as u64;
                    at = end;
                }
                return Some(lines + 1);
            }
            let mut f = File::open(self.path.as_ref()).ok()?;
            let mut left = self.start;
            let mut lines = 0u64;
            let mut chunk = vec![0u8; 1 << 20];
            while left > 0 {
                let want = usize::try_from(left.min(chunk.len() as u64)).ok()?;
                let n = f.read(&mut chunk[..want]).ok()?;
                if n == 0 {
                    break;
                }
                lines += memchr::memchr_iter(b'\n', &chunk[..n]).count() as u64;
                left -= n as u64;
            }
            Some(lines + 1)
        })
    }
}

/// Calls `f(offset_in_split, line_index_in_split, line)` for every non-blank line of `buf`,
/// without its line ending.
pub fn for_each_line(buf: &[u8], mut f: impl FnMut(usize, u64, &[u8])) {
    let mut pos = 0;
    let mut index = 0u64;
    while pos < buf.len() {
        let end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i);
        let mut line = &buf[pos..end];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            f(pos, index, line);
        }
        index += 1;
        pos = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pipe-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    /// A batch run reads the input it planned or stops: a file grown, truncated, rewritten in
    /// place or replaced after planning is refused when a split is read, never read in part.
    #[test]
    fn a_file_that_changes_after_planning_is_refused_not_read_in_part() {
        let lines = "{\"a\": 1}\n".repeat(50);
        for change in ["append", "truncate", "rewrite", "replace"] {
            let p = temp(&format!("changing-{change}.jsonl"), &lines);
            let splits = plan(0, p.to_str().expect("utf-8"), Format::Json, 100).expect("plan");
            assert!(splits.len() > 2);
            let mut buf = Vec::new();
            splits[0].read_into(&mut buf).expect("unchanged: reads");
            match change {
                "append" => std::fs::write(&p, format!("{lines}{{\"a\": 2}}\n")).expect("append"),
                "truncate" => std::fs::write(&p, &lines[..40]).expect("truncate"),
                "rewrite" => {
                    // Same length, new contents, a later modification time.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    std::fs::write(&p, lines.replace('1', "2")).expect("rewrite");
                }
                _ => {
                    let next = p.with_extension("next");
                    std::fs::write(&next, &lines).expect("next");
                    std::fs::rename(&next, &p).expect("replace");
                }
            }
            let e = splits[1].read_into(&mut buf).expect_err(change);
            assert!(e.to_string().contains("the file changed while the run read it"), "{change}: {e}");
        }
    }

    #[test]
    fn splits_cut_at_line_starts_and_cover_every_line_once() {
        let text: String = (0..200).map(|i| format!("{{\"n\":{i}}}\n")).collect();
        let p = temp("lines.jsonl", &text);
        let splits = plan(0, p.to_str().expect("utf-8"), Format::Json, 100).expect("plan");
        assert!(splits.len() > 5);
        let mut seen = Vec::new();
        for s in &splits {
            let buf = s.read().expect("read");
            assert!(s.start == 0 || text.as_bytes()[s.start as usize - 1] == b'\n');
            let base = LineBase::new(s);
            for_each_line(&buf, |_, i, line| {
                seen.push((String::from_utf8_lossy(line).to_string(), base.first_line().expect("line") + i));
            });
        }
        assert_eq!(seen.len(), 200);
        for (i, (line, n)) in seen.iter().enumerate() {
            assert_eq!(line, &format!("{{\"n\":{i}}}"));
            assert_eq!(*n, i as u64 + 1);
        }
    }

    #[test]
    fn csv_files_keep_their_header_and_quoted_files_stay_whole() {
        let plain = temp("plain.csv", "a,b\n1,2\n3,4\n5,6\n");
        let splits = plan(0, plain.to_str().expect("utf-8"), Format::Csv, 4).expect("plan");
        assert!(splits.len() > 1);
        assert_eq!(splits[0].start, 4);
        assert_eq!(splits[0].header.as_deref().map(Vec::as_slice), Some(&b"a,b\n"[..]));
        let quoted = temp("quoted.csv", "a,b\n\"x\ny\",2\n3,4\n");
        assert_eq!(plan(0, quoted.to_str().expect("utf-8"), Format::Csv, 4).expect("plan").len(), 1);
        assert!(plan(0, "/nonexistent/*.csv", Format::Csv, 4).expect_err("none").contains("no files match"));
    }
}
