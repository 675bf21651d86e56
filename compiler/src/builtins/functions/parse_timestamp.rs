//! `parse_timestamp(s: string) -> timestamp` — `s` read as an ISO-8601 date or RFC 3339 date-time; anything else sends the record to `rejected`.

use crate::builtins::sig::{self, SigError};
use crate::builtins::Function;
use crate::types::Type;

pub const FUNCTION: Function = Function {
    name: "parse_timestamp",
    signature: "parse_timestamp(s: string) -> timestamp",
    doc: "`s` read as an ISO-8601 date or RFC 3339 date-time; anything else sends the record to `rejected`.",
    check,
    examples: &[("parse_timestamp(\"2024-01-31T10:00:00Z\")", "timestamp")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    sig::arg(a, 0, sig::string, "a string")?;
    Ok(Type::Timestamp)
}
