//! Lowering the typed program to the operator DAG: one node per source, per step and per edge
//! (the optimizer fuses them afterwards), with each step's row from the checker.

use std::collections::HashMap;

use super::{NodeId, NodeKind, Plan, Stage};
use crate::hir::{LatePolicy, Program, Row, Step, TExprKind};
use crate::source::Span;

/// Lowers a checked program (which must have no errors) to a plan.
pub fn lower(program: &Program) -> Plan {
    let mut l = Lowering {
        program,
        plan: Plan { namespace: program.namespace.clone(), ..Plan::default() },
        ends: HashMap::new(),
    };
    for src in &program.sources {
        let event_time = src.event_time.as_ref().and_then(|e| match &e.kind {
            TExprKind::Var(n) => Some(n.clone()),
            _ => None,
        });
        let id = l.push(
            NodeKind::Source {
                source: src.name.clone(),
                record: src.record.clone(),
                read: src.row.names().map(str::to_string).collect(),
                filter: None,
                event_time,
                bounded: src.stream.is_none(),
                table: program
                    .streams
                    .iter()
                    .flat_map(|s| &s.steps)
                    .any(|st| st.step.join_table() == Some(src.name.as_str())),
            },
            vec![],
            src.row.clone(),
            &src.name,
            src.span,
        );
        l.ends.insert(src.name.clone(), id);
        if let LatePolicy::To(late) = &src.late {
            let lid = l.push(NodeKind::Late { source: src.name.clone() }, vec![id], src.row.clone(), late, src.span);
            l.ends.insert(late.clone(), lid);
        }
    }
    for s in &program.streams {
        l.stream(&s.name);
    }
    for e in &program.edges {
        let Some(from) = l.stream(&e.from) else { continue };
        let row = l.plan.nodes[from.0].row.clone();
        let sink = &program.sinks[e.to];
        l.push(
            NodeKind::Sink { sink: e.to, name: sink.name.clone(), exprs: e.sink_exprs.clone() },
            vec![from],
            row,
            &sink.name,
            e.span,
        );
    }
    l.plan
}

struct Lowering<'a> {
    program: &'a Program,
    plan: Plan,
    /// The node that produces each named stream.
    ends: HashMap<String, NodeId>,
}

impl Lowering<'_> {
    fn push(&mut self, kind: NodeKind, inputs: Vec<NodeId>, row: Row, name: &str, span: Span) -> NodeId {
        self.plan.nodes.push(super::Node { kind, inputs, row, name: name.to_string(), span });
        NodeId(self.plan.nodes.len() - 1)
    }

    /// The `rejected` stream's node, made the first time something reads it.
    fn rejected_if(&mut self, name: &str) -> Option<&NodeId> {
        if name != "rejected" {
            return None;
        }
        if !self.ends.contains_key("rejected") {
            let row = Row { fields: crate::check::rejected_fields() };
            let id = self.push(NodeKind::Rejected, vec![], row, "rejected", Span::default());
            self.ends.insert("rejected".into(), id);
        }
        self.ends.get("rejected")
    }

    fn stream(&mut self, name: &str) -> Option<NodeId> {
        if let Some(&id) = self.ends.get(name) {
            return Some(id);
        }
        if name == "rejected" {
            return self.rejected_if(name).copied();
        }
        let s = self.program.streams.iter().find(|s| s.name == name)?;
        let mut current = self.stream(&s.input)?;
        let (mut window, mut keys) = (None, Vec::new());
        for step in &s.steps {
            let stage = match &step.step {
                Step::Select(f) => Some(Stage::Select(f.clone())),
                Step::Derive(f) => Some(Stage::Derive(f.clone())),
                Step::Where(c) => Some(Stage::Filter(c.clone())),
                Step::Require(c, gate) => Some(match gate {
                    crate::hir::Gate::Require => Stage::Require {
                        what: format!("`require {}` in stream `{}`", super::print::expr(c), s.name),
                        cond: c.clone(),
                        blocking: None,
                    },
                    crate::hir::Gate::Expect { what, blocking, .. } => {
                        Stage::Require { what: what.clone(), cond: c.clone(), blocking: Some(*blocking) }
                    }
                }),
                Step::Explode { list, alias } => Some(Stage::Explode { list: list.clone(), alias: alias.clone() }),
                Step::Score { model, inputs, output } => {
                    Some(Stage::Score { model: model.clone(), inputs: inputs.clone(), output: output.clone() })
                }
                Step::ProtectFor { sink, masks } => Some(Stage::Protect { sink: sink.clone(), masks: masks.clone() }),
                Step::Window(w) => {
                    window = Some(w.clone());
                    None
                }
                Step::GroupBy(k) => {
                    keys = k.clone();
                    None
                }
                Step::Aggregate { min_group, fields } => {
                    let kind = NodeKind::Aggregate {
                        keys: std::mem::take(&mut keys),
                        window: window.take(),
                        min_group: *min_group,
                        fields: fields.clone(),
                    };
                    current = self.push(kind, vec![current], step.row.clone(), name, step.span);
                    None
                }
                Step::Join { table, left, asof, interval, keys, fields } => {
                    let kind = NodeKind::Lookup {
                        table: table.clone(),
                        left: *left,
                        asof: asof.clone(),
                        interval: *interval,
                        keys: keys.clone(),
                        fields: fields.clone(),
                    };
                    let inputs = vec![current, self.stream(table)?];
                    current = self.push(kind, inputs, step.row.clone(), name, step.span);
                    None
                }
                Step::Union(others) => {
                    let mut inputs = vec![current];
                    for o in others {
                        inputs.extend(self.stream(o));
                    }
                    current = self.push(NodeKind::Union, inputs, step.row.clone(), name, step.span);
                    None
                }
            };
            if let Some(stage) = stage {
                current = self.push(NodeKind::Map(vec![stage]), vec![current], step.row.clone(), name, step.span);
            }
        }
        self.ends.insert(name.to_string(), current);
        Some(current)
    }
}
