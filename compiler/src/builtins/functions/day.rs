//! `day(t: timestamp | date) -> i64` — The UTC day of the month of `t`, 1 to 31.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "day",
    signature: "day(t: timestamp | date) -> i64",
    doc: "The UTC day of the month of `t`, 1 to 31.",
    check,
    examples: &[("day(@2024-01-31)", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, |t| matches!(t, Type::Timestamp | Type::Date), "a timestamp or a date")?;
    Ok(Type::Int)
}
