//! `parse_double(s: string) -> double` — `s` read as a number; text that is not one sends the record to `rejected`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "parse_double",
    signature: "parse_double(s: string) -> double",
    doc: "`s` read as a number; text that is not one sends the record to `rejected`.",
    check,
    examples: &[("parse_double(\"4.5\")", "double")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::string, "a string")?;
    Ok(Type::Double)
}
