//! Label propagation through a typed program, and the sink check. Every expression's labels are
//! the union of its inputs' (a masking function lowers their form, `declassify` clears them, a
//! user function is followed into its body); `where` and `if` add their condition's labels as
//! implicit ones; `explode` gives the element the list's labels; an aggregate's output keeps its
//! inputs' labels, lowered to `aggregated` when it enforces a minimum group size; `score` outputs
//! carry the union of their inputs. At each edge every field's labels (and the labels inside its
//! type) must be allowed by the sink's clearance.

use std::collections::HashMap;

use super::annotations::SchemaLabels;
use super::label::{mask_form, Form, Label, Labels};
use super::taxonomy::{covers, MaskParam, Taxonomy};
use crate::diagnostics::{Code, Diagnostic};
use crate::hir::{Callee, Mask, Program, Row, Step, TExpr, TExprKind};
use crate::resolve::{ModuleId, Resolved};
use crate::source::Span;
use crate::syntax::pipe_ast::{BinOp, UnOp};
use crate::types::Type;

/// The labels of each field of a stream's rows, and those its rows carry by having passed a
/// condition.
#[derive(Clone, Debug, Default)]
pub struct RowLabels {
    pub fields: Vec<(String, Labels)>,
    pub implicit: Labels,
    /// The labels of the records' event time, which window bounds reveal.
    pub time: Labels,
}

impl RowLabels {
    fn get(&self, name: &str) -> Labels {
        self.fields.iter().find(|(n, _)| n == name).map(|(_, l)| l.clone()).unwrap_or_default()
    }

    fn set(&mut self, name: &str, labels: Labels) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = labels,
            None => self.fields.push((name.to_string(), labels)),
        }
    }
}

/// One column a sink receives, with everything it reveals.
#[derive(Clone, Debug)]
pub struct Column {
    pub sink: String,
    pub stream: String,
    pub field: String,
    pub labels: Labels,
}

/// A label that reaches a sink which does not allow it.
#[derive(Clone, Debug)]
pub struct Violation {
    pub code: Code,
    pub sink: String,
    pub stream: String,
    pub field: String,
    pub label: Label,
    pub edge: Span,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// The masks each `protect for` step applies.
    pub plans: crate::check::ProtectPlans,
    pub columns: Vec<Column>,
    pub violations: Vec<Violation>,
    pub declassified: Vec<(Span, String)>,
    /// Streams and sinks whose record counts labeled data decides (their rows carry implicit
    /// labels more revealing than `aggregated`), `rejected` aside.
    pub private_counts: std::collections::BTreeSet<String>,
    /// Everything the rows of each source and stream carry (and of `rejected` and late
    /// streams): every field's labels, those nested in struct-typed fields, the implicit ones.
    pub streams: std::collections::BTreeMap<String, Labels>,
    /// What a stream's rows carry after each of its steps, in order.
    pub steps: std::collections::BTreeMap<String, Vec<Labels>>,
    /// The labels of each expression's value, by its span (for the language server's hover).
    pub exprs: HashMap<Span, Labels>,
}

#[derive(Debug)]
pub struct Flow<'a> {
    res: &'a Resolved,
    program: &'a Program,
    schema_labels: &'a SchemaLabels,
    fns: HashMap<(String, ModuleId), &'a crate::hir::Function>,
    rows: HashMap<String, RowLabels>,
    types: HashMap<String, Row>,
    /// User functions being followed, so a recursive one (already an error) ends.
    calling: Vec<(String, ModuleId)>,
    /// Inside `aggregate(k >= N)`: aggregate calls lower what they read to `aggregated`.
    min_group: Option<(i64, Span)>,
    /// Streams being analyzed, so a cycle (already an error) ends.
    visiting: Vec<String>,
    /// The first source whose records carry labels: where a finding about the default
    /// `rejected/` output points.
    labeled_source: Option<(Span, String)>,
    /// The categories, and how strong a mask must be for each.
    taxonomy: &'a Taxonomy,
    pub diags: Vec<Diagnostic>,
    pub outcome: Outcome,
}

type Env<'e> = &'e RowLabels;

