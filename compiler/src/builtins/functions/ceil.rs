//! `ceil(x: i64 | double) -> double` — The smallest whole number not less than `x`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "ceil",
    signature: "ceil(x: i64 | double) -> double",
    doc: "The smallest whole number not less than `x`.",
    check,
    examples: &[("ceil(2.1)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::numeric, "a number")?;
    Ok(Type::Double)
}
