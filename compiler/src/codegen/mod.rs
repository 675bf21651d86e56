//! Code generation, stage 6: the optimized plan becomes a small cargo crate whose `main` hands
//! the pipeline to the runtime. Generated code defines *what* happens to a record: one struct
//! per row type (serde for JSON and CSV, column writers for Parquet), one push function per
//! operator with its fused stages inlined, accumulators per aggregate; the runtime decides how
//! it runs. Tokens are built with `quote` and printed with `prettyplease`.
//!
//! What cannot be compiled yet (a sink connector without a writer, a source none of whose
//! bindings the runtime reads) is the diagnostic `E3001` at the construct, never a silent gap.

mod arrow;
mod expr;
mod memory;
mod models;
mod names;
mod nodes;
mod rows;

use std::collections::{BTreeSet, HashMap};

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use crate::diagnostics::{Code, Diagnostic};
use crate::hir::Program;
use crate::ir::Plan;
use crate::resolve::{ModuleId, Resolved};
use crate::source::Span;
use crate::types::{EnumId, StructId, Type};

/// The cargo profile `pipec build` and `pipec run` compile a pipeline's crate with (defined in
/// its manifest; `driver::cargo_command`).
pub const BUILD_PROFILE: &str = "pipe";

/// A generated crate: its package name and files (relative path, contents).
#[derive(Debug, Clone, PartialEq)]
pub struct Crate {
    pub name: String,
    pub files: Vec<(String, String)>,
}

/// Where the generated crate finds the runtime, and where relative paths in the program start.
#[derive(Debug, Clone)]
pub struct Target {
    /// The `pipe-runtime` crate directory (absolute).
    pub runtime_dir: String,
    /// The directory relative connector paths are resolved against (the root file's folder).
    pub base_dir: String,
    /// Tells apart pipelines of the same name (two `pipeline.pipe` files without a namespace):
    /// appended to the package name, so their crates, build outputs and cached binaries never
    /// mix. Empty for none.
    pub id: String,
    /// Runtime features compiled in besides the ones the program uses (`PIPE_RUNTIME_FEATURES`):
    /// pipelines built with one set share one compiled runtime.
    pub features: Vec<String>,
}

/// The runtime's cargo features, each compiled only into pipelines that use it (or that ask for
/// it through `Target::features`).
pub const RUNTIME_FEATURES: [&str; 5] = ["kafka", "postgres", "redis", "s3", "arrow"];

/// The generator's state while it walks one plan.
pub struct Gen<'a> {
    res: &'a Resolved,
    program: &'a Program,
    target: &'a Target,
    diags: Vec<Diagnostic>,
    structs: BTreeSet<StructId>,
    enums: BTreeSet<EnumId>,
    pub uses_key: bool,
    pub env_vars: Vec<String>,
    /// Extra items (default-value functions, row structs) emitted beside the main ones.
    items: Vec<TokenStream>,
    user_fns: HashMap<(String, ModuleId), (Ident, Vec<Type>, Type)>,
    models: &'a HashMap<String, crate::models::Model>,
    /// Models whose tables are already emitted.
    emitted_models: BTreeSet<String>,
    /// State fields (and their initial values) operators need beyond the standard ones.
    extra_fields: Vec<(TokenStream, TokenStream)>,
    /// Maps that score rows in blocks, and the method that scores a block, by node.
    block_nodes: Vec<usize>,
    block_fns: HashMap<usize, TokenStream>,
    /// Camel-cased names more than one schema type has: those types get numbered names.
    shared_names: BTreeSet<String>,
    /// Connectors a module declares but the runtime cannot run (see `unavailable_connector`).
    unavailable: Vec<String>,
    /// Generating a module for Rust code (the `pipeline!` macro, the build helper) rather than
    /// a binary: adds the typed in-memory API.
    module: bool,
    /// Whether row types carry their Arrow fields: a module (for `run_batch_arrow`) or a
    /// program with an Arrow connector.
    arrow: bool,
}

