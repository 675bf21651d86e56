//! The Pipe compiler library.
pub mod diagnostics;
pub mod source;
pub mod syntax;
