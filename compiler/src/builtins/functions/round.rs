//! `round(x: i64 | double, digits: i64 = 0) -> double` — `x` rounded half away from zero to `digits` decimal places.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "round",
    signature: "round(x: i64 | double, digits: i64 = 0) -> double",
    doc: "`x` rounded half away from zero to `digits` decimal places.",
    check,
    examples: &[("round(2.345, 2)", "double"), ("round(7)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 2, "1 or 2")?;
    sig::arg(a, 0, sig::numeric, "a number")?;
    if a.len() == 2 {
        sig::arg(a, 1, sig::int, "a whole number of digits")?;
    }
    Ok(Type::Double)
}
