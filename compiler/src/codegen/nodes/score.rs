//! `score` stages of a map: model inputs as features, each model's static table, and the
//! predictions, row by row or in blocks of rows.

use std::collections::HashMap;

use proc_macro2::{Ident, Literal, Span as PSpan, TokenStream};
use quote::quote;

use super::map::{reads_var, stage_code, Locals, MapCx, Pos};
use super::{bind_values, id};
use crate::codegen::expr::{ExprGen, Scope};
use crate::codegen::{names, Gen};
use crate::ir::Stage;
use crate::source::Span;
use crate::types::Type;

/// Rows are scored in blocks of this many: each group of trees then walks a block of rows while
/// its nodes are in cache.
const BLOCK_ROWS: usize = 256;

/// The first run of `score` steps, if its rows can be scored in blocks: no input of the run
/// reads another model's output from the same run, and no `score` follows later.
pub(super) fn score_block(stages: &[Stage]) -> Option<(usize, usize)> {
    let k = stages.iter().position(|s| matches!(s, Stage::Score { .. }))?;
    let end = stages[k..].iter().position(|s| !matches!(s, Stage::Score { .. })).map_or(stages.len(), |e| k + e);
    if stages[end..].iter().any(|s| matches!(s, Stage::Score { .. })) {
        return None;
    }
    let outputs: Vec<&str> = stages[k..end]
        .iter()
        .filter_map(|s| match s {
            Stage::Score { output, .. } => Some(output.as_str()),
            _ => None,
        })
        .collect();
    for s in &stages[k..end] {
        if let Stage::Score { inputs, .. } = s {
            if inputs.iter().any(|(_, e)| outputs.iter().any(|o| reads_var(e, o))) {
                return None;
            }
        }
    }
    Some((k, end))
}

