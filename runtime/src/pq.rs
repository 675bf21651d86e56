//! Reading fields of Parquet rows by name, for sources with `format = parquet`.

use parquet::record::{Field, Row};

mod pages;
pub mod write;

use crate::record::{Reject, Res};

/// Reads every row of a Parquet file (page checksums verified where the writer stored them),
/// calling `each` with the row's index. Two kinds of corrupt file would keep the parquet crate
/// busy for minutes or make it allocate gigabytes (found by fuzzing): the footer and the page
/// headers of every column chunk are walked first (`pages`), in the crate's own reading order.
/// The crate also panics on some corrupt metadata instead of returning an error ("column start
/// and length should not be negative"); that is caught here. Each becomes an error, so a bad
/// file fails the run with its name instead of stalling or crashing it.
pub fn for_each_row<R: parquet::file::reader::ChunkReader + 'static>(
    file: R,
    mut each: impl FnMut(usize, Row),
) -> Result<(), String> {
    use parquet::file::reader::RowGroupReader;
    let file = std::sync::Arc::new(file);
    let read = std::panic::AssertUnwindSafe(|| -> Result<(), String> {
        pages::check_footer(&*file)?;
        let meta = parquet::file::metadata::ParquetMetaDataReader::new()
            .parse_and_finish(&*file)
            .map_err(|e| e.to_string())?;
        pages::check(&*file, &meta)?;
        let props = std::sync::Arc::new(parquet::file::properties::ReaderProperties::builder().build());
        let mut i = 0;
        for group in meta.row_groups() {
            let reader = parquet::file::serialized_reader::SerializedRowGroupReader::new(
                file.clone(),
                group,
                None,
                props.clone(),
            )
            .map_err(|e| e.to_string())?;
            for row in reader.get_row_iter(None).map_err(|e| e.to_string())? {
                each(i, row.map_err(|e| e.to_string())?);
                i += 1;
            }
        }
        Ok(())
    });
    std::panic::catch_unwind(read).unwrap_or_else(|panic| Err(decoder_failed(&*panic)))
}

/// [`for_each_row`] of a file on disk. Not generic: the reader is compiled once, here, and not
/// in every pipeline's crate.
pub fn for_each_file_row(file: std::fs::File, each: &mut dyn FnMut(usize, Row)) -> Result<(), String> {
    for_each_row(file, each)
}

/// [`for_each_row`] of a file read whole into memory (an object store's).
pub fn for_each_object_row(file: bytes::Bytes, each: &mut dyn FnMut(usize, Row)) -> Result<(), String> {
    for_each_row(file, each)
}

fn decoder_failed(panic: &(dyn std::any::Any + Send)) -> String {
    format!("not a readable Parquet file (its decoder failed: {})", panic_message(panic))
}

/// The message a caught panic carried (a decoder's, for the error that names the file).
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

fn field<'a>(row: &'a Row, name: &str) -> Option<&'a Field> {
    row.get_column_iter().find(|(n, _)| n.as_str() == name).map(|(_, f)| f)
}

fn wrong(name: &str, want: &str) -> Reject {
    Reject(format!("field `{name}`: expected {want}"))
}

/// A required field's value.
pub fn required<T>(v: Option<T>, name: &str) -> Res<T> {
    v.ok_or_else(|| Reject(format!("missing field `{name}`")))
}

pub fn get_i64(row: &Row, name: &str) -> Res<Option<i64>> {
    Ok(match field(row, name) {
        None | Some(Field::Null) => None,
        Some(Field::Byte(v)) => Some(i64::from(*v)),
        Some(Field::Short(v)) => Some(i64::from(*v)),
        Some(Field::Int(v)) => Some(i64::from(*v)),
        Some(Field::Long(v)) => Some(*v),
        Some(Field::UByte(v)) => Some(i64::from(*v)),
        Some(Field::UShort(v)) => Some(i64::from(*v)),
        Some(Field::UInt(v)) => Some(i64::from(*v)),
        Some(Field::ULong(v)) => Some(i64::try_from(*v).map_err(|_| wrong(name, "an i64"))?),
        Some(_) => return Err(wrong(name, "an integer")),
    })
}

pub fn get_f64(row: &Row, name: &str) -> Res<Option<f64>> {
    Ok(match field(row, name) {
        None | Some(Field::Null) => None,
        Some(Field::Float(v)) => Some(f64::from(*v)),
        Some(Field::Double(v)) => Some(*v),
        Some(_) => get_i64(row, name).map_err(|_| wrong(name, "a number"))?.map(|v| v as f64),
    })
}

pub fn get_bool(row: &Row, name: &str) -> Res<Option<bool>> {
    match field(row, name) {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(wrong(name, "a boolean")),
    }
}

