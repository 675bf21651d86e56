//! Lookup joins: the table a join reads (its records by key, built from every worker's part
//! before any row of the stream) and the two push functions of the join operator: input 1
//! collects the table's records, input 0 meets each row with the records of its key.

use proc_macro2::TokenStream;
use quote::quote;

use super::{destructure, emit, id, lit, Ctx};
use crate::codegen::expr::{ExprGen, Scope};
use crate::codegen::{names, Gen};
use crate::hir::{AsOf, TExpr};
use crate::ir::Node;
use crate::types::Type;

/// What join `i` adds to the generated crate.
pub(super) struct LookupParts {
    /// The key and entry types.
    pub(super) items: TokenStream,
    /// `Tables`' field for this join, and its type.
    pub(super) table: JoinTable,
    /// The worker state's buffer of records read for the table.
    pub(super) collect_field: TokenStream,
    pub(super) collect_init: TokenStream,
    pub(super) methods: TokenStream,
}

/// How `Tables` holds one join's table.
pub(super) struct JoinTable {
    pub(super) node: usize,
    /// `Tables`' field: the records' entries by key (for an as-of join with their event times).
    pub(super) field: TokenStream,
    /// What orders a key's records before their place in the input: `()`, or for an as-of join
    /// the event time and the `order by` value.
    pub(super) sort_ty: TokenStream,
    pub(super) asof: bool,
}

