//! `env(name: string) -> string` — The value of environment variable `name` when the pipeline starts; a missing variable stops the run before it reads anything. `name` must be a string literal.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "env",
    signature: "env(name: string) -> string",
    doc: "The value of environment variable `name` when the pipeline starts; a missing variable stops the run before it reads anything. `name` must be a string literal.",
    check,
    examples: &[("env(\"HOME\")", "string")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::string, "a string")?;
    Ok(Type::String)
}
