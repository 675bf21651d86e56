//! The syntax tree of a Thrift IDL file. It keeps every construct the Pipe compiler uses,
//! with spans, annotations and `/** doc */` comments; `service` blocks are skipped.

use super::ast::{Ident, StrLit};
use crate::source::{FileId, Span};

#[derive(Debug, Clone)]
pub struct ThriftFile {
    pub file: FileId,
    pub includes: Vec<StrLit>,
    pub namespaces: Vec<Namespace>,
    pub defs: Vec<Definition>,
}

#[derive(Debug, Clone)]
pub struct Namespace {
    pub scope: Ident,
    pub name: Ident,
    pub annotations: Vec<Annotation>,
}

/// `(key = "value", flag; other.key = 'x')`: a key may be dotted and may have no value.
#[derive(Debug, Clone)]
pub struct Annotation {
    pub key: Ident,
    pub value: Option<StrLit>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Definition {
    pub name: Ident,
    pub kind: DefKind,
    pub annotations: Vec<Annotation>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructKind {
    Struct,
    Union,
    Exception,
}

impl StructKind {
    pub fn keyword(self) -> &'static str {
        match self {
            StructKind::Struct => "struct",
            StructKind::Union => "union",
            StructKind::Exception => "exception",
        }
    }
}

#[derive(Debug, Clone)]
pub enum DefKind {
    Const { ty: TypeRef, value: ConstValue },
    Typedef { ty: TypeRef },
    Enum { values: Vec<EnumValue> },
    Struct { kind: StructKind, fields: Vec<Field> },
}

#[derive(Debug, Clone)]
pub struct EnumValue {
    pub name: Ident,
    pub value: Option<(i64, Span)>,
    pub annotations: Vec<Annotation>,
    pub doc: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requiredness {
    Required,
    Optional,
    /// Neither keyword: Thrift's "default" requiredness.
    Default,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub id: Option<(i64, Span)>,
    pub req: Requiredness,
    pub ty: TypeRef,
    pub name: Ident,
    pub default: Option<ConstValue>,
    pub annotations: Vec<Annotation>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseType {
    Bool,
    Byte,
    I8,
    I16,
    I32,
    I64,
    Double,
    String,
    Binary,
    Uuid,
}

impl BaseType {
    pub fn from_name(name: &str) -> Option<BaseType> {
        Some(match name {
            "bool" => BaseType::Bool,
            "byte" => BaseType::Byte,
            "i8" => BaseType::I8,
            "i16" => BaseType::I16,
            "i32" => BaseType::I32,
            "i64" => BaseType::I64,
            "double" => BaseType::Double,
            "string" | "slist" => BaseType::String,
            "binary" => BaseType::Binary,
            "uuid" => BaseType::Uuid,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct TypeRef {
    pub kind: TypeKind,
    pub annotations: Vec<Annotation>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum TypeKind {
    Base(BaseType),
    /// A defined type, possibly qualified by an include: `Tradeline` or `common.Money`.
    Named(Ident),
    List(Box<TypeRef>),
    Set(Box<TypeRef>),
    Map(Box<TypeRef>, Box<TypeRef>),
}

#[derive(Debug, Clone)]
pub struct ConstValue {
    pub kind: ConstKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum ConstKind {
    Int(i64),
    Double(f64),
    Str(String),
    /// A constant or enum value reference, possibly dotted: `RENT`, `HomeOwnership.RENT`.
    Ident(Ident),
    List(Vec<ConstValue>),
    Map(Vec<(ConstValue, ConstValue)>),
}
