//! `pipec graph`: the checked program as a picture. Sources, each step of each stream (a stream
//! is a cluster of its steps; `window`, `group by` and `aggregate` are drawn as one key
//! exchange; `score` as its model), and sinks; every edge carries the privacy labels of the rows
//! that cross it, with their forms, from the privacy analysis, and an edge on which a label
//! reaches a sink that does not allow it is drawn in red. Written as Graphviz DOT or Mermaid;
//! SVG is DOT rendered by Graphviz's `dot`.

use std::fmt::Write;

use crate::hir::{Connector, ConnectorArg, Step, WindowKind};
use crate::privacy::label::Labels;
use crate::Checked;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Source,
    /// `rejected` and late-record streams: records a source set aside.
    SetAside,
    Step,
    /// `window`/`group by`/`aggregate`: records are exchanged by key and folded.
    Exchange,
    Model,
    Sink,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub label: String,
    pub kind: NodeKind,
    /// The stream whose step this is (drawn inside the stream's cluster).
    pub stream: Option<String>,
    /// A sink that receives a label it does not allow.
    pub leak: bool,
}

#[derive(Clone, Debug)]
pub struct Edge {
    pub from: usize,
    pub to: usize,
    /// One line per label: `category: form`, `(implicit)` for labels carried by which rows
    /// arrive rather than by a value.
    pub labels: Vec<String>,
    pub leak: bool,
    /// Records set aside (rejected or late), drawn dashed.
    pub aside: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

/// The labels rows carry, one line per category: the most revealing form a value carries, and
/// the implicit one when it reveals more.
fn label_lines(all: &Labels) -> Vec<String> {
    let mut lines: Vec<(String, u8, String)> = Vec::new();
    for l in all.iter() {
        let shadowed = l.implicit && all.iter().any(|v| !v.implicit && v.category == l.category && v.form <= l.form);
        if !shadowed {
            let text = format!("{}: {}{}", l.category, l.form.name(), if l.implicit { " (implicit)" } else { "" });
            lines.push((l.category.clone(), u8::from(l.implicit), text));
        }
    }
    lines.sort();
    lines.into_iter().map(|(_, _, t)| t).collect()
}

fn connector(c: &Connector) -> String {
    let first = c.args.iter().find_map(|(_, a)| match a {
        ConnectorArg::Text(t) => Some(format!("\"{t}\"")),
        ConnectorArg::Env(v) => Some(format!("env(\"{v}\")")),
        _ => None,
    });
    format!("{}({})", c.name, first.unwrap_or_default())
}

fn duration(ms: i64) -> String {
    const UNITS: [(i64, &str); 5] = [(86_400_000, "d"), (3_600_000, "h"), (60_000, "m"), (1000, "s"), (1, "ms")];
    UNITS
        .iter()
        .find(|(n, _)| ms != 0 && ms % n == 0)
        .map_or_else(|| "0s".to_string(), |(n, u)| format!("{}{u}", ms / n))
}

fn window(w: &WindowKind) -> String {
    match w {
        WindowKind::Tumbling { size, .. } => format!("tumbling({})", duration(*size)),
        WindowKind::Sliding { size, every, .. } => format!("sliding({}, every {})", duration(*size), duration(*every)),
        WindowKind::Session { gap } => format!("session({})", duration(*gap)),
        WindowKind::Rolling { size } => format!("rolling({}) per record", duration(*size)),
    }
}

/// Field names, shortened past a few.
fn names<'a>(fields: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<&String> = fields.collect();
    if all.len() <= 4 {
        all.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
    } else {
        format!("{}, … ({} fields)", all[..3].iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "), all.len())
    }
}

fn shorten(s: String) -> String {
    const MAX: usize = 48;
    if s.chars().count() <= MAX {
        s
    } else {
        format!("{}…", s.chars().take(MAX - 1).collect::<String>())
    }
}

impl Graph {
    /// The streams that have nodes, in the order their first node appears.
    fn streams(&self) -> Vec<&str> {
        let mut streams: Vec<&str> = Vec::new();
        for s in self.nodes.iter().filter_map(|n| n.stream.as_deref()) {
            if !streams.contains(&s) {
                streams.push(s);
            }
        }
        streams
    }
}

/// Builds the graph of a checked program.
pub fn build(checked: &Checked) -> Graph {
    let p = &checked.program;
    let privacy = &checked.privacy;
    let mut g = Graph::default();
    // Where each named stream's rows come out: (node, labels).
    let mut outlet: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let labels_of = |name: &str| privacy.streams.get(name).map(label_lines).unwrap_or_default();
    let add = |g: &mut Graph, label: String, kind: NodeKind, stream: Option<&str>| {
        g.nodes.push(Node { label, kind, stream: stream.map(str::to_string), leak: false });
        g.nodes.len() - 1
    };
    for s in &p.sources {
        let via = [&s.batch, &s.stream].into_iter().flatten().map(connector).collect::<Vec<_>>().join(" | ");
        let n = add(&mut g, format!("source {}\n{via}", s.name), NodeKind::Source, None);
        outlet.insert(s.name.clone(), n);
        if let crate::hir::LatePolicy::To(late) = &s.late {
            let l = add(&mut g, format!("{late}\n(late records of {})", s.name), NodeKind::SetAside, None);
            g.edges.push(Edge { from: n, to: l, labels: vec!["too late".into()], leak: false, aside: true });
            outlet.insert(late.clone(), l);
        }
    }
    let reads_rejected =
        p.streams.iter().any(|s| s.input == "rejected") || p.edges.iter().any(|e| e.from == "rejected");
    if reads_rejected {
        let n = add(&mut g, "rejected\n(records no source or step could use)".into(), NodeKind::SetAside, None);
        for s in &p.sources {
            if let Some(&from) = outlet.get(&s.name) {
                g.edges.push(Edge { from, to: n, labels: vec!["bad records".into()], leak: false, aside: true });
            }
        }
        outlet.insert("rejected".into(), n);
    }
    // Each stream's first node, to connect its input (and union inputs) once all exist.
    let mut wiring: Vec<(String, usize)> = Vec::new();
    for s in &p.streams {
        let after = privacy.steps.get(&s.name);
        let mut prev: Option<usize> = None;
        let mut pending: Vec<String> = Vec::new();
        let mut i = 0;
        while i < s.steps.len() {
            let step = &s.steps[i];
            let (kind, text) = match &step.step {
                Step::Select(f) => (NodeKind::Step, format!("select {}", names(f.iter().map(|(n, _)| n)))),
                Step::Derive(f) => (NodeKind::Step, format!("derive {}", names(f.iter().map(|(n, _)| n)))),
                Step::Where(c) => (NodeKind::Step, shorten(format!("where {}", crate::ir::print::expr(c)))),
                Step::Require(c, crate::hir::Gate::Require) => {
                    (NodeKind::Step, shorten(format!("require {}", crate::ir::print::expr(c))))
                }
                Step::Require(_, crate::hir::Gate::Expect { what, .. }) => {
                    (NodeKind::Step, shorten(format!("expect {what}")))
                }
                Step::Explode { list, alias } => {
                    (NodeKind::Step, shorten(format!("explode {} as {alias}", crate::ir::print::expr(list))))
                }
                Step::Window(w) => {
                    pending.push(format!("window {}", window(w)));
                    i += 1;
                    continue;
                }
                Step::GroupBy(k) => {
                    pending.push(format!("key exchange by {}", names(k.iter().map(|(n, _)| n))));
                    i += 1;
                    continue;
                }
                Step::Aggregate { min_group, fields } => {
                    let k = min_group.map(|k| format!(" (k >= {k})")).unwrap_or_default();
                    (NodeKind::Exchange, format!("aggregate{k} {}", names(fields.iter().map(|(n, _)| n))))
                }
                Step::Score { model, output, .. } => {
                    let kind = p.models.iter().find(|m| &m.name == model).map(|m| m.kind.as_str()).unwrap_or("model");
                    (NodeKind::Model, format!("score {model} ({kind})\ninto {output}"))
                }
                Step::ProtectFor { sink, masks } => {
                    (NodeKind::Step, format!("protect for {sink}\n({} masked)", masks.len()))
                }
                Step::Union(others) => {
                    for o in others {
                        wiring.push((o.clone(), g.nodes.len()));
                    }
                    (NodeKind::Step, format!("union {}", others.join(", ")))
                }
                Step::Join { table, left, keys, asof, interval, .. } => {
                    wiring.push((table.clone(), g.nodes.len()));
                    let on: Vec<String> = keys
                        .iter()
                        .map(|(l, r)| format!("{} = {}", crate::ir::print::expr(l), crate::ir::print::expr(r)))
                        .collect();
                    let left = match (left, asof.is_some() || interval.is_some()) {
                        (true, true) if interval.is_some() => "left interval ",
                        (false, true) if interval.is_some() => "interval ",
                        (true, true) => "left asof ",
                        (false, true) => "asof ",
                        (true, false) => "left ",
                        (false, false) => "",
                    };
                    (NodeKind::Step, shorten(format!("join {left}{table}\non {}", on.join(", "))))
                }
            };
            pending.push(text);
            let n = add(&mut g, std::mem::take(&mut pending).join("\n"), kind, Some(&s.name));
            match prev {
                Some(from) => {
                    let labels = after.and_then(|a| a.get(i - 1)).map(label_lines).unwrap_or_default();
                    g.edges.push(Edge { from, to: n, labels, leak: false, aside: false });
                }
                None => wiring.push((s.input.clone(), n)),
            }
            prev = Some(n);
            i += 1;
        }
        let last = match prev {
            Some(n) if pending.is_empty() => n,
            // A stream without steps (or ending in a bare `window`) is drawn as itself.
            _ => {
                let n = add(&mut g, format!("stream {}", s.name), NodeKind::Step, Some(&s.name));
                match prev {
                    Some(from) => {
                        g.edges.push(Edge { from, to: n, labels: labels_of(&s.name), leak: false, aside: false })
                    }
                    None => wiring.push((s.input.clone(), n)),
                }
                n
            }
        };
        outlet.insert(s.name.clone(), last);
    }
    for (from, to) in wiring {
        if let Some(&f) = outlet.get(&from) {
            g.edges.push(Edge { from: f, to, labels: labels_of(&from), leak: false, aside: false });
        }
    }
    let mut sink_nodes = Vec::new();
    for sink in &p.sinks {
        let purpose = sink.purpose.as_ref().map(|p| format!("\npurpose {p}")).unwrap_or_default();
        let n =
            add(&mut g, format!("sink {}\n{}{purpose}", sink.name, connector(&sink.connector)), NodeKind::Sink, None);
        sink_nodes.push(n);
    }
    for e in &p.edges {
        let (Some(&from), Some(&to)) = (outlet.get(&e.from), sink_nodes.get(e.to)) else { continue };
        let sink = &p.sinks[e.to].name;
        let columns = privacy.columns.iter().filter(|c| &c.sink == sink && c.stream == e.from);
        let mut labels = label_lines(&Labels::joined(columns.map(|c| &c.labels)));
        let denied: Vec<String> = privacy
            .violations
            .iter()
            .filter(|v| &v.sink == sink && v.stream == e.from)
            .map(|v| format!("LEAK {}.{}: {} {}", v.stream, v.field, v.label.category, v.label.form.name()))
            .collect();
        let leak = !denied.is_empty();
        labels.extend(denied);
        labels.dedup();
        g.nodes[to].leak |= leak;
        g.edges.push(Edge { from, to, labels, leak, aside: false });
    }
    g
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The graph in Graphviz DOT.
pub fn dot(g: &Graph, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph pipeline {{");
    let _ = writeln!(out, "  label=\"{}\"; labelloc=t; rankdir=LR;", dot_escape(title));
    let _ = writeln!(out, "  node [fontname=\"Helvetica\", fontsize=11]; edge [fontname=\"Helvetica\", fontsize=9];");
    let node = |out: &mut String, i: usize, indent: &str| {
        let n = &g.nodes[i];
        let (shape, fill) = match n.kind {
            NodeKind::Source => ("cylinder", "#dbeafe"),
            NodeKind::SetAside => ("note", "#f3f4f6"),
            NodeKind::Step => ("box", "#ffffff"),
            NodeKind::Exchange => ("hexagon", "#fef3c7"),
            NodeKind::Model => ("component", "#ede9fe"),
            NodeKind::Sink => ("folder", "#dcfce7"),
        };
        let color = if n.leak { ", color=\"#dc2626\", penwidth=2" } else { "" };
        let _ = writeln!(
            out,
            "{indent}n{i} [label=\"{}\", shape={shape}, style=filled, fillcolor=\"{fill}\"{color}];",
            dot_escape(&n.label)
        );
    };
    for (i, n) in g.nodes.iter().enumerate() {
        if n.stream.is_none() {
            node(&mut out, i, "  ");
        }
    }
    let streams = g.streams();
    for (c, s) in streams.iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{c} {{");
        let _ = writeln!(out, "    label=\"stream {}\"; style=rounded; color=\"#9ca3af\";", dot_escape(s));
        for (i, n) in g.nodes.iter().enumerate() {
            if n.stream.as_deref() == Some(s) {
                node(&mut out, i, "    ");
            }
        }
        let _ = writeln!(out, "  }}");
    }
    for e in &g.edges {
        let style = match (e.leak, e.aside) {
            (true, _) => ", color=\"#dc2626\", fontcolor=\"#dc2626\", penwidth=2",
            (false, true) => ", style=dashed, color=\"#6b7280\"",
            (false, false) => "",
        };
        let _ = writeln!(out, "  n{} -> n{} [label=\"{}\"{style}];", e.from, e.to, dot_escape(&e.labels.join("\n")));
    }
    out.push_str("}\n");
    out
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;").replace('\n', "<br/>")
}

/// The graph as a Mermaid flowchart (renders in GitHub Markdown).
pub fn mermaid(g: &Graph, title: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "---\ntitle: {}\n---\nflowchart LR", title.replace('\n', " "));
    let node = |out: &mut String, i: usize, indent: &str| {
        let n = &g.nodes[i];
        let text = mermaid_escape(&n.label);
        let shape = match n.kind {
            NodeKind::Source => format!("[(\"{text}\")]"),
            NodeKind::SetAside => format!("[/\"{text}\"/]"),
            NodeKind::Step => format!("[\"{text}\"]"),
            NodeKind::Exchange => format!("{{{{\"{text}\"}}}}"),
            NodeKind::Model => format!("[[\"{text}\"]]"),
            NodeKind::Sink => format!("[\\\"{text}\"\\]"),
        };
        let _ = writeln!(out, "{indent}n{i}{shape}");
    };
    for (i, n) in g.nodes.iter().enumerate() {
        if n.stream.is_none() {
            node(&mut out, i, "  ");
        }
    }
    let streams = g.streams();
    for (c, s) in streams.iter().enumerate() {
        let _ = writeln!(out, "  subgraph s{c}[\"stream {}\"]", mermaid_escape(s));
        for (i, n) in g.nodes.iter().enumerate() {
            if n.stream.as_deref() == Some(s) {
                node(&mut out, i, "    ");
            }
        }
        let _ = writeln!(out, "  end");
    }
    for e in &g.edges {
        let arrow = if e.aside { "-.->" } else { "-->" };
        if e.labels.is_empty() {
            let _ = writeln!(out, "  n{} {arrow} n{}", e.from, e.to);
        } else {
            let _ = writeln!(out, "  n{} {arrow}|\"{}\"| n{}", e.from, mermaid_escape(&e.labels.join("\n")), e.to);
        }
    }
    for (i, e) in g.edges.iter().enumerate() {
        if e.leak {
            let _ = writeln!(out, "  linkStyle {i} stroke:#dc2626,stroke-width:2px,color:#dc2626");
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        if n.leak {
            let _ = writeln!(out, "  style n{i} stroke:#dc2626,stroke-width:2px");
        }
    }
    out
}

/// Renders DOT as SVG with Graphviz's `dot`.
pub fn svg(dot: &str) -> Result<Vec<u8>, String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!(
                "SVG needs Graphviz's `dot` on the PATH ({e}): install Graphviz (Debian/Ubuntu: \
                 `apt-get install graphviz`, macOS: `brew install graphviz`), or write DOT or Mermaid \
                 with `--format dot|mermaid`"
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot.as_bytes()).map_err(|e| format!("cannot feed `dot`: {e}"))?;
    }
    let out = child.wait_with_output().map_err(|e| format!("`dot` failed: {e}"))?;
    if !out.status.success() {
        return Err(format!("`dot` failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}
