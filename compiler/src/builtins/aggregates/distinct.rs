//! `distinct(x: T?) -> i64` — `count_distinct(x)` by its data-validation name: the number of distinct non-null values of `x` in the group (`expect { distinct(state) <= 60 }`).

use crate::builtins::sig::{self, SigError};
use crate::builtins::Aggregate;
use crate::types::Type;

pub const AGGREGATE: Aggregate = Aggregate {
    name: "distinct",
    signature: "distinct(x: T?) -> i64",
    doc: "`count_distinct(x)` by its data-validation name: the number of distinct non-null values of `x` in the group (`expect { distinct(state) <= 60 }`).",
    needs_event_time: false,
    check,
    examples: &[("distinct(member)", "i64")],
};

fn check(a: &[Type]) -> Result<Type, SigError> {
    sig::arity(a, 1, 1, "1")?;
    Ok(Type::Int)
}
