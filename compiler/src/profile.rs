//! Baseline profiles for data validation (TensorFlow Data Validation's statistics): `pipec
//! profile` reads every source's training data (its `fit` binding, else its `batch` binding)
//! through the program's own decoders and writes `NAME.profile.json` next to the program — per
//! field the count, the nulls, and the distribution (ten quantile buckets of a number, the most
//! frequent values of a string). `drift(x)` in an `expect` step compares a group with it: the
//! baseline is bound at check time as constants, like a fitted transform's parameters
//! (`E2029` when there is none).
//!
//! A profile is published data: a field with privacy labels keeps its distribution only when
//! the training binding's clearance allows the labels as raw (a quantile or a frequent value is
//! one record's value), and its counts only when it allows them as aggregated with `k >= N`
//! met (or as raw); otherwise the field says why it was withheld.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::diagnostics::{Code, Diagnostic};
use crate::hir::{Program, Step, TExpr, TExprKind};
use crate::privacy::label::Form;
use crate::types::Type;

/// The version of the profile's format.
pub const FORMAT: u32 = 1;
/// Buckets of a number's distribution (its deciles).
pub const BUCKETS: usize = 10;
/// Values of a string's distribution kept by name; the rest are counted together.
pub const TOP: usize = 100;

/// `pipeline.pipe` → `pipeline.profile.json`.
pub fn artifact_path(root: &Path) -> PathBuf {
    root.with_extension("profile.json")
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub pipe_profile: u32,
    pub program: String,
    pub sources: BTreeMap<String, SourceProfile>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceProfile {
    /// Which binding was read: `fit` or `batch`.
    pub binding: String,
    pub rows: u64,
    /// Records that could not be read (they went to `rejected`, and are not in the profile).
    pub rejected: u64,
    pub fields: BTreeMap<String, FieldProfile>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FieldProfile {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nulls: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub null_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbers: Option<Numbers>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strings: Option<Strings>,
    /// Why statistics of a labeled field were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld: Option<String>,
}

/// A number's distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Numbers {
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// The percentiles 0, 10, …, 100 (linear interpolation, NumPy's default).
    pub quantiles: Vec<f64>,
    /// The bucket edges: the minimum, the distinct deciles above it, and the first number
    /// above the maximum; a value's bucket counts the edges at or below it (bucket 0 is below
    /// the training range, the last one above it).
    pub edges: Vec<f64>,
    /// The share of values in each bucket (one more than `edges`).
    pub shares: Vec<f64>,
}

/// A string's distribution.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Strings {
    pub distinct: u64,
    /// The most frequent values with their counts, the most frequent first (ties by value).
    pub top: Vec<(String, u64)>,
    /// Values outside `top`.
    pub other: u64,
}

/// The statistics of one field over `values` (the JSON values the profile run wrote).
pub fn field(ty: &Type, values: &[&serde_json::Value]) -> FieldProfile {
    let nulls = values.iter().filter(|v| v.is_null()).count() as u64;
    let count = values.len() as u64 - nulls;
    let mut out = FieldProfile {
        ty: ty.to_string(),
        count: Some(count),
        nulls: Some(nulls),
        null_rate: (!values.is_empty()).then(|| nulls as f64 / values.len() as f64),
        ..FieldProfile::default()
    };
    match ty.non_null() {
        Type::Int | Type::Double => {
            let mut v: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).filter(|x| !x.is_nan()).collect();
            if v.is_empty() {
                return out;
            }
            v.sort_unstable_by(f64::total_cmp);
            let quantiles: Vec<f64> = (0..=BUCKETS).map(|i| percentile(&v, i as f64 / BUCKETS as f64)).collect();
            // The minimum, the distinct deciles above it, and the first number above the maximum:
            // a value outside the training range lands in a bucket of its own (share 0 here).
            let mut edges: Vec<f64> = vec![v[0]];
            for q in &quantiles[1..BUCKETS] {
                if edges.last().is_some_and(|e| q > e) {
                    edges.push(*q);
                }
            }
            edges.push(v[v.len() - 1].next_up());
            let mut counts = vec![0u64; edges.len() + 1];
            for x in &v {
                counts[edges.partition_point(|e| e <= x)] += 1;
            }
            let n = v.len() as f64;
            out.numbers = Some(Numbers {
                min: v[0],
                max: v[v.len() - 1],
                mean: v.iter().sum::<f64>() / n,
                quantiles,
                edges,
                shares: counts.iter().map(|c| *c as f64 / n).collect(),
            });
        }
        Type::String | Type::Enum(..) | Type::Bool => {
            let mut counts: HashMap<String, u64> = HashMap::new();
            for v in values {
                let key = match v {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Bool(b) => b.to_string(),
                    _ => continue,
                };
                *counts.entry(key).or_default() += 1;
            }
            let mut all: Vec<(String, u64)> = counts.into_iter().collect();
            all.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let distinct = all.len() as u64;
            let top: Vec<(String, u64)> = all.iter().take(TOP).cloned().collect();
            let other = all.iter().skip(TOP).map(|(_, n)| n).sum();
            out.strings = Some(Strings { distinct, top, other });
        }
        _ => {}
    }
    out
}

