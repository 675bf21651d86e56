//! `quantile_edges(x: i64? | double?, n: i64) -> list<double>` — The `n + 1` edges that cut the non-null values of `x` into `n` buckets of equal count (the percentiles at 0, 100/n, …, 100 of the averaged inverted distribution function, NumPy's `averaged_inverted_cdf`; `n` a whole number written in the program); empty for a group with none. Exact: keeps every value of the group.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "quantile_edges",
    signature: "quantile_edges(x: i64? | double?, n: i64) -> list<double>",
    doc: "The `n + 1` edges that cut the non-null values of `x` into `n` buckets of equal count (the percentiles at 0, 100/n, …, 100 of the averaged inverted distribution function, NumPy's `averaged_inverted_cdf`; `n` a whole number written in the program); empty for a group with none. Exact: keeps every value of the group.",
    needs_event_time: false,
    check,
    examples: &[("quantile_edges(amount, 4)", "list<double>")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg_or_null(a, 0, sig::numeric, "a number")?;
    sig::arg(a, 1, sig::int, "a whole number of buckets")?;
    Ok(Type::List(Box::new(Type::Double)))
}
