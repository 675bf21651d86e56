//! Predicate pushdown: a `where` moves as early as its fields allow — before `derive`s that do
//! not define what it reads, before `select`s that only pass or rename those fields (the
//! condition is rewritten in the input's names), before `explode`, `score` and `protect for`
//! steps it does not depend on — and, when it reaches the front of the first step after a
//! source, into the source, to run as soon as a record is parsed. Records it drops earlier
//! would never have reached a sink; the only difference a user can see is that such a record
//! can no longer be rejected by a step it no longer reaches.

use std::collections::{BTreeSet, HashMap};

use super::walk::reads;
use crate::hir::{TExpr, TExprKind};
use crate::ir::{NodeId, NodeKind, Plan, Stage};
use crate::syntax::pipe_ast::BinOp;
use crate::types::Type;

pub fn run(plan: &mut Plan) {
    let mut moved = 0;
    for n in &mut plan.nodes {
        if let NodeKind::Map(stages) = &mut n.kind {
            moved += push_within(stages);
        }
    }
    let mut into_sources = Vec::new();
    for i in 0..plan.nodes.len() {
        let [input] = plan.nodes[i].inputs[..] else { continue };
        let starts_with_filter =
            matches!(&plan.nodes[i].kind, NodeKind::Map(s) if matches!(s.first(), Some(Stage::Filter(_))));
        if !starts_with_filter
            || !matches!(plan.nodes[input.0].kind, NodeKind::Source { .. })
            || plan.consumers(input) != vec![NodeId(i)]
        {
            continue;
        }
        let NodeKind::Map(stages) = &mut plan.nodes[i].kind else { continue };
        let Stage::Filter(cond) = stages.remove(0) else { continue };
        if let NodeKind::Source { filter, source, .. } = &mut plan.nodes[input.0].kind {
            *filter = Some(match filter.take() {
                Some(prev) => TExpr {
                    span: prev.span.to(cond.span),
                    ty: Type::Bool,
                    kind: TExprKind::Binary(BinOp::And, Box::new(prev), Box::new(cond)),
                },
                None => cond,
            });
            into_sources.push(source.clone());
        }
    }
    // A map left with no stages passes records through: drop it.
    let empty: Vec<NodeId> = (0..plan.nodes.len())
        .map(NodeId)
        .filter(|&id| matches!(&plan.node(id).kind, NodeKind::Map(s) if s.is_empty()))
        .collect();
    for &id in &empty {
        let input = plan.nodes[id.0].inputs[0];
        for n in &mut plan.nodes {
            for i in &mut n.inputs {
                if *i == id {
                    *i = input;
                }
            }
        }
    }
    plan.retain(|id, _| !empty.contains(&id));
    if moved > 0 {
        plan.notes.push(format!(
            "predicate pushdown: filters moved {moved} step{} earlier",
            if moved == 1 { "" } else { "s" }
        ));
    }
    for s in into_sources {
        plan.notes.push(format!("predicate pushdown: a filter runs while `{s}` is parsed"));
    }
}

/// Moves each filter of one stage list as early as it can go; returns the number of moves.
fn push_within(stages: &mut [Stage]) -> usize {
    let mut moves = 0;
    for k in 0..stages.len() {
        let mut at = k;
        while at > 0 && matches!(stages[at], Stage::Filter(_)) {
            let Stage::Filter(cond) = &stages[at] else { break };
            let Some(rewritten) = past(&stages[at - 1], cond) else { break };
            stages[at] = Stage::Filter(rewritten);
            stages.swap(at - 1, at);
            at -= 1;
            moves += 1;
        }
    }
    moves
}

/// The condition as it reads before `stage`, if it can move there.
fn past(stage: &Stage, cond: &TExpr) -> Option<TExpr> {
    let used = reads(cond);
    let free = |defined: &mut dyn Iterator<Item = &String>| -> bool {
        let d: BTreeSet<&String> = defined.collect();
        used.iter().all(|u| !d.contains(u))
    };
    match stage {
        Stage::Derive(fields) => free(&mut fields.iter().map(|(n, _)| n)).then(|| cond.clone()),
        Stage::Explode { alias, .. } => free(&mut std::iter::once(alias)).then(|| cond.clone()),
        Stage::Score { output, .. } => free(&mut std::iter::once(output)).then(|| cond.clone()),
        Stage::Protect { masks, .. } => free(&mut masks.iter().map(|(n, _)| n)).then(|| cond.clone()),
        Stage::Select(fields) => {
            // Every field the condition reads must be a copy of an input field or of a path into
            // one (`balance = t.balance`): reading a path cannot fail, so it can be read earlier.
            let paths: HashMap<&str, &TExpr> =
                fields.iter().filter(|(_, e)| is_path(e)).map(|(n, e)| (n.as_str(), e)).collect();
            if !used.iter().all(|u| paths.contains_key(u.as_str())) {
                return None;
            }
            let mut c = cond.clone();
            substitute(&mut c, &paths);
            Some(c)
        }
        // A `where` stays after a `require`: the requirement holds for every row it saw.
        Stage::Filter(_) | Stage::Require { .. } => None,
    }
}

fn is_path(e: &TExpr) -> bool {
    match &e.kind {
        TExprKind::Var(_) => true,
        TExprKind::Field(b, _) => is_path(b),
        _ => false,
    }
}

/// Replaces each field the select defines by the path it copies.
fn substitute(e: &mut TExpr, paths: &HashMap<&str, &TExpr>) {
    if let TExprKind::Var(n) = &e.kind {
        if let Some(p) = paths.get(n.as_str()) {
            // Keep the narrowed type the condition was checked with.
            let ty = e.ty.clone();
            *e = (*p).clone();
            e.ty = ty;
        }
        return;
    }
    for child in e.children_mut() {
        substitute(child, paths);
    }
}
