//! Row types: the Thrift structs and enums a pipeline reads, the struct each source
//! deserializes (only the fields the plan reads), and one struct per operator's output row,
//! with serde attributes for the text formats and a `Record` impl for rows that reach a sink.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::quote;

use super::{names, Gen};
use crate::resolve::schema::{FieldInfo, TimestampUnit};
use crate::source::Span;
use crate::syntax::thrift_ast::ConstKind;
use crate::types::Type;

/// The structs and enums of the schema that generated rows use, with everything they contain.
pub fn schema_types(g: &mut Gen<'_>) -> TokenStream {
    let mut out = Vec::new();
    let mut done = std::collections::BTreeSet::new();
    while let Some(id) = g.structs.iter().find(|s| !done.contains(*s)).copied() {
        done.insert(id);
        let def = g.res.schema.get_struct(id);
        let ident = g.struct_ident(id);
        let fields: Vec<(usize, &FieldInfo)> = def.fields.iter().enumerate().collect();
        out.push(record_struct(g, &ident, &fields, &[], true, false));
    }
    for id in g.enums.clone() {
        let def = g.res.schema.get_enum(id);
        let ident = g.enum_ident(id);
        let name = Literal::string(&def.name);
        let values = def.values.iter().enumerate().map(|(i, (n, v))| {
            // `NAMES` is the table of names itself.
            let c = if n == "NAMES" { names::ident("", "NAMES_") } else { names::field(n, i).0 };
            let n = Literal::string(n);
            let v = Literal::i64_suffixed(*v);
            quote!((#c, #n, #v))
        });
        out.push(quote!(rt::pipe_enum!(#ident, #name, [#(#values),*]);));
    }
    quote!(#(#out)*)
}

/// A struct read from the data: a Thrift struct, or the fields of one a source reads. The
/// `checked` fields are read only to check that they hold what the schema declares (a source
/// validates every field of its contract unless it says `validate = read`).
pub fn record_struct(
    g: &mut Gen<'_>,
    ident: &Ident,
    fields: &[(usize, &FieldInfo)],
    checked: &[(usize, &FieldInfo)],
    serialize: bool,
    csv: bool,
) -> TokenStream {
    let mut defs = Vec::new();
    for (i, f) in checked {
        let (fid, rename) = names::field(&f.name, *i);
        let check = names::ident(&format!("check_{}_{}_", ident, i), &f.name);
        let body = checked_value(g, f, csv);
        let body = if !csv && f.default.is_some() && !f.ty.is_nullable() {
            // As for a field that is read: in an Arrow file, a null takes the default.
            let mut nullable = (*f).clone();
            nullable.ty = f.ty.clone().nullable();
            let or_null = checked_value(g, &nullable, csv);
            quote! {
                if rt::record::arrow_rows() {
                    #or_null.map(|_| rt::value::Checked)
                } else {
                    #body.map(|_| rt::value::Checked)
                }
            }
        } else {
            quote!(#body.map(|_| rt::value::Checked))
        };
        g.items.push(quote! {
            #[allow(non_snake_case)]
            fn #check<'de, D: serde::Deserializer<'de>>(d: D) -> Result<rt::value::Checked, D::Error> {
                #body
            }
        });
        let check = Literal::string(&check.to_string());
        let mut attrs = vec![quote!(deserialize_with = #check), quote!(skip_serializing)];
        if let Some(r) = rename {
            let r = Literal::string(&r);
            attrs.push(quote!(rename = #r));
        }
        if f.ty.is_nullable() || f.default.is_some() {
            attrs.push(quote!(default));
        }
        defs.push(quote!(#[serde(#(#attrs),*)] pub #fid: rt::value::Checked));
    }
    for (i, f) in fields {
        let (fid, rename) = names::field(&f.name, *i);
        let ty = g.rust_type(&f.ty, f.span);
        let mut attrs = Vec::new();
        if let Some(r) = rename {
            let r = Literal::string(&r);
            attrs.push(quote!(rename = #r));
        }
        let mut default_fn = None;
        if f.ty.is_nullable() {
            attrs.push(quote!(default));
        } else if let Some(d) = &f.default {
            let fname = names::ident(&format!("default_{}_{}_", ident, i), &f.name);
            let value = default_value(g, &f.ty, &d.kind, d.span);
            g.items.push(quote!(#[allow(non_snake_case)] fn #fname() -> #ty { #value }));
            let path = Literal::string(&fname.to_string());
            attrs.push(quote!(default = #path));
            default_fn = Some(fname);
        }
        let nested = matches!(f.ty.non_null(), Type::List(_) | Type::Set(_) | Type::Map(..) | Type::Struct(..));
        let de = if csv && nested {
            // A CSV cell holds a nested value as JSON text.
            Some(if f.ty.is_nullable() {
                "rt::value::json_text::opt::deserialize".to_string()
            } else {
                "rt::value::json_text::deserialize".to_string()
            })
        } else {
            deserializer(&f.ty, f.timestamp)
        };
        match (de, default_fn) {
            // An Arrow column holds every field of every row: a null in the column of a field
            // with a default is a row without the field, and takes the default.
            (de, Some(fname)) if !csv => {
                let wrapper = names::ident(&format!("de_default_{}_{}_", ident, i), &f.name);
                let inner = de.map(|de| {
                    let de = Literal::string(&de);
                    quote!(#[serde(deserialize_with = #de)])
                });
                g.items.push(quote! {
                    #[allow(non_snake_case)]
                    fn #wrapper<'de, D: serde::Deserializer<'de>>(d: D) -> Result<#ty, D::Error> {
                        #[derive(serde::Deserialize)]
                        #[serde(crate = "rt::prelude::serde")]
                        struct W(#inner #ty);
                        if rt::record::arrow_rows() {
                            Ok(<Option<W> as serde::Deserialize>::deserialize(d)?.map_or_else(#fname, |w| w.0))
                        } else {
                            <W as serde::Deserialize>::deserialize(d).map(|w| w.0)
                        }
                    }
                });
                let path = Literal::string(&wrapper.to_string());
                attrs.push(quote!(deserialize_with = #path));
            }
            (Some(de), _) => {
                let de = Literal::string(&de);
                attrs.push(quote!(deserialize_with = #de));
            }
            (None, _) => {}
        }
        if serialize {
            if let Some(ser) = serializer(&f.ty) {
                let ser = Literal::string(ser);
                attrs.push(quote!(serialize_with = #ser));
            }
        }
        let attrs = if attrs.is_empty() { quote!() } else { quote!(#[serde(#(#attrs),*)]) };
        defs.push(quote!(#attrs pub #fid: #ty));
    }
    let fast = if csv { None } else { fast_reader(g, ident, fields, checked) };
    quote! {
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub struct #ident { #(#defs),* }
        #fast
    }
}

/// The JSON fast path's reader of a struct (`rt::json::Fast`, see the runtime's `json`
/// module): keys are matched as bytes and each value is read straight into its field. `None`
/// when a field has a type the fast path does not read; serde then reads every record. Whatever
/// the fast path does not accept (a missing required field, a repeated one, an escape, a null
/// where the schema wants a value) it hands to serde, so defaults and nulls here follow the
/// struct's serde attributes above.
pub fn fast_reader(
    g: &mut Gen<'_>,
    ident: &Ident,
    fields: &[(usize, &FieldInfo)],
    checked: &[(usize, &FieldInfo)],
) -> Option<TokenStream> {
    // (field index, key, how its value is read), in the schema's order below.
    let (mut vars, mut reads, mut inits) = (Vec::new(), Vec::new(), Vec::new());
    for (n, (i, f)) in checked.iter().enumerate() {
        let ty = fast_type(g, &f.ty, f.timestamp, true, &mut Vec::new())?;
        let (fid, _) = names::field(&f.name, *i);
        let var = names::ident("c", &n.to_string());
        vars.push(quote!(let mut #var: Option<rt::value::Checked> = None;));
        reads.push((
            *i,
            &f.name,
            quote!(rt::json::set_once(&mut #var, <#ty as rt::json::Fast>::read(s).map(|_| rt::value::Checked))?),
        ));
        let required = !f.ty.is_nullable() && f.default.is_none();
        inits.push(if required { quote!(#fid: #var?) } else { quote!(#fid: rt::value::Checked) });
    }
    for (n, (i, f)) in fields.iter().enumerate() {
        let ty = fast_type(g, &f.ty, f.timestamp, false, &mut Vec::new())?;
        let (fid, _) = names::field(&f.name, *i);
        let var = names::ident("v", &n.to_string());
        vars.push(quote!(let mut #var: Option<#ty> = None;));
        reads.push((*i, &f.name, quote!(rt::json::set_once(&mut #var, <#ty as rt::json::Fast>::read(s))?)));
        let init = if f.ty.is_nullable() {
            quote!(#var.unwrap_or_default())
        } else if f.default.is_some() {
            let fname = names::ident(&format!("default_{}_{}_", ident, i), &f.name);
            quote!(#var.unwrap_or_else(#fname))
        } else {
            quote!(#var?)
        };
        inits.push(quote!(#fid: #init));
    }
    // Writers mostly put the keys in the schema's order: after a key, the next one is expected.
    reads.sort_by_key(|(i, _, _)| *i);
    let keys: Vec<Literal> = reads.iter().map(|(_, name, _)| Literal::byte_string(name.as_bytes())).collect();
    let arms = reads.iter().enumerate().map(|(pos, (_, name, read))| {
        let key = Literal::byte_string(name.as_bytes());
        let after = pos + 1;
        quote!(#key => { next = #after; #read })
    });
    let n_keys = keys.len();
    let body = if reads.is_empty() {
        quote! {
            s.open()?;
            let mut first = true;
            while s.key(&mut first)?.is_some() {
                s.skip()?;
            }
        }
    } else {
        quote! {
            const KEYS: [&[u8]; #n_keys] = [#(#keys),*];
            #(#vars)*
            s.open()?;
            let (mut first, mut next) = (true, 0usize);
            while let Some(k) = s.key_expecting(&mut first, KEYS.get(next).copied())? {
                match k {
                    #(#arms)*
                    _ => s.skip()?,
                }
            }
        }
    };
    Some(quote! {
        impl rt::json::Fast for #ident {
            fn read(s: &mut rt::json::Scan<'_>) -> Option<Self> {
                #body
                Some(#ident { #(#inits),* })
            }
        }
    })
}

/// The type the JSON fast path reads a value of `ty` as (`unit`: a timestamp field's unit;
/// `checking`: the value is only checked, as [`checking_type`] reads it), or `None` when it
/// reads no such value: binary, dates, timestamps in units other than milliseconds, maps
/// without string keys, structs with such a field.
fn fast_type(
    g: &mut Gen<'_>,
    ty: &Type,
    unit: Option<TimestampUnit>,
    checking: bool,
    seen: &mut Vec<crate::types::StructId>,
) -> Option<TokenStream> {
    Some(match ty {
        Type::Bool => quote!(bool),
        Type::Int | Type::Duration => quote!(i64),
        Type::Timestamp if matches!(unit, None | Some(TimestampUnit::Millis)) => quote!(i64),
        Type::Double => quote!(f64),
        Type::String if checking => quote!(rt::value::AnyStr),
        Type::String => quote!(String),
        Type::List(t) | Type::Set(t) => {
            let t = fast_type(g, t, None, checking, seen)?;
            if checking {
                quote!(rt::value::AnyList<#t>)
            } else {
                quote!(Vec<#t>)
            }
        }
        Type::Map(k, v) if **k == Type::String => {
            let v = fast_type(g, v, None, checking, seen)?;
            if checking {
                quote!(rt::value::AnyMap<rt::value::AnyStr, #v>)
            } else {
                quote!(std::collections::BTreeMap<String, #v>)
            }
        }
        Type::Struct(id, _) => {
            if seen.contains(id) {
                return None;
            }
            seen.push(*id);
            let res = g.res;
            for f in &res.schema.get_struct(*id).fields {
                fast_type(g, &f.ty, f.timestamp, false, seen)?;
            }
            seen.pop();
            let i = g.struct_ident(*id);
            quote!(#i)
        }
        Type::Enum(id, _) => {
            let i = g.enum_ident(*id);
            quote!(#i)
        }
        Type::Nullable(t) => {
            let t = fast_type(g, t, unit, checking, seen)?;
            quote!(Option<#t>)
        }
        _ => return None,
    })
}

/// The struct of an operator's output row (written, never read).
pub fn row_struct(g: &mut Gen<'_>, ident: &Ident, fields: &[(String, Type)], span: Span) -> TokenStream {
    let mut defs = Vec::new();
    for (i, (name, ty)) in fields.iter().enumerate() {
        let (fid, rename) = names::field(name, i);
        let rty = g.rust_type(ty, span);
        let mut attrs = Vec::new();
        if let Some(r) = rename {
            let r = Literal::string(&r);
            attrs.push(quote!(rename = #r));
        }
        if let Some(ser) = serializer(ty) {
            let ser = Literal::string(ser);
            attrs.push(quote!(serialize_with = #ser));
        }
        let attrs = if attrs.is_empty() { quote!() } else { quote!(#[serde(#(#attrs),*)]) };
        defs.push(quote!(#attrs pub #fid: #rty));
    }
    quote! {
        #[derive(Clone, Debug, PartialEq, serde::Serialize)]
        #[serde(crate = "rt::prelude::serde")]
        pub struct #ident { #(#defs),* }
    }
}

/// Reading an unread field's value as its declared type (`d` is the deserializer): a string
/// is checked without being copied.
fn checked_value(g: &mut Gen<'_>, f: &FieldInfo, csv: bool) -> TokenStream {
    let nested = matches!(f.ty.non_null(), Type::List(_) | Type::Set(_) | Type::Map(..) | Type::Struct(..));
    if csv && nested {
        let inner = g.rust_type(f.ty.non_null(), f.span);
        return if f.ty.is_nullable() {
            quote!(rt::value::json_text::opt::deserialize::<_, #inner>(d))
        } else {
            quote!(rt::value::json_text::deserialize::<_, #inner>(d))
        };
    }
    if let Some(de) = deserializer(&f.ty, f.timestamp) {
        let path: syn::ExprPath = syn::parse_str(&de).expect("a deserializer path");
        return quote!(#path(d));
    }
    let ty = checking_type(g, &f.ty, f.span);
    quote!(<#ty as serde::Deserialize>::deserialize(d))
}

/// The type that checks a JSON value of `ty` without keeping it: strings, lists and maps, at any
/// depth, are read and dropped as they are met (nothing is allocated for them); other values are
/// read as their own type. The errors are those of the type itself.
fn checking_type(g: &mut Gen<'_>, ty: &Type, span: Span) -> TokenStream {
    match ty {
        Type::String => quote!(rt::value::AnyStr),
        Type::List(t) | Type::Set(t) => {
            let t = checking_type(g, t, span);
            quote!(rt::value::AnyList<#t>)
        }
        Type::Map(k, v) => {
            // The same diagnostics as the map's own type (keys that cannot be compiled).
            g.rust_type(ty, span);
            let (k, v) = (checking_type(g, k, span), checking_type(g, v, span));
            quote!(rt::value::AnyMap<#k, #v>)
        }
        Type::Nullable(t) => {
            let t = checking_type(g, t, span);
            quote!(Option<#t>)
        }
        _ => g.rust_type(ty, span),
    }
}

fn deserializer(ty: &Type, unit: Option<TimestampUnit>) -> Option<String> {
    let module = match (ty.non_null(), unit) {
        (Type::Timestamp, Some(TimestampUnit::Seconds)) => "ts_seconds",
        (Type::Timestamp, Some(TimestampUnit::Micros)) => "ts_micros",
        (Type::Timestamp, Some(TimestampUnit::Nanos)) => "ts_nanos",
        (Type::Timestamp, Some(TimestampUnit::Iso8601)) => "ts_iso",
        (Type::Timestamp, _) => "ts_millis",
        (Type::Date, _) if !ty.is_nullable() => return Some("rt::value::de_date".into()),
        _ => return None,
    };
    let opt = if ty.is_nullable() { "::opt" } else { "" };
    Some(format!("rt::value::{module}{opt}::deserialize"))
}

fn serializer(ty: &Type) -> Option<&'static str> {
    Some(match ty {
        Type::Double => "rt::value::ser_f64",
        Type::Nullable(t) if **t == Type::Double => "rt::value::ser_opt_f64",
        Type::Timestamp => "rt::value::ser_ts",
        Type::Date => "rt::value::ser_date",
        Type::Nullable(t) if **t == Type::Timestamp => "rt::value::ser_opt_ts",
        Type::Nullable(t) if **t == Type::Date => "rt::value::ser_opt_date",
        _ => return None,
    })
}

fn default_value(g: &mut Gen<'_>, ty: &Type, v: &ConstKind, span: Span) -> TokenStream {
    match (ty, v) {
        (Type::Int | Type::Timestamp | Type::Duration, ConstKind::Int(n)) => {
            let l = Literal::i64_suffixed(*n);
            quote!(#l)
        }
        (Type::Double, ConstKind::Int(n)) => {
            let l = Literal::f64_suffixed(*n as f64);
            quote!(#l)
        }
        (Type::Double, ConstKind::Double(x)) if x.is_finite() => {
            let l = Literal::f64_suffixed(*x);
            quote!(#l)
        }
        (Type::String, ConstKind::Str(s)) => {
            let l = Literal::string(s);
            quote!(String::from(#l))
        }
        (Type::Bool, ConstKind::Int(n)) => {
            let b = *n != 0;
            quote!(#b)
        }
        (Type::Bool, ConstKind::Ident(i)) if i.name == "true" || i.name == "false" => {
            let b = i.name == "true";
            quote!(#b)
        }
        (Type::Enum(id, _), ConstKind::Ident(i)) => {
            let def = g.res.schema.get_enum(*id);
            let last = i.name.rsplit('.').next().unwrap_or(&i.name);
            match def.values.iter().find(|(n, _)| n == last) {
                Some((_, n)) => {
                    let e = g.enum_ident(*id);
                    let l = Literal::i64_suffixed(*n);
                    quote!(#e(#l))
                }
                None => {
                    g.unsupported(span, "this default value cannot be compiled yet");
                    quote!(unreachable!())
                }
            }
        }
        (Type::Enum(id, _), ConstKind::Int(n)) => {
            let e = g.enum_ident(*id);
            let l = Literal::i64_suffixed(*n);
            quote!(#e(#l))
        }
        (Type::List(_) | Type::Set(_), ConstKind::List(items)) if items.is_empty() => quote!(Vec::new()),
        (Type::Map(..), ConstKind::Map(items)) if items.is_empty() => quote!(Default::default()),
        _ => {
            g.unsupported(span, "this default value cannot be compiled yet");
            quote!(unreachable!())
        }
    }
}

/// `impl Record` for a row struct that reaches a sink: CSV cells and Parquet columns.
pub fn record_impl(g: &mut Gen<'_>, ident: &Ident, fields: &[(String, Type)], span: Span) -> TokenStream {
    let mut columns = Vec::new();
    let mut schema = String::from("message row {");
    let mut cells = Vec::new();
    let mut writes = Vec::new();
    for (i, (name, ty)) in fields.iter().enumerate() {
        let (fid, _) = names::field(name, i);
        columns.push(Literal::string(name));
        let inner = ty.non_null();
        let rep = if ty.is_nullable() { "OPTIONAL" } else { "REQUIRED" };
        let physical = match inner {
            Type::Bool => "BOOLEAN",
            Type::Int | Type::Duration | Type::Timestamp => "INT64",
            Type::Date => "INT32",
            Type::Double => "DOUBLE",
            _ => "BYTE_ARRAY",
        };
        let logical = match inner {
            Type::Timestamp => " (TIMESTAMP(MILLIS,true))",
            Type::Date => " (DATE)",
            Type::String | Type::Enum(..) => " (UTF8)",
            Type::Binary | Type::Bool | Type::Int | Type::Duration | Type::Double => "",
            _ => " (JSON)",
        };
        schema.push_str(&format!(" {rep} {physical} {name}{logical};"));
        // Appends `x: &T` (T the non-null type) to column `i` of `c`.
        let i = Literal::usize_unsuffixed(i);
        let push = match inner {
            Type::Bool => quote!(c.bool(#i, *x)),
            Type::Int | Type::Duration | Type::Timestamp => quote!(c.i64(#i, *x)),
            Type::Date => quote!(c.i32(#i, *x)),
            Type::Double => quote!(c.f64(#i, *x)),
            Type::String => quote!(c.bytes(#i, x.as_bytes())),
            Type::Enum(..) => quote!(c.bytes(#i, x.name().as_bytes())),
            Type::Binary => quote!(c.bytes(#i, x)),
            _ => quote!(c.bytes(#i, serde_json::to_string(x).unwrap_or_default().as_bytes())),
        };
        writes.push(if ty.is_nullable() {
            quote! {
                match &self.#fid {
                    Some(x) => #push,
                    None => c.null(#i),
                }
            }
        } else {
            quote! {{
                let x = &self.#fid;
                #push;
            }}
        });
        let cell = cell_of(quote!(x), inner);
        cells.push(if ty.is_nullable() {
            quote! {{
                let mut s = String::new();
                if let Some(x) = &self.#fid { #cell.cell(&mut s); }
                out.push(s);
            }}
        } else {
            quote! {{
                let mut s = String::new();
                let x = &self.#fid;
                #cell.cell(&mut s);
                out.push(s);
            }}
        });
    }
    schema.push_str(" }");
    let _ = span;
    let schema = Literal::string(&schema);
    let arrow = Literal::string(&super::arrow::row_descriptor(g, fields));
    // Only where the program writes Arrow (the runtime's `arrow` feature is then on).
    let arrow_batch = super::uses_arrow(g.program).then(|| {
        quote! {
            fn arrow_batch(
                fields: &[rt::arrow::FieldRef],
                rows: &[Self],
            ) -> std::io::Result<rt::arrow::RecordBatch> {
                rt::arrow::to_batch(fields, rows)
            }
        }
    });
    quote! {
        impl Record for #ident {
            const COLUMNS: &'static [&'static str] = &[#(#columns),*];
            const PARQUET_SCHEMA: &'static str = #schema;
            const ARROW_SCHEMA: &'static str = #arrow;
            fn cells(&self, out: &mut Vec<String>) {
                #(#cells)*
            }
            #arrow_batch
            fn parquet_row(&self, c: &mut sink::Columns) {
                #(#writes)*
            }
        }
    }
}

/// A `Cell` for `x: &T` where `T` is the Rust form of `ty` (non-null).
pub fn cell_of(x: TokenStream, ty: &Type) -> TokenStream {
    match ty {
        Type::Timestamp => quote!(value::TsCell(#x)),
        Type::Date => quote!(value::DateCell(#x)),
        Type::Enum(..) => quote!((#x).name()),
        Type::Bool | Type::Int | Type::Duration | Type::Double | Type::String => quote!((#x)),
        _ => quote!(value::JsonCell(#x)),
    }
}
