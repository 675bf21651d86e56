//! `bucket(x: i64 | double, width: i64 | double) -> double` — `x` generalized to the lower edge of its bucket: `floor(x / width) * width`. A null stays null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "bucket",
    signature: "bucket(x: i64 | double, width: i64 | double) -> double",
    doc: "`x` generalized to the lower edge of its bucket: `floor(x / width) * width`. A null stays null.",
    check,
    examples: &[("bucket(52300.0, 10000)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    let (_, nullable) = sig::arg_or_null(a, 0, sig::numeric, "a number")?;
    sig::arg(a, 1, sig::numeric, "a number")?;
    Ok(sig::keep_null(Type::Double, nullable))
}
