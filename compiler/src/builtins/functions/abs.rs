//! `abs(x: i64 | double) -> same` — The absolute value of `x`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "abs",
    signature: "abs(x: i64 | double) -> same",
    doc: "The absolute value of `x`.",
    check,
    examples: &[("abs(-3)", "i64"), ("abs(-2.5)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    Ok(sig::arg(a, 0, sig::numeric, "a number")?.clone())
}
