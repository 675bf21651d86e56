//! `last(x: T?) -> T?` — The value of `x` on the row with the latest event time in the group (ties: the last to arrive).

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "last",
    signature: "last(x: T?) -> T?",
    doc: "The value of `x` on the row with the latest event time in the group (ties: the last to arrive).",
    needs_event_time: true,
    check,
    examples: &[("last(amount)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    Ok(a[0].clone().nullable())
}
