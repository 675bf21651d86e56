//! `truncate(s: string, keep: i64) -> string` — The first `keep` characters of `s` (a ZIP code to its prefix, say). A null stays null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "truncate",
    signature: "truncate(s: string, keep: i64) -> string",
    doc: "The first `keep` characters of `s` (a ZIP code to its prefix, say). A null stays null.",
    check,
    examples: &[("truncate(\"94107\", 3)", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    let (_, nullable) = sig::arg_or_null(a, 0, sig::string, "a string")?;
    sig::arg(a, 1, sig::int, "a whole number")?;
    Ok(sig::keep_null(Type::String, nullable))
}
