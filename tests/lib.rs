//! Helpers for Pipe's integration tests: expectations written inside case files, and checking a
//! program against them.
//!
//! An expectation is a comment naming the diagnostic codes reported on a line:
//! `//~ E2002` (this line), `//~^ E2002` (the line above), `//~v E0002` (the line below).
//! Several codes may follow one marker. Every diagnostic must be expected and every expectation
//! met, so a case without markers asserts that the program is clean.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pipec::diagnostics::Diagnostic;
use pipec::source::{Loader, MemoryLoader, SourceMap};

/// (file, line, code) triples.
pub type Expected = Vec<(PathBuf, usize, String)>;

/// Where generated code points when it is compared or checked, not built: fixed paths, so the
/// output does not depend on where the repository is, and no runtime features beyond the
/// program's own.
pub fn case_target() -> pipec::codegen::Target {
    pipec::codegen::Target {
        runtime_dir: "/RUNTIME".into(),
        base_dir: "/CASE".into(),
        id: String::new(),
        features: Vec::new(),
    }
}

/// Reads the `//~` markers of one file.
pub fn expectations(path: &Path, text: &str) -> Expected {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(pos) = line.find("//~") else { continue };
        let rest = &line[pos + 3..];
        let (target, codes) = if let Some(r) = rest.strip_prefix('^') {
            (i, r)
        } else if let Some(r) = rest.strip_prefix('v') {
            (i + 2, r)
        } else {
            (i + 1, rest)
        };
        for code in codes.split_whitespace() {
            out.push((path.to_path_buf(), target, code.to_string()));
        }
    }
    out
}

/// Compares diagnostics with expectations; returns a description of every difference.
pub fn compare(map: &SourceMap, diags: &[Diagnostic], mut expected: Expected) -> Vec<String> {
    let mut problems = Vec::new();
    for d in diags {
        let file = map.get(d.primary.span.file);
        let (line, _) = file.line_col(d.primary.span.start);
        let key = (file.path.clone(), line, d.code.as_str().to_string());
        match expected.iter().position(|e| *e == key) {
            Some(i) => {
                expected.remove(i);
            }
            None => problems.push(format!(
                "unexpected {} at {}:{line}: {}",
                d.code.as_str(),
                file.path.display(),
                d.message
            )),
        }
        if d.help.as_deref().is_none_or(str::is_empty) {
            problems.push(format!("{} at {}:{line} has no help line", d.code.as_str(), file.path.display()));
        }
        if d.primary.message.is_empty() {
            problems.push(format!("{} at {}:{line} has no label", d.code.as_str(), file.path.display()));
        }
    }
    for (path, line, code) in expected {
        problems.push(format!("expected {code} at {}:{line}, but it was not reported", path.display()));
    }
    problems
}

/// Checks the program rooted at `root` with the files of `loader` and the expectations written
/// in `files`; returns the differences.
pub fn check_case(loader: &dyn Loader, root: &Path, files: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let mut checked = match pipec::check_program(loader, root) {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot load {}: {e}", root.display())],
    };
    // Only files that took part in the program carry expectations for it.
    let mut expected = Expected::new();
    for (_, f) in checked.resolved.sources.files() {
        if let Some(text) = files.get(&f.path) {
            expected.extend(expectations(&f.path, text));
        }
    }
    // Code generator diagnostics (E3xxx) come from generating the crate, after checking.
    if expected.iter().any(|(_, _, code)| code.starts_with("E3")) {
        let target = case_target();
        let _ = pipec::generate(&mut checked, root, &target);
    }
    compare(&checked.resolved.sources, &checked.diagnostics, expected)
}

/// All files below `dir` with one of `exts`, as paths relative to `dir`, with their text.
pub fn read_tree(dir: &Path, exts: &[&str]) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| exts.iter().any(|e| x == *e)) {
                if let (Ok(rel), Ok(text)) = (p.strip_prefix(dir), std::fs::read_to_string(&p)) {
                    out.insert(rel.to_path_buf(), text);
                }
            }
        }
    }
    out
}

