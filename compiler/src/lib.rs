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
//! [`graph`] draws a checked program (`pipec graph`). [`check_program`] runs them all. The core reads files only through a [`source::Loader`].

pub mod builtins;
pub mod check;
pub mod codegen;
pub mod diagnostics;
pub mod driver;
pub mod fit;
pub mod format;
pub mod fs_loader;
pub mod graph;
pub mod hir;
pub mod ir;
pub mod lsp;
pub mod models;
pub mod optimize;
pub mod privacy;
pub mod profile;
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
    /// The project taxonomy (`pipe-taxonomy.toml`) that extended the built-in one, if any.
    pub taxonomy_file: Option<std::path::PathBuf>,
    /// The taxonomy the privacy analysis used: the built-in one with the project's extension.
    pub taxonomy: privacy::Taxonomy,
    /// The calls of fitted transforms (`fit.rs`), bound to their parameters where they have them.
    pub fit_sites: Vec<fit::Site>,
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
    /// `pipec fit`: transforms without fitted parameters are not errors (they are being fitted).
    pub fitting: bool,
    /// `pipec profile`: `drift` without a baseline is not an error (it is being written).
    pub profiling: bool,
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
    // A project's taxonomy extension: the nearest `pipe-taxonomy.toml` from the root
    // pipeline's folder upward, whatever folders the files it includes sit in.
    let mut taxonomy = privacy::Taxonomy::default();
    let mut taxonomy_file = None;
    if let Some((path, text)) = find_taxonomy(loader, root) {
        let file = resolved.sources.add(path.clone(), text);
        let text = resolved.sources.get(file).text.clone();
        taxonomy.extend(file, &text, &mut diags);
        taxonomy_file = Some(path);
    }
    let (mut outcome, mut privacy_diags) = privacy::analyze(&resolved, &program, &taxonomy);
    // `protect for` masks change row types: check again with the masks the analysis chose.
    if outcome.plans.values().any(|p| !p.is_empty()) {
        (program, checker_diags) = check::check_with(&resolved, &outcome.plans);
        (outcome, privacy_diags) = privacy::analyze(&resolved, &program, &taxonomy);
    }
    program.private_counts = outcome.private_counts.clone();
    diags.append(&mut checker_diags);
    // Which taxonomy decided, where the answer depends on it.
    let used = match &taxonomy_file {
        Some(p) => format!("taxonomy: the built-in one, extended by {}", p.display()),
        None => format!(
            "taxonomy: the built-in one (no {} in the root pipeline's folder or above)",
            privacy::taxonomy::FILE_NAME
        ),
    };
    for d in &mut privacy_diags {
        if matches!(d.code, diagnostics::Code::P001 | diagnostics::Code::P002) {
            d.notes.push(used.clone());
        }
    }
    diags.append(&mut privacy_diags);
    let artifact = fit::artifact_path(root);
    // `pipec fit` fits every transform again, whatever the file holds.
    let text = if options.fitting { None } else { loader.load(&artifact).ok() };
    let command = format!("pipec fit {}", root.display());
    let fit_sites = fit::bind(&mut program, &artifact, text.as_deref(), options.fitting, &command, &mut diags);
    diags.extend(fit::privacy(&resolved, &program, &fit_sites, &taxonomy));
    let baseline = profile::artifact_path(root);
    let text = if options.profiling { None } else { loader.load(&baseline).ok() };
    let command = format!("pipec profile {}", root.display());
    profile::bind(&mut program, &baseline, text.as_deref(), options.profiling, &command, &mut diags);
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
    Ok(Checked { resolved, program, models, privacy: outcome, taxonomy_file, taxonomy, fit_sites, diagnostics: diags })
}

/// The nearest `pipe-taxonomy.toml` from the folder of `root` upward: through the folders of a
/// relative path, then `..`, `../..`, … (a loader of files resolves them; one of memory has
/// none there).
fn find_taxonomy(loader: &dyn Loader, root: &Path) -> Option<(std::path::PathBuf, String)> {
    let root = source::normalize(root);
    let dir = root.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut dirs: Vec<std::path::PathBuf> = dir.ancestors().map(Path::to_path_buf).collect();
    if dir.is_relative() && !dir.starts_with("..") {
        let mut up = std::path::PathBuf::new();
        for _ in 0..64 {
            up.push("..");
            dirs.push(up.clone());
        }
    }
    dirs.into_iter().find_map(|d| {
        let path = d.join(privacy::taxonomy::FILE_NAME);
        loader.load(&path).ok().map(|text| (path, text))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str =
        "struct S {\n  1: required string id (tag = \"id\")\n  2: optional string note (pii = \"acme.notes\")\n}\n";
    const PIPE: &str = "include \"../s.thrift\"\nsource s: S { batch = files(\"x\") }\ns -> stdout()\n";

    fn notes(loader: &source::MemoryLoader) -> Vec<String> {
        let checked = check_program(loader, Path::new("proj/jobs/main.pipe")).expect("loads");
        checked.diagnostics.iter().filter(|d| d.code == diagnostics::Code::P001).flat_map(|d| d.notes.clone()).collect()
    }

    #[test]
    fn the_nearest_taxonomy_above_the_root_pipeline_is_used_and_named() {
        let none = source::MemoryLoader::new().with("proj/s.thrift", SCHEMA).with("proj/jobs/main.pipe", PIPE);
        assert!(
            notes(&none).iter().any(|n| n.contains("the built-in one (no pipe-taxonomy.toml")),
            "{:?}",
            notes(&none)
        );

        let above = "[categories]\n\"acme.notes\" = \"Notes.\"\n";
        let found = source::MemoryLoader::new()
            .with("proj/s.thrift", SCHEMA)
            .with("proj/jobs/main.pipe", PIPE)
            .with("proj/pipe-taxonomy.toml", above);
        let checked = check_program(&found, Path::new("proj/jobs/main.pipe")).expect("loads");
        assert_eq!(checked.taxonomy_file, Some(std::path::PathBuf::from("proj/pipe-taxonomy.toml")));
        assert!(!checked.diagnostics.iter().any(|d| d.code == diagnostics::Code::P001), "{:?}", checked.diagnostics);

        // A nearer file wins, and only it is read: the category is unknown again, and the
        // note says which file decided.
        let nearer = source::MemoryLoader::new()
            .with("proj/s.thrift", SCHEMA)
            .with("proj/jobs/main.pipe", PIPE)
            .with("proj/pipe-taxonomy.toml", above)
            .with("proj/jobs/pipe-taxonomy.toml", "[uses]\n\"acme.ops\" = \"Operations.\"\n");
        let n = notes(&nearer);
        assert!(n.iter().any(|n| n.contains("extended by proj/jobs/pipe-taxonomy.toml")), "{n:?}");
    }
}
