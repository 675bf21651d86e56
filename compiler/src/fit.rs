//! Analyze-then-apply transforms (TensorFlow Transform's model): `zscore`, `scale_to_01`,
//! `vocabulary` and `quantile_bucket` take their parameters from a pass over the training data
//! that `pipec fit` runs, and the pipeline applies them as constants compiled into its code —
//! the same in a backfill, a stream and a program embedded in Rust.
//!
//! Each call in a `select` or `derive` is a *site*, named by its stream and field. Its
//! *fingerprint* hashes everything its value depends on: the argument, the steps before it, the
//! streams and sources upstream (their training bindings included). `pipec fit` writes the
//! parameters of every site with its fingerprint into `NAME.fit.json` next to the program;
//! checking reads them back and binds each call (its parameters become extra arguments), or
//! reports the site missing or stale (`E2028`) with the command to run.
//!
//! This module only reads and rewrites the typed program; `driver::fit` builds and runs the
//! analysis.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diagnostics::{Code, Diagnostic};
use crate::hir::{Callee, Program, Step, TExpr, TExprKind};
use crate::source::Span;
use crate::types::Type;

/// The fitted functions.
pub const FITTED: &[&str] = &["zscore", "scale_to_01", "vocabulary", "quantile_bucket"];

/// The version of the artifact's format.
pub const FORMAT: u32 = 1;

/// Where the artifact of the program rooted at `root` lives: `pipeline.pipe` →
/// `pipeline.fit.json`.
pub fn artifact_path(root: &Path) -> PathBuf {
    root.with_extension("fit.json")
}

/// The fitted parameters of a program's transforms, as `pipec fit` writes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub pipe_fit: u32,
    /// The program they were fitted for, as given to `pipec fit`.
    pub program: String,
    pub transforms: BTreeMap<String, Fitted>,
}

/// One site's parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fitted {
    pub function: String,
    /// The call as written (printed from the typed program), for people reading the file.
    pub call: String,
    pub fingerprint: String,
    /// The training rows with a value for the argument.
    pub rows: i64,
    pub params: Params,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Params {
    /// `zscore`: `(x - mean) / scale`, the scale the standard deviation (1 when it is 0).
    Standard { mean: f64, std: f64, scale: f64 },
    /// `scale_to_01`: `x * scale + offset`, with `scale = 1 / (max - min)` (1 when the range
    /// is 0) and `offset = -min * scale`, as scikit-learn computes it.
    MinMax { min: f64, max: f64, scale: f64, offset: f64 },
    /// `vocabulary`: the kept values, most frequent first.
    Vocabulary { values: Vec<String> },
    /// `quantile_bucket`: every bucket edge, lowest first (the first and last are the training
    /// range; a value's bucket counts the inner edges at or below it).
    Buckets { edges: Vec<f64> },
}

/// A fitted call in a `select` or `derive`.
#[derive(Debug, Clone)]
pub struct Site {
    pub key: String,
    pub function: &'static str,
    pub stream: String,
    /// The step and the field it is in (`derive`'s earlier fields are visible to it).
    pub step: usize,
    pub field: usize,
    /// The argument, typed against the step's input row (and the earlier derived fields).
    pub arg: TExpr,
    /// `top` of `vocabulary`, `n` of `quantile_bucket`.
    pub count: Option<i64>,
    pub span: Span,
    pub fingerprint: String,
    /// The sites upstream of this one: they must be fitted before it can be.
    pub upstream: BTreeSet<String>,
    /// Whether the call is bound to parameters.
    pub bound: bool,
}

