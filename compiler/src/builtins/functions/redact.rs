//! `redact(x: T) -> string` — The fixed text `"[REDACTED]"` in place of `x`. A null stays null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "redact",
    signature: "redact(x: T) -> string",
    doc: "The fixed text `\"[REDACTED]\"` in place of `x`. A null stays null.",
    check,
    examples: &[("redact(\"123-45-6789\")", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    let (_, nullable) = sig::arg_or_null(a, 0, sig::any, "a value")?;
    Ok(sig::keep_null(Type::String, nullable))
}
