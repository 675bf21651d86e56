//! `sha256(s: string) -> string` — the hex SHA-256 of `s`, without a key.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "sha256",
    signature: "sha256(s: string) -> string",
    doc: "The hex SHA-256 digest of `s`, without a key: fine for checksums, never for labeled data (anyone can hash candidate values and compare), which is `P004`; use `hmac` there.",
    check,
    examples: &[("sha256(\"abc\")", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::string, "a string")?;
    Ok(Type::String)
}
