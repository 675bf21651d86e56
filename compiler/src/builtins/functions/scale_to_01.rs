//! `scale_to_01(x: i64? | double?) -> double?` — `x` scaled by the range of its values in the training data: `(x - min) / (max - min)`, so the training values span 0 to 1 (scikit-learn's `MinMaxScaler`; a zero range divides by 1; later values may fall outside). Fitted by `pipec fit`. A null stays null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "scale_to_01",
    signature: "scale_to_01(x: i64? | double?) -> double?",
    doc: "`x` scaled by the range of its values in the training data: `(x - min) / (max - min)`, so the training values span 0 to 1 (scikit-learn's `MinMaxScaler`; a zero range divides by 1; later values may fall outside). Fitted by `pipec fit`. A null stays null.",
    check,
    examples: &[("scale_to_01(amount)", "double?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    let (_, nullable) = sig::arg_or_null(a, 0, sig::numeric, "a number")?;
    Ok(sig::keep_null(Type::Double, nullable))
}
