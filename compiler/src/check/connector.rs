//! Connector calls: the bindings of sources (`files(…)`, `kafka(…)`) and the targets of sinks,
//! checked against the connector table in `builtins/connectors.rs`. String arguments are
//! literals or `env("NAME")`; a sink's row expressions (`partition_by`, `key`) are kept for the
//! edges to type.

use super::Checker;
use crate::builtins::connectors::{self, ArgKind};
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::hir::{Connector, ConnectorArg};
use crate::syntax::pipe_ast::{Expr, ExprKind};

/// Where a Kafka source may start, besides a timestamp.
const KAFKA_STARTS: &[&str] = &["earliest", "latest", "group"];

impl Checker<'_> {
    /// Checks a connector call for a source (`as_source`) or a sink. Row expressions in a
    /// sink's arguments are kept for the edges to type.
    pub(super) fn connector(&mut self, e: &Expr, as_source: bool) -> Option<Connector> {
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
        // A PostgreSQL source reads a table or the rows of a query: one of them.
        if spec.name == "postgres" && as_source && given.contains(&"table") == given.contains(&"query") {
            let both = given.contains(&"table");
            self.diags.push(
                Diagnostic::new(
                    Code::E2011,
                    e.span,
                    if both {
                        "`postgres` reads a `table` or a `query`, not both"
                    } else {
                        "`postgres` needs a `table` or a `query` to read"
                    },
                )
                .label(if both { "both given" } else { "neither given" })
                .help("write `table = \"loans\"`, or `query = \"SELECT … FROM …\"` for rows a query selects"),
            );
        }
        Some(out)
    }

    pub(super) fn connector_arg(&mut self, kind: ArgKind, v: &Expr, param: &str) -> Option<ConnectorArg> {
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
            (ArgKind::Start, ExprKind::Name(n)) if KAFKA_STARTS.contains(&n.name.as_str()) => {
                Some(ConnectorArg::Word(n.name.clone()))
            }
            (ArgKind::Start, ExprKind::Timestamp(ms)) => Some(ConnectorArg::Int(*ms)),
            (ArgKind::Start, _) => {
                let found = self.res.sources.text(v.span).to_string();
                self.diags.push(
                    Diagnostic::new(
                        Code::E2001,
                        v.span,
                        format!(
                            "`{param}` must be one of {} or a timestamp such as `@2026-01-31`",
                            KAFKA_STARTS.join(", ")
                        ),
                    )
                    .label(format!("`{found}` is not one of them"))
                    .help(
                        did_you_mean(&found, KAFKA_STARTS.iter().copied()).unwrap_or_else(|| {
                            format!("write `{param} = earliest` or `{param} = @2026-01-31T00:00:00Z`")
                        }),
                    ),
                );
                None
            }
            (ArgKind::Duration, ExprKind::Duration(ms)) if *ms > 0 => Some(ConnectorArg::Int(*ms)),
            (ArgKind::Duration, _) => self.const_error(v, param, "a positive duration such as `7d`"),
            (ArgKind::RowExprs, ExprKind::List(items)) => Some(ConnectorArg::Exprs(items.clone())),
            (ArgKind::RowExprs, _) => Some(ConnectorArg::Exprs(vec![v.clone()])),
        }
    }

    pub(super) fn const_error(&mut self, v: &Expr, param: &str, what: &str) -> Option<ConnectorArg> {
        self.diags.push(
            Diagnostic::new(Code::E2018, v.span, format!("`{param}` must be {what}"))
                .label("not a constant")
                .help(format!("connector arguments are fixed when the pipeline starts: write {what}")),
        );
        None
    }
}
