//! The schema: every struct, enum, typedef and constant of the Thrift files in a program, with
//! Thrift types mapped to Pipe types. Thrift's own scoping holds inside Thrift files (a type
//! from an included file is written `file.Type`); a `.pipe` file sees the types of the Thrift
//! files it includes both unqualified and qualified.

use std::collections::HashMap;

use super::{ModuleId, Resolved, Syntax};
use crate::diagnostics::{did_you_mean, Code, Diagnostic};
use crate::source::Span;
use crate::syntax::thrift_ast::{
    Annotation, BaseType, ConstValue, DefKind, Requiredness, StructKind, TypeKind, TypeRef,
};
use crate::types::{EnumId, StructId, Type};

/// How a timestamp is stored in the data, from the `timestamp = "…"` annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampUnit {
    Seconds,
    Millis,
    Micros,
    Nanos,
    /// An ISO-8601 / RFC 3339 string.
    Iso8601,
}

#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub name: String,
    pub id: Option<i64>,
    pub ty: Type,
    /// The type as the Thrift file wrote it (for integer ranges of constants).
    pub thrift_type: TypeRef,
    pub req: Requiredness,
    pub default: Option<ConstValue>,
    pub timestamp: Option<TimestampUnit>,
    pub annotations: Vec<Annotation>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct StructDef {
    pub name: String,
    pub kind: StructKind,
    pub module: ModuleId,
    pub fields: Vec<FieldInfo>,
    pub annotations: Vec<Annotation>,
    pub doc: Option<String>,
    pub span: Span,
}

impl StructDef {
    pub fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct EnumDef {
    pub name: String,
    pub module: ModuleId,
    pub values: Vec<(String, i64)>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct TypedefInfo {
    pub name: String,
    pub module: ModuleId,
    pub target: TypeRef,
    pub annotations: Vec<Annotation>,
    pub resolved: Option<(Type, Option<TimestampUnit>)>,
}

#[derive(Debug, Clone)]
pub struct ConstInfo {
    pub name: String,
    pub module: ModuleId,
    pub ty: TypeRef,
    pub value: ConstValue,
    pub span: Span,
}

/// A name defined at the top of a Thrift file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeSym {
    Struct(StructId),
    Enum(EnumId),
    Typedef(usize),
    Const(usize),
}

#[derive(Debug, Default)]
pub struct Schema {
    pub structs: Vec<StructDef>,
    pub enums: Vec<EnumDef>,
    pub typedefs: Vec<TypedefInfo>,
    pub consts: Vec<ConstInfo>,
    /// The names each Thrift module defines, in definition order.
    pub scopes: HashMap<ModuleId, Vec<(String, TypeSym)>>,
}

/// Why a name did not resolve.
#[derive(Debug)]
pub enum Lookup {
    Unknown { suggestion: Option<String> },
    Ambiguous(Vec<String>),
}

impl Schema {
    pub fn get_struct(&self, id: StructId) -> &StructDef {
        &self.structs[id.0 as usize]
    }

    pub fn get_enum(&self, id: EnumId) -> &EnumDef {
        &self.enums[id.0 as usize]
    }

    fn own(&self, m: ModuleId, name: &str) -> Option<TypeSym> {
        self.scopes.get(&m)?.iter().find(|(n, _)| n == name).map(|(_, s)| *s)
    }

    /// Looks up a name as written in module `m`: Thrift modules see their own names and
    /// `alias.Name` of their includes; `.pipe` modules also see their includes' names bare.
    pub fn lookup(&self, res: &Resolved, m: ModuleId, name: &str) -> Result<TypeSym, Lookup> {
        let module = res.module(m);
        if let Some((alias, rest)) = name.split_once('.') {
            if let Some((_, inc)) = module.includes.iter().find(|(a, _)| a == alias) {
                if let Some(sym) = self.own(*inc, rest) {
                    return Ok(sym);
                }
            }
        }
        if let Some(sym) = self.own(m, name) {
            return Ok(sym);
        }
        let is_pipe = matches!(module.syntax, Syntax::Pipe(_));
        if is_pipe {
            let found: Vec<(String, TypeSym)> = module
                .includes
                .iter()
                .filter_map(|(alias, inc)| self.own(*inc, name).map(|s| (format!("{alias}.{name}"), s)))
                .collect();
            match found.len() {
                1 => return Ok(found[0].1),
                n if n > 1 => return Err(Lookup::Ambiguous(found.into_iter().map(|(q, _)| q).collect())),
                _ => {}
            }
        }
        let mut candidates: Vec<String> = self.scopes.get(&m).into_iter().flatten().map(|(n, _)| n.clone()).collect();
        for (alias, inc) in &module.includes {
            for (n, _) in self.scopes.get(inc).into_iter().flatten() {
                candidates.push(format!("{alias}.{n}"));
                if is_pipe {
                    candidates.push(n.clone());
                }
            }
        }
        Err(Lookup::Unknown { suggestion: did_you_mean(name, candidates.iter().map(String::as_str)) })
    }

