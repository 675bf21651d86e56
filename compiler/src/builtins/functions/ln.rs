//! `ln(x: i64 | double) -> double` — The natural logarithm of `x`; `x <= 0` sends the record to `rejected`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "ln",
    signature: "ln(x: i64 | double) -> double",
    doc: "The natural logarithm of `x`; `x <= 0` sends the record to `rejected`.",
    check,
    examples: &[("ln(1.0)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::numeric, "a number")?;
    Ok(Type::Double)
}
