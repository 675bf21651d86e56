//! Windows and aggregation: the window calls (`tumbling`, `sliding`, `session`) with their
//! durations, boundedness (an unbounded stream is aggregated only in a window), and the
//! `aggregate` step, whose output row is the keys, the window bounds and the aggregates.

use super::expr::{AggMode, Scope, VarKind};
use super::stream::State;
use super::Checker;
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::hir::{Row, Step, TExpr, WindowKind};
use crate::source::Span;
use crate::syntax::pipe_ast::{Expr, ExprKind, FieldDef};
use crate::types::Type;

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

    pub(super) fn aggregate(
        &mut self,
        st: &mut State,
        span: Span,
        min_group: Option<&Expr>,
        fields: &[FieldDef],
    ) -> Step {
        let keys = st.group.take().map(|(k, _)| k).unwrap_or_default();
        if keys.is_empty() {
            self.boundedness(st, span, "aggregate");
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
        for f in fields {
            let Some(name) = self.field_name(f) else {
                continue;
            };
            let e = self.cx(self.root).expr(&scope, &f.value);
            self.typed_field(&mut row, &name, &e, f);
            typed.push((name, e));
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
