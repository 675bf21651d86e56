//! `count() | count(x: T?) -> i64` — The number of rows in the group, or of rows where `x` is not null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "count",
    signature: "count() | count(x: T?) -> i64",
    doc: "The number of rows in the group, or of rows where `x` is not null.",
    needs_event_time: false,
    check,
    examples: &[("count()", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 0, 1, "0 or 1")?;
    Ok(Type::Int)
}
