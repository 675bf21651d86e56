//! Checking, stage 3: types, nullability, boundedness, event time and the wiring of sources,
//! streams, models and sinks. Produces the typed program ([`crate::hir::Program`]) and every
//! diagnostic found; it never stops at the first.

mod call;
mod connector;
pub mod expr;
mod items;
pub mod narrow;
mod stream;
mod window;
mod wiring;

use std::collections::HashMap;

use crate::diagnostics::{Code, Diagnostic};
use crate::hir::{self, Callee, Program, Row, TExpr, TExprKind};
use crate::resolve::schema::unknown_type;
use crate::resolve::{ModuleId, Resolved, TypeSym};
use crate::source::Span;
use crate::syntax::pipe_ast::{ItemKind, StreamDecl, TypeExpr, TypeExprKind};
use crate::types::{primitive, Type};
use expr::{ExprCx, FnSig, Scope, VarKind};

/// The fields of the built-in `rejected` stream.
pub fn rejected_fields() -> Vec<(String, Type)> {
    items::rejected_row().fields
}

/// What the checker knows about a named stream (a source, a `stream`, a late side output or
/// `rejected`) once its rows are typed.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub row: Row,
    pub bounded: bool,
    pub event_time: bool,
    pub narrowed: Vec<Vec<String>>,
    pub span: Span,
    /// Its row is uncertain because of an earlier error: unknown fields are not reported.
    pub quiet: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Visit {
    InProgress,
    Done,
}

struct Checker<'a> {
    res: &'a Resolved,
    plans: &'a ProtectPlans,
    root: ModuleId,
    /// Functions visible in each module: its own and those of the files it imports.
    fns: HashMap<ModuleId, HashMap<String, FnSig>>,
    diags: Vec<Diagnostic>,
    program: Program,
    infos: HashMap<String, StreamInfo>,
    decls: HashMap<String, &'a StreamDecl>,
    visits: HashMap<String, Visit>,
    /// Every name defined at the top of the root file, with where, for duplicate checks.
    names: HashMap<String, (Span, &'static str)>,
}

/// The masks `protect for` steps apply, by the step's span: chosen by the privacy analysis,
/// then applied to the row types by a second check.
pub type ProtectPlans = HashMap<Span, Vec<(String, hir::Mask)>>;

/// Checks a resolved program.
pub fn check(res: &Resolved) -> (Program, Vec<Diagnostic>) {
    check_with(res, &ProtectPlans::new())
}

/// Checks a resolved program, applying the masks `plans` chose for `protect for` steps.
pub fn check_with(res: &Resolved, plans: &ProtectPlans) -> (Program, Vec<Diagnostic>) {
    let mut c = Checker {
        plans,
        res,
        root: res.root,
        fns: HashMap::new(),
        diags: Vec::new(),
        program: Program::default(),
        infos: HashMap::new(),
        decls: HashMap::new(),
        visits: HashMap::new(),
        names: HashMap::new(),
    };
    c.functions();
    c.items();
    (c.program, c.diags)
}

