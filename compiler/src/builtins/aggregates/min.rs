//! `min(x: T?) -> T?` — The smallest non-null value of `x`; null for a group with none. `T` must be ordered.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "min",
    signature: "min(x: T?) -> T?",
    doc: "The smallest non-null value of `x`; null for a group with none. `T` must be ordered.",
    needs_event_time: false,
    check,
    examples: &[("min(amount)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    let (t, _) = sig::arg_or_null(a, 0, Type::is_orderable, "a number, string, timestamp, date or duration")?;
    Ok(t.clone().nullable())
}
