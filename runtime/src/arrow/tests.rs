//! The Arrow conversions against rows shaped as generated code shapes them: round trips, other
//! writers' encodings, misfit schemas, bad rows, corrupt files, a sink of many buffers.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::{Array, Int64Array, StringArray, TimestampMicrosecondArray};
use serde::{Deserialize, Serialize};

use super::*;

crate::pipe_enum!(Grade, "Grade", [(A, "A", 1), (B, "B", 2)]);

/// A row as generated code declares one: the attributes of `codegen/rows.rs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Inner {
    #[serde(deserialize_with = "crate::value::ts_millis::deserialize", serialize_with = "crate::value::ser_ts")]
    at: i64,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    id: i64,
    #[serde(serialize_with = "crate::value::ser_f64")]
    x: f64,
    #[serde(default, serialize_with = "crate::value::ser_opt_f64")]
    y: Option<f64>,
    #[serde(deserialize_with = "crate::value::ts_seconds::deserialize", serialize_with = "crate::value::ser_ts")]
    t: i64,
    #[serde(deserialize_with = "crate::value::de_date", serialize_with = "crate::value::ser_date")]
    d: i32,
    grade: Grade,
    #[serde(default)]
    maybe: Option<Grade>,
    blob: Vec<u8>,
    tags: Vec<String>,
    inner: Vec<Inner>,
    counts: BTreeMap<String, i64>,
    #[serde(default)]
    child: Option<Inner>,
    ok: bool,
}

const ROW: &str = r#"[
 {"name":"id","data_type":"I64"},
 {"name":"x","data_type":"F64"},
 {"name":"y","data_type":"F64","nullable":true},
 {"name":"t","data_type":"Timestamp(Millisecond, Some(\"UTC\"))"},
 {"name":"d","data_type":"Date32"},
 {"name":"grade","data_type":"Dictionary","children":[{"name":"key","data_type":"I32"},{"name":"value","data_type":"Utf8"}]},
 {"name":"maybe","data_type":"Dictionary","nullable":true,"children":[{"name":"key","data_type":"I32"},{"name":"value","data_type":"Utf8"}]},
 {"name":"blob","data_type":"Binary"},
 {"name":"tags","data_type":"List","children":[{"name":"element","data_type":"Utf8"}]},
 {"name":"inner","data_type":"List","children":[{"name":"element","data_type":"Struct","children":[
   {"name":"at","data_type":"Timestamp(Millisecond, Some(\"UTC\"))"},{"name":"note","data_type":"Utf8","nullable":true}]}]},
 {"name":"counts","data_type":"Map","children":[{"name":"entries","data_type":"Struct","children":[
   {"name":"key","data_type":"Utf8"},{"name":"value","data_type":"I64"}]}]},
 {"name":"child","data_type":"Struct","nullable":true,"children":[
   {"name":"at","data_type":"Timestamp(Millisecond, Some(\"UTC\"))"},{"name":"note","data_type":"Utf8","nullable":true}]},
 {"name":"ok","data_type":"Bool"}
]"#;

fn rows() -> Vec<Row> {
    vec![
        Row {
            id: 1,
            x: f64::NAN,
            y: Some(f64::NEG_INFINITY),
            t: -1_500,
            d: -3,
            grade: Grade::A,
            maybe: None,
            blob: vec![0, 255],
            tags: vec!["a".into(), "".into()],
            inner: vec![Inner { at: 1_700_000_000_123, note: None }, Inner { at: 0, note: Some("n".into()) }],
            counts: BTreeMap::from([("k".to_string(), 7)]),
            child: Some(Inner { at: 5, note: Some("c".into()) }),
            ok: true,
        },
        Row {
            id: -9,
            x: 2.5,
            y: None,
            t: 1_700_000_000_000,
            d: 19_700,
            grade: Grade::B,
            maybe: Some(Grade::B),
            blob: Vec::new(),
            tags: Vec::new(),
            inner: Vec::new(),
            counts: BTreeMap::new(),
            child: None,
            ok: false,
        },
    ]
}

fn read_back(batch: &RecordBatch) -> Vec<Result<Row, String>> {
    let mut out = Vec::new();
    with_rows(batch, None, At { source: "s", file: "f", first: 0 }, |rows| {
        for i in 0..rows.len() {
            rows.row::<Row>(i, |_, r| out.push(r.map_err(|e| e.0)));
        }
    });
    out
}

