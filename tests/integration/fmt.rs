//! `pipec fmt` over every `.pipe` file of the repository (the case corpus, the examples, the
//! benchmarks): formatting twice changes nothing more than once, the token stream is the
//! original's (no token added, dropped or reordered), and the program checks to the same plan
//! with the same diagnostics. Every file that parses is kept formatted (`.ci/run` runs
//! `pipec fmt --check` on all of them).

use std::path::{Path, PathBuf};

use logos::Logos;
use pipe_tests::{loader, read_tree, repo_root};
use pipec::syntax::lexer::Tok;

fn tokens(text: &str) -> Vec<(Result<Tok, ()>, &str)> {
    let mut lexer = Tok::lexer(text);
    let mut out = Vec::new();
    while let Some(t) = lexer.next() {
        out.push((t, lexer.slice().trim_end()));
    }
    out
}

/// The checked program in a comparable form: the optimized plan and each diagnostic's code and
/// message (spans move when lines do).
fn outcome(files: &std::collections::BTreeMap<PathBuf, String>, root: &Path) -> Option<(String, Vec<String>)> {
    let checked = pipec::check_program(&loader(files), root).ok()?;
    let diags = checked.diagnostics.iter().map(|d| format!("{} {}", d.code.as_str(), d.message)).collect();
    let plan = if checked.has_errors() {
        String::new()
    } else {
        pipec::ir::print::plan(&pipec::optimize::optimize(pipec::ir::lower(&checked.program)))
    };
    Some((plan, diags))
}

#[test]
fn formatting_is_idempotent_and_never_changes_a_program() {
    let mut failures = Vec::new();
    let (mut formatted, mut skipped) = (0, 0);
    for dir in ["tests/cases", "examples", "bench"] {
        let root = repo_root().join(dir);
        let files = read_tree(&root, &["pipe", "thrift", "json", "txt", "toml", "csv"]);
        for (path, text) in files.iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "pipe")) {
            let name = format!("{dir}/{}", path.display());
            let Ok(once) = pipec::format::format(text) else {
                skipped += 1;
                continue;
            };
            formatted += 1;
            match pipec::format::format(&once) {
                Ok(twice) if twice == once => {}
                Ok(_) => failures.push(format!("{name}: formatting the formatted file changes it again")),
                Err(e) => failures.push(format!("{name}: the formatted file does not parse: {e:?}")),
            }
            if tokens(text) != tokens(&once) {
                failures.push(format!("{name}: the tokens changed"));
            }
            let mut after = files.clone();
            after.insert(path.clone(), once.clone());
            if outcome(&files, path) != outcome(&after, path) {
                failures.push(format!("{name}: the checked program or its diagnostics changed"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(formatted > 100 && skipped < 10, "formatted {formatted}, skipped {skipped}");
}

/// Every `.pipe` file that parses is in the canonical layout.
#[test]
fn the_examples_and_cases_are_formatted() {
    let mut stale = Vec::new();
    for dir in ["examples", "bench", "tests/cases"] {
        for (path, text) in read_tree(&repo_root().join(dir), &["pipe"]) {
            if pipec::format::format(&text).is_ok_and(|f| f != text) {
                stale.push(format!("{dir}/{}", path.display()));
            }
        }
    }
    assert!(stale.is_empty(), "not formatted (run `pipec fmt examples bench tests/cases`): {stale:?}");
}
