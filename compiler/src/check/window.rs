//! Windows and aggregation: the window calls (`tumbling`, `sliding`, `session`) with their
//! durations, boundedness (an unbounded stream is aggregated only in a window), and the
//! `aggregate` step, whose output row is the keys, the window bounds and the aggregates.

use super::expr::{AggMode, Scope, VarKind};
use super::stream::State;
use super::Checker;
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::hir::TExprKind;
use crate::hir::{Row, Step, TExpr, WindowKind};
use crate::source::Span;
use crate::syntax::pipe_ast::{ExpectCheck, Expr, ExprKind, FieldDef};
use crate::types::Type;

/// What an aggregation step computes: the fields of `aggregate { … }`, the arguments of
/// `metrics { … }`, or the checks of `expect { … }`.
pub(super) enum Body<'a> {
    Fields(&'a [FieldDef]),
    Metrics(&'a [FieldDef]),
    Expect(&'a [ExpectCheck]),
}

/// The field of an `expect` step's row that holds check `i`'s verdict.
pub(super) fn check_name(c: &ExpectCheck, i: usize) -> String {
    c.name.as_ref().map_or_else(|| format!("check_{}", i + 1), |n| n.name.clone())
}

/// Whether `e` calls an aggregate (a check of the group) rather than testing each row.
fn has_aggregate(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Call(name, args) => {
            crate::builtins::aggregate(&name.name).is_some() || args.iter().any(|a| has_aggregate(&a.value))
        }
        ExprKind::Field(b, _) => has_aggregate(b),
        ExprKind::Index(a, b) | ExprKind::Binary(_, a, b) => has_aggregate(a) || has_aggregate(b),
        ExprKind::Unary(_, a) => has_aggregate(a),
        ExprKind::If(a, b, c) => has_aggregate(a) || has_aggregate(b) || has_aggregate(c),
        ExprKind::List(items) => items.iter().any(has_aggregate),
        _ => false,
    }
}

/// `sum(!(COND ?? true)) == 0`: a row check holds when no row breaks it. A condition that is
/// null breaks nothing; an ordering comparison with a null side is false, as everywhere, so
/// `x == null || x >= 0` is how a check lets a missing value pass (`null_rate` counts those).
fn every_row(cond: TExpr) -> TExpr {
    use crate::syntax::pipe_ast::{BinOp, UnOp};
    let span = cond.span;
    let t = |kind, ty| TExpr { kind, ty, span };
    let held = if cond.ty.is_nullable() {
        t(
            TExprKind::Binary(BinOp::Coalesce, Box::new(cond), Box::new(t(TExprKind::Bool(true), Type::Bool))),
            Type::Bool,
        )
    } else {
        cond
    };
    let broken = t(TExprKind::Unary(UnOp::Not, Box::new(held)), Type::Bool);
    let n = t(TExprKind::Aggregate("sum", vec![broken]), Type::Int);
    t(TExprKind::Binary(BinOp::Eq, Box::new(n), Box::new(t(TExprKind::Int(0), Type::Int))), Type::Bool)
}

impl Checker<'_> {
    pub(super) fn boundedness(&mut self, st: &State, span: Span, what: &str) {
        if !st.bounded && st.window.is_none() && !st.quiet {
            self.diags.push(
                Diagnostic::new(Code::E2005, span, format!("`{what}` on an unbounded stream needs a window"))
                    .label("this stream never ends, so its groups would never be complete")
                    .help("add a window first: `| window tumbling(1d) | group by …`"),
            );
        }
    }

    pub(super) fn aggregate(&mut self, st: &mut State, span: Span, min_group: Option<&Expr>, body: Body<'_>) -> Step {
        let keys = st.group.take().map(|(k, _)| k).unwrap_or_default();
        if keys.is_empty() {
            let step = match body {
                Body::Fields(_) => "aggregate",
                Body::Metrics(_) => "metrics",
                Body::Expect(_) => "expect",
            };
            self.boundedness(st, span, step);
        }
        let window = st.window.take();
        let k = min_group.and_then(|e| match e.kind {
            ExprKind::Int(n) if n >= 2 => Some(n),
            ExprKind::Error => None,
            _ => {
                self.diags.push(
                    Diagnostic::new(Code::E2018, e.span, "the minimum group size must be a whole number of at least 2")
                        .label("not a positive integer literal")
                        .help("write `aggregate(k >= 10) { … }`"),
                );
                None
            }
        });
        let rolling = matches!(window, Some((WindowKind::Rolling { .. }, _)));
        if let (true, Body::Expect(_), Some((_, w))) = (rolling, &body, &window) {
            self.diags.push(
                Diagnostic::new(Code::E2019, *w, "`expect` after a rolling window")
                    .label("every row of a rolling window is one record's")
                    .secondary(span, "the checks")
                    .help("check the whole input (no window), or each tumbling or sliding window"),
            );
        }
        if let (true, Body::Metrics(_), Some((_, w))) = (rolling, &body, &window) {
            self.diags.push(
                Diagnostic::new(Code::E2027, span, "`metrics` over a rolling window")
                    .label("every row of a rolling window is one record's")
                    .secondary(*w, "the rolling window")
                    .help("compute metrics per group, or per tumbling or sliding window"),
            );
        }
        if let (true, Some(e)) = (rolling, min_group) {
            self.diags.push(
                Diagnostic::new(
                    Code::E2019,
                    e.span,
                    "a rolling window emits every record: `k >= N` has no group to hold back",
                )
                .label("every row is one record's")
                .help("aggregate with `k >= N` over a tumbling or sliding window instead"),
            );
        }
        let mut outer: Vec<(String, Type)> = keys.iter().map(|(n, e)| (n.clone(), e.ty.clone())).collect();
        if rolling {
            // The record's own fields come out with it; a key named like one of them is it.
            let mut with_record = st.row.fields.clone();
            with_record.extend(outer.into_iter().filter(|(n, _)| st.row.get(n).is_none()));
            outer = with_record;
        } else if window.is_some() {
            outer.push(("window_start".into(), Type::Timestamp));
            outer.push(("window_end".into(), Type::Timestamp));
        }
        let input = st.row.fields.clone();
        let input_narrowed = st.narrowed.clone();
        let scope = Scope {
            vars: &outer,
            kind: VarKind::Field,
            narrowed: Vec::new(),
            agg: AggMode::Outer { input: &input, input_narrowed: &input_narrowed, event_time: st.event_time },
            quiet: st.quiet,
        };
        let mut typed: Vec<(String, TExpr)> = Vec::new();
        let mut row = Row { fields: outer.clone() };
        match body {
            Body::Fields(fields) => {
                for f in fields {
                    let Some(name) = self.field_name(f) else {
                        continue;
                    };
                    let e = self.cx(self.root).expr(&scope, &f.value);
                    self.typed_field(&mut row, &name, &e, f);
                    typed.push((name, e));
                }
            }
            Body::Metrics(args) => {
                let inner = Scope {
                    agg: AggMode::Inner,
                    narrowed: input_narrowed.clone(),
                    ..Scope::new(&input, VarKind::Field)
                };
                let inner = Scope { quiet: st.quiet, ..inner };
                for (name, e) in self.metric_fields(&inner, args, span) {
                    if row.get(&name).is_some() {
                        self.diags.push(
                            Diagnostic::new(Code::E1007, span, format!("field `{name}` is defined twice"))
                                .label(format!("`metrics` writes `{name}`, which is also a group key"))
                                .help("rename the key: `group by g = …`"),
                        );
                        continue;
                    }
                    row.fields.push((name.clone(), e.ty.clone()));
                    typed.push((name, e));
                }
            }
            Body::Expect(checks) => {
                let inner = Scope {
                    agg: AggMode::Inner,
                    narrowed: input_narrowed.clone(),
                    ..Scope::new(&input, VarKind::Field)
                };
                let inner = Scope { quiet: st.quiet, ..inner };
                for (i, c) in checks.iter().enumerate() {
                    let name = check_name(c, i);
                    if row.get(&name).is_some() {
                        let label =
                            if c.name.is_some() { "a second field of this name" } else { "this check's default name" };
                        self.diags.push(
                            Diagnostic::new(Code::E1007, c.span, format!("field `{name}` is defined twice"))
                                .label(label)
                                .help("name the check: `income_known = null_rate(income) < 0.01`"),
                        );
                        continue;
                    }
                    let e = if has_aggregate(&c.cond) {
                        self.cx(self.root).expr(&scope, &c.cond)
                    } else {
                        self.cx(self.root).expr(&inner, &c.cond)
                    };
                    if e.ty.non_null() != &Type::Bool {
                        if e.ty != Type::Error {
                            self.diags.push(
                                Diagnostic::new(Code::E2001, c.cond.span, format!("an `expect` check needs a `bool`, found `{}`", e.ty))
                                    .label(format!("this is `{}`", e.ty))
                                    .help("write a condition on each row (`amount >= 0`) or on the whole input (`null_rate(income) < 0.01`, `distinct(state) <= 60`)"),
                            );
                        }
                        continue;
                    }
                    let e = if has_aggregate(&c.cond) { e } else { every_row(e) };
                    // A check that cannot be evaluated (null) did not hold.
                    let e = if e.ty.is_nullable() {
                        let span = e.span;
                        let no = TExpr { kind: TExprKind::Bool(false), ty: Type::Bool, span };
                        TExpr {
                            kind: TExprKind::Binary(
                                crate::syntax::pipe_ast::BinOp::Coalesce,
                                Box::new(e),
                                Box::new(no),
                            ),
                            ty: Type::Bool,
                            span,
                        }
                    } else {
                        e
                    };
                    row.fields.push((name.clone(), Type::Bool));
                    typed.push((name, e));
                }
            }
        }
        st.row = row;
        if !rolling {
            st.narrowed.clear();
        }
        st.event_time = window.is_some();
        Step::Aggregate { min_group: if rolling { None } else { k }, fields: typed }
    }

    pub(super) fn window(&mut self, call: &Expr) -> Option<WindowKind> {
        let ExprKind::Call(name, args) = &call.kind else {
            self.diags.push(
                Diagnostic::new(Code::E2019, call.span, "expected a window such as `tumbling(1d)`")
                    .label("not a window")
                    .help("windows are `tumbling(size)`, `sliding(size, every)`, `session(gap)` and `rolling(size)`"),
            );
            return None;
        };
        let params: &[&str] =
            match name.name.as_str() {
                "tumbling" => &["size", "offset"],
                "sliding" => &["size", "every", "offset"],
                "session" => &["gap"],
                "rolling" => &["size"],
                other => {
                    self.diags.push(
                    Diagnostic::new(Code::E2019, name.span, format!("unknown window `{other}`"))
                        .label("not a window")
                        .help(did_you_mean(other, ["tumbling", "sliding", "session", "rolling"]).unwrap_or_else(|| {
                            "windows are `tumbling(size)`, `sliding(size, every)`, `session(gap)` and `rolling(size)`"
                                .into()
                        })),
                );
                    return None;
                }
            };
        let mut values: Vec<Option<i64>> = vec![None; params.len()];
        let mut position = 0;
        for a in args {
            let slot = match &a.name {
                Some(n) => params.iter().position(|p| *p == n.name),
                None => {
                    position += 1;
                    (position <= params.len()).then_some(position - 1)
                }
            };
            let Some(slot) = slot else {
                self.diags.push(
                    Diagnostic::new(Code::E2019, a.value.span, format!("`{}` takes {}", name.name, params.join(", ")))
                        .label("unexpected argument")
                        .help(format!("write `{}({})`", name.name, params.join(", "))),
                );
                return None;
            };
            values[slot] = self.duration_const(&a.value, &format!("the window's {}", params[slot]));
        }
        let required = if name.name == "sliding" { 2 } else { 1 };
        if values[..required].iter().any(Option::is_none) {
            if args.len() < required {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2019,
                        call.span,
                        format!("`{}` needs {}", name.name, params[..required].join(" and ")),
                    )
                    .label("missing argument")
                    .help(format!("write `{}({})`", name.name, params.join(", "))),
                );
            }
            return None;
        }
        let size = values[0].unwrap_or(1);
        let kind = match name.name.as_str() {
            "tumbling" => WindowKind::Tumbling { size, offset: values[1].unwrap_or(0) },
            "sliding" => {
                let every = values[1].unwrap_or(1);
                if every > size {
                    self.diags.push(
                        Diagnostic::new(Code::E2019, call.span, "a sliding window cannot slide by more than its size")
                            .label("`every` is longer than `size`")
                            .help("records between windows would belong to none; use `every` ≤ `size`"),
                    );
                }
                WindowKind::Sliding { size, every, offset: values[2].unwrap_or(0) }
            }
            "rolling" => WindowKind::Rolling { size },
            _ => WindowKind::Session { gap: size },
        };
        if let WindowKind::Tumbling { size, offset } | WindowKind::Sliding { size, offset, .. } = kind {
            if offset >= size {
                self.diags.push(
                    Diagnostic::new(Code::E2019, call.span, "a window's offset must be shorter than its size")
                        .label("offset too long")
                        .help("an offset shifts windows within one size; use an offset below the size"),
                );
            }
        }
        Some(kind)
    }
}

