//! `zscore(x: i64? | double?) -> double?` — `x` standardized with the mean and standard deviation of its values in the training data: `(x - mean) / std` (scikit-learn's `StandardScaler`; a zero deviation divides by 1). Fitted by `pipec fit`. A null stays null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "zscore",
    signature: "zscore(x: i64? | double?) -> double?",
    doc: "`x` standardized with the mean and standard deviation of its values in the training data: `(x - mean) / std` (scikit-learn's `StandardScaler`; a zero deviation divides by 1). Fitted by `pipec fit`. A null stays null.",
    check,
    examples: &[("zscore(amount)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    let (_, nullable) = sig::arg_or_null(a, 0, sig::numeric, "a number")?;
    Ok(sig::keep_null(Type::Double, nullable))
}
