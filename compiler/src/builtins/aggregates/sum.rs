//! `sum(x: i64? | double? | bool?) -> same` — The sum of the non-null values of `x` (a bool counts 1 when true: `sum(b)` is the number of rows where `b`); 0 for a group with none.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "sum",
    signature: "sum(x: i64? | double? | bool?) -> same",
    doc: "The sum of the non-null values of `x` (a bool counts 1 when true: `sum(b)` is the number of rows where `b`, an `i64`); 0 for a group with none.",
    needs_event_time: false,
    check,
    examples: &[("sum(amount)", "double"), ("sum(amount > 100.0)", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    let (t, _) = sig::arg_or_null(a, 0, |t| sig::numeric(t) || sig::boolean(t), "a number or a bool")?;
    Ok(if *t == Type::Bool { Type::Int } else { t.clone() })
}
