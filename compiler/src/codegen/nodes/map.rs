//! Map operators: the fused stages of a `map` (`select`, `derive`, `where`, `explode`,
//! `protect`, `score`) over local variables, in one push function per map.

use std::collections::{BTreeSet, HashMap};

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::score::{block_push, fused_scores, score_block};
use super::{bind_values, destructure, emit, id, lit, Ctx};
use crate::codegen::expr::{single_reads, ExprGen, Scope};
use crate::codegen::{names, Gen};
use crate::hir::{Mask, TExpr, TExprKind};
use crate::ir::{Node, Stage};
use crate::types::Type;

/// The current row inside a map: each field's local, its storage type, and the loop depth
/// it was bound at (a local bound outside an `explode` loop is cloned, not moved, inside it).
pub(super) struct Locals {
    pub(super) sc: Scope,
    pub(super) order: Vec<String>,
    pub(super) depth: HashMap<String, usize>,
    /// The stage where rows wait to be scored in blocks, if this map does that.
    pub(super) block_at: Option<usize>,
}

/// The map being compiled: its context, its node and its stages.
pub(super) struct MapCx<'c, 'p> {
    pub(super) cx: &'c Ctx<'p>,
    /// The map's node index.
    pub(super) i: usize,
    pub(super) node: &'c Node,
    pub(super) stages: &'c [Stage],
}

/// A position in the stage list: the next stage `k`, the `explode` loop depth, and how code
/// leaves the current record (`return`, or `continue` inside a loop).
#[derive(Clone, Copy)]
pub(super) struct Pos<'e> {
    pub(super) k: usize,
    pub(super) depth: usize,
    pub(super) exit: &'e TokenStream,
}

impl Pos<'_> {
    /// The step number of stage `k` (locals of the input row are step 0).
    pub(super) fn step(&self) -> usize {
        self.k + 1
    }
}

pub(super) fn map_node(g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, node: &Node, stages: &[Stage]) -> TokenStream {
    let input = node.inputs.first().map_or(0, |x| x.0);
    let in_ty = &cx.row_ty[input];
    let in_fields = cx.plan.nodes[input].row.fields.clone();
    let block = score_block(stages);
    let mut l = Locals { sc: Scope::default(), order: Vec::new(), depth: HashMap::new(), block_at: block.map(|b| b.0) };
    let bind = destructure(quote!(row), in_ty, &in_fields, 0, &mut l.sc, false);
    for (n, _) in &in_fields {
        l.order.push(n.clone());
        l.depth.insert(n.clone(), 0);
    }
    let mc = MapCx { cx, i, node, stages };
    let body = stage_code(g, &mc, Pos { k: 0, depth: 0, exit: &quote!(return) }, l);
    let m = id(format!("push_{i}_0"));
    let ni = lit(i);
    let block_fn = g.block_fns.remove(&i).unwrap_or_default();
    quote! {
        fn #m(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #in_ty) {
            let _ = (ctx, o, ts);
            self.base.stats[#ni].read += 1;
            #bind
            #body
        }
        #block_fn
    }
}

