//! `quantile_bucket(x: i64? | double?, n: i64) -> i64?` — The bucket of `x`, from 0 to `n - 1`, among `n` buckets cut at the quantiles of its values in the training data (scikit-learn's `KBinsDiscretizer(strategy="quantile", encode="ordinal")`: the averaged inverted distribution function's percentiles, edges closer than 1e-8 merged, values beyond the training range in the first or last bucket). `n` is a whole number written in the program. Fitted by `pipec fit`. A null stays null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "quantile_bucket",
    signature: "quantile_bucket(x: i64? | double?, n: i64) -> i64?",
    doc: "The bucket of `x`, from 0 to `n - 1`, among `n` buckets cut at the quantiles of its values in the training data (scikit-learn's `KBinsDiscretizer(strategy=\"quantile\", encode=\"ordinal\")`: the averaged inverted distribution function's percentiles, edges closer than 1e-8 merged, values beyond the training range in the first or last bucket). `n` is a whole number written in the program. Fitted by `pipec fit`. A null stays null.",
    check,
    examples: &[("quantile_bucket(amount, 10)", "i64?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    let (_, nullable) = sig::arg_or_null(a, 0, sig::numeric, "a number")?;
    sig::arg(a, 1, sig::int, "a whole number of buckets")?;
    Ok(sig::keep_null(Type::Int, nullable))
}
