//! The privacy corpus under `tests/cases/privacy/`: every leaking program is rejected, each
//! finding names the path the data took (`// path: a, b, c` lines say which steps, in order),
//! and the clean programs have no findings. (Codes and lines are checked with all the cases.)

use std::path::{Path, PathBuf};

use pipe_tests::{loader, read_tree, repo_root};
use pipec::diagnostics::Code;

fn roots(files: &std::collections::BTreeMap<PathBuf, String>, under: &str) -> Vec<PathBuf> {
    let multi: Vec<PathBuf> =
        files.keys().filter(|p| p.ends_with("main.pipe")).filter_map(|p| p.parent().map(Path::to_path_buf)).collect();
    files
        .keys()
        .filter(|p| p.starts_with(under) && p.extension().is_some_and(|e| e == "pipe"))
        .filter(|p| p.ends_with("main.pipe") || !multi.iter().any(|m| p.starts_with(m)))
        .cloned()
        .collect()
}

#[test]
fn leaking_programs_are_rejected_and_show_the_path() {
    let dir = repo_root().join("tests/cases");
    let files = read_tree(&dir, &["pipe", "thrift", "toml", "txt", "json"]);
    let l = loader(&files);
    let leaks = roots(&files, "privacy/leaks");
    assert!(leaks.len() >= 30, "only {} leaking programs", leaks.len());
    let mut failures = Vec::new();
    for root in &leaks {
        let checked = pipec::check_program(&l, root).expect("loads");
        let findings: Vec<_> =
            checked.diagnostics.iter().filter(|d| d.code.as_str().starts_with('P') && d.code != Code::P006).collect();
        if findings.is_empty() {
            failures.push(format!("{}: no privacy finding", root.display()));
        }
        for line in files[root].lines().filter_map(|l| l.trim().strip_prefix("// path:")) {
            let steps: Vec<&str> = line.split(", ").map(str::trim).collect();
            let shown = findings.iter().flat_map(|d| d.notes.iter()).any(|note| {
                let mut at = 0;
                steps.iter().all(|s| match note[at..].find(s) {
                    Some(i) => {
                        at += i + s.len();
                        true
                    }
                    None => false,
                })
            });
            if !shown {
                failures.push(format!("{}: no finding shows the path {steps:?}", root.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn clean_programs_have_no_privacy_findings() {
    let dir = repo_root().join("tests/cases");
    let files = read_tree(&dir, &["pipe", "thrift", "toml", "txt", "json"]);
    let l = loader(&files);
    let clean = roots(&files, "privacy/clean");
    assert!(clean.len() >= 10);
    for root in clean.iter().chain([PathBuf::from("valid/design/main.pipe"), PathBuf::from("valid/wiring.pipe")].iter())
    {
        let checked =
            pipec::check_program_with(&l, root, pipec::Options { strict: true, ..Default::default() }).expect("loads");
        let findings: Vec<String> = checked
            .diagnostics
            .iter()
            .filter(|d| d.code.as_str().starts_with('P'))
            .map(|d| format!("{} {}", d.code.as_str(), d.message))
            .collect();
        assert!(findings.is_empty(), "{}: {findings:#?}", root.display());
    }
}

#[test]
fn strict_mode_turns_privacy_warnings_into_errors() {
    let dir = repo_root().join("tests/cases");
    let files = read_tree(&dir, &["pipe", "thrift", "toml", "txt", "json"]);
    let l = loader(&files);
    let root = Path::new("privacy/leaks/implicit_where.pipe");
    let lax = pipec::check_program(&l, root).expect("loads");
    assert!(!lax.has_errors(), "an implicit flow is a warning by default");
    let strict =
        pipec::check_program_with(&l, root, pipec::Options { strict: true, ..Default::default() }).expect("loads");
    assert!(strict.has_errors());
}