/// The code of the stages from `at.k` on, ending with the output row passed on.
pub(super) fn stage_code(g: &mut Gen<'_>, m: &MapCx<'_, '_>, at: Pos<'_>, mut l: Locals) -> TokenStream {
    let Some(stage) = m.stages.get(at.k) else {
        // The end: build the output row and pass it on.
        return output_row(g, m, at, &l);
    };
    let next = Pos { k: at.k + 1, ..at };
    match stage {
        Stage::Select(fields) => {
            let code = select(g, m, at, &mut l, fields);
            let rest = stage_code(g, m, next, l);
            quote!(#code #rest)
        }
        Stage::Derive(fields) => {
            let code = derive(g, m, at, &mut l, fields);
            let rest = stage_code(g, m, next, l);
            quote!(#(#code)* #rest)
        }
        Stage::Filter(c) => {
            let test = filter(g, m, at, &l, c);
            let rest = stage_code(g, m, next, l);
            quote!(#test #rest)
        }
        Stage::Require { cond, what, blocking } => {
            let test = require(g, m, at, &l, cond, what, *blocking);
            let rest = stage_code(g, m, next, l);
            quote!(#test #rest)
        }
        Stage::Explode { list, alias } => explode(g, m, at, l, list, alias),
        Stage::Protect { masks, .. } => {
            let code = protect(g, m, at, &mut l, masks);
            let rest = stage_code(g, m, next, l);
            quote!(#(#code)* #rest)
        }
        Stage::Score { .. } if l.block_at == Some(at.k) => block_push(g, m, at, l),
        Stage::Score { .. } => fused_scores(g, m, at, l),
    }
}

/// The end of the stages: the output row built from the current locals, passed on.
fn output_row(g: &mut Gen<'_>, m: &MapCx<'_, '_>, at: Pos<'_>, l: &Locals) -> TokenStream {
    let (i, node, exit) = (m.i, m.node, at.exit);
    let ni = lit(i);
    let out_ty = &m.cx.row_ty[i];
    let mut eg = ExprGen::new(g);
    let mut inits = Vec::new();
    for (f, (name, ty)) in node.row.fields.iter().enumerate() {
        let (fid, _) = names::field(name, f);
        let v = match l.sc.vars.get(name) {
            Some((local, storage)) => {
                let (local, storage) = (local.clone(), storage.clone());
                let moved =
                    if l.depth.get(name).copied().unwrap_or(0) < at.depth { quote!(#local.clone()) } else { local };
                eg.coerce(moved, &storage, ty)
            }
            None => eg.internal(&TExpr { kind: TExprKind::Error, ty: ty.clone(), span: node.span }, "an output field"),
        };
        inits.push(quote!(#fid: #v));
    }
    let fallible = eg.fallible;
    let make = quote!(#out_ty { #(#inits),* });
    let build = if fallible {
        quote! {
            let row = match (|| -> Res<#out_ty> { Ok(#make) })() {
                Ok(r) => r,
                Err(e) => { self.reject(ctx, o, #ni, e); #exit }
            };
        }
    } else {
        quote!(let row = #make;)
    };
    let out = emit(m.cx, i, quote!(row), true);
    quote!(#build #out)
}

/// `select`: every field reads the input row; the selected fields replace the row.
fn select(g: &mut Gen<'_>, m: &MapCx<'_, '_>, at: Pos<'_>, l: &mut Locals, fields: &[(String, TExpr)]) -> TokenStream {
    // The selected fields replace the row: a field of it read once is moved, if its local was
    // bound in this loop (one bound outside an `explode` loop serves every element).
    let roots: Vec<&TExpr> = fields.iter().map(|(_, e)| e).collect();
    l.sc.moves = single_reads(&roots, |v| l.depth.get(v) == Some(&at.depth));
    let mut eg = ExprGen::new(g);
    let mut values = Vec::new();
    let mut locals = Vec::new();
    for (name, e) in fields {
        values.push(eg.expr(e, &l.sc));
        locals.push(names::local(at.step(), name));
    }
    l.sc.moves.clear();
    let fallible = eg.fallible;
    let types: Vec<TokenStream> = fields.iter().map(|(_, e)| g.rust_type(&e.ty, e.span)).collect();
    let code = bind_values(g, m.i, &locals, &types, values, fallible, at.exit);
    l.sc.vars.clear();
    l.order.clear();
    for ((name, e), local) in fields.iter().zip(&locals) {
        l.sc.bind(name, quote!(#local), e.ty.clone());
        l.order.push(name.clone());
        l.depth.insert(name.clone(), at.depth);
    }
    code
}

/// `derive`: each derived field sees the ones before it.
fn derive(
    g: &mut Gen<'_>,
    m: &MapCx<'_, '_>,
    at: Pos<'_>,
    l: &mut Locals,
    fields: &[(String, TExpr)],
) -> Vec<TokenStream> {
    let mut code = Vec::new();
    for (n, (name, e)) in fields.iter().enumerate() {
        let mut eg = ExprGen::new(g);
        let v = eg.expr(e, &l.sc);
        let fallible = eg.fallible;
        let local = names::local(at.step() * 1000 + n, name);
        let ty = g.rust_type(&e.ty, e.span);
        code.push(bind_values(g, m.i, std::slice::from_ref(&local), &[ty], vec![v], fallible, at.exit));
        l.sc.bind(name, quote!(#local), e.ty.clone());
        if !l.order.contains(name) {
            l.order.push(name.clone());
        }
        l.depth.insert(name.clone(), at.depth);
    }
    code
}

/// `where`: a record that fails the condition is counted as filtered.
fn filter(g: &mut Gen<'_>, m: &MapCx<'_, '_>, at: Pos<'_>, l: &Locals, c: &TExpr) -> TokenStream {
    let (ni, exit) = (lit(m.i), at.exit);
    let mut eg = ExprGen::new(g);
    let v = eg.expr(c, &l.sc);
    if eg.fallible {
        quote! {
            match (|| -> Res<bool> { Ok(#v) })() {
                Ok(true) => {}
                Ok(false) => { self.base.stats[#ni].filtered += 1; #exit }
                Err(e) => { self.reject(ctx, o, #ni, e); #exit }
            }
        }
    } else {
        quote! {
            if !(#v) { self.base.stats[#ni].filtered += 1; #exit }
        }
    }
}

/// `require`: a row for which the condition is false is counted against the requirement (the
/// run fails at its end, or a stream at its next checkpoint) and goes on.
fn require(
    g: &mut Gen<'_>,
    m: &MapCx<'_, '_>,
    at: Pos<'_>,
    l: &Locals,
    c: &TExpr,
    what: &str,
    blocking: Option<bool>,
) -> TokenStream {
    let (ni, exit) = (lit(m.i), at.exit);
    let mut eg = ExprGen::new(g);
    let v = eg.expr(c, &l.sc);
    if let Some(blocking) = blocking {
        // A check of an `expect` step: its value is a field of the step's row.
        return quote! { self.base.violations.check(#what, #blocking, #v); };
    }
    if eg.fallible {
        quote! {
            match (|| -> Res<bool> { Ok(#v) })() {
                Ok(true) => {}
                Ok(false) => self.base.violations.add(#what),
                Err(e) => { self.reject(ctx, o, #ni, e); #exit }
            }
        }
    } else {
        quote! {
            if !(#v) { self.base.violations.add(#what); }
        }
    }
}

/// `explode`: a loop over the list's elements, the stages after it inside the loop.
fn explode(g: &mut Gen<'_>, m: &MapCx<'_, '_>, at: Pos<'_>, mut l: Locals, list: &TExpr, alias: &str) -> TokenStream {
    let (k, depth, step) = (at.k, at.depth, at.step());
    let ni = lit(m.i);
    let mut eg = ExprGen::new(g);
    // A list field read nowhere after the explode is moved into the loop, not copied.
    let movable = match &list.kind {
        TExprKind::Var(n)
            if l.depth.get(n) == Some(&depth) && list.ty == l.sc.vars.get(n).map_or(Type::Error, |v| v.1.clone()) =>
        {
            let mut used = m.node.row.fields.iter().any(|(f, _)| f == n);
            for st in &m.stages[k + 1..] {
                used |= stage_reads(st, n);
            }
            (!used).then(|| l.sc.vars.get(n).map(|v| v.0.clone())).flatten()
        }
        _ => None,
    };
    let v = match movable {
        Some(local) => {
            // Moved into the loop: nothing after the explode reads it.
            if let TExprKind::Var(n) = &list.kind {
                l.sc.vars.remove(n);
                l.order.retain(|o| o != n);
            }
            local
        }
        None => eg.expr(list, &l.sc),
    };
    let (elem, nullable) = match &list.ty {
        Type::Nullable(t) => (t.as_ref().clone(), true),
        t => (t.clone(), false),
    };
    let elem = match elem {
        Type::List(e) | Type::Set(e) => *e,
        _ => Type::Error,
    };
    let v = if nullable { quote!((#v).unwrap_or_default()) } else { v };
    let fallible = eg.fallible;
    let hoisted = hoist(g, &mut l, &m.stages[k + 1..], alias, step);
    let list_ty = g.rust_type(&Type::List(Box::new(elem.clone())), list.span);
    let items = names::local(step, "\u{0}items");
    let code = bind_values(g, m.i, std::slice::from_ref(&items), &[list_ty], vec![v], fallible, at.exit);
    let local = names::local(step, alias);
    l.sc.bind(alias, quote!(#local), elem);
    if !l.order.iter().any(|o| o == alias) {
        l.order.push(alias.to_string());
    }
    l.depth.insert(alias.to_string(), depth + 1);
    let rest = stage_code(g, m, Pos { k: k + 1, depth: depth + 1, exit: &quote!(continue) }, l);
    quote! {
        #code
        #hoisted
        self.base.stats[#ni].expanded += #items.len() as i64 - 1;
        for #local in #items {
            #rest
        }
    }
}

/// `protect`: each masked field gets a new local holding its masked value; a dropped field
/// leaves the row.
fn protect(
    g: &mut Gen<'_>,
    m: &MapCx<'_, '_>,
    at: Pos<'_>,
    l: &mut Locals,
    masks: &[(String, Mask)],
) -> Vec<TokenStream> {
    let mut code = Vec::new();
    for (name, mask) in masks {
        let Some((local, storage)) = l.sc.vars.get(name).cloned() else { continue };
        if *mask == Mask::Drop {
            l.sc.vars.remove(name);
            l.order.retain(|n| n != name);
            continue;
        }
        let Some(out_ty) = mask.apply_type(&storage) else { continue };
        let new = names::local(at.step(), name);
        let inner = storage.non_null().clone();
        let x = quote!(x);
        let text = if inner == Type::Int { quote!((#x).to_string()) } else { quote!(#x) };
        let Some((body, fallible)) = mask_body(g, mask, &x, &text) else { continue };
        let value = match (mask, storage.is_nullable()) {
            (Mask::Redact, true) => quote!((#local).as_ref().map(|_| String::from(f::REDACTED))),
            (Mask::Redact, false) => quote!(String::from(f::REDACTED)),
            (_, true) => quote!(match #local.clone() { Some(x) => Some(#body), None => None }),
            (_, false) => quote!({ let x = #local.clone(); #body }),
        };
        let ty = g.rust_type(&out_ty, m.node.span);
        code.push(bind_values(g, m.i, std::slice::from_ref(&new), &[ty], vec![value], fallible, at.exit));
        l.sc.bind(name, quote!(#new), out_ty);
        l.depth.insert(name.clone(), at.depth);
    }
    code
}

/// A mask applied to the non-null value `x` (`text` is its text form), and whether that can
/// fail; `None` for `drop`, which has no value.
fn mask_body(g: &mut Gen<'_>, mask: &Mask, x: &TokenStream, text: &TokenStream) -> Option<(TokenStream, bool)> {
    Some(match mask {
        Mask::Hmac => {
            g.uses_key = true;
            (quote!(ctx.hmac(#text.as_bytes())), false)
        }
        Mask::Tokenize => {
            g.uses_key = true;
            (quote!(ctx.tokenize(&#text)), false)
        }
        Mask::Bucket(Some(w)) => {
            let w = Literal::f64_suffixed(*w);
            (quote!(f::bucket((#x) as f64, #w)?), true)
        }
        Mask::Bucket(None) => (quote!(f::bucket_auto((#x) as f64)), false),
        Mask::Truncate(n) => {
            let n = Literal::i64_suffixed(*n);
            (quote!(rt::mask::truncate(&#x, #n)), false)
        }
        Mask::Redact => (quote!(String::from(f::REDACTED)), false),
        Mask::Drop => return None,
    })
}

/// Loop-invariant code motion for `explode`: a field expression of a later `select`/`derive`
/// that reads only fields bound before the loop, cannot fail and is more than a name is
/// computed once per record before the loop (`hmac(member_id)` once per application, not once
/// per tradeline). Expressions that can fail stay in the loop, so a record with an empty list
/// is never rejected by an expression that would not have run.
fn hoist(g: &mut Gen<'_>, l: &mut Locals, after: &[Stage], alias: &str, step: usize) -> TokenStream {
    fn free_vars(e: &TExpr, out: &mut Vec<String>) -> bool {
        match &e.kind {
            TExprKind::Var(n) => out.push(n.clone()),
            TExprKind::Aggregate(..) | TExprKind::Error => return false,
            _ => {}
        }
        e.children().into_iter().all(|c| free_vars(c, out))
    }
    let mut bound_after: BTreeSet<String> = BTreeSet::from([alias.to_string()]);
    let mut code = Vec::new();
    for stage in after {
        let (fields, select) = match stage {
            Stage::Select(f) => (f, true),
            Stage::Derive(f) => (f, false),
            Stage::Filter(_) => continue,
            _ => break,
        };
        for (j, (_, e)) in fields.iter().enumerate() {
            // A derived field is visible to the derived fields after it.
            if !select && j > 0 {
                bound_after.insert(fields[j - 1].0.clone());
            }
            if e.is_literal() || matches!(e.kind, TExprKind::Var(_)) {
                continue;
            }
            let mut vars = Vec::new();
            if !free_vars(e, &mut vars) || vars.iter().any(|v| bound_after.contains(v) || !l.sc.vars.contains_key(v)) {
                continue;
            }
            let mut eg = ExprGen::new(g);
            let v = eg.expr(e, &l.sc);
            if eg.fallible {
                continue;
            }
            let local = id(format!("_h{step}_{}", l.sc.hoisted.len()));
            code.push(quote!(let #local = #v;));
            l.sc.hoisted.push((e as *const TExpr, local));
        }
        for (n, _) in fields {
            bound_after.insert(n.clone());
        }
        if select {
            break;
        }
    }
    quote!(#(#code)*)
}

pub(super) fn reads_var(e: &TExpr, name: &str) -> bool {
    matches!(&e.kind, TExprKind::Var(n) if n == name) || e.children().into_iter().any(|c| reads_var(c, name))
}

/// Whether a stage reads field `name` of its input row.
fn stage_reads(stage: &Stage, name: &str) -> bool {
    fn reads(e: &TExpr, name: &str) -> bool {
        matches!(&e.kind, TExprKind::Var(n) if n == name) || e.children().into_iter().any(|c| reads(c, name))
    }
    match stage {
        Stage::Select(f) | Stage::Derive(f) => f.iter().any(|(_, e)| reads(e, name)),
        Stage::Filter(e) | Stage::Require { cond: e, .. } => reads(e, name),
        Stage::Explode { list, .. } => reads(list, name),
        Stage::Score { inputs, .. } => inputs.iter().any(|(_, e)| reads(e, name)),
        Stage::Protect { masks, .. } => masks.iter().any(|(n, _)| n == name),
    }
}
