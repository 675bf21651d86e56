//! `year(t: timestamp | date) -> i64` — The UTC year of `t`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "year",
    signature: "year(t: timestamp | date) -> i64",
    doc: "The UTC year of `t`.",
    check,
    examples: &[("year(@2024-01-31)", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, |t| matches!(t, Type::Timestamp | Type::Date), "a timestamp or a date")?;
    Ok(Type::Int)
}
