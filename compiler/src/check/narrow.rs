//! Null narrowing: what a condition proves when it is true (or false). `x != null`, `x > 0`
//! (an ordering comparison is false when a side is null) and `x == <non-null value>` prove `x`
//! non-null; `&&` joins what its sides prove when true, `||` what they prove when false, and `!`
//! swaps the two.

use crate::hir::{TExpr, TExprKind};
use crate::syntax::pipe_ast::{BinOp, UnOp};

/// The field path an expression reads (`x`, `t.limit`), if it is a plain path.
pub fn path_of(e: &TExpr) -> Option<Vec<String>> {
    match &e.kind {
        TExprKind::Var(n) => Some(vec![n.clone()]),
        TExprKind::Field(b, f) => {
            let mut p = path_of(b)?;
            p.push(f.clone());
            Some(p)
        }
        _ => None,
    }
}

/// The paths proved non-null when `cond` evaluates to `truth`.
pub fn facts(cond: &TExpr, truth: bool) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    collect(cond, truth, &mut out);
    out
}

fn collect(cond: &TExpr, truth: bool, out: &mut Vec<Vec<String>>) {
    match &cond.kind {
        TExprKind::Unary(UnOp::Not, e) => collect(e, !truth, out),
        TExprKind::Binary(op, l, r) => {
            let is_null = |e: &TExpr| matches!(e.kind, TExprKind::Null);
            let proves_both = match op {
                BinOp::And if truth => {
                    collect(l, true, out);
                    collect(r, true, out);
                    return;
                }
                BinOp::Or if !truth => {
                    collect(l, false, out);
                    collect(r, false, out);
                    return;
                }
                // `x != null` true, or `x == null` false.
                BinOp::Ne | BinOp::Eq if (*op == BinOp::Ne) == truth && (is_null(l) || is_null(r)) => {
                    out.extend(path_of(if is_null(l) { r } else { l }));
                    return;
                }
                // `x == v` true where v is never null.
                BinOp::Eq if truth => {
                    if !r.ty.is_nullable() {
                        out.extend(path_of(l));
                    }
                    if !l.ty.is_nullable() {
                        out.extend(path_of(r));
                    }
                    return;
                }
                BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => truth,
                _ => false,
            };
            if proves_both {
                out.extend(path_of(l));
                out.extend(path_of(r));
            }
        }
        _ => {}
    }
}
