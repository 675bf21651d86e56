//! `to_string(x: T) -> string` — `x` written as text: numbers in their shortest round-trip form, timestamps in RFC 3339.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "to_string",
    signature: "to_string(x: T) -> string",
    doc: "`x` written as text: numbers in their shortest round-trip form, timestamps in RFC 3339.",
    check,
    examples: &[("to_string(42)", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::any, "a value")?;
    Ok(Type::String)
}
