//! Expression typing: literals, names, field paths, operators, `??`, `if`, calls of builtin and
//! user functions, and aggregate calls inside `aggregate { … }`. Null-safety lives here: a `T?`
//! is accepted where `T` is needed only where a condition has proved it non-null (see
//! `narrow.rs`).

use std::collections::HashMap;

use super::narrow::{facts, path_of};

use crate::diagnostics::{did_you_mean, name_list, Code, Diagnostic};
use crate::hir::{TExpr, TExprKind};
use crate::resolve::{ModuleId, Resolved, TypeSym};
use crate::source::Span;
use crate::syntax::ast::Ident;
use crate::syntax::pipe_ast::{BinOp, Expr, ExprKind, UnOp};
use crate::types::Type;

/// A user function's signature, as callers see it.
#[derive(Debug, Clone)]
pub struct FnSig {
    pub module: ModuleId,
    pub params: Vec<(String, Type)>,
    pub ret: Type,
    pub span: Span,
}

/// What names mean where an expression stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarKind {
    /// Fields of the current row.
    Field,
    /// Parameters of a function.
    Param,
}

/// Whether aggregate calls are allowed, and over which rows.
#[derive(Debug, Clone, Copy)]
pub enum AggMode<'s> {
    Off,
    /// Inside `aggregate { … }`: bare names are group keys; aggregate arguments see `input`.
    Outer {
        input: &'s [(String, Type)],
        input_narrowed: &'s [Vec<String>],
        event_time: bool,
    },
    /// Inside an aggregate's arguments.
    Inner,
}

#[derive(Debug, Clone)]
pub struct Scope<'s> {
    pub vars: &'s [(String, Type)],
    pub kind: VarKind,
    /// Paths (`x`, `t.limit`) proved non-null here.
    pub narrowed: Vec<Vec<String>>,
    pub agg: AggMode<'s>,
    /// Set after an earlier error made the row uncertain: unknown names are not reported again.
    pub quiet: bool,
}

impl<'s> Scope<'s> {
    pub fn new(vars: &'s [(String, Type)], kind: VarKind) -> Scope<'s> {
        Scope { vars, kind, narrowed: Vec::new(), agg: AggMode::Off, quiet: false }
    }

    fn with_facts(&self, more: Vec<Vec<String>>) -> Scope<'s> {
        let mut s = self.clone();
        s.narrowed.extend(more);
        s
    }
}

/// Types expressions of one module, reporting into `diags`.
#[derive(Debug)]
pub struct ExprCx<'a> {
    pub res: &'a Resolved,
    pub module: ModuleId,
    pub fns: &'a HashMap<String, FnSig>,
    pub diags: &'a mut Vec<Diagnostic>,
}

pub(super) fn texpr(kind: TExprKind, ty: Type, span: Span) -> TExpr {
    TExpr { kind, ty, span }
}

pub(super) fn error(span: Span) -> TExpr {
    texpr(TExprKind::Error, Type::Error, span)
}

pub const NULL_HELP: &str =
    "handle the null first: give a default with `?? value`, or test `!= null` in a `where` or an `if`";

