//! `hour(ts: timestamp) -> i64` — The UTC hour of `ts`, 0 to 23.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "hour",
    signature: "hour(ts: timestamp) -> i64",
    doc: "The UTC hour of `ts`, 0 to 23.",
    check,
    examples: &[("hour(@2024-01-31T10:00:00Z)", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::timestamp, "a timestamp")?;
    Ok(Type::Int)
}
