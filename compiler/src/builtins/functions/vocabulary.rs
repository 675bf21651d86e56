//! `vocabulary(x: string?, top = N) -> i64?` — The index of `x` among the `N` most frequent values of the training data (0 for the most frequent; equal counts in the order of the values), and `N` — the out-of-vocabulary bucket — for any other value (with fewer than `N` distinct values, their number). `N` is a whole number written in the program. Fitted by `pipec fit`. A null stays null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "vocabulary",
    signature: "vocabulary(x: string?, top = N) -> i64?",
    doc: "The index of `x` among the `N` most frequent values of the training data (0 for the most frequent; equal counts in the order of the values), and `N` — the out-of-vocabulary bucket — for any other value (with fewer than `N` distinct values, their number). `N` is a whole number written in the program. Fitted by `pipec fit`. A null stays null.",
    check,
    examples: &[("vocabulary(member, top = 100)", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    let (_, nullable) = sig::arg_or_null(a, 0, sig::string, "a string")?;
    sig::arg(a, 1, sig::int, "a whole number (how many values to keep)")?;
    Ok(sig::keep_null(Type::Int, nullable))
}
