//! `stddev(x: i64? | double?) -> double?` — The population standard deviation of the non-null values of `x` (divided by their count, as scikit-learn's `StandardScaler`); null for a group with none.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "stddev",
    signature: "stddev(x: i64? | double?) -> double?",
    doc: "The population standard deviation of the non-null values of `x` (divided by their count, as scikit-learn's `StandardScaler`); null for a group with none.",
    needs_event_time: false,
    check,
    examples: &[("stddev(amount)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg_or_null(a, 0, sig::numeric, "a number")?;
    Ok(Type::Double.nullable())
}
