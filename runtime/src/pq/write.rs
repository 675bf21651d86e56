//! Writing Parquet with page checksums.
//!
//! The parquet crate's file writer leaves the optional `crc` of every page header empty, so a
//! reader cannot tell a flipped bit in a data page from a real value. Here each column chunk is
//! encoded by the crate's column writer into memory through [`CrcPages`], a page writer that
//! serializes each page header itself with the CRC-32 of the page's bytes (as the format defines
//! it: the standard CRC-32 over the page as stored, header excluded), and the finished chunk is
//! then spliced into the row group with [`SerializedRowGroupWriter::append_column`], which moves
//! its offsets to where it lands in the file. Readers that verify (ours, pyarrow with
//! `page_checksum_verification`, Spark) then reject a corrupt page instead of returning its values.

use std::fs::File;

use parquet::basic::Encoding;
use parquet::column::page::{CompressedPage, Page, PageWriteSpec, PageWriter};
use parquet::column::writer::ColumnWriterImpl;
use parquet::data_type::DataType;
use parquet::errors::{ParquetError, Result};
use parquet::file::properties::WriterPropertiesPtr;
use parquet::file::writer::SerializedRowGroupWriter;
use parquet::schema::types::SchemaDescPtr;

/// One row group of a file being written; generated `Record::write_parquet` code fills its
/// columns in schema order with [`RowGroup::column`].
pub struct RowGroup<'a> {
    rg: SerializedRowGroupWriter<'a, File>,
    schema: SchemaDescPtr,
    props: WriterPropertiesPtr,
    next: usize,
}

impl std::fmt::Debug for RowGroup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowGroup").field("columns", &self.schema.num_columns()).field("next", &self.next).finish()
    }
}

impl<'a> RowGroup<'a> {
    pub fn new(rg: SerializedRowGroupWriter<'a, File>, schema: SchemaDescPtr, props: WriterPropertiesPtr) -> Self {
        RowGroup { rg, schema, props, next: 0 }
    }

    /// Writes the next column: `defs` are definition levels for an optional column (1 present,
    /// 0 null), `None` for a required one.
    pub fn column<T: DataType>(&mut self, values: &[T::T], defs: Option<&[i16]>) -> Result<()> {
        let Some(descr) = self.schema.columns().get(self.next).cloned() else {
            return Err(ParquetError::General("more columns than the schema".into()));
        };
        self.next += 1;
        let mut chunk = Vec::new();
        let close = {
            let pages = Box::new(CrcPages { out: &mut chunk });
            let mut w = ColumnWriterImpl::<T>::new(descr, self.props.clone(), pages);
            w.write_batch(values, defs, None)?;
            w.close()?
        };
        self.rg.append_column(&bytes::Bytes::from(chunk), close)
    }

    /// Finishes the row group.
    pub fn close(self) -> Result<()> {
        self.rg.close().map(|_| ())
    }
}

/// A page writer that appends each page, its header carrying the page's CRC-32, to `out`.
struct CrcPages<'b> {
    out: &'b mut Vec<u8>,
}

impl PageWriter for CrcPages<'_> {
    fn write_page(&mut self, page: CompressedPage) -> Result<PageWriteSpec> {
        let start = self.out.len();
        let data = page.data();
        let crc = crc32fast::hash(data) as i32;
        page_header(self.out, &page, crc)?;
        let header = self.out.len() - start;
        self.out.extend_from_slice(data);
        let mut spec = PageWriteSpec::new();
        spec.page_type = page.page_type();
        spec.uncompressed_size = page.uncompressed_size() + header;
        spec.compressed_size = page.compressed_size() + header;
        spec.num_values = page.num_values();
        spec.offset = start as u64;
        spec.bytes_written = (self.out.len() - start) as u64;
        Ok(spec)
    }

    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// Serializes the Thrift `PageHeader` of `page` (compact protocol) with `crc`. Page statistics
/// are not written into headers (the writer's properties leave them off by default; the column
/// index holds them).
fn page_header(out: &mut Vec<u8>, page: &CompressedPage, crc: i32) -> Result<()> {
    let size = |n: usize| i32::try_from(n).map_err(|_| ParquetError::General(format!("page of {n} bytes")));
    let mut t = Compact { out, last: Vec::new(), id: 0 };
    t.i32(1, page.page_type() as i32);
    t.i32(2, size(page.uncompressed_size())?);
    t.i32(3, size(page.compressed_size())?);
    t.i32(4, crc);
    let enc = |e: Encoding| e as i32;
    match page.compressed_page() {
        Page::DataPage { num_values, encoding, def_level_encoding, rep_level_encoding, .. } => {
            t.begin(5);
            t.i32(1, *num_values as i32);
            t.i32(2, enc(*encoding));
            t.i32(3, enc(*def_level_encoding));
            t.i32(4, enc(*rep_level_encoding));
            t.end();
        }
        Page::DictionaryPage { num_values, encoding, is_sorted, .. } => {
            t.begin(7);
            t.i32(1, *num_values as i32);
            t.i32(2, enc(*encoding));
            t.bool(3, *is_sorted);
            t.end();
        }
        Page::DataPageV2 {
            num_values,
            encoding,
            num_nulls,
            num_rows,
            def_levels_byte_len,
            rep_levels_byte_len,
            is_compressed,
            ..
        } => {
            t.begin(8);
            t.i32(1, *num_values as i32);
            t.i32(2, *num_nulls as i32);
            t.i32(3, *num_rows as i32);
            t.i32(4, enc(*encoding));
            t.i32(5, *def_levels_byte_len as i32);
            t.i32(6, *rep_levels_byte_len as i32);
            t.bool(7, *is_compressed);
            t.end();
        }
    }
    t.out.push(0); // end of PageHeader
    Ok(())
}

