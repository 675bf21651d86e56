//! `quantile_means(x: i64? | double? | bool?, by: i64? | double?, bins: i64) -> list<double>` — The group's rows cut into `bins` bins (a whole number written in the program) at the quantiles of `by`, and the mean of `x` in each bin that has rows, lowest `by` first (a bool counts 1 when true). `quantile_means(p, p, 10)` and `quantile_means(label, p, 10)` are scikit-learn's `calibration_curve(label, p, n_bins=10, strategy="quantile")`. Keeps each row's `x` and `by`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "quantile_means",
    signature: "quantile_means(x: i64? | double? | bool?, by: i64? | double?, bins: i64) -> list<double>",
    doc: "The group's rows cut into `bins` bins (a whole number written in the program) at the quantiles of `by`, and the mean of `x` in each bin that has rows, lowest `by` first (a bool counts 1 when true). `quantile_means(p, p, 10)` and `quantile_means(label, p, 10)` are scikit-learn's `calibration_curve(label, p, n_bins=10, strategy=\"quantile\")`. Keeps each row's `x` and `by`.",
    needs_event_time: false,
    check,
    examples: &[("quantile_means(amount, amount, 4)", "list<double>")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 3, 3, "3")?;
    sig::arg_or_null(a, 0, |t| sig::numeric(t) || sig::boolean(t), "a number or a bool")?;
    sig::arg_or_null(a, 1, sig::numeric, "a number")?;
    sig::arg(a, 2, sig::int, "a whole number of bins")?;
    Ok(Type::List(Box::new(Type::Double)))
}
