//! `contains(s: string, part: string) -> bool` — Whether `part` occurs in `s`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "contains",
    signature: "contains(s: string, part: string) -> bool",
    doc: "Whether `part` occurs in `s`.",
    check,
    examples: &[("contains(\"abc\", \"b\")", "bool")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg(a, 0, sig::string, "a string")?;
    sig::arg(a, 1, sig::string, "a string")?;
    Ok(Type::Bool)
}
