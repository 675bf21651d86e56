//! Operators to push functions. Each operator `n` gets `push_n_k` for its `k`-th input: a
//! `map` runs its fused stages over local variables (no struct per step; `explode` becomes a
//! loop), an aggregate folds the row into its accumulators, a sink buffers it. A row leaves an
//! operator by a direct call of each consumer's push function, so a chain of operators is one
//! inlined call tree per record.

use std::collections::{BTreeSet, HashMap};

use proc_macro2::{Ident, Literal, Span as PSpan, TokenStream};
use quote::quote;

use super::expr::{ExprGen, Scope};
use super::{memory, names, rows, Gen};
use crate::hir::{ConnectorArg, Mask, TExpr, TExprKind, WindowKind};
use crate::ir::{Node, NodeId, NodeKind, Plan, Stage};
use crate::source::Span;
use crate::types::Type;

fn id(s: String) -> Ident {
    Ident::new(&s, PSpan::call_site())
}

fn lit(n: usize) -> Literal {
    Literal::usize_unsuffixed(n)
}

struct Ctx<'p> {
    plan: &'p Plan,
    /// The Rust type of each node's output row.
    row_ty: Vec<TokenStream>,
    /// (consumer, input slot) per node.
    consumers: Vec<Vec<(usize, usize)>>,
    /// Index of the rejected node in the stats (an extra one when the plan has none).
    rejected: usize,
    /// Nodes downstream of `rejected`: their failures are counted, not re-rejected.
    after_rejected: BTreeSet<usize>,
    /// The default rejected sink's stats index and buffer, when the program routes none.
    default_rejected: Option<usize>,
}