impl<'a> Checker<'a> {
    fn cx(&mut self, module: ModuleId) -> ExprCx<'_> {
        let fns = self.fns.entry(module).or_default();
        ExprCx { res: self.res, module, fns, diags: &mut self.diags }
    }

    /// Records a top-level name of the root file; a second definition is an error.
    fn define(&mut self, name: &str, span: Span, what: &'static str) -> bool {
        if let Some((first, first_what)) = self.names.get(name) {
            self.diags.push(
                Diagnostic::new(Code::E1005, span, format!("`{name}` is already defined as a {first_what}"))
                    .label(format!("this {what}"))
                    .secondary(*first, "first defined here")
                    .help("sources, streams, sinks and models share one namespace: rename one of them"),
            );
            return false;
        }
        self.names.insert(name.to_string(), (span, what));
        true
    }

    /// Signatures of every function in every `.pipe` module, then their bodies.
    fn functions(&mut self) {
        let res = self.res;
        let mut own: HashMap<ModuleId, HashMap<String, FnSig>> = HashMap::new();
        let mut bodies = Vec::new();
        for i in 0..res.modules.len() {
            let m = ModuleId(i as u32);
            let Some(file) = res.pipe(m) else { continue };
            let table = own.entry(m).or_default();
            for item in &file.items {
                let ItemKind::Fn(f) = &item.kind else {
                    continue;
                };
                if crate::builtins::function(&f.name.name).is_some()
                    || crate::builtins::aggregate(&f.name.name).is_some()
                {
                    self.diags.push(
                        Diagnostic::new(Code::E1005, f.name.span, format!("`{}` is a builtin function", f.name.name))
                            .label("would hide the builtin")
                            .help("give your function another name"),
                    );
                    continue;
                }
                if let Some(prev) = table.get(&f.name.name) {
                    self.diags.push(
                        Diagnostic::new(
                            Code::E1005,
                            f.name.span,
                            format!("function `{}` is defined twice", f.name.name),
                        )
                        .label("second definition")
                        .secondary(prev.span, "first defined here")
                        .help("rename one of the functions"),
                    );
                    continue;
                }
                let mut params: Vec<(String, Type)> = Vec::new();
                for p in &f.params {
                    let ty = type_expr(res, m, &p.ty, &mut self.diags);
                    if params.iter().any(|(n, _)| *n == p.name.name) {
                        self.diags.push(
                            Diagnostic::new(
                                Code::E1007,
                                p.name.span,
                                format!("parameter `{}` is declared twice", p.name.name),
                            )
                            .label("second declaration")
                            .help("give each parameter its own name"),
                        );
                    }
                    params.push((p.name.name.clone(), ty));
                }
                let ret = type_expr(res, m, &f.ret, &mut self.diags);
                table.insert(f.name.name.clone(), FnSig { module: m, params, ret, span: f.name.span });
                bodies.push((m, f));
            }
        }
        for (i, _) in res.modules.iter().enumerate() {
            let m = ModuleId(i as u32);
            if res.pipe(m).is_none() {
                continue;
            }
            let mut visible = own.get(&m).cloned().unwrap_or_default();
            for imp in &res.module(m).imports {
                for (name, sig) in own.get(imp).into_iter().flatten() {
                    visible.entry(name.clone()).or_insert_with(|| sig.clone());
                }
            }
            self.fns.insert(m, visible);
        }
        for (m, f) in bodies {
            let sig = self.fns[&m][&f.name.name].clone();
            let mut cx = self.cx(m);
            let scope = Scope::new(&sig.params, VarKind::Param);
            let body = cx.expr(&scope, &f.body);
            if !body.ty.assignable_to(&sig.ret) {
                if body.ty.non_null().assignable_to(&sig.ret) && !matches!(body.ty, Type::Null) {
                    cx.null_error(&body, &format!("the declared return type `{}`", sig.ret));
                } else {
                    self.diags.push(
                        Diagnostic::new(
                            Code::E2001,
                            body.span,
                            format!("`{}` returns `{}`, but its body is `{}`", f.name.name, sig.ret, body.ty),
                        )
                        .label(format!("this is `{}`", body.ty))
                        .secondary(f.ret.span, "declared here")
                        .help(format!("change the return type to `{}` or the body to a `{}`", body.ty, sig.ret)),
                    );
                }
            }
            self.program.functions.push(hir::Function {
                name: f.name.name.clone(),
                module: m,
                params: sig.params.clone(),
                ret: sig.ret.clone(),
                body,
                span: f.name.span,
            });
        }
        self.recursion();
    }

    /// Functions are inlined into the generated stage code, so they may not call themselves.
    fn recursion(&mut self) {
        let fns = &self.program.functions;
        let index: HashMap<(String, ModuleId), usize> =
            fns.iter().enumerate().map(|(i, f)| ((f.name.clone(), f.module), i)).collect();
        let calls: Vec<Vec<usize>> = fns
            .iter()
            .map(|f| {
                let mut out = Vec::new();
                visit_calls(&f.body, &mut |name, m| {
                    if let Some(&j) = index.get(&(name.to_string(), m)) {
                        out.push(j);
                    }
                });
                out
            })
            .collect();
        for start in 0..fns.len() {
            // Is `start` reachable from itself?
            let mut stack = calls[start].clone();
            let mut seen = vec![false; fns.len()];
            while let Some(n) = stack.pop() {
                if n == start {
                    self.diags.push(
                        Diagnostic::new(Code::E2017, fns[start].span, format!("function `{}` calls itself", fns[start].name))
                            .label("recursive")
                            .help("functions are inlined into the pipeline, so recursion is not allowed: write the computation without it"),
                    );
                    break;
                }
                if !std::mem::replace(&mut seen[n], true) {
                    stack.extend(calls[n].iter().copied());
                }
            }
        }
    }
}