fn ipc(batch: &RecordBatch) -> Vec<u8> {
    let mut w = arrow_ipc::writer::FileWriter::try_new(Vec::new(), &batch.schema()).expect("a writer");
    w.write(batch).expect("written");
    w.finish().expect("finished");
    w.into_inner().expect("the bytes")
}

#[test]
fn every_type_round_trips_through_an_ipc_file() {
    let fields = fields(ROW).expect("the descriptor");
    let batch = to_batch(&fields, &rows()).expect("a batch");
    // Arrow types, not text: a timestamp is milliseconds, an enum its name in a dictionary.
    assert_eq!(batch.schema().field(3).data_type(), &DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())));
    assert_eq!(batch.schema().field(4).data_type(), &DataType::Date32);
    assert!(matches!(batch.schema().field(5).data_type(), DataType::Dictionary(..)));
    assert!(batch.column(6).is_null(0) && !batch.column(6).is_null(1));
    let bytes = ipc(&batch);
    let mut batches = Vec::new();
    let schema = read_ipc_file(bytes, |first, b| batches.push((first, b.clone()))).expect("read");
    check_schema(&fields, &schema).expect("its own schema fits");
    assert_eq!(batches.len(), 1);
    let back: Vec<Row> = read_back(&batches[0].1).into_iter().map(|r| r.expect("a row")).collect();
    let want = rows();
    // NaN is not equal to itself: compare its bits.
    assert!(back[0].x.is_nan());
    assert_eq!(back[0].y, Some(f64::NEG_INFINITY));
    let clear = |mut r: Vec<Row>| {
        r[0].x = 0.0;
        r
    };
    assert_eq!(clear(back), clear(want));
}

#[test]
fn timestamps_of_any_unit_are_read_as_milliseconds() {
    let fields = fields(r#"[{"name":"at","data_type":"Timestamp(Millisecond, Some(\"UTC\"))"},{"name":"note","data_type":"Utf8","nullable":true}]"#)
        .expect("fields");
    let micros = TimestampMicrosecondArray::from(vec![1_500_999, -1]);
    let file = Schema::new(vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("extra", DataType::Int64, false),
    ]);
    check_schema(&fields, &file).expect("a microsecond column fits; an extra column is ignored; `note` may be absent");
    let batch = RecordBatch::try_new(Arc::new(file), vec![Arc::new(micros), Arc::new(Int64Array::from(vec![1, 2]))])
        .expect("a batch");
    let got = from_batch::<Inner>(&batch, Some(&fields)).expect("rows");
    // Rounded down, as Parquet's are: -1 µs is the millisecond before the epoch.
    assert_eq!(got, vec![Inner { at: 1_500, note: None }, Inner { at: -1, note: None }]);
}

#[test]
fn a_file_whose_columns_do_not_fit_is_refused_by_name() {
    let fields = fields(ROW).expect("fields");
    let file = Schema::new(vec![Field::new("id", DataType::Utf8, false)]);
    let err = check_schema(&fields, &file).expect_err("a string id");
    assert_eq!(err, "column `id` is Utf8, which cannot be read as the schema's Int64");
    let file = Schema::new(vec![Field::new("other", DataType::Int32, false)]);
    let err = check_schema(&fields, &file).expect_err("no column in common");
    assert_eq!(err, "it has none of the schema's columns");
    let file = Schema::new(vec![Field::new("id", DataType::Int32, false)]);
    let err = check_schema(&fields, &file).expect_err("no x");
    assert_eq!(err, "it has no column `x` (Float64 in the schema)");
    let inner = fields[9].clone();
    let wrong = Field::new(
        "inner",
        DataType::List(Arc::new(Field::new(
            "element",
            DataType::Struct(vec![Field::new("at", DataType::Utf8, false)].into()),
            true,
        ))),
        false,
    );
    let err = check_schema(&[inner], &Schema::new(vec![wrong])).expect_err("a nested string");
    assert_eq!(
        err,
        "column `inner` is a list of a struct at `[].at`, which cannot be read as the schema's a list of a struct"
    );
}

