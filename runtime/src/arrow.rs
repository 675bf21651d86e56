//! Arrow: rows to and from record batches, and Arrow IPC files (`format = arrow`).
//!
//! Rows cross into Arrow through serde (`serde_arrow`): generated row types already serialize
//! for JSON, and the few places where Pipe's types need more than serde's defaults ask
//! [`crate::record::arrow_rows`] (true inside every conversion here): timestamps become
//! milliseconds, dates days, non-finite doubles stay doubles, enums are their names. Each row type
//! carries its Arrow fields as a descriptor the compiler writes (serde_arrow's JSON form), so a
//! sink's schema is fixed by the program, not guessed from the rows it happens to see.
//!
//! | Pipe | Arrow |
//! |---|---|
//! | `bool`, `i64`, `double`, `string`, `binary` | `Boolean`, `Int64`, `Float64`, `Utf8`, `Binary` (read from any integer width, `Float32` or integers for a double, large and view strings and binaries, dictionaries of strings) |
//! | `timestamp` | `Timestamp(Millisecond, "UTC")` (read from any unit and zone, or a date) |
//! | `date`, `duration` | `Date32`, `Duration(Millisecond)` |
//! | an enum | `Utf8`, its names (read also from dictionaries of names, or numbers) |
//! | `list<T>`, `set<T>` | `List<T>` |
//! | `map<K, V>` | `Map<K, V>` |
//! | a struct | `Struct` |
//!
//! A nullable field is a nullable column; a required one is not.

use std::io;
use std::sync::Arc;

pub use arrow_array::RecordBatch;
use arrow_array::{Array, ArrayRef, GenericListArray, MapArray, OffsetSizeTrait, PrimitiveArray, StructArray};
pub use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use serde::de::DeserializeOwned;
use serde::{Deserialize as _, Serialize};
use serde_arrow::schema::SchemaLike;

use crate::record::{with_arrow_rows, Line, Origin, Reject, Unfit};
use crate::run::RunError;
use crate::sink::Record;

/// The Arrow fields of a row type, from the descriptor generated code embeds.
pub fn fields(descriptor: &str) -> io::Result<Vec<FieldRef>> {
    let value: serde_json::Value = serde_json::from_str(descriptor).map_err(io::Error::other)?;
    Vec::<FieldRef>::from_value(&value).map_err(|e| io::Error::other(format!("internal: an Arrow schema: {e}")))
}

/// Rows as one record batch with the given fields.
pub fn to_batch<R: Serialize>(fields: &[FieldRef], rows: &[R]) -> io::Result<RecordBatch> {
    with_arrow_rows(|| serde_arrow::to_record_batch(fields, &rows))
        .map_err(|e| io::Error::other(format!("rows to Arrow: {e}")))
}

/// The rows of a record batch as `T`: every row, or the first that does not fit `T` (a null
/// where the schema requires a value, a number out of range, a name no enum has), with its
/// index. Timestamps of any unit are read as milliseconds.
pub fn from_batch<T: DeserializeOwned>(
    batch: &RecordBatch,
    want: Option<&[FieldRef]>,
) -> Result<Vec<T>, (usize, String)> {
    let mut out = Vec::with_capacity(batch.num_rows());
    let mut failed = None;
    with_rows(batch, want, At { source: "", file: "", first: 0 }, |rows| {
        for i in 0..rows.len() {
            rows.row::<T>(i, |_, r| match r {
                Ok(r) => out.push(r),
                Err(why) => {
                    failed.get_or_insert((i, why.0));
                }
            });
            if failed.is_some() {
                return;
            }
        }
    });
    failed.map_or(Ok(out), Err)
}

