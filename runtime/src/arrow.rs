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
//! | `bool`, `i64`, `double`, `string`, `binary` | `Boolean`, `Int64`, `Float64`, `Utf8`, `Binary` |
//! | `timestamp` | `Timestamp(Millisecond, "UTC")` (read from any unit and zone) |
//! | `date`, `duration` | `Date32`, `Duration(Millisecond)` |
//! | an enum | `Dictionary(Int32, Utf8)` of its names (read also from strings or numbers) |
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

use crate::record::{with_arrow_rows, Line, Origin, Reject};
use crate::run::RunError;
use crate::sink::Record;

/// The Arrow fields of a row type, from the descriptor generated code embeds.
pub fn fields(descriptor: &str) -> io::Result<Vec<FieldRef>> {
    let value: serde_json::Value = serde_json::from_str(descriptor).map_err(io::Error::other)?;
    Vec::<FieldRef>::from_value(&value).map_err(|e| io::Error::other(format!("internal: an Arrow schema: {e}")))
}

/// The schema of a row type.
pub fn schema(descriptor: &str) -> io::Result<SchemaRef> {
    Ok(Arc::new(Schema::new(fields(descriptor)?)))
}

/// Rows as one record batch with the given fields.
pub fn to_batch<R: Serialize>(fields: &[FieldRef], rows: &[R]) -> io::Result<RecordBatch> {
    with_arrow_rows(|| serde_arrow::to_record_batch(fields, &rows))
        .map_err(|e| io::Error::other(format!("rows to Arrow: {e}")))
}

