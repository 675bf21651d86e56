//! Operators to push functions. Each operator `n` gets `push_n_k` for its `k`-th input: a
//! `map` runs its fused stages over local variables (no struct per step; `explode` becomes a
//! loop), an aggregate folds the row into its accumulators, a sink buffers it. A row leaves an
//! operator by a direct call of each consumer's push function, so a chain of operators is one
//! inlined call tree per record.

mod aggregate;
mod interval;
mod lookup;
mod map;
mod score;
mod sink;
mod source;
mod union;

use std::collections::{BTreeSet, HashMap};

use proc_macro2::{Ident, Literal, Span as PSpan, TokenStream};
use quote::quote;

use super::expr::Scope;
use super::{memory, names, rows, Gen};
use crate::ir::{Node, NodeId, NodeKind, Plan};
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

impl<'p> Ctx<'p> {
    /// Who consumes each node, where rejected records go, and each node's row type.
    fn new(plan: &'p Plan) -> Ctx<'p> {
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
        Ctx { plan, row_ty, consumers, rejected, after_rejected, default_rejected }
    }
}

/// What the operators contribute, gathered node by node: items, the worker state's fields,
/// the methods of `State`, and the declarations and parsers of the `Pipeline` impl.
#[derive(Default)]
struct Parts {
    items: Vec<TokenStream>,
    state_fields: Vec<TokenStream>,
    state_init: Vec<TokenStream>,
    methods: Vec<TokenStream>,
    flushes: Vec<TokenStream>,
    finishes: Vec<TokenStream>,
    node_decls: Vec<TokenStream>,
    agg_maps: Vec<Ident>,
    agg_tys: Vec<TokenStream>,
    exchange_variants: Vec<TokenStream>,
    exchange_arms: Vec<TokenStream>,
    route_arms: Vec<TokenStream>,
    /// The same patterns, giving the aggregate alone (no hash).
    aggregate_arms: Vec<TokenStream>,
    advance_one: Vec<TokenStream>,
    source_decls: Vec<TokenStream>,
    sink_decls: Vec<TokenStream>,
    sink_index: HashMap<usize, usize>,
    parse_json: Vec<TokenStream>,
    parse_csv: Vec<TokenStream>,
    parse_parquet: Vec<TokenStream>,
    /// Arms of `fn arrow` and `fn arrow_schema`, for sources that read Arrow files.
    parse_arrow: Vec<TokenStream>,
    arrow_schemas: Vec<TokenStream>,
    recorded: BTreeSet<usize>,
    first_dir: Option<String>,
    // For the in-memory API of a module: source nodes, and sink buffers with their rows.
    mem_sources: Vec<(usize, String, Type, Vec<String>)>,
    mem_sinks: Vec<memory::SinkBufInfo>,
    /// Per join: how `Tables` holds its table.
    joins: Vec<lookup::JoinTable>,
    /// The checks of `expect` steps: their text and whether they block.
    checks: Vec<TokenStream>,
}

/// The rows, the worker state, the push functions and the `Pipeline` impl.
pub fn pipeline(g: &mut Gen<'_>, plan: &Plan, name: &str) -> TokenStream {
    let cx = Ctx::new(plan);
    let mut p = Parts::default();
    for (i, node) in plan.nodes.iter().enumerate() {
        p.add_node(g, &cx, i, node);
    }
    let default_reject = p.add_default_rejected(g, &cx);
    let reject_fn = reject_fn(&cx, default_reject);
    for (f, init) in std::mem::take(&mut g.extra_fields) {
        p.state_fields.push(f);
        p.state_init.push(init);
    }
    let (tables, table_methods) = lookup::tables(&p.joins);
    if !p.joins.is_empty() {
        p.items.push(tables);
        p.state_fields.push(quote!(tables: std::sync::Arc<Tables>));
        p.state_init.push(quote!(tables: std::sync::Arc::default()));
    }
    let state_impl = state_impl(g, &p, &reject_fn);
    let pipeline_impl = pipeline_impl(g, &p, name, &table_methods);
    let tables: Vec<String> = plan
        .nodes
        .iter()
        .filter_map(|n| match &n.kind {
            NodeKind::Source { source, table: true, .. } => Some(source.clone()),
            _ => None,
        })
        .collect();
    let api = if g.module { memory::api(g, &p.mem_sources, &tables, &p.mem_sinks) } else { quote!() };
    let names_lit: Vec<Literal> = plan.nodes.iter().map(|x| Literal::string(&x.name)).collect();
    let Parts { items, exchange_variants, state_fields, .. } = &p;
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

        #state_impl

        #pipeline_impl
    }
}

