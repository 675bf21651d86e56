//! `trim(s: string) -> string` — `s` without leading and trailing white space.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "trim",
    signature: "trim(s: string) -> string",
    doc: "`s` without leading and trailing white space.",
    check,
    examples: &[("trim(\"  a \")", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::string, "a string")?;
    Ok(Type::String)
}
