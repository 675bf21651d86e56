//! Fusion: consecutive per-record steps become one stage function. A `Map` whose input is a
//! `Map` read by nothing else is merged into it, so a record goes through `explode`, `select`,
//! `where` and `derive` in one call, with no queue or allocation between them.

use crate::ir::{NodeId, NodeKind, Plan};

pub fn run(plan: &mut Plan) {
    let mut merged = 0;
    let mut gone = vec![false; plan.nodes.len()];
    for i in 0..plan.nodes.len() {
        if !matches!(plan.nodes[i].kind, NodeKind::Map(_)) {
            continue;
        }
        let [input] = plan.nodes[i].inputs[..] else { continue };
        let only_reader = plan.consumers(input) == vec![NodeId(i)];
        if !only_reader
            || !matches!(plan.nodes[input.0].kind, NodeKind::Map(_))
            || plan.nodes[input.0].name != plan.nodes[i].name
        {
            continue;
        }
        // Move the earlier stages in front of this node's, and read what the earlier node read.
        let NodeKind::Map(earlier) = std::mem::replace(&mut plan.nodes[input.0].kind, NodeKind::Map(Vec::new())) else {
            continue;
        };
        let inputs = plan.nodes[input.0].inputs.clone();
        if let NodeKind::Map(stages) = &mut plan.nodes[i].kind {
            stages.splice(0..0, earlier);
        }
        plan.nodes[i].inputs = inputs;
        plan.nodes[input.0].inputs.clear();
        plan.nodes[i].span = plan.nodes[input.0].span.to(plan.nodes[i].span);
        gone[input.0] = true;
        merged += 1;
    }
    plan.retain(|id, _| !gone[id.0]);
    if merged > 0 {
        plan.notes.push(format!(
            "fusion: {merged} per-record step{} merged into the step after {}",
            if merged == 1 { "" } else { "s" },
            if merged == 1 { "it" } else { "them" }
        ));
    }
}