impl std::fmt::Debug for Gen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gen").field("diagnostics", &self.diags.len()).finish_non_exhaustive()
    }
}

impl<'a> Gen<'a> {
    /// Whether the run's report coarsens the counts of the operator named `node`.
    pub fn private_counts(&self, node: &str) -> bool {
        self.program.private_counts.contains(node)
    }

    pub fn unsupported(&mut self, span: Span, what: &str) {
        if self.diags.iter().any(|d| d.primary.span == span && d.code == Code::E3001) {
            return;
        }
        self.diags.push(
            Diagnostic::new(Code::E3001, span, what.to_string())
                .label("not supported by the code generator")
                .help("`pipec check` accepts this; `pipec build` and `pipec run` need it rewritten without this construct for now"),
        );
    }

    /// A connector without a runner: `E3001` for a binary; in a module, which can still run on
    /// rows in memory, a note `run` reports when asked to use it.
    pub fn unavailable_connector(&mut self, span: Span, note: &str, what: &str) {
        if self.module {
            self.unavailable.push(note.to_string());
        } else {
            self.unsupported(span, what);
        }
    }

    pub fn struct_ident(&mut self, id: StructId) -> Ident {
        self.structs.insert(id);
        let name = &self.res.schema.get_struct(id).name;
        names::type_name(name, id.0, !self.shared_names.contains(&names::camel(name)))
    }

    pub fn enum_ident(&mut self, id: EnumId) -> Ident {
        self.enums.insert(id);
        let name = &self.res.schema.get_enum(id).name;
        names::type_name(name, id.0, !self.shared_names.contains(&names::camel(name)))
    }

    /// The storage type and Rust name of field `f` of struct type `ty`.
    pub fn struct_field(&mut self, ty: &Type, f: &str) -> Option<(Type, Ident)> {
        let Type::Struct(id, _) = ty else { return None };
        let def = self.res.schema.get_struct(*id);
        let (i, field) = def.fields.iter().enumerate().find(|(_, x)| x.name == f)?;
        Some((field.ty.clone(), names::field(&field.name, i).0))
    }

    pub fn user_fn(&self, name: &str, module: ModuleId) -> Option<(Ident, Vec<Type>, Type)> {
        self.user_fns.get(&(name.to_string(), module)).cloned()
    }

