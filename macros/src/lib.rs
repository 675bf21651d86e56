//! The `pipeline! { … }` proc-macro: Pipe programs inline in Rust, checked by the same compiler
//! library as `pipec`, with diagnostics as spanned compile errors. The macro arrives with the
//! inline-pipelines work; this crate reserves its place in the workspace so the layout users
//! see is stable from the start.
