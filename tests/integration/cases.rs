//! Runs every case under `tests/cases/`. A `.pipe` or `.thrift` file is a case by itself, except
//! inside a directory holding a `main.pipe`: such a directory is one multi-file case rooted at
//! `main.pipe`. Expectations are `//~` markers inside the files (see `tests/lib.rs`).

use std::path::{Path, PathBuf};

use pipe_tests::{check_case, loader, read_tree, repo_root};

fn case_roots(files: &std::collections::BTreeMap<PathBuf, String>) -> Vec<PathBuf> {
    let multi: Vec<PathBuf> = files
        .keys()
        .filter(|p| p.file_name().is_some_and(|n| n == "main.pipe"))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    files
        .keys()
        .filter(|p| {
            let in_multi = multi.iter().any(|m| p.starts_with(m));
            !in_multi || p.file_name().is_some_and(|n| n == "main.pipe")
        })
        .cloned()
        .collect()
}

#[test]
fn every_case_reports_exactly_its_expected_diagnostics() {
    let dir = repo_root().join("tests/cases");
    // Model files (.txt, .json) are loaded, never cases themselves.
    let files = read_tree(&dir, &["pipe", "thrift", "toml", "txt", "json"]);
    let l = loader(&files);
    let roots: Vec<PathBuf> = case_roots(&files)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "pipe" || e == "thrift"))
        .collect();
    assert!(roots.len() >= 20, "expected the case corpus under {}, found {} cases", dir.display(), roots.len());
    let mut failures = Vec::new();
    for root in &roots {
        for problem in check_case(&l, root, &files) {
            failures.push(format!("{}: {problem}", root.display()));
        }
    }
    assert!(failures.is_empty(), "{} problem(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_diagnostic_code_has_an_invalid_case() {
    let dir = repo_root().join("tests/cases");
    let files = read_tree(&dir, &["pipe", "thrift", "toml"]);
    let mut seen = std::collections::BTreeSet::new();
    for (p, t) in &files {
        for (_, _, code) in pipe_tests::expectations(p, t) {
            seen.insert(code);
        }
    }
    let missing: Vec<&str> =
        pipec::diagnostics::Code::ALL.iter().map(|c| c.as_str()).filter(|c| !seen.contains(*c)).collect();
    assert!(missing.is_empty(), "codes without a case under tests/cases: {missing:?}");
}
