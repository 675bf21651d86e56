//! `sqrt(x: i64 | double) -> double` — The square root of `x`; a negative `x` sends the record to `rejected`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "sqrt",
    signature: "sqrt(x: i64 | double) -> double",
    doc: "The square root of `x`; a negative `x` sends the record to `rejected`.",
    check,
    examples: &[("sqrt(16)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::numeric, "a number")?;
    Ok(Type::Double)
}
