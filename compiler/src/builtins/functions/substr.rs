//! `substr(s: string, start: i64, count: i64 = rest) -> string` — `count` characters of `s` from character `start` (0-based); out-of-range positions are clamped.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "substr",
    signature: "substr(s: string, start: i64, count: i64 = rest) -> string",
    doc: "`count` characters of `s` from character `start` (0-based); out-of-range positions are clamped.",
    check,
    examples: &[("substr(\"abcdef\", 1, 3)", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 3, "2 or 3")?;
    sig::arg(a, 0, sig::string, "a string")?;
    for i in 1..a.len() {
        sig::arg(a, i, sig::int, "a whole number")?;
    }
    Ok(Type::String)
}