/// A memory loader holding `files`.
pub fn loader(files: &BTreeMap<PathBuf, String>) -> MemoryLoader {
    let mut l = MemoryLoader::new();
    for (p, t) in files {
        l.insert(p, t.clone());
    }
    l
}

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Builds the pipeline at `root` (relative to the repository) with `pipec`'s build driver and
/// returns the binary. Panics with the diagnostics or cargo's output when it does not build.
pub fn build_pipeline(root: &Path) -> PathBuf {
    let cache = pipec::driver::Cache::from_env(pipec::driver::Profile::Default);
    match pipec::driver::build(&repo_root().join(root), pipec::Options::default(), &cache) {
        Ok(b) => {
            assert!(
                !b.cargo_output.contains("warning"),
                "the generated code of {} compiles with warnings:\n{}",
                root.display(),
                b.cargo_output
            );
            // scripts/test.sh points the builds at the workspace's target directory.
            if let (true, Some(dir)) = (b.compiled, &cache.target_dir) {
                let built = dir.join(cache.profile.directory()).join(format!(
                    "{}{}",
                    b.krate.name,
                    std::env::consts::EXE_SUFFIX
                ));
                assert!(built.is_file(), "PIPE_TARGET_DIR is set, but cargo did not build {}", built.display());
            }
            b.binary
        }
        Err(pipec::driver::BuildError::Program(c)) => {
            panic!(
                "{} does not build:\n{}",
                root.display(),
                pipec::diagnostics::render::human(&c.resolved.sources, &c.diagnostics, false)
            )
        }
        Err(e) => panic!("{} does not build: {e:?}", root.display()),
    }
}

/// A fresh empty directory for one test's outputs.
pub fn scratch(name: &str) -> PathBuf {
    let dir = repo_root().join("target").join("test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// HMAC-SHA256 of `value` under `key`, hex: what `hmac(…)` in a pipeline must produce,
/// computed here independently of the runtime.
pub fn hmac_hex(key: &str, value: &str) -> String {
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    m.update(value.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// A Parquet cell, simplified for comparisons.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
}

/// Every row of every Parquet file under `dir`: (partition folders, columns by name).
pub fn read_parquet_dir(dir: &Path) -> Vec<(String, BTreeMap<String, Cell>)> {
    use parquet::file::reader::FileReader;
    use parquet::record::Field;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read output dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "parquet") {
                continue;
            }
            let partition =
                p.parent().and_then(|q| q.strip_prefix(dir).ok()).map(|q| q.display().to_string()).unwrap_or_default();
            let file = std::fs::File::open(&p).expect("open parquet");
            let reader = parquet::file::serialized_reader::SerializedFileReader::new(file).expect("valid parquet");
            for row in reader.get_row_iter(None).expect("rows") {
                let row = row.expect("row");
                let mut cols = BTreeMap::new();
                for (name, f) in row.get_column_iter() {
                    let c = match f {
                        Field::Null => Cell::Null,
                        Field::Bool(b) => Cell::Bool(*b),
                        Field::Int(v) => Cell::Int(i64::from(*v)),
                        Field::Long(v) | Field::TimestampMillis(v) => Cell::Int(*v),
                        Field::Date(d) => Cell::Int(i64::from(*d)),
                        Field::Double(v) => Cell::Double(*v),
                        Field::Str(s) => Cell::Str(s.clone()),
                        other => Cell::Str(other.to_string()),
                    };
                    cols.insert(name.clone(), c);
                }
                out.push((partition.clone(), cols));
            }
        }
    }
    out
}

