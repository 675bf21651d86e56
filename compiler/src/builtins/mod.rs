//! The standard library: builtin functions and aggregates (one file each, listed in the
//! registries `functions::ALL` and `aggregates::ALL`) and the connectors sources and sinks use.

pub mod aggregates;
pub mod connectors;
pub mod functions;
pub mod sig;

use std::fmt;

use crate::types::Type;
pub use sig::SigError;

/// A builtin scalar function.
pub struct Function {
    pub name: &'static str,
    /// The signature as the language reference shows it.
    pub signature: &'static str,
    pub doc: &'static str,
    /// The type rule: the result type for these argument types, or why they do not fit.
    pub check: fn(&[Type]) -> Result<Type, SigError>,
    /// Expressions and the type each has; a test checks every one with the real checker.
    pub examples: &'static [(&'static str, &'static str)],
}

/// A builtin aggregate: create/add/merge/finish state over the rows of a group.
pub struct Aggregate {
    pub name: &'static str,
    pub signature: &'static str,
    pub doc: &'static str,
    /// `first`/`last` order rows by event time, so the stream must have one.
    pub needs_event_time: bool,
    pub check: fn(&[Type]) -> Result<Type, SigError>,
    pub examples: &'static [(&'static str, &'static str)],
}

impl fmt::Debug for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.signature)
    }
}

impl fmt::Debug for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.signature)
    }
}

pub fn function(name: &str) -> Option<&'static Function> {
    functions::ALL.iter().copied().find(|f| f.name == name)
}

pub fn aggregate(name: &str) -> Option<&'static Aggregate> {
    aggregates::ALL.iter().copied().find(|f| f.name == name)
}

/// Window functions, only valid after `| window`.
pub const WINDOWS: &[&str] = &["tumbling", "sliding", "session"];

/// Model formats, only valid in `model name = …`.
pub const MODEL_LOADERS: &[&str] = &["lightgbm", "xgboost", "linear"];