impl Parts {
    /// Node `i`'s declaration, its output row struct, and what its kind of operator adds.
    fn add_node(&mut self, g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, node: &Node) {
        let nm = Literal::string(&node.name);
        let kind = match &node.kind {
            NodeKind::Source { .. } | NodeKind::Late { .. } => quote!(NodeKind::Source),
            NodeKind::Map(_) => quote!(NodeKind::Map),
            NodeKind::Aggregate { .. } => quote!(NodeKind::Aggregate),
            NodeKind::Union => quote!(NodeKind::Union),
            // An interval join counts the rows of both sides it reads and the rows it emits.
            NodeKind::Lookup { .. } if node.kind.keyed_join() => quote!(NodeKind::Aggregate),
            NodeKind::Lookup { .. } => quote!(NodeKind::Map),
            NodeKind::Sink { .. } => quote!(NodeKind::Sink),
            NodeKind::Rejected => quote!(NodeKind::Rejected),
        };
        let private = g.private_counts(&node.name);
        self.node_decls.push(quote!(NodeDecl { name: #nm, kind: #kind, private: #private }));
        // Output row structs (sources deserialize theirs).
        match &node.kind {
            NodeKind::Source { .. } | NodeKind::Sink { .. } | NodeKind::Rejected => {}
            _ => {
                let ident = id(format!("Row{i}"));
                self.items.push(rows::row_struct(g, &ident, &node.row.fields, node.span));
            }
        }
        match &node.kind {
            NodeKind::Source { source, record, read, filter, event_time, .. } => {
                let spec = source::SourceSpec {
                    source,
                    record,
                    read,
                    filter: filter.as_ref(),
                    event_time: event_time.as_deref(),
                };
                self.add_source(g, cx, i, node, &spec);
            }
            NodeKind::Late { .. } => {
                // In batch mode the watermark is at +∞ only after the last record: nothing is late.
            }
            NodeKind::Rejected => {}
            NodeKind::Union => {
                for (slot, input) in node.inputs.iter().enumerate() {
                    self.methods.push(union::union_input(g, cx, i, slot, input.0, node));
                }
            }
            NodeKind::Map(stages) => {
                for s in stages {
                    if let crate::ir::Stage::Require { what, blocking: Some(b), .. } = s {
                        self.checks.push(quote!((#what, #b)));
                    }
                }
                self.methods.push(map::map_node(g, cx, i, node, stages));
            }
            NodeKind::Lookup { left, interval, asof, keys, fields, .. } if node.kind.keyed_join() => {
                let kind = match (interval, asof) {
                    (None, Some(a)) => interval::Keyed::AsOf(a),
                    _ => {
                        let (lower, upper) = interval.unwrap_or_default();
                        interval::Keyed::Interval(lower, upper)
                    }
                };
                let spec = interval::IntervalSpec { left: *left, kind, keys, fields };
                let j = interval::interval_node(g, cx, i, node, &spec);
                self.items.push(j.items);
                self.agg_maps.push(j.map.clone());
                self.agg_tys.push(j.ty.clone());
                let (map, ty) = (&j.map, &j.ty);
                self.state_fields.push(quote!(#map: #ty));
                self.state_init.push(j.init);
                self.methods.push(j.methods);
                self.exchange_variants.extend(j.variants);
                self.exchange_arms.extend(j.arms);
                let (route, k) = (j.route, lit(self.agg_maps.len() - 1));
                self.route_arms.push(quote!(#route => (#k, rt::run::route_hash(key)),));
                self.aggregate_arms.push(quote!(#route => #k,));
                self.advance_one.push(j.finish_call.clone());
                self.finishes.push(j.finish_call);
            }
            NodeKind::Lookup { left, asof, keys, fields, .. } => {
                let spec = lookup::JoinSpec { left: *left, asof: asof.as_ref(), keys, fields };
                let l = lookup::lookup_node(g, cx, i, node, &spec);
                self.items.push(l.items);
                self.state_fields.push(l.collect_field);
                self.state_init.push(l.collect_init);
                self.methods.push(l.methods);
                self.joins.push(l.table);
            }
            NodeKind::Aggregate { keys, window, min_group, fields } => {
                let spec = aggregate::AggSpec { keys, window: window.as_ref(), min_group: *min_group, fields };
                self.add_aggregate(g, cx, i, node, &spec);
            }
            NodeKind::Sink { sink, exprs, .. } => self.add_sink(g, cx, i, node, *sink, exprs),
        }
    }

    /// A source node: its record struct, its push function, its declaration, and its arm in
    /// each parser of the `Pipeline` impl.
    fn add_source(&mut self, g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, node: &Node, spec: &source::SourceSpec<'_>) {
        let s = source::source_node(g, cx, i, node, spec);
        self.mem_sources.push((i, spec.source.to_string(), spec.record.clone(), spec.read.to_vec()));
        self.items.push(s.row);
        self.methods.push(s.method);
        let k = lit(self.source_decls.len());
        self.source_decls.push(s.decl);
        let row = &cx.row_ty[i];
        let m = id(format!("source_{i}"));
        let ni = lit(i);
        // Plain records take the fast path; serde reads the others (and says what is wrong).
        let parse = if s.fast_json {
            quote!(rt::json::parse::<#row>(o.raw).map_or_else(|| serde_json::from_slice::<#row>(o.raw), Ok))
        } else {
            quote!(serde_json::from_slice::<#row>(o.raw))
        };
        self.parse_json.push(quote! {
            #k => {
                st.base.stats[#ni].read += 1;
                match #parse {
                    Ok(r) => st.#m(ctx, o, r),
                    Err(e) => {
                        let why = rt::record::json_reason::<#row>(o.raw, &e);
                        st.reject(ctx, o, #ni, why);
                    }
                }
            }
        });
        self.parse_csv.push(quote! {
            #k => {
                st.base.stats[#ni].read += 1;
                if let Some(why) = rt::record::csv_too_wide(rec, header) {
                    st.reject(ctx, o, #ni, why);
                    return;
                }
                match rec.deserialize::<#row>(Some(header)) {
                    Ok(r) => st.#m(ctx, o, r),
                    Err(e) => {
                        let why = rt::record::csv_reason(&e, header);
                        st.reject(ctx, o, #ni, why);
                    }
                }
            }
        });
        if let Some(schema) = &s.arrow_schema {
            let schema = Literal::string(schema);
            self.arrow_schemas.push(quote!(#k => #schema,));
            self.parse_arrow.push(quote! {
                #k => rows.row::<#row>(i, |o, r| {
                    st.base.stats[#ni].read += 1;
                    match r {
                        Ok(r) => st.#m(ctx, o, r),
                        Err(why) => st.reject(ctx, o, #ni, why),
                    }
                }),
            });
        }
        let conv = s.from_parquet;
        self.parse_parquet.push(quote! {
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

    /// An aggregate node: its accumulator, its groups in the worker state, its push, fold and
    /// finish functions, and its variant of `Exchange`.
    fn add_aggregate(&mut self, g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, node: &Node, spec: &aggregate::AggSpec<'_>) {
        let a = aggregate::aggregate_node(g, cx, i, node, spec);
        self.agg_maps.push(id(format!("agg_{i}")));
        self.agg_tys.push(a.ty.clone());
        self.exchange_variants.push(a.exchange.0.clone());
        self.exchange_arms.push(a.exchange.1.clone());
        let (variant, k) = (id(format!("A{i}")), lit(self.agg_maps.len() - 1));
        self.route_arms.push(quote!(Exchange::#variant(ref key, ..) => (#k, rt::run::route_hash(key)),));
        self.aggregate_arms.push(quote!(Exchange::#variant(..) => #k,));
        self.advance_one.push(a.finish_call.clone());
        self.items.push(a.acc);
        self.state_fields.push(a.field);
        self.state_init.push(a.init);
        self.methods.push(a.push);
        self.methods.push(a.finish);
        self.finishes.push(a.finish_call);
    }

    /// A sink node: the record impl of its input rows, the sink's declaration (once per
    /// sink), its buffer in the worker state, and its push function.
    fn add_sink(
        &mut self,
        g: &mut Gen<'_>,
        cx: &Ctx<'_>,
        i: usize,
        node: &Node,
        sink: usize,
        exprs: &[(String, Vec<crate::hir::TExpr>)],
    ) {
        let plan = cx.plan;
        let input = node.inputs.first().map_or(0, |x| x.0);
        let in_row = plan.node(NodeId(input)).row.clone();
        if self.recorded.insert(input) {
            let ident = cx.row_ty[input].clone();
            if !matches!(plan.node(NodeId(input)).kind, NodeKind::Rejected) {
                let ident: Ident = syn::parse2(ident).unwrap_or_else(|_| id(format!("Row{input}")));
                self.items.push(rows::record_impl(g, &ident, &in_row.fields, node.span));
            }
        }
        let next = self.sink_index.len();
        let k = *self.sink_index.entry(sink).or_insert(next);
        if k == next {
            let (decl, dir) = sink::sink_decl(g, sink, &cx.row_ty[input], &in_row.fields, node.span);
            if self.first_dir.is_none() {
                self.first_dir = dir;
            }
            self.sink_decls.push(decl);
        }
        let buf = id(format!("sink_{i}"));
        let row = &cx.row_ty[input];
        self.mem_sinks.push(memory::SinkBufInfo {
            buf: buf.clone(),
            row: row.clone(),
            rejected: matches!(plan.node(NodeId(input)).kind, NodeKind::Rejected),
            sink,
            node: node.name.clone(),
            stream: plan.node(NodeId(input)).name.clone(),
        });
        let kl = lit(k);
        let s = sink::sink_node(g, cx, i, node, &in_row.fields, exprs);
        let key = &s.key;
        self.state_fields.push(quote!(#buf: SinkBuf<#row, #key>));
        match &s.path {
            Some(path) => {
                let pf = id(format!("partition_path_{i}"));
                self.items.push(quote!(fn #pf(key: &#key) -> String { #path }));
                self.state_init.push(quote!(#buf: SinkBuf::partitioned(#kl, #pf)));
            }
            None => self.state_init.push(quote!(#buf: SinkBuf::new(#kl))),
        }
        self.flushes.push(quote! { let r = self.#buf.flush(&self.base.out); self.base.io(r); });
        self.methods.push(s.push);
    }

    /// Where rejected records go when the program does not say: a `rejected` sink of JSON
    /// files beside the first file sink (or in the pipeline's folder). Gives the code that
    /// writes a rejected `row` there, empty when the program routes `rejected` itself.
    fn add_default_rejected(&mut self, g: &mut Gen<'_>, cx: &Ctx<'_>) -> TokenStream {
        let Some(di) = cx.default_rejected else {
            return quote!();
        };
        let dir = match &self.first_dir {
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
        let beside = self.first_dir.is_some();
        let k = lit(self.sink_decls.len());
        self.sink_decls.push(quote!(SinkDecl {
            name: "rejected",
            kind: SinkKind::Files { format: SinkFormat::Json },
            location: Some(String::from(#dir)),
            beside_first: #beside,
        }));
        self.node_decls.push(quote!(NodeDecl { name: "rejected", kind: NodeKind::Rejected, private: false }));
        self.node_decls.push(quote!(NodeDecl {
            name: "rejected (default sink)",
            kind: NodeKind::Sink,
            private: false
        }));
        self.state_fields.push(quote!(default_rejected: SinkBuf<Rejected>));
        self.mem_sinks.push(memory::SinkBufInfo {
            buf: id("default_rejected".into()),
            row: quote!(Rejected),
            rejected: true,
            sink: usize::MAX,
            node: "rejected".into(),
            stream: "rejected".into(),
        });
        self.state_init.push(quote!(default_rejected: SinkBuf::new(#k)));
        self.flushes.push(quote! { let r = self.default_rejected.flush(&self.base.out); self.base.io(r); });
        let (ri, dl) = (lit(cx.rejected), lit(di));
        quote! {
            self.base.stats[#ri].written += 1;
            self.base.stats[#dl].read += 1;
            self.base.stats[#dl].written += 1;
            let r = self.default_rejected.push(&self.base.out, (), row);
            self.base.io(r);
        }
    }
}

/// `State::reject`: counts a failure at an operator and sends the record to `rejected` (the
/// program's stream, or `default_reject`, the default sink's code).
fn reject_fn(cx: &Ctx<'_>, default_reject: TokenStream) -> TokenStream {
    let reject_emit =
        if cx.default_rejected.is_some() { default_reject } else { emit(cx, cx.rejected, quote!(row), false) };
    let rj = lit(cx.rejected);
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
    quote! {
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
    }
}

/// `impl State`: the operators' methods, watermark advances, the key exchange, checkpoints
/// and flushes.
fn state_impl(g: &Gen<'_>, p: &Parts, reject_fn: &TokenStream) -> TokenStream {
    let flush_blocks: Vec<TokenStream> = g
        .block_nodes
        .iter()
        .map(|b| {
            let f = id(format!("score_block_{b}"));
            quote!(self.#f(ctx);)
        })
        .collect();
    let finishes: Vec<TokenStream> = p.finishes.iter().map(|f| quote!(#f self.flush_blocks(ctx);)).collect();
    let agg_index: Vec<Literal> = (0..p.agg_maps.len()).map(Literal::usize_unsuffixed).collect();
    let Parts { methods, advance_one, exchange_arms, agg_maps, agg_tys, flushes, .. } = p;
    quote! {
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
                    #agg_maps.retain_keys(|k| keep(rt::run::route_hash(k)));
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
    }
}

/// `struct Program` and its `impl Pipeline`: the declarations the runtime reads, the parsers
/// of each input format, and the calls into the worker state.
fn pipeline_impl(g: &Gen<'_>, p: &Parts, name: &str, table_methods: &TokenStream) -> TokenStream {
    let uses_key = g.uses_key;
    let unavailable: Vec<Literal> = g.unavailable.iter().map(|v| Literal::string(v)).collect();
    let n_aggs = Literal::usize_unsuffixed(p.agg_maps.len());
    let env_vars: Vec<Literal> = g.env_vars.iter().map(|v| Literal::string(v)).collect();
    let pname = Literal::string(name);
    let Parts {
        node_decls,
        source_decls,
        sink_decls,
        state_init,
        parse_json,
        parse_csv,
        parse_parquet,
        parse_arrow,
        arrow_schemas,
        route_arms,
        aggregate_arms,
        checks,
        ..
    } = p;
    // Only a program with `expect` steps declares checks (the trait's default has none).
    let checks_fn = if checks.is_empty() {
        quote!()
    } else {
        quote! {
            fn checks(&self) -> Vec<(&'static str, bool)> {
                vec![#(#checks),*]
            }
        }
    };
    // Only a program that reads Arrow files has these (they exist with the runtime's `arrow`
    // feature, which pipec turns on for it).
    let arrow = if parse_arrow.is_empty() {
        quote!()
    } else {
        quote! {
            fn arrow(&self, w: &mut Worker, source: usize, rows: &rt::arrow::Rows<'_>, i: usize) {
                let Worker { ctx, st } = w;
                match source {
                    #(#parse_arrow)*
                    _ => {}
                }
            }

            fn arrow_schema(&self, source: usize) -> &'static str {
                match source {
                    #(#arrow_schemas)*
                    _ => "",
                }
            }
        }
    };
    let require_arrow = if super::uses_arrow(g.program) { quote!(rt::require_arrow!();) } else { quote!() };
    quote! {
        #require_arrow

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

            #checks_fn

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

            #arrow

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

            #[allow(unused_variables)]
            fn aggregate_of(&self, row: &Exchange) -> usize {
                match *row {
                    #(#aggregate_arms)*
                }
            }

            fn take_outbox(&self, w: &mut Worker) -> Vec<Exchange> {
                // The next batch starts with room for as many rows as this one: grown from
                // empty, the outbox was copied into fresh memory at every doubling.
                let room = w.st.outbox.len();
                std::mem::replace(&mut w.st.outbox, Vec::with_capacity(room))
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

            #table_methods
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
    quote!(let #ty { #(#binds,)* .. } = #r;)
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
