//! Expressions to Rust. Every expression becomes a Rust expression of its type's Rust form
//! (`T?` is `Option<T>`); anything that can fail on data ends in `?` inside a function that
//! returns `Res`, so a failure rejects the record instead of panicking.

use std::collections::HashMap;

use proc_macro2::{Ident, Literal, Span, TokenStream};
use quote::quote;

use super::Gen;
use crate::hir::{Callee, TExpr, TExprKind};
use crate::syntax::pipe_ast::{BinOp, UnOp};
use crate::types::Type;

/// What names mean where an expression is compiled: each row field (or parameter) is a Rust
/// place holding a value of its storage type. A narrowing may give the expression a non-null
/// type where the storage is nullable.
#[derive(Clone, Default)]
pub struct Scope {
    pub vars: HashMap<String, (TokenStream, Type)>,
    /// Aggregate calls already finished into locals (inside an aggregate's output fields).
    pub aggregates: Vec<(*const TExpr, Ident, Type)>,
    /// Expressions computed once before an `explode` loop instead of once per element.
    pub hoisted: Vec<(*const TExpr, Ident)>,
    /// Places moved out of the row instead of cloned ([`single_reads`]).
    pub moves: Vec<*const TExpr>,
}

/// The places among the expressions `roots` (evaluated once each, after which the row is
/// dropped) that can be moved out of the row instead of cloned: a place (a field, or a field of
/// one) whose root local is `owned`, read where it is evaluated at most once — a whole
/// expression, either side of a `??` at such a position — and read nowhere else: no other read
/// is of it, of a part of it or of the whole it is part of. A pipeline's strings then reach
/// their new row, key or accumulator without a copy (`kind = t.kind ?? "unknown"`,
/// `count_distinct(t.account_id)`).
pub fn single_reads(roots: &[&TExpr], owned: impl Fn(&str) -> bool) -> Vec<*const TExpr> {
    fn path<'e>(e: &'e TExpr, out: &mut Vec<&'e str>) -> bool {
        match &e.kind {
            TExprKind::Var(n) => {
                out.push(n);
                true
            }
            TExprKind::Field(base, f) => {
                let whole = path(base, out);
                out.push(f);
                whole
            }
            _ => false,
        }
    }
    type Read<'e> = (Vec<&'e str>, *const TExpr, bool);
    fn walk<'e>(e: &'e TExpr, once: bool, reads: &mut Vec<Read<'e>>) {
        let mut p = Vec::new();
        if path(e, &mut p) {
            reads.push((p, e as *const TExpr, once));
            return;
        }
        match &e.kind {
            TExprKind::Binary(BinOp::Coalesce, l, r) => {
                walk(l, once, reads);
                walk(r, once, reads);
            }
            _ => e.children().into_iter().for_each(|c| walk(c, false, reads)),
        }
    }
    let mut reads = Vec::new();
    for e in roots {
        walk(e, true, &mut reads);
    }
    let overlap = |p: &[&str], q: &[&str]| p.iter().zip(q).all(|(a, b)| a == b);
    reads
        .iter()
        .filter(|(p, _, once)| {
            *once && p.first().is_some_and(|r| owned(r)) && reads.iter().filter(|(q, ..)| overlap(p, q)).count() == 1
        })
        .map(|(_, e, _)| *e)
        .collect()
}

impl Scope {
    pub fn bind(&mut self, name: &str, place: TokenStream, storage: Type) {
        self.vars.insert(name.to_string(), (place, storage));
    }
}

/// Compiles expressions; `fallible` records whether any `?` was generated.
pub struct ExprGen<'g, 'a> {
    pub g: &'g mut Gen<'a>,
    pub fallible: bool,
}

fn lit_str(s: &str) -> Literal {
    Literal::string(s)
}

fn is_num(t: &Type) -> bool {
    matches!(t, Type::Int | Type::Double)
}

impl ExprGen<'_, '_> {
    pub fn new<'g, 'a>(g: &'g mut Gen<'a>) -> ExprGen<'g, 'a> {
        ExprGen { g, fallible: false }
    }

