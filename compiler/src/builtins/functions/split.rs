//! `split(s: string, separator: string) -> list<string>` — The pieces of `s` between occurrences of `separator`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "split",
    signature: "split(s: string, separator: string) -> list<string>",
    doc: "The pieces of `s` between occurrences of `separator`.",
    check,
    examples: &[("split(\"a,b\", \",\")", "list<string>")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg(a, 0, sig::string, "a string")?;
    sig::arg(a, 1, sig::string, "a string")?;
    Ok(Type::List(Box::new(Type::String)))
}
