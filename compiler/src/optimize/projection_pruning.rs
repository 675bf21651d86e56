//! Projection pruning: what no sink will see is not computed, and what no step reads is not
//! parsed. Working back from the sinks, each node learns which of its fields are read; `select`
//! and `derive` fields nobody reads are dropped, a `score` nobody reads is dropped, streams that
//! reach no sink are removed, and each source deserializes only the fields that are read (plus
//! its event time).

use std::collections::BTreeSet;

use super::walk::reads;
use crate::ir::{NodeId, NodeKind, Plan, Stage};

pub fn run(plan: &mut Plan) {
    let n = plan.nodes.len();
    // Streams that reach no sink.
    let mut live = vec![false; n];
    for i in (0..n).rev() {
        // Sinks are the roots, and the steps that `require`: their rows decide whether the run fails.
        let requires =
            matches!(&plan.nodes[i].kind, NodeKind::Map(s) if s.iter().any(|s| matches!(s, Stage::Require { .. })));
        if matches!(plan.nodes[i].kind, NodeKind::Sink { .. }) || requires || live[i] {
            live[i] = true;
            for input in plan.nodes[i].inputs.clone() {
                live[input.0] = true;
            }
        }
    }
    let dead: Vec<String> =
        (0..n).filter(|&i| !live[i]).map(|i| plan.nodes[i].name.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    let mut needed: Vec<BTreeSet<String>> = vec![BTreeSet::new(); n];
    let mut dropped_fields = 0;
    for i in (0..n).rev() {
        if !live[i] {
            continue;
        }
        let inputs = plan.nodes[i].inputs.clone();
        let mut want = needed[i].clone();
        let row_names: BTreeSet<String> = plan.nodes[i].row.names().map(str::to_string).collect();
        // A sink writes every field of its input, and reads its own expressions.
        if let NodeKind::Sink { exprs, .. } = &plan.nodes[i].kind {
            let mut w: BTreeSet<String> = inputs.first().map(|id| plan_row_names(plan, *id)).unwrap_or_default();
            for e in exprs.iter().flat_map(|(_, es)| es.iter()) {
                w.extend(reads(e));
            }
            for input in &inputs {
                needed[input.0].extend(w.iter().cloned());
            }
            continue;
        }
        match &mut plan.nodes[i].kind {
            NodeKind::Sink { .. } => continue,
            NodeKind::Map(stages) => {
                for stage in stages.iter_mut().rev() {
                    match stage {
                        Stage::Select(fields) => {
                            let before = fields.len();
                            fields.retain(|(name, _)| want.contains(name));
                            dropped_fields += before - fields.len();
                            want = fields.iter().flat_map(|(_, e)| reads(e)).collect();
                        }
                        Stage::Derive(fields) => {
                            let before = fields.len();
                            let mut kept = Vec::new();
                            for (name, e) in fields.drain(..).rev() {
                                if want.remove(&name) {
                                    want.extend(reads(&e));
                                    kept.push((name, e));
                                }
                            }
                            kept.reverse();
                            dropped_fields += before - kept.len();
                            *fields = kept;
                        }
                        Stage::Filter(c) | Stage::Require { cond: c, .. } => want.extend(reads(c)),
                        Stage::Explode { list, alias } => {
                            want.remove(alias.as_str());
                            want.extend(reads(list));
                        }
                        Stage::Score { inputs, output, .. } => {
                            if want.remove(output.as_str()) {
                                want.extend(inputs.iter().flat_map(|(_, e)| reads(e)));
                            } else {
                                inputs.clear();
                            }
                        }
                        Stage::Protect { .. } => {}
                    }
                }
                // A score whose output nobody reads is not computed.
                stages.retain(|s| !matches!(s, Stage::Score { inputs, .. } if inputs.is_empty()));
                stages.retain(|s| !matches!(s, Stage::Derive(f) if f.is_empty()));
            }
            NodeKind::Aggregate { keys, fields, .. } => {
                want = keys.iter().chain(fields.iter()).flat_map(|(_, e)| reads(e)).collect();
            }
            NodeKind::Union => {
                // Every input of a union must keep the same fields.
                want = row_names;
            }
            NodeKind::Lookup { keys, fields, asof, .. } => {
                // The table's fields nobody reads are not taken (nor parsed).
                let before = fields.len();
                fields.retain(|(name, _)| want.contains(name));
                dropped_fields += before - fields.len();
                let mut table: BTreeSet<String> = fields.iter().map(|(_, f)| f.clone()).collect();
                let mut stream: BTreeSet<String> =
                    want.iter().filter(|w| !fields.iter().any(|(n, _)| n == *w)).cloned().collect();
                for (l, r) in keys.iter() {
                    stream.extend(reads(l));
                    table.extend(reads(r));
                }
                if let Some(o) = asof.as_ref().and_then(|a| a.order.as_ref()) {
                    table.extend(reads(o));
                }
                let (Some(s), Some(t)) = (inputs.first(), inputs.get(1)) else { continue };
                needed[s.0].extend(stream);
                needed[t.0].extend(table);
                let produced = needed[i].clone();
                plan.nodes[i].row.fields.retain(|(f, _)| produced.contains(f));
                continue;
            }
            NodeKind::Late { .. } => {}
            NodeKind::Source { read, filter, event_time, source, .. } => {
                let mut keep: BTreeSet<String> = want.clone();
                keep.extend(event_time.iter().cloned());
                if let Some(f) = filter {
                    keep.extend(reads(f));
                }
                let total = read.len();
                read.retain(|f| keep.contains(f));
                if read.len() < total {
                    plan.notes.push(format!(
                        "projection pruning: `{source}` deserializes {} of {total} fields ({})",
                        read.len(),
                        read.join(", ")
                    ));
                }
                let read_now = read.clone();
                plan.nodes[i].row.fields.retain(|(f, _)| read_now.contains(f));
                continue;
            }
            NodeKind::Rejected => continue,
        }
        for input in &inputs {
            needed[input.0].extend(want.iter().cloned());
        }
    }
    // Rows of maps shrink to what is still produced and read.
    for i in 0..n {
        if live[i] && matches!(plan.nodes[i].kind, NodeKind::Map(_)) {
            let keep = needed[i].clone();
            plan.nodes[i].row.fields.retain(|(f, _)| keep.contains(f));
        }
    }
    plan.retain(|id: NodeId, _| live[id.0]);
    if dropped_fields > 0 {
        plan.notes.push(format!(
            "projection pruning: {dropped_fields} computed field{} no sink reads dropped",
            if dropped_fields == 1 { "" } else { "s" }
        ));
    }
    if !dead.is_empty() {
        let what = if dead.len() == 1 {
            "1 stream that reaches".to_string()
        } else {
            format!("{} streams that reach", dead.len())
        };
        plan.notes.push(format!("projection pruning: {what} no sink removed ({})", dead.join(", ")));
    }
}

fn plan_row_names(plan: &Plan, id: NodeId) -> BTreeSet<String> {
    plan.node(id).row.names().map(str::to_string).collect()
}
