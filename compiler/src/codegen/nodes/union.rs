//! Union operators: one push function per input, each converting its rows to the union's row.

use proc_macro2::TokenStream;
use quote::quote;

use super::{destructure, emit, id, lit, Ctx};
use crate::codegen::expr::{ExprGen, Scope};
use crate::codegen::{names, Gen};
use crate::ir::Node;

/// The push function of input `slot` of union `i`, fed by node `from`.
pub(super) fn union_input(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    slot: usize,
    from: usize,
    node: &Node,
) -> TokenStream {
    let m = id(format!("push_{i}_{slot}"));
    let in_ty = &cx.row_ty[from];
    let out_ty = &cx.row_ty[i];
    let from_fields = cx.plan.nodes[from].row.fields.clone();
    let mut sc = Scope::default();
    let bind = destructure(quote!(row), in_ty, &from_fields, 0, &mut sc, false);
    let mut eg = ExprGen::new(g);
    let mut inits = Vec::new();
    for (k, (name, ty)) in node.row.fields.iter().enumerate() {
        let (fid, _) = names::field(name, k);
        let v = match sc.vars.get(name) {
            Some((local, storage)) => {
                let (local, storage) = (local.clone(), storage.clone());
                eg.coerce(local, &storage, ty)
            }
            None => quote!(None),
        };
        inits.push(quote!(#fid: #v));
    }
    let fallible = eg.fallible;
    let ni = lit(i);
    let make = quote!(#out_ty { #(#inits),* });
    let build = if fallible {
        quote! {
            let row = match (move || -> Res<#out_ty> { Ok(#make) })() {
                Ok(r) => r,
                Err(e) => { self.reject(ctx, o, #ni, e); return; }
            };
        }
    } else {
        quote!(let row = #make;)
    };
    let out = emit(cx, i, quote!(row), true);
    quote! {
        fn #m(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #in_ty) {
            let _ = (ctx, o, ts);
            self.base.stats[#ni].read += 1;
            #bind
            #build
            #out
        }
    }
}
