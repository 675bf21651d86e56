//! `date(ts: timestamp) -> date` — The UTC calendar day of `ts`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "date",
    signature: "date(ts: timestamp) -> date",
    doc: "The UTC calendar day of `ts`.",
    check,
    examples: &[("date(@2024-01-31T10:00:00Z)", "date")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::timestamp, "a timestamp")?;
    Ok(Type::Date)
}
