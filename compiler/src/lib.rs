//! The Pipe compiler library: `.pipe` programs and Thrift schemas in, a typed program and
//! diagnostics out. The stages, each with its own entry point:
//!
//! | stage | entry point | output |
//! |---|---|---|
//! | syntax | [`syntax::parse_pipe`], [`syntax::parse_thrift`] | [`syntax::pipe_ast::PipeFile`], [`syntax::thrift_ast::ThriftFile`] |
//! | resolve | [`resolve::resolve`] | [`resolve::Resolved`] (module graph, schema) |
//! | check | [`check::check`] | [`hir::Program`] (typed HIR) |
//! | privacy | [`privacy::analyze`] | [`privacy::Outcome`] (labels per sink column, violations) |
//! | lower | [`ir::lower`] | [`ir::Plan`] (operator DAG with row schemas) |
//! | optimize | [`optimize::optimize`] | [`ir::Plan`], optimized |
//! | codegen | [`codegen::generate`] | [`codegen::Crate`] (a cargo crate) |
//!
//! [`check_program`] runs them all. The core reads files only through a [`source::Loader`].

pub mod builtins;
pub mod check;
pub mod codegen;
pub mod diagnostics;
pub mod driver;
pub mod fs_loader;
pub mod hir;
pub mod ir;
pub mod models;
pub mod optimize;
pub mod privacy;
pub mod resolve;
pub mod source;
pub mod syntax;
pub mod types;

use std::path::Path;

use diagnostics::Diagnostic;
use resolve::Resolved;
use source::{LoadError, Loader};

/// The result of checking a program: its files, the typed program, the privacy analysis, and
/// every diagnostic (sorted by file and position).
#[derive(Debug)]
pub struct Checked {
    pub resolved: Resolved,
    pub program: hir::Program,
    /// The models the program declares, read and checked against its `score` steps.
    pub models: std::collections::HashMap<String, models::Model>,
    pub privacy: privacy::Outcome,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// How strictly to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Privacy warnings (unlabeled fields of personal structs, implicit flows) become errors.
    pub strict: bool,
}

/// Parses, resolves and checks the program whose root file is `root`. Fails only when the
/// root file cannot be read.
pub fn check_program(loader: &dyn Loader, root: &Path) -> Result<Checked, LoadError> {
    check_program_with(loader, root, Options::default())
}

/// [`check_program`] with options.
pub fn check_program_with(loader: &dyn Loader, root: &Path, options: Options) -> Result<Checked, LoadError> {
    let mut diags = Vec::new();
    let mut resolved = resolve::resolve(loader, root, &mut diags)?;
    let (mut program, mut checker_diags) = check::check(&resolved);
    // A project's taxonomy extension lives beside its root pipeline.
    let mut taxonomy = privacy::Taxonomy::default();
    let taxonomy_path = source::relative_to(&source::normalize(root), privacy::taxonomy::FILE_NAME);
    if let Ok(text) = loader.load(&taxonomy_path) {
        let file = resolved.sources.add(taxonomy_path, text);
        let text = resolved.sources.get(file).text.clone();
        taxonomy.extend(file, &text, &mut diags);
    }
    let (mut outcome, mut privacy_diags) = privacy::analyze(&resolved, &program, &taxonomy);
    // `protect for` masks change row types: check again with the masks the analysis chose.
    if outcome.plans.values().any(|p| !p.is_empty()) {
        (program, checker_diags) = check::check_with(&resolved, &outcome.plans);
        (outcome, privacy_diags) = privacy::analyze(&resolved, &program, &taxonomy);
    }
    diags.append(&mut checker_diags);
    diags.append(&mut privacy_diags);
    let models = models::load_and_check(loader, &resolved, &program, &mut diags);
    if options.strict {
        for d in &mut diags {
            if d.code.strict_error() {
                d.severity = diagnostics::Severity::Error;
            }
        }
    }
    diags.sort_by_key(|d| (d.primary.span.file, d.primary.span.start, d.code));
    diags.dedup();
    Ok(Checked { resolved, program, models, privacy: outcome, diagnostics: diags })
}

/// Lowers, optimizes and generates `pub mod <module> { … }` for a checked program without
/// errors: the typed in-memory API the `pipeline!` macro and the build helper expand to.
/// Constructs the generator cannot compile yet are added to `checked.diagnostics` (`E3001`).
pub fn generate_module(checked: &mut Checked, module: &str, target: &codegen::Target) -> Option<String> {
    if checked.has_errors() {
        return None;
    }
    let plan = optimize::optimize(ir::lower(&checked.program));
    match codegen::generate_module(&checked.resolved, &checked.program, &checked.models, &plan, module, target) {
        Ok(text) => Some(text),
        Err(mut diags) => {
            checked.diagnostics.append(&mut diags);
            None
        }
    }
}

/// Lowers, optimizes and generates the crate of a checked program without errors. Constructs
/// the generator cannot compile yet are added to `checked.diagnostics` (`E3001`) and give `None`.
pub fn generate(checked: &mut Checked, root: &Path, target: &codegen::Target) -> Option<codegen::Crate> {
    if checked.has_errors() {
        return None;
    }
    let plan = optimize::optimize(ir::lower(&checked.program));
    let name = codegen::crate_name(&checked.program, root);
    match codegen::generate(&checked.resolved, &checked.program, &checked.models, &plan, &name, target) {
        Ok(c) => Some(c),
        Err(mut diags) => {
            checked.diagnostics.append(&mut diags);
            None
        }
    }
}