/// Every fitted call of the program, in program order, and `E2028` for the ones outside a
/// `select` or `derive` (or with a count that is not a number written in the program).
pub fn sites(program: &Program, diags: &mut Vec<Diagnostic>) -> Vec<Site> {
    let mut out: Vec<Site> = Vec::new();
    let mut keys = BTreeSet::new();
    for s in &program.streams {
        for (k, step) in s.steps.iter().enumerate() {
            let fields = match &step.step {
                Step::Select(f) | Step::Derive(f) => f,
                other => {
                    for e in other.exprs() {
                        misplaced(e, "a step other than `select` or `derive`", diags);
                    }
                    continue;
                }
            };
            for (j, (name, e)) in fields.iter().enumerate() {
                let mut calls = Vec::new();
                collect(e, &mut calls);
                for (n, call) in calls.into_iter().enumerate() {
                    let TExprKind::Call(Callee::Builtin(f), args) = &call.kind else { continue };
                    let Some(arg) = args.first() else { continue };
                    let count = match args.get(1).map(|a| &a.kind) {
                        None => None,
                        Some(TExprKind::Int(c)) if *c >= 1 && *c <= 100_000 => Some(*c),
                        Some(_) => {
                            diags.push(
                                Diagnostic::new(
                                    Code::E2028,
                                    args[1].span,
                                    format!("`{f}` needs a whole number from 1 to 100000 written in the program"),
                                )
                                .label("not one")
                                .help(if *f == "vocabulary" {
                                    "write e.g. `top = 100`"
                                } else {
                                    "write e.g. `10`"
                                }),
                            );
                            continue;
                        }
                    };
                    let mut key = format!("{}.{name}", s.name);
                    if n > 0 || keys.contains(&key) {
                        key = format!("{}.{name}#{k}.{n}", s.name);
                    }
                    keys.insert(key.clone());
                    let bound = args.len() > 1 + usize::from(count.is_some());
                    out.push(Site {
                        key,
                        function: f,
                        stream: s.name.clone(),
                        step: k,
                        field: j,
                        arg: arg.clone(),
                        count,
                        span: call.span,
                        fingerprint: String::new(),
                        upstream: BTreeSet::new(),
                        bound,
                    });
                }
            }
        }
    }
    for f in &program.functions {
        misplaced(&f.body, "a function body", diags);
    }
    for e in program.edges.iter().flat_map(|e| e.sink_exprs.iter().flat_map(|(_, es)| es)) {
        misplaced(e, "a sink's arguments", diags);
    }
    for i in 0..out.len() {
        let (fingerprint, upstream) = fingerprint(program, &out, i);
        out[i].fingerprint = fingerprint;
        out[i].upstream = upstream;
    }
    out
}

/// Calls of fitted functions in `e`, outermost first.
fn collect<'e>(e: &'e TExpr, out: &mut Vec<&'e TExpr>) {
    if matches!(&e.kind, TExprKind::Call(Callee::Builtin(f), _) if FITTED.contains(f)) {
        out.push(e);
    }
    for c in e.children() {
        collect(c, out);
    }
}

fn misplaced(e: &TExpr, place: &str, diags: &mut Vec<Diagnostic>) {
    let mut calls = Vec::new();
    collect(e, &mut calls);
    for call in calls {
        let TExprKind::Call(Callee::Builtin(f), _) = &call.kind else { continue };
        diags.push(
            Diagnostic::new(
                Code::E2028,
                call.span,
                format!("`{f}` is fitted on training data, but it is used in {place}"),
            )
            .label("not in a `select` or `derive`")
            .help(format!("compute it as a field first: `| derive {{ x = {f}(…) }}`, then use the field")),
        );
    }
}

/// The fingerprint of site `i` (a hash of everything its value depends on, without source
/// positions, so reformatting a file keeps it), and the sites upstream of it. Only what the
/// argument reads counts: walking back from the call, a `select` or `derive` contributes the
/// fields that are read (and what those read), a `score` only when its output is; steps that
/// choose or reshape rows (`where`, `explode`, joins, windows, aggregates) count whole.
fn fingerprint(program: &Program, sites: &[Site], i: usize) -> (String, BTreeSet<String>) {
    let site = &sites[i];
    let mut text = format!("{}|{}|{:?}|", FORMAT, site.function, site.count);
    text.push_str(&without_spans(&format!("{:?}", site.arg)));
    let mut upstream = BTreeSet::new();
    if let Some(s) = program.streams.iter().find(|s| s.name == site.stream) {
        let mut steps: Vec<Step> = s.steps[..site.step].iter().map(|t| t.step.clone()).collect();
        if let Step::Derive(f) = &s.steps[site.step].step {
            steps.push(Step::Derive(derive_prefix(f, site.field, &site.arg)));
        }
        let mut walk = Walk { program, sites, text: &mut text, upstream: &mut upstream, walked: BTreeMap::new() };
        walk.steps(&s.input, &steps, crate::optimize::walk::reads(&site.arg));
    }
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    (format!("{h:016x}"), upstream)
}