#[test]
fn a_row_that_does_not_fit_is_rejected_alone_with_its_field() {
    let file = Schema::new(vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("note", DataType::Utf8, true),
    ]);
    let batch = RecordBatch::try_new(
        Arc::new(file),
        vec![
            Arc::new(arrow_array::TimestampMillisecondArray::from(vec![Some(1), None, Some(3)])),
            Arc::new(StringArray::from(vec![Some("a"), Some("secret"), None])),
        ],
    )
    .expect("a batch");
    let mut got = Vec::new();
    with_rows(&batch, None, At { source: "s", file: "f.arrow", first: 10 }, |rows| {
        for i in 0..rows.len() {
            rows.row::<Inner>(i, |o, r| {
                got.push((o.position(), r.map_err(|e| e.0), String::from_utf8_lossy(o.raw).into_owned()))
            });
        }
    });
    assert_eq!(got[0], ("f.arrow@10".into(), Ok(Inner { at: 1, note: Some("a".into()) }), String::new()));
    let (position, why, raw) = &got[1];
    assert_eq!(position, "f.arrow@11");
    let why = why.as_ref().expect_err("a null time");
    assert_eq!(why, "field `at`: null, but the schema requires a value");
    assert!(!why.contains("secret"), "{why}");
    assert_eq!(raw, r#"{"at":null,"note":"secret"}"#);
    assert_eq!(got[2].1, Ok(Inner { at: 3, note: None }));
}

#[test]
fn corrupt_ipc_files_are_errors_not_crashes() {
    let fields = fields(ROW).expect("fields");
    let bytes = ipc(&to_batch(&fields, &rows()).expect("a batch"));
    let read = |b: Vec<u8>| read_ipc_file(b, |_, _| {}).map(|_| ());
    assert!(read(bytes.clone()).is_ok());
    assert!(read(b"{\"id\": 1}\n".to_vec()).expect_err("JSON").contains("ARROW1"));
    // Every truncation and every single-byte change: an error or rows, never a panic.
    for cut in (0..bytes.len()).step_by(7) {
        let _ = read(bytes[..cut].to_vec());
    }
    for at in (0..bytes.len()).step_by(3) {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        let _ = read(b);
    }
    // A block that claims more bytes than the file has is refused before it is allocated.
    let n = bytes.len();
    let footer_len = i32::from_le_bytes([bytes[n - 10], bytes[n - 9], bytes[n - 8], bytes[n - 7]]) as usize;
    let footer = arrow_ipc::root_as_footer(&bytes[n - 10 - footer_len..n - 10]).expect("a footer");
    let block = footer.recordBatches().expect("blocks").get(0);
    let body = block.bodyLength().to_le_bytes();
    let at = bytes.windows(8).rposition(|w| w == body).expect("the body length in the footer");
    let mut b = bytes.clone();
    b[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    assert!(read(b).expect_err("a huge block").contains("ends past the data"));
}

/// A sink row as generated code declares one, with an enum.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Out {
    n: i64,
    grade: Grade,
    #[serde(default)]
    maybe: Option<Grade>,
}

impl Record for Out {
    const COLUMNS: &'static [&'static str] = &["n", "grade", "maybe"];
    const PARQUET_SCHEMA: &'static str = "";
    const ARROW_SCHEMA: &'static str = r#"[{"name":"n","data_type":"I64"},{"name":"grade","data_type":"Utf8"},{"name":"maybe","data_type":"Utf8","nullable":true}]"#;
    fn cells(&self, _: &mut Vec<String>) {}
    fn parquet_row(&self, _: &mut crate::sink::Columns) {}
    fn arrow_batch(fields: &[FieldRef], rows: &[Self]) -> io::Result<RecordBatch> {
        to_batch(fields, rows)
    }
}

