//! `log_loss(score: i64? | double?, label: bool?) -> double?` — The mean cross-entropy of `score` as the probability of `label`: `-ln(score)` on positive rows, `-ln(1 - score)` on negative ones, the score clipped to [ε, 1 − ε] (scikit-learn's `log_loss`). Null for a group without rows.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "log_loss",
    signature: "log_loss(score: i64? | double?, label: bool?) -> double?",
    doc: "The mean cross-entropy of `score` as the probability of `label`: `-ln(score)` on positive rows, `-ln(1 - score)` on negative ones, the score clipped to [ε, 1 − ε] (scikit-learn's `log_loss`). Null for a group without rows.",
    needs_event_time: false,
    check,
    examples: &[("log_loss((amount ?? 0.0) / 1000.0, amount > 100.0)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg_or_null(a, 0, sig::numeric, "a number (the predicted probability)")?;
    sig::arg_or_null(a, 1, sig::boolean, "a bool (the label)")?;
    Ok(Type::Double.nullable())
}
