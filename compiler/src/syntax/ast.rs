//! Syntax pieces shared by the Pipe and Thrift trees.

use crate::source::Span;

/// A name as written, with its span. Thrift identifiers may be dotted (`a.b.c`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// A string literal's value (escapes applied) and the span of the whole literal.
#[derive(Debug, Clone, PartialEq)]
pub struct StrLit {
    pub value: String,
    pub span: Span,
}