/// The text of every `part-*.<ext>` file of a sink directory, in name order (each worker of a
/// run writes its own part); a CSV header is kept once, from the first part.
pub fn parts(dir: &Path, ext: &str) -> String {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == ext)
                && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("part-"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: no part-*.{ext} files", dir.display());
    let mut out = String::new();
    for (i, f) in files.iter().enumerate() {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let body = if ext == "csv" && i > 0 { text.split_once('\n').map_or("", |x| x.1) } else { &text };
        out.push_str(body);
    }
    out
}

/// Every row of every `.jsonl` file under `dir` (hidden folders such as in-progress epochs
/// aside), sorted: the multiset of rows a sink holds, whatever parts its workers wrote.
pub fn sink_rows(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                out.extend(std::fs::read_to_string(&p).expect("read output").lines().map(String::from));
            }
        }
    }
    out.sort();
    out
}

/// Appends `lines` to `files` files under `live` over time, as a producer would: the files one
/// after another, 40 lines at a time, each chunk written in two pieces (a reader may see half a
/// line and must wait for the rest).
pub fn produce(live: PathBuf, lines: Vec<String>, files: usize) -> std::thread::JoinHandle<()> {
    use std::io::Write;
    std::thread::spawn(move || {
        let per_file = lines.len() / files.max(1) + 1;
        for (k, file_lines) in lines.chunks(per_file).enumerate() {
            let path = live.join(format!("part-{k}.jsonl"));
            for chunk in file_lines.chunks(40) {
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("open live file");
                let text = chunk.join("\n") + "\n";
                let (a, b) = text.split_at(text.len() / 2);
                f.write_all(a.as_bytes()).expect("append");
                f.flush().expect("flush");
                std::thread::sleep(std::time::Duration::from_millis(3));
                f.write_all(b.as_bytes()).expect("append");
                std::thread::sleep(std::time::Duration::from_millis(12));
            }
        }
    })
}

/// The arguments of a stream that follows `live/*.jsonl` as source `source` on two workers, with
/// its state in `state`, checkpointing every 40 ms (the connector tests' kill-and-restart runs).
pub fn follow_args(source: &str, live: &Path, state: &Path) -> Vec<String> {
    [
        "--mode",
        "stream",
        "--quiet",
        "--workers",
        "2",
        "--state-dir",
        &state.display().to_string(),
        "--checkpoint-interval",
        "40ms",
        "--poll-interval",
        "10ms",
        "--source",
        &format!("{source}={}/*.jsonl", live.display()),
    ]
    .map(String::from)
    .to_vec()
}

/// Starts a stream with `start(n)` (`n`: the kills so far) and kills it with SIGKILL 150–500 ms
/// later, a pseudo-random delay drawn from `seed`, again and again until `producer` has finished
/// and at least `min` kills are done (3 minutes at most). Returns the number of kills.
pub fn kill_at_random(
    seed: u64,
    min: usize,
    producer: &std::thread::JoinHandle<()>,
    mut start: impl FnMut(usize) -> std::process::Child,
) -> usize {
    let mut x = seed | 1;
    let mut kills = 0;
    let started = std::time::Instant::now();
    while !producer.is_finished() || kills < min {
        let mut child = start(kills);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(std::time::Duration::from_millis(150 + x % 350));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills += 1;
        assert!(started.elapsed() < std::time::Duration::from_secs(180), "the producer never finished");
    }
    kills
}

/// Runs an optional Python reference check (`what` names the libraries it uses): its standard
/// output, or `None` after printing why it was skipped (no `python3`, or the script failed —
/// a library missing, say). The project's tests never need Python.
pub fn python_reference(what: &str, script: &str) -> Option<Vec<u8>> {
    let why = match std::process::Command::new("python3").args(["-c", script]).output() {
        Ok(o) if o.status.success() => return Some(o.stdout),
        Ok(o) => format!(
            "python3 {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("no message")
        ),
        Err(e) => format!("no python3 ({e})"),
    };
    #[allow(clippy::print_stderr, reason = "why the reference check did nothing")]
    {
        eprintln!("skipped the {what} check: {why}");
    }
    None
}
