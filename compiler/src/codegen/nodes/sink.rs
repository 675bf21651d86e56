//! Sink operators: the sink declarations for the runtime, and the functions that buffer each
//! row a sink receives (under its partition's folder with `partition_by`).

use proc_macro2::{Literal, TokenStream};
use quote::quote;

use super::aggregate::hashable;
use super::source::{connector_text, connector_value};
use super::{destructure, id, lit, Ctx};
use crate::codegen::expr::{ExprGen, Scope};
use crate::codegen::{rows, Gen};
use crate::hir::{ConnectorArg, TExpr, TExprKind};
use crate::ir::Node;
use crate::source::Span;
use crate::types::Type;

/// A sink's `SinkDecl`, and its folder when it writes files to a literal path.
pub(super) fn sink_decl(
    g: &mut Gen<'_>,
    sink: usize,
    row: &TokenStream,
    fields: &[(String, Type)],
    span: Span,
) -> (TokenStream, Option<String>) {
    let s = &g.program.sinks[sink];
    let name = Literal::string(&s.name);
    let c = &s.connector;
    let word = |n: &str| {
        c.args.iter().find_map(|(k, a)| match (k.as_str(), a) {
            (k2, ConnectorArg::Word(w)) if k2 == n => Some(w.clone()),
            _ => None,
        })
    };
    let fmt = |w: Option<String>, default: &str| match w.as_deref().unwrap_or(default) {
        "csv" => quote!(SinkFormat::Csv),
        "parquet" => quote!(SinkFormat::Parquet),
        "arrow" => quote!(SinkFormat::Arrow),
        _ => quote!(SinkFormat::Json),
    };
    let dir_arg = c.args.iter().find(|(n, _)| n == "dir").map(|(_, a)| a.clone());
    let dir_text = match &dir_arg {
        Some(ConnectorArg::Text(t)) => Some(g.path(t)),
        _ => None,
    };
    match c.name.as_str() {
        "files" | "parquet" => {
            let format = if c.name == "parquet" { quote!(SinkFormat::Parquet) } else { fmt(word("format"), "json") };
            let loc = connector_text(g, dir_arg.as_ref());
            (
                quote!(SinkDecl { name: #name, kind: SinkKind::Files { format: #format }, location: Some(#loc), beside_first: false }),
                dir_text,
            )
        }
        "s3" if !g.module => {
            let path = connector_value(g, c.args.iter().find(|(n, _)| n == "path").map(|(_, a)| a));
            let format = fmt(word("format"), "json");
            (
                quote!(SinkDecl {
                    name: #name,
                    kind: SinkKind::Files { format: #format },
                    location: Some(rt::connectors::s3_url(&#path)),
                    beside_first: false,
                }),
                None,
            )
        }
        "stdout" => {
            let format = fmt(word("format"), "json");
            (
                quote!(SinkDecl { name: #name, kind: SinkKind::Stdout { format: #format }, location: None, beside_first: false }),
                None,
            )
        }
        "kafka" if !g.module => {
            let arg = |n: &str| c.args.iter().find(|(k, _)| k == n).map(|(_, a)| a.clone());
            let topic = connector_value(g, arg("topic").as_ref());
            let brokers = connector_value(g, arg("brokers").as_ref());
            let keyed = c.args.iter().any(|(n, _)| n == "key");
            (
                quote!(SinkDecl {
                    name: #name,
                    kind: SinkKind::Kafka { topic: #topic, brokers: #brokers, keyed: #keyed },
                    location: None,
                    beside_first: false,
                }),
                None,
            )
        }
        "postgres" if !g.module => {
            let arg = |n: &str| c.args.iter().find(|(k, _)| k == n).map(|(_, a)| a.clone());
            let url = connector_value(g, arg("url").as_ref());
            let table = connector_value(g, arg("table").as_ref());
            let mode = match word("mode").as_deref() {
                Some("replace") => quote!(PgMode::Replace),
                Some("upsert") => quote!(PgMode::Upsert),
                Some(_) => quote!(PgMode::Append),
                // With a key the rows are upserted by it; without one they are appended.
                None if c.args.iter().any(|(n, _)| n == "key") => quote!(PgMode::Upsert),
                None => quote!(PgMode::Append),
            };
            let key: Vec<Literal> = named_fields(s, "key").iter().map(|k| Literal::string(k)).collect();
            (
                quote!(SinkDecl {
                    name: #name,
                    kind: SinkKind::Postgres {
                        url: #url,
                        table: #table,
                        key: vec![#(String::from(#key)),*],
                        mode: #mode,
                        schema: <#row as Record>::PARQUET_SCHEMA,
                    },
                    location: None,
                    beside_first: false,
                }),
                None,
            )
        }
        "redis" if !g.module => {
            let arg = |n: &str| c.args.iter().find(|(k, _)| k == n).map(|(_, a)| a.clone());
            let url = connector_value(g, arg("url").as_ref());
            let prefix = match arg("prefix") {
                Some(a) => connector_value(g, Some(&a)),
                None => quote!(String::new()),
            };
            let key: Vec<Literal> = named_fields(s, "key").iter().map(|k| Literal::string(k)).collect();
            // The version orders a key's rows: the field named, else the window's end.
            let version = named_fields(s, "version")
                .into_iter()
                .next()
                .or_else(|| fields.iter().any(|(n, _)| n == "window_end").then(|| "window_end".to_string()));
            let version = match version {
                Some(v) => {
                    let v = Literal::string(&v);
                    quote!(Some(String::from(#v)))
                }
                None => quote!(None),
            };
            let ttl = match arg("ttl") {
                Some(ConnectorArg::Int(ms)) => Literal::i64_suffixed(ms),
                _ => Literal::i64_suffixed(0),
            };
            (
                quote!(SinkDecl {
                    name: #name,
                    kind: SinkKind::Redis {
                        url: #url,
                        prefix: #prefix,
                        key: vec![#(String::from(#key)),*],
                        version: #version,
                        ttl_ms: #ttl,
                    },
                    location: None,
                    beside_first: false,
                }),
                None,
            )
        }
        other => {
            let what = format!("the `{other}` sink has no batch writer yet");
            let at = if c.span == Span::default() { span } else { c.span };
            g.unavailable_connector(at, &format!("sink `{}`: {what}", s.name), &what);
            (
                quote!(SinkDecl { name: #name, kind: SinkKind::Stdout { format: SinkFormat::Json }, location: None, beside_first: false }),
                None,
            )
        }
    }
}

/// The fields a PostgreSQL or Redis sink's `key` (or `version`) names (the checker refuses
/// anything but names).
fn named_fields(s: &crate::hir::Sink, param: &str) -> Vec<String> {
    s.connector
        .args
        .iter()
        .filter(|(n, _)| n == param)
        .filter_map(|(_, a)| match a {
            ConnectorArg::Exprs(items) => Some(items),
            _ => None,
        })
        .flatten()
        .filter_map(|e| match &e.kind {
            crate::syntax::pipe_ast::ExprKind::Name(n) => Some(n.name.clone()),
            _ => None,
        })
        .collect()
}

pub(super) struct SinkParts {
    pub(super) push: TokenStream,
    /// The partition key type (`()` without `partition_by`).
    pub(super) key: TokenStream,
    /// The body of `fn(key: &Key) -> String`, the partition's folder path.
    pub(super) path: Option<TokenStream>,
}

/// A sink node's push function, and its partition key type and folder path.
pub(super) fn sink_node(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    node: &Node,
    fields: &[(String, Type)],
    exprs: &[(String, Vec<TExpr>)],
) -> SinkParts {
    let input = node.inputs.first().map_or(0, |x| x.0);
    let row_ty = &cx.row_ty[input];
    let ni = lit(i);
    let buf = id(format!("sink_{i}"));
    // A Kafka sink's `key` groups rows the way `partition_by` does; its text is the message key.
    // (A PostgreSQL sink's `key` names columns: it groups nothing.)
    let kafka = match &node.kind {
        crate::ir::NodeKind::Sink { sink, .. } => g.program.sinks[*sink].connector.name == "kafka",
        _ => false,
    };
    let keyed = kafka && exprs.iter().any(|(n, _)| n == "key");
    let parts: Vec<&TExpr> =
        exprs.iter().filter(|(n, _)| n == "partition_by" || (kafka && n == "key")).flat_map(|(_, e)| e).collect();
    let m = id(format!("push_{i}_0"));
    if parts.is_empty() {
        let push = quote! {
            fn #m(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #row_ty) {
                let _ = (ctx, o, ts);
                self.base.stats[#ni].read += 1;
                let r = self.#buf.push(&self.base.out, (), row);
                self.base.io(r);
                self.base.stats[#ni].written += 1;
            }
        };
        return SinkParts { push, key: quote!(()), path: None };
    }
    let mut sc = Scope::default();
    let bind = destructure(quote!(row), row_ty, fields, 0, &mut sc, true);
    let names = partition_names(&parts);
    let mut eg = ExprGen::new(g);
    let mut key_tys = Vec::new();
    let mut key_vals = Vec::new();
    let mut segs = Vec::new();
    for (k, (e, name)) in parts.iter().zip(&names).enumerate() {
        let v = eg.expr(e, &sc);
        let Some((t, to, back)) = hashable(eg.g, &e.ty, e.span) else {
            eg.g.unsupported(e.span, &format!("partitioning by a `{}` cannot be compiled yet", e.ty));
            continue;
        };
        key_tys.push(t);
        key_vals.push(to(v));
        let idx = Literal::usize_unsuffixed(k);
        let value = back(quote!(key.#idx.clone()));
        let nm = Literal::string(name);
        let cell = rows::cell_of(quote!(x), e.ty.non_null());
        if keyed {
            segs.push(if e.ty.is_nullable() {
                quote!({ let v = #value; match &v { Some(x) => sink::key_segment(Some(&#cell)), None => sink::key_segment(None) } })
            } else {
                quote!({ let v = #value; let x = &v; sink::key_segment(Some(&#cell)) })
            });
            continue;
        }
        segs.push(if e.ty.is_nullable() {
            quote!({ let v = #value; match &v { Some(x) => sink::partition_segment(#nm, Some(&#cell)), None => sink::partition_segment(#nm, None) } })
        } else {
            quote!({ let v = #value; let x = &v; sink::partition_segment(#nm, Some(&#cell)) })
        });
    }
    let fallible = eg.fallible;
    let key = quote!((#(#key_tys,)*));
    let value = quote!((#(#key_vals,)*));
    let compute = if fallible {
        quote! {
            let key = match (|| -> Res<#key> { Ok(#value) })() {
                Ok(k) => k,
                Err(e) => { self.reject(ctx, o, #ni, e); return; }
            };
        }
    } else {
        quote!(let key = #value;)
    };
    let push = quote! {
        fn #m(&mut self, ctx: &Context, o: &Origin<'_>, ts: i64, row: #row_ty) {
            let _ = (ctx, o, ts);
            self.base.stats[#ni].read += 1;
            let key = {
                #bind
                #compute
                key
            };
            let r = self.#buf.push(&self.base.out, key, row);
            self.base.io(r);
            self.base.stats[#ni].written += 1;
        }
    };
    let sep = if keyed { "|" } else { "/" };
    let path = quote!({
        let segs: Vec<String> = vec![#(#segs),*];
        segs.join(#sep)
    });
    SinkParts { push, key, path: Some(path) }
}

/// Folder names for `partition_by` expressions: a field by its name, `f(x)` by `f` (or `f_x`
/// when two would clash).
pub fn partition_names(parts: &[&TExpr]) -> Vec<String> {
    let base: Vec<(String, Option<String>)> = parts
        .iter()
        .enumerate()
        .map(|(i, e)| match &e.kind {
            TExprKind::Var(n) => (n.clone(), None),
            TExprKind::Field(_, f) => (f.clone(), None),
            TExprKind::Call(crate::hir::Callee::Builtin(f), args) => {
                let arg = args.first().and_then(|a| match &a.kind {
                    TExprKind::Var(n) => Some(n.clone()),
                    _ => None,
                });
                (f.to_string(), arg)
            }
            _ => (format!("p{i}"), None),
        })
        .collect();
    base.iter()
        .enumerate()
        .map(|(i, (n, arg))| {
            let clash = base.iter().enumerate().any(|(j, (m, _))| j != i && m == n);
            match (clash, arg) {
                (true, Some(a)) => format!("{n}_{a}"),
                (true, None) => format!("{n}{i}"),
                _ => n.clone(),
            }
        })
        .collect()
}
