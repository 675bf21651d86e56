//! One file per aggregate function: signature, type rule and examples.

pub mod accuracy;
pub mod approx_quantile;
pub mod auc;
pub mod avg;
pub mod count;
pub mod count_distinct;
pub mod distinct;
pub mod drift;
pub mod first;
pub mod last;
pub mod log_loss;
pub mod max;
pub mod min;
pub mod null_rate;
pub mod quantile_edges;
pub mod quantile_means;
pub mod stddev;
pub mod sum;
pub mod top_values;

/// Every aggregate function, in the order the reference lists them.
pub const ALL: &[&crate::builtins::Aggregate] = &[
    &count::AGGREGATE,
    &count_distinct::AGGREGATE,
    &distinct::AGGREGATE,
    &null_rate::AGGREGATE,
    &drift::AGGREGATE,
    &sum::AGGREGATE,
    &min::AGGREGATE,
    &max::AGGREGATE,
    &avg::AGGREGATE,
    &first::AGGREGATE,
    &last::AGGREGATE,
    &stddev::AGGREGATE,
    &approx_quantile::AGGREGATE,
    &quantile_edges::AGGREGATE,
    &top_values::AGGREGATE,
    &auc::AGGREGATE,
    &log_loss::AGGREGATE,
    &accuracy::AGGREGATE,
    &quantile_means::AGGREGATE,
];
