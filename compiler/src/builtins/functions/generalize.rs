//! `generalize(t: timestamp | date, unit: duration) -> same` — a time coarsened to its unit.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "generalize",
    signature: "generalize(t: timestamp | date, unit: duration) -> same",
    doc: "`t` rounded down to a multiple of `unit` since the epoch (UTC): a date of birth to its year-ish bucket, an event to its day. A privacy mask: the result is generalized. A null stays null.",
    check,
    examples: &[("generalize(@2024-05-17T10:30:00Z, 1d)", "timestamp"), ("generalize(date(@2024-05-17), 7d)", "date")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    let (t, nullable) =
        sig::arg_or_null(a, 0, |t| matches!(t, Type::Timestamp | Type::Date | Type::Error), "a timestamp or a date")?;
    sig::arg(a, 1, |t| matches!(t, Type::Duration | Type::Error), "a duration such as `1d`")?;
    Ok(sig::keep_null(t.clone(), nullable))
}
