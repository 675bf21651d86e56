//! `ends_with(s: string, suffix: string) -> bool` — Whether `s` ends with `suffix`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "ends_with",
    signature: "ends_with(s: string, suffix: string) -> bool",
    doc: "Whether `s` ends with `suffix`.",
    check,
    examples: &[("ends_with(\"abc\", \"c\")", "bool")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg(a, 0, sig::string, "a string")?;
    sig::arg(a, 1, sig::string, "a string")?;
    Ok(Type::Bool)
}
