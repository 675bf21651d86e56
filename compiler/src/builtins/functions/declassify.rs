//! `declassify(x: T, reason = "…") -> T` — the one escape hatch from privacy labels.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "declassify",
    signature: "declassify(x: T, reason = \"…\") -> T",
    doc: "`x` itself, with its privacy labels cleared. The reason (a string literal) is required; every declassification is reported by `pipec check` (`N0002`) and listed by `pipec privacy-report`.",
    check,
    examples: &[("declassify(1.5, reason = \"public statistic\")", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "1 and a `reason`")?;
    sig::arg(a, 1, sig::string, "the reason as a string")?;
    Ok(a[0].clone())
}
