//! `null_rate(x: T?) -> double?` — The share of the group's rows where `x` is null, from 0 to 1 (0 when `x` cannot be null); for data validation: `expect { null_rate(income) < 0.01 }`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "null_rate",
    signature: "null_rate(x: T?) -> double?",
    doc: "The share of the group's rows where `x` is null, from 0 to 1 (0 when `x` cannot be null); for data validation: `expect { null_rate(income) < 0.01 }`.",
    needs_event_time: false,
    check,
    examples: &[("null_rate(amount)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    Ok(Type::Double.nullable())
}