    /// All type names visible in module `m`, for help lines.
    pub fn visible_names(&self, res: &Resolved, m: ModuleId) -> Vec<String> {
        let module = res.module(m);
        let mut out: Vec<String> = self.scopes.get(&m).into_iter().flatten().map(|(n, _)| n.clone()).collect();
        for (_, inc) in &module.includes {
            out.extend(self.scopes.get(inc).into_iter().flatten().map(|(n, _)| n.clone()));
        }
        out
    }
}

/// Builds the schema of every Thrift module in `res`.
pub fn build(res: &Resolved, diags: &mut Vec<Diagnostic>) -> Schema {
    let mut s = Schema::default();
    // Pass 1: give every definition an id so that definitions may refer to later ones.
    for (i, module) in res.modules.iter().enumerate() {
        let m = ModuleId(i as u32);
        let Syntax::Thrift(file) = &module.syntax else {
            continue;
        };
        let mut scope: Vec<(String, TypeSym)> = Vec::new();
        let mut spans: HashMap<String, Span> = HashMap::new();
        for def in &file.defs {
            if let Some(first) = spans.get(&def.name.name) {
                diags.push(
                    Diagnostic::new(Code::E1005, def.name.span, format!("`{}` is defined twice", def.name.name))
                        .label("second definition")
                        .secondary(*first, "first defined here")
                        .help("rename one of the definitions"),
                );
                continue;
            }
            spans.insert(def.name.name.clone(), def.name.span);
            let sym = match &def.kind {
                DefKind::Struct { kind, .. } => {
                    s.structs.push(StructDef {
                        name: def.name.name.clone(),
                        kind: *kind,
                        module: m,
                        fields: Vec::new(),
                        annotations: def.annotations.clone(),
                        doc: def.doc.clone(),
                        span: def.name.span,
                    });
                    TypeSym::Struct(StructId(s.structs.len() as u32 - 1))
                }
                DefKind::Enum { values } => {
                    let mut out: Vec<(String, i64)> = Vec::new();
                    let mut next = 0i64;
                    for v in values {
                        if let Some((n, span)) = v.value {
                            if i32::try_from(n).is_err() {
                                diags.push(
                                    Diagnostic::new(
                                        Code::E2012,
                                        span,
                                        format!("enum value {n} does not fit in 32 bits"),
                                    )
                                    .label("out of range")
                                    .help("Thrift enum values are i32: use a value between -2147483648 and 2147483647"),
                                );
                            }
                        }
                        let value = v.value.map_or(next, |(n, _)| n);
                        next = value.wrapping_add(1);
                        if out.iter().any(|(n, _)| *n == v.name.name) {
                            diags.push(
                                Diagnostic::new(
                                    Code::E1015,
                                    v.name.span,
                                    format!("enum value `{}` is defined twice in `{}`", v.name.name, def.name.name),
                                )
                                .label("second definition")
                                .help("give each enum value a distinct name"),
                            );
                            continue;
                        }
                        out.push((v.name.name.clone(), value));
                    }
                    s.enums.push(EnumDef { name: def.name.name.clone(), module: m, values: out, span: def.name.span });
                    TypeSym::Enum(EnumId(s.enums.len() as u32 - 1))
                }
                DefKind::Typedef { ty } => {
                    s.typedefs.push(TypedefInfo {
                        name: def.name.name.clone(),
                        module: m,
                        target: ty.clone(),
                        annotations: def.annotations.clone(),
                        resolved: None,
                    });
                    TypeSym::Typedef(s.typedefs.len() - 1)
                }
                DefKind::Const { ty, value } => {
                    s.consts.push(ConstInfo {
                        name: def.name.name.clone(),
                        module: m,
                        ty: ty.clone(),
                        value: value.clone(),
                        span: def.name.span,
                    });
                    TypeSym::Const(s.consts.len() - 1)
                }
            };
            scope.push((def.name.name.clone(), sym));
        }
        s.scopes.insert(m, scope);
    }
    // Pass 2: typedefs, then struct fields.
    for i in 0..s.typedefs.len() {
        let mut visiting = Vec::new();
        resolve_typedef(&mut s, res, i, &mut visiting, diags);
    }
    for (i, module) in res.modules.iter().enumerate() {
        let m = ModuleId(i as u32);
        let Syntax::Thrift(file) = &module.syntax else {
            continue;
        };
        for def in &file.defs {
            let DefKind::Struct { kind, fields } = &def.kind else {
                continue;
            };
            let Ok(TypeSym::Struct(id)) = s.lookup(res, m, &def.name.name) else {
                continue;
            };
            if s.get_struct(id).span != def.name.span {
                continue; // A duplicate definition, already reported.
            }
            let mut out: Vec<FieldInfo> = Vec::new();
            let mut by_name: HashMap<String, usize> = HashMap::new();
            let mut by_id: HashMap<i64, usize> = HashMap::new();
            for f in fields {
                if let Some(prev) = by_name.get(&f.name.name).map(|&i| &out[i]) {
                    diags.push(
                        Diagnostic::new(
                            Code::E1007,
                            f.name.span,
                            format!("field `{}` is defined twice in `{}`", f.name.name, def.name.name),
                        )
                        .label("second definition")
                        .secondary(prev.span, "first defined here")
                        .help("rename or remove one of the fields"),
                    );
                    continue;
                }
                if let Some((fid, fspan)) = f.id {
                    if let Some(prev) = by_id.get(&fid).map(|&i| &out[i]) {
                        diags.push(
                            Diagnostic::new(
                                Code::E1014,
                                fspan,
                                format!("field id {fid} is used twice in `{}`", def.name.name),
                            )
                            .label("second use")
                            .secondary(prev.span, format!("`{}` has id {fid}", prev.name))
                            .help("give each field a distinct id"),
                        );
                    }
                }
                let (base, unit_from_type) = thrift_type(&mut s, res, m, &f.ty, diags);
                let unit = timestamp_unit(&f.annotations, &base, diags).or(unit_from_type);
                let ty = if unit.is_some() { Type::Timestamp } else { base };
                let nullable = *kind == StructKind::Union || (f.req != Requiredness::Required && f.default.is_none());
                by_name.insert(f.name.name.clone(), out.len());
                if let Some((fid, _)) = f.id {
                    by_id.entry(fid).or_insert(out.len());
                }
                out.push(FieldInfo {
                    name: f.name.name.clone(),
                    id: f.id.map(|(n, _)| n),
                    ty: if nullable { ty.nullable() } else { ty },
                    thrift_type: f.ty.clone(),
                    req: f.req,
                    default: f.default.clone(),
                    timestamp: unit,
                    annotations: f.annotations.clone(),
                    doc: f.doc.clone(),
                    span: f.name.span,
                });
            }
            s.structs[id.0 as usize].fields = out;
        }
    }
    super::consts::check_all(&s, res, diags);
    s
}

fn resolve_typedef(
    s: &mut Schema,
    res: &Resolved,
    i: usize,
    visiting: &mut Vec<usize>,
    diags: &mut Vec<Diagnostic>,
) -> (Type, Option<TimestampUnit>) {
    if let Some(r) = &s.typedefs[i].resolved {
        return r.clone();
    }
    if visiting.contains(&i) {
        let t = &s.typedefs[i];
        diags.push(
            Diagnostic::new(Code::E1004, t.target.span, format!("typedef `{}` is defined in terms of itself", t.name))
                .label("refers back to itself")
                .help("a typedef must end in a real type"),
        );
        s.typedefs[i].resolved = Some((Type::Error, None));
        return (Type::Error, None);
    }
    visiting.push(i);
    let (m, target, annotations) =
        (s.typedefs[i].module, s.typedefs[i].target.clone(), s.typedefs[i].annotations.clone());
    let (base, unit) = thrift_type_inner(s, res, m, &target, visiting, diags);
    let unit = timestamp_unit(&annotations, &base, diags).or(unit);
    let r = (if unit.is_some() { Type::Timestamp } else { base }, unit);
    s.typedefs[i].resolved = Some(r.clone());
    visiting.pop();
    r
}

/// The Pipe type of a Thrift type reference in module `m` (and its timestamp unit, when the
/// reference or its typedef carries one).
pub fn thrift_type(
    s: &mut Schema,
    res: &Resolved,
    m: ModuleId,
    t: &TypeRef,
    diags: &mut Vec<Diagnostic>,
) -> (Type, Option<TimestampUnit>) {
    thrift_type_inner(s, res, m, t, &mut Vec::new(), diags)
}

fn thrift_type_inner(
    s: &mut Schema,
    res: &Resolved,
    m: ModuleId,
    t: &TypeRef,
    visiting: &mut Vec<usize>,
    diags: &mut Vec<Diagnostic>,
) -> (Type, Option<TimestampUnit>) {
    let ty = match &t.kind {
        TypeKind::Base(b) => match b {
            BaseType::Bool => Type::Bool,
            BaseType::Byte | BaseType::I8 | BaseType::I16 | BaseType::I32 | BaseType::I64 => Type::Int,
            BaseType::Double => Type::Double,
            BaseType::String | BaseType::Uuid => Type::String,
            BaseType::Binary => Type::Binary,
        },
        TypeKind::List(e) => Type::List(Box::new(thrift_type_inner(s, res, m, e, visiting, diags).0)),
        TypeKind::Set(e) => Type::Set(Box::new(thrift_type_inner(s, res, m, e, visiting, diags).0)),
        TypeKind::Map(k, v) => Type::Map(
            Box::new(thrift_type_inner(s, res, m, k, visiting, diags).0),
            Box::new(thrift_type_inner(s, res, m, v, visiting, diags).0),
        ),
        TypeKind::Named(name) => match s.lookup(res, m, &name.name) {
            Ok(TypeSym::Struct(id)) => Type::Struct(id, s.get_struct(id).name.clone()),
            Ok(TypeSym::Enum(id)) => Type::Enum(id, s.get_enum(id).name.clone()),
            Ok(TypeSym::Typedef(i)) => {
                let (ty, unit) = resolve_typedef(s, res, i, visiting, diags);
                let unit = timestamp_unit(&t.annotations, &ty, diags).or(unit);
                return (if unit.is_some() { Type::Timestamp } else { ty }, unit);
            }
            Ok(TypeSym::Const(_)) => {
                diags.push(
                    Diagnostic::new(Code::E1004, name.span, format!("`{}` is a constant, not a type", name.name))
                        .label("not a type")
                        .help("use a struct, enum, typedef or base type here"),
                );
                Type::Error
            }
            Err(e) => {
                diags.push(unknown_type(&name.name, name.span, e));
                Type::Error
            }
        },
    };
    let unit = timestamp_unit(&t.annotations, &ty, diags);
    (if unit.is_some() { Type::Timestamp } else { ty }, unit)
}

/// The diagnostic for a type name that did not resolve.
pub fn unknown_type(name: &str, span: Span, why: Lookup) -> Diagnostic {
    match why {
        Lookup::Ambiguous(options) => {
            Diagnostic::new(Code::E1013, span, format!("`{name}` is defined in more than one included file"))
                .label("ambiguous")
                .help(format!(
                    "qualify it: {}",
                    options.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(" or ")
                ))
        }
        Lookup::Unknown { suggestion } => Diagnostic::new(Code::E1004, span, format!("unknown type `{name}`"))
            .label("not defined or included")
            .help(suggestion.unwrap_or_else(|| "define it, or include the Thrift file that defines it".to_string())),
    }
}

/// Reads a `timestamp = "unit"` annotation; the unit must suit the annotated type.
fn timestamp_unit(annotations: &[Annotation], ty: &Type, diags: &mut Vec<Diagnostic>) -> Option<TimestampUnit> {
    let a = annotations.iter().find(|a| a.key.name == "timestamp")?;
    let value = a.value.as_ref().map_or("", |v| v.value.as_str());
    let unit = match value {
        "seconds" => TimestampUnit::Seconds,
        "millis" => TimestampUnit::Millis,
        "micros" => TimestampUnit::Micros,
        "nanos" => TimestampUnit::Nanos,
        "iso8601" => TimestampUnit::Iso8601,
        _ => {
            diags.push(
                Diagnostic::new(Code::E2020, a.span, format!("unknown timestamp unit `{value}`"))
                    .label("not a timestamp unit")
                    .help("write `timestamp = \"millis\"` (or seconds, micros, nanos) on an integer, `timestamp = \"iso8601\"` on a string"),
            );
            return None;
        }
    };
    let fits = match unit {
        TimestampUnit::Iso8601 => matches!(ty, Type::String),
        _ => matches!(ty, Type::Int),
    };
    if !fits && !ty.is_error() && *ty != Type::Timestamp {
        diags.push(
            Diagnostic::new(
                Code::E2020,
                a.span,
                format!("`timestamp = \"{value}\"` does not fit a field of type `{ty}`"),
            )
            .label("wrong kind of value")
            .help("integer units (seconds, millis, micros, nanos) go on integer fields, `iso8601` on string fields"),
        );
        return None;
    }
    Some(unit)
}
