//! The typed in-memory API of a pipeline embedded in Rust (the `pipeline!` macro and the build
//! helper): `Inputs` holds a `Vec` of each source's schema struct, `Outputs` a `Vec` of each
//! sink's rows, and `run_batch` pushes every input row through the same operators a pipeline
//! binary runs, with the sinks keeping their rows instead of writing files.

use std::collections::BTreeSet;

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use super::{names, Gen};
use crate::types::Type;

/// A sink buffer of the worker state and what reaches it.
#[derive(Debug)]
pub struct SinkBufInfo {
    /// The state field holding the buffer.
    pub buf: Ident,
    /// The Rust type of its rows.
    pub row: TokenStream,
    /// Whether its rows are `Rejected` records.
    pub rejected: bool,
    /// The program's sink index; `usize::MAX` for the default rejected sink.
    pub sink: usize,
    /// The sink node's name (`sink`, or `stream->connector` for an inline sink).
    pub node: String,
    /// The stream that feeds it.
    pub stream: String,
}

/// A snake-case Rust field name for a Pipe name.
fn field_name(name: &str) -> String {
    let mut clean: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .to_string();
    if !clean.starts_with(|c: char| c.is_ascii_alphabetic()) {
        clean.insert(0, 'f');
    }
    clean
}

fn field_ident(name: &str) -> Ident {
    if names::is_keyword(name) {
        return names::field(name, 0).0;
    }
    Ident::new(name, proc_macro2::Span::call_site())
}

/// The `Outputs` field of each sink buffer: a named sink's name (with the stream's when
/// several streams feed it), an inline sink's stream, `rejected` for the default dead letters.
fn output_names(sinks: &[SinkBufInfo]) -> Vec<String> {
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for (k, s) in sinks.iter().enumerate() {
        let edges = sinks.iter().filter(|o| o.sink == s.sink).count();
        let base = if s.sink == usize::MAX {
            "rejected".to_string()
        } else if s.node.contains("->") {
            s.stream.clone()
        } else if edges > 1 {
            format!("{}_{}", s.node, s.stream)
        } else {
            s.node.clone()
        };
        let mut name = field_name(&base);
        if used.contains(&name) {
            name = field_name(&s.node.replace("->", "_"));
        }
        if used.contains(&name) {
            name = format!("{name}_{k}");
        }
        used.insert(name.clone());
        out.push(name);
    }
    out
}

