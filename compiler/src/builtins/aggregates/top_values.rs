//! `top_values(x: string?, n: i64) -> list<string>` — The `n` most frequent non-null values of `x`, the most frequent first and equal counts in the order of the values (`n` a whole number written in the program). Keeps a count per distinct value.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "top_values",
    signature: "top_values(x: string?, n: i64) -> list<string>",
    doc: "The `n` most frequent non-null values of `x`, the most frequent first and equal counts in the order of the values (`n` a whole number written in the program). Keeps a count per distinct value.",
    needs_event_time: false,
    check,
    examples: &[("top_values(member, 3)", "list<string>")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 2, 2, "2")?;
    sig::arg_or_null(a, 0, sig::string, "a string")?;
    sig::arg(a, 1, sig::int, "a whole number of values")?;
    Ok(Type::List(Box::new(Type::String)))
}
