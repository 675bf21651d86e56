//! Calls: builtin functions (their type rules live in `builtins/`), user functions, aggregate
//! calls inside `aggregate { … }`, and `declassify`, whose reason is a named argument.

use super::expr::{error, texpr, AggMode, ExprCx, Scope, VarKind, NULL_HELP};
use crate::builtins::{self, connectors, SigError};
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::hir::{Callee, TExpr, TExprKind};
use crate::source::Span;
use crate::syntax::ast::Ident;
use crate::syntax::pipe_ast::{Arg, ExprKind};
use crate::types::Type;

impl ExprCx<'_> {
    pub(super) fn call(&mut self, sc: &Scope, name: &Ident, args: &[Arg], span: Span) -> TExpr {
        if name.name == "declassify" {
            return self.declassify(sc, name, args, span);
        }
        for (i, a) in args.iter().enumerate() {
            if let Some(n) = &a.name {
                // `vocabulary(x, top = N)`: its one named argument.
                if name.name == "vocabulary" && n.name == "top" && i == 1 {
                    continue;
                }
                self.diags.push(
                    Diagnostic::new(Code::E1017, n.span, format!("`{}` does not take named arguments", name.name))
                        .label("named argument")
                        .help("pass the arguments by position"),
                );
            }
        }
        if let Some(agg) = builtins::aggregate(&name.name) {
            return self.aggregate_call(sc, agg, name, args, span);
        }
        let targs: Vec<TExpr> = args.iter().map(|a| self.expr(sc, &a.value)).collect();
        if let Some(sig) = self.fns.get(&name.name) {
            if sig.params.len() != targs.len() {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2003,
                        span,
                        format!(
                            "`{}` takes {} argument{}, but {} were given",
                            name.name,
                            sig.params.len(),
                            plural(sig.params.len()),
                            targs.len()
                        ),
                    )
                    .label("wrong number of arguments")
                    .secondary(sig.span, "defined here")
                    .help(format!(
                        "call it as `{}({})`",
                        name.name,
                        sig.params.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
                    )),
                );
            } else {
                for (a, (pname, pty)) in targs.iter().zip(&sig.params) {
                    self.argument(a, pty, &format!("parameter `{pname}` of `{}`", name.name));
                }
            }
            let ret = sig.ret.clone();
            return texpr(TExprKind::Call(Callee::User(name.name.clone(), sig.module), targs), ret, span);
        }
        if let Some(f) = builtins::function(&name.name) {
            if f.name == "env" && !matches!(args.first().map(|a| &a.value.kind), Some(ExprKind::Str(_)) | None) {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2018,
                        args[0].value.span,
                        "`env` needs the variable's name as a string literal",
                    )
                    .label("not a literal")
                    .help("write the name in quotes: `env(\"KAFKA_BROKERS\")`"),
                );
            }
            let types: Vec<Type> = targs.iter().map(|t| t.ty.clone()).collect();
            let ty = match (f.check)(&types) {
                Ok(t) => t,
                Err(e) => {
                    self.sig_error(e, f.name, f.signature, &targs, span);
                    Type::Error
                }
            };
            return texpr(TExprKind::Call(Callee::Builtin(f.name), targs), ty, span);
        }
        self.unknown_function(name);
        error(span)
    }

    /// `declassify(x, reason = "…")`: the reason must be a non-empty string literal.
    pub(super) fn declassify(&mut self, sc: &Scope, name: &Ident, args: &[Arg], span: Span) -> TExpr {
        let value = args.iter().find(|a| a.name.is_none());
        let reason = args.iter().find(|a| a.name.as_ref().is_some_and(|n| n.name == "reason"));
        let reason_text = match reason.map(|r| &r.value.kind) {
            Some(ExprKind::Str(s)) if !s.trim().is_empty() => Some(s.clone()),
            _ => None,
        };
        if value.is_none() || reason_text.is_none() || args.len() != 2 {
            self.diags.push(
                Diagnostic::new(Code::P009, span, "`declassify` needs a value and a written reason")
                    .label("no reason given")
                    .help("write `declassify(x, reason = \"why this may leave its labels behind\")`"),
            );
        }
        let v = value.map_or_else(|| error(span), |a| self.expr(sc, &a.value));
        let ty = v.ty.clone();
        let r = TExpr {
            kind: TExprKind::Str(reason_text.unwrap_or_default()),
            ty: Type::String,
            span: reason.map_or(span, |r| r.value.span),
        };
        texpr(TExprKind::Call(Callee::Builtin("declassify"), vec![v, r]), ty, name.span.to(span))
    }

    pub(super) fn aggregate_call(
        &mut self,
        sc: &Scope,
        agg: &'static builtins::Aggregate,
        name: &Ident,
        args: &[Arg],
        span: Span,
    ) -> TExpr {
        let (input, input_narrowed, event_time) = match sc.agg {
            AggMode::Outer { input, input_narrowed, event_time } => (input, input_narrowed, event_time),
            AggMode::Inner => {
                self.diags.push(
                    Diagnostic::new(Code::E2008, span, format!("aggregate `{}` inside another aggregate", name.name))
                        .label("nested aggregate")
                        .help("aggregate in two steps: a first `aggregate` per key, then a second stream that aggregates its output"),
                );
                return error(span);
            }
            AggMode::Off => {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2008,
                        span,
                        format!("`{}` is an aggregate: it can only be used inside `aggregate {{ … }}`", name.name),
                    )
                    .label("aggregate outside `aggregate`")
                    .help(format!("group the rows first: `| group by key | aggregate {{ x = {}(…) }}`", name.name)),
                );
                return error(span);
            }
        };
        let inner = Scope {
            vars: input,
            kind: VarKind::Field,
            narrowed: input_narrowed.to_vec(),
            agg: AggMode::Inner,
            quiet: sc.quiet,
        };
        let targs: Vec<TExpr> = args.iter().map(|a| self.expr(&inner, &a.value)).collect();
        if agg.needs_event_time && !event_time {
            self.diags.push(
                Diagnostic::new(
                    Code::E2006,
                    name.span,
                    format!("`{}` orders rows by event time, but this stream has none", name.name),
                )
                .label("needs an event time")
                .help("declare `event_time = <field>` on the source this stream reads"),
            );
        }
        let types: Vec<Type> = targs.iter().map(|t| t.ty.clone()).collect();
        let ty = match (agg.check)(&types) {
            Ok(t) => t,
            Err(e) => {
                self.sig_error(e, agg.name, agg.signature, &targs, span);
                Type::Error
            }
        };
        // `distinct` is `count_distinct` by another name: one aggregate from here on.
        let name = if agg.name == "distinct" { "count_distinct" } else { agg.name };
        texpr(TExprKind::Aggregate(name, targs), ty, span)
    }

    /// Checks an argument against a parameter type.
    pub fn argument(&mut self, a: &TExpr, want: &Type, what: &str) {
        if a.ty.assignable_to(want) {
            return;
        }
        if a.ty.non_null().assignable_to(want) && !matches!(a.ty, Type::Null) {
            self.null_error(a, what);
            return;
        }
        self.diags.push(
            Diagnostic::new(Code::E2001, a.span, format!("{what} is `{want}`, but this is `{}`", a.ty))
                .label(format!("this is `{}`", a.ty))
                .help(format!("pass a `{want}`")),
        );
    }

    pub(super) fn sig_error(&mut self, e: SigError, name: &str, signature: &str, args: &[TExpr], span: Span) {
        let d = match e {
            SigError::Arity(n) => Diagnostic::new(
                Code::E2003,
                span,
                format!(
                    "`{name}` takes {n} argument{}, but {} were given",
                    if n == "1" { "" } else { "s" },
                    args.len()
                ),
            )
            .label("wrong number of arguments"),
            SigError::Arg(i, expected) => {
                if args[i].ty.is_error() {
                    return;
                }
                Diagnostic::new(
                    Code::E2001,
                    args[i].span,
                    format!("`{name}` expects {expected} here, found `{}`", args[i].ty),
                )
                .label(format!("this is `{}`", args[i].ty))
            }
            SigError::Null(i) => {
                let text = self.text(args[i].span);
                Diagnostic::new(Code::E2002, args[i].span, format!("`{text}` may be null, but `{name}` needs a value"))
                    .label(format!("this is `{}`", args[i].ty))
                    .note(NULL_HELP)
            }
        };
        self.diags.push(d.help(format!("the signature is `{signature}`")));
    }

    pub(super) fn unknown_function(&mut self, name: &Ident) {
        let n = name.name.as_str();
        let help = if builtins::WINDOWS.contains(&n) {
            format!("`{n}` is a window: use it as a step, `| window {n}(…)`")
        } else if builtins::MODEL_LOADERS.contains(&n) {
            format!("`{n}` loads a model: use it as `model name = {n}(\"file\")`")
        } else if connectors::connector(n).is_some() {
            format!("`{n}` is a connector: use it in a source binding (`batch = {n}(…)`) or a sink")
        } else {
            let mut names: Vec<&str> = builtins::functions::ALL.iter().map(|f| f.name).collect();
            names.extend(builtins::aggregates::ALL.iter().map(|f| f.name));
            names.extend(self.fns.keys().map(String::as_str));
            did_you_mean(n, names).unwrap_or_else(|| {
                "define it with `fn`, or import the file that does; the language reference lists the builtins"
                    .to_string()
            })
        };
        self.diags.push(
            Diagnostic::new(Code::E1008, name.span, format!("unknown function `{n}`")).label("not defined").help(help),
        );
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
