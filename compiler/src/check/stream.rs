//! Streams: the row type inferred through every step, null narrowing by `where`, boundedness
//! (an unbounded stream is grouped only inside a window), event time (a window needs one) and
//! the order of `window` → `group by` → `aggregate`.

use super::expr::{Scope, VarKind};
use super::narrow::facts;
use super::window::Body;
use super::{Checker, StreamInfo, Visit};
use crate::diagnostics::{did_you_mean, name_list, Code, Diagnostic};
use crate::hir::{self, Row, Step, TExpr, TypedStep, WindowKind};
use crate::source::Span;
use crate::syntax::ast::Ident;
use crate::syntax::pipe_ast::{Expr, ExprKind, FieldDef, ItemKind, JoinOp, OpKind, StreamDecl};
use crate::types::Type;

/// Where a stream is between its steps.
pub(super) struct State {
    pub(super) row: Row,
    pub(super) narrowed: Vec<Vec<String>>,
    pub(super) bounded: bool,
    pub(super) event_time: bool,
    /// After an error that left the row uncertain: unknown fields are not reported again.
    pub(super) quiet: bool,
    pub(super) window: Option<(WindowKind, Span)>,
    pub(super) group: Option<(Vec<(String, TExpr)>, Span)>,
}

impl Checker<'_> {
    /// The typed info of a named stream, checking it first if needed.
    pub(super) fn stream_info(&mut self, name: &str) -> Option<StreamInfo> {
        if let Some(info) = self.infos.get(name) {
            return Some(info.clone());
        }
        let decl = *self.decls.get(name)?;
        if self.visits.contains_key(name) {
            return None;
        }
        self.visits.insert(name.to_string(), Visit::InProgress);
        let info = self.check_stream(decl);
        self.visits.insert(name.to_string(), Visit::Done);
        self.infos.insert(name.to_string(), info.clone());
        Some(info)
    }

    /// Resolves a stream named as an input; reports unknown names and cycles.
    fn input(&mut self, id: &Ident) -> Option<StreamInfo> {
        if self.visits.get(&id.name) == Some(&Visit::InProgress) {
            self.diags.push(
                Diagnostic::new(Code::E1018, id.span, format!("stream `{}` is defined in terms of itself", id.name))
                    .label("this reads the stream being defined")
                    .help("a stream can only read sources and streams defined without it"),
            );
            return None;
        }
        if let Some(info) = self.stream_info(&id.name) {
            return Some(info);
        }
        if self.decls.contains_key(&id.name) {
            return None; // Failed earlier; already reported.
        }
        if let Some((_, what)) = self.names.get(&id.name) {
            let what = *what;
            self.diags.push(
                Diagnostic::new(Code::E2016, id.span, format!("`{}` is a {what}, not a stream", id.name))
                    .label(format!("a {what}"))
                    .help("a stream reads a source or another stream"),
            );
            return None;
        }
        let mut names: Vec<&str> = self.infos.keys().chain(self.decls.keys()).map(String::as_str).collect();
        names.sort_unstable();
        self.diags.push(
            Diagnostic::new(Code::E1009, id.span, format!("unknown stream or source `{}`", id.name))
                .label("not defined")
                .help(did_you_mean(&id.name, names.iter().copied()).unwrap_or_else(|| {
                    format!("the streams and sources are {}", name_list(names.iter().copied(), 10))
                })),
        );
        None
    }

    fn check_stream(&mut self, decl: &StreamDecl) -> StreamInfo {
        let start = self.input(&decl.input);
        let mut st = match &start {
            Some(i) => State {
                row: i.row.clone(),
                narrowed: i.narrowed.clone(),
                bounded: i.bounded,
                event_time: i.event_time,
                quiet: i.quiet,
                window: None,
                group: None,
            },
            None => State {
                row: Row::default(),
                narrowed: Vec::new(),
                bounded: true,
                event_time: true,
                quiet: true,
                window: None,
                group: None,
            },
        };
        let mut steps = Vec::new();
        for op in &decl.ops {
            if let Some((_, span)) = &st.window {
                if !matches!(
                    op.kind,
                    OpKind::GroupBy(_)
                        | OpKind::Aggregate { .. }
                        | OpKind::Metrics { .. }
                        | OpKind::Expect { .. }
                        | OpKind::Error
                ) {
                    self.order_error(*span, "window");
                    st.window = None;
                }
            }
            if let Some((_, span)) = &st.group {
                if !matches!(
                    op.kind,
                    OpKind::Aggregate { .. } | OpKind::Metrics { .. } | OpKind::Expect { .. } | OpKind::Error
                ) {
                    self.order_error(*span, "group by");
                    st.group = None;
                }
            }
            if let Some(step) = self.step(&mut st, &op.kind, op.span) {
                steps.push(TypedStep { step, span: op.span, row: st.row.clone() });
            }
            // Each check of an `expect` step is then tested on every row (group) it made.
            if let OpKind::Expect { checks, clearance, .. } = &op.kind {
                let allows = clearance.as_ref().map(|c| self.clearance_rules(c, false).1).unwrap_or_default();
                for (i, c) in checks.iter().enumerate() {
                    let name = super::window::check_name(c, i);
                    if st.row.get(&name) != Some(&Type::Bool) {
                        continue;
                    }
                    let text = self.res.sources.text(c.cond.span).split_whitespace().collect::<Vec<_>>().join(" ");
                    let what = format!("`{text}` ({name}) in stream `{}`", decl.name.name);
                    let cond = TExpr { kind: hir::TExprKind::Var(name), ty: Type::Bool, span: c.span };
                    let gate = hir::Gate::Expect { what, blocking: !c.warn, allows: allows.clone() };
                    steps.push(TypedStep { step: Step::Require(cond, gate), span: c.span, row: st.row.clone() });
                }
            }
        }
        // A pending `group by` consumed the window before it; report the step that dangles.
        if let Some((_, span)) = st.group.take() {
            self.order_error(span, "group by");
        } else if let Some((_, span)) = st.window.take() {
            self.order_error(span, "window");
        }
        self.program.streams.push(hir::Stream {
            name: decl.name.name.clone(),
            input: decl.input.name.clone(),
            steps,
            row: st.row.clone(),
            bounded: st.bounded,
            event_time: st.event_time,
            span: decl.name.span,
        });
        StreamInfo {
            row: st.row,
            bounded: st.bounded,
            event_time: st.event_time,
            narrowed: st.narrowed,
            span: decl.name.span,
            quiet: st.quiet,
        }
    }

    fn order_error(&mut self, span: Span, what: &str) {
        let next = if what == "window" { "`group by`, `aggregate` or `metrics`" } else { "`aggregate` or `metrics`" };
        self.diags.push(
            Diagnostic::new(Code::E2013, span, format!("`{what}` must be followed by {next}"))
                .label("nothing aggregates these rows")
                .help("write `| window … | group by key | aggregate { … }` as consecutive steps"),
        );
    }

    fn step(&mut self, st: &mut State, op: &OpKind, span: Span) -> Option<Step> {
        Some(match op {
            OpKind::Error => {
                st.quiet = true;
                return None;
            }
            OpKind::Select(fields) => {
                let typed = self.fields(st, fields, Code::E1007);
                st.row = Row { fields: typed.iter().map(|(n, e)| (n.clone(), e.ty.clone())).collect() };
                st.narrowed.clear();
                Step::Select(typed)
            }
            OpKind::Derive(fields) => {
                // Each derived field sees the ones before it, so `derive { a = …, b = a + 1 }` works.
                let mut typed: Vec<(String, TExpr)> = Vec::new();
                let mut defined = Row::default();
                for f in fields {
                    let Some(name) = self.field_name(f) else { continue };
                    let e = self.expr(st, &f.value);
                    self.typed_field(&mut defined, &name, &e, f);
                    st.narrowed.retain(|p| p[0] != name);
                    st.row.set(&name, e.ty.clone());
                    typed.push((name, e));
                }
                Step::Derive(typed)
            }
            OpKind::Where(cond) => {
                let c = self.expr(st, cond);
                self.cx(self.root).expect_bool(&c, "`where`");
                for path in facts(&c, true) {
                    if let [field] = path.as_slice() {
                        if let Some(t) = st.row.get(field).cloned() {
                            st.row.set(field, t.non_null().clone());
                        }
                    }
                    st.narrowed.push(path);
                }
                Step::Where(c)
            }
            OpKind::Require(cond) => {
                let c = self.expr(st, cond);
                self.cx(self.root).expect_bool(&c, "`require`");
                Step::Require(c, hir::Gate::Require)
            }
            OpKind::Explode { list, alias } => {
                let l = self.expr(st, list);
                let elem = match l.ty.non_null() {
                    Type::List(e) | Type::Set(e) => e.as_ref().clone(),
                    Type::Error => Type::Error,
                    other => {
                        let help = if matches!(other, Type::Map(..)) {
                            "a map cannot be exploded; read its values by key with `m[\"key\"]`"
                        } else {
                            "explode a field of type `list<T>` or `set<T>`"
                        };
                        self.diags.push(
                            Diagnostic::new(
                                Code::E2010,
                                l.span,
                                format!("`explode` needs a list, but this is `{other}`"),
                            )
                            .label(format!("this is `{other}`"))
                            .help(help),
                        );
                        Type::Error
                    }
                };
                self.name_free(&st.row, alias, "each element");
                st.row.set(&alias.name, elem);
                Step::Explode { list: l, alias: alias.name.clone() }
            }
            OpKind::Window(call) => {
                if !st.event_time && !st.quiet {
                    self.diags.push(
                        Diagnostic::new(Code::E2006, span, "a window needs an event time, but this stream has none")
                            .label("no event time")
                            .help("declare `event_time = <timestamp field>` on the source this stream reads"),
                    );
                }
                let Some(kind) = self.window(call) else {
                    // Keep a placeholder so the steps after a bad window are not also reported.
                    st.window = Some((WindowKind::Tumbling { size: 1, offset: 0 }, span));
                    return None;
                };
                st.window = Some((kind.clone(), span));
                Step::Window(kind)
            }
            OpKind::GroupBy(keys) => {
                self.boundedness(st, span, "group by");
                let typed = self.fields(st, keys, Code::E1007);
                st.group = Some((typed.clone(), span));
                Step::GroupBy(typed)
            }
            OpKind::Aggregate { min_group, fields } => {
                self.aggregate(st, span, min_group.as_ref(), Body::Fields(fields))
            }
            OpKind::Metrics { min_group, args } => self.aggregate(st, span, min_group.as_ref(), Body::Metrics(args)),
            OpKind::Expect { min_group, checks, .. } => {
                self.aggregate(st, span, min_group.as_ref(), Body::Expect(checks))
            }
            OpKind::Score { model, inputs, alias } => {
                if !self.program.models.iter().any(|m| m.name == model.name) && !self.names.contains_key(&model.name) {
                    self.diags.push(
                        Diagnostic::new(Code::E1011, model.span, format!("unknown model `{}`", model.name))
                            .label("not defined")
                            .help(
                                did_you_mean(&model.name, self.program.models.iter().map(|m| m.name.as_str()))
                                    .unwrap_or_else(|| {
                                        format!(
                                            "declare it: `model {} = lightgbm(\"models/{}.txt\")`",
                                            model.name, model.name
                                        )
                                    }),
                            ),
                    );
                }
                let typed = self.fields(st, inputs, Code::E2014);
                for (n, e) in &typed {
                    if !matches!(e.ty.non_null(), Type::Int | Type::Double | Type::Bool | Type::Enum(..) | Type::Error)
                    {
                        self.diags.push(
                            Diagnostic::new(
                                Code::E2001,
                                e.span,
                                format!(
                                    "model input `{n}` must be a number, a bool or an enum, but this is `{}`",
                                    e.ty
                                ),
                            )
                            .label(format!("this is `{}`", e.ty))
                            .help("convert it first, e.g. with `parse_double(…)` or `len(…)`"),
                        );
                    }
                }
                self.name_free(&st.row, alias, "the score");
                st.row.set(&alias.name, Type::Double);
                Step::Score { model: model.name.clone(), inputs: typed, output: alias.name.clone() }
            }
            OpKind::ProtectFor(sink) => {
                let sinks: Vec<&str> =
                    self.res
                        .pipe(self.root)
                        .map(|f| {
                            f.items
                                .iter()
                                .filter_map(|i| {
                                    if let ItemKind::Sink(s) = &i.kind {
                                        Some(s.name.name.as_str())
                                    } else {
                                        None
                                    }
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                if !sinks.contains(&sink.name.as_str()) {
                    self.diags.push(
                        Diagnostic::new(Code::E1010, sink.span, format!("unknown sink `{}`", sink.name))
                            .label("not defined")
                            .help(
                                did_you_mean(&sink.name, sinks.iter().copied())
                                    .unwrap_or_else(|| "`protect for` names a sink declared with `sink`".to_string()),
                            ),
                    );
                }
                let masks = self.plans.get(&span).cloned().unwrap_or_default();
                for (field, mask) in &masks {
                    let Some(ty) = st.row.get(field).cloned() else { continue };
                    match mask.apply_type(&ty) {
                        Some(t) => st.row.set(field, t),
                        None => st.row.fields.retain(|(n, _)| n != field),
                    }
                    st.narrowed.retain(|p| p[0] != *field);
                }
                Step::ProtectFor { sink: sink.name.clone(), masks }
            }
            OpKind::Union(others) => {
                let mut names = Vec::new();
                for other in others {
                    names.push(other.name.clone());
                    let Some(info) = self.input(other) else {
                        st.quiet = true;
                        continue;
                    };
                    st.quiet |= info.quiet;
                    if !st.quiet {
                        self.union_rows(&mut st.row, &info.row, other);
                    }
                    st.bounded &= info.bounded;
                    st.event_time &= info.event_time;
                }
                st.narrowed.clear();
                Step::Union(names)
            }
            OpKind::Join(j) => {
                let JoinOp { left, asof, table, prefix, on, within, order } = j.as_ref();
                let kind = match (asof, within) {
                    (false, Some((lower, Some(upper)))) => JoinKind::Interval(lower, upper),
                    (true, Some((max_age, None))) => JoinKind::AsOf(Some(max_age), order.as_ref()),
                    (true, None) => JoinKind::AsOf(None, order.as_ref()),
                    (false, None) => JoinKind::Lookup,
                    (_, Some((w, _))) => {
                        let help = if *asof {
                            "an as-of join takes one bound, the oldest version it meets: `within 30d`"
                        } else {
                            "an interval join of two streams takes both bounds: `within -1h to 0s` (the other \
                             row's time minus this row's)"
                        };
                        self.diags.push(
                            Diagnostic::new(Code::E2023, w.span, "this `within` does not fit the join")
                                .label("wrong bounds")
                                .help(help),
                        );
                        st.quiet = true;
                        return None;
                    }
                };
                self.join(st, span, *left, kind, table, prefix.as_ref(), on)?
            }
        })
    }

    /// Whether `name` is a stream rather than a table: a derived stream, or a source with a
    /// `stream` binding.
    fn is_stream(&self, name: &Ident) -> bool {
        match self.program.sources.iter().find(|s| s.name == name.name) {
            Some(s) => s.stream.is_some(),
            None => self.decls.contains_key(&name.name) || self.infos.contains_key(&name.name),
        }
    }

    /// The table of a lookup or as-of join: a source read whole, with no `stream` binding.
    fn join_table(&mut self, st: &mut State, table: &Ident) -> Option<JoinSide> {
        let source = self.program.sources.iter().find(|s| s.name == table.name).cloned();
        let Some(source) = source else {
            if self.decls.contains_key(&table.name) || self.infos.contains_key(&table.name) {
                self.diags.push(
                    Diagnostic::new(Code::E2023, table.span, format!("`{}` is a stream, not a table", table.name))
                        .label("a stream")
                        .help(
                            "a lookup join reads a source whole as a table: join the source the stream reads and \
                             filter after the join, join the stream's versions as of each row's time (`join asof`), \
                             or give an interval `within LOWER to UPPER`",
                        ),
                );
            } else if let Some((_, what)) = self.names.get(&table.name) {
                let what = *what;
                self.diags.push(
                    Diagnostic::new(Code::E2016, table.span, format!("`{}` is a {what}, not a source", table.name))
                        .label(format!("a {what}"))
                        .help("a join reads a source declared with `source NAME: Type { batch = files(…) }`"),
                );
            } else {
                let names: Vec<&str> = self.program.sources.iter().map(|s| s.name.as_str()).collect();
                self.diags.push(
                    Diagnostic::new(Code::E1009, table.span, format!("unknown source `{}`", table.name))
                        .label("not defined")
                        .help(
                            did_you_mean(&table.name, names.iter().copied())
                                .unwrap_or_else(|| format!("the sources are {}", name_list(names.iter().copied(), 10))),
                        ),
                );
            }
            st.quiet = true;
            return None;
        };
        if source.stream.is_some() || source.batch.is_none() {
            self.diags.push(
                Diagnostic::new(
                    Code::E2023,
                    table.span,
                    format!(
                        "`{}` is unbounded: it has a `stream` binding, and a join needs a time bound on it",
                        table.name
                    ),
                )
                .label("unbounded")
                .help(format!(
                    "a lookup join reads its table whole, from its `batch` binding: declare `{}` with \
                     `batch = files(…)` only, join its versions as of each row's time (`join asof`), or join \
                     it as a stream within an interval: `within -1h to 0s`",
                    table.name
                )),
            );
        }
        Some(JoinSide {
            quiet: !matches!(source.record, Type::Struct(..)),
            row: source.row,
            event_time: source.event_time.is_some(),
            bounded: true,
            interval: None,
        })
    }

    /// The other side of an interval join: any stream or source, both with event times, and
    /// the bounds `LOWER <= other's time - row's time <= UPPER`.
    fn join_stream(
        &mut self,
        st: &mut State,
        span: Span,
        other: &Ident,
        lower: &Expr,
        upper: &Expr,
    ) -> Option<JoinSide> {
        let info = self.input(other);
        let bound = |e: &Expr| match &e.kind {
            ExprKind::Duration(ms) => Some(*ms),
            ExprKind::Unary(crate::syntax::pipe_ast::UnOp::Neg, inner) => match inner.kind {
                ExprKind::Duration(ms) => Some(-ms),
                _ => None,
            },
            _ => None,
        };
        let mut bounds = Vec::new();
        for e in [lower, upper] {
            match bound(e) {
                Some(ms) => bounds.push(ms),
                None if matches!(e.kind, ExprKind::Error) => {}
                None => self.diags.push(
                    Diagnostic::new(Code::E2018, e.span, "an interval join's bound must be a duration literal")
                        .label("not a duration")
                        .help("write durations such as `-1h` or `30m`: `within -1h to 0s`"),
                ),
            }
        }
        let interval = match bounds[..] {
            [lo, hi] if lo <= hi => Some((lo, hi)),
            [_, _] => {
                self.diags.push(
                    Diagnostic::new(Code::E2023, lower.span.to(upper.span), "the interval is empty: its lower bound is above its upper one")
                        .label("no time fits")
                        .help("write the lower bound first: `within -1h to 0s` meets other rows up to an hour before this one"),
                );
                None
            }
            _ => None,
        };
        let info = info?;
        if (!st.event_time && !st.quiet) || !info.event_time {
            let who = if info.event_time { "this stream".to_string() } else { format!("`{}`", other.name) };
            self.diags.push(
                Diagnostic::new(
                    Code::E2026,
                    span,
                    format!("an interval join compares event times, but {who} has none"),
                )
                .label("no event time to compare")
                .help("declare `event_time = <timestamp field>` on the sources both sides read"),
            );
        }
        Some(JoinSide {
            row: info.row,
            event_time: info.event_time,
            bounded: info.bounded,
            quiet: info.quiet,
            interval: interval.or(Some((0, 0))),
        })
    }

    /// `join [left] TABLE [as P] on L = R, …`: a lookup join against a source read whole as a
    /// table. The row gains the table's fields (prefixed `P_` with `as P`; nullable in a left
    /// join), except a key field named like the row's field it equals.
    #[allow(clippy::too_many_arguments, reason = "the parts of one `join` step")]
    fn join(
        &mut self,
        st: &mut State,
        span: Span,
        left: bool,
        kind: JoinKind<'_>,
        table: &Ident,
        prefix: Option<&Ident>,
        on: &[(Expr, Expr)],
    ) -> Option<Step> {
        // An as-of join's other side is a table unless it is a stream: a derived stream or a
        // source with a `stream` binding, whose versions meet the rows in the key exchange.
        let versions = matches!(kind, JoinKind::AsOf(..)) && self.is_stream(table);
        let other = match kind {
            JoinKind::Interval(lower, upper) => self.join_stream(st, span, table, lower, upper)?,
            _ if versions => {
                let info = self.input(table)?;
                JoinSide {
                    row: info.row,
                    event_time: info.event_time,
                    bounded: info.bounded,
                    quiet: info.quiet,
                    interval: None,
                }
            }
            _ => self.join_table(st, table)?,
        };
        let quiet_table = other.quiet;
        let interval = other.interval;
        let asof = match kind {
            JoinKind::AsOf(within, order) => Some((within, order)),
            _ => None,
        };
        let asof = asof.map(|(within, order)| {
            let missing: Vec<String> = [
                (!st.event_time && !st.quiet).then(|| "the stream has no event time".to_string()),
                (!other.event_time).then(|| format!("`{}` has no `event_time`", table.name)),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !missing.is_empty() {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2026,
                        span,
                        format!("an as-of join compares event times, but {}", missing.join(" and ")),
                    )
                    .label("no event time to compare")
                    .help(format!(
                        "declare `event_time = <timestamp field>` on the source the stream reads and on `{}`",
                        table.name
                    )),
                );
            }
            let within = within.and_then(|w| self.duration_const(w, "an as-of join's `within`"));
            let order = order.map(|o| {
                let mut scope = Scope::new(&other.row.fields, VarKind::Field);
                scope.quiet = quiet_table;
                let t = self.cx(self.root).expr(&scope, o);
                if !comparable(&t.ty) {
                    self.diags.push(
                        Diagnostic::new(Code::E2024, t.span, format!("`order by` cannot order by `{}`", t.ty))
                            .label(format!("this is `{}`", t.ty))
                            .help("order ties by a string, integer, boolean, enum, timestamp, date or duration"),
                    );
                }
                t
            });
            hir::AsOf { within, order, versions }
        });
        let source = other;
        let mut keys = Vec::new();
        for (l, r) in on {
            let lt = self.expr(st, l);
            let mut scope = Scope::new(&source.row.fields, VarKind::Field);
            scope.quiet = quiet_table;
            let rt = self.cx(self.root).expr(&scope, r);
            let (a, b) = (lt.ty.non_null(), rt.ty.non_null());
            if matches!(a, Type::Error) || matches!(b, Type::Error) {
            } else if !comparable(a) || !comparable(b) {
                let bad = if comparable(a) { &rt } else { &lt };
                self.diags.push(
                    Diagnostic::new(Code::E2024, bad.span, format!("a join key cannot be `{}`", bad.ty.non_null()))
                        .label(format!("this is `{}`", bad.ty))
                        .help(if matches!(bad.ty.non_null(), Type::Double) {
                            "doubles are not compared exactly: join on an integer or string form, e.g. `to_string(x)`"
                        } else {
                            "join on strings, integers, booleans, enums, timestamps, dates or durations"
                        }),
                );
            } else if a != b {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2024,
                        l.span.to(r.span),
                        format!("the two sides of this key differ: `{a}` in the row, `{b}` in `{}`", table.name),
                    )
                    .label(format!("`{a}` = `{b}`"))
                    .help("convert one side so both have the same type, e.g. `to_string(x)` or `parse_int(x)`"),
                );
            }
            keys.push((lt, rt));
        }
        // The table's fields, except a key field named like the row's field it equals.
        let same_key = |f: &str| {
            keys.iter().any(|(l, r): &(TExpr, TExpr)| {
                matches!((&l.kind, &r.kind), (hir::TExprKind::Var(a), hir::TExprKind::Var(b)) if a == f && b == f)
            })
        };
        let mut fields = Vec::new();
        let mut taken = Vec::new();
        for (f, t) in &source.row.fields {
            if prefix.is_none() && same_key(f) {
                continue;
            }
            let name = prefix.map_or_else(|| f.clone(), |p| format!("{}_{f}", p.name));
            if st.row.get(&name).is_some() {
                taken.push(name);
                continue;
            }
            st.row.set(&name, if left { t.clone().nullable() } else { t.clone() });
            fields.push((name, f.clone()));
        }
        if !taken.is_empty() && !st.quiet {
            let p = prefix.map_or_else(|| table.name.chars().take(1).collect::<String>(), |p| format!("{}2", p.name));
            self.diags.push(
                Diagnostic::new(
                    Code::E2025,
                    table.span,
                    format!(
                        "the row and `{}` both have {}",
                        table.name,
                        name_list(taken.iter().map(String::as_str), 6)
                    ),
                )
                .label("same names on both sides")
                .help(format!(
                    "give the table's fields a prefix: `join {}{} as {p} on …` names them `{p}_…`",
                    if left { "left " } else { "" },
                    table.name
                )),
            );
        }
        st.quiet |= quiet_table;
        if interval.is_some() || versions {
            st.bounded &= source.bounded;
            st.narrowed.retain(|p| st.row.get(&p[0]).is_some());
        }
        Some(Step::Join { table: table.name.clone(), left, asof, interval, keys, fields })
    }

    /// A step's new field (`explode … as x`, `score … as x`) must not hide one of the row's.
    fn name_free(&mut self, row: &Row, alias: &Ident, what: &str) {
        if row.get(&alias.name).is_some() {
            self.diags.push(
                Diagnostic::new(Code::E1007, alias.span, format!("the row already has a field `{}`", alias.name))
                    .label("name taken")
                    .help(format!("choose another name for {what}")),
            );
        }
    }

    fn union_rows(&mut self, row: &mut Row, other: &Row, name: &Ident) {
        let mut problem = None;
        for (n, t) in &row.fields {
            match other.get(n) {
                None => problem = Some(format!("`{}` has no field `{n}`", name.name)),
                Some(u) if Type::unify(t, u).is_none() => {
                    problem = Some(format!("field `{n}` is `{t}` here but `{u}` in `{}`", name.name))
                }
                _ => {}
            }
            if problem.is_some() {
                break;
            }
        }
        if problem.is_none() {
            if let Some((n, _)) = other.fields.iter().find(|(n, _)| row.get(n).is_none()) {
                problem = Some(format!("`{}` has a field `{n}` this stream lacks", name.name));
            }
        }
        match problem {
            Some(p) => self.diags.push(
                Diagnostic::new(Code::E2009, name.span, format!("cannot union `{}`: {p}", name.name))
                    .label("different row")
                    .help("`select` the same fields, with the same types, on both sides first"),
            ),
            None => {
                for (n, t) in row.fields.iter_mut() {
                    if let Some(u) = other.get(n).and_then(|u| Type::unify(t, u)) {
                        *t = u;
                    }
                }
            }
        }
    }

    /// Types `name = expr` definitions against the current row.
    fn fields(&mut self, st: &State, fields: &[FieldDef], duplicate: Code) -> Vec<(String, TExpr)> {
        let mut out: Vec<(String, TExpr)> = Vec::new();
        let mut row = Row::default();
        for f in fields {
            let Some(name) = self.field_name(f) else {
                continue;
            };
            let e = self.expr(st, &f.value);
            if duplicate == Code::E2014 && row.get(&name).is_some() {
                self.diags.push(
                    Diagnostic::new(Code::E2014, f.span, format!("model input `{name}` is given twice"))
                        .label("second value")
                        .help("give each model feature once"),
                );
                continue;
            }
            self.typed_field(&mut row, &name, &e, f);
            out.push((name, e));
        }
        out
    }

    /// Adds a computed field to `row`, reporting duplicates and untyped nulls.
    pub(super) fn typed_field(&mut self, row: &mut Row, name: &str, e: &TExpr, f: &FieldDef) {
        if row.get(name).is_some() {
            self.diags.push(
                Diagnostic::new(Code::E1007, f.span, format!("field `{name}` is defined twice"))
                    .label("second definition")
                    .help("give each output field its own name"),
            );
            return;
        }
        if matches!(e.ty, Type::Null) {
            self.diags.push(
                Diagnostic::new(Code::E2001, e.span, format!("cannot tell the type of `{name}`: it is always null"))
                    .label("only `null`")
                    .help("give the field a typed value, e.g. `if c then 0.0 else null`"),
            );
        }
        row.fields.push((name.to_string(), e.ty.clone()));
    }

    /// The name of `name = expr`, or of a bare path (its last segment).
    pub(super) fn field_name(&mut self, f: &FieldDef) -> Option<String> {
        if let Some(n) = &f.name {
            return Some(n.name.clone());
        }
        match f.value.as_path() {
            Some(p) => p.last().map(|i| i.name.clone()),
            None if matches!(f.value.kind, ExprKind::Error) => None,
            None => {
                self.diags.push(
                    Diagnostic::new(Code::E1019, f.span, "a computed field needs a name")
                        .label("unnamed")
                        .help(format!("write `name = {}`", self.res.sources.text(f.value.span))),
                );
                None
            }
        }
    }

    fn expr(&mut self, st: &State, e: &Expr) -> TExpr {
        let mut scope = Scope::new(&st.row.fields, VarKind::Field);
        scope.narrowed = st.narrowed.clone();
        scope.quiet = st.quiet;
        self.cx(self.root).expr(&scope, e)
    }
}

/// The three joins, as written.
enum JoinKind<'e> {
    Lookup,
    /// `asof`, with `within MAX_AGE` and `order by EXPR`.
    AsOf(Option<&'e Expr>, Option<&'e Expr>),
    /// `within LOWER to UPPER`.
    Interval(&'e Expr, &'e Expr),
}

/// What a join meets: a table (a source read whole) or another stream.
struct JoinSide {
    row: Row,
    event_time: bool,
    bounded: bool,
    quiet: bool,
    interval: Option<(i64, i64)>,
}

/// Whether join keys (and as-of ties) of this type compare exactly.
fn comparable(t: &Type) -> bool {
    matches!(
        t.non_null(),
        Type::Bool
            | Type::Int
            | Type::String
            | Type::Binary
            | Type::Timestamp
            | Type::Date
            | Type::Duration
            | Type::Enum(..)
            | Type::Error
    )
}
