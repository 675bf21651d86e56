//! `avg(x: i64? | double? | bool?) -> double?` — The mean of the non-null values of `x` (a bool counts 1 when true: `avg(b)` is the share of rows where `b`); null for a group with none.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "avg",
    signature: "avg(x: i64? | double? | bool?) -> double?",
    doc: "The mean of the non-null values of `x` (a bool counts 1 when true: `avg(b)` is the share of rows where `b`); null for a group with none.",
    needs_event_time: false,
    check,
    examples: &[("avg(amount)", "double?"), ("avg(amount > 100.0)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg_or_null(a, 0, |t| sig::numeric(t) || sig::boolean(t), "a number or a bool")?;
    Ok(Type::Double.nullable())
}