/// The rows of `batches` as `T`, for input `name` of an in-memory run (`run_batch_arrow`): each
/// batch's columns are checked against `descriptor` first (a column missing or of another type
/// is an error that names the input and the batch), then every row is read; a row that does not
/// fit `T` (a null where the schema requires a value, a number out of range) is kept, in its
/// place, as the reason and the row as JSON, for the run to reject.
pub fn input_rows<T: DeserializeOwned>(
    name: &str,
    descriptor: &str,
    batches: &[RecordBatch],
) -> Result<Vec<Result<T, Unfit>>, RunError> {
    let want = fields(descriptor)?;
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for (b, batch) in batches.iter().enumerate() {
        let error = |e: &str| RunError::Setup(format!("input `{name}`, batch {b}: {e}"));
        check_schema(&want, &batch.schema()).map_err(|e| error(&e))?;
        let mut whole = Ok(());
        with_rows(batch, Some(&want), At { source: name, file: "", first: 0 }, |rows| {
            // A batch whose columns cannot be converted at all (a timestamp out of range in
            // milliseconds) is the caller's to fix, not a reason in every row.
            if let Err(why) = &rows.de {
                whole = Err(error(why));
                return;
            }
            for i in 0..rows.len() {
                rows.row::<T>(i, |o, r| out.push(r.map_err(|why| Unfit { raw: o.raw.to_vec(), why })));
            }
        });
        whole?;
    }
    Ok(out)
}

/// The rows one sink received, as one record batch of the sink's row type.
pub fn output_batch<R: Record>(rows: &[R]) -> Result<RecordBatch, RunError> {
    Ok(to_batch(&fields(R::ARROW_SCHEMA)?, rows)?)
}

/// Where the rows of one batch of a file come from, for their origins.
#[derive(Clone, Copy, Debug)]
pub struct At<'a> {
    pub source: &'a str,
    pub file: &'a str,
    /// The index in the file of the batch's first row.
    pub first: usize,
}

/// The rows of one record batch, ready to be read one at a time.
pub struct Rows<'a> {
    de: Result<serde_arrow::Deserializer<'a>, String>,
    n: usize,
    at: At<'a>,
}

impl std::fmt::Debug for Rows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows").field("n", &self.n).field("at", &self.at).finish_non_exhaustive()
    }
}

/// Calls `f` with the rows of `batch`, its columns first conformed to `want` (the fields of the
/// row type, when known: see [`conform_batch`]).
pub fn with_rows<'a>(batch: &RecordBatch, want: Option<&[FieldRef]>, at: At<'a>, f: impl FnOnce(&Rows<'_>)) {
    let mut f = Some(f);
    each_rows(batch, want, at, &mut |rows| {
        if let Some(f) = f.take() {
            f(rows);
        }
    });
}

// Not generic (nor is `read_ipcs`): the decoders are compiled once, here, not in every crate
// of a pipeline that reads rows through the generic entry points.
fn each_rows<'a>(batch: &RecordBatch, want: Option<&[FieldRef]>, at: At<'a>, f: &mut dyn FnMut(&Rows<'_>)) {
    let n = batch.num_rows();
    match conform_batch(batch, want) {
        Ok(batch) => {
            let de = serde_arrow::Deserializer::from_record_batch(&batch).map_err(|e| {
                format!("an Arrow batch that cannot be read: {}", crate::record::without_values(&e.to_string()))
            });
            f(&Rows { de, n, at });
        }
        Err(why) => f(&Rows { de: Err(why), n, at }),
    }
}

impl Rows<'_> {
    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Row `i` as `T`, with its origin (`file@row`); a row that does not fit `T` is an error
    /// for that row alone, and its origin's raw text is the row as JSON.
    pub fn row<T: DeserializeOwned>(&self, i: usize, each: impl FnOnce(&Origin<'_>, Result<T, Reject>)) {
        let row = match &self.de {
            Err(why) => Err(Reject::new(why.clone())),
            Ok(de) => match de.get(i) {
                None => Err(Reject::new("internal: a row past the end of its batch")),
                Some(item) => with_arrow_rows(|| T::deserialize(item)).map_err(|e| Reject::new(reason(&e))),
            },
        };
        let raw = match (&row, &self.de) {
            (Err(_), Ok(de)) => de
                .get(i)
                .and_then(|item| with_arrow_rows(|| Json::deserialize(item)).ok())
                .map(|v| v.0.to_string().into_bytes())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let o = Origin {
            source: self.at.source,
            file: self.at.file,
            offset: (self.at.first + i) as u64,
            line: Line::Unknown,
            raw: &raw,
            with: 0,
        };
        each(&o, row);
    }
}

/// Any value of a row as JSON, for `rejected.raw`: like `serde_json::Value`, but binary values
/// are arrays of byte values (as JSON sources spell them) and map keys of any type are text.
struct Json(serde_json::Value);

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor).map(Json)
    }
}

