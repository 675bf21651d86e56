//! `starts_with(s: string, prefix: string) -> bool` — Whether `s` begins with `prefix`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "starts_with",
    signature: "starts_with(s: string, prefix: string) -> bool",
    doc: "Whether `s` begins with `prefix`.",
    check,
    examples: &[("starts_with(\"abc\", \"a\")", "bool")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg(a, 0, sig::string, "a string")?;
    sig::arg(a, 1, sig::string, "a string")?;
    Ok(Type::Bool)
}