/// A join's key as a tuple of values that are never null: a row (or record) whose key has a
/// null meets nothing.
pub(super) fn key_code(g: &mut Gen<'_>, keys: &[&TExpr], sc: &Scope, key_ty: &TokenStream) -> (TokenStream, bool) {
    let mut eg = ExprGen::new(g);
    let mut lets = Vec::new();
    let mut names_ = Vec::new();
    for (k, e) in keys.iter().enumerate() {
        let v = eg.expr(e, sc);
        let n = id(format!("k{k}"));
        if e.ty.is_nullable() {
            lets.push(quote!(let Some(#n) = #v else { return Ok(None) };));
        } else {
            lets.push(quote!(let #n = #v;));
        }
        names_.push(n);
    }
    let fallible = eg.fallible;
    let code = quote! {
        (|| -> Res<Option<#key_ty>> {
            #(#lets)*
            Ok(Some((#(#names_,)*)))
        })()
    };
    (code, fallible)
}

/// A join node's parts, as the plan has them.
pub(super) struct JoinSpec<'a> {
    pub(super) left: bool,
    pub(super) asof: Option<&'a AsOf>,
    pub(super) keys: &'a [(TExpr, TExpr)],
    pub(super) fields: &'a [(String, String)],
}

pub(super) fn lookup_node(g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, node: &Node, spec: &JoinSpec<'_>) -> LookupParts {
    let JoinSpec { left, asof, keys, fields } = *spec;
    let (stream, table) = (node.inputs[0].0, node.inputs[1].0);
    let table_row = cx.plan.nodes[table].row.clone();
    let ni = lit(i);
    let key_ty_name = id(format!("Key{i}"));
    let entry_ty = id(format!("Entry{i}"));
    let key_tys: Vec<TokenStream> = keys.iter().map(|(l, _)| g.rust_type(l.ty.non_null(), l.span)).collect();
    let field_tys: Vec<Type> = fields.iter().map(|(_, f)| table_row.get(f).cloned().unwrap_or(Type::Error)).collect();
    let entry_tys: Vec<TokenStream> = field_tys.iter().map(|t| g.rust_type(t, node.span)).collect();
    let items = quote! {
        /// The key of a join's table.
        pub type #key_ty_name = (#(#key_tys,)*);
        /// The fields a join takes from one record of its table, and the record's number (for
        /// `k >= N`, which counts the records of both sides behind a group).
        #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub struct #entry_ty(#(pub #entry_tys,)* pub u64);
    };
    let tf = id(format!("t{i}"));
    // Where an entry keeps its record's number.
    let id_idx = syn::Index::from(fields.len());
    let stored = if asof.is_some() { quote!((i64, #entry_ty)) } else { quote!(#entry_ty) };
    let table_field = quote!(#tf: rt::join::Map<#key_ty_name, Vec<#stored>>);
    let order = asof.and_then(|a| a.order.as_ref());
    let order_ty = match order {
        Some(o) => g.rust_type(&o.ty, o.span),
        None => quote!(()),
    };
    let sort_ty = if asof.is_some() { quote!((i64, #order_ty)) } else { quote!(()) };
    let cf = id(format!("collect_{i}"));
    let collect_field = quote!(#cf: Vec<(#key_ty_name, #sort_ty, u64, #entry_ty)>);
    let collect_init = quote!(#cf: Vec::new());

    // Input 1: a record of the table, kept with its place in the input.
    let in_table = &cx.row_ty[table];
    let mut tsc = Scope::default();
    let bind_table = destructure(quote!(row), in_table, &table_row.fields, 1, &mut tsc, false);
    let right: Vec<&TExpr> = keys.iter().map(|(_, r)| r).collect();
    let key_tuple = quote!(#key_ty_name);
    let (right_key, _) = key_code(g, &right, &tsc, &key_tuple);
    let values: Vec<TokenStream> = fields
        .iter()
        .map(|(_, f)| match tsc.vars.get(f) {
            Some((local, _)) => quote!(#local.clone()),
            None => quote!(Default::default()),
        })
        .collect();
    // Where the record goes among its key's: by event time and tie order (as-of), else by its
    // place in the input alone.
    let (sort, sort_fallible) = match asof {
        None => (quote!(()), false),
        Some(_) => {
            let mut eg = ExprGen::new(g);
            let v = match order {
                Some(o) => eg.expr(o, &tsc),
                None => quote!(()),
            };
            (quote!((ts, #v)), eg.fallible)
        }
    };
    let sort = if sort_fallible {
        quote!((|| -> Res<#sort_ty> { Ok(#sort) })())
    } else {
        quote!(Ok::<#sort_ty, Reject>(#sort))
    };
    let table_push = id(format!("push_{i}_1"));
    let table_method = quote! {
        fn #table_push(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #in_table) {
            let _ = (ctx, o, ts);
            #bind_table
            match #right_key.and_then(|k| Ok(k.map(|k| (k, #sort)))) {
                Ok(Some((key, Ok(sort)))) => {
                    let seq = self.base.seq;
                    // The record's number for `k >= N`, from what it holds, not where it is: a
                    // table read again (a refresh, a restart) numbers its records the same.
                    let mut e = #entry_ty(#(#values,)* 0);
                    e.#id_idx = rt::prelude::postcard::to_stdvec(&(&key, &sort, &e))
                        .map_or_else(|_| o.id(), |b| rt::record::id_of(&b));
                    self.#cf.push((key, sort, seq, e));
                }
                Ok(Some((_, Err(e)))) => {
                    self.base.stats[#ni].read += 1;
                    self.reject(ctx, o, #ni, e);
                }
                // A record whose key has a null is never met.
                Ok(None) => {}
                Err(e) => {
                    self.base.stats[#ni].read += 1;
                    self.reject(ctx, o, #ni, e);
                }
            }
        }
    };

    // Input 0: a row of the stream meets the records of its key.
    let in_stream = &cx.row_ty[stream];
    let stream_fields = cx.plan.nodes[stream].row.fields.clone();
    let mut sc = Scope::default();
    let bind = destructure(quote!(row), in_stream, &stream_fields, 0, &mut sc, false);
    let left_keys: Vec<&TExpr> = keys.iter().map(|(l, _)| l).collect();
    let (left_key, _) = key_code(g, &left_keys, &sc, &key_tuple);
    let out_ty = &cx.row_ty[i];
    let mut eg = ExprGen::new(g);
    let (mut matched, mut unmatched) = (Vec::new(), Vec::new());
    for (k, (name, ty)) in node.row.fields.iter().enumerate() {
        let (fid, _) = names::field(name, k);
        if let Some(j) = fields.iter().position(|(n, _)| n == name) {
            let idx = syn::Index::from(j);
            let v = eg.coerce(quote!(e.#idx.clone()), &field_tys[j], ty);
            matched.push(quote!(#fid: #v));
            unmatched.push(quote!(#fid: None));
        } else {
            let v = match sc.vars.get(name) {
                Some((local, storage)) => {
                    let (local, storage) = (local.clone(), storage.clone());
                    eg.coerce(quote!(#local.clone()), &storage, ty)
                }
                None => quote!(Default::default()),
            };
            matched.push(quote!(#fid: #v));
            unmatched.push(quote!(#fid: #v));
        }
    }
    let out_matched = emit(cx, i, quote!(row), true);
    let none = if left {
        quote! {
            let row = #out_ty { #(#unmatched),* };
            #out_matched
        }
    } else {
        quote!(self.base.stats[#ni].filtered += 1;)
    };
    // An as-of join keeps, of the key's versions (sorted by time), the latest at or before the
    // row's event time, if it is no older than `within`.
    let pick = match asof {
        None => quote!(),
        Some(a) => {
            let fresh = match a.within {
                Some(w) => {
                    let w = proc_macro2::Literal::i64_suffixed(w);
                    quote!(.filter(|v| ts.saturating_sub(v.0) <= #w))
                }
                None => quote!(),
            };
            quote! {
                let at = found.partition_point(|v| v.0 <= ts);
                let found: &[#stored] = match at.checked_sub(1).and_then(|j| found.get(j)) #fresh {
                    Some(v) => std::slice::from_ref(v),
                    None => &[],
                };
            }
        }
    };
    let each = if asof.is_some() { quote!((_, e)) } else { quote!(e) };
    let probe = id(format!("push_{i}_0"));
    let probe_method = quote! {
        fn #probe(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #in_stream) {
            let _ = (ctx, o, ts);
            self.base.stats[#ni].read += 1;
            #bind
            let key = match #left_key {
                Ok(k) => k,
                Err(e) => {
                    self.reject(ctx, o, #ni, e);
                    return;
                }
            };
            let tables = std::sync::Arc::clone(&self.tables);
            let found: &[#stored] = match &key {
                Some(k) => tables.#tf.get(k).map_or(&[], Vec::as_slice),
                None => &[],
            };
            #pick
            if found.is_empty() {
                #none
                return;
            }
            self.base.stats[#ni].expanded += found.len() as i64 - 1;
            for #each in found {
                let row = #out_ty { #(#matched),* };
                let o = &o.meeting(e.#id_idx);
                #out_matched
            }
        }
    };
    LookupParts {
        items,
        table: JoinTable { node: i, field: table_field, sort_ty, asof: asof.is_some() },
        collect_field,
        collect_init,
        methods: quote!(#table_method #probe_method),
    }
}

/// `Tables` and the `Pipeline` methods that collect, build and hand out the tables of joins
/// `joins` (node index, `Tables` field); nothing without joins.
pub(super) fn tables(joins: &[JoinTable]) -> (TokenStream, TokenStream) {
    if joins.is_empty() {
        return (quote!(), quote!());
    }
    let fields: Vec<&TokenStream> = joins.iter().map(|j| &j.field).collect();
    let tfs: Vec<proc_macro2::Ident> = joins.iter().map(|j| id(format!("t{}", j.node))).collect();
    let cfs: Vec<proc_macro2::Ident> = joins.iter().map(|j| id(format!("collect_{}", j.node))).collect();
    let recs: Vec<TokenStream> = joins
        .iter()
        .map(|j| {
            let (k, e, s) = (id(format!("Key{}", j.node)), id(format!("Entry{}", j.node)), &j.sort_ty);
            quote!(Vec<(#k, #s, u64, #e)>)
        })
        .collect();
    let stores: Vec<TokenStream> = joins.iter().map(|j| if j.asof { quote!((s.0, e)) } else { quote!(e) }).collect();
    let idx: Vec<syn::Index> = (0..joins.len()).map(syn::Index::from).collect();
    let items = quote! {
        /// The table of every join, by key; the records of a key in input order.
        #[derive(Default)]
        pub struct Tables {
            #(#fields,)*
        }
    };
    let methods = quote! {
        fn table_part(&self, w: &mut Worker) -> Result<Vec<u8>, String> {
            let part = (#(std::mem::take(&mut w.st.#cfs),)*);
            rt::prelude::postcard::to_stdvec(&part).map_err(|e| e.to_string())
        }

        fn build_tables(&self, parts: &[Vec<u8>]) -> Result<rt::run::Tables, String> {
            let mut records: (#(#recs,)*) = Default::default();
            for part in parts {
                let got: (#(#recs,)*) =
                    rt::prelude::postcard::from_bytes(part).map_err(|e| format!("a join's table: {e}"))?;
                #(
                    if records.#idx.is_empty() {
                        records.#idx = got.#idx;
                    } else {
                        records.#idx.extend(got.#idx);
                    }
                )*
            }
            let mut t = Tables::default();
            #(
                records.#idx.sort_by(|a, b| (&a.1, a.2).cmp(&(&b.1, b.2)));
                for (k, s, _, e) in std::mem::take(&mut records.#idx) {
                    let _ = &s;
                    t.#tfs.entry(k).or_default().push(#stores);
                }
            )*
            Ok(std::sync::Arc::new(t))
        }

        fn use_tables(&self, w: &mut Worker, tables: &rt::run::Tables) {
            if let Ok(t) = std::sync::Arc::clone(tables).downcast::<Tables>() {
                w.st.tables = t;
            }
        }
    };
    (items, methods)
}
