//! Source operators: the record struct a source deserializes, its Parquet reader, its
//! declaration for the runtime, and the function that takes each parsed record.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use super::{emit, id, lit, Ctx};
use crate::codegen::expr::{ExprGen, Scope};
use crate::codegen::{names, rows, Gen};
use crate::hir::{ConnectorArg, TExpr};
use crate::ir::{Node, NodeId, NodeKind};
use crate::resolve::schema::FieldInfo;
use crate::types::Type;

/// The fields of a source node.
pub(super) struct SourceSpec<'a> {
    pub(super) source: &'a str,
    pub(super) record: &'a Type,
    pub(super) read: &'a [String],
    pub(super) filter: Option<&'a TExpr>,
    pub(super) event_time: Option<&'a str>,
}

pub(super) struct SourceParts {
    pub(super) row: TokenStream,
    pub(super) method: TokenStream,
    pub(super) decl: TokenStream,
    pub(super) from_parquet: TokenStream,
    /// For a source that reads Arrow files: the descriptor of the fields a file must have.
    pub(super) arrow_schema: Option<String>,
    /// Whether the row struct has a JSON fast path (`rt::json::Fast`).
    pub(super) fast_json: bool,
}

/// The fields of the source's record that the program reads, with their index in the record.
type ReadFields<'s> = [(usize, &'s FieldInfo)];

