//! Pipe's integration tests, one binary: case files, the language reference's code blocks,
//! the examples, and property tests of the front end.

mod canary;
mod cases;
mod cluster;
mod codegen;
mod evaluate;
mod examples;
mod explain;
mod feature_store;
mod fmt;
mod json_fast;
mod kafka;
mod object_store;
mod privacy;
mod props;
mod reliability;
mod run;
mod spec;
mod stream;
mod tidy;
mod transforms;
mod validation;