#[test]
fn an_arrow_sink_writes_many_buffers_into_one_file() {
    use crate::sink::{Outputs, SinkDecl, SinkFormat, SinkKind};
    let dir = std::env::temp_dir().join(format!("pipe-arrow-sink-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let decl = SinkDecl {
        name: "out",
        kind: SinkKind::Files { format: SinkFormat::Arrow },
        location: Some(dir.display().to_string()),
        beside_first: false,
    };
    let outputs = Outputs::open(vec![decl], "test", true).expect("open");
    // Each buffer has other enum values first (a per-batch dictionary would differ each time).
    let buffers = [
        vec![(0, Grade::B, None)],
        vec![(1, Grade::A, Some(Grade::B)), (2, Grade::B, None)],
        vec![(3, Grade::A, Some(Grade::A))],
    ];
    for rows in &buffers {
        let mut rows: Vec<Out> = rows.iter().map(|&(n, grade, maybe)| Out { n, grade, maybe }).collect();
        outputs.write(0, 0, 0, "", &mut rows).expect("write");
        assert!(rows.is_empty());
    }
    outputs.commit(b"{}").expect("commit");
    let file = dir.join("part-00000.arrow");
    let mut got = Vec::new();
    let mut batches = 0;
    let schema = read_ipc_file(std::fs::read(&file).expect("the file"), |_, b| {
        batches += 1;
        got.extend(from_batch::<Out>(b, None).expect("rows"));
    })
    .expect("an IPC file");
    assert_eq!(batches, 3);
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
    assert_eq!(got.iter().map(|o| (o.n, o.grade, o.maybe)).collect::<Vec<_>>(), buffers.concat());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn columns_are_conformed_to_the_fields_they_are_read_as() {
    use arrow_array::{Date32Array, DictionaryArray, Float32Array, Int32Array, TimestampMillisecondArray};
    #[derive(Debug, PartialEq, Deserialize)]
    struct Want {
        x: f64,
        y: f64,
        #[serde(deserialize_with = "crate::value::ts_millis::deserialize")]
        at: i64,
        #[serde(deserialize_with = "crate::value::ts_millis::deserialize")]
        day: i64,
        inner: Vec<Inner>,
    }
    let want = fields(
        r#"[{"name":"x","data_type":"F64"},{"name":"y","data_type":"F64"},
            {"name":"at","data_type":"Timestamp(Millisecond, Some(\"UTC\"))"},
            {"name":"day","data_type":"Timestamp(Millisecond, Some(\"UTC\"))"},
            {"name":"inner","data_type":"List","children":[{"name":"element","data_type":"Struct","children":[
              {"name":"at","data_type":"Timestamp(Millisecond, Some(\"UTC\"))"},{"name":"note","data_type":"Utf8","nullable":true}]}]}]"#,
    )
    .expect("fields");
    // An unread column serde_arrow cannot read (a dictionary of numbers), and an unread field
    // inside the struct, are left out before anything reads them.
    let odd: DictionaryArray<arrow_array::types::Int8Type> =
        DictionaryArray::new(arrow_array::Int8Array::from(vec![0, 0]), Arc::new(Int64Array::from(vec![7])));
    let inner_fields = vec![
        Field::new("at", DataType::Timestamp(TimeUnit::Millisecond, Some("Europe/Berlin".into())), false),
        Field::new("odd", odd.data_type().clone(), false),
    ];
    let inner = StructArray::new(
        inner_fields.clone().into(),
        vec![
            Arc::new(TimestampMillisecondArray::from(vec![5, 6]).with_timezone("Europe/Berlin")),
            Arc::new(odd.clone()),
        ],
        None,
    );
    let list = arrow_array::ListArray::new(
        Arc::new(Field::new("item", DataType::Struct(inner_fields.into()), false)),
        two_singletons().offsets().clone(),
        Arc::new(inner),
        None,
    );
    let batch = RecordBatch::try_from_iter(vec![
        ("x", Arc::new(Int32Array::from(vec![3, -4])) as ArrayRef),
        ("y", Arc::new(Float32Array::from(vec![0.5, 1.25]))),
        ("at", Arc::new(TimestampMillisecondArray::from(vec![1_000, 2_000]).with_timezone("Europe/Berlin"))),
        ("day", Arc::new(Date32Array::from(vec![1, -1]))),
        ("odd", Arc::new(odd)),
        ("inner", Arc::new(list)),
    ])
    .expect("a batch");
    check_schema(&want, &batch.schema()).expect("fits");
    let got = from_batch::<Want>(&batch, Some(&want)).expect("rows");
    assert_eq!(
        got,
        vec![
            Want { x: 3.0, y: 0.5, at: 1_000, day: 86_400_000, inner: vec![Inner { at: 5, note: None }] },
            Want { x: -4.0, y: 1.25, at: 2_000, day: -86_400_000, inner: vec![Inner { at: 6, note: None }] },
        ]
    );
}

/// The offsets of a list of two one-element lists.
fn two_singletons() -> arrow_array::ListArray {
    use arrow_array::types::Int32Type;
    arrow_array::ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(0)]), Some(vec![Some(0)])])
}

