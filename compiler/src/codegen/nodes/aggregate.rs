//! Aggregate operators: group keys, one accumulator per aggregate call, window assignment and
//! folding (with the key exchange between workers), and the rows of fired windows.

use std::collections::BTreeSet;

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use super::{destructure, emit, id, lit, Ctx};
use crate::codegen::expr::{single_reads, ExprGen, Scope};
use crate::codegen::{names, Gen};
use crate::hir::{TExpr, TExprKind, WindowKind};
use crate::ir::{Node, NodeKind, Plan};
use crate::source::Span;
use crate::types::Type;

/// The fields of an aggregate node.
pub(super) struct AggSpec<'a> {
    pub(super) keys: &'a [(String, TExpr)],
    pub(super) window: Option<&'a WindowKind>,
    pub(super) min_group: Option<i64>,
    pub(super) fields: &'a [(String, TExpr)],
}

pub(super) struct AggParts {
    pub(super) acc: TokenStream,
    pub(super) field: TokenStream,
    /// The type of the state field.
    pub(super) ty: TokenStream,
    pub(super) init: TokenStream,
    pub(super) push: TokenStream,
    pub(super) finish: TokenStream,
    pub(super) finish_call: TokenStream,
    /// The aggregate's variant of `Exchange` and the arm that applies it.
    pub(super) exchange: (TokenStream, TokenStream),
}

/// The allowed lateness of aggregate `node`: the largest `late = allow d` of the sources it
/// reads from (0 for `drop` and `to`).
fn allowed_lateness(g: &Gen<'_>, plan: &Plan, node: usize) -> i64 {
    let mut stack = vec![node];
    let mut seen = BTreeSet::new();
    let mut allowed = 0;
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        if let NodeKind::Source { source, .. } = &plan.nodes[n].kind {
            if let Some(src) = g.program.sources.iter().find(|s| &s.name == source) {
                if let crate::hir::LatePolicy::Allow(d) = src.late {
                    allowed = allowed.max(d);
                }
            }
        }
        stack.extend(plan.nodes[n].inputs.iter().map(|x| x.0));
    }
    allowed
}

/// Rewrites a value's tokens (to its hashable form, or back).
type Conv = Box<dyn Fn(TokenStream) -> TokenStream>;

