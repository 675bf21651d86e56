//! Helpers that builtin signatures are written with, so each builtin's file states only its rule.

use crate::types::Type;

/// Why a call does not fit a builtin's signature.
#[derive(Debug, Clone, PartialEq)]
pub enum SigError {
    /// Wrong number of arguments; the text says how many are taken ("1", "1 or 2").
    Arity(&'static str),
    /// Argument `index` has the wrong type; the text says what is expected.
    Arg(usize, String),
    /// Argument `index` may be null but the function needs a value.
    Null(usize),
}

pub fn arity(args: &[Type], min: usize, max: usize, text: &'static str) -> Result<(), SigError> {
    if args.len() < min || args.len() > max {
        return Err(SigError::Arity(text));
    }
    Ok(())
}

/// Checks that argument `i` is a non-null value for which `ok` holds.
pub fn arg<'a>(args: &'a [Type], i: usize, ok: impl Fn(&Type) -> bool, expected: &str) -> Result<&'a Type, SigError> {
    let t = &args[i];
    if t.is_error() {
        return Ok(t);
    }
    if t.is_nullable() {
        return if matches!(t, Type::Null) || ok(t.non_null()) {
            Err(SigError::Null(i))
        } else {
            Err(SigError::Arg(i, expected.to_string()))
        };
    }
    if ok(t) {
        Ok(t)
    } else {
        Err(SigError::Arg(i, expected.to_string()))
    }
}

/// Like [`arg`] but nulls are accepted; returns the type without its `?` and whether it had one.
pub fn arg_or_null<'a>(
    args: &'a [Type],
    i: usize,
    ok: impl Fn(&Type) -> bool,
    expected: &str,
) -> Result<(&'a Type, bool), SigError> {
    let t = &args[i];
    if t.is_error() || matches!(t, Type::Null) || ok(t.non_null()) {
        return Ok((t.non_null(), t.is_nullable()));
    }
    Err(SigError::Arg(i, expected.to_string()))
}

pub fn numeric(t: &Type) -> bool {
    t.is_numeric()
}

pub fn boolean(t: &Type) -> bool {
    matches!(t, Type::Bool | Type::Error)
}

pub fn string(t: &Type) -> bool {
    matches!(t, Type::String | Type::Error)
}

pub fn int(t: &Type) -> bool {
    matches!(t, Type::Int | Type::Error)
}

pub fn timestamp(t: &Type) -> bool {
    matches!(t, Type::Timestamp | Type::Error)
}

pub fn any(_: &Type) -> bool {
    true
}

/// `ty`, made nullable when `nullable`: masking functions keep a null a null.
pub fn keep_null(ty: Type, nullable: bool) -> Type {
    if nullable {
        ty.nullable()
    } else {
        ty
    }
}
