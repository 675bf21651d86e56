//! `upper(s: string) -> string` — `s` in upper case (Unicode).

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "upper",
    signature: "upper(s: string) -> string",
    doc: "`s` in upper case (Unicode).",
    check,
    examples: &[("upper(\"abc\")", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::string, "a string")?;
    Ok(Type::String)
}
