//! `accuracy(score: i64? | double?, label: bool?, threshold: double) -> double?` — The share of rows whose prediction (positive when `score` is above `threshold`, a number written in the program) equals `label`. Null for a group without rows.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "accuracy",
    signature: "accuracy(score: i64? | double?, label: bool?, threshold: double) -> double?",
    doc: "The share of rows whose prediction (positive when `score` is above `threshold`, a number written in the program) equals `label`. Null for a group without rows.",
    needs_event_time: false,
    check,
    examples: &[("accuracy((amount ?? 0.0) / 1000.0, amount > 100.0, 0.5)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 3, 3, "3")?;
    sig::arg_or_null(a, 0, sig::numeric, "a number (the score)")?;
    sig::arg_or_null(a, 1, sig::boolean, "a bool (the label)")?;
    sig::arg(a, 2, sig::numeric, "a number (the threshold)")?;
    Ok(Type::Double.nullable())
}
