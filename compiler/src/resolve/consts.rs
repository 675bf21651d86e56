//! Checks Thrift constants and field defaults against their declared types: integer ranges,
//! strings in either quote, lists, sets, maps, struct literals (maps keyed by field name) and
//! enum references (`RENT`, `HomeOwnership.RENT`, `file.HomeOwnership.RENT`).

use super::schema::{Schema, TypeSym};
use super::{ModuleId, Resolved, Syntax};
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::syntax::thrift_ast::{BaseType, ConstKind, ConstValue, DefKind, TypeKind, TypeRef};
use crate::types::Type;

pub fn check_all(s: &Schema, res: &Resolved, diags: &mut Vec<Diagnostic>) {
    for (i, module) in res.modules.iter().enumerate() {
        let m = ModuleId(i as u32);
        let Syntax::Thrift(file) = &module.syntax else {
            continue;
        };
        for def in &file.defs {
            match &def.kind {
                DefKind::Const { ty, value } => {
                    let pipe_ty = pipe_type_of(s, res, m, ty);
                    check(s, res, m, &pipe_ty, Some((m, ty)), value, diags);
                }
                DefKind::Struct { fields, .. } => {
                    let Ok(TypeSym::Struct(id)) = s.lookup(res, m, &def.name.name) else {
                        continue;
                    };
                    for f in fields {
                        let (Some(default), Some(info)) = (&f.default, s.get_struct(id).field(&f.name.name)) else {
                            continue;
                        };
                        check(s, res, m, info.ty.non_null(), Some((m, &f.ty)), default, diags);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The Pipe type of a Thrift type, for constants (whose types resolve without errors of their
/// own: those are reported when the schema is built).
fn pipe_type_of(s: &Schema, res: &Resolved, m: ModuleId, t: &TypeRef) -> Type {
    match &t.kind {
        TypeKind::Base(BaseType::Bool) => Type::Bool,
        TypeKind::Base(BaseType::Double) => Type::Double,
        TypeKind::Base(BaseType::String | BaseType::Uuid) => Type::String,
        TypeKind::Base(BaseType::Binary) => Type::Binary,
        TypeKind::Base(_) => Type::Int,
        TypeKind::List(e) => Type::List(Box::new(pipe_type_of(s, res, m, e))),
        TypeKind::Set(e) => Type::Set(Box::new(pipe_type_of(s, res, m, e))),
        TypeKind::Map(k, v) => Type::Map(Box::new(pipe_type_of(s, res, m, k)), Box::new(pipe_type_of(s, res, m, v))),
        TypeKind::Named(n) => match s.lookup(res, m, &n.name) {
            Ok(TypeSym::Struct(id)) => Type::Struct(id, s.get_struct(id).name.clone()),
            Ok(TypeSym::Enum(id)) => Type::Enum(id, s.get_enum(id).name.clone()),
            Ok(TypeSym::Typedef(i)) => s.typedefs[i].resolved.clone().map_or(Type::Error, |r| r.0),
            _ => Type::Error,
        },
    }
}

/// The Thrift type written at `t` (in module `m`), with typedefs followed to what they name.
type Written<'a> = Option<(ModuleId, &'a TypeRef)>;

fn unalias<'a>(s: &'a Schema, res: &Resolved, t: Written<'a>) -> Written<'a> {
    let mut t = t;
    for _ in 0..32 {
        let (m, r) = t?;
        let TypeKind::Named(n) = &r.kind else { return t };
        match s.lookup(res, m, &n.name) {
            Ok(TypeSym::Typedef(i)) => t = Some((s.typedefs[i].module, &s.typedefs[i].target)),
            _ => return t,
        }
    }
    None
}

fn int_range(s: &Schema, res: &Resolved, t: Written) -> (i64, i64) {
    match unalias(s, res, t).map(|(_, t)| &t.kind) {
        Some(TypeKind::Base(BaseType::Byte | BaseType::I8)) => (i8::MIN.into(), i8::MAX.into()),
        Some(TypeKind::Base(BaseType::I16)) => (i16::MIN.into(), i16::MAX.into()),
        Some(TypeKind::Base(BaseType::I32)) => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN, i64::MAX),
    }
}

/// How the Thrift file spelled a type, for messages (`i32` rather than Pipe's `i64`).
fn written_name(t: &TypeRef) -> String {
    match &t.kind {
        TypeKind::Base(b) => format!("{b:?}").to_lowercase(),
        TypeKind::Named(n) => n.name.clone(),
        TypeKind::List(e) => format!("list<{}>", written_name(e)),
        TypeKind::Set(e) => format!("set<{}>", written_name(e)),
        TypeKind::Map(k, v) => format!("map<{}, {}>", written_name(k), written_name(v)),
    }
}

fn mismatch(ty: &Type, thrift: Written, v: &ConstValue, what: &str) -> Diagnostic {
    let name = thrift.map_or_else(|| ty.to_string(), |(_, t)| written_name(t));
    Diagnostic::new(Code::E2012, v.span, format!("this constant does not fit type `{name}`"))
        .label(format!("expected {what}"))
        .help(format!("write {what} here"))
}

fn check(
    s: &Schema,
    res: &Resolved,
    m: ModuleId,
    ty: &Type,
    thrift: Written,
    v: &ConstValue,
    diags: &mut Vec<Diagnostic>,
) {
    if let ConstKind::Ident(id) = &v.kind {
        let boolean = id.name == "true" || id.name == "false";
        let literal = matches!(ty, Type::Enum(..) | Type::Bool) || (boolean && matches!(ty, Type::Int | Type::Double));
        if !literal {
            return check_const_ref(s, res, m, ty, &id.name, v, diags);
        }
    }
    match (ty, &v.kind) {
        (Type::Error, _) => {}
        (Type::Bool, ConstKind::Int(0 | 1)) => {}
        (Type::Bool, ConstKind::Ident(id)) if id.name == "true" || id.name == "false" => {}
        (Type::Bool, _) => diags.push(mismatch(ty, thrift, v, "`true`, `false`, `0` or `1`")),
        // Apache's lexer reads `true` and `false` as the integers 1 and 0.
        (Type::Int | Type::Double, ConstKind::Ident(id)) if id.name == "true" || id.name == "false" => {}
        (Type::Int, ConstKind::Int(n)) => {
            let (lo, hi) = int_range(s, res, thrift);
            // Apache's compiler accepts such a value (and generated code truncates it): a
            // warning, so real IDL files check clean.
            if *n < lo || *n > hi {
                diags.push(
                    Diagnostic::new(Code::W0004, v.span, format!("{n} is out of range for this integer type"))
                        .label(format!("does not fit between {lo} and {hi}"))
                        .help("use a wider integer type or a smaller value; Apache Thrift's generated code would truncate it"),
                );
            }
        }
        (Type::Int, _) => diags.push(mismatch(ty, thrift, v, "an integer")),
        (Type::Double, ConstKind::Int(_) | ConstKind::Double(_)) => {}
        (Type::Double, _) => diags.push(mismatch(ty, thrift, v, "a number")),
        (Type::String | Type::Binary, ConstKind::Str(_)) => {}
        (Type::String | Type::Binary, _) => diags.push(mismatch(ty, thrift, v, "a string in quotes")),
        (Type::Timestamp, ConstKind::Int(_) | ConstKind::Str(_)) => {}
        (Type::Timestamp, _) => diags.push(mismatch(ty, thrift, v, "an integer or a date string")),
        (Type::List(e) | Type::Set(e), ConstKind::List(items)) => {
            let inner = unalias(s, res, thrift).and_then(|(tm, t)| element(t).map(|e| (tm, e)));
            for item in items {
                check(s, res, m, e, inner, item, diags);
            }
        }
        // `{}` is an empty list or set too (Apache's own test IDL: `set<binary> bin_set = {}`).
        (Type::List(_) | Type::Set(_), ConstKind::Map(entries)) if entries.is_empty() => {}
        (Type::List(_) | Type::Set(_), _) => diags.push(mismatch(ty, thrift, v, "a list `[…]`")),
        (Type::Map(k, val), ConstKind::Map(entries)) => {
            let (tk, tv) = match unalias(s, res, thrift) {
                Some((tm, TypeRef { kind: TypeKind::Map(k, v), .. })) => (Some((tm, &**k)), Some((tm, &**v))),
                _ => (None, None),
            };
            for (key, value) in entries {
                check(s, res, m, k, tk, key, diags);
                check(s, res, m, val, tv, value, diags);
            }
        }
        (Type::Map(..), _) => diags.push(mismatch(ty, thrift, v, "a map `{key: value, …}`")),
        (Type::Struct(id, name), ConstKind::Map(entries)) => {
            let def = s.get_struct(*id);
            for (key, value) in entries {
                let ConstKind::Str(field) = &key.kind else {
                    diags.push(mismatch(ty, thrift, key, "a field name in quotes"));
                    continue;
                };
                match def.field(field) {
                    Some(f) => check(s, res, m, f.ty.non_null(), Some((def.module, &f.thrift_type)), value, diags),
                    None => diags.push(
                        Diagnostic::new(Code::E1006, key.span, format!("struct `{name}` has no field `{field}`"))
                            .label("unknown field")
                            .help(did_you_mean(field, def.fields.iter().map(|f| f.name.as_str())).unwrap_or_else(
                                || {
                                    format!(
                                        "its fields are {}",
                                        crate::diagnostics::name_list(def.fields.iter().map(|f| f.name.as_str()), 8)
                                    )
                                },
                            )),
                    ),
                }
            }
        }
        (Type::Struct(..), _) => diags.push(mismatch(ty, thrift, v, "a struct literal `{\"field\": value, …}`")),
        (Type::Enum(..), ConstKind::Int(_)) => {}
        (Type::Enum(id, name), ConstKind::Ident(ident)) => {
            let def = s.get_enum(*id);
            // As Apache Thrift does, the value is found by its last segment, whatever the prefix.
            let value = ident.name.rsplit('.').next().unwrap_or("");
            if !def.values.iter().any(|(n, _)| n == value) {
                if let Ok(TypeSym::Const(_)) = s.lookup(res, m, &ident.name) {
                    return;
                }
                diags.push(
                    Diagnostic::new(Code::E1012, v.span, format!("`{}` is not a value of enum `{name}`", ident.name))
                        .label("unknown enum value")
                        .help(did_you_mean(value, def.values.iter().map(|(n, _)| n.as_str())).unwrap_or_else(|| {
                            format!(
                                "its values are {}",
                                crate::diagnostics::name_list(def.values.iter().map(|(n, _)| n.as_str()), 8)
                            )
                        })),
                );
            }
        }
        (Type::Enum(..), _) => diags.push(mismatch(ty, thrift, v, "an enum value")),
        _ => diags.push(mismatch(ty, thrift, v, &format!("a `{ty}` value"))),
    }
}

/// A constant that names another constant: its declared type must fit.
fn check_const_ref(
    s: &Schema,
    res: &Resolved,
    m: ModuleId,
    ty: &Type,
    name: &str,
    v: &ConstValue,
    diags: &mut Vec<Diagnostic>,
) {
    match s.lookup(res, m, name) {
        Ok(TypeSym::Const(i)) if refers_back(s, res, i) => diags.push(
            Diagnostic::new(Code::E2012, v.span, format!("constant `{name}` is defined in terms of itself"))
                .label("a cycle of constants")
                .help("give one of the constants a value"),
        ),
        Ok(TypeSym::Const(i)) => {
            let c = &s.consts[i];
            let cty = pipe_type_of(s, res, c.module, &c.ty);
            if !cty.assignable_to(ty) {
                diags.push(
                    Diagnostic::new(Code::E2012, v.span, format!("constant `{name}` has type `{cty}`, not `{ty}`"))
                        .label("wrong type")
                        .secondary(c.span, "defined here")
                        .help(format!("use a `{ty}` constant")),
                );
            }
        }
        Ok(_) => diags.push(mismatch(ty, None, v, "a constant value")),
        Err(_) => {
            let candidates: Vec<&str> = s.consts.iter().map(|c| c.name.as_str()).collect();
            diags.push(
                Diagnostic::new(Code::E1016, v.span, format!("unknown constant `{name}`")).label("not defined").help(
                    did_you_mean(name, candidates)
                        .unwrap_or_else(|| "define the constant, or write the value itself".to_string()),
                ),
            );
        }
    }
}

fn element(t: &TypeRef) -> Option<&TypeRef> {
    match &t.kind {
        TypeKind::List(e) | TypeKind::Set(e) => Some(e),
        _ => None,
    }
}

/// Does following constant `start`'s value from name to name come back to a constant already seen?
fn refers_back(s: &Schema, res: &Resolved, start: usize) -> bool {
    let mut seen = vec![start];
    let mut current = start;
    loop {
        let c = &s.consts[current];
        let ConstKind::Ident(next) = &c.value.kind else { return false };
        match s.lookup(res, c.module, &next.name) {
            Ok(TypeSym::Const(j)) if seen.contains(&j) => return true,
            Ok(TypeSym::Const(j)) => {
                seen.push(j);
                current = j;
            }
            _ => return false,
        }
    }
}