/// The walk back from a site through the steps and streams its argument depends on.
struct Walk<'a> {
    program: &'a Program,
    sites: &'a [Site],
    text: &'a mut String,
    upstream: &'a mut BTreeSet<String>,
    /// The fields of each stream already walked back from: a stream reached again (through
    /// unions of one stream with itself, say) is walked only for the fields not yet read, so
    /// the walk is linear in the program, not in the number of paths through it.
    walked: BTreeMap<String, BTreeSet<String>>,
}

impl Walk<'_> {
    /// The stream or source `name`, of whose rows the fields `needed` are read.
    fn input(&mut self, name: &str, needed: BTreeSet<String>) {
        if let Some(src) = self.program.sources.iter().find(|s| s.name == name) {
            self.text.push_str(&without_spans(&format!(
                "|source {}:{:?}:{:?}:{:?}:{needed:?}",
                src.name, src.record, src.fit, src.event_time
            )));
            return;
        }
        let Some(s) = self.program.streams.iter().find(|s| s.name == name) else { return };
        let first = !self.walked.contains_key(name);
        let walked = self.walked.entry(name.to_string()).or_default();
        let needed: BTreeSet<String> = needed.difference(walked).cloned().collect();
        if !first && needed.is_empty() {
            self.text.push_str(&format!("|again {name}"));
            return;
        }
        walked.extend(needed.iter().cloned());
        self.text.push_str(&format!("|stream {} <- {}", s.name, s.input));
        let steps: Vec<Step> = s.steps.iter().map(|t| t.step.clone()).collect();
        self.steps(&s.input, &steps, needed);
    }

    /// `steps` (read from `input`), of whose last row the fields `needed` are read.
    fn steps(&mut self, input: &str, steps: &[Step], mut needed: BTreeSet<String>) {
        use crate::optimize::walk::reads;
        for step in steps.iter().rev() {
            let kept = match step {
                Step::Select(fields) => {
                    let kept: Vec<(String, TExpr)> =
                        fields.iter().filter(|(n, _)| needed.contains(n)).cloned().collect();
                    needed = kept.iter().flat_map(|(_, e)| reads(e)).collect();
                    Some(Step::Select(kept))
                }
                Step::Derive(fields) => {
                    let mut kept = Vec::new();
                    for (n, e) in fields.iter().rev() {
                        if needed.remove(n) {
                            needed.extend(reads(e));
                            kept.push((n.clone(), e.clone()));
                        }
                    }
                    kept.reverse();
                    Some(Step::Derive(kept))
                }
                Step::Score { output, inputs, .. } => needed.remove(output).then(|| {
                    needed.extend(inputs.iter().flat_map(|(_, e)| reads(e)));
                    step.clone()
                }),
                Step::Require(..) => None,
                Step::Explode { list, alias } => {
                    needed.remove(alias);
                    needed.extend(reads(list));
                    Some(step.clone())
                }
                Step::Union(others) => {
                    for o in others {
                        self.input(o, needed.clone());
                    }
                    Some(step.clone())
                }
                Step::Join { table, .. } => {
                    let all = self.fields_of(table);
                    self.input(table, all);
                    needed.extend(step.exprs().into_iter().flat_map(reads));
                    Some(step.clone())
                }
                Step::Aggregate { .. } | Step::GroupBy(_) | Step::Where(_) => {
                    needed.extend(step.exprs().into_iter().flat_map(reads));
                    Some(step.clone())
                }
                Step::Window(_) | Step::ProtectFor { .. } => Some(step.clone()),
            };
            let Some(kept) = kept else { continue };
            for e in kept.exprs() {
                let mut calls = Vec::new();
                collect(e, &mut calls);
                for c in calls {
                    if let Some(up) = self.sites.iter().find(|o| o.span == c.span) {
                        self.upstream.insert(up.key.clone());
                    }
                }
            }
            self.text.push('|');
            self.text.push_str(&without_spans(&format!("{kept:?}")));
        }
        self.input(input, needed);
    }

    /// Every field of a stream's or source's rows.
    fn fields_of(&self, name: &str) -> BTreeSet<String> {
        let row = self
            .program
            .sources
            .iter()
            .find(|s| s.name == name)
            .map(|s| &s.row)
            .or_else(|| self.program.streams.iter().find(|s| s.name == name).map(|s| &s.row));
        row.map(|r| r.fields.iter().map(|(n, _)| n.clone()).collect()).unwrap_or_default()
    }
}

