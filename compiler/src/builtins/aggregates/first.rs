//! `first(x: T?) -> T?` — The value of `x` on the row with the earliest event time in the group (ties: the first to arrive).

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "first",
    signature: "first(x: T?) -> T?",
    doc: "The value of `x` on the row with the earliest event time in the group (ties: the first to arrive).",
    needs_event_time: true,
    check,
    examples: &[("first(amount)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    Ok(a[0].clone().nullable())
}
