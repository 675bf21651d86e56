//! The Arrow fields of a row type, as the descriptor the runtime's `arrow` module reads
//! (serde_arrow's JSON form). The table of how each Pipe type maps is in `runtime/src/arrow.rs`.

use serde_json::{json, Value};

use super::Gen;
use crate::resolve::schema::FieldInfo;
use crate::types::{StructId, Type};

/// Whether a descriptor is for writing rows (an Arrow sink, `run_batch_arrow`'s outputs) or
/// for checking what is read: an enum is written as its names (`Utf8`: one dictionary per batch
/// would differ from batch to batch, which an IPC file cannot hold) and read from names,
/// dictionaries of names or numbers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Use {
    Write,
    Read,
}

/// The descriptor of a row written to an Arrow sink: a column per field, nullable where the
/// field is. Empty when the program has no use for Arrow.
pub fn row_descriptor(g: &Gen<'_>, fields: &[(String, Type)]) -> String {
    if !g.arrow {
        return String::new();
    }
    let cols: Vec<Value> =
        fields.iter().map(|(name, ty)| field(g, name, ty, ty.is_nullable(), Use::Write, &mut Vec::new())).collect();
    Value::Array(cols).to_string()
}

/// The descriptor a source checks an Arrow file against: every field of its record, where a
/// field the record may lack (nullable, or with a default) may be missing from the file.
pub fn record_descriptor(g: &Gen<'_>, fields: &[FieldInfo]) -> String {
    let cols: Vec<Value> = fields
        .iter()
        .map(|f| field(g, &f.name, &f.ty, f.ty.is_nullable() || f.default.is_some(), Use::Read, &mut Vec::new()))
        .collect();
    Value::Array(cols).to_string()
}

/// `path`: the structs the field sits in.
fn field(g: &Gen<'_>, name: &str, ty: &Type, nullable: bool, use_: Use, path: &mut Vec<StructId>) -> Value {
    let mut f = json!({ "name": name });
    let (data_type, children) = data_type(g, ty.non_null(), use_, path);
    f["data_type"] = Value::from(data_type);
    if nullable || data_type == "Null" {
        f["nullable"] = Value::Bool(true);
    }
    if !children.is_empty() {
        f["children"] = Value::Array(children);
    }
    f
}

fn data_type(g: &Gen<'_>, ty: &Type, use_: Use, path: &mut Vec<StructId>) -> (&'static str, Vec<Value>) {
    match ty {
        Type::Bool => ("Bool", Vec::new()),
        Type::Int => ("I64", Vec::new()),
        Type::Double => ("F64", Vec::new()),
        Type::String => ("Utf8", Vec::new()),
        Type::Binary => ("Binary", Vec::new()),
        Type::Timestamp => (r#"Timestamp(Millisecond, Some("UTC"))"#, Vec::new()),
        Type::Date => ("Date32", Vec::new()),
        Type::Duration => ("Duration(Millisecond)", Vec::new()),
        Type::Enum(..) if use_ == Use::Write => ("Utf8", Vec::new()),
        Type::Enum(..) => (
            "Dictionary",
            vec![json!({ "name": "key", "data_type": "I32" }), json!({ "name": "value", "data_type": "Utf8" })],
        ),
        Type::List(t) | Type::Set(t) => ("List", vec![field(g, "element", t, t.is_nullable(), use_, path)]),
        Type::Map(k, v) => {
            let key = field(g, "key", k, false, use_, path);
            let value = field(g, "value", v, v.is_nullable(), use_, path);
            ("Map", vec![json!({ "name": "entries", "data_type": "Struct", "children": [key, value] })])
        }
        // A struct inside itself has no Arrow schema: its column is Arrow's null type, which
        // holds nulls alone (a row with a value there fails to write).
        Type::Struct(id, _) if path.contains(id) => ("Null", Vec::new()),
        Type::Struct(id, _) => {
            path.push(*id);
            let def = g.res.schema.get_struct(*id);
            let children = def
                .fields
                .iter()
                .map(|f| field(g, &f.name, &f.ty, f.ty.is_nullable() || f.default.is_some(), use_, path))
                .collect();
            path.pop();
            ("Struct", children)
        }
        // The type of a bare `null`.
        Type::Null | Type::Error | Type::Nullable(_) => ("Null", Vec::new()),
    }
}
