//! `replace(s: string, from: string, to: string) -> string` — `s` with every occurrence of `from` replaced by `to`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "replace",
    signature: "replace(s: string, from: string, to: string) -> string",
    doc: "`s` with every occurrence of `from` replaced by `to`.",
    check,
    examples: &[("replace(\"a-b\", \"-\", \"_\")", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 3, 3, "3")?;
    for i in 0..3 {
        sig::arg(a, i, sig::string, "a string")?;
    }
    Ok(Type::String)
}