/// The fields before field `j` of a `derive` that `arg` reads, directly or through each other,
/// in their order.
fn derive_prefix(fields: &[(String, TExpr)], j: usize, arg: &TExpr) -> Vec<(String, TExpr)> {
    let mut wanted = crate::optimize::walk::reads(arg);
    let mut keep = vec![false; j];
    for i in (0..j).rev() {
        if wanted.contains(&fields[i].0) {
            keep[i] = true;
            wanted.extend(crate::optimize::walk::reads(&fields[i].1));
        }
    }
    fields[..j].iter().zip(keep).filter(|(_, k)| *k).map(|(f, _)| f.clone()).collect()
}

/// `text` with every `Span { … }` of a `Debug` rendering left out.
fn without_spans(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("Span {") {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match rest.find('}') {
            Some(end) => rest = &rest[end + 1..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

/// Binds every site the artifact has parameters for, with a fingerprint that matches, by
/// appending them to the call's arguments. A site without them is `E2028` unless `fitting`
/// (`pipec fit` builds the program before its sites have parameters). `text` is the text of
/// the artifact at `path`, if it exists, and `command` what to run to write it.
pub fn bind(
    program: &mut Program,
    path: &Path,
    text: Option<&str>,
    fitting: bool,
    command: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Site> {
    let mut sites = sites(program, diags);
    if sites.is_empty() {
        return sites;
    }
    let parsed: Option<Artifact> = match text {
        None => None,
        Some(text) => match serde_json::from_str::<Artifact>(text) {
            Ok(a) if a.pipe_fit == FORMAT => Some(a),
            Ok(a) => {
                report(
                    &sites[0],
                    &format!("{} is of format {}, not {FORMAT}", path.display(), a.pipe_fit),
                    command,
                    fitting,
                    diags,
                );
                None
            }
            Err(e) => {
                report(&sites[0], &format!("{} cannot be read: {e}", path.display()), command, fitting, diags);
                None
            }
        },
    };
    let ks: Vec<Option<i64>> = sites.iter().map(|s| min_rows(program, &s.stream)).collect();
    for (site, k) in sites.iter_mut().zip(ks) {
        let found = parsed.as_ref().and_then(|a| a.transforms.get(&site.key));
        match found {
            Some(f) if k.is_some_and(|k| f.rows < k) && !fitting => report(
                site,
                &format!(
                    "`{}` was fitted on {} training values, fewer than its training binding's `k >= {}`",
                    site.key,
                    f.rows,
                    k.unwrap_or_default()
                ),
                command,
                fitting,
                diags,
            ),
            Some(f) if f.fingerprint == site.fingerprint && f.function == site.function => {
                let params = params_args(&f.params, site.span);
                if let Some(call) = find_call(program, site) {
                    if let TExprKind::Call(_, args) = &mut call.kind {
                        args.extend(params);
                        site.bound = true;
                    }
                }
            }
            Some(_) if !fitting => report(
                site,
                &format!("`{}` was fitted for a pipeline that has changed since", site.key),
                command,
                fitting,
                diags,
            ),
            _ if !fitting => {
                let why = match text {
                    None => format!("{} does not exist", path.display()),
                    Some(_) => format!("{} has no parameters for `{}`", path.display(), site.key),
                };
                report(site, &why, command, fitting, diags);
            }
            _ => {}
        }
    }
    sites
}

fn report(site: &Site, why: &str, command: &str, fitting: bool, diags: &mut Vec<Diagnostic>) {
    if fitting {
        return;
    }
    diags.push(
        Diagnostic::new(Code::E2028, site.span, format!("`{}` is not fitted: {why}", site.function))
            .label("needs parameters from the training data")
            .help(format!("run `{command}` to fit it")),
    );
}

/// The call of `site` in the program, to bind.
fn find_call<'p>(program: &'p mut Program, site: &Site) -> Option<&'p mut TExpr> {
    let s = program.streams.iter_mut().find(|s| s.name == site.stream)?;
    let (Step::Select(fields) | Step::Derive(fields)) = &mut s.steps.get_mut(site.step)?.step else { return None };
    let (_, e) = fields.get_mut(site.field)?;
    find_span(e, site.span)
}

fn find_span(e: &mut TExpr, span: Span) -> Option<&mut TExpr> {
    if e.span == span && matches!(&e.kind, TExprKind::Call(Callee::Builtin(f), _) if FITTED.contains(f)) {
        return Some(e);
    }
    e.children_mut().into_iter().find_map(|c| find_span(c, span))
}

/// The extra arguments a bound call carries.
fn params_args(p: &Params, span: Span) -> Vec<TExpr> {
    let num = |v: f64| TExpr { kind: TExprKind::Float(v), ty: Type::Double, span };
    match p {
        Params::Standard { mean, scale, .. } => vec![num(*mean), num(*scale)],
        Params::MinMax { scale, offset, .. } => vec![num(*scale), num(*offset)],
        Params::Vocabulary { values } => vec![TExpr {
            kind: TExprKind::List(
                values.iter().map(|v| TExpr { kind: TExprKind::Str(v.clone()), ty: Type::String, span }).collect(),
            ),
            ty: Type::List(Box::new(Type::String)),
            span,
        }],
        Params::Buckets { edges } => vec![TExpr {
            kind: TExprKind::List(edges.iter().map(|e| num(*e)).collect()),
            ty: Type::List(Box::new(Type::Double)),
            span,
        }],
    }
}

/// The parameters of a `zscore` from the training values' count, mean and population variance,
/// as `StandardScaler` derives them (a variance within rounding of 0 scales by 1).
pub fn standard(n: i64, mean: f64, var: f64) -> Params {
    let eps = f64::EPSILON;
    let nf = n as f64;
    let constant = var <= nf * eps * var + (nf * mean * eps).powi(2);
    let std = var.sqrt();
    Params::Standard { mean, std, scale: if constant || std < 10.0 * eps { 1.0 } else { std } }
}

/// The parameters of a `scale_to_01` from the training range, as `MinMaxScaler` derives them.
pub fn min_max(min: f64, max: f64) -> Params {
    let range = max - min;
    let scale = 1.0 / if range < 10.0 * f64::EPSILON { 1.0 } else { range };
    Params::MinMax { min, max, scale, offset: -min * scale }
}

/// The edges of a `quantile_bucket` from the `n + 1` percentiles: edges within 1e-8 of the one
/// before merged into it, as `KBinsDiscretizer` does.
pub fn buckets(percentiles: &[f64]) -> Params {
    let mut edges: Vec<f64> = Vec::new();
    for &e in percentiles {
        if edges.last().is_none_or(|last| e - last > 1e-8) {
            edges.push(e);
        }
    }
    Params::Buckets { edges }
}

/// The program `pipec fit` runs for `sites` (whose upstream sites are all bound): the given
/// program with every source reading its `fit = …` binding, no sinks, and for each site a
/// stream that computes its statistics — the site's stream cut just before the call, then one
/// `aggregate` over the call's argument — written as JSON into `dir/<index>`. Fails naming the
/// source when one that feeds a site has no training binding.
pub fn analysis(program: &Program, sites: &[&Site], dir: &Path) -> Result<Program, String> {
    let mut p = program.clone();
    p.namespace = Some(format!("{}.fit", p.namespace.as_deref().unwrap_or("pipe")));
    p.sinks.clear();
    p.edges.clear();
    for site in sites {
        for source in upstream_sources(program, &site.stream) {
            let s = p.sources.iter_mut().find(|s| s.name == source).ok_or("an unknown source")?;
            let Some(fit) = s.fit.clone() else {
                return Err(format!(
                    "source `{source}` feeds `{}` ({}), but has no training data: add `fit = files(\"…\", format = …)` to it",
                    site.key, site.function
                ));
            };
            s.batch = Some(fit);
            s.stream = None;
        }
    }
    for (i, site) in sites.iter().enumerate() {
        let s = program.streams.iter().find(|s| s.name == site.stream).ok_or("an unknown stream")?;
        let mut steps: Vec<crate::hir::TypedStep> = s.steps[..site.step].to_vec();
        let mut row = steps.last().map_or_else(|| input_row(program, &s.input), |t| t.row.clone());
        if let Step::Derive(fields) = &s.steps[site.step].step {
            let before = derive_prefix(fields, site.field, &site.arg);
            for (name, e) in &before {
                row.set(name, e.ty.clone());
            }
            steps.push(crate::hir::TypedStep { step: Step::Derive(before), span: site.span, row: row.clone() });
        }
        let span = site.span;
        let a = site.arg.clone();
        let agg =
            |name: &'static str, args: Vec<TExpr>, ty: Type| TExpr { kind: TExprKind::Aggregate(name, args), ty, span };
        let int = |v: i64| TExpr { kind: TExprKind::Int(v), ty: Type::Int, span };
        let mut fields = vec![("n".to_string(), agg("count", vec![a.clone()], Type::Int))];
        let maybe = Type::Double.nullable();
        match site.function {
            "zscore" => {
                fields.push(("mean".into(), agg("avg", vec![a.clone()], maybe.clone())));
                fields.push(("std".into(), agg("stddev", vec![a], maybe)));
            }
            "scale_to_01" => {
                let t = a.ty.non_null().clone().nullable();
                fields.push(("min".into(), agg("min", vec![a.clone()], t.clone())));
                fields.push(("max".into(), agg("max", vec![a], t)));
            }
            "vocabulary" => {
                let top = int(site.count.unwrap_or(1));
                fields.push(("values".into(), agg("top_values", vec![a, top], Type::List(Box::new(Type::String)))));
            }
            _ => {
                let n = int(site.count.unwrap_or(1));
                fields.push(("edges".into(), agg("quantile_edges", vec![a, n], Type::List(Box::new(Type::Double)))));
            }
        }
        let out_row = crate::hir::Row { fields: fields.iter().map(|(n, e)| (n.clone(), e.ty.clone())).collect() };
        steps.push(crate::hir::TypedStep {
            step: Step::Aggregate { min_group: min_rows(program, &site.stream), fields },
            span,
            row: out_row.clone(),
        });
        let name = format!("__fit_{i}");
        p.streams.push(crate::hir::Stream {
            name: name.clone(),
            input: s.input.clone(),
            steps,
            row: out_row,
            bounded: true,
            event_time: false,
            span,
        });
        let path = dir.join(i.to_string()).display().to_string();
        p.sinks.push(crate::hir::Sink {
            name: name.clone(),
            connector: crate::hir::Connector {
                name: "files".into(),
                args: vec![
                    ("dir".into(), crate::hir::ConnectorArg::Text(path)),
                    ("format".into(), crate::hir::ConnectorArg::Word("json".into())),
                ],
                span,
            },
            purpose: None,
            allows: Vec::new(),
            span,
        });
        p.edges.push(crate::hir::Edge { from: name, to: p.sinks.len() - 1, sink_exprs: Vec::new(), span });
    }
    // Only what the statistics read is compiled: other streams (an `expect` step's, with its
    // `drift` not yet profiled) are not part of the analysis.
    let mut needed: BTreeSet<String> = BTreeSet::new();
    for i in 0..sites.len() {
        needed.extend(upstream(&p, &format!("__fit_{i}")));
    }
    p.streams.retain(|s| needed.contains(&s.name));
    // Training records that cannot be read go beside the statistics, not where the pipeline's go.
    let span = sites.first().map(|s| s.span).unwrap_or_default();
    p.sinks.push(crate::hir::Sink {
        name: "rejected->files".into(),
        connector: crate::hir::Connector {
            name: "files".into(),
            args: vec![
                ("dir".into(), crate::hir::ConnectorArg::Text(dir.join("rejected").display().to_string())),
                ("format".into(), crate::hir::ConnectorArg::Word("json".into())),
            ],
            span,
        },
        purpose: None,
        allows: Vec::new(),
        span,
    });
    p.edges.push(crate::hir::Edge { from: "rejected".into(), to: p.sinks.len() - 1, sink_exprs: Vec::new(), span });
    // Every stream the analysis reads is bounded now: it reads the training files.
    for s in &mut p.streams {
        s.bounded = true;
    }
    Ok(p)
}

/// The least number of training rows a site on `stream` is fitted on: the largest `k >= N` of
/// the training bindings upstream (each binding's minimum holds), none unless every one has it.
pub fn min_rows(program: &Program, stream: &str) -> Option<i64> {
    let ks: Option<Vec<i64>> = upstream_sources(program, stream)
        .iter()
        .map(|n| program.sources.iter().find(|s| &s.name == n).and_then(|s| s.fit_min_rows))
        .collect();
    ks.and_then(|ks| ks.into_iter().max())
}

/// The fitted parameters are published (in the artifact, and in every program built from it),
/// so the training data's clearance (`fit = … { allow … }`) must allow what they hold: the
/// privacy analysis runs over each site's analysis program with the clearance on its output.
/// `zscore`'s count, mean and spread combine every training row, so with `k >= N` they are
/// aggregates; `scale_to_01`'s minimum and maximum, `quantile_bucket`'s edges and
/// `vocabulary`'s values are single records' values, so they need the raw form allowed.
pub fn privacy(
    res: &crate::resolve::Resolved,
    program: &Program,
    sites: &[Site],
    taxonomy: &crate::privacy::Taxonomy,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for site in sites {
        let Ok(mut p) = analysis(program, &[site], Path::new("fit")) else { continue };
        p.sinks[0].name = format!("the fitted parameters of `{}`", site.key);
        // Each upstream source's clearance must allow what the parameters hold: a transform
        // over joined sources meets the strictest of them.
        let sources = upstream_sources(program, &site.stream);
        let clearances: Vec<Vec<crate::hir::Allow>> =
            p.sources.iter().filter(|s| sources.contains(&s.name)).map(|s| s.fit_allows.clone()).collect();
        let mut denied: Vec<crate::privacy::flow::Violation> = Vec::new();
        for allows in clearances {
            p.sinks[0].allows = allows;
            let (outcome, _) = crate::privacy::analyze(res, &p, taxonomy);
            denied.extend(outcome.violations.into_iter().filter(|v| v.sink == p.sinks[0].name));
        }
        if denied.is_empty() {
            continue;
        }
        let mut labels: Vec<(&str, crate::privacy::label::Form)> = Vec::new();
        for v in &denied {
            let l = (v.label.category.as_str(), v.label.form);
            if !labels.contains(&l) {
                labels.push(l);
            }
        }
        let what: Vec<String> = labels.iter().map(|(c, f)| format!("`{c}` ({})", f.name())).collect();
        let allow: Vec<String> = labels.iter().map(|(c, f)| format!("allow \"{c}\" as {}", f.name())).collect();
        let k = min_rows(program, &site.stream);
        let help = match (site.function, k) {
            ("zscore", None) => format!(
                "fit on at least N training rows, so its mean and spread are aggregates: `fit = files(…) {{ k >= 50 allow \"{}\" as aggregated }}`; or allow the data: `{}`",
                labels[0].0,
                allow.join(" ")
            ),
            ("zscore", Some(_)) => format!("allow the data in the training binding: `fit = files(…) {{ {} }}`", allow.join(" ")),
            _ => format!(
                "`{}` keeps training values as they are (a minimum, a maximum, an edge, a frequent value): allow them in the training binding, `fit = files(…) {{ {} }}`, or fit on data without the label",
                site.function,
                allow.join(" ")
            ),
        };
        let implicit = denied.iter().all(|v| v.label.implicit);
        let mut d = Diagnostic::new(
            if implicit { Code::P007 } else { Code::P003 },
            site.span,
            format!(
                "the fitted parameters of `{}` would hold {} of the training data, which its clearance does not allow",
                site.key,
                what.join(", ")
            ),
        )
        .label(format!("`{}` is fitted on labeled training data", site.function))
        .help(help);
        if let Some(v) = denied.first() {
            d = d.note(crate::privacy::flow::path_note(res, &v.label));
        }
        out.push(d);
    }
    out
}

/// The row a stream reads from `input` (a source or another stream).
fn input_row(program: &Program, input: &str) -> crate::hir::Row {
    program
        .sources
        .iter()
        .find(|s| s.name == input)
        .map(|s| s.row.clone())
        .or_else(|| program.streams.iter().find(|s| s.name == input).map(|s| s.row.clone()))
        .unwrap_or_default()
}

/// The sources whose records reach stream `name`.
pub fn upstream_sources(program: &Program, name: &str) -> BTreeSet<String> {
    let all = upstream(program, name);
    program.sources.iter().filter(|s| all.contains(&s.name)).map(|s| s.name.clone()).collect()
}

/// The streams and sources whose records reach stream `name`, and `name` itself.
fn upstream(program: &Program, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        let Some(s) = program.streams.iter().find(|s| s.name == n) else { continue };
        todo.push(s.input.clone());
        for t in &s.steps {
            match &t.step {
                Step::Union(others) => todo.extend(others.iter().cloned()),
                Step::Join { table, .. } => todo.push(table.clone()),
                _ => {}
            }
        }
    }
    seen
}

/// A site's parameters from its analysis row (the JSON the analysis wrote for it).
pub fn params_from(site: &Site, row: &serde_json::Value) -> Result<(i64, Params), String> {
    let n = row["n"].as_i64().unwrap_or(0);
    if n == 0 {
        return Err(format!("`{}` ({}) has no values in the training data", site.key, site.function));
    }
    let num = |k: &str| row[k].as_f64().ok_or_else(|| format!("`{}`: no `{k}` in the analysis' output", site.key));
    let params = match site.function {
        "zscore" => {
            let std = num("std")?;
            standard(n, num("mean")?, std * std)
        }
        "scale_to_01" => min_max(num("min")?, num("max")?),
        "vocabulary" => Params::Vocabulary {
            values: row["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        },
        _ => buckets(
            &row["edges"].as_array().into_iter().flatten().filter_map(serde_json::Value::as_f64).collect::<Vec<_>>(),
        ),
    };
    Ok((n, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_left_out_of_fingerprints() {
        let a =
            "Call(Builtin(\"zscore\"), [TExpr { kind: Var(\"x\"), span: Span { file: FileId(0), start: 3, end: 4 } }])";
        let b = "Call(Builtin(\"zscore\"), [TExpr { kind: Var(\"x\"), span: Span { file: FileId(0), start: 30, end: 31 } }])";
        assert_eq!(without_spans(a), without_spans(b));
        assert!(!without_spans(a).contains("start"));
    }

    #[test]
    fn parameters_follow_scikit_learn() {
        assert_eq!(standard(3, 5.0, 0.0), Params::Standard { mean: 5.0, std: 0.0, scale: 1.0 });
        assert_eq!(standard(2, 1.0, 4.0), Params::Standard { mean: 1.0, std: 2.0, scale: 2.0 });
        assert_eq!(min_max(2.0, 2.0), Params::MinMax { min: 2.0, max: 2.0, scale: 1.0, offset: -2.0 });
        assert_eq!(min_max(0.0, 4.0), Params::MinMax { min: 0.0, max: 4.0, scale: 0.25, offset: -0.0 });
        assert_eq!(buckets(&[0.0, 0.0, 1.0, 1.0 + 1e-9, 2.0]), Params::Buckets { edges: vec![0.0, 1.0, 2.0] });
    }
}