/// A run of `score` steps scored row by row.
pub(super) fn fused_scores(g: &mut Gen<'_>, m: &MapCx<'_, '_>, at: Pos<'_>, mut l: Locals) -> TokenStream {
    let (i, k, step) = (m.i, at.k, at.step());
    // Consecutive `score` steps are fused: each distinct input is computed once (a
    // later model may also read an earlier one's output), and every model scores the
    // same values in one pass over the rows.
    let mut end = k;
    while let Some(Stage::Score { .. }) = m.stages.get(end) {
        end += 1;
    }
    let mut code = Vec::new();
    let mut computed: Vec<(String, Ident)> = Vec::new();
    for (j, stage) in m.stages[k..end].iter().enumerate() {
        let Stage::Score { model, inputs, output } = stage else { continue };
        let Some((mdl, table)) = model_table(g, model, m.node.span) else { continue };
        // New inputs of this model.
        let mut eg = ExprGen::new(g);
        let mut new_locals = Vec::new();
        let mut new_values = Vec::new();
        let mut slots = Vec::new();
        for feature in &mdl.features {
            let Some((_, e)) = inputs.iter().find(|(n, _)| n == feature) else {
                slots.push(quote!(f64::NAN));
                continue;
            };
            let v = eg.expr(e, &l.sc);
            let v = as_feature(v, &e.ty);
            let key = v.to_string();
            let local = match computed.iter().find(|(c, _)| *c == key) {
                Some((_, id)) => id.clone(),
                None => {
                    let id = id(format!("_x{step}_{j}_{}", new_locals.len()));
                    computed.push((key, id.clone()));
                    new_locals.push(id.clone());
                    new_values.push(v);
                    id
                }
            };
            slots.push(quote!(#local));
        }
        let fallible = eg.fallible;
        let types: Vec<TokenStream> = new_locals.iter().map(|_| quote!(f64)).collect();
        if !new_locals.is_empty() {
            code.push(bind_values(g, i, &new_locals, &types, new_values, fallible, at.exit));
        }
        let out = names::local(step * 1000 + j, output);
        code.push(quote!(let #out: f64 = #table.predict(&[#(#slots),*]);));
        l.sc.bind(output, quote!(#out), Type::Double);
        if !l.order.contains(output) {
            l.order.push(output.clone());
        }
        l.depth.insert(output.clone(), at.depth);
    }
    let rest = stage_code(g, m, Pos { k: end, ..at }, l);
    quote!(#(#code)* #rest)
}

/// Each model of a run of `score` steps: its name, its table, the index of each of its
/// features among the run's distinct inputs (`None` for one it is not given), its output.
type PerModel = Vec<(String, Ident, Vec<Option<usize>>, String)>;

/// Rows reaching a run of `score` steps wait in a block: their fields, their distinct model
/// inputs, their origin and event time are kept in a `Pending` struct, and when the block is
/// full (or the split ends) every model scores the whole block, one tree at a time through all
/// of its rows, and the steps after the run continue row by row.
pub(super) fn block_push(g: &mut Gen<'_>, m: &MapCx<'_, '_>, at: Pos<'_>, l: Locals) -> TokenStream {
    let (i, k, step) = (m.i, at.k, at.step());
    let stages = m.stages;
    let end = stages[k..].iter().position(|s| !matches!(s, Stage::Score { .. })).map_or(stages.len(), |e| k + e);
    // The distinct inputs of every model of the run.
    let mut eg = ExprGen::new(g);
    let mut computed: Vec<(String, TokenStream)> = Vec::new();
    let mut per_model: PerModel = Vec::new();
    for stage in &stages[k..end] {
        let Stage::Score { model, inputs, output } = stage else { continue };
        let Some((mdl, table)) = model_table(eg.g, model, m.node.span) else { continue };
        let mut slots = Vec::new();
        for feature in &mdl.features {
            let Some((_, e)) = inputs.iter().find(|(n, _)| n == feature) else {
                slots.push(None);
                continue;
            };
            let v = as_feature(eg.expr(e, &l.sc), &e.ty);
            let key = v.to_string();
            let idx = match computed.iter().position(|(c, _)| *c == key) {
                Some(idx) => idx,
                None => {
                    computed.push((key, v));
                    computed.len() - 1
                }
            };
            slots.push(Some(idx));
        }
        per_model.push((model.clone(), table, slots, output.clone()));
    }
    let fallible = eg.fallible;
    let nf = computed.len();
    let x_locals: Vec<Ident> = (0..nf).map(|n| id(format!("_x{step}_{n}"))).collect();
    let x_types: Vec<TokenStream> = (0..nf).map(|_| quote!(f64)).collect();
    let x_values: Vec<TokenStream> = computed.into_iter().map(|(_, v)| v).collect();
    let inputs_code = bind_values(g, i, &x_locals, &x_types, x_values, fallible, at.exit);

    let pending = pending_row(g, m, at, &l, nf);
    let buf = id(format!("pending_{i}"));
    let flush = id(format!("score_block_{i}"));
    let (name, inits) = (pending.name.clone(), pending.inits.clone());
    let block_fn = block_scoring(g, m, at, end, pending, &per_model);
    g.block_fns.insert(i, block_fn);
    let x = &x_locals;
    let block_rows = Literal::usize_unsuffixed(BLOCK_ROWS);
    quote! {
        #inputs_code
        self.#buf.push(#name { o: o.to_owned(), ts, x: [#(#x),*], #(#inits,)* });
        if self.#buf.len() >= #block_rows {
            self.#flush(ctx);
        }
    }
}

/// A row waiting in a block.
struct Pending {
    /// The struct's name.
    name: Ident,
    /// The initializers of its fields, from the current locals.
    inits: Vec<TokenStream>,
    /// The patterns that bind its fields to new locals when the block is scored.
    binds: Vec<TokenStream>,
    /// Those new locals, as the row after the run of `score` steps starts.
    post: Locals,
}

/// The `Pending` struct of a block-scoring map (a waiting row: its origin, event time, `nf`
/// model inputs and the current fields) and its buffer in the worker state.
fn pending_row(g: &mut Gen<'_>, m: &MapCx<'_, '_>, at: Pos<'_>, l: &Locals, nf: usize) -> Pending {
    let i = m.i;
    // The waiting row.
    let pending = id(format!("Pending{i}"));
    let buf = id(format!("pending_{i}"));
    let mut fields = Vec::new();
    let mut inits = Vec::new();
    let mut binds = Vec::new();
    let mut post = Locals { sc: Scope::default(), order: Vec::new(), depth: HashMap::new(), block_at: None };
    for (n, name) in l.order.iter().enumerate() {
        let Some((local, storage)) = l.sc.vars.get(name).cloned() else { continue };
        let f = id(format!("f{n}"));
        let ty = g.rust_type(&storage, m.node.span);
        fields.push(quote!(#f: #ty));
        let moved = if l.depth.get(name).copied().unwrap_or(0) < at.depth { quote!(#local.clone()) } else { local };
        inits.push(quote!(#f: #moved));
        let new = names::local(9000 + n, name);
        binds.push(quote!(#f: #new));
        post.sc.bind(name, quote!(#new), storage);
        post.order.push(name.clone());
        post.depth.insert(name.clone(), 1);
    }
    let nf_lit = Literal::usize_unsuffixed(nf);
    g.items.push(quote! {
        pub struct #pending {
            o: rt::record::OwnedOrigin,
            ts: i64,
            x: [f64; #nf_lit],
            #(#fields,)*
        }
    });
    g.extra_fields.push((quote!(#buf: Vec<#pending>), quote!(#buf: Vec::new())));
    g.block_nodes.push(i);
    Pending { name: pending, inits, binds, post }
}

/// `score_block_i`: every model of the run (the `score` stages from `at.k` to `end`) scores
/// the waiting rows, one tree at a time through all of them, then the stages after the run
/// continue row by row.
fn block_scoring(
    g: &mut Gen<'_>,
    m: &MapCx<'_, '_>,
    at: Pos<'_>,
    end: usize,
    pending: Pending,
    per_model: &PerModel,
) -> TokenStream {
    let (i, step) = (m.i, at.step());
    let buf = id(format!("pending_{i}"));
    let flush = id(format!("score_block_{i}"));
    let Pending { name: pending, binds, mut post, .. } = pending;
    // Scoring a block, then the steps after the run, row by row.
    let mut scoring = Vec::new();
    let mut outs = Vec::new();
    for (j, (_, table, slots, output)) in per_model.iter().enumerate() {
        let out = id(format!("out_{j}"));
        let width = Literal::usize_unsuffixed(slots.len());
        let cells: Vec<TokenStream> = slots
            .iter()
            .map(|s| match s {
                Some(idx) => {
                    let idx = Literal::usize_unsuffixed(*idx);
                    quote!(r.x[#idx])
                }
                None => quote!(f64::NAN),
            })
            .collect();
        scoring.push(quote! {
            let mut #out: Vec<f64> = Vec::new();
            {
                let xs: Vec<[f64; #width]> = rows.iter().map(|r| [#(#cells),*]).collect();
                #table.predict_block(&xs, &mut #out);
            }
        });
        let local = names::local(step * 1000 + j, output);
        outs.push(quote!(let #local: f64 = #out[n];));
        post.sc.bind(output, quote!(#local), Type::Double);
        if !post.order.contains(output) {
            post.order.push(output.clone());
        }
        post.depth.insert(output.clone(), 1);
    }
    let rest = stage_code(g, m, Pos { k: end, depth: 1, exit: &quote!(continue) }, post);
    quote! {
        fn #flush(&mut self, ctx: &Context) {
            let rows = std::mem::take(&mut self.#buf);
            if rows.is_empty() {
                return;
            }
            #(#scoring)*
            for (n, r) in rows.into_iter().enumerate() {
                let #pending { o: origin, ts, x: _, #(#binds,)* } = r;
                let o = &origin.as_origin();
                let _ = (ctx, o, ts);
                #(#outs)*
                #rest
            }
        }
    }
}

/// A loaded model and the name of its static table, which is emitted on first use.
fn model_table(g: &mut Gen<'_>, model: &str, span: Span) -> Option<(crate::models::Model, Ident)> {
    let Some(m) = g.models.get(model).cloned() else {
        g.unsupported(span, &format!("internal error in the code generator: model `{model}` was not loaded"));
        return None;
    };
    let table = Ident::new(&names::ident("MODEL_", model).to_string().to_uppercase(), PSpan::call_site());
    if g.emitted_models.insert(model.to_string()) {
        g.items.push(crate::codegen::models::model_static(&table, &m));
    }
    Some((m, table))
}

/// A model input as the `f64` the kernels take: numbers as they are, a bool as 0 or 1, an enum
/// as its number (a categorical value), null as NaN (missing).
fn as_feature(v: TokenStream, ty: &Type) -> TokenStream {
    let conv = |x: TokenStream, t: &Type| match t {
        Type::Int => quote!(((#x) as f64)),
        Type::Bool => quote!((if #x { 1.0f64 } else { 0.0f64 })),
        Type::Enum(..) => quote!(((#x).0 as f64)),
        _ => x,
    };
    match ty {
        Type::Nullable(t) => {
            let inner = conv(quote!(x), t);
            quote!(match #v { Some(x) => #inner, None => f64::NAN })
        }
        Type::Null => quote!(f64::NAN),
        t => conv(v, t),
    }
}
