//! `lower(s: string) -> string` — `s` in lower case (Unicode).

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "lower",
    signature: "lower(s: string) -> string",
    doc: "`s` in lower case (Unicode).",
    check,
    examples: &[("lower(\"AbC\")", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::string, "a string")?;
    Ok(Type::String)
}
