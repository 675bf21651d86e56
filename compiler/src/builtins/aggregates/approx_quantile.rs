//! `approx_quantile(x: i64? | double?, q: double) -> double?` — An estimate of the `q`-quantile (0 ≤ q ≤ 1, a number written in the program) of the non-null values of `x`, from a sketch of bounded size (within 1% of the true value); null for a group with none.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "approx_quantile",
    signature: "approx_quantile(x: i64? | double?, q: double) -> double?",
    doc: "An estimate of the `q`-quantile (0 ≤ q ≤ 1, a number written in the program) of the non-null values of `x`, from a sketch of bounded size (within 1% of the true value); null for a group with none.",
    needs_event_time: false,
    check,
    examples: &[("approx_quantile(amount, 0.5)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg_or_null(a, 0, sig::numeric, "a number")?;
    sig::arg(a, 1, sig::numeric, "a number between 0 and 1")?;
    Ok(Type::Double.nullable())
}
