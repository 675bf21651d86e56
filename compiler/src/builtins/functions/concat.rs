//! `concat(s: string, …) -> string` — The strings joined in order.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "concat",
    signature: "concat(s: string, …) -> string",
    doc: "The strings joined in order.",
    check,
    examples: &[("concat(\"a\", \"b\", \"c\")", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, usize::MAX, "at least 1")?;
    for i in 0..a.len() {
        sig::arg(a, i, sig::string, "a string")?;
    }
    Ok(Type::String)
}
