//! Compiles `.pipe` files at build time, in the style of `prost-build`: each pipeline becomes a
//! Rust module (its typed rows, `Inputs`, `Outputs`, `run_batch`, `run`) written to `OUT_DIR`
//! and included with [`include!`], so a crate keeps its pipelines as files and still gets typed
//! APIs checked by the same compiler as `pipec`.
//!
//! ```no_run
//! // build.rs
//! fn main() -> Result<(), pipe_build::Error> {
//!     pipe_build::compile(&["pipelines/loans.pipe"])
//! }
//! ```
//!
//! ```ignore
//! // src/main.rs: the module is named after the program's namespace (its last segment), else
//! // after the file.
//! pipe_runtime::include_pipeline!("loans");
//! let out = loans::run_batch(loans::Inputs { /* … */ })?;
//! ```
//!
//! Paths are relative to the crate's manifest directory (where cargo runs build scripts);
//! relative connector paths inside a pipeline, as with `pipec`, to the pipeline's folder.
//! Every file a pipeline reads (the `.pipe` file, included schemas, models, the taxonomy) is
//! reported with `cargo:rerun-if-changed`, so an edit rebuilds the crate. Errors fail the build
//! with the diagnostics `pipec check` prints; warnings are shown as `cargo:warning` lines.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use pipec::diagnostics::{render, Severity};
use pipec::fs_loader::FsLoader;
use pipec::source::{LoadError, Loader};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline has errors: the rendered diagnostics, as `pipec check` shows them.
    #[error("pipeline `{path}` has errors:\n{report}")]
    Program { path: PathBuf, report: String },
    #[error("cannot read `{path}`: {why}")]
    Load { path: PathBuf, why: LoadError },
    #[error("two pipelines compile to module `{module}`: `{first}` and `{second}`; give one a different namespace")]
    SameModule { module: String, first: PathBuf, second: PathBuf },
    #[error("OUT_DIR is not set: call pipe_build from a build script, or set Config::out_dir")]
    NoOutDir,
    #[error("cannot write `{path}`: {why}")]
    Write { path: PathBuf, why: std::io::Error },
}

/// How to compile.
#[derive(Debug, Clone, Default)]
pub struct Config {
    out_dir: Option<PathBuf>,
    strict: bool,
    quiet: bool,
}

/// What one pipeline compiled to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    /// The `.pipe` file.
    pub pipeline: PathBuf,
    /// The module name (`<out_dir>/<module>.rs` holds `pub mod <module> { … }`).
    pub module: String,
    /// The generated file.
    pub file: PathBuf,
    /// Every file the pipeline read.
    pub inputs: Vec<PathBuf>,
}

impl Config {
    pub fn new() -> Config {
        Config::default()
    }

    /// Where the modules go (default: `OUT_DIR`).
    pub fn out_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Config {
        self.out_dir = Some(dir.into());
        self
    }

    /// Privacy warnings (unlabeled fields of personal structs, implicit flows) become errors,
    /// as `pipec check --strict`.
    pub fn strict(&mut self, strict: bool) -> &mut Config {
        self.strict = strict;
        self
    }

    /// Prints no `cargo:` lines (for use outside a build script).
    pub fn quiet(&mut self, quiet: bool) -> &mut Config {
        self.quiet = quiet;
        self
    }

    /// Compiles every pipeline into `<out_dir>/<module>.rs`. Stops at the first pipeline with
    /// errors; files are rewritten only when their text changes.
    pub fn compile(&self, pipelines: &[impl AsRef<Path>]) -> Result<Vec<Compiled>, Error> {
        let out_dir = match &self.out_dir {
            Some(d) => d.clone(),
            None => std::env::var_os("OUT_DIR").map(PathBuf::from).ok_or(Error::NoOutDir)?,
        };
        let mut done: Vec<Compiled> = Vec::new();
        for p in pipelines {
            let compiled = self.compile_one(p.as_ref(), &out_dir)?;
            if let Some(first) = done.iter().find(|c| c.module == compiled.module) {
                return Err(Error::SameModule {
                    module: compiled.module,
                    first: first.pipeline.clone(),
                    second: compiled.pipeline,
                });
            }
            done.push(compiled);
        }
        Ok(done)
    }

    /// A `cargo:` instruction: build scripts talk to cargo on stdout.
    #[allow(clippy::print_stdout, reason = "cargo reads build-script instructions from stdout")]
    fn cargo(&self, line: &str) {
        if !self.quiet {
            println!("cargo:{line}");
        }
    }

    fn compile_one(&self, path: &Path, out_dir: &Path) -> Result<Compiled, Error> {
        let loader = Recording { inner: FsLoader::new("."), seen: RefCell::new(Vec::new()) };
        let result =
            pipec::check_program_with(&loader, path, pipec::Options { strict: self.strict, ..Default::default() });
        // Rerun when any file the pipeline read changes.
        let inputs = loader.seen.into_inner();
        for f in &inputs {
            self.cargo(&format!("rerun-if-changed={}", f.display()));
        }
        let mut checked = result.map_err(|why| Error::Load { path: path.to_path_buf(), why })?;
        let stem = path.file_stem().map_or("pipeline".into(), |s| s.to_string_lossy().into_owned());
        let module = pipec::codegen::module_name(&checked.program, &stem);
        let base_dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base_dir = std::fs::canonicalize(base_dir).unwrap_or_else(|_| base_dir.to_path_buf());
        let target = pipec::codegen::Target {
            runtime_dir: String::new(),
            base_dir: base_dir.display().to_string(),
            id: String::new(),
            features: Vec::new(),
        };
        let code = pipec::generate_module(&mut checked, &module, &target);
        let map = &checked.resolved.sources;
        let warnings: Vec<_> =
            checked.diagnostics.iter().filter(|d| d.severity == Severity::Warning).cloned().collect();
        for line in render::human(map, &warnings, false).lines() {
            self.cargo(&format!("warning={line}"));
        }
        let Some(code) = code.filter(|_| !checked.has_errors()) else {
            let errors: Vec<_> = checked.diagnostics.iter().filter(|d| d.is_error()).cloned().collect();
            return Err(Error::Program { path: path.to_path_buf(), report: render::human(map, &errors, false) });
        };
        let file = out_dir.join(format!("{module}.rs"));
        let text = format!("// @generated by pipe-build from `{}` — do not edit.\n{code}", path.display());
        if std::fs::read_to_string(&file).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&file, text).map_err(|why| Error::Write { path: file.clone(), why })?;
        }
        Ok(Compiled { pipeline: path.to_path_buf(), module, file, inputs })
    }
}

/// Compiles pipelines into `OUT_DIR` with the default configuration.
pub fn compile(pipelines: &[impl AsRef<Path>]) -> Result<(), Error> {
    Config::new().compile(pipelines).map(|_| ())
}

/// A loader that remembers every file it read. (A file looked for and not found is not
/// reported: cargo would rerun the build script on every build for it.)
struct Recording {
    inner: FsLoader,
    seen: RefCell<Vec<PathBuf>>,
}

impl Loader for Recording {
    fn load(&self, path: &Path) -> Result<String, LoadError> {
        let text = self.inner.load(path)?;
        self.seen.borrow_mut().push(path.to_path_buf());
        Ok(text)
    }
}
