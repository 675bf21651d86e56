//! The items of the root file: the order they are checked in, then sources (bindings, event
//! time, watermark, late policy) and models. Connectors are in `connector.rs`, sinks and edges
//! in `wiring.rs`, streams in `stream.rs`.

use std::collections::HashMap;

use super::expr::{Scope, VarKind};
use super::{Checker, StreamInfo};
use crate::builtins::MODEL_LOADERS;
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::hir::{self, Row};
use crate::source::Span;
use crate::syntax::ast::Ident;
use crate::syntax::pipe_ast::{Expr, ExprKind, ItemKind, LatePolicy, PropValue, SourceDecl};
use crate::types::Type;

/// The forms a labeled value can take, most revealing first.
pub const FORMS: &[&str] = &["raw", "tokenized", "pseudonymized", "generalized", "aggregated", "redacted"];

const SOURCE_PROPS: &[&str] =
    &["event_time", "watermark", "late", "idle_timeout", "validate", "refresh", "batch", "stream", "fit"];

/// The row of the built-in `rejected` stream.
pub fn rejected_row() -> Row {
    Row { fields: ["source", "position", "raw", "reason"].iter().map(|n| (n.to_string(), Type::String)).collect() }
}

impl<'a> Checker<'a> {
    pub(super) fn items(&mut self) {
        let res = self.res;
        let Some(file) = res.pipe(self.root) else {
            return;
        };
        self.program.namespace = file.items.iter().find_map(|i| match &i.kind {
            ItemKind::Namespace(n) => Some(n.name.clone()),
            _ => None,
        });
        let mut all_bounded = true;
        for item in &file.items {
            match &item.kind {
                ItemKind::Source(s) => {
                    if let Some(bounded) = self.source(s) {
                        all_bounded &= bounded;
                    }
                }
                ItemKind::Stream(s) if self.define(&s.name.name, s.name.span, "stream") => {
                    self.decls.insert(s.name.name.clone(), s);
                }
                ItemKind::Model(m) => self.model(&m.name, &m.loader),
                _ => {}
            }
        }
        self.infos.insert(
            "rejected".to_string(),
            StreamInfo {
                row: rejected_row(),
                bounded: all_bounded,
                event_time: false,
                narrowed: Vec::new(),
                span: Span::default(),
                quiet: false,
            },
        );
        let mut names: Vec<&String> = self.decls.keys().collect();
        names.sort_by_key(|n| self.decls[*n].name.span.start);
        let names: Vec<String> = names.into_iter().cloned().collect();
        for n in names {
            self.stream_info(&n);
        }
        let mut streams = std::mem::take(&mut self.program.streams);
        streams.sort_by_key(|s| s.span.start);
        self.program.streams = streams;
        self.tables_read_as_streams(file);
        for item in &file.items {
            if let ItemKind::Sink(s) = &item.kind {
                if self.define(&s.name.name, s.name.span, "sink") {
                    self.sink(&s.name.name, s.name.span, &s.connector, s.clearance.as_ref());
                }
            }
        }
        for item in &file.items {
            if let ItemKind::Edge(e) = &item.kind {
                self.edge(&e.from, &e.to, item.span);
            }
        }
        self.unwired(file.items.iter().filter_map(|i| match &i.kind {
            ItemKind::Stream(s) => Some(&s.name),
            _ => None,
        }));
    }

