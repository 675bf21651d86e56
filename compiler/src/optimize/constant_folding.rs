//! Constant folding: operations on literals are computed once, at compile time. Nothing that
//! could fail on data is folded (division by zero and overflow stay for run time, where they
//! send the record to `rejected`), and every folded value keeps the expression's type.

use super::walk;
use crate::hir::{TExpr, TExprKind};
use crate::ir::{NodeKind, Plan, Stage};
use crate::syntax::pipe_ast::{BinOp, UnOp};
use crate::types::Type;

pub fn run(plan: &mut Plan) {
    let mut folded = 0;
    walk::exprs_mut(plan, &mut |e| folded += fold(e));
    // A filter that is always true is no filter.
    let mut dropped = 0;
    for n in &mut plan.nodes {
        if let NodeKind::Map(stages) = &mut n.kind {
            let before = stages.len();
            stages.retain(|s| !matches!(s, Stage::Filter(TExpr { kind: TExprKind::Bool(true), .. })));
            dropped += before - stages.len();
        }
    }
    if folded > 0 || dropped > 0 {
        plan.notes.push(format!(
            "constant folding: {folded} expression{} computed at compile time, {dropped} always-true filter{} removed",
            s(folded),
            s(dropped)
        ));
    }
}

fn s(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Folds `e` bottom-up; returns how many nodes were replaced by literals.
pub fn fold(e: &mut TExpr) -> usize {
    let mut count: usize = e.children_mut().into_iter().map(fold).sum();
    if let Some(kind) = evaluate(e) {
        e.kind = kind;
        count += 1;
    }
    count
}

fn evaluate(e: &TExpr) -> Option<TExprKind> {
    use TExprKind as K;
    let as_double = |k: &K| match k {
        K::Int(n) => Some(*n as f64),
        K::Float(x) => Some(*x),
        _ => None,
    };
    let number = |x: f64| if e.ty == Type::Int { None } else { Some(K::Float(x)) };
    match &e.kind {
        K::Unary(UnOp::Not, a) => match a.kind {
            K::Bool(b) => Some(K::Bool(!b)),
            _ => None,
        },
        K::Unary(UnOp::Neg, a) => match a.kind {
            K::Int(n) => n.checked_neg().map(K::Int),
            K::Float(x) => Some(K::Float(-x)),
            K::Duration(ms) => ms.checked_neg().map(K::Duration),
            _ => None,
        },
        K::If(c, a, b) => match c.kind {
            K::Bool(true) if a.ty == e.ty => Some(a.kind.clone()),
            K::Bool(false) if b.ty == e.ty => Some(b.kind.clone()),
            _ => None,
        },
        K::Binary(op, a, b) => match (op, &a.kind, &b.kind) {
            (BinOp::And, K::Bool(x), K::Bool(y)) => Some(K::Bool(*x && *y)),
            (BinOp::Or, K::Bool(x), K::Bool(y)) => Some(K::Bool(*x || *y)),
            (BinOp::And, K::Bool(false), _) | (BinOp::Or, K::Bool(true), _) => Some(a.kind.clone()),
            (BinOp::Coalesce, K::Null, _) if b.ty == e.ty => Some(b.kind.clone()),
            (BinOp::Add, K::Str(x), K::Str(y)) => Some(K::Str(format!("{x}{y}"))),
            (BinOp::Add, K::Int(x), K::Int(y)) => x.checked_add(*y).map(K::Int),
            (BinOp::Sub, K::Int(x), K::Int(y)) => x.checked_sub(*y).map(K::Int),
            (BinOp::Mul, K::Int(x), K::Int(y)) => x.checked_mul(*y).map(K::Int),
            (BinOp::Add | BinOp::Sub, K::Duration(x), K::Duration(y)) => {
                if *op == BinOp::Add { x.checked_add(*y) } else { x.checked_sub(*y) }.map(K::Duration)
            }
            (BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div, x, y)
                if as_double(x).is_some() && as_double(y).is_some() =>
            {
                let (x, y) = (as_double(x)?, as_double(y)?);
                match op {
                    BinOp::Add => number(x + y),
                    BinOp::Sub => number(x - y),
                    BinOp::Mul => number(x * y),
                    // Division by zero is left for run time.
                    _ if y != 0.0 => Some(K::Float(x / y)),
                    _ => None,
                }
            }
            (BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge, x, y) => {
                compare(*op, x, y).map(K::Bool)
            }
            _ => None,
        },
        _ => None,
    }
}

fn compare(op: BinOp, x: &TExprKind, y: &TExprKind) -> Option<bool> {
    use std::cmp::Ordering;
    use TExprKind as K;
    let ord = match (x, y) {
        (K::Int(a), K::Int(b)) | (K::Duration(a), K::Duration(b)) | (K::Timestamp(a), K::Timestamp(b)) => a.cmp(b),
        (K::Float(a), K::Float(b)) => a.partial_cmp(b)?,
        (K::Int(a), K::Float(b)) => (*a as f64).partial_cmp(b)?,
        (K::Float(a), K::Int(b)) => a.partial_cmp(&(*b as f64))?,
        (K::Str(a), K::Str(b)) => a.cmp(b),
        (K::Bool(a), K::Bool(b)) if matches!(op, BinOp::Eq | BinOp::Ne) => a.cmp(b),
        _ => return None,
    };
    Some(match op {
        BinOp::Eq => ord == Ordering::Equal,
        BinOp::Ne => ord != Ordering::Equal,
        BinOp::Lt => ord == Ordering::Less,
        BinOp::Le => ord != Ordering::Greater,
        BinOp::Gt => ord == Ordering::Greater,
        _ => ord != Ordering::Less,
    })
}
