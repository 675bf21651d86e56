//! `pow(x: i64 | double, y: i64 | double) -> double` — `x` raised to the power `y`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "pow",
    signature: "pow(x: i64 | double, y: i64 | double) -> double",
    doc: "`x` raised to the power `y`.",
    check,
    examples: &[("pow(2, 10)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg(a, 0, sig::numeric, "a number")?;
    sig::arg(a, 1, sig::numeric, "a number")?;
    Ok(Type::Double)
}