/// The `q`-quantile of the sorted, non-empty `v`, interpolated linearly (NumPy's default).
fn percentile(v: &[f64], q: f64) -> f64 {
    let h = (v.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (h - lo as f64)
}

/// Whether a field's profile is a statistic the profiler keeps: scalars, not lists, maps or
/// structs.
pub fn profiled(ty: &Type) -> bool {
    matches!(ty.non_null(), Type::Int | Type::Double | Type::String | Type::Enum(..) | Type::Bool | Type::Timestamp)
}

/// Leaves out what the training binding's clearance does not allow of a field with `labels`
/// (category, form): the distribution unless every label is allowed as raw; the counts unless
/// every label is allowed as aggregated and the profile has at least `min_rows` rows (`k >= N`).
pub fn withhold(
    f: &mut FieldProfile,
    labels: &[(String, Form)],
    allows: &[crate::hir::Allow],
    min_rows: Option<i64>,
    rows: u64,
) {
    let allowed = |form: Form| {
        labels.iter().all(|(category, _)| {
            allows.iter().any(|a| {
                crate::privacy::taxonomy::covers(&a.category, category)
                    && Form::parse(&a.form).is_some_and(|f| form >= f)
            })
        })
    };
    if labels.is_empty() || allowed(Form::Raw) {
        return;
    }
    let names: Vec<String> = labels.iter().map(|(c, _)| format!("`{c}`")).collect();
    f.numbers = None;
    f.strings = None;
    let counts_ok = allowed(Form::Aggregated) && min_rows.is_some_and(|k| rows >= k as u64);
    if counts_ok {
        f.withheld = Some(format!(
            "labeled {}: the training binding's clearance does not allow its values (raw), so its distribution is left out",
            names.join(", ")
        ));
    } else {
        (f.count, f.nulls, f.null_rate) = (None, None, None);
        f.withheld = Some(format!(
            "labeled {}: the training binding's clearance allows neither its values (raw) nor aggregates of at least `k >= N` rows",
            names.join(", ")
        ));
    }
}

/// Binds every `drift(field)` of the program to the field's baseline in the profile at `path`
/// (`text`, when it exists), as two extra list arguments; `E2029` where there is none, unless
/// `profiling` (`pipec profile` builds the program before the profile exists).
pub fn bind(
    program: &mut Program,
    path: &Path,
    text: Option<&str>,
    profiling: bool,
    command: &str,
    diags: &mut Vec<Diagnostic>,
) {
    let parsed: Result<Option<Profile>, String> = match text {
        None => Ok(None),
        Some(t) => match serde_json::from_str::<Profile>(t) {
            Ok(p) if p.pipe_profile == FORMAT => Ok(Some(p)),
            Ok(p) => Err(format!("{} is of format {}, not {FORMAT}", path.display(), p.pipe_profile)),
            Err(e) => Err(format!("{} cannot be read: {e}", path.display())),
        },
    };
    let names: Vec<String> = program.streams.iter().map(|s| s.name.clone()).collect();
    for name in names {
        // Where each field a `drift` reads comes from, per step (computed before the program
        // is changed).
        let origins: Vec<BTreeMap<String, Origin>> = program
            .streams
            .iter()
            .find(|s| s.name == name)
            .map(|s| {
                s.steps
                    .iter()
                    .enumerate()
                    .map(|(k, st)| {
                        let mut calls = Vec::new();
                        if let Step::Aggregate { fields, .. } = &st.step {
                            for (_, e) in fields {
                                drift_args(e, &mut calls);
                            }
                        }
                        calls.into_iter().map(|f| (f.clone(), origin(program, &name, k, &f))).collect()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let Some(stream) = program.streams.iter_mut().find(|s| s.name == name) else { continue };
        for (k, step) in stream.steps.iter_mut().enumerate() {
            let Step::Aggregate { fields, .. } = &mut step.step else { continue };
            for (_, e) in fields.iter_mut() {
                let mut calls = Vec::new();
                drift_calls(e, &mut calls);
                for call in calls {
                    let TExprKind::Aggregate(_, args) = &mut call.kind else { continue };
                    if args.len() != 1 {
                        continue;
                    }
                    let at = match &args[0].kind {
                        TExprKind::Var(f) => origins
                            .get(k)
                            .and_then(|m| m.get(f))
                            .cloned()
                            .unwrap_or_else(|| Err(format!("`{f}` is not a field of a source"))),
                        _ => Err("its argument is not a field of the source".to_string()),
                    };
                    let why = match at.and_then(|(source, field)| baseline(&parsed, &source, &field, &args[0])) {
                        Ok((keys, shares)) => {
                            args.push(keys);
                            args.push(shares);
                            continue;
                        }
                        Err(why) => why,
                    };
                    if profiling {
                        continue;
                    }
                    let missing = matches!(parsed, Ok(None));
                    diags.push(
                        Diagnostic::new(Code::E2029, call.span, format!("`drift` has no baseline: {why}"))
                            .label("compared with the baseline profile")
                            .help(if missing || why.contains("no source") {
                                format!("run `{command}` to write the baseline")
                            } else {
                                format!("drift compares a field of a source with its profile; run `{command}` after changing the sources")
                            }),
                    );
                }
            }
        }
    }
}

/// The `drift` calls in `e`.
fn drift_calls<'e>(e: &'e mut TExpr, out: &mut Vec<&'e mut TExpr>) {
    if matches!(&e.kind, TExprKind::Aggregate("drift", _)) {
        out.push(e);
        return;
    }
    match &mut e.kind {
        TExprKind::Field(b, _) | TExprKind::Unary(_, b) => drift_calls(b, out),
        TExprKind::Index(a, b) | TExprKind::Binary(_, a, b) => {
            drift_calls(a, out);
            drift_calls(b, out);
        }
        TExprKind::If(a, b, c) => {
            drift_calls(a, out);
            drift_calls(b, out);
            drift_calls(c, out);
        }
        TExprKind::Call(_, args) | TExprKind::List(args) => args.iter_mut().for_each(|a| drift_calls(a, out)),
        _ => {}
    }
}

/// The source and field a `drift` argument is, or why it is none.
type Origin = Result<(String, String), String>;

/// The names of the fields `drift` calls read in `e`.
fn drift_args(e: &TExpr, out: &mut Vec<String>) {
    match &e.kind {
        TExprKind::Aggregate("drift", args) => {
            if let Some(TExprKind::Var(f)) = args.first().map(|a| &a.kind) {
                out.push(f.clone());
            }
        }
        TExprKind::Field(b, _) | TExprKind::Unary(_, b) => drift_args(b, out),
        TExprKind::Index(a, b) | TExprKind::Binary(_, a, b) => {
            drift_args(a, out);
            drift_args(b, out);
        }
        TExprKind::If(a, b, c) => {
            drift_args(a, out);
            drift_args(b, out);
            drift_args(c, out);
        }
        TExprKind::Call(_, args) | TExprKind::List(args) => args.iter().for_each(|a| drift_args(a, out)),
        _ => {}
    }
}

/// The source whose field `field` reaches step `k` of stream `stream` unchanged: passed through
/// `select` and `derive` under its own name, through `where`, `require`, `protect for`. A field
/// computed, renamed, joined or aggregated on the way has no baseline.
pub fn origin(program: &Program, stream: &str, k: usize, field: &str) -> Origin {
    let Some(s) = program.streams.iter().find(|s| s.name == stream) else {
        return match program.sources.iter().find(|s| s.name == stream) {
            Some(src) if src.row.get(field).is_some() => Ok((src.name.clone(), field.to_string())),
            _ => Err(format!("`{field}` is not a field of a source")),
        };
    };
    let computed = || Err(format!("`{field}` is computed in stream `{stream}`, not read from a source as it is"));
    for step in s.steps[..k.min(s.steps.len())].iter().rev() {
        match &step.step {
            Step::Select(fields) | Step::Derive(fields) => match fields.iter().rev().find(|(n, _)| n == field) {
                Some((_, e)) if matches!(&e.kind, TExprKind::Var(v) if v == field) => {}
                Some(_) => return computed(),
                None if matches!(step.step, Step::Select(_)) => return computed(),
                None => {}
            },
            Step::Where(_) | Step::Require(..) | Step::ProtectFor { .. } | Step::Window(_) | Step::GroupBy(_) => {}
            Step::Explode { alias, .. } if alias != field => {}
            Step::Score { output, .. } if output != field => {}
            _ => {
                return Err(format!(
                    "`drift` follows `{field}` back through `select`, `derive` and `where` only, and stream `{stream}` has a {} before it",
                    step_name(&step.step)
                ))
            }
        }
    }
    origin(program, &s.input, usize::MAX, field)
}

fn step_name(s: &Step) -> &'static str {
    match s {
        Step::Join { .. } => "join",
        Step::Union(_) => "union",
        Step::Aggregate { .. } => "aggregate",
        Step::Explode { .. } => "`explode`",
        _ => "step",
    }
}

/// The baseline of `field` of `source` as the two list arguments of `drift` called on `arg`.
fn baseline(
    parsed: &Result<Option<Profile>, String>,
    source: &str,
    field: &str,
    arg: &TExpr,
) -> Result<(TExpr, TExpr), String> {
    let profile = match parsed {
        Ok(Some(p)) => p,
        Ok(None) => return Err("there is no baseline profile".into()),
        Err(e) => return Err(e.clone()),
    };
    let Some(f) = profile.sources.get(source).and_then(|p| p.fields.get(field)) else {
        return Err(format!("the profile has no field `{field}` of source `{source}`"));
    };
    let span = arg.span;
    let float = |x: f64| TExpr { kind: TExprKind::Float(x), ty: Type::Double, span };
    let list = |items: Vec<TExpr>, ty: Type| TExpr { kind: TExprKind::List(items), ty: Type::List(Box::new(ty)), span };
    match (arg.ty.non_null(), &f.numbers, &f.strings) {
        (Type::Int | Type::Double, Some(n), _) => Ok((
            list(n.edges.iter().map(|e| float(*e)).collect(), Type::Double),
            list(n.shares.iter().map(|s| float(*s)).collect(), Type::Double),
        )),
        (Type::String, _, Some(s)) if s.top.is_empty() => {
            Err(format!("the profile of `{source}.{field}` has no values (every one was null)"))
        }
        (Type::String, _, Some(s)) => {
            let total = (s.top.iter().map(|(_, n)| n).sum::<u64>() + s.other).max(1) as f64;
            let values =
                s.top.iter().map(|(v, _)| TExpr { kind: TExprKind::Str(v.clone()), ty: Type::String, span }).collect();
            let mut shares: Vec<TExpr> = s.top.iter().map(|(_, n)| float(*n as f64 / total)).collect();
            shares.push(float(s.other as f64 / total));
            Ok((list(values, Type::String), list(shares, Type::Double)))
        }
        _ => Err(match &f.withheld {
            Some(w) => format!("the profile of `{source}.{field}` has no distribution ({w})"),
            None => format!("the profile of `{source}.{field}` has no distribution of a {}", arg.ty.non_null()),
        }),
    }
}