struct JsonVisitor;

impl<'de> serde::de::Visitor<'de> for JsonVisitor {
    type Value = serde_json::Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // Non-finite doubles as JSON sinks write them.
        let text = || {
            if v.is_nan() {
                "NaN"
            } else if v > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            }
        };
        Ok(serde_json::Number::from_f64(v).map_or_else(|| text().into(), serde_json::Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(v.iter().map(|b| serde_json::Value::from(*b)).collect())
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Json::deserialize(d).map(|j| j.0)
    }
    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Json::deserialize(d).map(|j| j.0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Json(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(out.into())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some((Json(k), Json(v))) = map.next_entry()? {
            let k = match k {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            out.insert(k, v);
        }
        Ok(out.into())
    }
}

/// Why a row did not deserialize, without the values (serde_arrow's messages may quote one).
fn reason(e: &serde_arrow::Error) -> String {
    let text = e.to_string();
    // "Error: <message> (field: \"$.a.b\", data_type: \"…\")": keep the field path.
    let message = text.strip_prefix("Error: ").unwrap_or(&text);
    let (message, annotations) = match message.find(" (") {
        Some(at) => (&message[..at], &message[at..]),
        None => (message, ""),
    };
    let field = annotations
        .split("field: \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(|f| f.trim_start_matches("$.").to_string());
    let message = match message {
        "required array value is null" => "null, but the schema requires a value".to_string(),
        m => crate::record::without_values(m),
    };
    match field {
        Some(f) if !f.is_empty() && f != "$" => format!("field `{f}`: {message}"),
        _ => message,
    }
}

/// The batch as the rows' deserializer reads it: with `want` (the fields of the row type), only
/// the columns it names, and inside structs only the fields it names, so a column the rows do not
/// have never matters; and each column in the form serde_arrow reads for its field. Timestamps of
/// any unit and zone (and dates, for a timestamp field) become milliseconds in UTC, rounded down;
/// integers and `Float32` for a double field become `Float64`; dictionaries of string views (a
/// Polars categorical) become dictionaries of strings.
fn conform_batch(batch: &RecordBatch, want: Option<&[FieldRef]>) -> Result<RecordBatch, String> {
    let schema = batch.schema();
    let picked: Vec<(FieldRef, Option<&DataType>)> = match want {
        None => schema.fields().iter().map(|f| (f.clone(), None)).collect(),
        Some(want) => want
            .iter()
            .filter_map(|w| {
                schema.fields().iter().find(|f| f.name() == w.name()).map(|f| (f.clone(), Some(w.data_type())))
            })
            .collect(),
    };
    let mut fields = Vec::with_capacity(picked.len());
    let mut columns = Vec::with_capacity(picked.len());
    for (f, w) in picked {
        let (i, _) = schema.column_with_name(f.name()).ok_or("internal: a column vanished")?;
        let c = conform(batch.column(i), w)?;
        fields.push(Arc::new(Field::new(f.name(), c.data_type().clone(), f.is_nullable())));
        columns.push(c);
    }
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options).map_err(|e| e.to_string())
}

/// One column in the form its field reads (see [`conform_batch`]); `want` is the field's type,
/// when known.
fn conform(a: &ArrayRef, want: Option<&DataType>) -> Result<ArrayRef, String> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{
        Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
        TimestampMicrosecondType as Us, TimestampMillisecondType as Ms, TimestampNanosecondType as Ns,
        TimestampSecondType as S, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
    };
    use DataType as D;
    let utc: Option<Arc<str>> = Some("UTC".into());
    let want_struct = |w: Option<&DataType>| match w {
        Some(D::Struct(fs)) => Some(fs.clone()),
        _ => None,
    };
    macro_rules! to_f64 {
        ($t:ty) => {
            Arc::new(a.as_primitive::<$t>().unary::<_, Float64Type>(|v| v as f64))
        };
    }
    let out: ArrayRef = match (want, a.data_type()) {
        (Some(D::Float64), D::Int8) => to_f64!(Int8Type),
        (Some(D::Float64), D::Int16) => to_f64!(Int16Type),
        (Some(D::Float64), D::Int32) => to_f64!(Int32Type),
        (Some(D::Float64), D::Int64) => to_f64!(Int64Type),
        (Some(D::Float64), D::UInt8) => to_f64!(UInt8Type),
        (Some(D::Float64), D::UInt16) => to_f64!(UInt16Type),
        (Some(D::Float64), D::UInt32) => to_f64!(UInt32Type),
        (Some(D::Float64), D::UInt64) => to_f64!(UInt64Type),
        (Some(D::Float64), D::Float32) => to_f64!(Float32Type),
        (_, D::Timestamp(TimeUnit::Millisecond, Some(tz))) if tz.as_ref() == "UTC" => a.clone(),
        (_, D::Timestamp(unit, _)) => {
            let ms: PrimitiveArray<Ms> = match unit {
                TimeUnit::Second => a
                    .as_primitive::<S>()
                    .try_unary(|v| v.checked_mul(1000).ok_or(()))
                    .map_err(|()| "a timestamp in seconds out of range".to_string())?,
                TimeUnit::Millisecond => a.as_primitive::<Ms>().unary(|v| v),
                TimeUnit::Microsecond => a.as_primitive::<Us>().unary(|v| v.div_euclid(1000)),
                TimeUnit::Nanosecond => a.as_primitive::<Ns>().unary(|v| v.div_euclid(1_000_000)),
            };
            Arc::new(ms.with_timezone_opt(utc))
        }
        (Some(D::Timestamp(..)), D::Date32) => {
            let ms: PrimitiveArray<Ms> = a.as_primitive::<Date32Type>().unary(|d| i64::from(d) * 86_400_000);
            Arc::new(ms.with_timezone_opt(utc))
        }
        (Some(D::Timestamp(..)), D::Date64) => {
            let ms: PrimitiveArray<Ms> = a.as_primitive::<Date64Type>().unary(|v| v);
            Arc::new(ms.with_timezone_opt(utc))
        }
        (_, D::Dictionary(_, v)) if **v == D::Utf8View => {
            let d = a.as_any_dictionary_opt().ok_or("internal: not a dictionary array")?;
            let views = d.values().as_string_view_opt().ok_or("internal: not a string view array")?;
            let strings: arrow_array::StringArray = views.iter().collect();
            d.with_values(Arc::new(strings))
        }
        (w, D::List(_)) => list::<i32>(a, element(w))?,
        (w, D::LargeList(_)) => list::<i64>(a, element(w))?,
        (w, D::Struct(_)) => Arc::new(conform_struct(a.as_struct(), want_struct(w).as_ref())?),
        (w, D::Map(_, sorted)) => {
            let m = a.as_map();
            let (key_want, value_want) = match w {
                Some(D::Map(e, _)) => match e.data_type() {
                    D::Struct(kv) if kv.len() == 2 => {
                        (Some(kv[0].data_type().clone()), Some(kv[1].data_type().clone()))
                    }
                    _ => (None, None),
                },
                _ => (None, None),
            };
            let entries = m.entries();
            let (kf, vf) = (entries.fields()[0].clone(), entries.fields()[1].clone());
            let key = conform(entries.column(0), key_want.as_ref())?;
            let value = conform(entries.column(1), value_want.as_ref())?;
            let fields = vec![
                Arc::new(kf.as_ref().clone().with_data_type(key.data_type().clone())),
                Arc::new(vf.as_ref().clone().with_data_type(value.data_type().clone())),
            ];
            let entries = StructArray::try_new(fields.into(), vec![key, value], entries.nulls().cloned())
                .map_err(|e| e.to_string())?;
            let field = Arc::new(Field::new("entries", entries.data_type().clone(), false));
            Arc::new(
                MapArray::try_new(field, m.offsets().clone(), entries, m.nulls().cloned(), *sorted)
                    .map_err(|e| e.to_string())?,
            )
        }
        _ => a.clone(),
    };
    Ok(out)
}

/// The element type of a list type, when known.
fn element(want: Option<&DataType>) -> Option<&DataType> {
    match want {
        Some(DataType::List(f) | DataType::LargeList(f)) => Some(f.data_type()),
        _ => None,
    }
}

fn list<O: OffsetSizeTrait>(a: &ArrayRef, want: Option<&DataType>) -> Result<ArrayRef, String> {
    let l = a.as_any().downcast_ref::<GenericListArray<O>>().ok_or("internal: not a list array")?;
    let (DataType::List(f) | DataType::LargeList(f)) = a.data_type() else { return Err("internal: not a list".into()) };
    let values = conform(l.values(), want)?;
    let field = Arc::new(f.as_ref().clone().with_data_type(values.data_type().clone()));
    Ok(Arc::new(
        GenericListArray::<O>::try_new(field, l.offsets().clone(), values, l.nulls().cloned())
            .map_err(|e| e.to_string())?,
    ))
}

/// A struct column with, when `want` is known, only the fields it names.
fn conform_struct(s: &StructArray, want: Option<&arrow_schema::Fields>) -> Result<StructArray, String> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, c) in s.fields().iter().zip(s.columns()) {
        let w = match want {
            None => None,
            Some(ws) => match ws.iter().find(|w| w.name() == f.name()) {
                Some(w) => Some(w.data_type()),
                None => continue,
            },
        };
        let c = conform(c, w)?;
        fields.push(Arc::new(f.as_ref().clone().with_data_type(c.data_type().clone())));
        columns.push(c);
    }
    if fields.is_empty() {
        return Ok(StructArray::new_empty_fields(s.len(), s.nulls().cloned()));
    }
    StructArray::try_new(fields.into(), columns, s.nulls().cloned()).map_err(|e| e.to_string())
}