pub fn get_str(row: &Row, name: &str) -> Res<Option<String>> {
    match field(row, name) {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Str(s)) => Ok(Some(s.clone())),
        Some(_) => Err(wrong(name, "a string")),
    }
}

/// A timestamp as milliseconds: Parquet timestamps, or integers taken as milliseconds.
pub fn get_ts(row: &Row, name: &str) -> Res<Option<i64>> {
    match field(row, name) {
        None | Some(Field::Null) => Ok(None),
        Some(Field::TimestampMillis(v)) => Ok(Some(*v)),
        Some(Field::TimestampMicros(v)) => Ok(Some(v.div_euclid(1000))),
        Some(Field::Str(s)) => crate::f::parse_iso(s).map(Some).ok_or_else(|| wrong(name, "an ISO-8601 timestamp")),
        Some(_) => get_i64(row, name).map_err(|_| wrong(name, "a timestamp")),
    }
}

pub fn get_date(row: &Row, name: &str) -> Res<Option<i32>> {
    match field(row, name) {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Date(d)) => Ok(Some(*d)),
        Some(_) => Err(wrong(name, "a date")),
    }
}

pub fn get_enum(row: &Row, name: &str, names: &[(&str, i64)]) -> Res<Option<i64>> {
    match field(row, name) {
        None | Some(Field::Null) => Ok(None),
        Some(Field::Str(s)) => {
            names.iter().find(|(n, _)| n == s).map(|(_, v)| Some(*v)).ok_or_else(|| wrong(name, "a value of the enum"))
        }
        Some(_) => {
            let v = get_i64(row, name)?;
            match v {
                Some(v) if names.iter().any(|(_, x)| *x == v) => Ok(Some(v)),
                _ => Err(wrong(name, "a value of the enum")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// A file whose metadata makes the parquet crate panic (found by `scripts/fuzz.sh`): an
    /// error naming what failed, not a crash; a good file reads.
    #[test]
    fn a_file_that_panics_the_decoder_is_an_error() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases/codegen/parquet_crc");
        let open = |name: &str| std::fs::File::open(dir.join(name)).expect("fixture");
        let err = super::for_each_row(open("panics_the_decoder.parquet"), |_, _| {}).expect_err("corrupt");
        assert!(err.contains("not a readable Parquet file"), "{err}");
        let mut rows = 0;
        super::for_each_row(open("good.parquet"), |_, _| rows += 1).expect("good");
        assert_eq!(rows, 3);
    }

    /// A footer holding an unknown field that is a list of 2^31 booleans, which the crate skips
    /// at no input per element (8 s of decoding, optimized): refused before the crate reads it.
    #[test]
    fn a_footer_that_would_keep_the_decoder_busy_is_refused() {
        let good = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases/codegen/parquet_crc/good.parquet"),
        )
        .expect("fixture");
        let footer_len = u32::from_le_bytes(good[good.len() - 8..good.len() - 4].try_into().expect("4 bytes")) as usize;
        let body = &good[..good.len() - 8 - footer_len];
        let mut footer = good[good.len() - 8 - footer_len..good.len() - 9].to_vec();
        // Field 100 (zigzag 200), a list of booleans of 2^31 - 1 entries, then the footer's stop.
        footer.extend([0x09, 0xc8, 0x01, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00]);
        let mut file = body.to_vec();
        file.extend(&footer);
        file.extend((footer.len() as u32).to_le_bytes());
        file.extend(b"PAR1");
        let err = super::for_each_row(bytes::Bytes::from(file), |_, _| {}).expect_err("refused");
        assert!(err.starts_with("its footer (at byte "), "{err}");
        assert!(err.contains("collection of booleans"), "{err}");
        let mut rows = 0;
        super::for_each_row(bytes::Bytes::from(good), |_, _| rows += 1).expect("good");
        assert_eq!(rows, 3);
    }

    /// Files under 2 KB whose corrupt page headers kept the decoder busy for 6–52 s each before
    /// it failed (found by fuzzing): the walk over the headers refuses them first, naming the
    /// column and the byte; a good file passes the walk.
    #[test]
    fn corrupt_page_headers_are_refused_before_the_decoder_sees_them() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases/codegen/parquet_crc/slow");
        let mut files: Vec<_> = std::fs::read_dir(&dir).expect("fixtures").flatten().map(|e| e.path()).collect();
        files.sort();
        assert_eq!(files.len(), 6);
        for path in files {
            let err =
                super::for_each_row(std::fs::File::open(&path).expect("fixture"), |_, _| {}).expect_err("corrupt");
            assert!(err.starts_with("row group 0, column `"), "{}: {err}", path.display());
            assert!(err.contains("page header at byte"), "{}: {err}", path.display());
        }
    }
}
