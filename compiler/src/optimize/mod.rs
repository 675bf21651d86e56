//! The optimizer, stage 5: passes over the plan, one file each, run in this order:
//! constant folding, fusion of per-record steps, predicate pushdown, projection pruning.
//! Each pass keeps the plan's meaning and records what it did in `Plan::notes`.

pub mod constant_folding;
pub mod fusion;
pub mod predicate_pushdown;
pub mod projection_pruning;

pub(crate) mod walk;

use crate::ir::Plan;

/// Runs every pass.
pub fn optimize(mut plan: Plan) -> Plan {
    constant_folding::run(&mut plan);
    fusion::run(&mut plan);
    predicate_pushdown::run(&mut plan);
    projection_pruning::run(&mut plan);
    plan
}
