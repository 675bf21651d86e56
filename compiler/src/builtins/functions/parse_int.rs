//! `parse_int(s: string) -> i64` — `s` read as a decimal integer; text that is not one sends the record to `rejected`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "parse_int",
    signature: "parse_int(s: string) -> i64",
    doc: "`s` read as a decimal integer; text that is not one sends the record to `rejected`.",
    check,
    examples: &[("parse_int(\"42\")", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::string, "a string")?;
    Ok(Type::Int)
}