impl ExprCx<'_> {
    pub(super) fn text(&self, span: Span) -> String {
        let t = self.res.sources.text(span);
        if t.len() > 40 {
            format!("{}…", &t[..t.char_indices().nth(39).map_or(t.len(), |(i, _)| i)])
        } else {
            t.to_string()
        }
    }

    /// Reports that `e` may be null where a value is needed.
    pub fn null_error(&mut self, e: &TExpr, needed_by: &str) {
        let text = self.text(e.span);
        self.diags.push(
            Diagnostic::new(Code::E2002, e.span, format!("`{text}` may be null, but {needed_by} needs a value"))
                .label(format!("this is `{}`", e.ty))
                .help(NULL_HELP),
        );
    }

    /// Checks that `e` is a non-null `bool` (conditions of `where`, `if`, `&&`).
    pub fn expect_bool(&mut self, e: &TExpr, what: &str) {
        match &e.ty {
            Type::Bool | Type::Error => {}
            Type::Nullable(t) if **t == Type::Bool => self.null_error(e, what),
            t => {
                let t = t.clone();
                self.diags.push(
                    Diagnostic::new(Code::E2001, e.span, format!("{what} needs a `bool`, found `{t}`"))
                        .label(format!("this is `{t}`"))
                        .help("write a condition such as `x > 0` or `s != \"\"`"),
                );
            }
        }
    }

    pub fn expr(&mut self, sc: &Scope, e: &Expr) -> TExpr {
        let span = e.span;
        match &e.kind {
            ExprKind::Int(n) => texpr(TExprKind::Int(*n), Type::Int, span),
            ExprKind::Float(x) => texpr(TExprKind::Float(*x), Type::Double, span),
            ExprKind::Str(s) => texpr(TExprKind::Str(s.clone()), Type::String, span),
            ExprKind::Bool(b) => texpr(TExprKind::Bool(*b), Type::Bool, span),
            ExprKind::Null => texpr(TExprKind::Null, Type::Null, span),
            ExprKind::Duration(ms) => texpr(TExprKind::Duration(*ms), Type::Duration, span),
            ExprKind::Timestamp(ms) => texpr(TExprKind::Timestamp(*ms), Type::Timestamp, span),
            ExprKind::Error => error(span),
            ExprKind::Name(n) => self.name(sc, n),
            ExprKind::Field(base, field) => self.field(sc, e, base, field),
            ExprKind::Index(base, index) => self.index(sc, base, index, span),
            ExprKind::Call(name, args) => self.call(sc, name, args, span),
            ExprKind::Unary(op, operand) => self.unary(sc, *op, operand, span),
            ExprKind::Binary(op, l, r) => self.binary(sc, *op, l, r, span),
            ExprKind::If(c, t, f) => {
                let c = self.expr(sc, c);
                self.expect_bool(&c, "an `if` condition");
                let t = self.expr(&sc.with_facts(facts(&c, true)), t);
                let f = self.expr(&sc.with_facts(facts(&c, false)), f);
                let ty = match Type::unify(&t.ty, &f.ty) {
                    Some(ty) => ty,
                    None => {
                        self.diags.push(
                            Diagnostic::new(Code::E2001, f.span, format!("the branches of this `if` have different types: `{}` and `{}`", t.ty, f.ty))
                                .label(format!("this is `{}`", f.ty))
                                .secondary(t.span, format!("this is `{}`", t.ty))
                                .help("make both branches the same type, converting one with `to_string(…)` or a number literal like `0.0`"),
                        );
                        Type::Error
                    }
                };
                texpr(TExprKind::If(Box::new(c), Box::new(t), Box::new(f)), ty, span)
            }
            ExprKind::List(items) => {
                let items: Vec<TExpr> = items.iter().map(|i| self.expr(sc, i)).collect();
                let mut elem = Type::Error;
                for i in &items {
                    match Type::unify(&elem, &i.ty) {
                        Some(t) => elem = t,
                        None => {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::E2001,
                                    i.span,
                                    format!("list items have different types: `{elem}` and `{}`", i.ty),
                                )
                                .label(format!("this is `{}`", i.ty))
                                .help("every item of a list has the same type"),
                            );
                            break;
                        }
                    }
                }
                texpr(TExprKind::List(items), Type::List(Box::new(elem)), span)
            }
        }
    }

    fn narrowed(sc: &Scope, path: Option<Vec<String>>, ty: Type) -> Type {
        match path {
            Some(p) if ty.is_nullable() && sc.narrowed.contains(&p) => ty.non_null().clone(),
            _ => ty,
        }
    }

    fn name(&mut self, sc: &Scope, n: &Ident) -> TExpr {
        if let Some((_, ty)) = sc.vars.iter().find(|(v, _)| *v == n.name) {
            let ty = Self::narrowed(sc, Some(vec![n.name.clone()]), ty.clone());
            return texpr(TExprKind::Var(n.name.clone()), ty, n.span);
        }
        if sc.quiet {
            return error(n.span);
        }
        if let AggMode::Outer { input, .. } = sc.agg {
            if input.iter().any(|(v, _)| *v == n.name) {
                self.diags.push(
                    Diagnostic::new(
                        Code::E2008,
                        n.span,
                        format!("`{}` is neither a group key nor inside an aggregate", n.name),
                    )
                    .label("one value per row, but the output has one row per group")
                    .help(format!(
                        "wrap it in an aggregate such as `max({0})` or `count_distinct({0})`, or add it to `group by`",
                        n.name
                    )),
                );
                return error(n.span);
            }
        }
        if let Ok(TypeSym::Enum(id)) = self.res.schema.lookup(self.res, self.module, &n.name) {
            let def = self.res.schema.get_enum(id);
            let first = def.values.first().map_or("VALUE", |(v, _)| v.as_str());
            self.diags.push(
                Diagnostic::new(Code::E2001, n.span, format!("`{}` is an enum type, not a value", n.name))
                    .label("a type")
                    .help(format!("write one of its values, e.g. `{}.{first}`", n.name)),
            );
            return error(n.span);
        }
        let names: Vec<&str> = sc.vars.iter().map(|(v, _)| v.as_str()).collect();
        let (code, what) = match sc.kind {
            VarKind::Field => (Code::E1006, "field"),
            VarKind::Param => (Code::E1016, "name"),
        };
        let help = did_you_mean(&n.name, names.iter().copied()).unwrap_or_else(|| match sc.kind {
            VarKind::Field => format!("the row's fields are {}", name_list(names.iter().copied(), 12)),
            VarKind::Param => {
                format!("a function body sees only its parameters: {}", name_list(names.iter().copied(), 12))
            }
        });
        self.diags.push(
            Diagnostic::new(code, n.span, format!("unknown {what} `{}`", n.name))
                .label(format!("no such {what}"))
                .help(help),
        );
        error(n.span)
    }

    fn field(&mut self, sc: &Scope, whole: &Expr, base: &Expr, field: &Ident) -> TExpr {
        // `Enum.VALUE` (or `file.Enum.VALUE`) when the prefix is not a field.
        if let Some(path) = base.as_path() {
            if !sc.vars.iter().any(|(v, _)| *v == path[0].name) {
                let dotted = path.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join(".");
                if let Ok(TypeSym::Enum(id)) = self.res.schema.lookup(self.res, self.module, &dotted) {
                    let def = self.res.schema.get_enum(id);
                    return match def.values.iter().find(|(v, _)| *v == field.name) {
                        Some((_, n)) => texpr(
                            TExprKind::EnumValue(id, field.name.clone(), *n),
                            Type::Enum(id, def.name.clone()),
                            whole.span,
                        ),
                        None => {
                            self.diags.push(
                                Diagnostic::new(
                                    Code::E1012,
                                    field.span,
                                    format!("enum `{dotted}` has no value `{}`", field.name),
                                )
                                .label("unknown enum value")
                                .help(
                                    did_you_mean(&field.name, def.values.iter().map(|(v, _)| v.as_str()))
                                        .unwrap_or_else(|| {
                                            format!(
                                                "its values are {}",
                                                name_list(def.values.iter().map(|(v, _)| v.as_str()), 12)
                                            )
                                        }),
                                ),
                            );
                            error(whole.span)
                        }
                    };
                }
            }
        }
        let b = self.expr(sc, base);
        let ty = match b.ty.clone() {
            Type::Error => Type::Error,
            Type::Nullable(inner) => {
                let text = self.text(b.span);
                self.diags.push(
                    Diagnostic::new(
                        Code::E2002,
                        b.span,
                        format!("`{text}` may be null, so `.{}` cannot be read from it", field.name),
                    )
                    .label(format!("this is `{}`", b.ty))
                    .help(format!(
                        "test it first: `where {text} != null`, or `if {text} != null then {text}.{} else …`",
                        field.name
                    )),
                );
                self.struct_field(&inner, field).map_or(Type::Error, |t| t.nullable())
            }
            other => match self.struct_field(&other, field) {
                Some(t) => t,
                None => Type::Error,
            },
        };
        let ty = Self::narrowed(sc, path_of_field(&b, &field.name), ty);
        texpr(TExprKind::Field(Box::new(b), field.name.clone()), ty, whole.span)
    }

    /// The type of `field` in a struct type; reports when there is no such field.
    fn struct_field(&mut self, ty: &Type, field: &Ident) -> Option<Type> {
        match ty {
            Type::Struct(id, name) => {
                let def = self.res.schema.get_struct(*id);
                match def.field(&field.name) {
                    Some(f) => Some(f.ty.clone()),
                    None => {
                        self.diags.push(
                            Diagnostic::new(
                                Code::E1006,
                                field.span,
                                format!("struct `{name}` has no field `{}`", field.name),
                            )
                            .label("unknown field")
                            .help(
                                did_you_mean(&field.name, def.fields.iter().map(|f| f.name.as_str())).unwrap_or_else(
                                    || {
                                        format!(
                                            "its fields are {}",
                                            name_list(def.fields.iter().map(|f| f.name.as_str()), 12)
                                        )
                                    },
                                ),
                            ),
                        );
                        None
                    }
                }
            }
            Type::Error => None,
            Type::Map(..) => {
                self.diags.push(
                    Diagnostic::new(Code::E2004, field.span, format!("`.{}` cannot read a map", field.name))
                        .label("maps are read by key")
                        .help(format!(
                            "write `[\"{}\"]` instead; the result is null when the key is missing",
                            field.name
                        )),
                );
                None
            }
            other => {
                self.diags.push(
                    Diagnostic::new(Code::E2004, field.span, format!("a `{other}` has no fields"))
                        .label("not a struct")
                        .help("only struct values have fields"),
                );
                None
            }
        }
    }

    fn index(&mut self, sc: &Scope, base: &Expr, index: &Expr, span: Span) -> TExpr {
        let b = self.expr(sc, base);
        let i = self.expr(sc, index);
        if b.ty.is_nullable() && !matches!(b.ty, Type::Null) {
            self.null_error(&b, "indexing");
        }
        let ty = match b.ty.non_null() {
            Type::List(e) => {
                self.index_type(&i, &Type::Int);
                e.as_ref().clone().nullable()
            }
            Type::Map(k, v) => {
                let k = k.as_ref().clone();
                self.index_type(&i, &k);
                v.as_ref().clone().nullable()
            }
            Type::Error => Type::Error,
            other => {
                self.diags.push(
                    Diagnostic::new(Code::E2004, b.span, format!("a `{other}` cannot be indexed"))
                        .label("not a list or a map")
                        .help("`[…]` reads an element of a list (by position) or of a map (by key)"),
                );
                Type::Error
            }
        };
        texpr(TExprKind::Index(Box::new(b), Box::new(i)), ty, span)
    }

    fn index_type(&mut self, i: &TExpr, want: &Type) {
        if i.ty.assignable_to(want) {
            return;
        }
        if i.ty.non_null().assignable_to(want) {
            self.null_error(i, "an index");
            return;
        }
        self.diags.push(
            Diagnostic::new(Code::E2001, i.span, format!("expected an index of type `{want}`, found `{}`", i.ty))
                .label(format!("this is `{}`", i.ty))
                .help(format!("index with a `{want}`")),
        );
    }

    fn unary(&mut self, sc: &Scope, op: UnOp, operand: &Expr, span: Span) -> TExpr {
        let o = self.expr(sc, operand);
        let ty = match op {
            UnOp::Not => {
                self.expect_bool(&o, "`!`");
                Type::Bool
            }
            UnOp::Neg => {
                if o.ty.is_nullable() && !matches!(o.ty, Type::Null) {
                    self.null_error(&o, "`-`");
                }
                match o.ty.non_null() {
                    t @ (Type::Int | Type::Double | Type::Duration | Type::Error) => t.clone(),
                    t => {
                        let t = t.clone();
                        self.diags.push(
                            Diagnostic::new(Code::E2004, o.span, format!("`-` is not defined for `{t}`"))
                                .label(format!("this is `{t}`"))
                                .help("negate a number or a duration"),
                        );
                        Type::Error
                    }
                }
            }
        };
        texpr(TExprKind::Unary(op, Box::new(o)), ty, span)
    }

    fn binary(&mut self, sc: &Scope, op: BinOp, l: &Expr, r: &Expr, span: Span) -> TExpr {
        let l = self.expr(sc, l);
        let r = match op {
            BinOp::And => self.expr(&sc.with_facts(facts(&l, true)), r),
            BinOp::Or => self.expr(&sc.with_facts(facts(&l, false)), r),
            _ => self.expr(sc, r),
        };
        let ty = match op {
            BinOp::And | BinOp::Or => {
                self.expect_bool(&l, &format!("`{}`", op.symbol()));
                self.expect_bool(&r, &format!("`{}`", op.symbol()));
                Type::Bool
            }
            BinOp::Eq | BinOp::Ne => {
                if Type::unify(&l.ty, &r.ty).is_none() {
                    self.op_error(op, &l, &r);
                }
                Type::Bool
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                for side in [&l, &r] {
                    if matches!(side.ty, Type::Null) {
                        self.diags.push(
                            Diagnostic::new(
                                Code::E2004,
                                side.span,
                                format!("`{}` cannot compare with `null`", op.symbol()),
                            )
                            .label("null has no order")
                            .help("test for null with `== null` or `!= null`"),
                        );
                        return texpr(TExprKind::Error, Type::Bool, span);
                    }
                }
                let (a, b) = (l.ty.non_null(), r.ty.non_null());
                if !(a.is_orderable() && b.is_orderable() && Type::unify(a, b).is_some()) {
                    self.op_error(op, &l, &r);
                }
                Type::Bool
            }
            BinOp::Coalesce => {
                if !l.ty.is_nullable() && !l.ty.is_error() {
                    let text = self.text(l.span);
                    self.diags.push(
                        Diagnostic::new(
                            Code::W0003,
                            r.span,
                            format!("`{text}` is never null, so this default is never used"),
                        )
                        .label("never used")
                        .secondary(l.span, format!("this is `{}`", l.ty))
                        .help("remove the `?? …`"),
                    );
                }
                let left = if matches!(l.ty, Type::Null) { Type::Error } else { l.ty.non_null().clone() };
                match Type::unify(&left, &r.ty) {
                    Some(t) => t,
                    None => {
                        self.diags.push(
                            Diagnostic::new(
                                Code::E2001,
                                r.span,
                                format!("the default has type `{}`, but the value is `{}`", r.ty, l.ty),
                            )
                            .label(format!("this is `{}`", r.ty))
                            .secondary(l.span, format!("this is `{}`", l.ty))
                            .help(format!("give a default of type `{left}`")),
                        );
                        Type::Error
                    }
                }
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                match arithmetic(op, l.ty.non_null(), r.ty.non_null()) {
                    Some(t) => {
                        for side in [&l, &r] {
                            if side.ty.is_nullable() {
                                self.null_error(side, &format!("`{}`", op.symbol()));
                            }
                        }
                        t
                    }
                    None => {
                        self.op_error(op, &l, &r);
                        Type::Error
                    }
                }
            }
        };
        texpr(TExprKind::Binary(op, Box::new(l), Box::new(r)), ty, span)
    }

    fn op_error(&mut self, op: BinOp, l: &TExpr, r: &TExpr) {
        if l.ty.is_error() || r.ty.is_error() {
            return;
        }
        let help = match (l.ty.non_null(), r.ty.non_null()) {
            (Type::String, t) | (t, Type::String) if t.is_numeric() => {
                "convert the number with `to_string(…)` or the text with `parse_double(…)`".to_string()
            }
            (Type::Enum(_, n), Type::String) | (Type::String, Type::Enum(_, n)) => {
                format!("compare with a value of the enum, e.g. `{n}.VALUE`")
            }
            _ => format!("`{}` needs two values of matching types", op.symbol()),
        };
        self.diags.push(
            Diagnostic::new(
                Code::E2004,
                l.span.to(r.span),
                format!("`{}` is not defined for `{}` and `{}`", op.symbol(), l.ty, r.ty),
            )
            .label("incompatible operands")
            .help(help),
        );
    }
}

fn path_of_field(base: &TExpr, field: &str) -> Option<Vec<String>> {
    let mut p = path_of(base)?;
    p.push(field.to_string());
    Some(p)
}

/// The result type of an arithmetic operator on non-null operands, if it is defined.
fn arithmetic(op: BinOp, a: &Type, b: &Type) -> Option<Type> {
    use Type::*;
    Some(match (op, a, b) {
        (_, Error, _) | (_, _, Error) => Error,
        (BinOp::Div, Int | Double, Int | Double) => Double,
        (_, Int, Int) => Int,
        (_, Int | Double, Int | Double) => Double,
        (BinOp::Add, String, String) => String,
        (BinOp::Add, Timestamp, Duration) | (BinOp::Add, Duration, Timestamp) | (BinOp::Sub, Timestamp, Duration) => {
            Timestamp
        }
        (BinOp::Sub, Timestamp, Timestamp) => Duration,
        (BinOp::Add | BinOp::Sub, Duration, Duration) => Duration,
        (BinOp::Mul, Duration, Int) | (BinOp::Mul, Int, Duration) | (BinOp::Div, Duration, Int) => Duration,
        (BinOp::Div, Duration, Duration) => Double,
        _ => return None,
    })
}
