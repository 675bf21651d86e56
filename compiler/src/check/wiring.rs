//! Sinks and edges: each sink's clearance, each `stream -> sink` edge (typing the sink's row
//! expressions against the stream that reaches it), and the warnings for streams that reach no
//! sink and sinks that receive nothing.

use std::collections::HashSet;

use super::expr::{Scope, VarKind};
use super::items::FORMS;
use super::Checker;
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::hir::{self, ConnectorArg};
use crate::source::Span;
use crate::syntax::ast::Ident;
use crate::syntax::pipe_ast::{Clearance, ClearanceRule, EdgeTarget, Expr, ExprKind};
use crate::types::Type;

impl Checker<'_> {
    /// Checks a sink and adds it to the program; returns its index.
    pub(super) fn sink(
        &mut self,
        name: &str,
        span: Span,
        connector: &Expr,
        clearance: Option<&Clearance>,
    ) -> Option<usize> {
        let connector = self.connector(connector, false)?;
        let (purpose, allows, _) = clearance.map(|c| self.clearance_rules(c, false)).unwrap_or_default();
        self.program.sinks.push(hir::Sink {
            name: name.to_string(),
            connector,
            purpose: purpose.map(|p| p.0),
            allows,
            span,
        });
        Some(self.program.sinks.len() - 1)
    }

    /// The purpose (with its span), the `allow` rules and the `k >= N` of a clearance block;
    /// `k >= N` only in a source's training binding (`training`).
    pub(super) fn clearance_rules(
        &mut self,
        clearance: &Clearance,
        training: bool,
    ) -> (Option<(String, Span)>, Vec<hir::Allow>, Option<i64>) {
        let mut purpose: Option<(String, Span)> = None;
        let mut allows = Vec::new();
        let mut min_rows = None;
        for rule in &clearance.rules {
            match rule {
                ClearanceRule::MinRows { span, .. } if !training => {
                    self.diags.push(
                        Diagnostic::new(Code::E2015, *span, "a sink's clearance has no `k >= N`")
                            .label("only a source's training data has a minimum size")
                            .help("aggregate before the sink instead: `aggregate(k >= 10) { … }`"),
                    );
                }
                ClearanceRule::MinRows { k, .. } => match k.kind {
                    ExprKind::Int(n) if n >= 2 => min_rows = Some(n),
                    ExprKind::Error => {}
                    _ => self.diags.push(
                        Diagnostic::new(
                            Code::E2018,
                            k.span,
                            "the minimum number of training rows must be a whole number of at least 2",
                        )
                        .label("not a positive integer literal")
                        .help("write `fit = files(\"train.jsonl\", format = json) { k >= 50 … }`"),
                    ),
                },
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
        (purpose, allows, min_rows)
    }

    pub(super) fn edge(&mut self, from: &Ident, to: &EdgeTarget, span: Span) {
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
            // PostgreSQL's and Redis's `key` (and Redis's `version`) name fields of the row.
            let store = match self.program.sinks[sink].connector.name.as_str() {
                "postgres" => Some("a PostgreSQL"),
                "redis" => Some("a Redis"),
                _ => None,
            };
            let columns = store.filter(|_| param == "key" || param == "version");
            for t in &typed {
                if let (Some(store), false) = (columns, matches!(t.kind, hir::TExprKind::Var(_))) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::E2001,
                            t.span,
                            format!("{store} sink's `{param}` names fields of its rows"),
                        )
                        .label("not a field of the row")
                        .help(format!(
                            "compute the value in a `select` step, then name its field: `{param} = [member_id]`"
                        )),
                    );
                }
                if param == "version" && !matches!(t.ty.non_null(), Type::Timestamp | Type::Int) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::E2001,
                            t.span,
                            format!("a `version` is a timestamp or an integer, not `{}`", t.ty),
                        )
                        .label("not a version")
                        .help("name the field that orders a key's rows, such as `window_end`"),
                    );
                }
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
    pub(super) fn unwired<'i>(&mut self, streams: impl Iterator<Item = &'i Ident>) {
        // A stream with a `require` step is an end too: its rows decide whether the run fails.
        let mut reaching: HashSet<String> = self.program.edges.iter().map(|e| e.from.clone()).collect();
        reaching.extend(
            self.program
                .streams
                .iter()
                .filter(|s| s.steps.iter().any(|st| matches!(st.step, hir::Step::Require(..))))
                .map(|s| s.name.clone()),
        );
        loop {
            let before = reaching.len();
            for s in &self.program.streams {
                if reaching.contains(&s.name) {
                    reaching.insert(s.input.clone());
                    for step in &s.steps {
                        match &step.step {
                            hir::Step::Union(others) => reaching.extend(others.iter().cloned()),
                            // A stream a join meets reaches the join's sinks.
                            hir::Step::Join { table, .. } => {
                                reaching.insert(table.clone());
                            }
                            _ => {}
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
