//! `exp(x: i64 | double) -> double` — e raised to the power `x`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "exp",
    signature: "exp(x: i64 | double) -> double",
    doc: "e raised to the power `x`.",
    check,
    examples: &[("exp(0)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::numeric, "a number")?;
    Ok(Type::Double)
}
