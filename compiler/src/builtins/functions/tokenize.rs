//! `tokenize(x: string | i64) -> string` — A token standing for `x` in the run's token vault; the vault can map it back. A null stays null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "tokenize",
    signature: "tokenize(x: string | i64) -> string",
    doc: "A token standing for `x` in the run's token vault; the vault can map it back. A null stays null.",
    check,
    examples: &[("tokenize(\"4111-1111\")", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    let (_, nullable) =
        sig::arg_or_null(a, 0, |t| matches!(t, Type::String | Type::Int | Type::Error), "a string or an integer")?;
    Ok(sig::keep_null(Type::String, nullable))
}
