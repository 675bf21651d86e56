//! The Pipe compiler library: `.pipe` programs and Thrift schemas in, a typed program and
//! diagnostics out. The stages, each with its own entry point:
//!
//! | stage | entry point | output |
//! |---|---|---|
//! | syntax | [`syntax::parse_pipe`], [`syntax::parse_thrift`] | [`syntax::pipe_ast::PipeFile`], [`syntax::thrift_ast::ThriftFile`] |
//! | resolve | [`resolve::resolve`] | [`resolve::Resolved`] (module graph, schema) |
//! | check | [`check::check`] | [`hir::Program`] (typed HIR) |
//!
//! [`check_program`] runs them all. The core reads files only through a [`source::Loader`].

pub mod builtins;
pub mod check;
pub mod diagnostics;
pub mod fs_loader;
pub mod hir;
pub mod resolve;
pub mod source;
pub mod syntax;
pub mod types;

use std::path::Path;

use diagnostics::Diagnostic;
use resolve::Resolved;
use source::{LoadError, Loader};

/// The result of checking a program: its files, the typed program, and every diagnostic
/// (sorted by file and position).
#[derive(Debug)]
pub struct Checked {
    pub resolved: Resolved,
    pub program: hir::Program,
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Parses, resolves and checks the program whose root file is `root`. Fails only when the
/// root file cannot be read.
pub fn check_program(loader: &dyn Loader, root: &Path) -> Result<Checked, LoadError> {
    let mut diags = Vec::new();
    let resolved = resolve::resolve(loader, root, &mut diags)?;
    let (program, mut more) = check::check(&resolved);
    diags.append(&mut more);
    diags.sort_by_key(|d| (d.primary.span.file, d.primary.span.start, d.code));
    diags.dedup();
    Ok(Checked { resolved, program, diagnostics: diags })
}
