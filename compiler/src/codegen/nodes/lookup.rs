//! Lookup joins: the table a join reads (its records by key, built from every worker's part
//! before any row of the stream) and the two push functions of the join operator: input 1
//! collects the table's records, input 0 meets each row with the records of its key.

use proc_macro2::TokenStream;
use quote::quote;

use super::{destructure, emit, id, lit, Ctx};
use crate::codegen::expr::{ExprGen, Scope};
use crate::codegen::{names, Gen};
use crate::hir::TExpr;
use crate::ir::Node;
use crate::types::Type;

/// What join `i` adds to the generated crate.
pub(super) struct LookupParts {
    /// The key and entry types.
    pub(super) items: TokenStream,
    /// `Tables`' field for this join, and its type.
    pub(super) table_field: TokenStream,
    /// The worker state's buffer of records read for the table.
    pub(super) collect_field: TokenStream,
    pub(super) collect_init: TokenStream,
    pub(super) methods: TokenStream,
}

/// A join's key as a tuple of values that are never null: a row (or record) whose key has a
/// null meets nothing.
fn key_code(g: &mut Gen<'_>, keys: &[&TExpr], sc: &Scope, key_ty: &TokenStream) -> (TokenStream, bool) {
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

pub(super) fn lookup_node(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    node: &Node,
    left: bool,
    keys: &[(TExpr, TExpr)],
    fields: &[(String, String)],
) -> LookupParts {
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
        /// The fields a join takes from one record of its table.
        #[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub struct #entry_ty(#(pub #entry_tys),*);
    };
    let tf = id(format!("t{i}"));
    let table_field = quote!(#tf: std::collections::HashMap<#key_ty_name, Vec<#entry_ty>>);
    let cf = id(format!("collect_{i}"));
    let collect_field = quote!(#cf: Vec<(#key_ty_name, u64, #entry_ty)>);
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
    let table_push = id(format!("push_{i}_1"));
    let table_method = quote! {
        fn #table_push(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #in_table) {
            let _ = (ctx, o, ts);
            #bind_table
            match #right_key {
                Ok(Some(key)) => {
                    let seq = self.base.seq;
                    self.#cf.push((key, seq, #entry_ty(#(#values),*)));
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
            let found: &[#entry_ty] = match &key {
                Some(k) => tables.#tf.get(k).map_or(&[], Vec::as_slice),
                None => &[],
            };
            if found.is_empty() {
                #none
                return;
            }
            self.base.stats[#ni].expanded += found.len() as i64 - 1;
            for e in found {
                let row = #out_ty { #(#matched),* };
                #out_matched
            }
        }
    };
    LookupParts { items, table_field, collect_field, collect_init, methods: quote!(#table_method #probe_method) }
}

/// `Tables` and the `Pipeline` methods that collect, build and hand out the tables of joins
/// `joins` (node index, `Tables` field); nothing without joins.
pub(super) fn tables(joins: &[(usize, TokenStream)]) -> (TokenStream, TokenStream) {
    if joins.is_empty() {
        return (quote!(), quote!());
    }
    let fields: Vec<&TokenStream> = joins.iter().map(|(_, f)| f).collect();
    let tfs: Vec<proc_macro2::Ident> = joins.iter().map(|(i, _)| id(format!("t{i}"))).collect();
    let cfs: Vec<proc_macro2::Ident> = joins.iter().map(|(i, _)| id(format!("collect_{i}"))).collect();
    let recs: Vec<TokenStream> = joins
        .iter()
        .map(|(i, _)| {
            let (k, e) = (id(format!("Key{i}")), id(format!("Entry{i}")));
            quote!(Vec<(#k, u64, #e)>)
        })
        .collect();
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
                #(records.#idx.extend(got.#idx);)*
            }
            let mut t = Tables::default();
            #(
                records.#idx.sort_by_key(|r| r.1);
                for (k, _, e) in std::mem::take(&mut records.#idx) {
                    t.#tfs.entry(k).or_default().push(e);
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