/// `Inputs`, `Outputs`, `run_batch`, `run_batch_with`, `run` and `main`.
pub fn api(
    g: &mut Gen<'_>,
    sources: &[(usize, String, Type, Vec<String>)],
    tables: &[String],
    sinks: &[SinkBufInfo],
) -> TokenStream {
    let mut items = Vec::new();

    // Inputs: one field per source, in the order the program declares them.
    let mut order: Vec<&str> = Vec::new();
    for (_, name, _, _) in sources {
        if !order.contains(&name.as_str()) {
            order.push(name);
        }
    }
    let mut in_fields = Vec::new();
    let mut feeds = Vec::new();
    let mut table_feeds = Vec::new();
    let mut arrow_in_fields = Vec::new();
    let mut arrow_converts = Vec::new();
    // `run_rows`' parameters (an iterator of each source's records, or of why one does not fit
    // its schema) and its arguments from typed rows and from record batches.
    let (mut fed_params, mut fed_typed, mut fed_arrow) = (Vec::new(), Vec::new(), Vec::new());
    for name in order {
        let nodes: Vec<&(usize, String, Type, Vec<String>)> = sources.iter().filter(|s| s.1 == name).collect();
        let Some(Type::Struct(sid, _)) = nodes.first().map(|s| &s.2) else { continue };
        let sid = *sid;
        let input_ty = g.struct_ident(sid);
        let field = field_ident(&field_name(name));
        let doc = format!(" The records of source `{name}`, in the order it reads them.");
        in_fields.push(quote!(#[doc = #doc] pub #field: Vec<#input_ty>));
        let def = g.res.schema.get_struct(sid);
        let doc = format!(" The records of source `{name}`, as record batches with the columns of `{input_ty}`.");
        arrow_in_fields.push(quote!(#[doc = #doc] pub #field: Vec<rt::arrow::RecordBatch>));
        let descriptor = Literal::string(&super::arrow::record_descriptor(g, &def.fields));
        let label = Literal::string(name);
        // (Numbered: a source's name may be any of `run_rows`' own.)
        let rows = Ident::new(&format!("rows_{}", fed_params.len()), proc_macro2::Span::call_site());
        arrow_converts
            .push(quote!(let #rows = rt::arrow::input_rows::<#input_ty>(#label, #descriptor, &inputs.#field)?;));
        fed_params.push(
            quote!(#rows: impl ::core::iter::Iterator<Item = ::core::result::Result<#input_ty, rt::record::Unfit>>),
        );
        fed_typed.push(quote!(inputs.#field.into_iter().map(Ok)));
        fed_arrow.push(quote!(#rows.into_iter()));
        // Typed records need no checking: fields a source checks but does not read are empty.
        let validate = g.program.sources.iter().find(|s| s.name == *name).is_none_or(|s| s.validate_unread);
        let mut pushes = Vec::new();
        for (k, (node, _, _, read)) in nodes.iter().enumerate() {
            let row_ty = Ident::new(&format!("Row{node}"), proc_macro2::Span::call_site());
            let moves: Vec<TokenStream> = def
                .fields
                .iter()
                .enumerate()
                .filter(|(_, f)| validate || read.contains(&f.name))
                .map(|(i, f)| {
                    let (fid, _) = names::field(&f.name, i);
                    if !read.contains(&f.name) {
                        quote!(#fid: rt::value::Checked)
                    } else if k + 1 == nodes.len() {
                        quote!(#fid: row.#fid)
                    } else {
                        quote!(#fid: row.#fid.clone())
                    }
                })
                .collect();
            let m = Ident::new(&format!("source_{node}"), proc_macro2::Span::call_site());
            let ni = Literal::usize_unsuffixed(*node);
            pushes.push(quote! {
                st.base.stats[#ni].read += 1;
                st.#m(ctx, &o, #row_ty { #(#moves),* });
            });
        }
        let src = Literal::string(name);
        let position = Literal::string(&format!("{name}[{{}}]"));
        let feeds = if tables.iter().any(|t| t == name) { &mut table_feeds } else { &mut feeds };
        // A record that did not fit the schema is rejected by each of the source's nodes, as a
        // file's would be.
        let unfit: Vec<TokenStream> = nodes
            .iter()
            .map(|(node, ..)| {
                let ni = Literal::usize_unsuffixed(*node);
                quote! {
                    st.base.stats[#ni].read += 1;
                    st.reject(ctx, &o, #ni, why.clone());
                }
            })
            .collect();
        feeds.push(quote! {
            for (n, item) in #rows.enumerate() {
                // The record as JSON: what `rejected.raw` shows if it fails.
                let (raw, item) = match item {
                    Ok(row) => (serde_json::to_vec(&row).unwrap_or_default(), Ok(row)),
                    Err(unfit) => (unfit.raw, Err(unfit.why)),
                };
                let file = format!(#position, n);
                let id = rt::record::record_id(#src, "", n as u64, 0);
                let o = Origin { source: #src, file: &file, offset: n as u64, line: rt::record::Line::Resolved(id), raw: &raw, with: 0 };
                match item {
                    Ok(row) => { #(#pushes)* }
                    Err(why) => { #(#unfit)* }
                }
            }
        });
    }

    // Outputs: one field per sink buffer.
    let names_out = output_names(sinks);
    let schema_names: BTreeSet<String> = g
        .res
        .schema
        .structs
        .iter()
        .map(|s| names::camel(&s.name))
        .chain(g.res.schema.enums.iter().map(|e| names::camel(&e.name)))
        .collect();
    let mut aliases = BTreeSet::new();
    let mut out_fields = Vec::new();
    let mut takes = Vec::new();
    let mut arrow_out_fields = Vec::new();
    let mut arrow_outputs = Vec::new();
    for (s, name) in sinks.iter().zip(&names_out) {
        let field = field_ident(name);
        let mut ty = s.row.clone();
        if !s.rejected {
            let alias = format!("{}Row", names::camel(name));
            if names::free_type_name(&alias) && !schema_names.contains(&alias) && aliases.insert(alias.clone()) {
                let a = Ident::new(&alias, proc_macro2::Span::call_site());
                let row = &s.row;
                let doc = format!(" A row `{}` receives.", s.node);
                items.push(quote!(#[doc = #doc] pub type #a = #row;));
                ty = quote!(#a);
            }
        }
        let doc = if s.sink == usize::MAX {
            " Records a source or step rejected, with their reasons (the program routes `rejected` nowhere, so a pipeline binary writes them to `rejected/`).".to_string()
        } else {
            format!(" The rows stream `{}` sends to sink `{}`, in the order they arrive.", s.stream, s.node)
        };
        out_fields.push(quote!(#[doc = #doc] pub #field: Vec<#ty>));
        arrow_out_fields.push(quote!(#[doc = #doc] pub #field: rt::arrow::RecordBatch));
        arrow_outputs.push(quote!(#field: rt::arrow::output_batch(&out.#field)?));
        let buf = &s.buf;
        takes.push(quote!(#field: w.st.#buf.take()));
    }

    // A join's table is read whole before any row of the other sources.
    let tables_first = if table_feeds.is_empty() {
        quote!()
    } else {
        quote! {
            {
                let Worker { ctx, st } = &mut *w;
                let ctx: &Context = ctx;
                #(#table_feeds)*
            }
            let built = Program.table_part(w).and_then(|part| Program.build_tables(&[part]));
            match built {
                Ok(t) => Program.use_tables(w, &t),
                Err(e) => Program.base(w).io(Err(std::io::Error::other(e))),
            }
        }
    };
    quote! {
        /// The rows to run the pipeline on, per source.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Inputs {
            #(#in_fields,)*
        }

        /// What each sink received. Rows of an aggregate come in no particular order.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct Outputs {
            #(#out_fields,)*
        }

        #(#items)*

        /// Runs the pipeline in batch mode on `inputs`, in memory: every window fires after the
        /// last row, rows that fail go to `rejected`. The HMAC key, when the pipeline needs
        /// one, comes from `PIPE_HMAC_KEY`; `env(…)` values from the environment.
        pub fn run_batch(inputs: Inputs) -> Result<Outputs, rt::run::RunError> {
            run_batch_with(inputs, &rt::run::Settings::default())
        }

        /// [`run_batch`] with an explicit HMAC key and `env(…)` values.
        pub fn run_batch_with(inputs: Inputs, settings: &rt::run::Settings) -> Result<Outputs, rt::run::RunError> {
            run_rows(settings, #(#fed_typed,)*)
        }

        /// Runs the pipeline on each source's records in order; a record that did not fit its
        /// schema (a row of a record batch) goes to `rejected` at its place.
        fn run_rows(settings: &rt::run::Settings, #(#fed_params,)*) -> Result<Outputs, rt::run::RunError> {
            let (mut w, _) = rt::run::run_memory(&Program, settings, move |w: &mut Worker| {
                #tables_first
                let Worker { ctx, st } = w;
                let ctx: &Context = ctx;
                let _ = (&ctx, &st);
                #(#feeds)*
            })?;
            Ok(Outputs { #(#takes,)* })
        }

        rt::if_arrow! {
            /// The rows to run the pipeline on, per source, as Arrow record batches (the
            /// runtime's `arrow` feature). A column may be missing when its field is optional.
            #[derive(Clone, Debug, Default)]
            pub struct ArrowInputs {
                #(#arrow_in_fields,)*
            }

            /// What each sink received, as one Arrow record batch per sink, its columns the
            /// sink's row type.
            #[derive(Clone, Debug)]
            pub struct ArrowOutputs {
                #(#arrow_out_fields,)*
            }

            /// [`run_batch`] on Arrow record batches: each input's columns are checked against
            /// its source's schema (an error names the first that does not fit), every row is
            /// read — a row that does not fit the schema (a null where it requires a value, a
            /// number out of range) goes to `rejected` with its reason, as a file's would — the
            /// pipeline runs, and each sink's rows come back as a record batch. Every field of
            /// the source's struct is checked, as `validate = all` does, whatever the source's
            /// `validate`: the rows become the typed records of `Inputs` first.
            pub fn run_batch_arrow(inputs: ArrowInputs) -> Result<ArrowOutputs, rt::run::RunError> {
                run_batch_arrow_with(inputs, &rt::run::Settings::default())
            }

            /// [`run_batch_arrow`] with an explicit HMAC key and `env(…)` values.
            pub fn run_batch_arrow_with(
                inputs: ArrowInputs,
                settings: &rt::run::Settings,
            ) -> Result<ArrowOutputs, rt::run::RunError> {
                #(#arrow_converts)*
                let out = run_rows(settings, #(#fed_arrow,)*)?;
                Ok(ArrowOutputs { #(#arrow_outputs,)* })
            }
        }

        /// Runs the pipeline with its declared connectors, as its `pipec build` binary would.
        pub fn run(options: &rt::run::Options) -> Result<rt::run::Summary, rt::run::RunError> {
            rt::engine::run(&Program, options)
        }

        /// The pipeline binary's `main`: options from the command line, the summary on stderr.
        pub fn main() -> std::process::ExitCode {
            rt::engine::main(Program)
        }
    }
}
