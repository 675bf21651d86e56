//! `from_millis(ms: i64) -> timestamp` — The instant `ms` milliseconds after the Unix epoch.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "from_millis",
    signature: "from_millis(ms: i64) -> timestamp",
    doc: "The instant `ms` milliseconds after the Unix epoch.",
    check,
    examples: &[("from_millis(0)", "timestamp")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::int, "an integer")?;
    Ok(Type::Timestamp)
}
