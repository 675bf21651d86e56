//! `auc(score: i64? | double?, label: bool?) -> double?` — The area under the ROC curve of `score` against `label`: the chance that a positive row scores above a negative one, ties counting half (scikit-learn's `roc_auc_score`). Null unless the group has rows of both labels. Keeps each row's score and label.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "auc",
    signature: "auc(score: i64? | double?, label: bool?) -> double?",
    doc: "The area under the ROC curve of `score` against `label`: the chance that a positive row scores above a negative one, ties counting half (scikit-learn's `roc_auc_score`). Null unless the group has rows of both labels. Keeps each row's score and label.",
    needs_event_time: false,
    check,
    examples: &[("auc(amount, amount > 100.0)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg_or_null(a, 0, sig::numeric, "a number (the score)")?;
    sig::arg_or_null(a, 1, sig::boolean, "a bool (the label)")?;
    Ok(Type::Double.nullable())
}