pub(super) fn source_node(g: &mut Gen<'_>, cx: &Ctx<'_>, i: usize, node: &Node, spec: &SourceSpec<'_>) -> SourceParts {
    let source = spec.source;
    let ident = id(format!("Row{i}"));
    let Type::Struct(sid, _) = spec.record else {
        g.unsupported(node.span, "a source whose record is not a struct cannot be compiled yet");
        return SourceParts {
            row: quote!(),
            method: quote!(),
            decl: quote!(),
            from_parquet: quote!(unreachable!()),
            arrow_schema: None,
            fast_json: false,
        };
    };
    let def = g.res.schema.get_struct(*sid);
    let fields: Vec<(usize, &FieldInfo)> =
        def.fields.iter().enumerate().filter(|(_, f)| spec.read.contains(&f.name)).collect();
    let validate = g.program.sources.iter().find(|s| s.name == source).is_none_or(|s| s.validate_unread);
    let checked: Vec<(usize, &FieldInfo)> =
        def.fields.iter().enumerate().filter(|(_, f)| validate && !spec.read.contains(&f.name)).collect();
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
    let row = rows::record_struct(g, &ident, &fields, &checked, true, src_format == "csv");
    let fast_json = src_format != "csv" && rows::fast_reader(g, &ident, &fields, &checked).is_some();
    let from_parquet = parquet_reader(g, node, source, &ident, &fields, &checked, &src_format);
    let columns: Vec<&FieldInfo> = fields.iter().chain(&checked).map(|(_, f)| *f).collect();
    let decl = source_decl(g, node, source, &columns);
    let arrow_schema = (src_format == "arrow").then(|| super::super::arrow::record_descriptor(g, &def.fields));

    let mut sc = Scope::default();
    for (idx, f) in &fields {
        let (fid, _) = names::field(&f.name, *idx);
        sc.bind(&f.name, quote!(row.#fid), f.ty.clone());
    }
    let ni = lit(i);
    let meta = message_fields(g, source, &fields);
    let ts = event_time(spec.event_time, &fields, &ni);
    let filter = match spec.filter {
        Some(c) => filter(g, c, &sc, &ni),
        None => quote!(),
    };
    let late = late_records(g, cx, i, node, source, &fields);
    let out = emit(cx, i, quote!(row), true);
    let m = id(format!("source_{i}"));
    // The source's index among the sources the runtime reads (one per source node).
    let k = lit(cx.plan.nodes[..i].iter().filter(|n| matches!(n.kind, NodeKind::Source { .. })).count());
    let method = quote! {
        fn #m(&mut self, ctx: &Context, o: &Origin<'_>, row: #ident) {
            let _ = ctx;
            #meta
            #ts
            self.base.saw(#k, ts);
            #late
            #filter
            #out
        }
    };
    SourceParts { row, method, decl, from_parquet, arrow_schema, fast_json }
}

/// The body of the closure that reads a record from a Parquet row, field by field.
fn parquet_reader(
    g: &mut Gen<'_>,
    node: &Node,
    source: &str,
    ident: &Ident,
    fields: &ReadFields<'_>,
    checked: &ReadFields<'_>,
    src_format: &str,
) -> TokenStream {
    // Parquet rows are read field by field; the file's own schema types every column.
    let mut conv: Vec<TokenStream> = checked
        .iter()
        .map(|(idx, f)| {
            let (fid, _) = names::field(&f.name, *idx);
            quote!(#fid: rt::value::Checked)
        })
        .collect();
    let mut nested: Option<String> = None;
    for (idx, f) in fields {
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
    if let (Some(n), "parquet") = (&nested, src_format) {
        g.unsupported(node.span, &format!("source `{source}`: the nested field `{n}` cannot be read from Parquet yet"));
    }
    match nested {
        Some(n) => {
            let msg = Literal::string(&format!("field `{n}`: nested values cannot be read from Parquet yet"));
            quote!({ let _ = row; Err(Reject::new(#msg)) })
        }
        None => quote!(Ok(#ident { #(#conv),* })),
    }
}

/// The source's `SourceDecl`: a batch binding (files) and a stream one (follow, stdin); a
/// source needs at least one the runtime can run.
fn source_decl(g: &mut Gen<'_>, node: &Node, source: &str, columns: &[&FieldInfo]) -> TokenStream {
    let src = g.program.sources.iter().find(|s| s.name == source);
    let format_of = |c: &crate::hir::Connector| {
        let fmt = c.args.iter().find_map(|(n, a)| match (n.as_str(), a) {
            ("format", ConnectorArg::Word(w)) => Some(w.as_str()),
            _ => None,
        });
        id(match fmt.unwrap_or("json") {
            "csv" => "Csv",
            "parquet" => "Parquet",
            "arrow" => "Arrow",
            _ => "Json",
        }
        .into())
    };
    let batch = match src.and_then(|s| s.batch.as_ref()) {
        Some(c) if c.name == "files" => {
            let loc = connector_text(g, c.args.iter().find(|(n, _)| n == "glob").map(|(_, a)| a));
            let fmt = format_of(c);
            Some(quote!(Some(rt::input::BatchDecl {
                glob: #loc,
                format: rt::input::Format::#fmt,
                kafka: None,
                postgres: None,
            })))
        }
        Some(c) if c.name == "s3" && !g.module => {
            let loc = connector_value(g, c.args.iter().find(|(n, _)| n == "path").map(|(_, a)| a));
            let fmt = format_of(c);
            Some(quote!(Some(rt::input::BatchDecl {
                glob: rt::connectors::s3_url(&#loc),
                format: rt::input::Format::#fmt,
                kafka: None,
                postgres: None,
            })))
        }
        Some(c) if c.name == "postgres" && !g.module => {
            let pg = pg_decl(g, c, columns);
            Some(quote!(Some(rt::input::BatchDecl {
                glob: String::new(),
                format: rt::input::Format::Json,
                kafka: None,
                postgres: Some(#pg),
            })))
        }
        Some(c) if c.name == "kafka" && !g.module => {
            let fmt = format_of(c);
            let kafka = kafka_decl(g, c, src.map(|s| &s.record), "earliest");
            Some(quote!(Some(rt::input::BatchDecl {
                glob: String::new(),
                format: rt::input::Format::#fmt,
                kafka: Some(#kafka),
                postgres: None,
            })))
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
        Some(c) if c.name == "kafka" && !g.module => {
            let fmt = format_of(c);
            let kafka = kafka_decl(g, c, src.map(|s| &s.record), "group");
            Some(quote!(Some(rt::input::StreamDecl {
                kind: rt::input::StreamKind::Kafka(#kafka),
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
    let table = matches!(node.kind, NodeKind::Source { table: true, .. });
    let refresh = match src.and_then(|s| s.refresh).filter(|_| table) {
        Some((t, _)) => {
            let t = Literal::i64_suffixed(t);
            quote!(Some(#t))
        }
        None => quote!(None),
    };
    quote!(rt::run::SourceDecl {
        name: #source,
        batch: #batch,
        stream: #stream,
        watermark: #watermark,
        idle_timeout: #idle,
        table: #table,
        refresh: #refresh,
    })
}

/// A Kafka binding's `KafkaDecl`; `start` defaults to `default_start` (`group` for a stream,
/// which goes on where the consumer group committed; `earliest` for a batch backfill).
fn kafka_decl(g: &mut Gen<'_>, c: &crate::hir::Connector, record: Option<&Type>, default_start: &str) -> TokenStream {
    let arg = |n: &str| c.args.iter().find(|(k, _)| k == n).map(|(_, a)| a);
    let topic = connector_value(g, arg("topic"));
    let brokers = connector_value(g, arg("brokers"));
    let group = match arg("group") {
        Some(a) => {
            let v = connector_value(g, Some(a));
            quote!(Some(#v))
        }
        None => quote!(None),
    };
    let start = match arg("start") {
        Some(ConnectorArg::Int(ms)) => {
            let ms = Literal::i64_suffixed(*ms);
            quote!(rt::input::KafkaStart::Timestamp(#ms))
        }
        Some(ConnectorArg::Word(w)) => start_word(w),
        _ => start_word(default_start),
    };
    let columns: Vec<Literal> = match record {
        Some(Type::Struct(sid, _)) => {
            g.res.schema.get_struct(*sid).fields.iter().map(|f| Literal::string(&f.name)).collect()
        }
        _ => Vec::new(),
    };
    quote!(rt::input::KafkaDecl {
        topic: #topic,
        brokers: #brokers,
        group: #group,
        start: #start,
        columns: vec![#(String::from(#columns)),*],
    })
}

/// A PostgreSQL binding's `PgSource`: the fields the record decodes, each with the form its
/// decoder takes (a timestamp in the unit its schema declares for text).
fn pg_decl(g: &mut Gen<'_>, c: &crate::hir::Connector, columns: &[&FieldInfo]) -> TokenStream {
    use crate::resolve::schema::TimestampUnit as U;
    let arg = |n: &str| c.args.iter().find(|(k, _)| k == n).map(|(_, a)| a);
    let url = connector_value(g, arg("url"));
    let optional = |g: &mut Gen<'_>, n: &str| match arg(n) {
        Some(a) => {
            let v = connector_value(g, Some(a));
            quote!(Some(#v))
        }
        None => quote!(None),
    };
    let table = optional(g, "table");
    let query = optional(g, "query");
    let cols = columns.iter().map(|f| {
        let name = Literal::string(&f.name);
        let kind = match f.ty.non_null() {
            Type::Bool => quote!(Bool),
            Type::Int => quote!(Int),
            Type::Duration => quote!(Duration),
            Type::Double => quote!(Double),
            Type::String => quote!(Text),
            Type::Enum(..) => quote!(Enum),
            Type::Date => quote!(Date),
            Type::Binary => quote!(Binary),
            Type::Timestamp => {
                let unit = match f.timestamp {
                    Some(U::Seconds) => quote!(Seconds),
                    Some(U::Micros) => quote!(Micros),
                    Some(U::Nanos) => quote!(Nanos),
                    Some(U::Iso8601) => quote!(Iso),
                    Some(U::Millis) | None => quote!(Millis),
                };
                quote!(Timestamp(rt::input::TsUnit::#unit))
            }
            _ => quote!(Json),
        };
        let optional = f.ty.is_nullable();
        quote!(rt::input::PgColumn { name: String::from(#name), kind: rt::input::PgKind::#kind, optional: #optional })
    });
    quote!(rt::input::PgSource { url: #url, table: #table, query: #query, columns: vec![#(#cols),*] })
}

fn start_word(w: &str) -> TokenStream {
    match w {
        "latest" => quote!(rt::input::KafkaStart::Latest),
        "group" => quote!(rt::input::KafkaStart::Group),
        _ => quote!(rt::input::KafkaStart::Earliest),
    }
}

/// The statements that fill the fields a Kafka binding names (`key_field = "…"`, …) from the
/// message being parsed.
fn message_fields(g: &Gen<'_>, source: &str, fields: &ReadFields<'_>) -> TokenStream {
    let Some(src) = g.program.sources.iter().find(|s| s.name == source) else { return quote!() };
    let mut sets = Vec::new();
    for c in [&src.batch, &src.stream].into_iter().flatten().filter(|c| c.name == "kafka") {
        for (param, (idx, f)) in c.args.iter().filter_map(|(n, a)| match a {
            ConnectorArg::Text(t) => fields.iter().find(|(_, f)| &f.name == t).map(|x| (n.as_str(), *x)),
            _ => None,
        }) {
            let (fid, _) = names::field(&f.name, idx);
            let value = match param {
                "key_field" => quote!(m.key.clone()),
                "partition_field" => quote!(Some(m.partition)),
                "offset_field" => quote!(Some(m.offset)),
                "timestamp_field" => quote!(m.timestamp),
                _ => continue,
            };
            sets.push(quote!(row.#fid = #value;));
        }
    }
    if sets.is_empty() {
        return quote!();
    }
    quote! {
        let mut row = row;
        if let Some(m) = &self.base.message {
            #(#sets)*
        }
    }
}

/// A connector's text argument used as it is (a topic, a broker list): a literal, or
/// `env("…")` read at start.
pub(super) fn connector_value(g: &mut Gen<'_>, arg: Option<&ConnectorArg>) -> TokenStream {
    match arg {
        Some(ConnectorArg::Text(t)) => {
            let l = Literal::string(t);
            quote!(String::from(#l))
        }
        other => connector_text(g, other),
    }
}

/// `let ts = …;`: the record's event time (a null one rejects the record), 0 without one.
fn event_time(event_time: Option<&str>, fields: &ReadFields<'_>, ni: &Literal) -> TokenStream {
    match event_time.and_then(|t| fields.iter().find(|(_, f)| f.name == t)) {
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
    }
}

/// The source's `where` condition: a record that fails it is counted as filtered.
fn filter(g: &mut Gen<'_>, c: &TExpr, sc: &Scope, ni: &Literal) -> TokenStream {
    let mut eg = ExprGen::new(g);
    let v = eg.expr(c, sc);
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

/// `late = to NAME`: a record behind the watermark goes to the late stream instead.
fn late_records(
    g: &mut Gen<'_>,
    cx: &Ctx<'_>,
    i: usize,
    node: &Node,
    source: &str,
    fields: &ReadFields<'_>,
) -> TokenStream {
    let Some(li) =
        cx.plan.nodes.iter().position(|n| {
            matches!(&n.kind, NodeKind::Late { source: s } if s == source) && n.inputs.contains(&NodeId(i))
        })
    else {
        return quote!();
    };
    let ni = lit(i);
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
            rt::run::behind();
            self.base.stats[#ni].late += 1;
            self.base.stats[#li_l].read += 1;
            let late = #late_ty { #(#moves),* };
            #out
            return;
        }
    }
}

/// A connector's text argument as a Rust `String` expression: a literal path resolved against
/// the pipeline's folder, or `env("…")` read at start.
pub(super) fn connector_text(g: &mut Gen<'_>, arg: Option<&ConnectorArg>) -> TokenStream {
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