/// The hashable form of a group key or `count_distinct` value of type `ty`: its Rust type, and
/// the conversions into and out of it.
pub(super) fn hashable(g: &mut Gen<'_>, ty: &Type, span: Span) -> Option<(TokenStream, Conv, Conv)> {
    let inner = ty.non_null().clone();
    let nullable = ty.is_nullable();
    match inner {
        Type::Double => {
            let t = if nullable { quote!(Option<HashF64>) } else { quote!(HashF64) };
            let to: Conv =
                if nullable { Box::new(|v| quote!((#v).map(HashF64))) } else { Box::new(|v| quote!(HashF64(#v))) };
            let back: Conv =
                if nullable { Box::new(|v| quote!((#v).map(|h| h.0))) } else { Box::new(|v| quote!((#v).0)) };
            Some((t, to, back))
        }
        Type::Bool
        | Type::Int
        | Type::Timestamp
        | Type::Duration
        | Type::Date
        | Type::String
        | Type::Enum(..)
        | Type::Binary => {
            let t = g.rust_type(ty, span);
            Some((t, Box::new(|v| v), Box::new(|v| v)))
        }
        _ => None,
    }
}

/// The group key: its hashable types, its values for the current row, and per key its name,
/// its type and the conversion back from its hashable form.
#[derive(Default)]
struct Keys {
    tys: Vec<TokenStream>,
    vals: Vec<TokenStream>,
    back: Vec<(String, Type, Conv)>,
}

/// The accumulators of the aggregate calls, and what each row gives them.
#[derive(Default)]
struct Accs {
    /// The accumulator struct's fields, and the statements that merge another one's.
    fields: Vec<TokenStream>,
    merge: Vec<TokenStream>,
    /// The per-row inputs of the accumulators, and their types.
    arg_vals: Vec<TokenStream>,
    arg_tys: Vec<TokenStream>,
    /// The statements adding a row's inputs (`args`) to a group's accumulators (`acc`).
    adds: Vec<TokenStream>,
    /// The same statements moving the inputs out of `args` instead of copying them, where
    /// `args` is owned and added once (empty when k-anonymity reads `args` after them).
    moving_adds: Vec<TokenStream>,
    /// With `k >= N`: the conditions under which a group has enough distinct records.
    enough: Vec<TokenStream>,
    /// Statements finishing each accumulator into a local.
    finished: Vec<TokenStream>,
    /// Each aggregate call, the local it is finished into, and its type.
    scope: Vec<(*const TExpr, Ident, Type)>,
    /// Whether every accumulator merges another exactly as it would add that one's rows one
    /// by one (counts, exact sums and means, distinct sets, `min`/`max`, `first`/`last`): the
    /// rows of one record with one key and time can then travel to their group's worker as one
    /// partial accumulator.
    merges_exactly: bool,
    /// The inputs (in `args`) of `min` and `max` over doubles. A partial that begins with a
    /// NaN would keep it (`x > NaN` is false) and hide the values after it from a group that
    /// holds a number already, so a row with a NaN there travels alone.
    nan_inputs: Vec<Literal>,
}

/// One accumulator: its Rust type, its per-row input and that input's type, the type of its
/// result, how it finishes when not with `finish()` (`approx_quantile`'s quantile,
/// `quantile_means`' bins: a call on `acc.aN`), and whether a row can give it no value.
struct Acc {
    ty: TokenStream,
    input: TokenStream,
    input_ty: TokenStream,
    out_ty: Type,
    finish: Option<TokenStream>,
    optional: bool,
}

impl Acc {
    fn new(ty: TokenStream, input: TokenStream, input_ty: TokenStream, out_ty: Type) -> Acc {
        Acc { ty, input, input_ty, out_ty, finish: None, optional: false }
    }
}

/// A number written in the program (`approx_quantile`'s quantile, `accuracy`'s threshold,
/// `quantile_means`' bins).
fn literal_number(e: Option<&TExpr>) -> Option<f64> {
    match e.map(|e| &e.kind) {
        Some(TExprKind::Float(q)) => Some(*q),
        Some(TExprKind::Int(q)) => Some(*q as f64),
        _ => None,
    }
}

pub(super) fn aggregate_node(g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, node: &Node, spec: &AggSpec<'_>) -> AggParts {
    if let Some(WindowKind::Rolling { size }) = spec.window {
        return rolling_node(g, cx, i, node, spec, *size);
    }
    let window = spec.window;
    let input = node.inputs.first().map_or(0, |x| x.0);
    let in_ty = &cx.row_ty[input];
    let in_fields = cx.plan.nodes[input].row.fields.clone();
    let mut sc = Scope::default();
    let bind = destructure(quote!(row), in_ty, &in_fields, 0, &mut sc, false);

    let calls = calls_in(spec.fields);
    sc.moves = moved_places(spec.keys, &calls);

    let mut eg = ExprGen::new(g);
    let keys = group_keys(&mut eg, spec.keys, &sc);
    let k = spec.min_group.map(|k| (k, behind_join(cx.plan, input)));
    let accs = accumulators(&mut eg, &calls, &sc, k);
    let fallible = eg.fallible;

    let acc = id(format!("Acc{i}"));
    let acc_def = acc_struct(&acc, &accs);
    let map = id(format!("agg_{i}"));
    let key_tys = &keys.tys;
    let key_ty = quote!((#(#key_tys,)*));
    let allowed = Literal::i64_suffixed(allowed_lateness(g, cx.plan, i));
    let (state_ty, init) = match window {
        Some(WindowKind::Session { gap }) => {
            let gap = Literal::i64_suffixed(*gap);
            (quote!(rt::window::Sessions<#key_ty, #acc>), quote!(#map: rt::window::Sessions::new(#gap, #allowed)))
        }
        other => {
            let size = match other {
                Some(WindowKind::Tumbling { size, .. } | WindowKind::Sliding { size, .. }) => *size,
                _ => 0,
            };
            let size = Literal::i64_suffixed(size);
            (quote!(rt::window::Fixed<#key_ty, #acc>), quote!(#map: rt::window::Fixed::new(#size, #allowed)))
        }
    };
    let (push, exchange) = push_and_fold(i, in_ty, &bind, window, &keys, &accs, &acc, fallible);
    let (finish, finish_call) = finish_fn(g, cx, i, node, spec, keys, accs);
    let field = quote!(#map: #state_ty);
    AggParts { acc: acc_def, field, ty: state_ty, init, push, finish, finish_call, exchange }
}

/// The group key's values and types, for the current row bound in `sc`.
fn group_keys(eg: &mut ExprGen<'_, '_>, keys: &[(String, TExpr)], sc: &Scope) -> Keys {
    let mut out = Keys::default();
    for (name, e) in keys {
        let v = eg.expr(e, sc);
        match hashable(eg.g, &e.ty, e.span) {
            Some((t, to, back)) => {
                out.tys.push(t);
                out.vals.push(to(v));
                out.back.push((name.clone(), e.ty.clone(), back));
            }
            None => {
                eg.g.unsupported(e.span, &format!("grouping by a `{}` cannot be compiled yet", e.ty));
            }
        }
    }
    out
}

/// Whether rows of node `n` can come from a join (through maps and unions; an aggregate's
/// rows are new groups).
fn behind_join(plan: &Plan, n: usize) -> bool {
    let mut todo = vec![n];
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = todo.pop() {
        if !seen.insert(n) {
            continue;
        }
        match &plan.nodes[n].kind {
            NodeKind::Lookup { .. } => return true,
            NodeKind::Aggregate { .. } | NodeKind::Source { .. } => {}
            _ => todo.extend(plan.nodes[n].inputs.iter().map(|x| x.0)),
        }
    }
    false
}

/// The expression aggregate call `name(args…)` adds per row as its first input.
/// `count_distinct(hmac(x))` counts the distinct `x`: a keyed hash (or `sha256`, or a token)
/// maps distinct values to distinct values, barring a collision as unlikely as a broken
/// pseudonym, so the hashes need not be computed.
fn first_input<'e>(name: &str, args: &'e [TExpr]) -> Option<&'e TExpr> {
    let mut arg = args.first();
    if name == "count_distinct" {
        while let Some(TExprKind::Call(crate::hir::Callee::Builtin("hmac" | "sha256" | "tokenize"), inner)) =
            arg.map(|a| &a.kind)
        {
            if inner.len() != 1 {
                break;
            }
            arg = inner.first();
        }
    }
    arg
}

/// The places of the input row that the group keys and the aggregate calls' inputs read once
/// (the row is dropped after them): moved into the key and the accumulators, not cloned.
fn moved_places(keys: &[(String, TExpr)], calls: &[&TExpr]) -> Vec<*const TExpr> {
    let mut roots: Vec<&TExpr> = keys.iter().map(|(_, e)| e).collect();
    for call in calls {
        if let TExprKind::Aggregate(name, args) = &call.kind {
            roots.extend(first_input(name, args));
            roots.extend(args.iter().skip(1));
        }
    }
    single_reads(&roots, |_| true)
}

/// Accumulators and their per-row inputs, one per aggregate call (`calls[k]` is
/// accumulator `a{k}`, finished into `agg{k}`). With `k >= N` (`min_group`: N, and whether
/// the rows come from a join), the distinct source records behind the group (`origins`), and
/// behind each call whose argument can be null (`o{k}`): a group is released when each has
/// `N`; behind a join, the records of the other side met count apart, `N` of them too
/// (`others`, `w{k}`; lang-spec/privacy.md, *k counts records*).
fn accumulators(eg: &mut ExprGen<'_, '_>, calls: &[&TExpr], sc: &Scope, min_group: Option<(i64, bool)>) -> Accs {
    let mut out = Accs { merges_exactly: true, ..Accs::default() };
    let mut nullable = Vec::new();
    for (k, call) in calls.iter().enumerate() {
        let TExprKind::Aggregate(name, args) = &call.kind else { continue };
        let a = id(format!("a{k}"));
        let arg = first_input(name, args);
        let arg_ty = arg.map(|a| a.ty.clone()).unwrap_or(Type::Bool);
        let v = arg.map(|x| eg.expr(x, sc));
        let Some(acc) = accumulator(eg, call, name, args, v, &arg_ty, sc) else { continue };
        let acc_ty = &acc.ty;
        out.fields.push(quote!(#a: #acc_ty));
        out.merge.push(quote!(self.#a.merge(o.#a);));
        let idx = Literal::usize_unsuffixed(out.arg_vals.len());
        out.merges_exactly &= matches!(
            *name,
            "count" | "count_distinct" | "null_rate" | "sum" | "avg" | "min" | "max" | "first" | "last"
        );
        if matches!(*name, "min" | "max") && arg_ty.non_null() == &Type::Double {
            out.nan_inputs.push(idx.clone());
        }
        out.arg_vals.push(acc.input);
        out.arg_tys.push(acc.input_ty);
        out.adds.push(quote!(acc.#a.add(args.#idx.clone());));
        out.moving_adds.push(quote!(acc.#a.add(args.#idx);));
        if arg_ty.is_nullable() || acc.optional {
            nullable.push((id(format!("o{k}")), idx));
        }
        let fin = id(format!("agg{k}"));
        match acc.finish {
            Some(call) => out.finished.push(quote!(let #fin = acc.#a.#call?;)),
            None => out.finished.push(quote!(let #fin = acc.#a.finish()?;)),
        }
        out.scope.push((*call as *const TExpr, fin, acc.out_ty));
    }
    if let Some((k, joined)) = min_group {
        out.moving_adds.clear();
        // The record's number travels with the row's inputs (to the worker owning the group),
        // and behind a join the number of the other side's record it met (0: none).
        let k = Literal::usize_unsuffixed(usize::try_from(k).unwrap_or(0));
        let origin = Literal::usize_unsuffixed(out.arg_vals.len());
        out.arg_vals.push(quote!(o.id()));
        out.arg_tys.push(quote!(u64));
        let other = Literal::usize_unsuffixed(out.arg_vals.len());
        if joined {
            out.arg_vals.push(quote!(o.with));
            out.arg_tys.push(quote!(u64));
        }
        let sets = std::iter::once(("origins".to_string(), "others".to_string(), None))
            .chain(nullable.into_iter().map(|(o, i)| (o.to_string(), o.to_string().replacen('o', "w", 1), Some(i))));
        for (mine, theirs, idx) in sets {
            let supplies = match idx {
                Some(i) => quote!(agg::Supplies::supplies(&args.#i)),
                None => quote!(true),
            };
            let o = id(mine);
            out.fields.push(quote!(#o: agg::Origins<#k>));
            out.merge.push(quote!(self.#o.merge(o.#o);));
            out.adds.push(quote!(acc.#o.add(#supplies, args.#origin);));
            out.enough.push(quote!(acc.#o.enough()));
            if joined {
                let w = id(theirs);
                out.fields.push(quote!(#w: agg::Origins<#k>));
                out.merge.push(quote!(self.#w.merge(o.#w);));
                out.adds.push(quote!(acc.#w.add(#supplies && args.#other != 0, args.#other);));
                out.enough.push(quote!(acc.#w.enough()));
            }
        }
    }
    out
}

/// The accumulator of aggregate function `name` called as `call`, whose argument (of type
/// `arg_ty`) has the value `v`; `None` (with a diagnostic) when it cannot be compiled.
fn accumulator(
    eg: &mut ExprGen<'_, '_>,
    call: &TExpr,
    name: &str,
    args: &[TExpr],
    v: Option<TokenStream>,
    arg_ty: &Type,
    sc: &Scope,
) -> Option<Acc> {
    let inner = arg_ty.non_null().clone();
    let as_opt = |eg: &mut ExprGen<'_, '_>, v: TokenStream, to: &Type| eg.coerce(v, arg_ty, &to.clone().nullable());
    Some(match name {
        "count" => {
            let present = match (&v, arg_ty.is_nullable()) {
                (Some(v), true) => quote!((#v).is_some()),
                (Some(v), false) => quote!({ let _ = #v; true }),
                (None, _) => quote!(true),
            };
            Acc::new(quote!(agg::Count), present, quote!(bool), Type::Int)
        }
        "count_distinct" if inner == Type::String => {
            let opt = as_opt(eg, v.unwrap_or_default(), &inner);
            Acc::new(quote!(agg::DistinctStrs), opt, quote!(Option<String>), Type::Int)
        }
        "count_distinct" => match hashable(eg.g, &inner, call.span) {
            Some((t, to, _)) => {
                let opt = as_opt(eg, v.unwrap_or_default(), &inner);
                let conv = to(quote!(x));
                Acc::new(quote!(agg::CountDistinct<#t>), quote!((#opt).map(|x| #conv)), quote!(Option<#t>), Type::Int)
            }
            None => {
                eg.g.unsupported(call.span, &format!("`count_distinct` of a `{inner}` cannot be compiled yet"));
                return None;
            }
        },
        "drift" => {
            let (Some(TExprKind::List(keys)), Some(TExprKind::List(base))) =
                (args.get(1).map(|a| &a.kind), args.get(2).map(|a| &a.kind))
            else {
                eg.g.unsupported(call.span, "`drift` without a baseline profile");
                return None;
            };
            let base: Vec<TokenStream> = base
                .iter()
                .map(|b| match b.kind {
                    TExprKind::Float(f) => crate::codegen::f64_lit(f),
                    _ => quote!(0.0),
                })
                .collect();
            if inner == Type::String {
                let values: Vec<&str> = keys
                    .iter()
                    .filter_map(|k| match &k.kind {
                        TExprKind::Str(s) => Some(s.as_str()),
                        _ => None,
                    })
                    .collect();
                let opt = as_opt(eg, v.unwrap_or_default(), &Type::String);
                let acc = Acc::new(quote!(rt::stats::TopValues), opt, quote!(Option<String>), Type::Double.nullable());
                Acc { finish: Some(quote!(drift(&[#(#values),*], &[#(#base),*]))), ..acc }
            } else {
                let edges: Vec<TokenStream> = keys
                    .iter()
                    .map(|k| match k.kind {
                        TExprKind::Float(f) => crate::codegen::f64_lit(f),
                        _ => quote!(0.0),
                    })
                    .collect();
                let opt = as_opt(eg, v.unwrap_or_default(), &Type::Double);
                let acc = Acc::new(quote!(rt::stats::QuantileEdges), opt, quote!(Option<f64>), Type::Double.nullable());
                Acc { finish: Some(quote!(drift(&[#(#edges),*], &[#(#base),*]))), ..acc }
            }
        }
        "null_rate" => {
            // The mean of "is null" over every row of the group.
            let missing = match (&v, arg_ty.is_nullable()) {
                (Some(v), true) => quote!((#v).is_none()),
                (Some(v), false) => quote!({ let _ = #v; false }),
                (None, _) => quote!(false),
            };
            Acc::new(
                quote!(agg::Avg),
                quote!(Some(if #missing { 1.0 } else { 0.0 })),
                quote!(Option<f64>),
                Type::Double.nullable(),
            )
        }
        "sum" | "avg" if inner == Type::Bool => {
            let opt = as_opt(eg, v.unwrap_or_default(), &Type::Bool);
            if name == "sum" {
                Acc::new(quote!(agg::SumInt), quote!((#opt).map(i64::from)), quote!(Option<i64>), Type::Int)
            } else {
                let one = quote!((#opt).map(|b| if b { 1.0 } else { 0.0 }));
                Acc::new(quote!(agg::Avg), one, quote!(Option<f64>), Type::Double.nullable())
            }
        }
        "sum" if call.ty.non_null() == &Type::Int => {
            let opt = as_opt(eg, v.unwrap_or_default(), &Type::Int);
            Acc::new(quote!(agg::SumInt), opt, quote!(Option<i64>), Type::Int)
        }
        "sum" => {
            let opt = as_opt(eg, v.unwrap_or_default(), &Type::Double);
            Acc::new(quote!(agg::SumDouble), opt, quote!(Option<f64>), Type::Double)
        }
        "avg" => {
            let opt = as_opt(eg, v.unwrap_or_default(), &Type::Double);
            Acc::new(quote!(agg::Avg), opt, quote!(Option<f64>), Type::Double.nullable())
        }
        "min" | "max" | "first" | "last" => {
            let t = eg.g.rust_type(&inner, call.span);
            let opt = as_opt(eg, v.unwrap_or_default(), &inner);
            let which = id(match name {
                "min" => "Min",
                "max" => "Max",
                "first" => "First",
                _ => "Last",
            }
            .into());
            if matches!(name, "first" | "last") {
                Acc::new(
                    quote!(agg::#which<#t>),
                    quote!((ts, seq, #opt)),
                    quote!((i64, u64, Option<#t>)),
                    inner.clone().nullable(),
                )
            } else {
                Acc::new(quote!(agg::#which<#t>), opt, quote!(Option<#t>), inner.clone().nullable())
            }
        }
        "approx_quantile" => {
            let Some(q) = literal_number(args.get(1)).filter(|q| (0.0..=1.0).contains(q)) else {
                eg.g.unsupported(
                    call.span,
                    "`approx_quantile` with a quantile that is not a number between 0 and 1 written in the program",
                );
                return None;
            };
            let opt = as_opt(eg, v.unwrap_or_default(), &Type::Double);
            let acc = Acc::new(quote!(agg::Quantile), opt, quote!(Option<f64>), Type::Double.nullable());
            let q = crate::codegen::f64_lit(q);
            Acc { finish: Some(quote!(quantile(#q))), ..acc }
        }
        "auc" | "log_loss" | "accuracy" | "quantile_means" => return evaluation(eg, call, name, args, v, arg_ty, sc),
        "stddev" => {
            let opt = as_opt(eg, v.unwrap_or_default(), &Type::Double);
            Acc::new(quote!(rt::stats::StdDev), opt, quote!(Option<f64>), Type::Double.nullable())
        }
        "quantile_edges" | "top_values" => {
            let Some(n) = literal_number(args.get(1)).filter(|n| *n >= 1.0 && n.fract() == 0.0 && *n <= 100_000.0)
            else {
                eg.g.unsupported(
                    call.span,
                    &format!(
                        "`{name}` with a count that is not a whole number from 1 to 100000 written in the program"
                    ),
                );
                return None;
            };
            let n = Literal::usize_unsuffixed(n as usize);
            let acc = if name == "quantile_edges" {
                let opt = as_opt(eg, v.unwrap_or_default(), &Type::Double);
                Acc::new(quote!(rt::stats::QuantileEdges), opt, quote!(Option<f64>), Type::List(Box::new(Type::Double)))
            } else {
                let opt = as_opt(eg, v.unwrap_or_default(), &Type::String);
                Acc::new(quote!(rt::stats::TopValues), opt, quote!(Option<String>), Type::List(Box::new(Type::String)))
            };
            let finish = if name == "quantile_edges" { quote!(edges(#n)) } else { quote!(top(#n)) };
            Acc { finish: Some(finish), ..acc }
        }
        other => {
            eg.g.unsupported(call.span, &format!("the aggregate `{other}` cannot be compiled yet"));
            return None;
        }
    })
}

/// The accumulators of the model-evaluation aggregates (`rt::evaluate`): a score (or a
/// value) and a label (or an ordering value) per row, nulls and NaN scores left out.
fn evaluation(
    eg: &mut ExprGen<'_, '_>,
    call: &TExpr,
    name: &str,
    args: &[TExpr],
    v: Option<TokenStream>,
    arg_ty: &Type,
    sc: &Scope,
) -> Option<Acc> {
    let second = args.get(1)?;
    let raw = eg.expr(second, sc);
    let first = v.unwrap_or_default();
    let number = |eg: &mut ExprGen<'_, '_>, v: TokenStream, ty: &Type| {
        let opt = eg.coerce(v, ty, &Type::Double.nullable());
        quote!((#opt).filter(|x: &f64| !x.is_nan()))
    };
    let scored = |input: TokenStream, input_ty: TokenStream, ty: TokenStream| Acc {
        optional: true,
        ..Acc::new(ty, input, input_ty, Type::Double.nullable())
    };
    Some(match name {
        "auc" | "log_loss" => {
            let w = eg.coerce(raw, &second.ty, &Type::Bool.nullable());
            let s = number(eg, first, arg_ty);
            let ty = if name == "auc" { quote!(rt::evaluate::Auc) } else { quote!(rt::evaluate::LogLoss) };
            scored(quote!((#s, #w)), quote!((Option<f64>, Option<bool>)), ty)
        }
        "accuracy" => {
            let Some(t) = literal_number(args.get(2)) else {
                eg.g.unsupported(call.span, "`accuracy` with a threshold that is not a number written in the program");
                return None;
            };
            let t = crate::codegen::f64_lit(t);
            let w = eg.coerce(raw, &second.ty, &Type::Bool.nullable());
            let s = number(eg, first, arg_ty);
            let predicted = quote!((#s).map(|x| x > #t));
            scored(quote!((#predicted, #w)), quote!((Option<bool>, Option<bool>)), quote!(rt::evaluate::Accuracy))
        }
        _ => {
            let Some(bins) = literal_number(args.get(2)).filter(|b| *b >= 1.0 && b.fract() == 0.0) else {
                eg.g.unsupported(call.span, "`quantile_means` with a number of bins that is not a whole number of at least 1 written in the program");
                return None;
            };
            let x = if arg_ty.non_null() == &Type::Bool {
                let opt = eg.coerce(first, arg_ty, &Type::Bool.nullable());
                quote!((#opt).map(|b| if b { 1.0 } else { 0.0 }))
            } else {
                number(eg, first, arg_ty)
            };
            let by = number(eg, raw, &second.ty);
            let bins = Literal::usize_unsuffixed(bins as usize);
            Acc {
                finish: Some(quote!(means(#bins))),
                out_ty: Type::List(Box::new(Type::Double)),
                ..scored(quote!((#x, #by)), quote!((Option<f64>, Option<f64>)), quote!(rt::evaluate::QuantileMeans))
            }
        }
    })
}

/// The push function (the row's key and accumulator inputs, sent to the worker that owns
/// its group) and the fold function (into each window the row falls in), with the
/// aggregate's variant of `Exchange` and the arm that applies it.
///
/// Where every accumulator merges exactly (`Accs::merges_exactly`), consecutive rows with the
/// same key and event time (the rows an `explode` makes of one record) are added, with several
/// workers, into one partial accumulator, the last in the outbox, and the group's worker merges
/// it into each window the time falls in (`merge_{i}`): one message, one route hash and one
/// group lookup per record instead of per row, with the results of the rows one by one.
#[allow(clippy::too_many_arguments, reason = "one aggregate's parts: each argument names one")]
fn push_and_fold(
    i: usize,
    in_ty: &TokenStream,
    bind: &TokenStream,
    window: Option<&WindowKind>,
    keys: &Keys,
    accs: &Accs,
    acc: &Ident,
    fallible: bool,
) -> (TokenStream, (TokenStream, TokenStream)) {
    let ni = lit(i);
    let map = id(format!("agg_{i}"));
    let guard = window_guard(window, &ni);
    let fold = window_fold(window, &map, &ni, &accs.adds);
    let key_tys = &keys.tys;
    let arg_tys = &accs.arg_tys;
    let key_ty = quote!((#(#key_tys,)*));
    let m = id(format!("push_{i}_0"));
    let variant = id(format!("A{i}"));
    let fold_fn = id(format!("fold_{i}"));
    let merge_fn = id(format!("merge_{i}"));
    let eval = key_and_args(keys, accs, fallible, &ni);
    let (send, merge, exchange) = if accs.merges_exactly {
        // `args` is added once on either path, so its inputs can move.
        let adds = if accs.moving_adds.is_empty() { &accs.adds } else { &accs.moving_adds };
        let nan = &accs.nan_inputs;
        let merge = window_merge(window, &map, &ni);
        let send = quote! {
            // Rows of one record with one key and time go as one partial accumulator (the
            // last message, while it takes more rows).
            let alone = false #(|| args.#nan.is_some_and(f64::is_nan))*;
            if !alone {
                if let Some(Exchange::#variant(k, acc, t, true)) = self.outbox.last_mut() {
                    if *t == ts && *k == key {
                        acc.rows += 1;
                        #(#adds)*
                        return;
                    }
                }
            }
            let mut acc = #acc::default();
            acc.rows += 1;
            #(#adds)*
            self.outbox.push(Exchange::#variant(key, acc, ts, !alone));
        };
        let merge = quote! {
            /// Merges a partial accumulator of rows with this key and time (another worker's)
            /// into their groups.
            #[allow(clippy::clone_on_copy, unused_variables)]
            fn #merge_fn(&mut self, key: #key_ty, part: #acc, ts: i64) {
                #merge
            }
        };
        let exchange = (
            quote!(#variant(#key_ty, #acc, i64, bool)),
            quote!(Exchange::#variant(key, part, ts, _) => self.#merge_fn(key, part, ts),),
        );
        (send, merge, exchange)
    } else {
        let exchange = (
            quote!(#variant(#key_ty, (#(#arg_tys,)*), i64)),
            quote!(Exchange::#variant(key, args, ts) => self.#fold_fn(key, args, ts),),
        );
        (quote!(self.outbox.push(Exchange::#variant(key, args, ts));), quote!(), exchange)
    };
    let push = quote! {
        #[allow(clippy::clone_on_copy, unused_variables)]
        fn #m(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #in_ty) {
            self.base.stats[#ni].read += 1;
            #guard
            self.base.seq += 1;
            let seq = self.base.seq;
            #bind
            #eval
            // The key exchange: with several workers, a group lives on the one its key hashes
            // to, and the engine takes the row there (accumulators do not depend on the order
            // rows arrive in, so results are the same whatever the number of workers).
            if self.base.workers > 1 {
                #send
                return;
            }
            self.#fold_fn(key, args, ts);
        }

        /// Folds one row's key and aggregate inputs into its groups.
        #[allow(clippy::clone_on_copy, unused_variables)]
        fn #fold_fn(&mut self, key: #key_ty, args: (#(#arg_tys,)*), ts: i64) {
            #fold
        }

        #merge
    };
    (push, exchange)
}

/// Merging a partial accumulator `part` of rows at `ts` into each window `ts` falls in, as
/// [`window_fold`] adds one row.
fn window_merge(window: Option<&WindowKind>, map: &Ident, ni: &Literal) -> TokenStream {
    let at = |start: TokenStream, part: TokenStream| {
        quote! {
            match self.#map.slot(key.clone(), #start) {
                Some(acc) => rt::window::Merge::merge_from(acc, #part),
                None => self.base.stats[#ni].late += part.rows,
            }
        }
    };
    match window {
        Some(WindowKind::Sliding { size, every, offset }) => {
            let (s, e, o) =
                (Literal::i64_suffixed(*size), Literal::i64_suffixed(*every), Literal::i64_suffixed(*offset));
            let each = at(quote!(start), quote!(part.clone()));
            quote! {
                for start in rt::window::sliding_starts(ts, #s, #e, #o) {
                    #each
                }
            }
        }
        Some(WindowKind::Tumbling { size, offset }) => {
            let (sz, o) = (Literal::i64_suffixed(*size), Literal::i64_suffixed(*offset));
            let start = quote!(rt::window::tumbling_start(ts, #sz, #o));
            quote! {
                match self.#map.slot(key, #start) {
                    Some(acc) => rt::window::Merge::merge_from(acc, part),
                    None => self.base.stats[#ni].late += part.rows,
                }
            }
        }
        Some(WindowKind::Session { .. }) => quote! {
            match self.#map.slot(key, ts) {
                Some(acc) => rt::window::Merge::merge_from(acc, part),
                None => self.base.stats[#ni].late += part.rows,
            }
        },
        _ => quote! {
            match self.#map.slot(key, 0i64) {
                Some(acc) => rt::window::Merge::merge_from(acc, part),
                None => self.base.stats[#ni].late += part.rows,
            }
        },
    }
}

/// Window arithmetic near the ends of the i64 range would overflow: such an event time is
/// rejected, not wrapped.
fn window_guard(window: Option<&WindowKind>, ni: &Literal) -> TokenStream {
    let guard = match window {
        Some(WindowKind::Tumbling { size, offset }) => Some(size.saturating_add(*offset)),
        Some(WindowKind::Sliding { size, every, offset }) => Some(size.saturating_add(*every).saturating_add(*offset)),
        Some(WindowKind::Session { gap }) => Some(*gap),
        Some(WindowKind::Rolling { size }) => Some(*size),
        None => None,
    };
    match guard {
        Some(gd) => {
            let gd = Literal::i64_suffixed(gd);
            quote! {
                if ts.checked_sub(#gd).is_none() || ts.checked_add(#gd).is_none() {
                    self.reject(ctx, o, #ni, Reject::new("event time out of range for the window"));
                    return;
                }
            }
        }
        None => quote!(),
    }
}

/// Window assignment: the body of the fold function, adding the row to the accumulator of
/// each window it falls in.
fn window_fold(window: Option<&WindowKind>, map: &Ident, ni: &Literal, add_calls: &[TokenStream]) -> TokenStream {
    let session = matches!(window, Some(WindowKind::Session { .. }));
    let starts = match window {
        None | Some(WindowKind::Session { .. } | WindowKind::Rolling { .. }) => quote!(std::iter::once(0i64)),
        Some(WindowKind::Tumbling { size, offset }) => {
            let (s, o) = (Literal::i64_suffixed(*size), Literal::i64_suffixed(*offset));
            quote!(std::iter::once(rt::window::tumbling_start(ts, #s, #o)))
        }
        Some(WindowKind::Sliding { size, every, offset }) => {
            let (s, e, o) =
                (Literal::i64_suffixed(*size), Literal::i64_suffixed(*every), Literal::i64_suffixed(*offset));
            quote!(rt::window::sliding_starts(ts, #s, #e, #o))
        }
    };
    // A window whose lateness has passed takes no more records: they are counted as late.
    let single = matches!(window, None | Some(WindowKind::Tumbling { .. }));
    if session || single {
        // One window per row: the key moves into it.
        let at = match window {
            Some(WindowKind::Tumbling { size, offset }) => {
                let (sz, o) = (Literal::i64_suffixed(*size), Literal::i64_suffixed(*offset));
                quote!(rt::window::tumbling_start(ts, #sz, #o))
            }
            Some(WindowKind::Session { .. }) => quote!(ts),
            _ => quote!(0i64),
        };
        quote! {
            match self.#map.slot(key, #at) {
                Some(acc) => {
                    acc.rows += 1;
                    #(#add_calls)*
                }
                None => self.base.stats[#ni].late += 1,
            }
        }
    } else {
        quote! {
            for start in #starts {
                match self.#map.slot(key.clone(), start) {
                    Some(acc) => {
                        acc.rows += 1;
                        #(#add_calls)*
                    }
                    None => self.base.stats[#ni].late += 1,
                }
            }
        }
    }
}

/// Finishing: the watermark passed every window's end. The finish function (each fired
/// group's output row, passed on) and its call.
fn finish_fn(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    node: &Node,
    spec: &AggSpec<'_>,
    keys: Keys,
    accs: Accs,
) -> (TokenStream, TokenStream) {
    let (ni, window) = (lit(i), spec.window);
    let map = id(format!("agg_{i}"));
    let mut out_sc = Scope { aggregates: accs.scope, ..Scope::default() };
    let mut key_binds = Vec::new();
    let mut key_pats = Vec::new();
    for (k, (name, ty, back)) in keys.back.iter().enumerate() {
        let raw = id(format!("key{k}"));
        let local = names::local(0, name);
        let conv = back(quote!(#raw));
        key_binds.push(quote!(let #local = #conv;));
        key_pats.push(raw);
        out_sc.bind(name, quote!(#local), ty.clone());
    }
    if window.is_some() {
        out_sc.bind("window_start", quote!(window_start), Type::Timestamp);
        out_sc.bind("window_end", quote!(window_end), Type::Timestamp);
    }
    let mut eg = ExprGen::new(g);
    let mut inits = Vec::new();
    for (f, (name, ty)) in node.row.fields.iter().enumerate() {
        let (fid, _) = names::field(name, f);
        let v = match spec.fields.iter().find(|(n, _)| n == name) {
            Some((_, e)) => {
                let v = eg.expr(e, &out_sc);
                eg.coerce(v, &e.ty, ty)
            }
            None => match out_sc.vars.get(name).cloned() {
                Some((local, storage)) => eg.coerce(local, &storage, ty),
                None => quote!(Default::default()),
            },
        };
        inits.push(quote!(#fid: #v));
    }
    let out_ty = &cx.row_ty[i];
    // `k >= N`: the group's rows are dropped (counted as filtered) unless enough distinct
    // records stand behind the group and behind each aggregate.
    let enough = &accs.enough;
    let k_check = if enough.is_empty() {
        quote!()
    } else {
        quote! {
            if !(#(#enough)&&*) {
                self.base.stats[#ni].filtered += acc.rows;
                continue;
            }
        }
    };
    let ts_out = if window.is_some() { quote!(window_end - 1) } else { quote!(0i64) };
    let out = emit(cx, i, quote!(row), true);
    let fin = id(format!("finish_{i}"));
    let stream = Literal::string(&node.name);
    let finished = &accs.finished;
    let finish = quote! {
        /// The watermark reached `wm`: every group whose window ended emits its row.
        #[allow(unused_variables)]
        fn #fin(&mut self, ctx: &Context, wm: i64) {
            let groups = self.#map.fire(wm);
            for rt::window::Fired { key: (#(#key_pats,)*), start: window_start, end: window_end, acc } in groups {
                #k_check
                let origin = Origin::group(#stream, rt::record::id_of(&(#(&#key_pats,)* window_start)));
                let o = &origin;
                let ts = #ts_out;
                #(#key_binds)*
                let row = match (move || -> Res<#out_ty> {
                    #(#finished)*
                    Ok(#out_ty { #(#inits),* })
                })() {
                    Ok(r) => r,
                    Err(e) => { self.reject(ctx, o, #ni, e); continue; }
                };
                #out
            }
        }
    };
    (finish, quote!(self.#fin(ctx, wm);))
}

/// Every aggregate call in `fields`, in order.
fn calls_in(fields: &[(String, TExpr)]) -> Vec<&TExpr> {
    fn collect<'e>(e: &'e TExpr, out: &mut Vec<&'e TExpr>) {
        if matches!(e.kind, TExprKind::Aggregate(..)) {
            out.push(e);
            return;
        }
        for c in e.children() {
            collect(c, out);
        }
    }
    let mut calls = Vec::new();
    for (_, e) in fields {
        collect(e, &mut calls);
    }
    calls
}

/// A rolling window (`window rolling(size)`): each record crosses the key exchange with its
/// accumulator inputs and the fields it comes out with, waits in `rt::window::Rolling` until
/// the watermark passes its time, and leaves with the aggregates of its key's records in
/// `[t - size, t)`.
fn rolling_node(g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, node: &Node, spec: &AggSpec<'_>, size: i64) -> AggParts {
    let input = node.inputs.first().map_or(0, |x| x.0);
    let in_ty = &cx.row_ty[input];
    let in_fields = cx.plan.nodes[input].row.fields.clone();
    let mut sc = Scope::default();
    let bind = destructure(quote!(row), in_ty, &in_fields, 0, &mut sc, false);
    let calls = calls_in(spec.fields);
    let mut eg = ExprGen::new(g);
    let keys = group_keys(&mut eg, spec.keys, &sc);
    let accs = accumulators(&mut eg, &calls, &sc, None);
    let fallible = eg.fallible;
    let ni = lit(i);

    // The record's fields its output row takes.
    let kept: Vec<(String, Type)> = in_fields.iter().filter(|(n, _)| node.row.get(n).is_some()).cloned().collect();
    let kept_tys: Vec<TokenStream> = kept.iter().map(|(_, t)| eg.g.rust_type(t, node.span)).collect();
    let kept_vals: Vec<TokenStream> = kept
        .iter()
        .map(|(n, _)| match sc.vars.get(n) {
            Some((local, _)) => quote!(#local.clone()),
            None => quote!(Default::default()),
        })
        .collect();
    let acc = id(format!("Acc{i}"));
    let rec = id(format!("Rolled{i}"));
    let acc_struct = acc_struct(&acc, &accs);
    let acc_def = quote! {
        #acc_struct
        /// What a record of a rolling window comes out with.
        #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub struct #rec(#(pub #kept_tys),*);
    };
    let map = id(format!("agg_{i}"));
    let key_tys = &keys.tys;
    let arg_tys = &accs.arg_tys;
    let key_ty = quote!((#(#key_tys,)*));
    let args_ty = quote!((#(#arg_tys,)*));
    let state_ty = quote!(rt::window::Rolling<#key_ty, (#rec, #args_ty)>);
    let size_lit = Literal::i64_suffixed(size);
    let init = quote!(#map: rt::window::Rolling::new(#size_lit));
    let guard = window_guard(Some(&WindowKind::Rolling { size }), &ni);

    let m = id(format!("push_{i}_0"));
    let variant = id(format!("A{i}"));
    let fold_fn = id(format!("fold_{i}"));
    let eval = key_and_args(&keys, &accs, fallible, &ni);
    let push = quote! {
        #[allow(clippy::clone_on_copy, unused_variables)]
        fn #m(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #in_ty) {
            self.base.stats[#ni].read += 1;
            #guard
            self.base.seq += 1;
            let seq = self.base.seq;
            #bind
            #eval
            let held = (seq, #rec(#(#kept_vals),*), args);
            if self.base.workers > 1 {
                self.outbox.push(Exchange::#variant(key, held, ts));
                return;
            }
            self.#fold_fn(key, held, ts);
        }

        /// Holds one record of a rolling window until the watermark passes its time.
        fn #fold_fn(&mut self, key: #key_ty, held: (u64, #rec, #args_ty), ts: i64) {
            let (seq, rec, args) = held;
            self.#map.add(key, ts, seq, (rec, args));
        }
    };
    let exchange = (
        quote!(#variant(#key_ty, (u64, #rec, #args_ty), i64)),
        quote!(Exchange::#variant(key, held, ts) => self.#fold_fn(key, held, ts),),
    );

    // Leaving: the record's fields, its keys and its window's aggregates make its row.
    let mut out_sc = Scope { aggregates: accs.scope, ..Scope::default() };
    let mut key_binds = Vec::new();
    let mut key_pats = Vec::new();
    for (k, (name, ty, back)) in keys.back.iter().enumerate() {
        let raw = id(format!("key{k}"));
        let local = names::local(0, name);
        let conv = back(quote!(#raw));
        key_binds.push(quote!(let #local = #conv;));
        key_pats.push(raw);
        out_sc.bind(name, quote!(#local), ty.clone());
    }
    let mut rec_pats = Vec::new();
    for (name, ty) in &kept {
        let local = names::local(1, name);
        rec_pats.push(local.clone());
        out_sc.bind(name, quote!(#local), ty.clone());
    }
    let mut eg = ExprGen::new(g);
    let mut inits = Vec::new();
    for (f, (name, ty)) in node.row.fields.iter().enumerate() {
        let (fid, _) = names::field(name, f);
        let v = match spec.fields.iter().find(|(n, _)| n == name) {
            Some((_, e)) => {
                let v = eg.expr(e, &out_sc);
                eg.coerce(v, &e.ty, ty)
            }
            None => match out_sc.vars.get(name).cloned() {
                Some((local, storage)) => eg.coerce(quote!(#local.clone()), &storage, ty),
                None => quote!(Default::default()),
            },
        };
        inits.push(quote!(#fid: #v));
    }
    let out_ty = &cx.row_ty[i];
    let out = emit(cx, i, quote!(row), true);
    let fin = id(format!("finish_{i}"));
    let stream = Literal::string(&node.name);
    let (finished, adds) = (&accs.finished, &accs.adds);
    let finish = quote! {
        /// The watermark reached `wm`: every record before it leaves with its window's
        /// aggregates.
        #[allow(unused_variables, clippy::clone_on_copy, clippy::redundant_clone)]
        fn #fin(&mut self, ctx: &Context, wm: i64) {
            let fold = |acc: &mut #acc, held: &(#rec, #args_ty)| {
                let args = &held.1;
                acc.rows += 1;
                #(#adds)*
            };
            for (key, ts, seq, (rec, _), acc) in self.#map.advance(wm, fold) {
                let (#(#key_pats,)*) = key;
                #(#key_binds)*
                let #rec(#(#rec_pats),*) = rec;
                let origin = Origin::group(#stream, rt::record::id_of(&(ts, seq)));
                let o = &origin;
                let row = match (|| -> Res<#out_ty> {
                    #(#finished)*
                    Ok(#out_ty { #(#inits),* })
                })() {
                    Ok(r) => r,
                    Err(e) => { self.reject(ctx, o, #ni, e); continue; }
                };
                #out
            }
        }
    };
    AggParts {
        acc: acc_def,
        field: quote!(#map: #state_ty),
        ty: state_ty,
        init,
        push,
        finish,
        finish_call: quote!(self.#fin(ctx, wm);),
        exchange,
    }
}

/// The accumulator struct of an aggregate: a row count and one accumulator per call.
fn acc_struct(acc: &Ident, accs: &Accs) -> TokenStream {
    let (fields, merge) = (&accs.fields, &accs.merge);
    quote! {
        #[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub struct #acc { rows: u64, #(#fields,)* }
        impl rt::window::Merge for #acc {
            fn merge_from(&mut self, o: #acc) {
                // A group that has no rows yet takes the other whole (most groups of a
                // partial from another worker): merging into empty accumulators is taking
                // theirs, without adding their values one by one.
                if self.rows == 0 {
                    *self = o;
                    return;
                }
                self.rows += o.rows;
                #(#merge)*
            }
        }
    }
}

/// `let (key, args) = …;` for the row bound in the push function; a failure rejects it.
fn key_and_args(keys: &Keys, accs: &Accs, fallible: bool, ni: &Literal) -> TokenStream {
    let (key_tys, key_vals) = (&keys.tys, &keys.vals);
    let (arg_tys, arg_vals) = (&accs.arg_tys, &accs.arg_vals);
    let eval = quote!(((#(#key_vals,)*), (#(#arg_vals,)*)));
    if fallible {
        quote! {
            let (key, args) = match (|| -> Res<((#(#key_tys,)*), (#(#arg_tys,)*))> { Ok(#eval) })() {
                Ok(v) => v,
                Err(e) => { self.reject(ctx, o, #ni, e); return; }
            };
        }
    } else {
        quote!(let (key, args) = #eval;)
    }
}
