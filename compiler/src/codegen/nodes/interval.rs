//! Joins of two streams: both sides' rows cross the key exchange (the join is one of the plan's
//! keyed operators, like an aggregate) and meet on the worker that owns their key. An interval
//! join (`rt::join::Interval`) pairs rows as they arrive and drops them when the watermark has
//! passed every time they could meet — a left join then emits the left rows that met nothing;
//! an as-of join with a stream of versions (`rt::join::Versions`) holds each row until the
//! watermark has passed its time and emits it with the version it met.

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use super::{destructure, emit, id, lit, Ctx};
use crate::codegen::expr::{ExprGen, Scope};
use crate::codegen::{names, Gen};
use crate::hir::{AsOf, TExpr};
use crate::ir::Node;
use crate::types::Type;

/// What interval join `i` adds, in the shape of an aggregate's parts.
pub(super) struct IntervalParts {
    pub(super) items: TokenStream,
    pub(super) map: Ident,
    pub(super) ty: TokenStream,
    pub(super) init: TokenStream,
    pub(super) methods: TokenStream,
    pub(super) variants: Vec<TokenStream>,
    pub(super) arms: Vec<TokenStream>,
    /// `Exchange` patterns that bind the key as `key`, for the route.
    pub(super) route: TokenStream,
    pub(super) finish_call: TokenStream,
}

pub(super) struct IntervalSpec<'a> {
    pub(super) left: bool,
    pub(super) kind: Keyed<'a>,
    pub(super) keys: &'a [(TExpr, TExpr)],
    pub(super) fields: &'a [(String, String)],
}

/// Which join of two streams.
pub(super) enum Keyed<'a> {
    /// Rows meet when `lower <= other's time - row's time <= upper`.
    Interval(i64, i64),
    /// A row meets the latest version at its time.
    AsOf(&'a AsOf),
}

