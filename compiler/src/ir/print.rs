//! Text forms of the IR: expressions as the user would write them, and the whole plan for
//! `pipec explain`.

use std::fmt::Write;

use super::{NodeKind, Plan, Stage};
use crate::hir::{Callee, Row, TExpr, TExprKind, WindowKind};
use crate::syntax::pipe_ast::UnOp;

/// An expression in `.pipe` syntax (fully parenthesized where precedence could be unclear).
pub fn expr(e: &TExpr) -> String {
    match &e.kind {
        TExprKind::Int(n) => n.to_string(),
        TExprKind::Float(x) => {
            let s = x.to_string();
            if s.contains(['.', 'e', 'E', 'i', 'N']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        TExprKind::Str(s) => format!("{s:?}"),
        TExprKind::Bool(b) => b.to_string(),
        TExprKind::Null => "null".into(),
        TExprKind::Duration(ms) => duration(*ms),
        TExprKind::Timestamp(ms) => format!(
            "@{}",
            chrono::DateTime::from_timestamp_millis(*ms).map_or_else(|| ms.to_string(), |d| d.to_rfc3339())
        ),
        TExprKind::Var(n) => n.clone(),
        TExprKind::EnumValue(_, name, _) => format!("{}.{name}", e.ty),
        TExprKind::Field(b, f) => format!("{}.{f}", expr(b)),
        TExprKind::Index(b, i) => format!("{}[{}]", expr(b), expr(i)),
        TExprKind::Call(callee, args) => {
            let name = match callee {
                Callee::Builtin(n) => n.to_string(),
                Callee::User(n, _) => n.clone(),
            };
            format!("{name}({})", args.iter().map(expr).collect::<Vec<_>>().join(", "))
        }
        TExprKind::Aggregate(name, args) => format!("{name}({})", args.iter().map(expr).collect::<Vec<_>>().join(", ")),
        TExprKind::Unary(UnOp::Neg, a) => format!("-{}", atom(a)),
        TExprKind::Unary(UnOp::Not, a) => format!("!{}", atom(a)),
        TExprKind::Binary(op, a, b) => format!("{} {} {}", atom(a), op.symbol(), atom(b)),
        TExprKind::If(c, a, b) => format!("if {} then {} else {}", expr(c), expr(a), expr(b)),
        TExprKind::List(items) => format!("[{}]", items.iter().map(expr).collect::<Vec<_>>().join(", ")),
        TExprKind::Error => "?".into(),
    }
}

/// An operand, parenthesized when it is itself an operation.
fn atom(e: &TExpr) -> String {
    match e.kind {
        TExprKind::Binary(..) | TExprKind::If(..) => format!("({})", expr(e)),
        _ => expr(e),
    }
}

fn duration(ms: i64) -> String {
    for (unit, len) in [("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms != 0 && ms % len == 0 {
            return format!("{}{unit}", ms / len);
        }
    }
    format!("{ms}ms")
}

fn window(w: &WindowKind) -> String {
    match w {
        WindowKind::Tumbling { size, offset: 0 } => format!("tumbling({})", duration(*size)),
        WindowKind::Tumbling { size, offset } => format!("tumbling({}, {})", duration(*size), duration(*offset)),
        WindowKind::Sliding { size, every, offset: 0 } => format!("sliding({}, {})", duration(*size), duration(*every)),
        WindowKind::Sliding { size, every, offset } => {
            format!("sliding({}, {}, {})", duration(*size), duration(*every), duration(*offset))
        }
        WindowKind::Session { gap } => format!("session({})", duration(*gap)),
        WindowKind::Rolling { size } => format!("rolling({})", duration(*size)),
    }
}

fn fields(f: &[(String, TExpr)]) -> String {
    f.iter()
        .map(|(n, e)| if expr(e) == *n { n.clone() } else { format!("{n} = {}", expr(e)) })
        .collect::<Vec<_>>()
        .join(", ")
}

fn row(r: &Row) -> String {
    r.fields.iter().map(|(n, t)| format!("{n}: {t}")).collect::<Vec<_>>().join(", ")
}

/// The plan as `pipec explain` prints it.
pub fn plan(p: &Plan) -> String {
    let mut out = String::new();
    let name = p.namespace.as_deref().unwrap_or("pipeline");
    let _ = writeln!(out, "plan {name}: {} operators", p.nodes.len());
    for (i, n) in p.nodes.iter().enumerate() {
        let inputs = if n.inputs.is_empty() {
            String::new()
        } else {
            format!(" <- {}", n.inputs.iter().map(|i| format!("#{}", i.0)).collect::<Vec<_>>().join(", "))
        };
        match &n.kind {
            NodeKind::Source { source, record, read, filter, event_time, bounded, table } => {
                let _ = writeln!(
                    out,
                    "#{i} source {source}: {record} ({}){inputs}",
                    if *table {
                        "a join's table, read whole first"
                    } else if *bounded {
                        "bounded"
                    } else {
                        "unbounded"
                    }
                );
                let _ = writeln!(out, "     reads {}", read.join(", "));
                if let Some(t) = event_time {
                    let _ = writeln!(out, "     event time {t}");
                }
                if let Some(f) = filter {
                    let _ = writeln!(out, "     filter {} (while parsing)", expr(f));
                }
            }
            NodeKind::Late { source } => {
                let _ = writeln!(out, "#{i} late records of {source} as {}{inputs}", n.name);
            }
            NodeKind::Rejected => {
                let _ = writeln!(out, "#{i} rejected records{inputs}");
            }
            NodeKind::Map(stages) => {
                let _ = writeln!(
                    out,
                    "#{i} map {} ({} stage{}){inputs}",
                    n.name,
                    stages.len(),
                    if stages.len() == 1 { "" } else { "s" }
                );
                for s in stages {
                    let text = match s {
                        Stage::Select(f) => format!("select {{ {} }}", fields(f)),
                        Stage::Derive(f) => format!("derive {{ {} }}", fields(f)),
                        Stage::Filter(c) => format!("where {}", expr(c)),
                        Stage::Require { cond, blocking: None, .. } => format!("require {}", expr(cond)),
                        Stage::Require { what, blocking: Some(b), .. } => {
                            format!("expect{} {what}", if *b { "" } else { " (warn)" })
                        }
                        Stage::Explode { list, alias } => format!("explode {} as {alias}", expr(list)),
                        Stage::Score { model, inputs, output } => {
                            format!("score {model} {{ {} }} as {output}", fields(inputs))
                        }
                        Stage::Protect { sink, masks } => format!(
                            "protect for {sink}: {}",
                            if masks.is_empty() {
                                "nothing to mask".to_string()
                            } else {
                                masks.iter().map(|(f, m)| format!("{f} by {}", m.name())).collect::<Vec<_>>().join(", ")
                            }
                        ),
                    };
                    let _ = writeln!(out, "     {text}");
                }
            }
            NodeKind::Aggregate { keys, window: w, min_group, fields: f } => {
                let _ = writeln!(out, "#{i} aggregate {}{inputs}", n.name);
                if let Some(w) = w {
                    let _ = writeln!(out, "     window {}", window(w));
                }
                let by = if keys.is_empty() { "(one group)".to_string() } else { fields(keys) };
                let _ = writeln!(out, "     exchange by {by}");
                let k = min_group.map(|k| format!("(k >= {k}) ")).unwrap_or_default();
                let _ = writeln!(out, "     aggregate {k}{{ {} }}", fields(f));
            }
            NodeKind::Union => {
                let _ = writeln!(out, "#{i} union {}{inputs}", n.name);
            }
            NodeKind::Lookup { table, left, asof, interval, keys, fields: f } => {
                let kind = match (left, asof.is_some() || interval.is_some()) {
                    (true, true) if interval.is_some() => "left interval join",
                    (false, true) if interval.is_some() => "interval join",
                    (true, true) => "left as-of join",
                    (false, true) => "as-of join",
                    (true, false) => "left join",
                    (false, false) => "join",
                };
                let keyed = interval.is_some() || asof.as_ref().is_some_and(|a| a.versions);
                let what = if keyed { "stream" } else { "table" };
                let _ = writeln!(out, "#{i} {kind} {} with {what} {table}{inputs}", n.name);
                let on: Vec<String> = keys.iter().map(|(l, r)| format!("{} = {}", expr(l), expr(r))).collect();
                let _ = writeln!(out, "     on {}", on.join(", "));
                if let Some((lo, hi)) = interval {
                    let sign = |ms: i64| if ms < 0 { format!("-{}", duration(-ms)) } else { duration(ms) };
                    let _ = writeln!(out, "     exchange by the keys; rows meet within {} to {}", sign(*lo), sign(*hi));
                }
                if let Some(a) = asof {
                    let within = a.within.map(|w| format!(" within {}", duration(w))).unwrap_or_default();
                    let order = a.order.as_ref().map(|o| format!(", ties by {}", expr(o))).unwrap_or_default();
                    let wait = if a.versions { "; rows wait for the watermark" } else { "" };
                    let _ = writeln!(out, "     the latest version at the row's event time{within}{order}{wait}");
                }
                let taken: Vec<String> =
                    f.iter().map(|(n, t)| if n == t { n.clone() } else { format!("{n} = {t}") }).collect();
                let _ = writeln!(out, "     takes {{ {} }}", taken.join(", "));
            }
            NodeKind::Sink { name, exprs, .. } => {
                let _ = writeln!(out, "#{i} sink {name}{inputs}");
                for (param, es) in exprs {
                    let _ = writeln!(out, "     {param} = [{}]", es.iter().map(expr).collect::<Vec<_>>().join(", "));
                }
            }
        }
        if !matches!(n.kind, NodeKind::Sink { .. }) {
            let _ = writeln!(out, "     row {{ {} }}", row(&n.row));
        }
    }
    if !p.notes.is_empty() {
        let _ = writeln!(out, "optimizations:");
        for note in &p.notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    out
}