/// The few pieces of Thrift's compact protocol a page header needs: struct fields as deltas of
/// their ids, zigzag varint integers, booleans in the field's type nibble.
struct Compact<'o> {
    out: &'o mut Vec<u8>,
    /// The last field id of each enclosing struct.
    last: Vec<i16>,
    /// The last field id written in the current struct.
    id: i16,
}

impl Compact<'_> {
    const TRUE: u8 = 1;
    const FALSE: u8 = 2;
    const I32: u8 = 5;
    const STRUCT: u8 = 12;

    fn field(&mut self, id: i16, ty: u8) {
        let delta = id - self.id;
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | ty);
        } else {
            self.out.push(ty);
            self.varint(u64::from(((id << 1) ^ (id >> 15)) as u16));
        }
        self.id = id;
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    fn i32(&mut self, id: i16, v: i32) {
        self.field(id, Self::I32);
        self.varint(u64::from(((v << 1) ^ (v >> 31)) as u32));
    }

    fn bool(&mut self, id: i16, v: bool) {
        self.field(id, if v { Self::TRUE } else { Self::FALSE });
    }

    fn begin(&mut self, id: i16) {
        self.field(id, Self::STRUCT);
        self.last.push(self.id);
        self.id = 0;
    }

    fn end(&mut self) {
        self.out.push(0);
        self.id = self.last.pop().unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use parquet::basic::Compression;
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::{WriterProperties, WriterVersion};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::writer::SerializedFileWriter;
    use parquet::record::Field;
    use parquet::schema::types::SchemaDescriptor;

    use super::RowGroup;

    /// Writes 2 row groups of 1000 rows (id, optional name: every third null) with `props`.
    fn write(path: &std::path::Path, props: WriterProperties) {
        let root = Arc::new(
            parquet::schema::parser::parse_message_type(
                "message m { REQUIRED INT64 id; OPTIONAL BYTE_ARRAY name (UTF8); }",
            )
            .expect("schema"),
        );
        let schema = Arc::new(SchemaDescriptor::new(root.clone()));
        let props = Arc::new(props);
        let file = std::fs::File::create(path).expect("create");
        let mut w = SerializedFileWriter::new(file, root, props.clone()).expect("writer");
        for g in 0..2i64 {
            let mut rg = RowGroup::new(w.next_row_group().expect("row group"), schema.clone(), props.clone());
            let ids: Vec<i64> = (0..1000).map(|i| g * 1000 + i).collect();
            let names: Vec<ByteArray> =
                (0..1000).filter(|i| i % 3 != 0).map(|i| ByteArray::from(format!("n{}", i % 7).as_str())).collect();
            let defs: Vec<i16> = (0..1000).map(|i| i16::from(i % 3 != 0)).collect();
            rg.column::<Int64Type>(&ids, None).expect("ids");
            rg.column::<ByteArrayType>(&names, Some(&defs)).expect("names");
            rg.close().expect("close row group");
        }
        w.close().expect("close");
    }

    /// Every row, or the reader's error.
    fn read(path: &std::path::Path) -> Result<Vec<(i64, Option<String>)>, String> {
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let reader = SerializedFileReader::new(file).map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for row in reader.get_row_iter(None).map_err(|e| e.to_string())? {
            let row = row.map_err(|e| e.to_string())?;
            let mut cols = row.get_column_iter().map(|(_, f)| f.clone());
            let id = match cols.next() {
                Some(Field::Long(v)) => v,
                other => return Err(format!("id {other:?}")),
            };
            let name = match cols.next() {
                Some(Field::Str(s)) => Some(s),
                _ => None,
            };
            rows.push((id, name));
        }
        Ok(rows)
    }

    /// Pages of every kind the writer can make (plain v1, dictionary, v2 compressed) carry
    /// checksums: the file reads back whole, and one flipped byte in the last page of the first
    /// column is a checksum error. Without checksums the plain file reads the flipped value.
    #[test]
    fn every_page_carries_a_checksum_a_flipped_byte_is_an_error() {
        let dir = std::env::temp_dir().join(format!("pipe-pq-crc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let kinds = [
            ("plain", WriterProperties::builder().set_dictionary_enabled(false).build()),
            ("dictionary", WriterProperties::builder().set_dictionary_enabled(true).build()),
            (
                "v2",
                WriterProperties::builder()
                    .set_writer_version(WriterVersion::PARQUET_2_0)
                    .set_compression(Compression::SNAPPY)
                    .set_data_page_row_count_limit(100)
                    .set_write_batch_size(100)
                    .build(),
            ),
        ];
        for (kind, props) in kinds {
            let path = dir.join(format!("{kind}.parquet"));
            write(&path, props);
            let rows = read(&path).unwrap_or_else(|e| panic!("{kind}: {e}"));
            assert_eq!(rows.len(), 2000, "{kind}");
            assert_eq!(rows[1998], (1998, Some("n4".to_string())), "{kind}");
            assert_eq!(rows[3], (3, None), "{kind}");
            // Flip the last byte of the first column chunk of the first row group: the last
            // byte of its last page's data.
            let meta = SerializedFileReader::new(std::fs::File::open(&path).expect("open")).expect("meta");
            let col = meta.metadata().row_group(0).column(0);
            let start = col.dictionary_page_offset().unwrap_or(col.data_page_offset());
            let last = (start + col.compressed_size() - 1) as usize;
            let mut bytes = std::fs::read(&path).expect("bytes");
            bytes[last] ^= 0x01;
            std::fs::write(&path, &bytes).expect("write");
            let err = read(&path).expect_err(kind);
            assert!(err.to_lowercase().contains("checksum"), "{kind}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
