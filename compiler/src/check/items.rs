//! The items of the root file other than streams: sources (with their bindings, event time,
//! watermark and late policy), models, sinks (with their clearances) and edges; then the
//! warnings about streams and sinks that are not wired.

use std::collections::{HashMap, HashSet};

use super::expr::{Scope, VarKind};
use super::{Checker, StreamInfo};
use crate::builtins::connectors::{self, ArgKind};
use crate::builtins::MODEL_LOADERS;
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::hir::{self, Connector, ConnectorArg, Row};
use crate::source::Span;
use crate::syntax::ast::Ident;
use crate::syntax::pipe_ast::{
    Clearance, ClearanceRule, EdgeTarget, Expr, ExprKind, ItemKind, LatePolicy, PropValue, SourceDecl,
};
use crate::types::Type;

/// The forms a labeled value can take, most revealing first.
pub const FORMS: &[&str] = &["raw", "tokenized", "pseudonymized", "generalized", "aggregated", "redacted"];

const SOURCE_PROPS: &[&str] = &["event_time", "watermark", "late", "idle_timeout", "batch", "stream"];

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
            batch: None,
            stream: None,
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

    /// Checks a connector call for a source (`as_source`) or a sink. Row expressions in a
    /// sink's arguments are kept for the edges to type.
    fn connector(&mut self, e: &Expr, as_source: bool) -> Option<Connector> {
        let role = if as_source { "source" } else { "sink" };
        let (name, args) = match &e.kind {
            ExprKind::Call(name, args) => (name, args),
            ExprKind::Error => return None,
            _ => {
                self.diags.push(
                    Diagnostic::new(Code::E1017, e.span, format!("expected a {role} connector"))
                        .label("not a connector call")
                        .help(if as_source {
                            "write a connector such as `files(\"data/*.jsonl\", format = json)`"
                        } else {
                            "write a connector such as `parquet(\"out/dir\")`"
                        }),
                );
                return None;
            }
        };
        let usable: Vec<&str> = connectors::CONNECTORS.iter().filter(|c| c.allows(as_source)).map(|c| c.name).collect();
        let Some(spec) = connectors::connector(&name.name).filter(|c| c.allows(as_source)) else {
            let known = connectors::connector(&name.name).is_some();
            let msg = if known {
                format!("`{}` cannot be used as a {role}", name.name)
            } else {
                format!("unknown connector `{}`", name.name)
            };
            self.diags.push(
                Diagnostic::new(Code::E1017, name.span, msg)
                    .label(if known { format!("not a {role} connector") } else { "not a connector".to_string() })
                    .help(
                        did_you_mean(&name.name, usable.iter().copied())
                            .unwrap_or_else(|| format!("{role} connectors are {}", usable.join(", "))),
                    ),
            );
            return None;
        };
        let params = spec.params(as_source);
        let mut out = Connector { name: spec.name.to_string(), args: Vec::new(), span: e.span };
        let mut positional = params.iter().filter(|p| p.positional);
        let mut given: Vec<&str> = Vec::new();
        for a in args {
            let param = match &a.name {
                Some(n) => match params.iter().find(|p| p.name == n.name) {
                    Some(p) => p,
                    None => {
                        self.diags.push(
                            Diagnostic::new(
                                Code::E1017,
                                n.span,
                                format!("`{}` has no parameter `{}`", spec.name, n.name),
                            )
                            .label("unknown parameter")
                            .help(
                                did_you_mean(&n.name, params.iter().map(|p| p.name)).unwrap_or_else(|| {
                                    format!(
                                        "its parameters are {}",
                                        params.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                                    )
                                }),
                            ),
                        );
                        continue;
                    }
                },
                None => match positional.next() {
                    Some(p) => p,
                    None => {
                        self.diags.push(
                            Diagnostic::new(
                                Code::E2003,
                                a.value.span,
                                format!("too many arguments for `{}`", spec.name),
                            )
                            .label("extra argument")
                            .help(format!(
                                "name the argument: {}",
                                params.iter().map(|p| format!("`{} = …`", p.name)).collect::<Vec<_>>().join(", ")
                            )),
                        );
                        continue;
                    }
                },
            };
            if given.contains(&param.name) {
                self.diags.push(
                    Diagnostic::new(Code::E1005, a.value.span, format!("`{}` is given twice", param.name))
                        .label("second value")
                        .help("give each parameter once"),
                );
                continue;
            }
            given.push(param.name);
            if let Some(v) = self.connector_arg(param.kind, &a.value, param.name) {
                out.args.push((param.name.to_string(), v));
            }
        }
        for p in params.iter().filter(|p| p.required) {
            if !given.contains(&p.name) {
                self.diags.push(
                    Diagnostic::new(Code::E2011, e.span, format!("`{}` needs `{}`", spec.name, p.name))
                        .label(format!("`{}` is missing", p.name))
                        .help(format!("add `{} = …`", p.name)),
                );
            }
        }
        Some(out)
    }

    fn connector_arg(&mut self, kind: ArgKind, v: &Expr, param: &str) -> Option<ConnectorArg> {
        match (kind, &v.kind) {
            (_, ExprKind::Error) => None,
            (ArgKind::Text, ExprKind::Str(s)) => Some(ConnectorArg::Text(s.clone())),
            (ArgKind::Text, ExprKind::Call(f, args)) if f.name == "env" => match args.as_slice() {
                [a] if a.name.is_none() => match &a.value.kind {
                    ExprKind::Str(s) => Some(ConnectorArg::Env(s.clone())),
                    _ => self.const_error(v, param, "`env(\"NAME\")` with the name in quotes"),
                },
                _ => self.const_error(v, param, "`env(\"NAME\")` with one name"),
            },
            (ArgKind::Text, _) => self.const_error(v, param, "a string in quotes or `env(\"NAME\")`"),
            (ArgKind::Int, ExprKind::Int(n)) => Some(ConnectorArg::Int(*n)),
            (ArgKind::Int, _) => self.const_error(v, param, "an integer"),
            (ArgKind::Word(words), ExprKind::Name(n)) if words.contains(&n.name.as_str()) => {
                Some(ConnectorArg::Word(n.name.clone()))
            }
            (ArgKind::Word(words), _) => {
                let found = self.res.sources.text(v.span).to_string();
                self.diags.push(
                    Diagnostic::new(Code::E2001, v.span, format!("`{param}` must be one of {}", words.join(", ")))
                        .label(format!("`{found}` is not one of them"))
                        .help(
                            did_you_mean(&found, words.iter().copied())
                                .unwrap_or_else(|| format!("write `{param} = {}`", words[0])),
                        ),
                );
                None
            }
            (ArgKind::RowExprs, ExprKind::List(items)) => Some(ConnectorArg::Exprs(items.clone())),
            (ArgKind::RowExprs, _) => Some(ConnectorArg::Exprs(vec![v.clone()])),
        }
    }

    fn const_error(&mut self, v: &Expr, param: &str, what: &str) -> Option<ConnectorArg> {
        self.diags.push(
            Diagnostic::new(Code::E2018, v.span, format!("`{param}` must be {what}"))
                .label("not a constant")
                .help(format!("connector arguments are fixed when the pipeline starts: write {what}")),
        );
        None
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

    /// Checks a sink and adds it to the program; returns its index.
    fn sink(&mut self, name: &str, span: Span, connector: &Expr, clearance: Option<&Clearance>) -> Option<usize> {
        let connector = self.connector(connector, false)?;
        let mut purpose: Option<(String, Span)> = None;
        let mut allows = Vec::new();
        for rule in clearance.map(|c| c.rules.as_slice()).unwrap_or_default() {
            match rule {
                ClearanceRule::Purpose(p) => {
                    if let Some((_, first)) = &purpose {
                        self.diags.push(
                            Diagnostic::new(Code::E2015, p.span, "a sink has one purpose")
                                .label("second purpose")
                                .secondary(*first, "first purpose")
                                .help("keep one `purpose = …`; make a second sink for another use"),
                        );
                    }
                    purpose = Some((p.value.clone(), p.span));
                }
                ClearanceRule::Allow { category, form } => {
                    if !FORMS.contains(&form.name.as_str()) {
                        self.diags.push(
                            Diagnostic::new(Code::E2015, form.span, format!("unknown form `{}`", form.name))
                                .label("not a form")
                                .help(
                                    did_you_mean(&form.name, FORMS.iter().copied())
                                        .unwrap_or_else(|| format!("the forms are {}", FORMS.join(", "))),
                                ),
                        );
                        continue;
                    }
                    let valid = !category.value.is_empty()
                        && category.value.split('.').all(|part| {
                            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                        });
                    if !valid {
                        self.diags.push(
                            Diagnostic::new(
                                Code::E2015,
                                category.span,
                                format!("`{}` is not a category name", category.value),
                            )
                            .label("not a dotted category")
                            .help("categories are dotted names such as \"user.financial.income\""),
                        );
                        continue;
                    }
                    allows.push(hir::Allow {
                        category: category.value.clone(),
                        form: form.name.clone(),
                        span: category.span.to(form.span),
                    });
                }
            }
        }
        self.program.sinks.push(hir::Sink {
            name: name.to_string(),
            connector,
            purpose: purpose.map(|p| p.0),
            allows,
            span,
        });
        Some(self.program.sinks.len() - 1)
    }

    fn edge(&mut self, from: &Ident, to: &EdgeTarget, span: Span) {
        let info = self.infos.get(&from.name).cloned();
        if info.is_none() {
            if self.program.sinks.iter().any(|s| s.name == from.name) {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2016,
                        from.span,
                        format!("`{}` is a sink; an edge starts at a stream", from.name),
                    )
                    .label("a sink")
                    .help("write `stream -> sink`"),
                );
            } else if !self.names.contains_key(&from.name) {
                let mut names: Vec<&str> = self.infos.keys().map(String::as_str).collect();
                names.sort_unstable();
                self.diags.push(
                    Diagnostic::new(Code::E1009, from.span, format!("unknown stream `{}`", from.name))
                        .label("not defined")
                        .help(
                            did_you_mean(&from.name, names.iter().copied())
                                .unwrap_or_else(|| "define it with `stream` or `source`".to_string()),
                        ),
                );
            }
        }
        let sink = match to {
            EdgeTarget::Named(n) => match self.program.sinks.iter().position(|s| s.name == n.name) {
                Some(i) => Some(i),
                None => {
                    if self.infos.contains_key(&n.name) {
                        self.diags.push(
                            Diagnostic::new(
                                Code::E2016,
                                n.span,
                                format!("`{}` is a stream; an edge ends at a sink", n.name),
                            )
                            .label("a stream")
                            .help(format!(
                                "to feed one stream from another, write `stream {} = {} | …`",
                                n.name, from.name
                            )),
                        );
                    } else if !self.names.contains_key(&n.name) {
                        self.diags.push(
                            Diagnostic::new(Code::E1010, n.span, format!("unknown sink `{}`", n.name))
                                .label("not defined")
                                .help(did_you_mean(&n.name, self.program.sinks.iter().map(|s| s.name.as_str()))
                                    .unwrap_or_else(|| format!("define it with `sink {} = …`, or write a connector here such as `files(\"out/dir\", format = json)`", n.name))),
                        );
                    }
                    None
                }
            },
            // An inline sink exists only for its edge, so it is made only when the edge is sound.
            EdgeTarget::Inline { connector, clearance } if info.is_some() => {
                let kind = match &connector.kind {
                    ExprKind::Call(n, _) => n.name.as_str(),
                    _ => "sink",
                };
                let mut name = format!("{}->{kind}", from.name);
                let mut n = 1;
                while self.program.sinks.iter().any(|s| s.name == name) {
                    n += 1;
                    name = format!("{}->{kind}#{n}", from.name);
                }
                self.sink(&name, connector.span, connector, clearance.as_ref())
            }
            EdgeTarget::Inline { .. } => None,
        };
        let (Some(info), Some(sink)) = (info, sink) else {
            return;
        };
        // Row expressions in the sink's arguments are typed against the row that reaches it.
        let mut sink_exprs = Vec::new();
        let args = self.program.sinks[sink].connector.args.clone();
        for (param, arg) in args {
            let ConnectorArg::Exprs(exprs) = arg else {
                continue;
            };
            let mut cx = self.cx(self.root);
            let mut scope = Scope::new(&info.row.fields, VarKind::Field);
            scope.narrowed = info.narrowed.clone();
            scope.quiet = info.quiet;
            let before = cx.diags.len();
            let typed: Vec<_> = exprs.iter().map(|e| cx.expr(&scope, e)).collect();
            // Point from problems in the sink's arguments back to the edge whose rows caused them.
            for d in &mut self.diags[before..] {
                d.secondary.push(crate::diagnostics::Label {
                    span: from.span,
                    message: format!("for the rows of `{}`", from.name),
                });
            }
            for t in &typed {
                if matches!(t.ty.non_null(), Type::List(_) | Type::Set(_) | Type::Map(..) | Type::Struct(..)) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::E2001,
                            t.span,
                            format!("`{param}` needs a scalar value, but this is `{}`", t.ty),
                        )
                        .label("not a scalar")
                        .help("partition and key by a string, number, date or enum"),
                    );
                }
            }
            sink_exprs.push((param, typed));
        }
        self.program.edges.push(hir::Edge { from: from.name.clone(), to: sink, sink_exprs, span });
    }

    /// W0001 for streams whose rows reach no sink, W0002 for sinks that receive nothing.
    fn unwired<'i>(&mut self, streams: impl Iterator<Item = &'i Ident>) {
        let mut reaching: HashSet<String> = self.program.edges.iter().map(|e| e.from.clone()).collect();
        loop {
            let before = reaching.len();
            for s in &self.program.streams {
                if reaching.contains(&s.name) {
                    reaching.insert(s.input.clone());
                    for step in &s.steps {
                        if let hir::Step::Union(others) = &step.step {
                            reaching.extend(others.iter().cloned());
                        }
                    }
                }
            }
            if reaching.len() == before {
                break;
            }
        }
        for name in streams {
            if !reaching.contains(&name.name) && self.program.streams.iter().any(|s| s.name == name.name) {
                self.diags.push(
                    Diagnostic::new(Code::W0001, name.span, format!("stream `{}` never reaches a sink", name.name))
                        .label("computed but never written")
                        .help(format!(
                            "add an edge such as `{} -> files(\"out/{}\", format = json)`, or remove the stream",
                            name.name, name.name
                        )),
                );
            }
        }
        let fed: HashSet<usize> = self.program.edges.iter().map(|e| e.to).collect();
        for (i, s) in self.program.sinks.iter().enumerate() {
            if !fed.contains(&i) {
                self.diags.push(
                    Diagnostic::new(Code::W0002, s.span, format!("sink `{}` receives no stream", s.name))
                        .label("nothing is written here")
                        .help(format!("add an edge `<stream> -> {}`", s.name)),
                );
            }
        }
    }
}
