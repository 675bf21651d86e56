//! `to_millis(ts: timestamp) -> i64` — Milliseconds from the Unix epoch to `ts`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "to_millis",
    signature: "to_millis(ts: timestamp) -> i64",
    doc: "Milliseconds from the Unix epoch to `ts`.",
    check,
    examples: &[("to_millis(@1970-01-02)", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::timestamp, "a timestamp")?;
    Ok(Type::Int)
}