impl<'a> Flow<'a> {
    pub fn new(
        res: &'a Resolved,
        program: &'a Program,
        schema_labels: &'a SchemaLabels,
        taxonomy: &'a Taxonomy,
    ) -> Flow<'a> {
        let fns = program.functions.iter().map(|f| ((f.name.clone(), f.module), f)).collect();
        Flow {
            res,
            program,
            schema_labels,
            fns,
            rows: HashMap::new(),
            types: HashMap::new(),
            calling: Vec::new(),
            min_group: None,
            visiting: Vec::new(),
            labeled_source: None,
            taxonomy,
            diags: Vec::new(),
            outcome: Outcome::default(),
        }
    }

    /// Propagates labels through every stream and checks every edge.
    pub fn run(mut self, taxonomy: &Taxonomy) -> (Outcome, Vec<Diagnostic>) {
        self.sources();
        // Streams may be defined in any order: each is analyzed after the streams it reads.
        for s in &self.program.streams {
            self.ensure(&s.name);
        }
        self.sinks(taxonomy);
        let empty = Row::default();
        self.outcome.streams =
            self.rows.iter().map(|(k, v)| (k.clone(), self.carried(v, self.types.get(k).unwrap_or(&empty)))).collect();
        (self.outcome, self.diags)
    }

    fn sources(&mut self) {
        let mut everything = Labels::default();
        for src in &self.program.sources {
            let mut row = RowLabels::default();
            for (name, ty) in &src.row.fields {
                let mut l = match &src.record {
                    Type::Struct(id, _) => self.schema_labels.field(*id, name),
                    _ => Labels::default(),
                };
                l = l.hop(src.span, format!("read by source `{}`", src.name));
                let inside = self.schema_labels.deep(&self.res.schema, ty);
                if self.labeled_source.is_none() && !(l.is_empty() && inside.is_empty()) {
                    self.labeled_source = Some((src.span, src.name.clone()));
                }
                everything.union(&l);
                everything.union(&inside);
                row.fields.push((name.clone(), l));
            }
            if let Some(t) = &src.event_time {
                let r = row.clone();
                row.time = self.expr(t, &r, None).hop(t.span, format!("the event time of `{}`", src.name));
            }
            if let crate::hir::LatePolicy::To(late) = &src.late {
                self.rows.insert(late.clone(), row.clone());
                self.types.insert(late.clone(), src.row.clone());
            }
            self.rows.insert(src.name.clone(), row);
            self.types.insert(src.name.clone(), src.row.clone());
        }
        // A rejected record's raw text may hold any field of any source.
        let mut rejected = RowLabels::default();
        for (n, _) in crate::check::rejected_fields() {
            let l = if n == "raw" { everything.clone() } else { Labels::default() };
            rejected.fields.push((n.to_string(), l));
        }
        // Which records are rejected, and why, can depend on any field of any source.
        rejected.implicit = everything.clone().implicit();
        self.rows.insert("rejected".into(), rejected);
        self.types.insert("rejected".into(), Row { fields: crate::check::rejected_fields() });
    }

    /// Analyzes stream `name` (and first what it reads) unless that is done already.
    fn ensure(&mut self, name: &str) {
        if self.rows.contains_key(name) || self.visiting.iter().any(|v| v == name) {
            return;
        }
        let Some(s) = self.program.streams.iter().find(|s| s.name == name) else { return };
        self.visiting.push(name.to_string());
        self.ensure(&s.input);
        for step in &s.steps {
            if let Step::Union(others) = &step.step {
                for o in others {
                    self.ensure(o);
                }
            }
        }
        self.stream(s);
        self.visiting.pop();
    }

    fn stream(&mut self, s: &crate::hir::Stream) {
        let mut row = self.rows.get(&s.input).cloned().unwrap_or_default();
        let mut keys: Vec<(String, Labels)> = Vec::new();
        let mut rolling = false;
        let mut types = self.types.get(&s.input).cloned().unwrap_or_default();
        // Rows an aggregate made: `k >= N` counts them as records, but a group can hold one
        // person's records (and one person can be in many groups), so it lowers nothing.
        let upstream = self.grouped(&s.input);
        let (mut groups, mut joined) = (upstream.grouped, upstream.join);
        let mut after = Vec::with_capacity(s.steps.len());
        for step in &s.steps {
            let before = std::mem::replace(&mut types, step.row.clone());
            match &step.step {
                Step::Select(fields) => {
                    let mut next =
                        RowLabels { fields: Vec::new(), implicit: row.implicit.clone(), time: row.time.clone() };
                    for (name, e) in fields {
                        let l = self.expr(e, &row, None).hop(e.span, format!("into `{name}` of stream `{}`", s.name));
                        next.fields.push((name.clone(), l));
                    }
                    row = next;
                }
                Step::Derive(fields) => {
                    for (name, e) in fields {
                        let l = self.expr(e, &row, None).hop(e.span, format!("into `{name}` of stream `{}`", s.name));
                        row.set(name, l);
                    }
                }
                // The condition decides only whether the run fails; the rows go on unchanged.
                // But the outcome — the exit code, the counts the report prints — is published:
                // it may reveal labeled data only as aggregates.
                Step::Require(c, gate) => {
                    let mut l = self.expr(c, &row, None);
                    l.union(&row.implicit);
                    self.outcome_check(&l, gate, step.span);
                }
                Step::Where(c) => {
                    let l = self
                        .expr(c, &row, None)
                        .implicit()
                        .hop(c.span, format!("decides which records of `{}` pass", s.name));
                    row.implicit.union(&l);
                }
                Step::Explode { list, alias } => {
                    let l = self.expr(list, &row, None).hop(list.span, format!("exploded into `{alias}`"));
                    // How many rows come out (none at all, for an empty list) depends on the
                    // list: a list chosen or sized by labeled data filters or counts by it.
                    row.implicit.union(
                        &l.clone()
                            .implicit()
                            .hop(list.span, format!("decides how many rows `explode` makes in `{}`", s.name)),
                    );
                    row.set(alias, l);
                }
                Step::Window(w) => rolling = matches!(w, crate::hir::WindowKind::Rolling { .. }),
                Step::ProtectFor { sink, .. } => self.protect(&mut row, &before, sink, step.span),
                Step::GroupBy(k) => {
                    keys = k
                        .iter()
                        .map(|(n, e)| (n.clone(), self.expr(e, &row, None).hop(e.span, format!("group key `{n}`"))))
                        .collect();
                }
                Step::Aggregate { min_group, fields } => {
                    let mut outer = RowLabels { fields: std::mem::take(&mut keys), ..RowLabels::default() };
                    if std::mem::take(&mut rolling) {
                        // A rolling window's row is its record's, with the aggregates of the
                        // records before it.
                        let mut fields = row.fields.clone();
                        fields
                            .extend(outer.fields.into_iter().filter(|(n, _)| !row.fields.iter().any(|(m, _)| m == n)));
                        outer.fields = fields;
                    } else {
                        // Window bounds are computed from event times, so they reveal what those do.
                        let bounds = row.time.clone().hop(step.span, "window bounds come from the event time");
                        outer.fields.push(("window_start".into(), bounds.clone()));
                        outer.fields.push(("window_end".into(), bounds));
                    }
                    // Which groups exist, and how many records each holds, depends on the keys.
                    let mut implicit = row.implicit.clone();
                    for (_, l) in &outer.fields {
                        implicit.union(&l.clone().implicit().hop(step.span, "decides which groups exist"));
                    }
                    let mut next = RowLabels { fields: outer.fields.clone(), implicit, time: row.time.clone() };
                    // Only what passes through an aggregate call is aggregated; keys and window
                    // bounds used directly keep their form.
                    self.min_group = min_group.filter(|_| groups.is_none()).map(|k| (k, step.span));
                    let from = groups.replace(format!("these rows are groups of `{}`", s.name));
                    for (name, e) in fields {
                        let l = self.expr(e, &outer, Some(&row)).hop(e.span, format!("aggregated into `{name}`"));
                        next.fields.push((name.clone(), l));
                    }
                    self.min_group = None;
                    match (min_group, from) {
                        (Some(k), None) => {
                            let of = match &joined {
                                Some(t) => format!(" records of each side of the join with `{t}`"),
                                None => String::new(),
                            };
                            next.implicit = next.implicit.lower_all(
                                Form::Aggregated,
                                step.span,
                                &format!("aggregated over groups of at least {k}{of}"),
                            )
                        }
                        (Some(_), Some(upstream)) => {
                            let why = format!("not lowered: `k >= N` counts source records, and {upstream}");
                            for (_, l) in next.fields.iter_mut() {
                                *l = std::mem::take(l).hop(step.span, why.clone());
                            }
                        }
                        (None, _) => {}
                    }
                    joined = None;
                    next.fields.retain(|(n, _)| step.row.get(n).is_some());
                    row = next;
                }
                Step::Score { inputs, output, .. } => {
                    let l =
                        Labels::joined(inputs.iter().map(|(_, e)| self.expr(e, &row, None)).collect::<Vec<_>>().iter())
                            .hop(step.span, format!("scored into `{output}`"));
                    row.set(output, l);
                }
                Step::Join { table, keys, fields, asof, interval, .. } => {
                    let other = self.rows.get(table).cloned().unwrap_or_default();
                    // Which record of the table a row meets is decided by the keys on both
                    // sides: every field taken from it carries their labels, and so does
                    // which rows come out at all.
                    let mut key = Labels::default();
                    for (l, r) in keys {
                        key.union(&self.expr(l, &row, None).hop(l.span, format!("join key with `{table}`")));
                        key.union(&self.expr(r, &other, None).hop(r.span, format!("join key in `{table}`")));
                    }
                    // As-of and interval joins pick what meets by both sides' event times (and
                    // the tie order).
                    if asof.is_some() || interval.is_some() {
                        key.union(
                            &row.time.clone().hop(step.span, format!("event time compared in the join with `{table}`")),
                        );
                        key.union(&other.time.clone().hop(step.span, format!("event time of `{table}`")));
                    }
                    if let Some(a) = asof {
                        if let Some(o) = &a.order {
                            key.union(
                                &self.expr(o, &other, None).hop(o.span, format!("orders the versions of `{table}`")),
                            );
                        }
                    }
                    for (name, f) in fields {
                        let mut l = other.get(f).hop(step.span, format!("joined from `{table}` into `{name}`"));
                        l.union(
                            &key.clone().hop(step.span, format!("picks the `{table}` record joined into `{name}`")),
                        );
                        row.set(name, l);
                    }
                    row.implicit.union(
                        &key.implicit()
                            .hop(step.span, format!("decides which records meet in the join with `{table}`")),
                    );
                    row.implicit.union(&other.implicit);
                    let after =
                        self.joined(Behind { grouped: groups.take(), join: joined.take() }, table, |t| self.grouped(t));
                    (groups, joined) = (after.grouped, after.join);
                }
                Step::Union(others) => {
                    for o in others {
                        let theirs = self.grouped(o);
                        groups = groups.or(theirs.grouped);
                        joined = joined.or(theirs.join);
                        let other = self.rows.get(o).cloned().unwrap_or_default();
                        for (n, l) in &other.fields {
                            let mut mine = row.get(n);
                            mine.union(&l.clone().hop(step.span, format!("merged from `{o}`")));
                            row.set(n, mine);
                        }
                        row.implicit.union(&other.implicit);
                        row.time.union(&other.time);
                    }
                }
            }
            after.push(self.carried(&row, &step.row));
        }
        self.outcome.steps.insert(s.name.clone(), after);
        self.rows.insert(s.name.clone(), row);
        self.types.insert(s.name.clone(), s.row.clone());
    }

    /// Everything rows with these labels and fields carry: each field's labels, the labels of
    /// fields nested in struct-typed ones, the implicit labels.
    fn carried(&self, row: &RowLabels, types: &Row) -> Labels {
        let mut all = Labels::joined(row.fields.iter().map(|(_, l)| l).chain([&row.implicit]));
        for (_, ty) in &types.fields {
            all.union(&self.schema_labels.deep(&self.res.schema, ty));
        }
        all
    }

    /// Why `k >= N` cannot count people in the rows of `name` (an aggregate made them, through
    /// any `union`, or more than one join), and the join they came through.
    fn grouped(&self, name: &str) -> Behind {
        self.grouped_in(name, 0, &mut HashMap::new())
    }

    /// What rows `before` are after a join with `other`, whose rows are `theirs(other)`: `k >=
    /// N` counts the distinct records of both sides of one join (the runtime keeps both sets),
    /// so a first join of rows of records with records keeps it counting people; a second
    /// join, or a side made of groups or of joined rows, does not.
    fn joined(&self, before: Behind, other: &str, theirs: impl FnOnce(&str) -> Behind) -> Behind {
        if before.grouped.is_some() {
            return before;
        }
        let theirs = theirs(other);
        let why = match (&before.join, theirs.grouped, theirs.join) {
            (Some(first), _, _) => format!("these rows were joined with `{first}` and then with `{other}`"),
            (None, Some(why), _) => format!("these rows were joined with `{other}`, and of `{other}` {why}"),
            (None, None, Some(t)) => {
                format!("these rows were joined with `{other}`, whose rows were joined with `{t}`")
            }
            (None, None, None) => return Behind { grouped: None, join: Some(other.to_string()) },
        };
        Behind { grouped: Some(why), join: before.join }
    }

    /// `grouped`, remembering each stream's answer: a stream reached again through other
    /// unions is not walked again (found by fuzzing: streams that union themselves and each
    /// other ten times over took the checker half an hour, ten ways at each of 64 levels). A
    /// stream reached while its own answer is being worked out (a cycle, an error reported
    /// elsewhere) counts as not grouped.
    fn grouped_in(&self, name: &str, depth: usize, memo: &mut HashMap<String, Behind>) -> Behind {
        if let Some(known) = memo.get(name) {
            return known.clone();
        }
        let Some(s) = self.program.streams.iter().find(|s| s.name == name).filter(|_| depth < 64) else {
            return Behind::default();
        };
        memo.insert(name.to_string(), Behind::default());
        let mut b = self.grouped_in(&s.input, depth + 1, memo);
        for step in &s.steps {
            match &step.step {
                Step::Aggregate { .. } => {
                    b = Behind { grouped: Some(format!("these rows are groups of `{}`", s.name)), join: None };
                }
                Step::Join { table, .. } => b = self.joined(b, table, |t| self.grouped_in(t, depth + 1, memo)),
                Step::Union(others) => {
                    for o in others {
                        let theirs = self.grouped_in(o, depth + 1, memo);
                        b.grouped = b.grouped.or(theirs.grouped);
                        b.join = b.join.or(theirs.join);
                    }
                }
                _ => {}
            }
        }
        memo.insert(name.to_string(), b.clone());
        b
    }

    /// `protect for SINK`: for each field the sink would refuse, the least destructive mask
    /// annotated on the data it came from that makes it acceptable; P005 when there is none.
    fn protect(&mut self, row: &mut RowLabels, types: &Row, sink_name: &str, span: Span) {
        let Some(sink) = self.program.sinks.iter().find(|k| k.name == sink_name) else { return };
        let allowed = |l: &Label| {
            sink.allows
                .iter()
                .any(|a| covers(&a.category, &l.category) && Form::parse(&a.form).is_some_and(|f| l.form >= f))
        };
        let mut plan = Vec::new();
        for (name, labels) in row.fields.clone() {
            let ty = types.get(&name).cloned().unwrap_or(Type::Error);
            let mut all = labels.clone();
            all.union(&self.schema_labels.deep(&self.res.schema, &ty));
            let denied: Vec<Label> = all.iter().filter(|l| !l.implicit && !allowed(l)).cloned().collect();
            if denied.is_empty() {
                continue;
            }
            let mut candidates: Vec<Mask> = Vec::new();
            for m in all.iter().filter_map(|l| l.mask.clone()) {
                if !candidates.contains(&m) {
                    candidates.push(m);
                }
            }
            candidates.sort_by_key(mask_rank);
            let chosen = candidates.iter().find(|m| match mask_lowers_to(m) {
                None => true,
                Some(form) => {
                    m.apply_type(&ty).is_some()
                        && all
                            .iter()
                            .filter(|l| !l.implicit)
                            .all(|l| allowed(&Label { form: form.max(l.form), ..l.clone() }))
                }
            });
            match chosen {
                Some(m) => {
                    plan.push((name.clone(), m.clone()));
                    match mask_lowers_to(m) {
                        Some(form) => row
                            .set(&name, all.lower(form, span, &format!("masked by `{}` for `{sink_name}`", m.name()))),
                        None => row.fields.retain(|(n, _)| *n != name),
                    }
                }
                None => {
                    let cats: Vec<String> =
                        denied.iter().map(|l| format!("`{}` ({})", l.category, l.form.name())).collect();
                    let why = if candidates.is_empty() {
                        "no `mask` is annotated on the fields its data comes from".to_string()
                    } else {
                        let names: Vec<&str> = candidates.iter().map(Mask::name).collect();
                        format!("its masks ({}) do not bring it to a form the sink allows", names.join(", "))
                    };
                    self.diags.push(
                        Diagnostic::new(Code::P005, span, format!("`protect for {sink_name}` cannot make `{name}` conform: {why}"))
                            .label(format!("`{sink_name}` does not allow {}", cats.join(", ")))
                            .help(format!(
                                "annotate the Thrift field with a stronger mask (`mask = \"redact\"` or `mask = \"drop\"`), leave `{name}` out before this step, or allow the data in `{sink_name}`"
                            )),
                    );
                }
            }
        }
        self.outcome.plans.insert(span, plan);
    }

    /// The labels of an expression; `inner` is the input row inside an aggregate's arguments.
    fn expr(&mut self, e: &TExpr, env: Env, inner: Option<Env>) -> Labels {
        let l = self.expr_labels(e, env, inner);
        self.outcome.exprs.insert(e.span, l.clone());
        l
    }

    fn expr_labels(&mut self, e: &TExpr, env: Env, inner: Option<Env>) -> Labels {
        match &e.kind {
            TExprKind::Var(n) => env.get(n),
            TExprKind::Field(base, f) => {
                let mut l = self.expr(base, env, inner);
                if let Type::Struct(id, name) = base.ty.non_null() {
                    l.union(&self.schema_labels.field(*id, f).hop(e.span, format!("read as `{name}.{f}`")));
                }
                l
            }
            TExprKind::Aggregate(name, args) => {
                let rows = inner.unwrap_or(env);
                let l = Labels::joined(args.iter().map(|a| self.expr(a, rows, None)).collect::<Vec<_>>().iter());
                // A condition on labeled data inside the argument can single out one record
                // (`sum(if member_id == x then income else 0)`): then nothing is aggregated.
                let singles_out = args.iter().any(|a| self.singles_out(a, rows));
                match self.min_group {
                    // `min`, `max`, `first`, `last` and quantiles return (or estimate) one record's
                    // value as it is: a group size hides nothing about it.
                    Some((k, span)) if combines(name) && !singles_out => {
                        l.lower_all(Form::Aggregated, span, &format!("aggregated over groups of at least {k}"))
                    }
                    _ => l,
                }
            }
            TExprKind::Call(Callee::Builtin(name), args) => self.builtin(name, args, e.span, env, inner),
            TExprKind::Call(Callee::User(name, m), args) => {
                let arg_labels: Vec<Labels> = args.iter().map(|a| self.expr(a, env, inner)).collect();
                let key = (name.clone(), *m);
                match self.fns.get(&key).copied().filter(|_| !self.calling.contains(&key)) {
                    Some(f) => {
                        self.calling.push(key);
                        let params = RowLabels {
                            fields: f.params.iter().map(|(p, _)| p.clone()).zip(arg_labels).collect(),
                            ..RowLabels::default()
                        };
                        let l = self.expr(&f.body, &params, None).hop(e.span, format!("through `{name}(…)`"));
                        self.calling.pop();
                        l
                    }
                    None => Labels::joined(arg_labels.iter()),
                }
            }
            TExprKind::If(c, a, b) => {
                let mut l = self.expr(a, env, inner);
                l.union(&self.expr(b, env, inner));
                let cond = self.expr(c, env, inner);
                if constant_valued(a) && constant_valued(b) {
                    // Branches that are constants (or `if`s of constants): the value is computed
                    // from the condition alone, and a chain of them can spell out the labeled
                    // value — an explicit flow (a mask on the result hides that value, not
                    // the choice, which stays implicit below).
                    l.union(&cond.clone().hop(c.span, "decides the value of the `if` (its branches are constants)"));
                }
                l.union(&cond.implicit().hop(c.span, "decides the `if`"));
                l
            }
            TExprKind::Binary(_, a, b) => {
                let mut l = self.expr(a, env, inner);
                l.union(&self.expr(b, env, inner));
                // Comparing whole structs or lists reads everything inside them.
                for side in [a, b] {
                    l.union(&self.schema_labels.deep(&self.res.schema, &side.ty).hop(side.span, "read whole"));
                }
                l
            }
            TExprKind::Index(a, b) => {
                let mut l = self.expr(a, env, inner);
                l.union(&self.expr(b, env, inner));
                l
            }
            TExprKind::Unary(_, a) => self.expr(a, env, inner),
            TExprKind::List(items) => {
                Labels::joined(items.iter().map(|i| self.expr(i, env, inner)).collect::<Vec<_>>().iter())
            }
            _ => Labels::default(),
        }
    }

    /// Does `e` use labeled data other than as the value it passes on — in a condition, a
    /// comparison, an index, or a function that could turn it into a selector
    /// (`sum(if member_id == x then income else 0)`, `sum(income * (len(replace(ssn, x, "")) ...))`,
    /// `pow(0.0, income - x)`)? Then an aggregate over it can single out one record, and a
    /// minimum group size hides nothing. Only arithmetic (`+ - * /`, `??`) and functions that
    /// keep or coarsen their first argument (masks, rounding, date parts, case) pass a labeled
    /// value on.
    fn singles_out(&mut self, e: &TExpr, env: Env) -> bool {
        /// Functions whose first argument may be labeled without selecting anything.
        const PASS_ON: &[&str] = &[
            "abs",
            "ceil",
            "floor",
            "round",
            "bucket",
            "generalize",
            "truncate",
            "hmac",
            "tokenize",
            "redact",
            "sha256",
            "lower",
            "upper",
            "trim",
            "date",
            "day",
            "month",
            "year",
            "hour",
            "from_millis",
            "to_millis",
            "to_string",
            "parse_double",
            "parse_int",
            "parse_timestamp",
        ];
        let labeled = |this: &mut Self, x: &TExpr| !this.expr(x, env, None).is_empty();
        match &e.kind {
            TExprKind::If(c, a, b) => labeled(self, c) || self.singles_out(a, env) || self.singles_out(b, env),
            TExprKind::Binary(op, a, b) => {
                let passes = matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Coalesce);
                (!passes && (labeled(self, a) || labeled(self, b)))
                    || self.singles_out(a, env)
                    || self.singles_out(b, env)
            }
            TExprKind::Unary(op, a) => (*op == UnOp::Not && labeled(self, a)) || self.singles_out(a, env),
            TExprKind::Index(a, i) => labeled(self, i) || self.singles_out(a, env) || self.singles_out(i, env),
            TExprKind::Call(Callee::Builtin(name), args) => {
                let from = usize::from(PASS_ON.contains(&&**name));
                args.iter().skip(from).any(|a| labeled(self, a)) || args.iter().any(|a| self.singles_out(a, env))
            }
            TExprKind::Call(Callee::User(name, m), args) => {
                let key = (name.clone(), *m);
                let Some(f) = self.fns.get(&key).copied().filter(|_| !self.calling.contains(&key)) else {
                    return args.iter().any(|a| labeled(self, a));
                };
                let arg_labels: Vec<Labels> = args.iter().map(|a| self.expr(a, env, None)).collect();
                let params = RowLabels {
                    fields: f.params.iter().map(|(p, _)| p.clone()).zip(arg_labels).collect(),
                    ..RowLabels::default()
                };
                self.calling.push(key);
                let found = self.singles_out(&f.body, &params) || args.iter().any(|a| self.singles_out(a, env));
                self.calling.pop();
                found
            }
            _ => e.children().into_iter().any(|c| self.singles_out(c, env)),
        }
    }

    fn builtin(&mut self, name: &str, args: &[TExpr], span: Span, env: Env, inner: Option<Env>) -> Labels {
        let mut arg_labels: Vec<Labels> = args.iter().map(|a| self.expr(a, env, inner)).collect();
        // `to_string(t)` or `len(list)` turns a struct or collection into a scalar: what is inside
        // it goes along.
        for (l, a) in arg_labels.iter_mut().zip(args) {
            l.union(&self.schema_labels.deep(&self.res.schema, &a.ty).hop(a.span, "read whole"));
        }
        if let Some(form) = mask_form(name) {
            let first = if arg_labels.is_empty() { Labels::default() } else { arg_labels.remove(0) };
            let param = match args.get(1).map(|a| &a.kind) {
                Some(TExprKind::Int(n)) => MaskParam::Number(*n as f64),
                Some(TExprKind::Float(x)) => MaskParam::Number(*x),
                Some(TExprKind::Duration(ms)) => MaskParam::Duration(*ms),
                _ => MaskParam::Unknown,
            };
            // A mask generalizes a category only when its parameter removes enough of it.
            let (mut strong, mut weak) = (Vec::new(), Vec::new());
            for l in first.0 {
                match self.taxonomy.mask_needs(name, &l.category) {
                    Some(need) if !l.implicit && !need.met_by(param) => weak.push((l, need)),
                    _ => strong.push(l),
                }
            }
            if !weak.is_empty() {
                let what: Vec<String> =
                    weak.iter().map(|(l, need)| format!("`{}` needs {}", l.category, need.describe())).collect();
                let shown = args.get(1).map_or(String::new(), |a| self.res.sources.text(a.span).to_string());
                self.diags.push(
                    Diagnostic::new(
                        Code::P011,
                        span,
                        format!("`{name}` with `{shown}` keeps too much to generalize: {}", what.join("; ")),
                    )
                    .label("too weak a mask: the value keeps its form")
                    .help(format!(
                        "use a stronger parameter ({}), or another mask; the minimums are in the taxonomy (`[masks.\"category\"]` in pipe-taxonomy.toml)",
                        weak.iter().map(|(_, need)| need.describe()).collect::<Vec<_>>().join(", ")
                    )),
                );
            }
            let mut l = Labels(strong).lower(form, span, &format!("masked by `{name}`"));
            l.union(
                &Labels(weak.into_iter().map(|(l, _)| l).collect())
                    .hop(span, format!("not generalized: `{name}` keeps too much")),
            );
            l.union(&Labels::joined(arg_labels.iter()));
            return l;
        }
        match name {
            "declassify" => {
                let reason = match args.get(1).map(|a| &a.kind) {
                    Some(TExprKind::Str(r)) => r.clone(),
                    _ => String::new(),
                };
                let cats: Vec<String> = arg_labels
                    .first()
                    .map(|l| l.iter().map(|l| format!("`{}`", l.category)).collect())
                    .unwrap_or_default();
                self.diags.push(
                    Diagnostic::new(Code::N0002, span, format!("declassified: {reason}"))
                        .label(if cats.is_empty() { "carries no labels".to_string() } else { format!("clears {}", cats.join(", ")) })
                        .help("every declassification is listed by `pipec privacy-report`; review it like code that handles raw data"),
                );
                self.outcome.declassified.push((span, reason));
                Labels::default()
            }
            "sha256" => {
                let l = Labels::joined(arg_labels.iter());
                if let Some(first) = l.iter().find(|l| !l.implicit && l.form < Form::Pseudonymized) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::P004,
                            span,
                            format!("an unkeyed hash of `{}` data can be reversed", first.category),
                        )
                        .label("unkeyed hash of labeled data")
                        .help("anyone can hash candidate values and compare; use the keyed `hmac(…)` instead"),
                    );
                }
                l
            }
            _ => Labels::joined(arg_labels.iter()),
        }
    }

    /// A `require` step or `expect` check decides whether the run fails, and the run reports
    /// how often: labels on its condition less aggregated than `aggregated` are a finding.
    fn outcome_check(&mut self, l: &Labels, gate: &crate::hir::Gate, span: Span) {
        let allows = match gate {
            crate::hir::Gate::Expect { allows, .. } => allows.as_slice(),
            crate::hir::Gate::Require => &[],
        };
        let allowed = |l: &Label| {
            allows.iter().any(|a| covers(&a.category, &l.category) && Form::parse(&a.form).is_some_and(|f| l.form >= f))
        };
        let revealing: Vec<&Label> = l.iter().filter(|l| l.form < Form::Aggregated && !allowed(l)).collect();
        let Some(first) = revealing.first() else { return };
        let implicit = revealing.iter().all(|l| l.implicit);
        let what: Vec<String> = revealing.iter().map(|l| format!("`{}` ({})", l.category, l.form.name())).collect();
        let step = match gate {
            crate::hir::Gate::Require => "this `require`",
            crate::hir::Gate::Expect { .. } => "this `expect` check",
        };
        self.diags.push(
            Diagnostic::new(
                if implicit { Code::P007 } else { Code::P003 },
                span,
                format!(
                    "whether {step} holds — the run's exit code and the counts it reports — would reveal {}",
                    what.join(", ")
                ),
            )
            .label("decided by single records' labeled data")
            .help(match gate {
                crate::hir::Gate::Require => "check aggregates over groups of at least N records: `metrics(k >= 10)` or `aggregate(k >= 10)` before `require`; or use an `expect` step, whose outcome can be cleared".to_string(),
                crate::hir::Gate::Expect { .. } => format!(
                    "check aggregates over groups of at least N records (`expect(k >= 10) {{ … }}`, sums and rates rather than single values), or clear the outcome after the checks: `expect(k >= 10) {{ … }} {{ allow \"{}\" as {} }}`",
                    first.category,
                    first.form.name()
                ),
            })
            .note(path_note(self.res, first)),
        );
    }

    fn sinks(&mut self, taxonomy: &Taxonomy) {
        for sink in &self.program.sinks {
            for a in &sink.allows {
                if !taxonomy.is_category(&a.category) {
                    self.diags.push(taxonomy.unknown_category(&a.category, a.span));
                }
            }
            if let Some(p) = &sink.purpose {
                if !taxonomy.is_use(p) {
                    self.diags.push(taxonomy.unknown_use(p, sink.span));
                }
            }
        }
        // Counts a labeled condition decided: the run's report may not show them exactly.
        let private = |row: &RowLabels| row.implicit.iter().any(|l| l.form < Form::Aggregated);
        for s in &self.program.streams {
            if self.rows.get(&s.name).is_some_and(private) {
                self.outcome.private_counts.insert(s.name.clone());
            }
        }
        for edge in &self.program.edges {
            let sink = &self.program.sinks[edge.to];
            let row = self.rows.get(&edge.from).cloned().unwrap_or_default();
            if edge.from != "rejected" && private(&row) {
                self.outcome.private_counts.insert(sink.name.clone());
            }
            let types = self.types.get(&edge.from).cloned().unwrap_or_default();
            let mut columns: Vec<(String, Labels)> = Vec::new();
            for (name, l) in &row.fields {
                let mut all = l.clone();
                if let Some(ty) = types.get(name) {
                    all.union(
                        &self.schema_labels.deep(&self.res.schema, ty).hop(edge.span, format!("inside `{name}`")),
                    );
                }
                columns.push((name.clone(), all));
            }
            // What decided which records arrive is reported once per edge, not once per field.
            columns.push(("(which records arrive)".to_string(), row.implicit.clone()));
            for (param, exprs) in &edge.sink_exprs {
                let l = Labels::joined(exprs.iter().map(|e| self.expr(e, &row, None)).collect::<Vec<_>>().iter());
                columns.push((format!("{param} (of the sink)"), l));
            }
            for (field, labels) in columns {
                // One diagnostic per field and kind of flow, naming every category it lacks clearance for.
                let mut denied: [Vec<&Label>; 2] = [Vec::new(), Vec::new()];
                for label in labels.iter() {
                    let allowed = sink.allows.iter().any(|a| {
                        covers(&a.category, &label.category) && Form::parse(&a.form).is_some_and(|f| label.form >= f)
                    });
                    if !allowed {
                        denied[usize::from(label.implicit)].push(label);
                        self.outcome.violations.push(Violation {
                            code: if label.implicit { Code::P007 } else { Code::P003 },
                            sink: sink.name.clone(),
                            stream: edge.from.clone(),
                            field: field.clone(),
                            label: label.clone(),
                            edge: edge.span,
                        });
                    }
                }
                for group in denied.iter().filter(|g| !g.is_empty()) {
                    self.diags.push(violation(
                        self.res,
                        &sink.name,
                        &edge.from,
                        &field,
                        group,
                        edge.span,
                        &sink.allows,
                    ));
                }
                self.outcome.columns.push(Column { sink: sink.name.clone(), stream: edge.from.clone(), field, labels });
            }
        }
        if !self.program.edges.iter().any(|e| e.from == "rejected") {
            self.default_rejected();
        }
    }

    /// Without a `rejected -> …` edge a run writes rejected records, their raw text whole, to
    /// the default `rejected/` output. That output is a sink like any other, with a clearance
    /// of nothing: a program whose sources carry labels must route its rejected records to a
    /// sink that allows what their text may hold.
    fn default_rejected(&mut self) {
        const SINK: &str = "rejected/ (the default)";
        let row = self.rows.get("rejected").cloned().unwrap_or_default();
        let raw = row.get("raw");
        let mut columns = vec![("raw".to_string(), raw.clone())];
        columns.push(("(which records arrive)".to_string(), row.implicit.clone()));
        let span = self.labeled_source.as_ref().map_or(Span::default(), |(s, _)| *s);
        for (field, labels) in columns {
            for label in labels.iter() {
                self.outcome.violations.push(Violation {
                    code: if label.implicit { Code::P007 } else { Code::P003 },
                    sink: SINK.to_string(),
                    stream: "rejected".to_string(),
                    field: field.clone(),
                    label: label.clone(),
                    edge: span,
                });
            }
            self.outcome.columns.push(Column { sink: SINK.to_string(), stream: "rejected".into(), field, labels });
        }
        let Some((span, source)) = self.labeled_source.clone() else { return };
        let mut categories: Vec<&str> = raw.iter().map(|l| l.category.as_str()).collect();
        categories.sort_unstable();
        categories.dedup();
        // `user.financial` allows `user.financial.income` too: the fix names the broadest.
        let all = categories.clone();
        categories.retain(|c| !all.iter().any(|p| p != c && covers(p, c)));
        let shown: Vec<String> = categories.iter().map(|c| format!("`{c}`")).collect();
        let allows: Vec<String> = categories.iter().map(|c| format!("allow \"{c}\" as raw")).collect();
        self.diags.push(
            Diagnostic::new(
                Code::P003,
                span,
                format!(
                    "records rejected from `{source}` would be written whole to the default `rejected/` output, which allows no {}",
                    shown.join(", ")
                ),
            )
            .label("a malformed record's raw text holds every field of the source")
            .help(format!(
                "route rejected records to a sink cleared for them: `rejected -> files(\"out/rejected\", format = json) {{ purpose = \"essential.service\" {} }}`",
                allows.join(" ")
            )),
        );
    }
}