    /// `v`, a value of type `from`, as a value of type `to`.
    pub fn coerce(&mut self, v: TokenStream, from: &Type, to: &Type) -> TokenStream {
        if from == to {
            return v;
        }
        match (from, to) {
            (Type::Error, _) | (_, Type::Error) => v,
            (Type::Null, _) => quote!(None),
            (Type::Nullable(a), Type::Nullable(b)) => {
                let x = quote!(x);
                let inner = self.coerce_pure(x, a, b);
                quote!((#v).map(|x| #inner))
            }
            (Type::Nullable(a), b) => {
                self.fallible = true;
                let inner = quote!(narrowed(#v)?);
                self.coerce(inner, a, b)
            }
            (a, Type::Nullable(b)) => {
                let inner = self.coerce(v, a, b);
                quote!(Some(#inner))
            }
            _ => self.coerce_pure(v, from, to),
        }
    }

    /// Coercions that cannot fail: widening integers, lists of them.
    fn coerce_pure(&mut self, v: TokenStream, from: &Type, to: &Type) -> TokenStream {
        if from == to || from.has_error() || to.has_error() {
            return v;
        }
        match (from, to) {
            (Type::Int, Type::Double) => quote!(((#v) as f64)),
            (Type::List(a), Type::List(b)) | (Type::Set(a), Type::Set(b)) => {
                let inner = self.coerce_pure(quote!(x), a, b);
                quote!((#v).into_iter().map(|x| #inner).collect::<Vec<_>>())
            }
            (Type::Nullable(a), Type::Nullable(b)) => {
                let inner = self.coerce_pure(quote!(x), a, b);
                quote!((#v).map(|x| #inner))
            }
            (a, Type::Nullable(b)) if !a.is_nullable() => {
                let inner = self.coerce_pure(v, a, b);
                quote!(Some(#inner))
            }
            _ => v,
        }
    }

    /// A Rust place (`row.t.account_id`) for a path expression, with its storage type.
    fn place(&mut self, e: &TExpr, sc: &Scope) -> Option<(TokenStream, Type)> {
        match &e.kind {
            TExprKind::Var(n) => sc.vars.get(n).cloned(),
            TExprKind::Field(base, f) => {
                let (p, storage) = self.place(base, sc)?;
                let (field_ty, fid) = self.g.struct_field(storage.non_null(), f)?;
                let p = if storage.is_nullable() {
                    self.fallible = true;
                    quote!(narrowed((#p).as_ref())?)
                } else {
                    p
                };
                Some((quote!((#p).#fid), field_ty))
            }
            _ => None,
        }
    }

    /// Whether the place `e` is reached through a nullable field (then it is borrowed from
    /// inside the option, and cannot be moved out).
    fn narrows(&mut self, e: &TExpr, sc: &Scope) -> bool {
        let TExprKind::Field(base, _) = &e.kind else { return false };
        let fallible = self.fallible;
        let nullable = self.place(base, sc).is_none_or(|(_, storage)| storage.is_nullable());
        self.fallible = fallible;
        nullable || self.narrows(base, sc)
    }

    /// A reference to the value of `e` without copying it, when `e` is a place whose storage
    /// has the expression's type (a field, not a narrowed one).
    pub fn borrowed(&mut self, e: &TExpr, sc: &Scope) -> Option<TokenStream> {
        if sc.hoisted.iter().any(|(p, _)| std::ptr::eq(*p, e)) {
            return None;
        }
        let fallible = self.fallible;
        match self.place(e, sc) {
            Some((p, storage)) if storage == e.ty => Some(quote!((&#p))),
            _ => {
                self.fallible = fallible;
                None
            }
        }
    }

    pub fn expr(&mut self, e: &TExpr, sc: &Scope) -> TokenStream {
        if let Some((_, id)) = sc.hoisted.iter().find(|(p, _)| std::ptr::eq(*p, e)) {
            return quote!(#id.clone());
        }
        match &e.kind {
            TExprKind::Int(n) => {
                let l = Literal::i64_suffixed(*n);
                quote!(#l)
            }
            TExprKind::Float(x) => super::f64_lit(*x),
            TExprKind::Duration(n) | TExprKind::Timestamp(n) => {
                let l = Literal::i64_suffixed(*n);
                quote!(#l)
            }
            TExprKind::Str(s) => {
                let l = lit_str(s);
                quote!(String::from(#l))
            }
            TExprKind::Bool(b) => quote!(#b),
            TExprKind::Null => quote!(None),
            TExprKind::EnumValue(id, _, n) => {
                let ty = self.g.enum_ident(*id);
                let l = Literal::i64_suffixed(*n);
                quote!(#ty(#l))
            }
            TExprKind::Var(_) | TExprKind::Field(..) => match self.place(e, sc) {
                Some((p, storage)) if sc.moves.contains(&(e as *const TExpr)) && !self.narrows(e, sc) => {
                    self.coerce(quote!((#p)), &storage, &e.ty)
                }
                Some((p, storage)) => self.coerce(quote!((#p).clone()), &storage, &e.ty),
                None => match &e.kind {
                    TExprKind::Field(base, f) => {
                        let b = self.expr(base, sc);
                        match self.g.struct_field(base.ty.non_null(), f) {
                            Some((field_ty, fid)) => self.coerce(quote!((#b).#fid), &field_ty, &e.ty),
                            None => self.internal(e, "this field access"),
                        }
                    }
                    _ => self.internal(e, "this name"),
                },
            },
            TExprKind::Index(base, index) => self.index(e, base, index, sc),
            TExprKind::Call(Callee::User(name, module), args) => {
                let Some(f) = self.g.user_fn(name, *module) else {
                    return self.internal(e, "this call");
                };
                let (fname, params, ret) = f;
                let mut out = Vec::new();
                for (a, p) in args.iter().zip(&params) {
                    let v = self.expr(a, sc);
                    out.push(self.coerce(v, &a.ty, p));
                }
                self.fallible = true;
                let v = quote!(#fname(ctx, #(#out),*)?);
                self.coerce(v, &ret, &e.ty)
            }
            TExprKind::Call(Callee::Builtin(name), args) => self.builtin(e, name, args, sc),
            TExprKind::Aggregate(..) => match sc.aggregates.iter().find(|(p, _, _)| std::ptr::eq(*p, e)) {
                Some((_, id, ty)) => {
                    let (id, ty) = (id.clone(), ty.clone());
                    self.coerce(quote!(#id.clone()), &ty, &e.ty)
                }
                None => self.unsupported(e, "an aggregate outside `aggregate { … }`"),
            },
            TExprKind::Unary(op, a) => {
                let v = self.expr(a, sc);
                match (op, a.ty.non_null()) {
                    (UnOp::Not, _) => quote!((!#v)),
                    (UnOp::Neg, Type::Double) => quote!((-#v)),
                    (UnOp::Neg, _) => {
                        self.fallible = true;
                        quote!(f::neg_i(#v)?)
                    }
                }
            }
            TExprKind::Binary(op, l, r) => self.binary(e, *op, l, r, sc),
            TExprKind::If(c, t, f) => {
                let c = self.expr(c, sc);
                let tv = self.expr(t, sc);
                let tv = self.coerce(tv, &t.ty, &e.ty);
                let fv = self.expr(f, sc);
                let fv = self.coerce(fv, &f.ty, &e.ty);
                quote!(if #c { #tv } else { #fv })
            }
            // An empty list takes its element type from where it is used.
            TExprKind::List(items) if items.is_empty() => quote!(Vec::new()),
            TExprKind::List(items) => {
                let elem = match &e.ty {
                    Type::List(t) | Type::Set(t) => t.as_ref().clone(),
                    _ => Type::Error,
                };
                let mut out = Vec::new();
                for i in items {
                    let v = self.expr(i, sc);
                    out.push(self.coerce(v, &i.ty, &elem));
                }
                let ty = self.g.rust_type(&elem, e.span);
                quote!(<Vec<#ty>>::from([#(#out),*]))
            }
            TExprKind::Error => self.internal(e, "an expression with errors"),
        }
    }

    /// A construct the generator should handle but does not: a bug in pipec, reported (never a
    /// panic) so that a test can find it.
    pub fn internal(&mut self, e: &TExpr, what: &str) -> TokenStream {
        self.g.unsupported(e.span, &format!("internal error in the code generator: {what} was not compiled"));
        quote!(unreachable!())
    }

    pub fn unsupported(&mut self, e: &TExpr, what: &str) -> TokenStream {
        self.g.unsupported(e.span, &format!("{what} cannot be compiled yet"));
        quote!(unreachable!())
    }

    fn index(&mut self, e: &TExpr, base: &TExpr, index: &TExpr, sc: &Scope) -> TokenStream {
        let b = self.expr(base, sc);
        let b = self.coerce(b, &base.ty, base.ty.non_null());
        let i = self.expr(index, sc);
        let (elem, v) = match base.ty.non_null() {
            Type::List(t) | Type::Set(t) => {
                let i = self.coerce(i, &index.ty, &Type::Int);
                (t.as_ref().clone(), quote!(f::at(&#b, #i)))
            }
            Type::Map(k, v) => {
                let i = self.coerce(i, &index.ty, k);
                (v.as_ref().clone(), quote!((#b).get(&#i).cloned()))
            }
            _ => return self.internal(e, "this index"),
        };
        let v = if elem.is_nullable() { quote!(#v.flatten()) } else { v };
        self.coerce(v, &elem.nullable(), &e.ty)
    }

    fn binary(&mut self, e: &TExpr, op: BinOp, l: &TExpr, r: &TExpr, sc: &Scope) -> TokenStream {
        let lv = self.expr(l, sc);
        let rv = self.expr(r, sc);
        let (lt, rt) = (l.ty.non_null().clone(), r.ty.non_null().clone());
        match op {
            BinOp::And => quote!((#lv && #rv)),
            BinOp::Or => quote!((#lv || #rv)),
            BinOp::Coalesce => {
                let inner = match &l.ty {
                    Type::Nullable(t) => t.as_ref().clone(),
                    t => t.clone(),
                };
                let some = self.coerce(quote!(x), &inner, &e.ty);
                let none = self.coerce(rv, &r.ty, &e.ty);
                if l.ty.is_nullable() {
                    quote!(match #lv { Some(x) => #some, None => #none })
                } else {
                    self.coerce(lv, &l.ty, &e.ty)
                }
            }
            BinOp::Eq | BinOp::Ne => {
                let neg = op == BinOp::Ne;
                let eq = if matches!(l.ty, Type::Null) && matches!(r.ty, Type::Null) {
                    quote!(true)
                } else if matches!(r.ty, Type::Null) {
                    quote!((#lv).is_none())
                } else if matches!(l.ty, Type::Null) {
                    quote!((#rv).is_none())
                } else {
                    // Numbers mix (in lists too); a nullable side compares as an option.
                    let common = if is_num(&lt) && is_num(&rt) && lt != rt {
                        Type::Double
                    } else {
                        Type::unify(&lt, &rt).unwrap_or_else(|| lt.clone())
                    };
                    let nullable = l.ty.is_nullable() || r.ty.is_nullable();
                    let target = if nullable { common.clone().nullable() } else { common };
                    let a = self.coerce_pure(lv, &l.ty, &target);
                    let b = self.coerce_pure(rv, &r.ty, &target);
                    quote!((#a == #b))
                };
                if neg {
                    quote!((!#eq))
                } else {
                    eq
                }
            }
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let common = if is_num(&lt) && is_num(&rt) && lt != rt { Type::Double } else { lt.clone() };
                if l.ty.is_nullable() || r.ty.is_nullable() {
                    let target = common.nullable();
                    let a = self.coerce_pure(lv, &l.ty, &target);
                    let b = self.coerce_pure(rv, &r.ty, &target);
                    let f = Ident::new(
                        match op {
                            BinOp::Lt => "lt",
                            BinOp::Le => "le",
                            BinOp::Gt => "gt",
                            _ => "ge",
                        },
                        Span::call_site(),
                    );
                    quote!(f::#f(#a, #b))
                } else {
                    let a = self.coerce_pure(lv, &l.ty, &common);
                    let b = self.coerce_pure(rv, &r.ty, &common);
                    let o = match op {
                        BinOp::Lt => quote!(<),
                        BinOp::Le => quote!(<=),
                        BinOp::Gt => quote!(>),
                        _ => quote!(>=),
                    };
                    quote!((#a #o #b))
                }
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
                let lv = self.coerce(lv, &l.ty, &lt);
                let rv = self.coerce(rv, &r.ty, &rt);
                self.arith(e, op, lv, &lt, rv, &rt)
            }
        }
    }

    fn arith(&mut self, e: &TExpr, op: BinOp, lv: TokenStream, lt: &Type, rv: TokenStream, rt: &Type) -> TokenStream {
        use Type::*;
        let int_like = |t: &Type| matches!(t, Int | Timestamp | Duration);
        // Integers and times are checked: an overflow rejects the record.
        if int_like(lt) && int_like(rt) && op != BinOp::Div {
            self.fallible = true;
            return match op {
                BinOp::Add => quote!(f::add_i(#lv, #rv)?),
                BinOp::Sub => quote!(f::sub_i(#lv, #rv)?),
                BinOp::Mul => quote!(f::mul_i(#lv, #rv)?),
                _ => quote!(f::rem_i(#lv, #rv)?),
            };
        }
        match (op, lt, rt) {
            (BinOp::Add, String, String) => quote!(f::add_s(#lv, #rv)),
            (BinOp::Div, Duration, Int) => {
                self.fallible = true;
                quote!(f::div_d(#lv, #rv)?)
            }
            (BinOp::Div, _, _) => {
                self.fallible = true;
                quote!(f::div_f((#lv) as f64, (#rv) as f64)?)
            }
            (BinOp::Rem, _, _) => {
                self.fallible = true;
                quote!(f::rem_f((#lv) as f64, (#rv) as f64)?)
            }
            (_, a, b) if is_num(a) && is_num(b) => {
                let a = self.coerce_pure(lv, lt, &Double);
                let b = self.coerce_pure(rv, rt, &Double);
                match op {
                    BinOp::Add => quote!((#a + #b)),
                    BinOp::Sub => quote!((#a - #b)),
                    _ => quote!((#a * #b)),
                }
            }
            _ => self.internal(e, "this operator"),
        }
    }

    /// Arguments compiled and coerced to `want` (one per argument).
    fn args(&mut self, args: &[TExpr], want: &[Type], sc: &Scope) -> Vec<TokenStream> {
        args.iter()
            .zip(want)
            .map(|(a, w)| {
                let v = self.expr(a, sc);
                self.coerce(v, &a.ty, w)
            })
            .collect()
    }

    fn builtin(&mut self, e: &TExpr, name: &str, args: &[TExpr], sc: &Scope) -> TokenStream {
        use Type::*;
        let a0 = args.first().map(|a| a.ty.non_null().clone()).unwrap_or(Error);
        // Masking functions keep a null a null: compile them over the non-null value.
        let masks = [
            "hmac",
            "tokenize",
            "redact",
            "bucket",
            "truncate",
            "generalize",
            "zscore",
            "scale_to_01",
            "vocabulary",
            "quantile_bucket",
        ];
        if masks.contains(&name) && args.first().is_some_and(|a| a.ty.is_nullable()) {
            let first = self.expr(&args[0], sc);
            let inner_e = TExpr { kind: TExprKind::Var("\u{0}x".into()), ty: a0.clone(), span: args[0].span };
            let mut inner_sc = sc.clone();
            inner_sc.bind("\u{0}x", quote!(x), a0.clone());
            let mut inner_args = vec![inner_e];
            inner_args.extend(args[1..].iter().cloned());
            let ret = e.ty.non_null().clone();
            let call = TExpr { kind: e.kind.clone(), ty: ret.clone(), span: e.span };
            let body = self.builtin(&call, name, &inner_args, &inner_sc);
            let v = quote!(match #first { Some(x) => Some(#body), None => None });
            return self.coerce(v, &ret.nullable(), &e.ty);
        }
        let (v, ret): (TokenStream, Type) = match name {
            "abs" => {
                let [x] = &self.args(args, std::slice::from_ref(&a0), sc)[..] else {
                    return self.internal(e, "this call");
                };
                if a0 == Int {
                    self.fallible = true;
                    (quote!(f::abs_i(#x)?), Int)
                } else {
                    (quote!(f::abs_f(#x)), Double)
                }
            }
            "round" => {
                let xs = self.args(args, &[Double, Int], sc);
                let x = &xs[0];
                let d = xs.get(1).cloned().unwrap_or(quote!(0i64));
                (quote!(f::round(#x, #d)), Double)
            }
            "floor" | "ceil" | "exp" | "sqrt" | "ln" => {
                let xs = self.args(args, &[Double], sc);
                let x = &xs[0];
                let f = Ident::new(name, Span::call_site());
                if matches!(name, "sqrt" | "ln") {
                    self.fallible = true;
                    (quote!(f::#f(#x)?), Double)
                } else {
                    (quote!(f::#f(#x)), Double)
                }
            }
            "pow" => {
                let xs = self.args(args, &[Double, Double], sc);
                let (x, y) = (&xs[0], &xs[1]);
                (quote!(f::pow(#x, #y)), Double)
            }
            "lower" | "upper" | "trim" => {
                let xs = self.args(args, &[String], sc);
                let x = &xs[0];
                let f = Ident::new(name, Span::call_site());
                (quote!(f::#f(#x)), String)
            }
            "len" => {
                let xs = self.args(args, std::slice::from_ref(&a0), sc);
                let x = &xs[0];
                if a0 == String {
                    (quote!(f::len_s(&#x)), Int)
                } else {
                    (quote!(f::len_c((#x).len())), Int)
                }
            }
            "concat" => {
                let want = vec![String; args.len()];
                let xs = self.args(args, &want, sc);
                (quote!({ let mut s = String::new(); #( s.push_str(&#xs); )* s }), String)
            }
            "contains" | "starts_with" | "ends_with" => {
                let xs = self.args(args, &[String, String], sc);
                let (x, y) = (&xs[0], &xs[1]);
                let f = Ident::new(name, Span::call_site());
                (quote!(f::#f(#x, #y)), Bool)
            }
            "substr" => {
                let xs = self.args(args, &[String, Int, Int], sc);
                let (s, start) = (&xs[0], &xs[1]);
                let count = match xs.get(2) {
                    Some(c) => quote!(Some(#c)),
                    None => quote!(None),
                };
                (quote!(f::substr(#s, #start, #count)), String)
            }
            "replace" => {
                let xs = self.args(args, &[String, String, String], sc);
                let (s, a, b) = (&xs[0], &xs[1], &xs[2]);
                (quote!(f::replace(#s, #a, #b)), String)
            }
            "split" => {
                let xs = self.args(args, &[String, String], sc);
                let (s, a) = (&xs[0], &xs[1]);
                (quote!(f::split(#s, #a)), List(Box::new(String)))
            }
            "to_string" => {
                let ty = args.first().map(|a| a.ty.clone()).unwrap_or(Error);
                let x = self.expr(&args[0], sc);
                let text = |g: &mut Self, v: TokenStream, t: &Type| -> TokenStream {
                    match t {
                        String => v,
                        Int | Bool | Duration => quote!((#v).to_string()),
                        Double => quote!(f::double_text(#v)),
                        Timestamp => quote!(f::ts_text(#v)),
                        Date => quote!(f::date_text(#v)),
                        Enum(..) => quote!((#v).name().into_owned()),
                        _ => {
                            let _ = g;
                            quote!(serde_json::to_string(&#v).unwrap_or_default())
                        }
                    }
                };
                let v = match &ty {
                    Nullable(t) => {
                        let inner = text(self, quote!(x), t);
                        quote!(match #x { Some(x) => #inner, None => String::from("null") })
                    }
                    Null => quote!(String::from("null")),
                    t => text(self, x, t),
                };
                (v, String)
            }
            "parse_int" | "parse_double" | "parse_timestamp" => {
                let xs = self.args(args, &[String], sc);
                let x = &xs[0];
                let f = Ident::new(name, Span::call_site());
                self.fallible = true;
                let ret = match name {
                    "parse_int" => Int,
                    "parse_double" => Double,
                    _ => Timestamp,
                };
                (quote!(f::#f(#x)?), ret)
            }
            "date" => {
                let xs = self.args(args, &[Timestamp], sc);
                let x = &xs[0];
                (quote!(f::date(#x)), Date)
            }
            "year" | "month" | "day" => {
                let xs = self.args(args, std::slice::from_ref(&a0), sc);
                let x = &xs[0];
                let suffix = if a0 == Date { "_d" } else { "_ts" };
                let f = Ident::new(&format!("{name}{suffix}"), Span::call_site());
                self.fallible = true;
                (quote!(f::#f(#x)?), Int)
            }
            "hour" => {
                let xs = self.args(args, &[Timestamp], sc);
                let x = &xs[0];
                self.fallible = true;
                (quote!(f::hour(#x)?), Int)
            }
            "from_millis" | "to_millis" => {
                let xs = self.args(args, std::slice::from_ref(&a0), sc);
                let x = &xs[0];
                (quote!(#x), if name == "from_millis" { Timestamp } else { Int })
            }
            "hmac" | "tokenize" => {
                self.g.uses_key = true;
                let x = match self.borrowed(&args[0], sc) {
                    Some(r) if a0 == String => r,
                    _ => self.args(args, std::slice::from_ref(&a0), sc).remove(0),
                };
                let x = &x;
                let text = if a0 == Int { quote!((#x).to_string()) } else { quote!(#x) };
                if name == "hmac" {
                    (quote!(ctx.hmac(#text.as_bytes())), String)
                } else {
                    (quote!(ctx.tokenize(&#text)), String)
                }
            }
            "redact" => (quote!(String::from(f::REDACTED)), String),
            // Fitted transforms: their parameters are the arguments after `x` (`fit.rs`).
            "zscore" | "scale_to_01" => {
                let x = self.args(&args[..1], &[Double], sc).remove(0);
                let (Some(TExprKind::Float(a)), Some(TExprKind::Float(b))) =
                    (args.get(1).map(|a| &a.kind), args.get(2).map(|a| &a.kind))
                else {
                    self.g.unsupported(e.span, &format!("`{name}` without fitted parameters"));
                    return quote!(0.0);
                };
                let (a, b) = (super::f64_lit(*a), super::f64_lit(*b));
                // As scikit-learn computes them: `(x - mean) / scale`, `x * scale + offset`.
                if name == "zscore" {
                    (quote!(((#x) - #a) / #b), Double)
                } else {
                    (quote!((#x) * #a + #b), Double)
                }
            }
            "quantile_bucket" => {
                let x = self.args(&args[..1], &[Double], sc).remove(0);
                let Some(TExprKind::List(edges)) = args.get(2).map(|a| &a.kind) else {
                    self.g.unsupported(e.span, "`quantile_bucket` without fitted parameters");
                    return quote!(0);
                };
                let edges: Vec<TokenStream> = edges
                    .iter()
                    .map(|e| match e.kind {
                        TExprKind::Float(v) => super::f64_lit(v),
                        _ => quote!(f64::NAN),
                    })
                    .collect();
                (quote!(f::quantile_bucket(#x, &[#(#edges),*])), Int)
            }
            "vocabulary" => {
                let s = self.args(&args[..1], &[String], sc).remove(0);
                let Some(TExprKind::List(values)) = args.get(2).map(|a| &a.kind) else {
                    self.g.unsupported(e.span, "`vocabulary` without fitted parameters");
                    return quote!(0);
                };
                let arms = values.iter().enumerate().filter_map(|(i, v)| match &v.kind {
                    TExprKind::Str(v) => {
                        let i = Literal::i64_suffixed(i as i64);
                        Some(quote!(#v => #i,))
                    }
                    _ => None,
                });
                let oov = Literal::i64_suffixed(values.len() as i64);
                (quote!(match AsRef::<str>::as_ref(&#s) { #(#arms)* _ => #oov }), Int)
            }
            "bucket" => {
                let xs = self.args(args, &[Double, Double], sc);
                let (x, w) = (&xs[0], &xs[1]);
                self.fallible = true;
                (quote!(f::bucket(#x, #w)?), Double)
            }
            "truncate" => {
                let xs = self.args(args, &[String, Int], sc);
                let (s, k) = (&xs[0], &xs[1]);
                (quote!(rt::mask::truncate(&#s, #k)), String)
            }
            "generalize" => {
                let xs = self.args(args, &[a0.clone(), Duration], sc);
                let (t, u) = (&xs[0], &xs[1]);
                if a0 == Date {
                    self.fallible = true;
                    (quote!(f::generalize_date(#t, #u)?), Date)
                } else {
                    self.fallible = true;
                    (quote!(f::generalize_ts(#t, #u)?), Timestamp)
                }
            }
            "sha256" => {
                let x = match self.borrowed(&args[0], sc) {
                    Some(r) => r,
                    None => self.args(args, &[String], sc).remove(0),
                };
                let x = &x;
                (quote!(rt::mask::sha256_hex((#x).as_bytes())), String)
            }
            "declassify" => {
                let v = self.expr(&args[0], sc);
                (v, args[0].ty.clone())
            }
            "env" => {
                let Some(TExprKind::Str(var)) = args.first().map(|a| &a.kind) else {
                    return self.unsupported(e, "`env` without a literal name");
                };
                if !self.g.env_vars.contains(var) {
                    self.g.env_vars.push(var.clone());
                }
                let l = lit_str(var);
                (quote!(String::from(ctx.env(#l))), String)
            }
            _ => return self.unsupported(e, &format!("the function `{name}`")),
        };
        self.coerce(v, &ret, &e.ty)
    }
}
