//! One file per aggregate function: signature, type rule and examples.

pub mod approx_quantile;
pub mod avg;
pub mod count;
pub mod count_distinct;
pub mod first;
pub mod last;
pub mod max;
pub mod min;
pub mod sum;

/// Every aggregate function, in the order the reference lists them.
pub const ALL: &[&crate::builtins::Aggregate] = &[
    &count::AGGREGATE,
    &count_distinct::AGGREGATE,
    &sum::AGGREGATE,
    &min::AGGREGATE,
    &max::AGGREGATE,
    &avg::AGGREGATE,
    &first::AGGREGATE,
    &last::AGGREGATE,
    &approx_quantile::AGGREGATE,
];