impl Checker<'_> {
    /// The fields of `metrics { score = S, label = L, threshold = T, bins = B }`, each an
    /// aggregate over the group's rows: `count`, `positives`, `mean_prediction`, `mean_label`,
    /// `auc`, `log_loss`, `accuracy` (at `T`, 0.5 unless given) and the calibration curve
    /// over `B` quantile bins of the score (10 unless given). `S` is a number and `L` a bool,
    /// neither nullable, so every metric is over the same rows. `scope` is the input row.
    fn metric_fields(&mut self, scope: &Scope<'_>, args: &[FieldDef], span: Span) -> Vec<(String, TExpr)> {
        const PARAMS: &[&str] = &["score", "label", "threshold", "bins"];
        let mut given: [Option<&FieldDef>; 4] = [None; 4];
        let mut ok = true;
        for f in args {
            let Some(name) = &f.name else {
                self.diags.push(
                    Diagnostic::new(Code::E2027, f.span, "a `metrics` argument needs its name")
                        .label("unnamed")
                        .help("write `score = p, label = defaulted`, and optionally `threshold = 0.5`, `bins = 10`"),
                );
                ok = false;
                continue;
            };
            match PARAMS.iter().position(|p| *p == name.name) {
                Some(i) if given[i].is_some() => {
                    self.diags.push(
                        Diagnostic::new(Code::E2027, name.span, format!("`{}` is given twice", name.name))
                            .label("second time")
                            .help("give each argument once"),
                    );
                    ok = false;
                }
                Some(i) => given[i] = Some(f),
                None => {
                    self.diags.push(
                        Diagnostic::new(Code::E2027, name.span, format!("`metrics` has no argument `{}`", name.name))
                            .label("unknown argument")
                            .help(did_you_mean(&name.name, PARAMS.iter().copied()).unwrap_or_else(|| {
                                "the arguments are `score`, `label`, `threshold` and `bins`".into()
                            })),
                    );
                    ok = false;
                }
            }
        }
        let [score, label, threshold, bins] = given;
        let operand = |this: &mut Self, f: Option<&FieldDef>, what: &str, want: &Type, example: &str| {
            let Some(f) = f else {
                this.diags.push(
                    Diagnostic::new(Code::E2027, span, format!("`metrics` needs a `{what}`"))
                        .label(format!("no `{what}`"))
                        .help(format!("add `{what} = {example}`")),
                );
                return None;
            };
            let e = this.cx(this.root).expr(scope, &f.value);
            if e.ty.is_error() {
                return None;
            }
            let fits = if *want == Type::Bool { e.ty.non_null() == &Type::Bool } else { e.ty.non_null().is_numeric() };
            if !fits {
                this.diags.push(
                    Diagnostic::new(Code::E2027, e.span, format!("the {what} is a `{want}`, but this is `{}`", e.ty))
                        .label(format!("this is `{}`", e.ty))
                        .help(format!("give a `{want}`, e.g. `{what} = {example}`")),
                );
                return None;
            }
            if e.ty.is_nullable() {
                this.diags.push(
                    Diagnostic::new(
                        Code::E2027,
                        e.span,
                        format!("the {what} may be null: the metrics would count different rows"),
                    )
                    .label(format!("this is `{}`", e.ty))
                    .help(format!(
                        "drop those rows first with `| where {} != null`, or give a default with `??`",
                        this.res.sources.text(e.span)
                    )),
                );
                return None;
            }
            Some(e)
        };
        let s = operand(self, score, "score", &Type::Double, "p_default");
        let l = operand(self, label, "label", &Type::Bool, "loan_status == \"Charged Off\"");
        let literal = |this: &mut Self, f: Option<&FieldDef>, what: &str, default: f64, fits: fn(f64) -> bool| {
            let Some(f) = f else { return Some(default) };
            let v = match f.value.kind {
                ExprKind::Float(v) => Some(v),
                ExprKind::Int(v) => Some(v as f64),
                _ => None,
            };
            match v.filter(|v| fits(*v)) {
                Some(v) => Some(v),
                None => {
                    let (must, label, help) = if what == "threshold" {
                        ("a number written in the program", "not a number literal", "write e.g. `threshold = 0.5`")
                    } else {
                        ("a whole number from 1 to 1000 written in the program", "not one", "write e.g. `bins = 10`")
                    };
                    this.diags.push(
                        Diagnostic::new(Code::E2027, f.value.span, format!("the {what} must be {must}"))
                            .label(label)
                            .help(help),
                    );
                    None
                }
            }
        };
        let t = literal(self, threshold, "threshold", 0.5, f64::is_finite);
        let b = literal(self, bins, "number of bins", 10.0, |b| b.fract() == 0.0 && (1.0..=1000.0).contains(&b));
        let (Some(s), Some(l), Some(t), Some(b), true) = (s, l, t, b, ok) else {
            return Vec::new();
        };
        let agg = |name: &str, args: Vec<TExpr>, ty: Type| -> TExpr {
            let agg = crate::builtins::aggregate(name).expect("the metrics' aggregates are builtins");
            TExpr { kind: TExprKind::Aggregate(agg.name, args), ty, span }
        };
        let num = |v: f64| TExpr { kind: TExprKind::Float(v), ty: Type::Double, span };
        let int = |v: f64| TExpr { kind: TExprKind::Int(v as i64), ty: Type::Int, span };
        let maybe = Type::Double.nullable();
        let curve = Type::List(Box::new(Type::Double));
        vec![
            ("count".into(), agg("count", Vec::new(), Type::Int)),
            ("positives".into(), agg("sum", vec![l.clone()], Type::Int)),
            ("mean_prediction".into(), agg("avg", vec![s.clone()], maybe.clone())),
            ("mean_label".into(), agg("avg", vec![l.clone()], maybe.clone())),
            ("auc".into(), agg("auc", vec![s.clone(), l.clone()], maybe.clone())),
            ("log_loss".into(), agg("log_loss", vec![s.clone(), l.clone()], maybe.clone())),
            ("accuracy".into(), agg("accuracy", vec![s.clone(), l.clone(), num(t)], maybe)),
            ("calibration_prediction".into(), agg("quantile_means", vec![s.clone(), s.clone(), int(b)], curve.clone())),
            ("calibration_label".into(), agg("quantile_means", vec![l, s, int(b)], curve)),
        ]
    }
}
