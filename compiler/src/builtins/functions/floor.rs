//! `floor(x: i64 | double) -> double` — The largest whole number not greater than `x`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "floor",
    signature: "floor(x: i64 | double) -> double",
    doc: "The largest whole number not greater than `x`.",
    check,
    examples: &[("floor(2.7)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::numeric, "a number")?;
    Ok(Type::Double)
}