    /// A source a join reads as its table is read whole before the run, so nothing else may
    /// read it as a stream of records.
    fn tables_read_as_streams(&mut self, file: &crate::syntax::pipe_ast::PipeFile) {
        let tables: Vec<String> = self
            .program
            .streams
            .iter()
            .flat_map(|s| &s.steps)
            .filter_map(|st| st.step.join_table().map(str::to_string))
            .collect();
        for item in &file.items {
            let reads: Vec<&Ident> = match &item.kind {
                ItemKind::Stream(s) => std::iter::once(&s.input)
                    .chain(s.ops.iter().flat_map(|op| match &op.kind {
                        crate::syntax::pipe_ast::OpKind::Union(others) => others.iter().collect(),
                        _ => Vec::new(),
                    }))
                    .collect(),
                ItemKind::Edge(e) => vec![&e.from],
                _ => Vec::new(),
            };
            if let ItemKind::Source(s) = &item.kind {
                let refresh = self.program.sources.iter().find(|x| x.name == s.name.name).and_then(|x| x.refresh);
                if let Some((_, span)) = refresh.filter(|_| !tables.contains(&s.name.name)) {
                    self.diags.push(
                        Diagnostic::new(Code::E2023, span, format!("`{}` is not a join's table", s.name.name))
                            .label("nothing to read again")
                            .help(
                                "`refresh` reads a join's table again while a stream runs; no join reads this source",
                            ),
                    );
                }
            }
            for r in reads.into_iter().filter(|r| tables.contains(&r.name)) {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2023,
                        r.span,
                        format!("`{}` is a join's table, so it cannot also be read as a stream", r.name),
                    )
                    .label("read as a stream here")
                    .help(format!(
                        "a join reads `{}` whole before the run; declare a second source over the same files \
                         to read its records as a stream",
                        r.name
                    )),
                );
            }
        }
    }

    /// Checks a source; returns whether it is bounded (it has no streaming binding).
    fn source(&mut self, s: &SourceDecl) -> Option<bool> {
        if !self.define(&s.name.name, s.name.span, "source") {
            return None;
        }
        let record = super::type_expr(self.res, self.root, &s.ty, &mut self.diags);
        let row = match &record {
            Type::Struct(id, _) => Row {
                fields: self.res.schema.get_struct(*id).fields.iter().map(|f| (f.name.clone(), f.ty.clone())).collect(),
            },
            Type::Error => Row::default(),
            other => {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2001,
                        s.ty.span,
                        format!("a source's record type must be a struct, not `{other}`"),
                    )
                    .label("not a struct")
                    .help("name a Thrift struct that describes one record"),
                );
                Row::default()
            }
        };
        let mut out = hir::Source {
            name: s.name.name.clone(),
            record,
            row: row.clone(),
            event_time: None,
            watermark: None,
            late: hir::LatePolicy::Drop,
            idle_timeout: None,
            validate_unread: true,
            refresh: None,
            batch: None,
            stream: None,
            fit: None,
            fit_allows: Vec::new(),
            fit_min_rows: None,
            span: s.name.span,
        };
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut late_stream: Option<&Ident> = None;
        let mut needs_event_time: Vec<(&str, Span)> = Vec::new();
        for p in &s.props {
            let key = p.key.name.as_str();
            if let Some(first) = seen.insert(key, p.key.span) {
                self.diags.push(
                    Diagnostic::new(Code::E1005, p.key.span, format!("`{key}` is set twice"))
                        .label("second setting")
                        .secondary(first, "first set here")
                        .help("keep one of the settings"),
                );
                continue;
            }
            match (key, &p.value) {
                ("event_time", PropValue::Expr(e)) => {
                    let mut scope = Scope::new(&row.fields, VarKind::Field);
                    // With an unknown record type, every field is unknown: that was reported once.
                    scope.quiet = !matches!(out.record, Type::Struct(..));
                    let mut cx = self.cx(self.root);
                    let t = cx.expr(&scope, e);
                    if !matches!(t.ty.non_null(), Type::Timestamp | Type::Error) {
                        let help = if matches!(t.ty.non_null(), Type::Int | Type::String) {
                            "annotate the Thrift field with its unit: `(timestamp = \"millis\")` on an integer, `(timestamp = \"iso8601\")` on a string"
                        } else {
                            "name a field of type `timestamp`"
                        };
                        self.diags.push(
                            Diagnostic::new(
                                Code::E2007,
                                e.span,
                                format!("the event time must be a `timestamp`, but this is `{}`", t.ty),
                            )
                            .label(format!("this is `{}`", t.ty))
                            .help(help),
                        );
                    }
                    out.event_time = Some(t);
                }
                ("watermark", PropValue::Expr(e)) => {
                    out.watermark = self.duration_const(e, "the watermark bound");
                    needs_event_time.push(("watermark", p.key.span));
                }
                ("idle_timeout", PropValue::Expr(e)) => out.idle_timeout = self.duration_const(e, "the idle timeout"),
                ("refresh", PropValue::Expr(e)) => {
                    out.refresh = self.duration_const(e, "the refresh interval").map(|d| (d, p.key.span))
                }
                ("validate", PropValue::Expr(e)) => match &e.kind {
                    ExprKind::Name(w) if w.name == "all" || w.name == "read" => out.validate_unread = w.name == "all",
                    ExprKind::Error => {}
                    _ => self.diags.push(
                        Diagnostic::new(Code::E2001, e.span, "`validate` is `all` or `read`")
                            .label("not `all` or `read`")
                            .help(
                                "write `validate = all` to check every field of the schema (the default), or \
                                 `validate = read` to check only the fields the pipeline reads",
                            ),
                    ),
                },
                ("late", PropValue::Late(policy)) => {
                    needs_event_time.push(("late", p.key.span));
                    out.late = match policy {
                        LatePolicy::Drop(_) => hir::LatePolicy::Drop,
                        LatePolicy::To(name) => {
                            late_stream = Some(name);
                            hir::LatePolicy::To(name.name.clone())
                        }
                        LatePolicy::Allow(e) => {
                            hir::LatePolicy::Allow(self.duration_const(e, "the allowed lateness").unwrap_or(0))
                        }
                    };
                }
                ("fit", PropValue::Fit(e, clearance)) => {
                    out.fit = self.connector(e, true);
                    if let Some(c) = clearance {
                        let (purpose, allows, min_rows) = self.clearance_rules(c, true);
                        if let Some((_, span)) = purpose {
                            self.diags.push(
                                Diagnostic::new(Code::E2015, span, "the training data's clearance has no purpose")
                                    .label("a purpose")
                                    .help("say only what the fitted parameters may hold: `allow \"<category>\" as <form>`"),
                            );
                        }
                        out.fit_allows = allows;
                        out.fit_min_rows = min_rows;
                    }
                }
                ("batch" | "stream", PropValue::Expr(e)) => {
                    let c = self.connector(e, true);
                    if key == "batch" {
                        out.batch = c;
                    } else {
                        out.stream = c;
                    }
                }
                _ => {
                    self.diags.push(
                        Diagnostic::new(Code::E1017, p.key.span, format!("sources have no property `{key}`"))
                            .label("unknown property")
                            .help(
                                did_you_mean(key, SOURCE_PROPS.iter().copied())
                                    .unwrap_or_else(|| format!("the properties are {}", SOURCE_PROPS.join(", "))),
                            ),
                    );
                }
            }
        }
        for c in [&out.batch, &out.stream].into_iter().flatten() {
            self.message_fields(c, &row);
        }
        if !seen.contains_key("batch") && !seen.contains_key("stream") {
            self.diags.push(
                Diagnostic::new(Code::E2011, s.name.span, format!("source `{}` has no binding", s.name.name))
                    .label("reads from nowhere")
                    .help("add `batch = files(\"data/*.jsonl\", format = json)` or `stream = kafka(…)`"),
            );
        }
        if out.event_time.is_none() {
            for (what, span) in needs_event_time {
                self.diags.push(
                    Diagnostic::new(Code::E2011, span, format!("`{what}` needs an event time"))
                        .label("no `event_time` on this source")
                        .help("add `event_time = <timestamp field>` to the source"),
                );
            }
        }
        let bounded = !seen.contains_key("stream");
        let info = StreamInfo {
            row: row.clone(),
            bounded,
            event_time: out.event_time.is_some(),
            narrowed: Vec::new(),
            span: s.name.span,
            quiet: !matches!(out.record, Type::Struct(..)),
        };
        if let Some(name) = late_stream {
            if self.define(&name.name, name.span, "late stream") {
                self.infos.insert(name.name.clone(), StreamInfo { span: name.span, ..info.clone() });
            }
        }
        self.infos.insert(s.name.name.clone(), info);
        self.program.sources.push(out);
        Some(bounded)
    }

    /// The fields a Kafka binding fills from the message's metadata (`key_field = "…"`, …):
    /// each must be an optional field of the record with the metadata's type, since the payload
    /// does not carry it.
    fn message_fields(&mut self, c: &hir::Connector, row: &Row) {
        const FIELDS: [(&str, Type, &str); 4] = [
            ("key_field", Type::String, "string"),
            ("partition_field", Type::Int, "i64"),
            ("offset_field", Type::Int, "i64"),
            ("timestamp_field", Type::Timestamp, "i64 (timestamp = \"millis\")"),
        ];
        for (param, want, thrift) in FIELDS {
            let Some(hir::ConnectorArg::Text(name)) = c.args.iter().find(|(n, _)| n == param).map(|(_, a)| a) else {
                continue;
            };
            match row.fields.iter().find(|(f, _)| f == name) {
                None => self.diags.push(
                    Diagnostic::new(Code::E1016, c.span, format!("`{param}` names `{name}`, which the record does not have"))
                        .label(format!("no field `{name}`"))
                        .help(format!("add `optional {thrift} {name}` to the record's struct, or name one of its fields")),
                ),
                Some((_, ty)) if ty.non_null() != &want || !ty.is_nullable() => self.diags.push(
                    Diagnostic::new(
                        Code::E2001,
                        c.span,
                        format!("`{param}` fills `{name}` with a `{want}?`, but the field is `{ty}`"),
                    )
                    .label(format!("`{name}` is `{ty}`"))
                    .help(format!(
                        "declare it `optional {thrift} {name}`: the message's metadata fills it, the payload need not carry it"
                    )),
                ),
                Some(_) => {}
            }
        }
    }

    pub(super) fn duration_const(&mut self, e: &Expr, what: &str) -> Option<i64> {
        match e.kind {
            ExprKind::Duration(ms) if ms > 0 => Some(ms),
            ExprKind::Duration(_) => {
                self.diags.push(
                    Diagnostic::new(Code::E2018, e.span, format!("{what} must be longer than zero"))
                        .label("zero")
                        .help("write a positive duration such as `5m`"),
                );
                None
            }
            ExprKind::Error => None,
            _ => {
                self.diags.push(
                    Diagnostic::new(Code::E2018, e.span, format!("{what} must be a duration literal"))
                        .label("not a duration")
                        .help("write a duration such as `30s`, `5m` or `1h`"),
                );
                None
            }
        }
    }

    fn model(&mut self, name: &Ident, loader: &Expr) {
        if !self.define(&name.name, name.span, "model") {
            return;
        }
        let ExprKind::Call(kind, args) = &loader.kind else {
            self.diags.push(
                Diagnostic::new(Code::E1017, loader.span, "expected a model format such as `lightgbm(\"model.txt\")`")
                    .label("not a model")
                    .help(format!("the model formats are {}", MODEL_LOADERS.join(", "))),
            );
            return;
        };
        if !MODEL_LOADERS.contains(&kind.name.as_str()) {
            self.diags.push(
                Diagnostic::new(Code::E1017, kind.span, format!("unknown model format `{}`", kind.name))
                    .label("not a model format")
                    .help(
                        did_you_mean(&kind.name, MODEL_LOADERS.iter().copied())
                            .unwrap_or_else(|| format!("the model formats are {}", MODEL_LOADERS.join(", "))),
                    ),
            );
            return;
        }
        match args.as_slice() {
            [a] if a.name.is_none() => match &a.value.kind {
                ExprKind::Str(path) => self.program.models.push(hir::Model {
                    name: name.name.clone(),
                    kind: kind.name.clone(),
                    path: path.clone(),
                    span: name.span,
                }),
                _ => {
                    self.const_error(&a.value, "the model file", "a path in quotes");
                }
            },
            _ => self.diags.push(
                Diagnostic::new(
                    Code::E2003,
                    loader.span,
                    format!("`{}` takes one argument, the model file", kind.name),
                )
                .label("wrong arguments")
                .help(format!("write `{}(\"models/file\")`", kind.name)),
            ),
        }
    }
}
