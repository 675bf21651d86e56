//! `sum(x: i64? | double?) -> same` — The sum of the non-null values of `x`; 0 for a group with none.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "sum",
    signature: "sum(x: i64? | double?) -> same",
    doc: "The sum of the non-null values of `x`; 0 for a group with none.",
    needs_event_time: false,
    check,
    examples: &[("sum(amount)", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    let (t, _) = sig::arg_or_null(a, 0, sig::numeric, "a number")?;
    Ok(t.clone())
}
