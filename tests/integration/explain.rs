//! `pipec explain` and the optimizer: each case under `tests/cases/explain/` has its expected
//! plan beside it (`NAME.plan`; `PIPE_BLESS=1` rewrites them), and the passes' effects a user
//! relies on are asserted directly.

use std::path::Path;

use pipe_tests::{loader, read_tree, repo_root};
use pipec::hir::TExprKind;
use pipec::ir::{NodeKind, Plan, Stage};

fn plan_of(root: &str) -> (Plan, Plan) {
    let dir = repo_root().join("tests/cases");
    let files = read_tree(&dir, &["pipe", "thrift", "txt", "json"]);
    let checked = pipec::check_program(&loader(&files), Path::new(root)).expect("loads");
    assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
    let lowered = pipec::ir::lower(&checked.program);
    (lowered.clone(), pipec::optimize::optimize(lowered))
}

#[test]
fn explained_plans_match_their_snapshots() {
    let dir = repo_root().join("tests/cases/explain");
    let mut failures = Vec::new();
    for (name, _) in read_tree(&dir, &["pipe"]) {
        let (_, optimized) = plan_of(&format!("explain/{}", name.display()));
        let text = pipec::ir::print::plan(&optimized);
        let snapshot = dir.join(name.with_extension("plan"));
        if std::env::var_os("PIPE_BLESS").is_some() {
            std::fs::write(&snapshot, &text).expect("write snapshot");
        }
        let expected = std::fs::read_to_string(&snapshot).unwrap_or_default();
        if expected != text {
            failures.push(format!("{}: the plan differs from {}:\n{text}", name.display(), snapshot.display()));
        }
    }
    assert!(failures.is_empty(), "{}\n(run with PIPE_BLESS=1 to accept)", failures.join("\n"));
}

#[test]
fn the_optimizer_folds_fuses_pushes_down_and_prunes() {
    let (lowered, plan) = plan_of("explain/passes.pipe");
    assert!(plan.nodes.len() < lowered.nodes.len(), "fusion and dead-stream removal shrink the plan");
    // The filter on a renamed field runs while the source is parsed, on the source's name.
    let filter = plan.nodes.iter().find_map(|n| match &n.kind {
        NodeKind::Source { filter: Some(f), .. } => Some(pipec::ir::print::expr(f)),
        _ => None,
    });
    assert_eq!(filter.as_deref(), Some("state == \"CA\""));
    let renamed: Vec<&Stage> = plan
        .nodes
        .iter()
        .filter(|n| n.name == "renamed")
        .flat_map(|n| match &n.kind {
            NodeKind::Map(s) => s.iter().collect::<Vec<_>>(),
            _ => vec![],
        })
        .collect();
    // Fused into one map; the always-true filter, the unread score and the unread field are gone.
    assert!(renamed.iter().all(|s| !matches!(s, Stage::Filter(_) | Stage::Score { .. })), "{renamed:?}");
    let derived: Vec<&str> = renamed
        .iter()
        .flat_map(|s| match s {
            Stage::Derive(f) => f.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            _ => vec![],
        })
        .collect();
    assert_eq!(derived, ["doubled", "seven"]);
    let seven = renamed.iter().find_map(|s| match s {
        Stage::Derive(f) => f.iter().find(|(n, _)| n == "seven").map(|(_, e)| e.kind.clone()),
        _ => None,
    });
    assert_eq!(seven, Some(TExprKind::Int(7)));
    // Only what is read is parsed.
    let read = plan.nodes.iter().find_map(|n| match &n.kind {
        NodeKind::Source { read, .. } => Some(read.clone()),
        _ => None,
    });
    assert_eq!(
        read,
        Some(vec!["member_id".to_string(), "submitted_at".into(), "annual_income".into(), "state".into()])
    );
    assert!(!plan.nodes.iter().any(|n| n.name == "dead"));
    // `1 / 0` is not folded away: at run time it rejects the record with its reason.
    let text = pipec::ir::print::plan(&plan);
    assert!(text.contains("ratio = 1 / 0"), "{text}");
}
