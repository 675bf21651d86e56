//! The Arrow fields of a row type, as the descriptor the runtime's `arrow` module reads
//! (serde_arrow's JSON form). The table of how each Pipe type maps is in `runtime/src/arrow.rs`.

use serde_json::{json, Value};

use super::Gen;
use crate::resolve::schema::FieldInfo;
use crate::types::Type;

/// How deep nested structs may go: a recursive Thrift struct has no Arrow schema.
const MAX_DEPTH: usize = 32;

/// The descriptor of a row written to an Arrow sink: a column per field, nullable where the
/// field is.
pub fn row_descriptor(g: &Gen<'_>, fields: &[(String, Type)]) -> String {
    let cols: Vec<Value> = fields.iter().map(|(name, ty)| field(g, name, ty, ty.is_nullable(), 0)).collect();
    Value::Array(cols).to_string()
}

/// The descriptor a source checks an Arrow file against: every field of its record, where a
/// field the record may lack (nullable, or with a default) may be missing from the file.
pub fn record_descriptor(g: &Gen<'_>, fields: &[FieldInfo]) -> String {
    let cols: Vec<Value> =
        fields.iter().map(|f| field(g, &f.name, &f.ty, f.ty.is_nullable() || f.default.is_some(), 0)).collect();
    Value::Array(cols).to_string()
}

fn field(g: &Gen<'_>, name: &str, ty: &Type, nullable: bool, depth: usize) -> Value {
    let mut f = json!({ "name": name });
    let (data_type, children) = data_type(g, ty.non_null(), depth);
    f["data_type"] = Value::from(data_type);
    if nullable {
        f["nullable"] = Value::Bool(true);
    }
    if !children.is_empty() {
        f["children"] = Value::Array(children);
    }
    f
}

fn data_type(g: &Gen<'_>, ty: &Type, depth: usize) -> (&'static str, Vec<Value>) {
    // A recursive struct has no Arrow schema, nor has the type of a bare `null`: their columns
    // are Arrow's null type, which holds nulls alone (a row with a value there fails to write).
    if depth > MAX_DEPTH {
        return ("Null", Vec::new());
    }
    match ty {
        Type::Bool => ("Bool", Vec::new()),
        Type::Int => ("I64", Vec::new()),
        Type::Double => ("F64", Vec::new()),
        Type::String => ("Utf8", Vec::new()),
        Type::Binary => ("Binary", Vec::new()),
        Type::Timestamp => (r#"Timestamp(Millisecond, Some("UTC"))"#, Vec::new()),
        Type::Date => ("Date32", Vec::new()),
        Type::Duration => ("Duration(Millisecond)", Vec::new()),
        Type::Enum(..) => (
            "Dictionary",
            vec![json!({ "name": "key", "data_type": "I32" }), json!({ "name": "value", "data_type": "Utf8" })],
        ),
        Type::List(t) | Type::Set(t) => ("List", vec![field(g, "element", t, t.is_nullable(), depth + 1)]),
        Type::Map(k, v) => {
            let key = field(g, "key", k, false, depth + 1);
            let value = field(g, "value", v, v.is_nullable(), depth + 1);
            ("Map", vec![json!({ "name": "entries", "data_type": "Struct", "children": [key, value] })])
        }
        Type::Struct(id, _) => {
            let def = g.res.schema.get_struct(*id).clone();
            let children = def
                .fields
                .iter()
                .map(|f| field(g, &f.name, &f.ty, f.ty.is_nullable() || f.default.is_some(), depth + 1))
                .collect();
            ("Struct", children)
        }
        Type::Null | Type::Error | Type::Nullable(_) => ("Null", Vec::new()),
    }
}
