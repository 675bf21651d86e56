//! Text to syntax trees. One lexer, two grammars: `.pipe` programs and Thrift IDL schemas.
//! Parsing never fails: it always returns a tree, with diagnostics for what it had to skip.

pub mod ast;
pub mod cursor;
pub mod lexer;
pub mod literals;
pub mod pipe_ast;
pub mod pipe_parser;
pub mod thrift_ast;
pub mod thrift_parser;

pub use pipe_parser::parse_pipe;
pub use thrift_parser::parse_thrift;

/// Every word the `.pipe` grammar gives a meaning to, in some position: items, steps,
/// properties and expressions. Words are not reserved tokens (see `lexer.rs`); with
/// [`THRIFT_WORDS`] this list lets the language reference's grammar be checked against the
/// parsers, and it is what the language server completes as keywords.
pub const PIPE_WORDS: &[&str] = &[
    "namespace",
    "include",
    "import",
    "source",
    "fn",
    "stream",
    "model",
    "sink",
    "select",
    "where",
    "derive",
    "explode",
    "window",
    "group",
    "aggregate",
    "score",
    "protect",
    "union",
    "join",
    "metrics",
    "require",
    "expect",
    "warn",
    "left",
    "asof",
    "on",
    "within",
    "order",
    "as",
    "by",
    "for",
    "k",
    "late",
    "fit",
    "drop",
    "to",
    "allow",
    "purpose",
    "if",
    "then",
    "else",
    "null",
    "true",
    "false",
    "and",
    "or",
    "not",
];

/// Every word the Thrift grammar gives a meaning to.
pub const THRIFT_WORDS: &[&str] = &[
    "namespace",
    "include",
    "cpp_include",
    "const",
    "typedef",
    "enum",
    "senum",
    "struct",
    "union",
    "exception",
    "service",
    "extends",
    "required",
    "optional",
    "list",
    "set",
    "map",
    "cpp_type",
    "xsd_all",
    "xsd_optional",
    "xsd_nillable",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_a_parser_matches_is_listed() {
        let pipe = pipe_parser::ITEM_WORDS.iter().chain(pipe_parser::OP_WORDS).chain(pipe_parser::RESERVED);
        for w in pipe {
            assert!(PIPE_WORDS.contains(w), "`{w}` is missing from syntax::PIPE_WORDS");
        }
        for w in thrift_parser::DEFINITION_WORDS {
            assert!(THRIFT_WORDS.contains(w), "`{w}` is missing from syntax::THRIFT_WORDS");
        }
    }
}