pub(super) fn interval_node(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    node: &Node,
    spec: &IntervalSpec<'_>,
) -> IntervalParts {
    let (left_in, right_in) = (node.inputs[0].0, node.inputs[1].0);
    let ni = lit(i);
    let stream = proc_macro2::Literal::string(&node.name);
    let key_ty = id(format!("JKey{i}"));
    let (lty, rty) = (id(format!("JLeft{i}")), id(format!("JRight{i}")));
    let key_tys: Vec<TokenStream> = spec.keys.iter().map(|(l, _)| g.rust_type(l.ty.non_null(), l.span)).collect();

    // What each side keeps: the left row's fields the output takes, the other side's taken ones.
    let left_row = cx.plan.nodes[left_in].row.clone();
    let right_row = cx.plan.nodes[right_in].row.clone();
    let is_right = |name: &str| spec.fields.iter().any(|(n, _)| n == name);
    let left_kept: Vec<(String, Type)> = node
        .row
        .fields
        .iter()
        .filter(|(n, _)| !is_right(n))
        .filter_map(|(n, _)| left_row.get(n).map(|t| (n.clone(), t.clone())))
        .collect();
    let right_kept: Vec<(String, Type)> =
        spec.fields.iter().map(|(_, f)| (f.clone(), right_row.get(f).cloned().unwrap_or(Type::Error))).collect();
    let ltys: Vec<TokenStream> = left_kept.iter().map(|(_, t)| g.rust_type(t, node.span)).collect();
    let rtys: Vec<TokenStream> = right_kept.iter().map(|(_, t)| g.rust_type(t, node.span)).collect();
    let items = quote! {
        /// The key of an interval join.
        pub type #key_ty = (#(#key_tys,)*);
        /// What the join keeps of a row of its stream, and the row's record number.
        #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub struct #lty(#(pub #ltys,)* pub u64);
        /// What the join keeps of a row of the other stream, and the row's record number.
        #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub struct #rty(#(pub #rtys,)* pub u64);
    };
    let map = id(format!("ijoin_{i}"));
    let order_expr = match spec.kind {
        Keyed::AsOf(a) => a.order.as_ref(),
        Keyed::Interval(..) => None,
    };
    let order_ty = match order_expr {
        Some(o) => g.rust_type(&o.ty, o.span),
        None => quote!(()),
    };
    let (ty, init) = match spec.kind {
        Keyed::Interval(lower, upper) => {
            let (lo, hi) = (proc_macro2::Literal::i64_suffixed(lower), proc_macro2::Literal::i64_suffixed(upper));
            (quote!(rt::join::Interval<#key_ty, #lty, #rty>), quote!(#map: rt::join::Interval::new(#lo, #hi)))
        }
        Keyed::AsOf(a) => {
            let within = match a.within {
                Some(w) => {
                    let w = proc_macro2::Literal::i64_suffixed(w);
                    quote!(Some(#w))
                }
                None => quote!(None),
            };
            (quote!(rt::join::Versions<#key_ty, #order_ty, #lty, #rty>), quote!(#map: rt::join::Versions::new(#within)))
        }
    };
    let (vl, vr) = (id(format!("J{i}L")), id(format!("J{i}R")));
    let (meet_l, meet_r, pair) = (id(format!("meet_left_{i}")), id(format!("meet_right_{i}")), id(format!("pair_{i}")));

    // The pushes of both sides: key, kept values, then the exchange (or the meeting at once).
    let side = |g: &mut Gen<'_>, slot: usize, from: usize, kept: &[(String, Type)], exprs: Vec<&TExpr>| {
        let in_ty = &cx.row_ty[from];
        let fields = cx.plan.nodes[from].row.fields.clone();
        let mut sc = Scope::default();
        let bind = destructure(quote!(row), in_ty, &fields, slot, &mut sc, false);
        let (key, _) = super::lookup::key_code(g, &exprs, &sc, &quote!(#key_ty));
        let vals: Vec<TokenStream> = kept
            .iter()
            .map(|(n, _)| match sc.vars.get(n) {
                Some((local, _)) => quote!(#local.clone()),
                None => quote!(Default::default()),
            })
            .collect();
        // The other side's `order by` value (as-of): `Ok(value)` or the reason it has none.
        let mut eg = ExprGen::new(g);
        let order = match order_expr.filter(|_| slot == 1) {
            Some(o) => eg.expr(o, &sc),
            None => quote!(()),
        };
        let order = if eg.fallible {
            quote!((|| -> Res<#order_ty> { Ok(#order) })())
        } else {
            quote!(Ok::<#order_ty, Reject>(#order))
        };
        (in_ty.clone(), bind, key, vals, order)
    };
    let (l_in, l_bind, l_key, l_vals, _) = side(g, 0, left_in, &left_kept, spec.keys.iter().map(|(l, _)| l).collect());
    let (r_in, r_bind, r_key, r_vals, r_order) =
        side(g, 1, right_in, &right_kept, spec.keys.iter().map(|(_, r)| r).collect());
    let alone_now = if spec.left {
        quote! {
            let origin = Origin::joined(#stream, o.id(), 0);
            self.#pair(ctx, &origin, ts, &#lty(#(#l_vals,)* o.id()), None);
        }
    } else {
        quote!(self.base.stats[#ni].filtered += 1;)
    };
    let (push_l, push_r) = (id(format!("push_{i}_0")), id(format!("push_{i}_1")));
    // The record numbers the kept rows end with.
    let (lid, rid) = (syn::Index::from(left_kept.len()), syn::Index::from(right_kept.len()));

    // The output row of a pair (or of a left row alone).
    let mut eg = ExprGen::new(g);
    let mut inits = Vec::new();
    for (k, (name, ty)) in node.row.fields.iter().enumerate() {
        let (fid, _) = names::field(name, k);
        let v = if let Some(j) = spec.fields.iter().position(|(n, _)| n == name) {
            let idx = syn::Index::from(j);
            let v = eg.coerce(quote!(r.#idx.clone()), &right_kept[j].1, ty);
            // A left row alone (only in a left join, whose table fields are nullable).
            let none = if ty.is_nullable() { quote!(None) } else { quote!(Default::default()) };
            quote!(match r { Some(r) => #v, None => #none })
        } else if let Some(j) = left_kept.iter().position(|(n, _)| n == name) {
            let idx = syn::Index::from(j);
            eg.coerce(quote!(l.#idx.clone()), &left_kept[j].1, ty)
        } else {
            quote!(Default::default())
        };
        inits.push(quote!(#fid: #v));
    }
    let fallible = eg.fallible;
    let out_ty = &cx.row_ty[i];
    let make = quote!(#out_ty { #(#inits),* });
    let build = if fallible {
        quote! {
            let row = match (|| -> Res<#out_ty> { Ok(#make) })() {
                Ok(r) => r,
                Err(e) => { self.reject(ctx, o, #ni, e); return; }
            };
        }
    } else {
        quote!(let row = #make;)
    };
    let out = emit(cx, i, quote!(row), true);
    let alone_fired = if spec.left {
        quote! {
            let origin = Origin::joined(#stream, l.#lid, 0);
            self.#pair(ctx, &origin, ts, &l, None);
        }
    } else {
        quote!(let _ = (key, ts, l);)
    };
    let fin = id(format!("finish_{i}"));
    let asof = matches!(spec.kind, Keyed::AsOf(_));
    // The other side's row: its key, values and (as-of) its `order by` value.
    let (r_order_let, r_order_arg, r_order_ty) = if asof {
        (
            quote! {
                let ord = match #r_order {
                    Ok(v) => v,
                    Err(e) => { self.reject(ctx, o, #ni, e); return; }
                };
            },
            quote!(ord,),
            quote!(#order_ty,),
        )
    } else {
        (quote!(), quote!(), quote!())
    };
    // Versions of one instant and `order by` value: the tie goes by a hash of the version's
    // values, the same in a backfill, a stream and at any scale (input places are not).
    let r_tie = if asof {
        quote! {
            let mut values = r.clone();
            values.#rid = 0;
            let seq = rt::prelude::postcard::to_stdvec(&values).map_or(seq, |b| rt::record::id_of(&b));
        }
    } else {
        quote!()
    };
    let meet = if asof {
        let out_of = id(format!("met_{i}"));
        let none = if spec.left {
            quote! {
                let origin = Origin::joined(#stream, l.#lid, 0);
                self.#pair(ctx, &origin, ts, l, None);
            }
        } else {
            quote!(self.base.stats[#ni].filtered += 1;)
        };
        quote! {
            /// A row of the stream: one behind the watermark meets the versions held at once,
            /// any other waits until the watermark passes its time.
            fn #meet_l(&mut self, ctx: &Context, key: #key_ty, ts: i64, seq: u64, l: #lty) {
                if let Some(met) = self.#map.left(key, ts, seq, l.clone()) {
                    self.#out_of(ctx, ts, &l, met);
                }
            }

            /// A version of the other stream is kept among its key's.
            fn #meet_r(&mut self, ctx: &Context, key: #key_ty, ts: i64, ord: #order_ty, seq: u64, r: #rty) {
                let _ = ctx;
                self.#map.right(key, ts, ord, seq, r);
            }

            /// A row leaves with the version it met, at its own event time.
            fn #out_of(&mut self, ctx: &Context, ts: i64, l: &#lty, met: rt::join::Met<#rty>) {
                match met {
                    Some((_, r)) => {
                        let origin = Origin::joined(#stream, l.#lid, r.#rid);
                        self.#pair(ctx, &origin, ts, l, Some(&r));
                    }
                    None => { #none }
                }
            }

            /// The watermark reached `wm`: the rows before it leave with the versions they met.
            fn #fin(&mut self, ctx: &Context, wm: i64) {
                for (_, ts, _, l, met) in self.#map.advance(wm) {
                    self.#out_of(ctx, ts, &l, met);
                }
            }
        }
    } else {
        quote! {
            /// A row of the stream meets the other stream's rows of its key within the bounds.
            fn #meet_l(&mut self, ctx: &Context, key: #key_ty, ts: i64, seq: u64, l: #lty) {
                for (rts, r) in self.#map.left(key, ts, seq, l.clone()) {
                    let origin = Origin::joined(#stream, l.#lid, r.#rid);
                    self.#pair(ctx, &origin, ts.max(rts), &l, Some(&r));
                }
            }

            /// A row of the other stream meets the stream's rows of its key within the bounds.
            fn #meet_r(&mut self, ctx: &Context, key: #key_ty, ts: i64, seq: u64, r: #rty) {
                for (lts, l) in self.#map.right(key, ts, seq, r.clone()) {
                    let origin = Origin::joined(#stream, l.#lid, r.#rid);
                    self.#pair(ctx, &origin, ts.max(lts), &l, Some(&r));
                }
            }

            /// The watermark reached `wm`: rows nothing can meet any more leave (a left join emits
            /// its rows that met nothing).
            #[allow(unused_variables)]
            fn #fin(&mut self, ctx: &Context, wm: i64) {
                for (key, ts, l) in self.#map.advance(wm) {
                    #alone_fired
                }
            }
        }
    };
    let methods = quote! {
        #[allow(clippy::clone_on_copy, unused_variables)]
        fn #push_l(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #l_in) {
            self.base.stats[#ni].read += 1;
            self.base.seq += 1;
            let seq = self.base.seq;
            #l_bind
            let key = match #l_key {
                Ok(Some(k)) => k,
                // A null key meets nothing.
                Ok(None) => {
                    #alone_now
                    return;
                }
                Err(e) => { self.reject(ctx, o, #ni, e); return; }
            };
            let l = #lty(#(#l_vals,)* o.id());
            if self.base.workers > 1 {
                self.outbox.push(Exchange::#vl(key, ts, seq, l));
                return;
            }
            self.#meet_l(ctx, key, ts, seq, l);
        }

        #[allow(clippy::clone_on_copy, unused_variables)]
        fn #push_r(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #r_in) {
            self.base.stats[#ni].read += 1;
            self.base.seq += 1;
            let seq = self.base.seq;
            #r_bind
            let key = match #r_key {
                Ok(Some(k)) => k,
                Ok(None) => return,
                Err(e) => { self.reject(ctx, o, #ni, e); return; }
            };
            #r_order_let
            let r = #rty(#(#r_vals,)* o.id());
            #r_tie
            if self.base.workers > 1 {
                self.outbox.push(Exchange::#vr(key, ts, #r_order_arg seq, r));
                return;
            }
            self.#meet_r(ctx, key, ts, #r_order_arg seq, r);
        }

        #meet

        /// Emits the row of a pair, or of a left row that met nothing (`r` is `None`).
        #[allow(clippy::clone_on_copy, unused_variables)]
        fn #pair(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, l: &#lty, r: Option<&#rty>) {
            #build
            #out
        }
    };
    let r_bind_arm = if asof { quote!(ord,) } else { quote!() };
    IntervalParts {
        items,
        map,
        ty,
        init,
        methods,
        variants: vec![quote!(#vl(#key_ty, i64, u64, #lty)), quote!(#vr(#key_ty, i64, #r_order_ty u64, #rty))],
        arms: vec![
            quote!(Exchange::#vl(key, ts, seq, l) => self.#meet_l(ctx, key, ts, seq, l),),
            quote!(Exchange::#vr(key, ts, #r_bind_arm seq, r) => self.#meet_r(ctx, key, ts, #r_bind_arm seq, r),),
        ],
        route: quote!(Exchange::#vl(ref key, ..) | Exchange::#vr(ref key, ..)),
        finish_call: quote!(self.#fin(ctx, wm);),
    }
}
