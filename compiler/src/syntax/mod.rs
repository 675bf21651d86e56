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