/// The diagnostic for labels a sink does not allow on one field: what they are, the path each
/// took, and two fixes (mask the field on the way, or allow the data in the sink).
fn violation(
    res: &Resolved,
    sink: &str,
    stream: &str,
    field: &str,
    labels: &[&Label],
    edge: Span,
    allows: &[crate::hir::Allow],
) -> Diagnostic {
    let first = labels[0];
    let implicit = first.implicit;
    let code = if implicit { Code::P007 } else { Code::P003 };
    let what: Vec<String> = labels.iter().map(|l| format!("`{}` ({})", l.category, l.form.name())).collect();
    let best =
        allows.iter().filter(|a| covers(&a.category, &first.category)).filter_map(|a| Form::parse(&a.form)).min();
    let mask = match best {
        Some(Form::Tokenized) => format!("tokenize it on the way (`{field} = tokenize(…)`)"),
        Some(Form::Pseudonymized) => format!("pseudonymize it on the way (`{field} = hmac(…)`)"),
        Some(Form::Generalized) => {
            format!("generalize it on the way (`{field} = bucket(…, width)` or `truncate(…, n)`)")
        }
        Some(Form::Aggregated) => "aggregate it with a minimum group size (`aggregate(k >= 10) { … }`)".to_string(),
        _ if implicit => "filter on data the sink may receive".to_string(),
        _ => format!("leave `{field}` out of what `{stream}` sends, or `redact(…)` it"),
    };
    let allow_lines: Vec<String> =
        labels.iter().map(|l| format!("`allow \"{}\" as {}`", l.category, l.form.name())).collect();
    let msg = if implicit {
        if field == "(which records arrive)" {
            format!("{} data decides which records of `{stream}` reach sink `{sink}`", what.join(", "))
        } else {
            format!("{} data decides the value of `{field}` that `{stream}` sends to sink `{sink}`", what.join(", "))
        }
    } else {
        format!("sink `{sink}` would receive `{field}` from `{stream}` carrying {}", what.join(", "))
    };
    let verb = if implicit { "an implicit flow" } else { "a leak" };
    let mut d = Diagnostic::new(code, edge, msg)
        .label(format!("{verb}: `{sink}` does not allow {}", what.join(", ")))
        .help(format!("{mask}; or, if `{sink}` may hold it, add {} to its clearance", allow_lines.join(" and ")));
    for l in labels {
        d = d.note(path_note(res, l));
    }
    for hop in &first.path {
        d = d.flow_step(hop.span, hop.what.clone());
    }
    d = d.flow_step(edge, format!("reaches sink `{sink}`"));
    for (i, hop) in first.path.iter().enumerate() {
        if hop.span.file == edge.file && hop.span != edge {
            d = d.secondary(hop.span, format!("{}. {}", i + 1, hop.what));
        }
    }
    d
}

