//! `count_distinct(x: T?) -> i64` — The number of distinct non-null values of `x` in the group.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "count_distinct",
    signature: "count_distinct(x: T?) -> i64",
    doc: "The number of distinct non-null values of `x` in the group.",
    needs_event_time: false,
    check,
    examples: &[("count_distinct(member)", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    Ok(Type::Int)
}
