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
    let checked = match pipec::check_program(loader, root) {
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