/// The note that shows the way a label came: each hop with its place in the sources.
pub fn path_note(res: &Resolved, l: &Label) -> String {
    let steps: Vec<String> = l
        .path
        .iter()
        .map(|hop| {
            let f = res.sources.get(hop.span.file);
            let (line, col) = f.line_col(hop.span.start);
            format!("{} ({}:{line}:{col})", hop.what, f.path.display())
        })
        .collect();
    format!("`{}` came this way: {}", l.category, steps.join(" → "))
}

/// Whether an expression's value comes from constants only, apart from the conditions of the
/// `if`s in it.
fn constant_valued(e: &TExpr) -> bool {
    if e.is_literal() {
        return true;
    }
    match &e.kind {
        TExprKind::If(_, a, b) | TExprKind::Binary(_, a, b) => constant_valued(a) && constant_valued(b),
        TExprKind::Unary(_, a) => constant_valued(a),
        TExprKind::List(items) => items.iter().all(constant_valued),
        TExprKind::Call(Callee::Builtin(_), args) => args.iter().all(constant_valued),
        _ => false,
    }
}

/// How much a mask destroys, least first: `protect for` picks the first that is enough.
fn mask_rank(m: &Mask) -> u8 {
    match m {
        Mask::Tokenize => 0,
        Mask::Hmac => 1,
        Mask::Bucket(_) | Mask::Truncate(_) => 2,
        Mask::Redact => 3,
        Mask::Drop => 4,
    }
}

/// The form a mask leaves a value in; `None` for `drop`, which removes the field.
fn mask_lowers_to(m: &Mask) -> Option<Form> {
    Some(match m {
        Mask::Tokenize => Form::Tokenized,
        Mask::Hmac => Form::Pseudonymized,
        Mask::Bucket(_) | Mask::Truncate(_) => Form::Generalized,
        Mask::Redact => Form::Redacted,
        Mask::Drop => return None,
    })
}

/// Aggregates whose result combines the whole group, rather than picking one record's value.
fn combines(aggregate: &str) -> bool {
    matches!(
        aggregate,
        "count" | "count_distinct" | "null_rate" | "drift" | "sum" | "avg" | "stddev" | "auc" | "log_loss" | "accuracy"
    )
}

/// What is upstream of a stream's rows, for `k >= N`.
#[derive(Clone, Debug, Default)]
struct Behind {
    /// Why `k >= N` cannot count people in them: rows an aggregate made, rows joined twice.
    grouped: Option<String>,
    /// The other side of the one join they came through.
    join: Option<String>,
}