/// Whether a file's schema can be read as a source's rows: every required field present, and
/// every field the source reads of a type that converts to the declared one. An error names
/// the first column that does not fit, and what it has instead.
pub fn check_schema(expected: &[FieldRef], file: &Schema) -> Result<(), String> {
    if !expected.is_empty() && !expected.iter().any(|w| file.fields().iter().any(|f| f.name() == w.name())) {
        return Err("it has none of the schema's columns".into());
    }
    for want in expected {
        let mut same = file.fields().iter().filter(|f| f.name() == want.name());
        let found = same.next();
        if same.next().is_some() {
            return Err(format!("it has two columns named `{}`", want.name()));
        }
        match found {
            None if want.is_nullable() => {}
            None => {
                return Err(format!("it has no column `{}` ({} in the schema)", want.name(), show(want.data_type())))
            }
            Some(have) if *have.data_type() == DataType::Null && !want.is_nullable() => {
                return Err(format!(
                    "column `{}` holds only nulls (Arrow's null type), but the schema requires a value",
                    want.name()
                ));
            }
            Some(have) => {
                if let Err(path) = fits(want.data_type(), have.data_type()) {
                    let at = if path.is_empty() { String::new() } else { format!(" at `{path}`") };
                    return Err(format!(
                        "column `{}` is {}{at}, which cannot be read as the schema's {}",
                        want.name(),
                        show(have.data_type()),
                        show(want.data_type())
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether values of `have` read as `want`; on a mismatch, the path inside the value.
fn fits(want: &DataType, have: &DataType) -> Result<(), String> {
    use DataType as D;
    let ok = match (want, have) {
        // A column of Arrow's null type holds nulls alone (Polars writes one for a struct field
        // that is null in every row): it reads as any type, and a row needing a value is
        // rejected.
        (_, D::Null) => true,
        (D::Boolean, D::Boolean) => true,
        (D::Int64, h) => h.is_integer(),
        (D::Float64, h) => matches!(h, D::Float32 | D::Float64) || h.is_integer(),
        (D::Utf8, h) => is_text(h),
        (D::Binary, D::Binary | D::LargeBinary | D::BinaryView) => true,
        (D::Timestamp(..), D::Timestamp(..) | D::Date32 | D::Date64) => true,
        (D::Date32, D::Date32) => true,
        (D::Duration(TimeUnit::Millisecond), D::Duration(TimeUnit::Millisecond)) => true,
        (D::Dictionary(..), h) => is_text(h) || h.is_integer(),
        (D::List(w), D::List(h) | D::LargeList(h)) => {
            return fits(w.data_type(), h.data_type()).map_err(|p| join("[]", &p));
        }
        (D::Map(w, _), D::Map(h, _)) => {
            let (D::Struct(w), D::Struct(h)) = (w.data_type(), h.data_type()) else { return Err(String::new()) };
            for (wf, hf) in w.iter().zip(h.iter()) {
                fits(wf.data_type(), hf.data_type()).map_err(|p| join(&format!("<{}>", wf.name()), &p))?;
            }
            return if w.len() == h.len() { Ok(()) } else { Err(String::new()) };
        }
        (D::Struct(w), D::Struct(h)) => {
            for wf in w {
                match h.iter().find(|f| f.name() == wf.name()) {
                    None if wf.is_nullable() => {}
                    None => return Err(wf.name().clone()),
                    Some(hf) => fits(wf.data_type(), hf.data_type()).map_err(|p| join(wf.name(), &p))?,
                }
            }
            return Ok(());
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(String::new())
    }
}

fn join(head: &str, tail: &str) -> String {
    match (head.starts_with(['[', '<']), tail.is_empty()) {
        (_, true) => head.to_string(),
        (_, false) if tail.starts_with(['[', '<']) => format!("{head}{tail}"),
        _ => format!("{head}.{tail}"),
    }
}

fn is_text(dt: &DataType) -> bool {
    match dt {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => matches!(v.as_ref(), DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View),
        _ => false,
    }
}

/// A type as a user reads it in an error.
fn show(dt: &DataType) -> String {
    match dt {
        DataType::List(f) | DataType::LargeList(f) => format!("a list of {}", show(f.data_type())),
        DataType::Struct(_) => "a struct".into(),
        DataType::Map(..) => "a map".into(),
        DataType::Dictionary(_, v) => format!("a dictionary of {}", show(v)),
        other => other.to_string(),
    }
}

/// The bytes of an Arrow IPC file, checked before arrow-ipc reads them: the footer's blocks
/// must lie inside the file (the reader allocates a block's claimed length before reading it,
/// so a corrupt length would be gigabytes), and a batch may not claim more rows than its bytes
/// could hold (a batch of null-typed columns has no buffers, so its row count is unchecked).
/// Decoding runs under `catch_unwind` (a panic in the decoder is an error naming the file);
/// `each` runs outside it.
pub fn read_ipc_file(bytes: Vec<u8>, mut each: impl FnMut(usize, &RecordBatch)) -> Result<SchemaRef, String> {
    read_ipcs(bytes, &mut each)
}

fn read_ipcs(bytes: Vec<u8>, each: &mut dyn FnMut(usize, &RecordBatch)) -> Result<SchemaRef, String> {
    check_blocks(&bytes)?;
    let most_rows = bytes.len().saturating_mul(8).saturating_add(1024);
    let mut reader = decoding(|| arrow_ipc::reader::FileReader::try_new(io::Cursor::new(bytes), None))?;
    let schema = reader.schema();
    let mut first = 0;
    while let Some(batch) = decoding(|| reader.next().transpose())? {
        if batch.num_rows() > most_rows {
            return Err(format!(
                "a record batch claims {} rows, more than the file's bytes can hold",
                batch.num_rows()
            ));
        }
        each(first, &batch);
        first += batch.num_rows();
    }
    Ok(schema)
}

/// Runs a step of arrow-ipc's decoder; its errors and panics become the file's error.
fn decoding<T>(step: impl FnOnce() -> Result<T, arrow_schema::ArrowError>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)) {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(panic) => {
            Err(format!("not a readable Arrow IPC file (its decoder failed: {})", crate::pq::panic_message(&*panic)))
        }
    }
}

/// Only the schema of an IPC file.
pub fn ipc_schema(bytes: &[u8]) -> Result<SchemaRef, String> {
    check_blocks(bytes)?;
    decoding(|| arrow_ipc::reader::FileReader::try_new(io::Cursor::new(bytes), None).map(|r| r.schema()))
}

fn check_blocks(bytes: &[u8]) -> Result<(), String> {
    let n = bytes.len();
    if n < 18 || &bytes[..6] != b"ARROW1" || &bytes[n - 6..] != b"ARROW1" {
        return Err("not an Arrow IPC file (the `ARROW1` magic is missing; an IPC stream is not a file)".into());
    }
    let footer_len = i32::from_le_bytes([bytes[n - 10], bytes[n - 9], bytes[n - 8], bytes[n - 7]]);
    let footer_len = usize::try_from(footer_len).map_err(|_| "a negative footer length".to_string())?;
    let start = (n - 10).checked_sub(footer_len).ok_or("a footer longer than the file")?;
    let footer = arrow_ipc::root_as_footer(&bytes[start..n - 10]).map_err(|e| format!("an unreadable footer ({e})"))?;
    if footer.schema().is_none() {
        return Err("a footer without a schema".into());
    }
    let blocks = footer.recordBatches().into_iter().flatten().chain(footer.dictionaries().into_iter().flatten());
    for b in blocks {
        let end = u64::try_from(b.offset())
            .ok()
            .zip(u64::try_from(b.bodyLength()).ok())
            .zip(u64::try_from(b.metaDataLength()).ok())
            .and_then(|((o, body), meta)| o.checked_add(body)?.checked_add(meta));
        if end.is_none_or(|e| e > start as u64) {
            return Err(format!("a block at byte {} that ends past the data", b.offset()));
        }
        // Within the file now: offsets and lengths fit in usize.
        let (offset, meta, body) = (b.offset() as usize, b.metaDataLength() as usize, b.bodyLength() as usize);
        check_compressed(&bytes[offset..offset + meta], &bytes[offset + meta..offset + meta + body])
            .map_err(|why| format!("the block at byte {offset}: {why}"))?;
    }
    Ok(())
}

/// LZ4's best ratio: a frame cannot expand its input more than this.
const LZ4_MOST_EXPANSION: usize = 256;

/// A block's compressed buffers may not claim more bytes than LZ4 can expand them to: arrow-ipc
/// allocates a buffer's claimed uncompressed length before decompressing it.
fn check_compressed(meta: &[u8], body: &[u8]) -> Result<(), String> {
    // The message: an optional continuation marker, its length, then the flatbuffer.
    let at = if meta.starts_with(&[0xff; 4]) { 4 } else { 0 };
    let len = meta.get(at..at + 4).map(|l| i32::from_le_bytes([l[0], l[1], l[2], l[3]]));
    let Some(len) = len.and_then(|l| usize::try_from(l).ok()) else {
        return Err("an unreadable message length".into());
    };
    let Some(fb) = meta.get(at + 4..at + 4 + len) else { return Err("a message longer than its block".into()) };
    let message = arrow_ipc::root_as_message(fb).map_err(|e| format!("an unreadable message ({e})"))?;
    let batch =
        message.header_as_record_batch().or_else(|| message.header_as_dictionary_batch().and_then(|d| d.data()));
    let Some(batch) = batch else { return Ok(()) };
    if batch.compression().is_none() {
        return Ok(());
    }
    for buffer in batch.buffers().into_iter().flatten() {
        let start = usize::try_from(buffer.offset()).map_err(|_| "a negative buffer offset".to_string())?;
        let len = usize::try_from(buffer.length()).map_err(|_| "a negative buffer length".to_string())?;
        let Some(data) = start.checked_add(len).and_then(|end| body.get(start..end)) else {
            return Err("a buffer past the end of its block".into());
        };
        if let Some(prefix) = data.get(..8) {
            let claimed = i64::from_le_bytes(prefix.try_into().unwrap_or_default());
            // -1: stored uncompressed.
            let most = (len - 8).saturating_mul(LZ4_MOST_EXPANSION).saturating_add(64);
            if claimed != -1 && usize::try_from(claimed).is_ok_and(|c| c > most) {
                return Err(format!("a compressed buffer of {len} bytes claims {claimed} bytes uncompressed"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
