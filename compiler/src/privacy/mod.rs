//! Privacy, checked at compile time: labels from Thrift annotations (`annotations.rs`), a
//! taxonomy of categories and data uses (`taxonomy.rs`), labels with forms and paths
//! (`label.rs`), and their propagation to the sinks (`flow.rs`).

pub mod annotations;
pub mod flow;
pub mod label;
pub mod taxonomy;

use crate::diagnostics::Diagnostic;
use crate::hir::Program;
use crate::resolve::Resolved;

pub use flow::Outcome;
pub use taxonomy::Taxonomy;

/// Runs the privacy analysis of a checked program.
pub fn analyze(res: &Resolved, program: &Program, taxonomy: &Taxonomy) -> (Outcome, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let labels = annotations::collect(res, taxonomy, &mut diags);
    let (outcome, mut more) = flow::Flow::new(res, program, &labels, taxonomy).run(taxonomy);
    diags.append(&mut more);
    (outcome, diags)
}
