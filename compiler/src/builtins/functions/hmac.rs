//! `hmac(x: string | i64) -> string` — A keyed pseudonym: HMAC-SHA256 of `x` under the run's key, hex-encoded. Equal inputs give equal outputs, so the result can be joined on, but it cannot be reversed without the key. A null stays null.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "hmac",
    signature: "hmac(x: string | i64) -> string",
    doc: "A keyed pseudonym: HMAC-SHA256 of `x` under the run's key, hex-encoded. Equal inputs give equal outputs, so the result can be joined on, but it cannot be reversed without the key. A null stays null.",
    check,
    examples: &[("hmac(\"member-1\")", "string"), ("hmac(null)", "string?")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    let (_, nullable) =
        sig::arg_or_null(a, 0, |t| matches!(t, Type::String | Type::Int | Type::Error), "a string or an integer")?;
    Ok(sig::keep_null(Type::String, nullable))
}