#[test]
fn a_batch_that_claims_more_rows_than_its_bytes_hold_is_refused() {
    // No columns: the row count is the batch's claim alone.
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(1 << 40));
    let batch = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options).expect("a batch");
    let bytes = ipc(&batch);
    let err = read_ipc_file(bytes, |_, _| panic!("no rows are read")).expect_err("too many rows");
    assert!(err.contains("claims 1099511627776 rows"), "{err}");
}

#[test]
fn lz4_files_are_read_and_a_buffer_claiming_too_much_is_refused() {
    use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
    let values: Vec<i64> = (0..1000).map(|i| i % 7).collect();
    let batch = RecordBatch::try_from_iter(vec![("n", Arc::new(Int64Array::from(values.clone())) as ArrayRef)])
        .expect("a batch");
    let options =
        IpcWriteOptions::default().try_with_compression(Some(arrow_ipc::CompressionType::LZ4_FRAME)).expect("LZ4");
    let mut w = FileWriter::try_new_with_options(Vec::new(), &batch.schema(), options).expect("a writer");
    w.write(&batch).expect("written");
    w.finish().expect("finished");
    let bytes = w.into_inner().expect("the bytes");
    assert!(bytes.len() < 8000, "compressed: {} bytes", bytes.len());
    let mut got = Vec::new();
    read_ipc_file(bytes.clone(), |_, b| {
        got.extend(b.column(0).as_any().downcast_ref::<Int64Array>().expect("i64").values().iter().copied());
    })
    .expect("an LZ4 file");
    assert_eq!(got, values);
    // The values buffer says it holds 8,000 bytes uncompressed: make it claim 2^40.
    let at = bytes.windows(8).position(|w| w == 8000i64.to_le_bytes()).expect("the claimed length");
    let mut b = bytes.clone();
    b[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
    let err = read_ipc_file(b, |_, _| {}).expect_err("too much");
    assert!(err.contains("claims 1099511627776 bytes uncompressed"), "{err}");
}

#[test]
fn input_rows_keep_every_row_in_its_place_and_refuse_a_batch_that_cannot_be_converted() {
    const INNER: &str = r#"[{"name":"at","data_type":"Timestamp(Millisecond, Some(\"UTC\"))"},{"name":"note","data_type":"Utf8","nullable":true}]"#;
    let batch = |at: Vec<Option<i64>>, unit: TimeUnit| -> RecordBatch {
        let n = at.len();
        let at: ArrayRef = match unit {
            TimeUnit::Second => Arc::new(arrow_array::TimestampSecondArray::from(at)),
            _ => Arc::new(arrow_array::TimestampMillisecondArray::from(at)),
        };
        let note: ArrayRef = Arc::new(StringArray::from((0..n).map(|i| format!("n{i}")).collect::<Vec<_>>()));
        RecordBatch::try_from_iter([("at", at), ("note", note)]).expect("a batch")
    };
    let first = batch(vec![Some(1), Some(2)], TimeUnit::Millisecond);
    let second = batch(vec![Some(3), None, Some(5)], TimeUnit::Millisecond);
    let got = input_rows::<Inner>("s", INNER, &[first.clone(), second]).expect("the batches fit the schema");
    let got: Vec<Result<i64, (String, String)>> = got
        .into_iter()
        .map(|r| r.map(|row| row.at).map_err(|u| (u.why.0, String::from_utf8_lossy(&u.raw).into_owned())))
        .collect();
    assert_eq!(
        got,
        vec![
            Ok(1),
            Ok(2),
            Ok(3),
            Err(("field `at`: null, but the schema requires a value".into(), r#"{"at":null,"note":"n1"}"#.into())),
            Ok(5),
        ]
    );

    let too_late = batch(vec![Some(1), Some(i64::MAX / 10)], TimeUnit::Second);
    let err = input_rows::<Inner>("s", INNER, &[first, too_late]).expect_err("seconds beyond milliseconds' range");
    let err = err.to_string();
    assert!(err.starts_with("input `s`, batch 1: "), "{err}");
    assert!(err.contains("out of range"), "{err}");
}