fn visit_calls(e: &TExpr, f: &mut impl FnMut(&str, ModuleId)) {
    if let TExprKind::Call(Callee::User(name, m), _) = &e.kind {
        f(name, *m);
    }
    for child in e.children() {
        visit_calls(child, f);
    }
}

/// The type a `.pipe` type expression names in module `m`.
pub fn type_expr(res: &Resolved, m: ModuleId, t: &TypeExpr, diags: &mut Vec<Diagnostic>) -> Type {
    match &t.kind {
        TypeExprKind::Error => Type::Error,
        TypeExprKind::Nullable(inner) => type_expr(res, m, inner, diags).nullable(),
        TypeExprKind::Named(id) => {
            if let Some(p) = primitive(&id.name) {
                return p;
            }
            match res.schema.lookup(res, m, &id.name) {
                Ok(TypeSym::Struct(s)) => Type::Struct(s, res.schema.get_struct(s).name.clone()),
                Ok(TypeSym::Enum(e)) => Type::Enum(e, res.schema.get_enum(e).name.clone()),
                Ok(TypeSym::Typedef(i)) => res.schema.typedefs[i].resolved.clone().map_or(Type::Error, |r| r.0),
                Ok(TypeSym::Const(_)) => {
                    diags.push(
                        Diagnostic::new(Code::E1004, id.span, format!("`{}` is a constant, not a type", id.name))
                            .label("not a type")
                            .help("use a struct, enum, typedef or builtin type here"),
                    );
                    Type::Error
                }
                Err(e) => {
                    diags.push(unknown_type(&id.name, id.span, e));
                    Type::Error
                }
            }
        }
        TypeExprKind::Generic(id, args) => {
            let arity = match id.name.as_str() {
                "list" | "set" => 1,
                "map" => 2,
                _ => {
                    diags.push(
                        Diagnostic::new(Code::E1004, id.span, format!("unknown generic type `{}`", id.name))
                            .label("not a generic type")
                            .help("the generic types are `list<T>`, `set<T>` and `map<K, V>`"),
                    );
                    return Type::Error;
                }
            };
            if args.len() != arity {
                diags.push(
                    Diagnostic::new(
                        Code::E2003,
                        t.span,
                        format!("`{}` takes {arity} type argument{}", id.name, if arity == 1 { "" } else { "s" }),
                    )
                    .label("wrong number of type arguments")
                    .help("write `list<T>`, `set<T>` or `map<K, V>`"),
                );
                return Type::Error;
            }
            let a: Vec<Type> = args.iter().map(|a| type_expr(res, m, a, diags)).collect();
            match id.name.as_str() {
                "list" => Type::List(Box::new(a[0].clone())),
                "set" => Type::Set(Box::new(a[0].clone())),
                _ => Type::Map(Box::new(a[0].clone()), Box::new(a[1].clone())),
            }
        }
    }
}
