//! Pipe's types. Thrift types map onto these (every Thrift integer width becomes `i64`,
//! `uuid` becomes `string`); `T?` is a value that may be null. `Error` stands for a type that
//! could not be computed because of an error already reported; it is compatible with
//! everything so one mistake is reported once.

use std::fmt;

/// Index of a struct in the program's [`crate::schema::Schema`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StructId(pub u32);

/// Index of an enum in the program's [`crate::schema::Schema`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnumId(pub u32);

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Bool,
    Int,
    Double,
    String,
    Binary,
    /// An instant, stored as milliseconds since the Unix epoch (UTC).
    Timestamp,
    /// A calendar day (UTC).
    Date,
    /// A length of time in milliseconds.
    Duration,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>, Box<Type>),
    Struct(StructId, String),
    Enum(EnumId, String),
    Nullable(Box<Type>),
    /// The type of the `null` literal before it meets another type.
    Null,
    Error,
}

impl Type {
    /// `T?` of this type; `T??` is `T?`.
    pub fn nullable(self) -> Type {
        match self {
            Type::Nullable(_) | Type::Null | Type::Error => self,
            t => Type::Nullable(Box::new(t)),
        }
    }

    /// The type without its `?`.
    pub fn non_null(&self) -> &Type {
        match self {
            Type::Nullable(t) => t,
            t => t,
        }
    }

    pub fn is_nullable(&self) -> bool {
        matches!(self, Type::Nullable(_) | Type::Null)
    }

    pub fn is_error(&self) -> bool {
        matches!(self, Type::Error)
    }

    /// Whether any part of the type is unknown (an empty list literal's element, say).
    pub fn has_error(&self) -> bool {
        match self {
            Type::Error => true,
            Type::Nullable(t) | Type::List(t) | Type::Set(t) => t.has_error(),
            Type::Map(k, v) => k.has_error() || v.has_error(),
            _ => false,
        }
    }

    pub fn is_numeric(&self) -> bool {
        matches!(self, Type::Int | Type::Double | Type::Error)
    }

    /// Types whose values have an order (`<`, `min`, `max`).
    pub fn is_orderable(&self) -> bool {
        matches!(
            self,
            Type::Int | Type::Double | Type::String | Type::Timestamp | Type::Date | Type::Duration | Type::Error
        )
    }

    /// Can a value of type `self` be used where `to` is expected? Integers widen to doubles,
    /// `T` and `null` fit `T?`; a `T?` never fits `T`.
    pub fn assignable_to(&self, to: &Type) -> bool {
        match (self, to) {
            (Type::Error, _) | (_, Type::Error) => true,
            (a, b) if a == b => true,
            (Type::Int, Type::Double) => true,
            (Type::Null, Type::Nullable(_)) => true,
            (Type::Nullable(a), Type::Nullable(b)) => a.assignable_to(b),
            (a, Type::Nullable(b)) => a.assignable_to(b),
            (Type::List(a), Type::List(b)) | (Type::Set(a), Type::Set(b)) => a.assignable_to(b),
            (Type::Map(ka, va), Type::Map(kb, vb)) => ka.assignable_to(kb) && va.assignable_to(vb),
            _ => false,
        }
    }

    /// The type both `a` and `b` fit, if any: the branches of an `if`, the items of a list.
    pub fn unify(a: &Type, b: &Type) -> Option<Type> {
        match (a, b) {
            (Type::Error, t) | (t, Type::Error) => Some(t.clone()),
            (Type::Null, t) | (t, Type::Null) => Some(t.clone().nullable()),
            (Type::Nullable(x), y) | (y, Type::Nullable(x)) => Type::unify(x, y.non_null()).map(Type::nullable),
            // Prefer the side that is fully known: `tradelines ?? []` is a `list<Tradeline>`.
            _ if b.has_error() && b.assignable_to(a) => Some(a.clone()),
            _ if a.assignable_to(b) => Some(b.clone()),
            _ if b.assignable_to(a) => Some(a.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("i64"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::Binary => f.write_str("binary"),
            Type::Timestamp => f.write_str("timestamp"),
            Type::Date => f.write_str("date"),
            Type::Duration => f.write_str("duration"),
            Type::List(t) => write!(f, "list<{t}>"),
            Type::Set(t) => write!(f, "set<{t}>"),
            Type::Map(k, v) => write!(f, "map<{k}, {v}>"),
            Type::Struct(_, n) | Type::Enum(_, n) => f.write_str(n),
            Type::Nullable(t) => write!(f, "{t}?"),
            Type::Null => f.write_str("null"),
            Type::Error => f.write_str("{unknown}"),
        }
    }
}

/// The names a `.pipe` file may use for built-in types, Thrift's spellings included.
pub fn primitive(name: &str) -> Option<Type> {
    Some(match name {
        "bool" => Type::Bool,
        "byte" | "i8" | "i16" | "i32" | "i64" => Type::Int,
        "double" => Type::Double,
        "string" | "uuid" => Type::String,
        "binary" => Type::Binary,
        "timestamp" => Type::Timestamp,
        "date" => Type::Date,
        "duration" => Type::Duration,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullability_is_one_way() {
        let opt = Type::Double.nullable();
        assert!(Type::Double.assignable_to(&opt));
        assert!(Type::Null.assignable_to(&opt));
        assert!(!opt.assignable_to(&Type::Double));
        assert!(Type::Int.assignable_to(&Type::Double));
        assert!(!Type::Double.assignable_to(&Type::Int));
    }

    #[test]
    fn unify_branches() {
        assert_eq!(Type::unify(&Type::Double, &Type::Null), Some(Type::Double.nullable()));
        assert_eq!(Type::unify(&Type::Int, &Type::Double), Some(Type::Double));
        assert_eq!(Type::unify(&Type::Int.nullable(), &Type::Double), Some(Type::Double.nullable()));
        assert_eq!(Type::unify(&Type::String, &Type::Int), None);
        assert_eq!(Type::Int.nullable().to_string(), "i64?");
    }
}