    /// The Rust type of a Pipe type.
    pub fn rust_type(&mut self, ty: &Type, span: Span) -> TokenStream {
        match ty {
            Type::Bool => quote!(bool),
            Type::Int | Type::Timestamp | Type::Duration => quote!(i64),
            Type::Double => quote!(f64),
            Type::String => quote!(String),
            Type::Binary => quote!(Vec<u8>),
            Type::Date => quote!(i32),
            Type::List(t) | Type::Set(t) => {
                let t = self.rust_type(t, span);
                quote!(Vec<#t>)
            }
            Type::Map(k, v) => {
                if !matches!(k.as_ref(), Type::String | Type::Int | Type::Bool | Type::Enum(..)) {
                    self.unsupported(span, &format!("a map with `{k}` keys cannot be compiled yet"));
                }
                let k = self.rust_type(k, span);
                let v = self.rust_type(v, span);
                quote!(std::collections::BTreeMap<#k, #v>)
            }
            Type::Struct(id, _) => {
                let i = self.struct_ident(*id);
                quote!(#i)
            }
            Type::Enum(id, _) => {
                let i = self.enum_ident(*id);
                quote!(#i)
            }
            Type::Nullable(t) => {
                let t = self.rust_type(t, span);
                quote!(Option<#t>)
            }
            Type::Null | Type::Error => quote!(()),
        }
    }

    /// Resolves a connector path against the pipeline's folder.
    fn path(&self, p: &str) -> String {
        if p.starts_with('/') || self.target.base_dir.is_empty() {
            p.to_string()
        } else {
            format!("{}/{}", self.target.base_dir.trim_end_matches('/'), p)
        }
    }
}

/// An `f64` as a Rust expression, exactly (the shortest text that reads back as the same
/// number), non-finite values included.
pub(crate) fn f64_lit(x: f64) -> TokenStream {
    if x.is_finite() {
        let l = proc_macro2::Literal::f64_suffixed(x);
        quote!(#l)
    } else if x.is_nan() {
        quote!(f64::NAN)
    } else if x > 0.0 {
        quote!(f64::INFINITY)
    } else {
        quote!(f64::NEG_INFINITY)
    }
}

/// The package name of a pipeline's crate.
pub fn crate_name(program: &Program, root: &std::path::Path) -> String {
    let stem = root.file_stem().map_or("pipeline".into(), |s| s.to_string_lossy().into_owned());
    let base = program.namespace.clone().unwrap_or(stem);
    let clean: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    format!("pipe_{}", clean.trim_matches('_'))
}

/// Every connector of the program: the sources' bindings, then the sinks'.
fn connectors(program: &Program) -> impl Iterator<Item = &crate::hir::Connector> {
    program
        .sources
        .iter()
        .flat_map(|s| [&s.batch, &s.stream])
        .flatten()
        .chain(program.sinks.iter().map(|s| &s.connector))
}

/// Whether a connector of the program reads or writes Arrow files.
pub(super) fn uses_arrow(program: &Program) -> bool {
    connectors(program).any(|c| {
        c.args.iter().any(|(n, a)| n == "format" && matches!(a, crate::hir::ConnectorArg::Word(w) if w == "arrow"))
    })
}

/// The items of a pipeline (types, functions, operators, `Program`), shared by the binary
/// crate and the module of an inline pipeline.
fn emit(
    res: &Resolved,
    program: &Program,
    model_tables: &HashMap<String, crate::models::Model>,
    plan: &Plan,
    name: &str,
    target: &Target,
    module: bool,
) -> Result<TokenStream, Vec<Diagnostic>> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for n in res.schema.structs.iter().map(|s| &s.name).chain(res.schema.enums.iter().map(|e| &e.name)) {
        *counts.entry(names::camel(n)).or_default() += 1;
    }
    let shared_names = counts.into_iter().filter(|(_, n)| *n > 1).map(|(k, _)| k).collect();
    let mut g = Gen {
        res,
        program,
        target,
        diags: Vec::new(),
        structs: BTreeSet::new(),
        enums: BTreeSet::new(),
        uses_key: false,
        env_vars: Vec::new(),
        items: Vec::new(),
        user_fns: HashMap::new(),
        models: model_tables,
        emitted_models: BTreeSet::new(),
        extra_fields: Vec::new(),
        block_nodes: Vec::new(),
        block_fns: HashMap::new(),
        shared_names,
        unavailable: Vec::new(),
        module,
        arrow: module || uses_arrow(program),
    };
    let functions = g.functions();
    let body = nodes::pipeline(&mut g, plan, name);
    let types = rows::schema_types(&mut g);
    if !g.diags.is_empty() {
        let mut d = g.diags;
        d.sort_by_key(|d| (d.primary.span.file, d.primary.span.start));
        return Err(d);
    }
    let items = &g.items;
    Ok(quote! {
        #types
        #(#items)*
        #functions
        #body
    })
}

fn pretty(file: &TokenStream) -> String {
    match syn::parse2::<syn::File>(file.clone()) {
        Ok(f) => prettyplease::unparse(&f),
        // A bug in the generator, not in the user's program: keep the raw tokens to debug.
        Err(e) => format!("// pipec generated tokens that do not parse: {e}\n{file}\n"),
    }
}

/// Generates the crate for an optimized plan of a checked program without errors.
pub fn generate(
    res: &Resolved,
    program: &Program,
    model_tables: &HashMap<String, crate::models::Model>,
    plan: &Plan,
    name: &str,
    target: &Target,
) -> Result<Crate, Vec<Diagnostic>> {
    let items = emit(res, program, model_tables, plan, name, target, false)?;
    let file = quote! {
        use pipe_runtime as rt;
        use rt::prelude::*;
        use rt::run::Context;

        #items

        #[global_allocator]
        static ALLOCATOR: rt::Allocator = rt::Allocator;

        fn main() -> std::process::ExitCode {
            rt::engine::main(Program)
        }
    };
    let text = pretty(&file);
    let header = format!(
        "// @generated by pipec {} — do not edit.\n// Pipeline `{}`.\n#![forbid(unsafe_code)]\n// Every subexpression is parenthesized so precedence never depends on the printer.\n#![allow(unused_parens)]\n\n",
        env!("CARGO_PKG_VERSION"),
        program.namespace.as_deref().unwrap_or(name)
    );
    let features = runtime_features(program, &target.features);
    let features = if features.is_empty() {
        String::new()
    } else {
        format!(", features = [{}]", features.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", "))
    };
    let package = if target.id.is_empty() { name.to_string() } else { format!("{name}_{}", target.id) };
    let cargo = format!(
        r#"# @generated by pipec — do not edit.
[package]
name = "{package}"
version = "0.0.0"
edition = "2021"
publish = false

[[bin]]
name = "{package}"
path = "main.rs"

[dependencies]
pipe-runtime = {{ path = "{runtime}"{features} }}

[workspace]

# `pipec build --quick` (the test suite's builds) uses the dev profile: every crate the binary
# links at opt-level 2 but the pipeline's own (0); build scripts and proc macros (serde's and
# clap's derives, syn) keep cargo's `build-override` (opt-level 0): they run once, at build time,
# and compile in a third of the time. 16 codegen units instead of the dev profile's 256: the
# pipeline's crate compiled in 30 s instead of 42 from cold. The dependencies' settings are those
# Pipe's own workspace gives them: a pipeline compiled into its target directory reuses them.
[profile.dev]
opt-level = 2
codegen-units = 16
debug = "line-tables-only"
debug-assertions = false
overflow-checks = false

[profile.dev.package."*"]
codegen-units = 16
debug = false
debug-assertions = false
overflow-checks = false

# `pipec build` and `pipec run`: cargo's release profile (opt-level 3, rustc's thin local LTO
# over each crate's codegen units), the pipeline's own crate compiled incrementally; a profile
# of its own, so that its binary never takes the place of `--release`'s.
[profile.{build_profile}]
inherits = "release"

[profile.{build_profile}.package.{package}]
incremental = true

# Code that runs once per run — parsing the command line, drawing the progress bar — or never on
# our paths (Parquet's decimals): compiled unoptimized in every profile, a sixth of the
# dependencies' build time.
{unoptimized}"#,
        unoptimized = unoptimized_dependencies(),
        build_profile = BUILD_PROFILE,
        runtime = target.runtime_dir.replace('\\', "/"),
    );
    Ok(Crate { name: package, files: vec![("Cargo.toml".into(), cargo), ("main.rs".into(), header + &text)] })
}

/// Dependencies no pipeline runs hot, compiled at opt-level 0 in every profile a pipeline is built
/// with.
const UNOPTIMIZED: [&str; 4] = ["clap_builder", "indicatif", "console", "num-bigint"];

/// The manifest's `[profile.<profile>.package.<crate>]` tables of [`UNOPTIMIZED`].
fn unoptimized_dependencies() -> String {
    let mut out = String::new();
    for profile in ["dev", BUILD_PROFILE, "release"] {
        for krate in UNOPTIMIZED {
            out.push_str(&format!("[profile.{profile}.package.{krate}]\nopt-level = 0\n\n"));
        }
    }
    out.truncate(out.trim_end().len() + 1);
    out
}

/// The runtime features a program's crate enables, in `RUNTIME_FEATURES` order: librdkafka is
/// compiled only for pipelines that read or write Kafka, the PostgreSQL, Redis and object store
/// clients only for those that use them, arrow-rs only for those that read or write Arrow —
/// and every feature `extra` names besides.
pub fn runtime_features(program: &Program, extra: &[String]) -> Vec<&'static str> {
    let uses = |c: &str| connectors(program).any(|k| k.name == c);
    RUNTIME_FEATURES
        .into_iter()
        .filter(|f| if *f == "arrow" { uses_arrow(program) } else { uses(f) } || extra.iter().any(|e| e == f))
        .collect()
}

/// Generates `pub mod <module> { … }` for Rust code that embeds the pipeline (the
/// `pipeline!` macro and the build helper): the row types, `Inputs` and `Outputs`,
/// `run_batch` on rows in memory and `run` with the declared connectors. The crate that
/// includes it depends on `pipe-runtime`.
pub fn generate_module(
    res: &Resolved,
    program: &Program,
    model_tables: &HashMap<String, crate::models::Model>,
    plan: &Plan,
    module: &str,
    target: &Target,
) -> Result<String, Vec<Diagnostic>> {
    let name = format!("pipe_{module}");
    let items = emit(res, program, model_tables, plan, &name, target, true)?;
    let m = Ident::new(module, proc_macro2::Span::call_site());
    let doc = format!(
        " The pipeline `{}`, compiled by pipec {}.",
        program.namespace.as_deref().unwrap_or(module),
        env!("CARGO_PKG_VERSION")
    );
    let file = quote! {
        #[doc = #doc]
        pub mod #m {
            #![forbid(unsafe_code)]
            // Generated code answers to its own tests, not to the lints of the crate it lands in.
            #![allow(unused, nonstandard_style, rust_2018_idioms, missing_docs, missing_debug_implementations, missing_copy_implementations, unreachable_pub, unused_qualifications, unused_results, trivial_casts, trivial_numeric_casts, single_use_lifetimes, clippy::all, clippy::pedantic, clippy::nursery, clippy::restriction)]

            use pipe_runtime as rt;
            use rt::prelude::*;
            use rt::run::Context;

            #items
        }
    };
    Ok(pretty(&file))
}

/// The Rust module name of a program: the last segment of its namespace, else `fallback`.
pub fn module_name(program: &Program, fallback: &str) -> String {
    let base = program.namespace.as_deref().and_then(|n| n.rsplit('.').next()).unwrap_or(fallback);
    let mut clean: String =
        base.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    if !clean.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        clean.insert(0, '_');
    }
    if names::is_keyword(&clean) {
        clean.push('_');
    }
    clean
}

impl Gen<'_> {
    /// One Rust function per user function: parameters by value, `Res` out.
    fn functions(&mut self) -> TokenStream {
        let mut out = Vec::new();
        let program = self.program;
        for (i, f) in program.functions.iter().enumerate() {
            let id = names::ident(&format!("u{i}_"), &f.name);
            self.user_fns.insert(
                (f.name.clone(), f.module),
                (id, f.params.iter().map(|(_, t)| t.clone()).collect(), f.ret.clone()),
            );
        }
        for (i, f) in program.functions.iter().enumerate() {
            let id = names::ident(&format!("u{i}_"), &f.name);
            let mut sc = expr::Scope::default();
            let mut params = Vec::new();
            for (n, t) in &f.params {
                let local = names::local(0, n);
                let ty = self.rust_type(t, f.span);
                params.push(quote!(#local: #ty));
                sc.bind(n, quote!(#local), t.clone());
            }
            let ret = self.rust_type(&f.ret, f.span);
            let mut eg = expr::ExprGen::new(self);
            let body = eg.expr(&f.body, &sc);
            let body = eg.coerce(body, &f.body.ty, &f.ret);
            out.push(quote! {
                #[allow(unused_variables)]
                fn #id(ctx: &Context, #(#params),*) -> Res<#ret> {
                    Ok(#body)
                }
            });
        }
        quote!(#(#out)*)
    }
}
