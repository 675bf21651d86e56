//! Visiting the expressions of a plan, and the fields an expression reads.

use std::collections::BTreeSet;

use crate::hir::{TExpr, TExprKind};
use crate::ir::{NodeKind, Plan, Stage};

/// Calls `f` on every expression of every node.
pub fn exprs_mut(plan: &mut Plan, f: &mut impl FnMut(&mut TExpr)) {
    for n in &mut plan.nodes {
        match &mut n.kind {
            NodeKind::Source { filter: Some(e), .. } => f(e),
            NodeKind::Map(stages) => {
                for s in stages {
                    stage_exprs_mut(s, f);
                }
            }
            NodeKind::Aggregate { keys, fields, .. } => {
                keys.iter_mut().chain(fields.iter_mut()).for_each(|(_, e)| f(e))
            }
            NodeKind::Sink { exprs, .. } => exprs.iter_mut().flat_map(|(_, es)| es.iter_mut()).for_each(&mut *f),
            _ => {}
        }
    }
}

pub fn stage_exprs_mut(s: &mut Stage, f: &mut impl FnMut(&mut TExpr)) {
    match s {
        Stage::Select(fs) | Stage::Derive(fs) | Stage::Score { inputs: fs, .. } => {
            fs.iter_mut().for_each(|(_, e)| f(e))
        }
        Stage::Filter(e) | Stage::Require { cond: e, .. } | Stage::Explode { list: e, .. } => f(e),
        Stage::Protect { .. } => {}
    }
}

/// The top-level fields of the row an expression reads.
pub fn reads(e: &TExpr) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    collect(e, &mut out);
    out
}

fn collect(e: &TExpr, out: &mut BTreeSet<String>) {
    if let TExprKind::Var(n) = &e.kind {
        out.insert(n.clone());
    }
    for child in e.children() {
        collect(child, out);
    }
}
