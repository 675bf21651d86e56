//! `drift(x: i64? | double? | string?) -> double?` — How far the group's distribution of field `x` is from the baseline profile that `pipec profile` wrote: the Jensen–Shannon divergence (base 2, 0 to 1) over the baseline's deciles (and a bucket below and above its range) for a number, the L-infinity distance between the shares of the baseline's most frequent values (and of the rest) for a string. Null for a group without values.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "drift",
    signature: "drift(x: i64? | double? | string?) -> double?",
    doc: "How far the group's distribution of field `x` is from the baseline profile that `pipec profile` wrote: the Jensen–Shannon divergence (base 2, 0 to 1) over the baseline's deciles (and a bucket below and above its range) for a number, the L-infinity distance between the shares of the baseline's most frequent values (and of the rest) for a string. Null for a group without values.",
    needs_event_time: false,
    check,
    examples: &[("drift(amount)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg_or_null(a, 0, |t| sig::numeric(t) || sig::string(t), "a number or a string")?;
    Ok(Type::Double.nullable())
}