/// The rows of a record batch as `T`: every row, or the first that does not fit `T` (a null
/// where the schema requires a value, a number out of range, a name no enum has), with its
/// index. Timestamps of any unit are read as milliseconds.
pub fn from_batch<T: DeserializeOwned>(batch: &RecordBatch) -> Result<Vec<T>, (usize, String)> {
    let mut out = Vec::with_capacity(batch.num_rows());
    let mut failed = None;
    with_rows(batch, At { source: "", file: "", first: 0 }, |rows| {
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

/// The rows of `batches` as `T`, for input `name` of an in-memory run (`run_batch_arrow`):
/// each batch's columns are checked against `descriptor` first, and a row that does not fit is
/// an error that names the input, the batch and the row.
pub fn input_rows<T: DeserializeOwned>(
    name: &str,
    descriptor: &str,
    batches: &[RecordBatch],
) -> Result<Vec<T>, RunError> {
    let want = fields(descriptor)?;
    let mut out = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for (b, batch) in batches.iter().enumerate() {
        check_schema(&want, &batch.schema()).map_err(|e| RunError::Setup(format!("input `{name}`, batch {b}: {e}")))?;
        let rows = from_batch::<T>(batch)
            .map_err(|(i, why)| RunError::Setup(format!("input `{name}`, batch {b}, row {i}: {why}")))?;
        out.extend(rows);
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

/// Calls `f` with the rows of `batch` (its timestamps converted to milliseconds first).
pub fn with_rows<'a>(batch: &RecordBatch, at: At<'a>, f: impl FnOnce(&Rows<'_>)) {
    let n = batch.num_rows();
    match normalize(batch) {
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

/// The batch with every timestamp column (nested ones too) in milliseconds, rounded down.
fn normalize(batch: &RecordBatch) -> Result<RecordBatch, String> {
    if !batch.schema().fields().iter().any(|f| needs_normalizing(f.data_type())) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (f, c) in batch.schema().fields().iter().zip(batch.columns()) {
        let (dt, c) = millis(c)?;
        fields.push(Arc::new(f.as_ref().clone().with_data_type(dt)));
        columns.push(c);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

fn needs_normalizing(dt: &DataType) -> bool {
    match dt {
        DataType::Timestamp(unit, tz) => *unit != TimeUnit::Millisecond || tz.is_none(),
        DataType::List(f) | DataType::LargeList(f) | DataType::Map(f, _) => needs_normalizing(f.data_type()),
        DataType::Struct(fs) => fs.iter().any(|f| needs_normalizing(f.data_type())),
        // serde_arrow reads dictionaries of `Utf8` and `LargeUtf8` values, not of views (what
        // Polars writes for a categorical column).
        DataType::Dictionary(_, v) => **v == DataType::Utf8View,
        _ => false,
    }
}

/// An array with its timestamps in milliseconds (UTC), and its new type.
fn millis(a: &ArrayRef) -> Result<(DataType, ArrayRef), String> {
    use arrow_array::types::{
        TimestampMicrosecondType as Us, TimestampMillisecondType as Ms, TimestampNanosecondType as Ns,
        TimestampSecondType as S,
    };
    let utc: Option<Arc<str>> = Some("UTC".into());
    let dt = a.data_type().clone();
    if !needs_normalizing(&dt) {
        return Ok((dt, a.clone()));
    }
    let out: ArrayRef = match &dt {
        DataType::Timestamp(unit, _) => {
            let scaled: PrimitiveArray<Ms> = match unit {
                TimeUnit::Second => prim::<S>(a)?
                    .try_unary(|v| v.checked_mul(1000).ok_or(()))
                    .map_err(|()| "a timestamp in seconds out of range".to_string())?,
                TimeUnit::Millisecond => prim::<Ms>(a)?.unary(|v| v),
                TimeUnit::Microsecond => prim::<Us>(a)?.unary(|v| v.div_euclid(1000)),
                TimeUnit::Nanosecond => prim::<Ns>(a)?.unary(|v| v.div_euclid(1_000_000)),
            };
            Arc::new(scaled.with_timezone_opt(utc))
        }
        DataType::List(_) => list::<i32>(a)?,
        DataType::LargeList(_) => list::<i64>(a)?,
        DataType::Struct(_) => {
            let s = a.as_any().downcast_ref::<StructArray>().ok_or("internal: not a struct array")?;
            Arc::new(normalized_struct(s)?)
        }
        DataType::Map(_, sorted) => {
            let m = a.as_any().downcast_ref::<MapArray>().ok_or("internal: not a map array")?;
            let entries = normalized_struct(m.entries())?;
            let field = Arc::new(Field::new("entries", entries.data_type().clone(), false));
            Arc::new(
                MapArray::try_new(field, m.offsets().clone(), entries, m.nulls().cloned(), *sorted)
                    .map_err(|e| e.to_string())?,
            )
        }
        DataType::Dictionary(..) => {
            use arrow_array::cast::AsArray;
            let d = a.as_any_dictionary_opt().ok_or("internal: not a dictionary array")?;
            let views = d.values().as_string_view_opt().ok_or("internal: not a string view array")?;
            let strings: arrow_array::StringArray = views.iter().collect();
            d.with_values(Arc::new(strings))
        }
        _ => a.clone(),
    };
    Ok((out.data_type().clone(), out))
}

fn prim<T: arrow_array::ArrowPrimitiveType>(a: &ArrayRef) -> Result<&PrimitiveArray<T>, String> {
    a.as_any().downcast_ref::<PrimitiveArray<T>>().ok_or_else(|| "internal: a timestamp array of another unit".into())
}

fn list<O: OffsetSizeTrait>(a: &ArrayRef) -> Result<ArrayRef, String> {
    let l = a.as_any().downcast_ref::<GenericListArray<O>>().ok_or("internal: not a list array")?;
    let (DataType::List(f) | DataType::LargeList(f)) = a.data_type() else { return Err("internal: not a list".into()) };
    let (dt, values) = millis(l.values())?;
    let field = Arc::new(f.as_ref().clone().with_data_type(dt));
    Ok(Arc::new(
        GenericListArray::<O>::try_new(field, l.offsets().clone(), values, l.nulls().cloned())
            .map_err(|e| e.to_string())?,
    ))
}

fn normalized_struct(s: &StructArray) -> Result<StructArray, String> {
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (f, c) in s.fields().iter().zip(s.columns()) {
        let (dt, c) = millis(c)?;
        fields.push(Arc::new(f.as_ref().clone().with_data_type(dt)));
        columns.push(c);
    }
    StructArray::try_new(fields.into(), columns, s.nulls().cloned()).map_err(|e| e.to_string())
}

/// Whether a file's schema can be read as a source's rows: every required field present, and
/// every field the source reads of a type that converts to the declared one. An error names
/// the first column that does not fit, and what it has instead.
pub fn check_schema(expected: &[FieldRef], file: &Schema) -> Result<(), String> {
    for want in expected {
        match file.fields().iter().find(|f| f.name() == want.name()) {
            None if want.is_nullable() => {}
            None => {
                return Err(format!("it has no column `{}` ({} in the schema)", want.name(), show(want.data_type())))
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
        (D::Float64, h) => h.is_floating() || h.is_integer(),
        (D::Utf8, h) => is_text(h),
        (D::Binary, D::Binary | D::LargeBinary | D::BinaryView) => true,
        (D::Timestamp(..), D::Timestamp(..)) => true,
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
/// so a corrupt length would be gigabytes).
pub fn read_ipc_file(bytes: Vec<u8>, mut each: impl FnMut(usize, &RecordBatch)) -> Result<SchemaRef, String> {
    check_blocks(&bytes)?;
    let read = std::panic::AssertUnwindSafe(|| -> Result<SchemaRef, String> {
        let reader = arrow_ipc::reader::FileReader::try_new(io::Cursor::new(bytes), None).map_err(|e| e.to_string())?;
        let schema = reader.schema();
        let mut first = 0;
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            each(first, &batch);
            first += batch.num_rows();
        }
        Ok(schema)
    });
    std::panic::catch_unwind(read).unwrap_or_else(|_| Err("not a readable Arrow IPC file (its decoder failed)".into()))
}

/// Only the schema of an IPC file.
pub fn ipc_schema(bytes: &[u8]) -> Result<SchemaRef, String> {
    check_blocks(bytes)?;
    let read = std::panic::AssertUnwindSafe(|| {
        arrow_ipc::reader::FileReader::try_new(io::Cursor::new(bytes), None)
            .map(|r| r.schema())
            .map_err(|e| e.to_string())
    });
    std::panic::catch_unwind(read).unwrap_or_else(|_| Err("not a readable Arrow IPC file (its decoder failed)".into()))
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
    }
    Ok(())
}

#[cfg(test)]
mod tests;