/// The rows, the worker state, the push functions and the `Pipeline` impl.
pub fn pipeline(g: &mut Gen<'_>, plan: &Plan, name: &str) -> TokenStream {
    let n = plan.nodes.len();
    let mut consumers = vec![Vec::new(); n];
    for (i, node) in plan.nodes.iter().enumerate() {
        // A late stream takes only the records its source finds behind the watermark.
        if matches!(node.kind, NodeKind::Late { .. }) {
            continue;
        }
        for (slot, input) in node.inputs.iter().enumerate() {
            consumers[input.0].push((i, slot));
        }
    }
    let rejected_node = plan.nodes.iter().position(|x| matches!(x.kind, NodeKind::Rejected));
    let (rejected, default_rejected) = match rejected_node {
        Some(r) => (r, None),
        None => (n, Some(n + 1)),
    };
    let mut after_rejected = BTreeSet::new();
    if let Some(r) = rejected_node {
        let mut stack = vec![r];
        while let Some(x) = stack.pop() {
            for (c, _) in &consumers[x] {
                if after_rejected.insert(*c) {
                    stack.push(*c);
                }
            }
        }
    }
    let row_ty = (0..n)
        .map(|i| {
            if matches!(plan.nodes[i].kind, NodeKind::Rejected) {
                quote!(Rejected)
            } else {
                let r = id(format!("Row{i}"));
                quote!(#r)
            }
        })
        .collect();
    let cx = Ctx { plan, row_ty, consumers, rejected, after_rejected, default_rejected };

    let mut items = Vec::new();
    let mut state_fields = Vec::new();
    let mut state_init = Vec::new();
    let mut methods = Vec::new();
    let mut flushes = Vec::new();
    let mut finishes = Vec::new();
    let mut node_decls = Vec::new();
    let mut agg_maps: Vec<Ident> = Vec::new();
    let mut agg_tys: Vec<TokenStream> = Vec::new();
    let mut exchange_variants: Vec<TokenStream> = Vec::new();
    let mut exchange_arms: Vec<TokenStream> = Vec::new();
    let mut route_arms: Vec<TokenStream> = Vec::new();
    let mut advance_one: Vec<TokenStream> = Vec::new();
    let mut source_decls = Vec::new();
    let mut sink_decls: Vec<TokenStream> = Vec::new();
    let mut sink_index: HashMap<usize, usize> = HashMap::new();
    let mut parse_json = Vec::new();
    let mut parse_csv = Vec::new();
    let mut parse_parquet = Vec::new();
    let mut recorded = BTreeSet::new();
    let mut first_dir: Option<String> = None;
    // For the in-memory API of a module: source nodes, and sink buffers with their rows.
    let mut mem_sources: Vec<(usize, String, Type, Vec<String>)> = Vec::new();
    let mut mem_sinks: Vec<memory::SinkBufInfo> = Vec::new();

    for (i, node) in plan.nodes.iter().enumerate() {
        let nm = Literal::string(&node.name);
        let kind = match &node.kind {
            NodeKind::Source { .. } | NodeKind::Late { .. } => quote!(NodeKind::Source),
            NodeKind::Map(_) => quote!(NodeKind::Map),
            NodeKind::Aggregate { .. } => quote!(NodeKind::Aggregate),
            NodeKind::Union => quote!(NodeKind::Union),
            NodeKind::Sink { .. } => quote!(NodeKind::Sink),
            NodeKind::Rejected => quote!(NodeKind::Rejected),
        };
        node_decls.push(quote!(NodeDecl { name: #nm, kind: #kind }));
        // Output row structs (sources deserialize theirs).
        match &node.kind {
            NodeKind::Source { .. } | NodeKind::Sink { .. } | NodeKind::Rejected => {}
            _ => {
                let ident = id(format!("Row{i}"));
                items.push(rows::row_struct(g, &ident, &node.row.fields, node.span));
            }
        }
        match &node.kind {
            NodeKind::Source { source, record, read, filter, event_time, .. } => {
                let s = source_node(g, &cx, i, node, source, record, read, filter.as_ref(), event_time.as_deref());
                mem_sources.push((i, source.clone(), record.clone(), read.clone()));
                items.push(s.row);
                methods.push(s.method);
                let k = lit(source_decls.len());
                source_decls.push(s.decl);
                let row = &cx.row_ty[i];
                let m = id(format!("source_{i}"));
                let ni = lit(i);
                parse_json.push(quote! {
                    #k => {
                        st.base.stats[#ni].read += 1;
                        match serde_json::from_slice::<#row>(o.raw) {
                            Ok(r) => st.#m(ctx, o, r),
                            Err(e) => {
                                let why = rt::record::json_reason::<#row>(o.raw, &e);
                                st.reject(ctx, o, #ni, why);
                            }
                        }
                    }
                });
                parse_csv.push(quote! {
                    #k => {
                        st.base.stats[#ni].read += 1;
                        match rec.deserialize::<#row>(Some(header)) {
                            Ok(r) => st.#m(ctx, o, r),
                            Err(e) => {
                                let why = rt::record::csv_reason(&e, header);
                                st.reject(ctx, o, #ni, why);
                            }
                        }
                    }
                });
                let conv = s.from_parquet;
                parse_parquet.push(quote! {
                    #k => {
                        st.base.stats[#ni].read += 1;
                        let parsed: Res<#row> = (|| { #conv })();
                        match parsed {
                            Ok(r) => st.#m(ctx, o, r),
                            Err(why) => st.reject(ctx, o, #ni, why),
                        }
                    }
                });
            }
            NodeKind::Late { .. } => {
                // In batch mode the watermark is at +∞ only after the last record: nothing is late.
            }
            NodeKind::Rejected => {}
            NodeKind::Union => {
                for (slot, input) in node.inputs.iter().enumerate() {
                    methods.push(union_input(g, &cx, i, slot, input.0, node));
                }
            }
            NodeKind::Map(stages) => methods.push(map_node(g, &cx, i, node, stages)),
            NodeKind::Aggregate { keys, window, min_group, fields } => {
                let a = aggregate_node(g, &cx, i, node, keys, window.as_ref(), *min_group, fields);
                agg_maps.push(id(format!("agg_{i}")));
                agg_tys.push(a.ty.clone());
                exchange_variants.push(a.exchange.0.clone());
                exchange_arms.push(a.exchange.1.clone());
                let (variant, k) = (id(format!("A{i}")), lit(agg_maps.len() - 1));
                route_arms.push(quote!(Exchange::#variant(ref key, _, _) => (#k, rt::run::key_hash(key)),));
                advance_one.push(a.finish_call.clone());
                items.push(a.acc);
                state_fields.push(a.field);
                state_init.push(a.init);
                methods.push(a.push);
                methods.push(a.finish);
                finishes.push(a.finish_call);
            }
            NodeKind::Sink { sink, exprs, .. } => {
                let input = node.inputs.first().map_or(0, |x| x.0);
                let in_row = plan.node(NodeId(input)).row.clone();
                if recorded.insert(input) {
                    let ident = cx.row_ty[input].clone();
                    if !matches!(plan.node(NodeId(input)).kind, NodeKind::Rejected) {
                        let ident: Ident = syn::parse2(ident).unwrap_or_else(|_| id(format!("Row{input}")));
                        items.push(rows::record_impl(g, &ident, &in_row.fields, node.span));
                    }
                }
                let next = sink_index.len();
                let k = *sink_index.entry(*sink).or_insert(next);
                if k == next {
                    let (decl, dir) = sink_decl(g, *sink, node.span);
                    if first_dir.is_none() {
                        first_dir = dir;
                    }
                    sink_decls.push(decl);
                }
                let buf = id(format!("sink_{i}"));
                let row = &cx.row_ty[input];
                mem_sinks.push(memory::SinkBufInfo {
                    buf: buf.clone(),
                    row: row.clone(),
                    rejected: matches!(plan.node(NodeId(input)).kind, NodeKind::Rejected),
                    sink: *sink,
                    node: node.name.clone(),
                    stream: plan.node(NodeId(input)).name.clone(),
                });
                let kl = lit(k);
                let s = sink_node(g, &cx, i, node, &in_row.fields, exprs);
                let key = &s.key;
                state_fields.push(quote!(#buf: SinkBuf<#row, #key>));
                match &s.path {
                    Some(path) => {
                        let pf = id(format!("partition_path_{i}"));
                        items.push(quote!(fn #pf(key: &#key) -> String { #path }));
                        state_init.push(quote!(#buf: SinkBuf::partitioned(#kl, #pf)));
                    }
                    None => state_init.push(quote!(#buf: SinkBuf::new(#kl))),
                }
                flushes.push(quote! { let r = self.#buf.flush(&self.base.out); self.base.io(r); });
                methods.push(s.push);
            }
        }
    }

    // Where rejected records go when the program does not say.
    let mut default_reject = quote!();
    if let Some(di) = cx.default_rejected {
        let dir = match &first_dir {
            Some(d) => {
                let parent = std::path::Path::new(d).parent().map(|p| p.display().to_string()).unwrap_or_default();
                if parent.is_empty() {
                    "rejected".to_string()
                } else {
                    format!("{parent}/rejected")
                }
            }
            None => g.path("rejected"),
        };
        let dir = Literal::string(&dir);
        // With a file sink, the runtime places `rejected/` beside it (after `--sink` options).
        let beside = first_dir.is_some();
        let k = lit(sink_decls.len());
        sink_decls.push(quote!(SinkDecl {
            name: "rejected",
            kind: SinkKind::Files { format: SinkFormat::Json },
            location: Some(String::from(#dir)),
            beside_first: #beside,
        }));
        node_decls.push(quote!(NodeDecl { name: "rejected", kind: NodeKind::Rejected }));
        node_decls.push(quote!(NodeDecl { name: "rejected (default sink)", kind: NodeKind::Sink }));
        state_fields.push(quote!(default_rejected: SinkBuf<Rejected>));
        mem_sinks.push(memory::SinkBufInfo {
            buf: id("default_rejected".into()),
            row: quote!(Rejected),
            rejected: true,
            sink: usize::MAX,
            node: "rejected".into(),
            stream: "rejected".into(),
        });
        state_init.push(quote!(default_rejected: SinkBuf::new(#k)));
        flushes.push(quote! { let r = self.default_rejected.flush(&self.base.out); self.base.io(r); });
        let (ri, dl) = (lit(cx.rejected), lit(di));
        default_reject = quote! {
            self.base.stats[#ri].written += 1;
            self.base.stats[#dl].read += 1;
            self.base.stats[#dl].written += 1;
            let r = self.default_rejected.push(&self.base.out, (), row);
            self.base.io(r);
        };
    }
    let reject_emit =
        if cx.default_rejected.is_some() { default_reject } else { emit(&cx, cx.rejected, quote!(row), false) };
    let rj = lit(cx.rejected);
    let names_lit: Vec<Literal> = plan.nodes.iter().map(|x| Literal::string(&x.name)).collect();
    let after: Vec<Literal> = cx.after_rejected.iter().map(|x| lit(*x)).collect();
    let no_after = after.is_empty();
    let guard = if no_after {
        quote!()
    } else {
        quote! {
            if [#(#after),*].contains(&node) {
                return;
            }
        }
    };
    let reject_fn = quote! {
        /// Counts a failure at operator `node` and sends the record to `rejected`.
        fn reject(&mut self, ctx: &Context, o: &Origin<'_>, node: usize, why: Reject) {
            self.base.stats[node].rejected += 1;
            #guard
            let what = NODE_NAMES.get(node).copied().unwrap_or("rejected");
            let row = Rejected::new(o, &Reject(format!("{what}: {why}")));
            self.base.stats[#rj].read += 1;
            let _ = ctx;
            #reject_emit
        }
    };

    for (f, init) in std::mem::take(&mut g.extra_fields) {
        state_fields.push(f);
        state_init.push(init);
    }
    let flush_blocks: Vec<TokenStream> = g
        .block_nodes
        .iter()
        .map(|b| {
            let f = id(format!("score_block_{b}"));
            quote!(self.#f(ctx);)
        })
        .collect();
    let finishes: Vec<TokenStream> = finishes.iter().map(|f| quote!(#f self.flush_blocks(ctx);)).collect();
    let uses_key = g.uses_key;
    let unavailable: Vec<Literal> = g.unavailable.iter().map(|v| Literal::string(v)).collect();
    let n_aggs = Literal::usize_unsuffixed(agg_maps.len());
    let agg_index: Vec<Literal> = (0..agg_maps.len()).map(Literal::usize_unsuffixed).collect();
    let env_vars: Vec<Literal> = g.env_vars.iter().map(|v| Literal::string(v)).collect();
    let pname = Literal::string(name);
    let api = if g.module { memory::api(g, &mem_sources, &mem_sinks) } else { quote!() };
    quote! {
        #api

        const NODE_NAMES: &[&str] = &[#(#names_lit),*];

        #(#items)*

        /// A row on its way to the worker that owns its group: the aggregate's key, its
        /// inputs, and the row's event time.
        #[allow(clippy::large_enum_variant)]
        #[derive(Clone, serde::Serialize, serde::Deserialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub enum Exchange {
            #(#exchange_variants,)*
        }

        pub struct State {
            base: Base,
            /// Rows for the workers that own their groups (the engine routes them by key).
            outbox: Vec<Exchange>,
            #(#state_fields,)*
        }

        pub struct Worker {
            ctx: std::sync::Arc<Context>,
            st: State,
        }

        #[allow(dead_code, reason = "operators fed only by late records never run in batch mode")]
        impl State {
            #reject_fn
            #(#methods)*

            /// The watermark reached `wm`: windows that ended fire, upstream aggregates first
            /// (their rows reach later ones before those see the watermark).
            fn advance(&mut self, ctx: &Context, wm: i64) {
                let _ = wm;
                self.flush_blocks(ctx);
                #(#finishes)*
            }

            /// The input ended: the watermark passes +∞ and every window fires.
            fn finish(&mut self, ctx: &Context) {
                self.advance(ctx, i64::MAX);
            }

            /// Advances aggregate number `k` (in plan order) alone: with several workers, the
            /// rows it emits reach later aggregates' owners before those advance.
            fn advance_one(&mut self, ctx: &Context, k: usize, wm: i64) {
                let _ = (k, wm);
                self.flush_blocks(ctx);
                #(
                    if k == #agg_index {
                        #advance_one
                        self.flush_blocks(ctx);
                    }
                )*
            }

            /// Folds rows other workers sent.
            fn apply(&mut self, ctx: &Context, rows: Vec<Exchange>) {
                let _ = ctx;
                for m in rows {
                    match m {
                        #(#exchange_arms)*
                    }
                }
            }

            /// Groups held by every aggregate.
            fn state_size(&self) -> usize {
                0 #(+ self.#agg_maps.len())*
            }

            /// Every aggregate's groups, for a checkpoint.
            fn save_state(&self) -> Result<Vec<u8>, String> {
                rt::prelude::postcard::to_stdvec(&(#(&self.#agg_maps,)*)).map_err(|e| e.to_string())
            }

            /// Adds the groups of what `save_state` saved whose key hash `keep` accepts.
            #[allow(unused_mut)]
            fn load_state(&mut self, bytes: &[u8], keep: &dyn Fn(u64) -> bool) -> Result<(), String> {
                let _ = keep;
                let (#(mut #agg_maps,)*): (#(#agg_tys,)*) =
                    rt::prelude::postcard::from_bytes(bytes).map_err(|e| e.to_string())?;
                #(
                    #agg_maps.retain_keys(|k| keep(rt::run::key_hash(k)));
                    self.#agg_maps.merge(#agg_maps);
                )*
                Ok(())
            }

            /// Scores every row waiting in a block, upstream operators first.
            fn flush_blocks(&mut self, ctx: &Context) {
                let _ = ctx;
                #(#flush_blocks)*
            }

            fn flush(&mut self) {
                #(#flushes)*
            }
        }

        #[derive(Clone, Copy, Debug)]
        pub struct Program;

        impl Pipeline for Program {
            type Worker = Worker;
            const NAME: &'static str = #pname;

            fn nodes(&self) -> Vec<NodeDecl> {
                vec![#(#node_decls),*]
            }

            fn sources(&self) -> Vec<SourceDecl> {
                vec![#(#source_decls),*]
            }

            fn sinks(&self) -> Vec<SinkDecl> {
                vec![#(#sink_decls),*]
            }

            fn needs_key(&self) -> bool {
                #uses_key
            }

            fn unavailable(&self) -> Vec<&'static str> {
                vec![#(#unavailable),*]
            }

            fn env_vars(&self) -> &'static [&'static str] {
                &[#(#env_vars),*]
            }

            fn worker(&self, base: Base) -> Worker {
                Worker { ctx: base.ctx.clone(), st: State { base, outbox: Vec::new(), #(#state_init,)* } }
            }

            fn base<'w>(&self, w: &'w mut Worker) -> &'w mut Base {
                &mut w.st.base
            }

            fn json(&self, w: &mut Worker, source: usize, o: &Origin<'_>) {
                let Worker { ctx, st } = w;
                match source {
                    #(#parse_json)*
                    _ => {}
                }
            }

            fn csv(&self, w: &mut Worker, source: usize, rec: &csv::ByteRecord, header: &csv::ByteRecord, o: &Origin<'_>) {
                let Worker { ctx, st } = w;
                match source {
                    #(#parse_csv)*
                    _ => {}
                }
            }

            fn parquet(&self, w: &mut Worker, source: usize, row: &parquet::record::Row, o: &Origin<'_>) {
                let Worker { ctx, st } = w;
                match source {
                    #(#parse_parquet)*
                    _ => {}
                }
            }

            fn end_split(&self, w: &mut Worker) {
                let Worker { ctx, st } = w;
                st.flush_blocks(ctx);
            }

            fn finish(&self, w: &mut Worker) {
                let Worker { ctx, st } = w;
                st.finish(ctx);
            }

            fn state_size(&self, w: &Worker) -> usize {
                w.st.state_size()
            }

            type Exchange = Exchange;

            fn aggregates(&self) -> usize {
                #n_aggs
            }

            fn advance_one(&self, w: &mut Worker, k: usize, wm: i64) {
                let Worker { ctx, st } = w;
                st.advance_one(ctx, k, wm);
            }

            fn route(&self, row: &Exchange) -> (usize, u64) {
                match *row {
                    #(#route_arms)*
                }
            }

            fn take_outbox(&self, w: &mut Worker) -> Vec<Exchange> {
                std::mem::take(&mut w.st.outbox)
            }

            fn apply(&self, w: &mut Worker, rows: Vec<Exchange>) {
                let Worker { ctx, st } = w;
                st.apply(ctx, rows);
            }

            fn save_state(&self, w: &mut Worker) -> Result<Vec<u8>, String> {
                let Worker { ctx, st } = w;
                st.flush_blocks(ctx);
                st.save_state()
            }

            fn load_state(&self, w: &mut Worker, bytes: &[u8], keep: &dyn Fn(u64) -> bool) -> Result<(), String> {
                w.st.load_state(bytes, keep)
            }

            fn flush(&self, w: &mut Worker) {
                w.st.flush();
            }
        }
    }
}

/// Sends `row` (a value of node `from`'s row type) to every consumer of `from`.
fn emit(cx: &Ctx<'_>, from: usize, row: TokenStream, count: bool) -> TokenStream {
    let f = lit(from);
    let counted = if count { quote!(self.base.stats[#f].written += 1;) } else { quote!() };
    let cons = &cx.consumers[from];
    if cons.is_empty() {
        return quote! { self.base.stats[#f].written += 1; let _ = #row; };
    }
    let mut calls = Vec::new();
    for (k, (c, slot)) in cons.iter().enumerate() {
        let m = id(format!("push_{c}_{slot}"));
        let v = if k + 1 == cons.len() { row.clone() } else { quote!(#row.clone()) };
        calls.push(quote!(self.#m(ctx, o, ts, #v);));
    }
    if count {
        quote! { #counted #(#calls)* }
    } else {
        // The rejected stream has no event time of its own.
        quote! { self.base.stats[#f].written += 1; let ts = 0i64; #(#calls)* }
    }
}

/// Binds every field of `row` (a value of struct type `ty` with `fields`) to locals of step
/// `step`, by move.
fn destructure(
    row: TokenStream,
    ty: &TokenStream,
    fields: &[(String, Type)],
    step: usize,
    sc: &mut Scope,
    by_ref: bool,
) -> TokenStream {
    let mut binds = Vec::new();
    for (i, (name, t)) in fields.iter().enumerate() {
        let (fid, _) = names::field(name, i);
        let local = names::local(step, name);
        binds.push(quote!(#fid: #local));
        sc.bind(name, quote!(#local), t.clone());
    }
    let r = if by_ref { quote!(&#row) } else { row };
    quote!(let #ty { #(#binds,)* } = #r;)
}

/// `let (a, b) = …;` for values that may fail: a failure rejects the record and leaves the
/// function (or goes on to the next exploded element).
fn bind_values(
    g: &mut Gen<'_>,
    node: usize,
    locals: &[Ident],
    types: &[TokenStream],
    values: Vec<TokenStream>,
    fallible: bool,
    exit: &TokenStream,
) -> TokenStream {
    let n = lit(node);
    let _ = g;
    if !fallible {
        return quote!(let (#(#locals,)*) = (#(#values,)*););
    }
    quote! {
        let (#(#locals,)*) = match (|| -> Res<(#(#types,)*)> { Ok((#(#values,)*)) })() {
            Ok(v) => v,
            Err(e) => {
                self.reject(ctx, o, #n, e);
                #exit
            }
        };
    }
}

struct SourceParts {
    row: TokenStream,
    method: TokenStream,
    decl: TokenStream,
    from_parquet: TokenStream,
}

#[allow(clippy::too_many_arguments, reason = "one call site; the fields of a source node")]
fn source_node(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    node: &Node,
    source: &str,
    record: &Type,
    read: &[String],
    filter: Option<&TExpr>,
    event_time: Option<&str>,
) -> SourceParts {
    let ident = id(format!("Row{i}"));
    let Type::Struct(sid, _) = record else {
        g.unsupported(node.span, "a source whose record is not a struct cannot be compiled yet");
        return SourceParts { row: quote!(), method: quote!(), decl: quote!(), from_parquet: quote!(unreachable!()) };
    };
    let def = g.res.schema.get_struct(*sid);
    let fields: Vec<(usize, &crate::resolve::schema::FieldInfo)> =
        def.fields.iter().enumerate().filter(|(_, f)| read.contains(&f.name)).collect();
    // The source's format decides how nested values are read.
    let src_format = g
        .program
        .sources
        .iter()
        .find(|s| s.name == source)
        .and_then(|s| s.batch.as_ref())
        .and_then(|c| {
            c.args.iter().find_map(|(n, a)| match (n.as_str(), a) {
                ("format", ConnectorArg::Word(w)) => Some(w.clone()),
                _ => None,
            })
        })
        .unwrap_or_else(|| "json".into());
    let row = rows::record_struct(g, &ident, *sid, &fields, node.span, true, src_format == "csv");
    // Parquet rows are read field by field.
    let mut conv = Vec::new();
    let mut nested: Option<String> = None;
    for (idx, f) in &fields {
        let (fid, _) = names::field(&f.name, *idx);
        let name = Literal::string(&f.name);
        let getter = match f.ty.non_null() {
            Type::Bool => "get_bool",
            Type::Int | Type::Duration => "get_i64",
            Type::Timestamp => "get_ts",
            Type::Date => "get_date",
            Type::Double => "get_f64",
            Type::String => "get_str",
            Type::Enum(..) => "get_enum",
            _ => "",
        };
        if getter.is_empty() {
            nested.get_or_insert_with(|| f.name.clone());
            continue;
        }
        let getter = id(getter.into());
        let v = if matches!(f.ty.non_null(), Type::Enum(..)) {
            let e = g.rust_type(f.ty.non_null(), f.span);
            quote!(rt::pq::#getter(row, #name, #e::NAMES)?.map(#e))
        } else {
            quote!(rt::pq::#getter(row, #name)?)
        };
        conv.push(if f.ty.is_nullable() { quote!(#fid: #v) } else { quote!(#fid: rt::pq::required(#v, #name)?) });
    }
    if let (Some(n), "parquet") = (&nested, src_format.as_str()) {
        g.unsupported(node.span, &format!("source `{source}`: the nested field `{n}` cannot be read from Parquet yet"));
    }
    let from_parquet = match nested {
        Some(n) => {
            let msg = Literal::string(&format!("field `{n}`: nested values cannot be read from Parquet yet"));
            quote!({ let _ = row; Err(Reject::new(#msg)) })
        }
        None => quote!(Ok(#ident { #(#conv),* })),
    };

    // The bindings: a batch one (files) and a stream one (follow, stdin); a source needs at
    // least one the runtime can run.
    let src = g.program.sources.iter().find(|s| s.name == source);
    let format_of = |c: &crate::hir::Connector| {
        let fmt = c.args.iter().find_map(|(n, a)| match (n.as_str(), a) {
            ("format", ConnectorArg::Word(w)) => Some(w.as_str()),
            _ => None,
        });
        id(match fmt.unwrap_or("json") {
            "csv" => "Csv",
            "parquet" => "Parquet",
            _ => "Json",
        }
        .into())
    };
    let batch = match src.and_then(|s| s.batch.as_ref()) {
        Some(c) if c.name == "files" => {
            let loc = connector_text(g, c.args.iter().find(|(n, _)| n == "glob").map(|(_, a)| a));
            let fmt = format_of(c);
            Some(quote!(Some(rt::input::BatchDecl { glob: #loc, format: rt::input::Format::#fmt })))
        }
        _ => None,
    };
    let stream = match src.and_then(|s| s.stream.as_ref()) {
        Some(c) if c.name == "follow" => {
            let loc = connector_text(g, c.args.iter().find(|(n, _)| n == "glob").map(|(_, a)| a));
            let fmt = format_of(c);
            Some(quote!(Some(rt::input::StreamDecl {
                kind: rt::input::StreamKind::Follow(#loc),
                format: rt::input::Format::#fmt,
            })))
        }
        Some(c) if c.name == "stdin" => {
            let fmt = format_of(c);
            Some(
                quote!(Some(rt::input::StreamDecl { kind: rt::input::StreamKind::Stdin, format: rt::input::Format::#fmt })),
            )
        }
        _ => None,
    };
    if batch.is_none() && stream.is_none() {
        let span = src.map_or(node.span, |s| s.span);
        let what = match (src.and_then(|s| s.batch.as_ref()), src.and_then(|s| s.stream.as_ref())) {
            (Some(c), _) | (None, Some(c)) => format!("the `{}` connector has no runner yet", c.name),
            (None, None) => format!("source `{source}` has no binding"),
        };
        g.unavailable_connector(span, &format!("source `{source}`: {what}"), &what);
    }
    let batch = batch.unwrap_or_else(|| quote!(None));
    let stream = stream.unwrap_or_else(|| quote!(None));
    let watermark = Literal::i64_suffixed(src.and_then(|s| s.watermark).unwrap_or(0));
    let idle = match src.and_then(|s| s.idle_timeout) {
        Some(t) => {
            let t = Literal::i64_suffixed(t);
            quote!(Some(#t))
        }
        None => quote!(None),
    };
    let decl = quote!(rt::run::SourceDecl {
        name: #source,
        batch: #batch,
        stream: #stream,
        watermark: #watermark,
        idle_timeout: #idle,
    });

    let mut sc = Scope::default();
    for (idx, f) in &fields {
        let (fid, _) = names::field(&f.name, *idx);
        sc.bind(&f.name, quote!(row.#fid), f.ty.clone());
    }
    let ni = lit(i);
    let ts = match event_time.and_then(|t| fields.iter().find(|(_, f)| f.name == t)) {
        Some((idx, f)) => {
            let (fid, _) = names::field(&f.name, *idx);
            if f.ty.is_nullable() {
                let msg = Literal::string(&format!("event time `{}` is null", f.name));
                quote! {
                    let Some(ts) = row.#fid else {
                        self.reject(ctx, o, #ni, Reject::new(#msg));
                        return;
                    };
                }
            } else {
                quote!(let ts: i64 = row.#fid;)
            }
        }
        None => quote!(let ts: i64 = 0;),
    };
    let filter = match filter {
        Some(c) => {
            let mut eg = ExprGen::new(g);
            let v = eg.expr(c, &sc);
            if eg.fallible {
                quote! {
                    match (|| -> Res<bool> { Ok(#v) })() {
                        Ok(true) => {}
                        Ok(false) => { self.base.stats[#ni].filtered += 1; return; }
                        Err(e) => { self.reject(ctx, o, #ni, e); return; }
                    }
                }
            } else {
                quote! {
                    if !(#v) { self.base.stats[#ni].filtered += 1; return; }
                }
            }
        }
        None => quote!(),
    };
    // `late = to NAME`: a record behind the watermark goes to the late stream instead.
    let late = match cx
        .plan
        .nodes
        .iter()
        .position(|n| matches!(&n.kind, NodeKind::Late { source: s } if s == source) && n.inputs.contains(&NodeId(i)))
    {
        Some(li) => {
            let late_ty = &cx.row_ty[li];
            let mut moves = Vec::new();
            for (k, (name, _)) in cx.plan.nodes[li].row.fields.iter().enumerate() {
                let (lid, _) = names::field(name, k);
                match fields.iter().find(|(_, f)| &f.name == name) {
                    Some((idx, f)) => {
                        let (fid, _) = names::field(&f.name, *idx);
                        moves.push(quote!(#lid: row.#fid));
                    }
                    None => g.unsupported(
                        node.span,
                        &format!("internal error in the code generator: the late stream's field `{name}` is not read"),
                    ),
                }
            }
            let (li_l, out) = (lit(li), emit(cx, li, quote!(late), true));
            quote! {
                if ts < self.base.watermark {
                    self.base.stats[#ni].late += 1;
                    self.base.stats[#li_l].read += 1;
                    let late = #late_ty { #(#moves),* };
                    #out
                    return;
                }
            }
        }
        None => quote!(),
    };
    let out = emit(cx, i, quote!(row), true);
    let m = id(format!("source_{i}"));
    // The source's index among the sources the runtime reads (one per source node).
    let k = lit(cx.plan.nodes[..i].iter().filter(|n| matches!(n.kind, NodeKind::Source { .. })).count());
    let method = quote! {
        fn #m(&mut self, ctx: &Context, o: &Origin<'_>, row: #ident) {
            let _ = ctx;
            #ts
            self.base.saw(#k, ts);
            #late
            #filter
            #out
        }
    };
    SourceParts { row, method, decl, from_parquet }
}

/// A connector's text argument as a Rust `String` expression: a literal path resolved against
/// the pipeline's folder, or `env("…")` read at start.
fn connector_text(g: &mut Gen<'_>, arg: Option<&ConnectorArg>) -> TokenStream {
    match arg {
        Some(ConnectorArg::Text(t)) => {
            let l = Literal::string(&g.path(t));
            quote!(String::from(#l))
        }
        Some(ConnectorArg::Env(v)) => {
            if !g.env_vars.contains(v) {
                g.env_vars.push(v.clone());
            }
            let l = Literal::string(v);
            quote!(std::env::var(#l).unwrap_or_default())
        }
        _ => quote!(String::new()),
    }
}

fn sink_decl(g: &mut Gen<'_>, sink: usize, span: Span) -> (TokenStream, Option<String>) {
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
        "stdout" => {
            let format = fmt(word("format"), "json");
            (
                quote!(SinkDecl { name: #name, kind: SinkKind::Stdout { format: #format }, location: None, beside_first: false }),
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

struct SinkParts {
    push: TokenStream,
    /// The partition key type (`()` without `partition_by`).
    key: TokenStream,
    /// The body of `fn(key: &Key) -> String`, the partition's folder path.
    path: Option<TokenStream>,
}

fn sink_node(
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
    let parts: Vec<&TExpr> = exprs.iter().filter(|(n, _)| n == "partition_by").flat_map(|(_, e)| e).collect();
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
    let path = quote!({
        let segs: Vec<String> = vec![#(#segs),*];
        segs.join("/")
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

fn union_input(g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, slot: usize, from: usize, node: &Node) -> TokenStream {
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

/// The current row inside a map: each field's local, its storage type, and the loop depth
/// it was bound at (a local bound outside an `explode` loop is cloned, not moved, inside it).
struct Locals {
    sc: Scope,
    order: Vec<String>,
    depth: HashMap<String, usize>,
    /// The stage where rows wait to be scored in blocks, if this map does that.
    block_at: Option<usize>,
}

/// Rows are scored in blocks of this many: each group of trees then walks a block of rows while
/// its nodes are in cache.
const BLOCK_ROWS: usize = 256;

/// The first run of `score` steps, if its rows can be scored in blocks: no input of the run
/// reads another model's output from the same run, and no `score` follows later.
fn score_block(stages: &[Stage]) -> Option<(usize, usize)> {
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

fn reads_var(e: &TExpr, name: &str) -> bool {
    matches!(&e.kind, TExprKind::Var(n) if n == name) || e.children().into_iter().any(|c| reads_var(c, name))
}

fn map_node(g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, node: &Node, stages: &[Stage]) -> TokenStream {
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
    let body = stage_code(g, cx, i, node, stages, 0, l, 0, &quote!(return));
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

#[allow(clippy::too_many_arguments, reason = "the recursion carries the whole position in the stage list")]
fn stage_code(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    node: &Node,
    stages: &[Stage],
    k: usize,
    mut l: Locals,
    depth: usize,
    exit: &TokenStream,
) -> TokenStream {
    let ni = lit(i);
    let step = k + 1;
    let Some(stage) = stages.get(k) else {
        // The end: build the output row and pass it on.
        let out_ty = &cx.row_ty[i];
        let mut eg = ExprGen::new(g);
        let mut inits = Vec::new();
        for (f, (name, ty)) in node.row.fields.iter().enumerate() {
            let (fid, _) = names::field(name, f);
            let v = match l.sc.vars.get(name) {
                Some((local, storage)) => {
                    let (local, storage) = (local.clone(), storage.clone());
                    let moved =
                        if l.depth.get(name).copied().unwrap_or(0) < depth { quote!(#local.clone()) } else { local };
                    eg.coerce(moved, &storage, ty)
                }
                None => {
                    eg.internal(&TExpr { kind: TExprKind::Error, ty: ty.clone(), span: node.span }, "an output field")
                }
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
        let out = emit(cx, i, quote!(row), true);
        return quote!(#build #out);
    };
    match stage {
        Stage::Select(fields) => {
            // Every field of a `select` reads the input row.
            let mut eg = ExprGen::new(g);
            let mut values = Vec::new();
            let mut locals = Vec::new();
            for (name, e) in fields {
                values.push(eg.expr(e, &l.sc));
                locals.push(names::local(step, name));
            }
            let fallible = eg.fallible;
            let types: Vec<TokenStream> = fields.iter().map(|(_, e)| g.rust_type(&e.ty, e.span)).collect();
            let code = bind_values(g, i, &locals, &types, values, fallible, exit);
            l.sc.vars.clear();
            l.order.clear();
            for ((name, e), local) in fields.iter().zip(&locals) {
                l.sc.bind(name, quote!(#local), e.ty.clone());
                l.order.push(name.clone());
                l.depth.insert(name.clone(), depth);
            }
            let rest = stage_code(g, cx, i, node, stages, k + 1, l, depth, exit);
            quote!(#code #rest)
        }
        Stage::Derive(fields) => {
            // Each derived field sees the ones before it.
            let mut code = Vec::new();
            for (n, (name, e)) in fields.iter().enumerate() {
                let mut eg = ExprGen::new(g);
                let v = eg.expr(e, &l.sc);
                let fallible = eg.fallible;
                let local = names::local(step * 1000 + n, name);
                let ty = g.rust_type(&e.ty, e.span);
                code.push(bind_values(g, i, std::slice::from_ref(&local), &[ty], vec![v], fallible, exit));
                l.sc.bind(name, quote!(#local), e.ty.clone());
                if !l.order.contains(name) {
                    l.order.push(name.clone());
                }
                l.depth.insert(name.clone(), depth);
            }
            let rest = stage_code(g, cx, i, node, stages, k + 1, l, depth, exit);
            quote!(#(#code)* #rest)
        }
        Stage::Filter(c) => {
            let mut eg = ExprGen::new(g);
            let v = eg.expr(c, &l.sc);
            let test = if eg.fallible {
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
            };
            let rest = stage_code(g, cx, i, node, stages, k + 1, l, depth, exit);
            quote!(#test #rest)
        }
        Stage::Explode { list, alias } => {
            let mut eg = ExprGen::new(g);
            // A list field read nowhere after the explode is moved into the loop, not copied.
            let movable = match &list.kind {
                TExprKind::Var(n)
                    if l.depth.get(n) == Some(&depth)
                        && list.ty == l.sc.vars.get(n).map_or(Type::Error, |v| v.1.clone()) =>
                {
                    let mut used = node.row.fields.iter().any(|(f, _)| f == n);
                    for st in &stages[k + 1..] {
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
            let hoisted = hoist(g, &mut l, &stages[k + 1..], alias, step);
            let list_ty = g.rust_type(&Type::List(Box::new(elem.clone())), list.span);
            let items = names::local(step, "\u{0}items");
            let code = bind_values(g, i, std::slice::from_ref(&items), &[list_ty], vec![v], fallible, exit);
            let local = names::local(step, alias);
            l.sc.bind(alias, quote!(#local), elem);
            if !l.order.contains(alias) {
                l.order.push(alias.clone());
            }
            l.depth.insert(alias.clone(), depth + 1);
            let rest = stage_code(g, cx, i, node, stages, k + 1, l, depth + 1, &quote!(continue));
            quote! {
                #code
                #hoisted
                self.base.stats[#ni].expanded += #items.len() as i64 - 1;
                for #local in #items {
                    #rest
                }
            }
        }
        Stage::Protect { masks, .. } => {
            let mut code = Vec::new();
            for (name, mask) in masks {
                let Some((local, storage)) = l.sc.vars.get(name).cloned() else { continue };
                if *mask == Mask::Drop {
                    l.sc.vars.remove(name);
                    l.order.retain(|n| n != name);
                    continue;
                }
                let Some(out_ty) = mask.apply_type(&storage) else { continue };
                let new = names::local(step, name);
                let inner = storage.non_null().clone();
                let x = quote!(x);
                let text = if inner == Type::Int { quote!((#x).to_string()) } else { quote!(#x) };
                let (body, fallible) = match mask {
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
                    Mask::Drop => continue,
                };
                let value = match (mask, storage.is_nullable()) {
                    (Mask::Redact, true) => quote!((#local).as_ref().map(|_| String::from(f::REDACTED))),
                    (Mask::Redact, false) => quote!(String::from(f::REDACTED)),
                    (_, true) => quote!(match #local.clone() { Some(x) => Some(#body), None => None }),
                    (_, false) => quote!({ let x = #local.clone(); #body }),
                };
                let ty = g.rust_type(&out_ty, node.span);
                code.push(bind_values(g, i, std::slice::from_ref(&new), &[ty], vec![value], fallible, exit));
                l.sc.bind(name, quote!(#new), out_ty);
                l.depth.insert(name.clone(), depth);
            }
            let rest = stage_code(g, cx, i, node, stages, k + 1, l, depth, exit);
            quote!(#(#code)* #rest)
        }
        Stage::Score { .. } if l.block_at == Some(k) => block_push(g, cx, i, node, stages, k, l, depth, exit),
        Stage::Score { .. } => {
            // Consecutive `score` steps are fused: each distinct input is computed once (a
            // later model may also read an earlier one's output), and every model scores the
            // same values in one pass over the rows.
            let mut end = k;
            while let Some(Stage::Score { .. }) = stages.get(end) {
                end += 1;
            }
            let mut code = Vec::new();
            let mut computed: Vec<(String, Ident)> = Vec::new();
            for (j, stage) in stages[k..end].iter().enumerate() {
                let Stage::Score { model, inputs, output } = stage else { continue };
                let Some((m, table)) = model_table(g, model, node.span) else { continue };
                // New inputs of this model.
                let mut eg = ExprGen::new(g);
                let mut new_locals = Vec::new();
                let mut new_values = Vec::new();
                let mut slots = Vec::new();
                for feature in &m.features {
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
                    code.push(bind_values(g, i, &new_locals, &types, new_values, fallible, exit));
                }
                let out = names::local(step * 1000 + j, output);
                code.push(quote!(let #out: f64 = #table.predict(&[#(#slots),*]);));
                l.sc.bind(output, quote!(#out), Type::Double);
                if !l.order.contains(output) {
                    l.order.push(output.clone());
                }
                l.depth.insert(output.clone(), depth);
            }
            let rest = stage_code(g, cx, i, node, stages, end, l, depth, exit);
            quote!(#(#code)* #rest)
        }
    }
}

/// Rows reaching a run of `score` steps wait in a block: their fields, their distinct model
/// inputs, their origin and event time are kept in a `Pending` struct, and when the block is
/// full (or the split ends) every model scores the whole block, one tree at a time through all
/// of its rows, and the steps after the run continue row by row.
#[allow(clippy::too_many_arguments, reason = "the recursion's position in the stage list")]
fn block_push(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    node: &Node,
    stages: &[Stage],
    k: usize,
    l: Locals,
    depth: usize,
    exit: &TokenStream,
) -> TokenStream {
    let end = stages[k..].iter().position(|s| !matches!(s, Stage::Score { .. })).map_or(stages.len(), |e| k + e);
    let step = k + 1;
    // The distinct inputs of every model of the run.
    let mut eg = ExprGen::new(g);
    let mut computed: Vec<(String, TokenStream)> = Vec::new();
    let mut per_model: Vec<(String, Ident, Vec<Option<usize>>, String)> = Vec::new();
    for stage in &stages[k..end] {
        let Stage::Score { model, inputs, output } = stage else { continue };
        let Some((m, table)) = model_table(eg.g, model, node.span) else { continue };
        let mut slots = Vec::new();
        for feature in &m.features {
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
    let inputs_code = bind_values(g, i, &x_locals, &x_types, x_values, fallible, exit);

    // The waiting row.
    let pending = id(format!("Pending{i}"));
    let buf = id(format!("pending_{i}"));
    let flush = id(format!("score_block_{i}"));
    let mut fields = Vec::new();
    let mut inits = Vec::new();
    let mut binds = Vec::new();
    let mut post = Locals { sc: Scope::default(), order: Vec::new(), depth: HashMap::new(), block_at: None };
    for (n, name) in l.order.iter().enumerate() {
        let Some((local, storage)) = l.sc.vars.get(name).cloned() else { continue };
        let f = id(format!("f{n}"));
        let ty = g.rust_type(&storage, node.span);
        fields.push(quote!(#f: #ty));
        let moved = if l.depth.get(name).copied().unwrap_or(0) < depth { quote!(#local.clone()) } else { local };
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
    let rest = stage_code(g, cx, i, node, stages, end, post, 1, &quote!(continue));
    let block_fn = quote! {
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
    };
    g.block_fns.insert(i, block_fn);
    let x = &x_locals;
    let block_rows = Literal::usize_unsuffixed(BLOCK_ROWS);
    quote! {
        #inputs_code
        self.#buf.push(#pending { o: o.to_owned(), ts, x: [#(#x),*], #(#inits,)* });
        if self.#buf.len() >= #block_rows {
            self.#flush(ctx);
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
        g.items.push(super::models::model_static(&table, &m));
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

/// Whether a stage reads field `name` of its input row.
fn stage_reads(stage: &Stage, name: &str) -> bool {
    fn reads(e: &TExpr, name: &str) -> bool {
        matches!(&e.kind, TExprKind::Var(n) if n == name) || e.children().into_iter().any(|c| reads(c, name))
    }
    match stage {
        Stage::Select(f) | Stage::Derive(f) => f.iter().any(|(_, e)| reads(e, name)),
        Stage::Filter(e) => reads(e, name),
        Stage::Explode { list, .. } => reads(list, name),
        Stage::Score { inputs, .. } => inputs.iter().any(|(_, e)| reads(e, name)),
        Stage::Protect { masks, .. } => masks.iter().any(|(n, _)| n == name),
    }
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
            if matches!(
                e.kind,
                TExprKind::Var(_)
                    | TExprKind::Int(_)
                    | TExprKind::Float(_)
                    | TExprKind::Str(_)
                    | TExprKind::Bool(_)
                    | TExprKind::Null
                    | TExprKind::Duration(_)
                    | TExprKind::Timestamp(_)
                    | TExprKind::EnumValue(..)
            ) {
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

struct AggParts {
    acc: TokenStream,
    field: TokenStream,
    /// The type of the state field.
    ty: TokenStream,
    init: TokenStream,
    push: TokenStream,
    finish: TokenStream,
    finish_call: TokenStream,
    /// The aggregate's variant of `Exchange` and the arm that applies it.
    exchange: (TokenStream, TokenStream),
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
fn hashable(g: &mut Gen<'_>, ty: &Type, span: Span) -> Option<(TokenStream, Conv, Conv)> {
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

#[allow(clippy::too_many_arguments, reason = "one call site; the fields of an aggregate node")]
fn aggregate_node(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    node: &Node,
    keys: &[(String, TExpr)],
    window: Option<&WindowKind>,
    min_group: Option<i64>,
    fields: &[(String, TExpr)],
) -> AggParts {
    let ni = lit(i);
    let input = node.inputs.first().map_or(0, |x| x.0);
    let in_ty = &cx.row_ty[input];
    let in_fields = cx.plan.nodes[input].row.fields.clone();
    let mut sc = Scope::default();
    let bind = destructure(quote!(row), in_ty, &in_fields, 0, &mut sc, false);

    // Every aggregate call in the output fields, in order.
    let mut calls: Vec<&TExpr> = Vec::new();
    fn collect<'e>(e: &'e TExpr, out: &mut Vec<&'e TExpr>) {
        if matches!(e.kind, TExprKind::Aggregate(..)) {
            out.push(e);
            return;
        }
        for c in e.children() {
            collect(c, out);
        }
    }
    for (_, e) in fields {
        collect(e, &mut calls);
    }

    let mut eg = ExprGen::new(g);
    // Keys.
    let mut key_tys = Vec::new();
    let mut key_vals = Vec::new();
    let mut key_back = Vec::new();
    for (name, e) in keys {
        let v = eg.expr(e, &sc);
        match hashable(eg.g, &e.ty, e.span) {
            Some((t, to, back)) => {
                key_tys.push(t);
                key_vals.push(to(v));
                key_back.push((name.clone(), e.ty.clone(), back));
            }
            None => {
                eg.g.unsupported(e.span, &format!("grouping by a `{}` cannot be compiled yet", e.ty));
            }
        }
    }
    // Accumulators and their per-row inputs.
    let mut acc_fields = Vec::new();
    let mut acc_merge = Vec::new();
    let mut arg_vals = Vec::new();
    let mut arg_tys = Vec::new();
    let mut adds = Vec::new();
    let mut finished = Vec::new();
    let mut agg_scope = Vec::new();
    let mut quantiles: HashMap<usize, f64> = HashMap::new();
    for (k, call) in calls.iter().enumerate() {
        let TExprKind::Aggregate(name, args) = &call.kind else { continue };
        let a = id(format!("a{k}"));
        // `count_distinct(hmac(x))` counts the distinct `x`: a keyed hash (or `sha256`, or a
        // token) maps distinct values to distinct values, barring a collision as unlikely as a
        // broken pseudonym, so the hashes need not be computed.
        let mut arg = args.first();
        if *name == "count_distinct" {
            while let Some(TExprKind::Call(crate::hir::Callee::Builtin("hmac" | "sha256" | "tokenize"), inner)) =
                arg.map(|a| &a.kind)
            {
                if inner.len() != 1 {
                    break;
                }
                arg = inner.first();
            }
        }
        let arg_ty = arg.map(|a| a.ty.clone()).unwrap_or(Type::Bool);
        let inner = arg_ty.non_null().clone();
        let v = arg.map(|x| eg.expr(x, &sc));
        let as_opt =
            |eg: &mut ExprGen<'_, '_>, v: TokenStream, to: &Type| eg.coerce(v, &arg_ty, &to.clone().nullable());
        let (acc_ty, input, input_ty, out_ty): (TokenStream, TokenStream, TokenStream, Type) = match *name {
            "count" => {
                let present = match (&v, arg_ty.is_nullable()) {
                    (Some(v), true) => quote!((#v).is_some()),
                    (Some(v), false) => quote!({ let _ = #v; true }),
                    (None, _) => quote!(true),
                };
                (quote!(agg::Count), present, quote!(bool), Type::Int)
            }
            "count_distinct" => match hashable(eg.g, &inner, call.span) {
                Some((t, to, _)) => {
                    let opt = as_opt(&mut eg, v.unwrap_or_default(), &inner);
                    let conv = to(quote!(x));
                    (quote!(agg::CountDistinct<#t>), quote!((#opt).map(|x| #conv)), quote!(Option<#t>), Type::Int)
                }
                None => {
                    eg.g.unsupported(call.span, &format!("`count_distinct` of a `{inner}` cannot be compiled yet"));
                    continue;
                }
            },
            "sum" if call.ty.non_null() == &Type::Int => {
                let opt = as_opt(&mut eg, v.unwrap_or_default(), &Type::Int);
                (quote!(agg::SumInt), opt, quote!(Option<i64>), Type::Int)
            }
            "sum" => {
                let opt = as_opt(&mut eg, v.unwrap_or_default(), &Type::Double);
                (quote!(agg::SumDouble), opt, quote!(Option<f64>), Type::Double)
            }
            "avg" => {
                let opt = as_opt(&mut eg, v.unwrap_or_default(), &Type::Double);
                (quote!(agg::Avg), opt, quote!(Option<f64>), Type::Double.nullable())
            }
            "min" | "max" | "first" | "last" => {
                let t = eg.g.rust_type(&inner, call.span);
                let opt = as_opt(&mut eg, v.unwrap_or_default(), &inner);
                let which = id(match *name {
                    "min" => "Min",
                    "max" => "Max",
                    "first" => "First",
                    _ => "Last",
                }
                .into());
                if matches!(*name, "first" | "last") {
                    (
                        quote!(agg::#which<#t>),
                        quote!((ts, seq, #opt)),
                        quote!((i64, u64, Option<#t>)),
                        inner.clone().nullable(),
                    )
                } else {
                    (quote!(agg::#which<#t>), opt, quote!(Option<#t>), inner.clone().nullable())
                }
            }
            "approx_quantile" => {
                let q = match args.get(1).map(|q| &q.kind) {
                    Some(TExprKind::Float(q)) => Some(*q),
                    Some(TExprKind::Int(q)) => Some(*q as f64),
                    _ => None,
                };
                let Some(q) = q.filter(|q| (0.0..=1.0).contains(q)) else {
                    eg.g.unsupported(
                        call.span,
                        "`approx_quantile` with a quantile that is not a number between 0 and 1 written in the program",
                    );
                    continue;
                };
                quantiles.insert(k, q);
                let opt = as_opt(&mut eg, v.unwrap_or_default(), &Type::Double);
                (quote!(agg::Quantile), opt, quote!(Option<f64>), Type::Double.nullable())
            }
            other => {
                eg.g.unsupported(call.span, &format!("the aggregate `{other}` cannot be compiled yet"));
                continue;
            }
        };
        acc_fields.push(quote!(#a: #acc_ty));
        acc_merge.push(quote!(self.#a.merge(o.#a);));
        let idx = Literal::usize_unsuffixed(arg_vals.len());
        arg_vals.push(input);
        arg_tys.push(input_ty);
        adds.push((a.clone(), idx));
        let fin = id(format!("agg{k}"));
        match quantiles.get(&k) {
            Some(q) => {
                let q = super::f64_lit(*q);
                finished.push(quote!(let #fin = acc.#a.quantile(#q)?;));
            }
            None => finished.push(quote!(let #fin = acc.#a.finish()?;)),
        }
        agg_scope.push((*call as *const TExpr, fin, out_ty));
    }
    let fallible = eg.fallible;

    let acc = id(format!("Acc{i}"));
    let acc_def = quote! {
        #[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub struct #acc { rows: u64, #(#acc_fields,)* }
        impl rt::window::Merge for #acc {
            fn merge_from(&mut self, o: #acc) {
                self.rows += o.rows;
                #(#acc_merge)*
            }
        }
    };
    let map = id(format!("agg_{i}"));
    let key_ty = quote!((#(#key_tys,)*));
    let allowed = Literal::i64_suffixed(allowed_lateness(g, cx.plan, i));
    let session = matches!(window, Some(WindowKind::Session { .. }));
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

    // Window assignment.
    let starts = match window {
        None | Some(WindowKind::Session { .. }) => quote!(std::iter::once(0i64)),
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
    // Window arithmetic near the ends of the i64 range would overflow: such an event time is
    // rejected, not wrapped.
    let guard = match window {
        Some(WindowKind::Tumbling { size, offset }) => Some(size.saturating_add(*offset)),
        Some(WindowKind::Sliding { size, every, offset }) => Some(size.saturating_add(*every).saturating_add(*offset)),
        Some(WindowKind::Session { gap }) => Some(*gap),
        None => None,
    };
    let guard = match guard {
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
    };
    let add_calls: Vec<TokenStream> = adds.iter().map(|(a, idx)| quote!(acc.#a.add(args.#idx.clone());)).collect();
    // A window whose lateness has passed takes no more records: they are counted as late.
    let single = matches!(window, None | Some(WindowKind::Tumbling { .. }));
    let fold = if session || single {
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
    };
    let m = id(format!("push_{i}_0"));
    let variant = id(format!("A{i}"));
    let fold_fn = id(format!("fold_{i}"));
    let eval = quote!(((#(#key_vals,)*), (#(#arg_vals,)*)));
    let eval = if fallible {
        quote! {
            let (key, args) = match (|| -> Res<((#(#key_tys,)*), (#(#arg_tys,)*))> { Ok(#eval) })() {
                Ok(v) => v,
                Err(e) => { self.reject(ctx, o, #ni, e); return; }
            };
        }
    } else {
        quote!(let (key, args) = #eval;)
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
                self.outbox.push(Exchange::#variant(key, args, ts));
                return;
            }
            self.#fold_fn(key, args, ts);
        }

        /// Folds one row's key and aggregate inputs into its groups.
        #[allow(clippy::clone_on_copy, unused_variables)]
        fn #fold_fn(&mut self, key: #key_ty, args: (#(#arg_tys,)*), ts: i64) {
            #fold
        }
    };
    let exchange = (
        quote!(#variant(#key_ty, (#(#arg_tys,)*), i64)),
        quote!(Exchange::#variant(key, args, ts) => self.#fold_fn(key, args, ts),),
    );

    // Finishing: the watermark passed every window's end.
    let mut out_sc = Scope { aggregates: agg_scope, ..Scope::default() };
    let mut key_binds = Vec::new();
    let mut key_pats = Vec::new();
    for (k, (name, ty, back)) in key_back.iter().enumerate() {
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
        let v = match fields.iter().find(|(n, _)| n == name) {
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
    let k_check = match min_group {
        Some(k) => {
            let k = Literal::u64_suffixed(u64::try_from(k).unwrap_or(0));
            quote! {
                if acc.rows < #k {
                    self.base.stats[#ni].filtered += acc.rows;
                    continue;
                }
            }
        }
        None => quote!(),
    };
    let ts_out = if window.is_some() { quote!(window_end - 1) } else { quote!(0i64) };
    let out = emit(cx, i, quote!(row), true);
    let fin = id(format!("finish_{i}"));
    let stream = Literal::string(&node.name);
    let finish = quote! {
        /// The watermark reached `wm`: every group whose window ended emits its row.
        #[allow(unused_variables)]
        fn #fin(&mut self, ctx: &Context, wm: i64) {
            let groups = self.#map.fire(wm);
            let origin = Origin::group(#stream);
            let o = &origin;
            for rt::window::Fired { key: (#(#key_pats,)*), start: window_start, end: window_end, acc } in groups {
                #k_check
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
    let finish_call = quote!(self.#fin(ctx, wm););
    let field = quote!(#map: #state_ty);
    AggParts { acc: acc_def, field, ty: state_ty, init, push, finish, finish_call, exchange }
}
