//! `len(x: string | list<T> | set<T> | map<K, V>) -> i64` — The number of characters of a string, or of elements of a collection.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "len",
    signature: "len(x: string | list<T> | set<T> | map<K, V>) -> i64",
    doc: "The number of characters of a string, or of elements of a collection.",
    check,
    examples: &[("len(\"abc\")", "i64"), ("len([1, 2])", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(
        a,
        0,
        |t| matches!(t, Type::String | Type::List(_) | Type::Set(_) | Type::Map(..)),
        "a string, list, set or map",
    )?;
    Ok(Type::Int)
}
