//! Writing Parquet column chunks straight from the rows.
//!
//! Generated `Record::parquet_row` code appends each row's values to its partition's
//! [`Columns`] as the row arrives, by column number. A column encodes them PLAIN into its current data page (v1, with
//! the definition levels of an optional column in the RLE/bit-packing hybrid), keeps the page's
//! minimum, maximum and null count as they arrive, and ends the page at 20,000 rows or 1 MiB of
//! values, the parquet crate's defaults. An ended page is compressed with the file's codec and
//! appended to the chunk behind a header carrying the CRC-32 of the page as stored (the format's
//! optional `crc`, which the crate's own writer leaves empty: without it a reader cannot tell a
//! flipped bit in a page from a real value). The finished chunk, with its statistics, column
//! index and offset index, is spliced into the row group with `append_column`, which moves its offsets to where it lands in the
//! file; the crate writes the footer.
//!
//! What the crate's generic column writer did here before cost a third of an ingest run: every
//! value was first moved into a `Vec` of the crate's `ByteArray`s (a reference-counted buffer
//! each), then copied again into its pages, and every value of a byte-array column was compared
//! twice through the crate's type-generic comparison for the page's minimum and maximum; and
//! the rows waited in a per-partition buffer until their row group was written. The
//! statistics, indexes and page boundaries written here are the ones the crate writes with its
//! default properties, which the tests check against it.

use std::io::{Read, Write};

use bytes::Bytes;
use parquet::basic::{BoundaryOrder, Compression, ConvertedType, Encoding, EncodingMask, LogicalType, PageType, Type};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type::ByteArray;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, LevelHistogram, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{ColumnDescPtr, SchemaDescriptor};

/// A data page ends when it holds this many rows…
const PAGE_ROWS: usize = 20_000;
/// …or this many bytes of values.
const PAGE_BYTES: usize = 1 << 20;
/// The most bytes a data page's header takes (every field a varint of five bytes or less).
const PAGE_HEADER_MAX: usize = 64;
/// Byte-array minimums and maximums are cut to this many bytes in the chunk's statistics and
/// in the column index (a cut maximum is raised so that it still bounds the values).
const STAT_BYTES: usize = 64;

/// What the columns of every partition share while a worker encodes them: an optional
/// column's page assembled before compression, the compressed page, the snappy encoder.
pub struct Scratch {
    page: Vec<u8>,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch { page: Vec::new(), compressed: Vec::new(), snappy: snap::raw::Encoder::new() }
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch").field("compressed", &self.compressed.capacity()).finish()
    }
}

/// The columns of one partition's rows, encoded as the rows arrive: generated
/// `Record::parquet_row` code appends each row's values by column number ([`Columns::bytes`],
/// [`Columns::i64`], [`Columns::i32`], [`Columns::f64`], [`Columns::bool`], the one matching the
/// column's type, or [`Columns::null`]) and the sink then calls [`Columns::row_done`].
/// [`Columns::write_to`] writes what they hold as one row group and empties them.
pub struct Columns {
    cols: Vec<ColumnBuf>,
    rows: usize,
}

impl std::fmt::Debug for Columns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Columns").field("columns", &self.cols.len()).field("rows", &self.rows).finish()
    }
}

/// `Columns` methods appending a value of one type to column `i`, by the method of the same
/// name on the column. (An index past the schema appends nothing, and the row group is then
/// refused for columns of different lengths.)
macro_rules! append {
    ($($(#[$doc:meta])* $name:ident($t:ty)),* $(,)?) => {
        $(
            $(#[$doc])*
            #[inline]
            pub fn $name(&mut self, i: usize, v: $t) {
                if let Some(c) = self.cols.get_mut(i) {
                    c.$name(v);
                }
            }
        )*
    };
}

impl Columns {
    /// Empty columns of `schema`, a flat message type, compressed as `props` say.
    pub fn new(schema: &SchemaDescriptor, props: &WriterProperties) -> Result<Columns> {
        let cols = schema.columns().iter().map(|descr| ColumnBuf::new(descr.clone(), props)).collect::<Result<_>>()?;
        Ok(Columns { cols, rows: 0 })
    }

    /// Rows appended since the last row group.
    pub fn rows(&self) -> usize {
        self.rows
    }

    append!(
        /// Appends a byte-array value to column `i`.
        bytes(&[u8]),
        /// Appends an INT64 value to column `i`.
        i64(i64),
        /// Appends an INT32 value to column `i`.
        i32(i32),
        /// Appends a DOUBLE value to column `i`.
        f64(f64),
        /// Appends a BOOLEAN value to column `i`.
        bool(bool),
    );

    /// Appends a null to column `i` (an optional column).
    #[inline]
    pub fn null(&mut self, i: usize) {
        if let Some(c) = self.cols.get_mut(i) {
            c.null();
        }
    }

    /// A row has every column's value: ends the pages that are full.
    #[inline]
    pub fn row_done(&mut self, s: &mut Scratch) {
        self.rows += 1;
        for c in &mut self.cols {
            if c.page.rows >= PAGE_ROWS || c.values.len() >= PAGE_BYTES {
                c.end_page(s);
            }
        }
    }

    /// Writes the rows since the last row group as the next row group of `w`'s file, and
    /// empties the columns for the next (keeping their buffers). An error of a column (a value
    /// over 4 GiB, a null in a required column, a failed compression) is returned here.
    pub fn write_to<W: Write + Send>(&mut self, w: &mut SerializedFileWriter<W>, s: &mut Scratch) -> Result<()> {
        let written = self.write_group(w, s);
        for c in &mut self.cols {
            c.reset();
        }
        self.rows = 0;
        written
    }

    fn write_group<W: Write + Send>(&mut self, w: &mut SerializedFileWriter<W>, s: &mut Scratch) -> Result<()> {
        for c in &mut self.cols {
            c.end_page(s);
        }
        // Every column's error before the row group starts (the file stays writable), and
        // before the lengths are compared: a refused value leaves its column a row short.
        if let Some(e) = self.cols.iter_mut().find_map(|c| c.error.take()) {
            return Err(e);
        }
        if self.cols.iter().any(|c| c.rows != self.rows) {
            return Err(ParquetError::General("internal: columns of different lengths".into()));
        }
        let mut closed = Vec::with_capacity(self.cols.len());
        for c in &mut self.cols {
            closed.push(c.close()?);
        }
        let mut rg = w.next_row_group()?;
        for (c, close) in self.cols.iter().zip(closed) {
            rg.append_column(&Chunk(&c.chunk), close)?;
        }
        rg.close().map(|_| ())
    }
}

/// The current page of a column: rows, nulls, and its least and greatest value so far
/// (integers and booleans in `int`, doubles in `float`, byte arrays in the column's `low` and
/// `high`).
#[derive(Default)]
struct Page {
    rows: usize,
    nulls: usize,
    /// Whether a value has set the bounds (a NaN sets none, as in the parquet crate).
    bounded: bool,
    int: (i64, i64),
    float: (f64, f64),
    var_bytes: i64,
}

/// A least or greatest value of a page or chunk.
#[derive(Clone, Debug, PartialEq)]
enum Bound {
    Int(i64),
    Float(f64),
    Bytes(Vec<u8>),
}

impl Bound {
    /// `self > other` in the column's sort order: signed integers, IEEE doubles, bytes unsigned.
    fn greater(&self, other: &Bound) -> bool {
        match (self, other) {
            (Bound::Int(a), Bound::Int(b)) => a > b,
            (Bound::Float(a), Bound::Float(b)) => a > b,
            (Bound::Bytes(a), Bound::Bytes(b)) => a > b,
            _ => false,
        }
    }

    /// The value as PLAIN bytes of a column of `kind`, as the column index stores it.
    fn plain(&self, kind: Type) -> Vec<u8> {
        match (self, kind) {
            (Bound::Int(v), Type::BOOLEAN) => vec![u8::from(*v != 0)],
            (Bound::Int(v), Type::INT32) => (*v as i32).to_le_bytes().to_vec(),
            (Bound::Int(v), _) => v.to_le_bytes().to_vec(),
            (Bound::Float(v), _) => v.to_le_bytes().to_vec(),
            (Bound::Bytes(v), _) => v.clone(),
        }
    }
}

/// One column of a [`Columns`]: its current page, its finished pages, and what the chunk's
/// statistics and indexes need.
struct ColumnBuf {
    descr: ColumnDescPtr,
    kind: Type,
    optional: bool,
    utf8: bool,
    snappy: bool,
    /// The current page's values, PLAIN.
    values: Vec<u8>,
    /// The current page's definition levels, one byte each (optional columns).
    defs: Vec<u8>,
    /// The current page's least and greatest value (byte-array columns).
    low_bytes: Vec<u8>,
    high_bytes: Vec<u8>,
    page: Page,
    /// Booleans waiting to be packed into the page, least significant bit first.
    bits: u8,
    nbits: u32,
    /// The finished pages, each behind its header.
    chunk: Vec<u8>,
    // The chunk so far.
    rows: usize,
    nulls: usize,
    pages: i32,
    low: Option<Bound>,
    high: Option<Bound>,
    /// The last page with bounds, for the column index's boundary order.
    last: Option<(Bound, Bound)>,
    ascending: bool,
    descending: bool,
    var_bytes: i64,
    uncompressed: i64,
    index: ColumnIndexBuilder,
    offsets: OffsetIndexBuilder,
    error: Option<ParquetError>,
}

impl ColumnBuf {
    fn new(descr: ColumnDescPtr, props: &WriterProperties) -> Result<ColumnBuf> {
        let snappy = match props.compression(descr.path()) {
            Compression::SNAPPY => true,
            Compression::UNCOMPRESSED => false,
            other => return Err(ParquetError::General(format!("internal: no {other} encoder"))),
        };
        if descr.max_rep_level() > 0 || descr.max_def_level() > 1 {
            return Err(ParquetError::General(format!("internal: column `{}` is nested", descr.name())));
        }
        let kind = descr.physical_type();
        let utf8 =
            descr.logical_type_ref() == Some(&LogicalType::String) || descr.converted_type() == ConvertedType::UTF8;
        Ok(ColumnBuf {
            optional: descr.max_def_level() == 1,
            utf8,
            kind,
            snappy,
            index: ColumnIndexBuilder::new(kind),
            offsets: OffsetIndexBuilder::new(),
            descr,
            values: Vec::new(),
            defs: Vec::new(),
            low_bytes: Vec::new(),
            high_bytes: Vec::new(),
            page: Page::default(),
            bits: 0,
            nbits: 0,
            chunk: Vec::new(),
            rows: 0,
            nulls: 0,
            pages: 0,
            low: None,
            high: None,
            last: None,
            ascending: true,
            descending: true,
            var_bytes: 0,
            uncompressed: 0,
            error: None,
        })
    }

    /// Empties the chunk for the next row group, keeping the buffers.
    fn reset(&mut self) {
        self.values.clear();
        self.defs.clear();
        self.page = Page::default();
        self.bits = 0;
        self.nbits = 0;
        self.chunk.clear();
        self.rows = 0;
        self.nulls = 0;
        self.pages = 0;
        self.low = None;
        self.high = None;
        self.last = None;
        self.ascending = true;
        self.descending = true;
        self.var_bytes = 0;
        self.uncompressed = 0;
        self.index = ColumnIndexBuilder::new(self.kind);
        self.offsets = OffsetIndexBuilder::new();
        self.error = None;
    }

    #[inline]
    fn bytes(&mut self, v: &[u8]) {
        let Ok(len) = u32::try_from(v.len()) else {
            self.fail(format!("a value of {} bytes in column `{}`", v.len(), self.descr.name()));
            return;
        };
        if !self.page.bounded {
            self.page.bounded = true;
            self.low_bytes.clear();
            self.low_bytes.extend_from_slice(v);
            self.high_bytes.clear();
            self.high_bytes.extend_from_slice(v);
        } else if less(v, &self.low_bytes) {
            self.low_bytes.clear();
            self.low_bytes.extend_from_slice(v);
        } else if less(&self.high_bytes, v) {
            self.high_bytes.clear();
            self.high_bytes.extend_from_slice(v);
        }
        let need = self.values.len() + 4 + v.len();
        if need > self.values.capacity() {
            // Doubling, but never past a page and this value: a page ends at `PAGE_BYTES`, so
            // a partition's buffer need not hold twice that.
            let cap = (self.values.capacity() * 2).clamp(need.max(4096), need.max(PAGE_BYTES + 4 + v.len()));
            self.values.reserve_exact(cap - self.values.len());
        }
        self.values.extend_from_slice(&len.to_le_bytes());
        self.values.extend_from_slice(v);
        self.page.var_bytes += i64::from(len);
        self.added();
    }

    #[inline]
    fn i64(&mut self, v: i64) {
        self.int(v);
        self.values.extend_from_slice(&v.to_le_bytes());
        self.added();
    }

    #[inline]
    fn i32(&mut self, v: i32) {
        self.int(i64::from(v));
        self.values.extend_from_slice(&v.to_le_bytes());
        self.added();
    }

    /// NaN is written but bounds nothing, as in the parquet crate.
    #[inline]
    fn f64(&mut self, v: f64) {
        if !v.is_nan() {
            let p = &mut self.page;
            if !p.bounded {
                p.bounded = true;
                p.float = (v, v);
            } else if v < p.float.0 {
                p.float.0 = v;
            } else if v > p.float.1 {
                p.float.1 = v;
            }
        }
        self.values.extend_from_slice(&v.to_le_bytes());
        self.added();
    }

    #[inline]
    fn bool(&mut self, v: bool) {
        self.int(i64::from(v));
        self.bits |= u8::from(v) << self.nbits;
        self.nbits += 1;
        if self.nbits == 8 {
            self.values.push(self.bits);
            self.bits = 0;
            self.nbits = 0;
        }
        self.added();
    }

    #[inline]
    fn null(&mut self) {
        if !self.optional {
            self.fail(format!("a null in the required column `{}`", self.descr.name()));
            self.page.rows += 1;
            return;
        }
        self.defs.push(0);
        self.page.nulls += 1;
        self.page.rows += 1;
    }

    #[inline]
    fn int(&mut self, v: i64) {
        let p = &mut self.page;
        if !p.bounded {
            p.bounded = true;
            p.int = (v, v);
        } else if v < p.int.0 {
            p.int.0 = v;
        } else if v > p.int.1 {
            p.int.1 = v;
        }
    }

    #[inline]
    fn added(&mut self) {
        if self.optional {
            self.defs.push(1);
        }
        self.page.rows += 1;
    }

    fn fail(&mut self, why: String) {
        self.error.get_or_insert(ParquetError::General(why));
    }

    /// The current page's bounds, with a zero minimum written as -0.0 and a zero maximum as
    /// +0.0, as the format asks of doubles.
    fn page_bounds(&self) -> Option<(Bound, Bound)> {
        if !self.page.bounded {
            return None;
        }
        Some(match self.kind {
            Type::DOUBLE => {
                let (mut lo, mut hi) = self.page.float;
                if lo == 0.0 {
                    lo = -0.0;
                }
                if hi == 0.0 {
                    hi = 0.0;
                }
                (Bound::Float(lo), Bound::Float(hi))
            }
            Type::BYTE_ARRAY | Type::FIXED_LEN_BYTE_ARRAY => {
                (Bound::Bytes(self.low_bytes.clone()), Bound::Bytes(self.high_bytes.clone()))
            }
            _ => (Bound::Int(self.page.int.0), Bound::Int(self.page.int.1)),
        })
    }

    /// Ends the current page: encodes, compresses and appends it to the chunk, and records it
    /// in the statistics and indexes.
    fn end_page(&mut self, s: &mut Scratch) {
        if self.page.rows == 0 {
            return;
        }
        if let Err(e) = self.write_page(s) {
            self.error.get_or_insert(e);
        }
        self.page = Page::default();
        self.bits = 0;
        self.nbits = 0;
        self.values.clear();
        self.defs.clear();
    }

    fn write_page(&mut self, s: &mut Scratch) -> Result<()> {
        let bounds = self.page_bounds();
        let Page { rows, nulls, var_bytes, .. } = self.page;
        if self.nbits > 0 {
            self.values.push(self.bits);
        }
        let body: &[u8] = if self.optional {
            s.page.clear();
            s.page.extend_from_slice(&[0; 4]);
            levels(&self.defs, &mut s.page);
            let n = (s.page.len() - 4) as u32;
            s.page[..4].copy_from_slice(&n.to_le_bytes());
            s.page.extend_from_slice(&self.values);
            &s.page
        } else {
            &self.values
        };
        let stored: &[u8] = if self.snappy {
            let n = compress(&mut s.snappy, &mut s.compressed, body)?;
            &s.compressed[..n]
        } else {
            body
        };
        let size = |n: usize| i32::try_from(n).map_err(|_| ParquetError::General(format!("a page of {n} bytes")));
        // Exactly what the page needs: a chunk holds only a few pages, and a doubled buffer
        // would be kept by its partition's columns from one row group to the next.
        self.chunk.reserve_exact(PAGE_HEADER_MAX + stored.len());
        let start = self.chunk.len();
        data_page_header(
            &mut self.chunk,
            size(body.len())?,
            size(stored.len())?,
            crc32fast::hash(stored) as i32,
            size(rows)?,
        );
        let header = self.chunk.len() - start;
        self.chunk.extend_from_slice(stored);
        self.uncompressed += (header + body.len()) as i64;
        self.offsets.append_offset_and_size(start as i64, size(self.chunk.len() - start)?);
        self.offsets.append_row_count(rows as i64);
        let byte_array = self.kind == Type::BYTE_ARRAY;
        self.offsets.append_unencoded_byte_array_data_bytes(byte_array.then_some(var_bytes));
        self.pages += 1;
        self.rows += rows;
        self.nulls += nulls;
        self.var_bytes += var_bytes;

        // The column index: an all-null page has no bounds; a page of NaNs alone leaves the
        // column without an index, as in the parquet crate.
        if rows == nulls {
            if self.index.valid() {
                self.index.append(true, Vec::new(), Vec::new(), nulls as i64);
            }
        } else if self.index.valid() {
            match &bounds {
                None => self.index.to_invalid(),
                Some((lo, hi)) => {
                    if let Some((last_lo, last_hi)) = &self.last {
                        if last_lo.greater(lo) || last_hi.greater(hi) {
                            self.ascending = false;
                        }
                        if lo.greater(last_lo) || hi.greater(last_hi) {
                            self.descending = false;
                        }
                    }
                    self.last = Some((lo.clone(), hi.clone()));
                    let (min, max) = match (lo, hi) {
                        (Bound::Bytes(lo), Bound::Bytes(hi)) => (
                            cut_low(lo, self.utf8).unwrap_or_else(|| lo.clone()),
                            cut_high(hi, self.utf8).unwrap_or_else(|| hi.clone()),
                        ),
                        _ => (lo.plain(self.kind), hi.plain(self.kind)),
                    };
                    self.index.append(false, min, max, nulls as i64);
                }
            }
        }
        if self.optional {
            self.index.append_histograms(&None, &Some(histogram(nulls, rows)));
        }
        if let Some((lo, hi)) = bounds {
            if self.low.as_ref().is_none_or(|l| l.greater(&lo)) {
                self.low = Some(lo);
            }
            if self.high.as_ref().is_none_or(|h| hi.greater(h)) {
                self.high = Some(hi);
            }
        }
        Ok(())
    }

    /// What the row group needs of the finished chunk (its last page ended): metadata,
    /// statistics, indexes.
    fn close(&mut self) -> Result<ColumnCloseResult> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        let statistics = self.statistics();
        let chunk_len = self.chunk.len() as i64;
        let metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(if self.snappy { Compression::SNAPPY } else { Compression::UNCOMPRESSED })
            .set_encodings_mask(EncodingMask::new_from_encodings([Encoding::PLAIN, Encoding::RLE].iter()))
            .set_page_encoding_stats(vec![PageEncodingStats {
                page_type: PageType::DATA_PAGE,
                encoding: Encoding::PLAIN,
                count: self.pages,
            }])
            .set_total_compressed_size(chunk_len)
            .set_total_uncompressed_size(self.uncompressed)
            .set_num_values(self.rows as i64)
            .set_data_page_offset(0)
            .set_statistics(statistics)
            .set_unencoded_byte_array_data_bytes((self.kind == Type::BYTE_ARRAY).then_some(self.var_bytes))
            .set_definition_level_histogram(self.optional.then(|| histogram(self.nulls, self.rows)))
            .build()?;
        self.index.set_boundary_order(match (self.ascending, self.descending) {
            (true, _) => BoundaryOrder::ASCENDING,
            (false, true) => BoundaryOrder::DESCENDING,
            (false, false) => BoundaryOrder::UNORDERED,
        });
        let index = std::mem::replace(&mut self.index, ColumnIndexBuilder::new(self.kind));
        let column_index = if index.valid() { Some(index.build()?) } else { None };
        Ok(ColumnCloseResult {
            bytes_written: chunk_len as u64,
            rows_written: self.rows as u64,
            metadata,
            bloom_filter: None,
            column_index,
            offset_index: Some(std::mem::take(&mut self.offsets).build()),
        })
    }

    /// The chunk's statistics, as the parquet crate writes them: byte arrays' bounds cut to 64
    /// bytes (marked inexact when cut), the deprecated min/max fields for signed orders.
    fn statistics(&self) -> Statistics {
        let nulls = Some(self.nulls as u64);
        let signed = self.descr.sort_order().is_signed();
        fn typed<T>(lo: Option<T>, hi: Option<T>, nulls: Option<u64>, signed: bool) -> ValueStatistics<T> {
            ValueStatistics::new(lo, hi, None, nulls, false).with_backwards_compatible_min_max(signed)
        }
        let (lo, hi) = (self.low.as_ref(), self.high.as_ref());
        let int = |b: Option<&Bound>| match b {
            Some(Bound::Int(v)) => Some(*v),
            _ => None,
        };
        match self.kind {
            Type::BOOLEAN => {
                Statistics::Boolean(typed(int(lo).map(|v| v != 0), int(hi).map(|v| v != 0), nulls, signed))
            }
            Type::INT32 => {
                Statistics::Int32(typed(int(lo).map(|v| v as i32), int(hi).map(|v| v as i32), nulls, signed))
            }
            Type::INT64 => Statistics::Int64(typed(int(lo), int(hi), nulls, signed)),
            Type::DOUBLE => {
                let float = |b: Option<&Bound>| match b {
                    Some(Bound::Float(v)) => Some(*v),
                    _ => None,
                };
                Statistics::Double(typed(float(lo), float(hi), nulls, signed))
            }
            _ => {
                fn bytes(b: Option<&Bound>) -> Option<&[u8]> {
                    match b {
                        Some(Bound::Bytes(v)) => Some(v.as_slice()),
                        _ => None,
                    }
                }
                let low = bytes(lo).map(|v| cut_low(v, self.utf8).map_or((v.to_vec(), true), |c| (c, false)));
                let high = bytes(hi).map(|v| cut_high(v, self.utf8).map_or((v.to_vec(), true), |c| (c, false)));
                let exact = (low.as_ref().is_none_or(|l| l.1), high.as_ref().is_none_or(|h| h.1));
                let present = (low.is_some(), high.is_some());
                let stats = ValueStatistics::new(
                    low.map(|l| ByteArray::from(l.0)),
                    high.map(|h| ByteArray::from(h.0)),
                    None,
                    nulls,
                    false,
                )
                .with_backwards_compatible_min_max(signed);
                let stats = if present.0 { stats.with_min_is_exact(exact.0) } else { stats };
                let stats = if present.1 { stats.with_max_is_exact(exact.1) } else { stats };
                Statistics::ByteArray(stats)
            }
        }
    }
}

/// A page's first this many bytes are compressed on their own first, to tell whether
/// compressing the rest is worth its time.
const SAMPLE: usize = 16 << 10;

/// Compresses `body` into `out`; the compressed length.
///
/// A page whose first [`SAMPLE`] bytes snappy shrinks by less than 1/16 is stored as a single
/// snappy literal instead (see [`literal`]). Pseudonyms are such pages: hexadecimal digests
/// share almost no runs, and snappy saved 3% of their pages at about 1 GB/s, a fifth of an
/// ingest's compression time (BENCHMARKS.md).
fn compress(snappy: &mut snap::raw::Encoder, out: &mut Vec<u8>, body: &[u8]) -> Result<usize> {
    let need = snap::raw::max_compress_len(body.len());
    if out.len() < need {
        out.resize(need, 0);
    }
    let err = |e| ParquetError::External(Box::new(e));
    if body.len() >= 2 * SAMPLE {
        let n = snappy.compress(&body[..SAMPLE], out).map_err(err)?;
        if n > SAMPLE - SAMPLE / 16 {
            return Ok(literal(out, body));
        }
    }
    snappy.compress(body, out).map_err(err)
}

/// Writes `body` into `out` as snappy data of one literal element, which every snappy decoder
/// reads back as `body`: the uncompressed length as a varint, then the literal's tag (its length
/// less one, in up to four little-endian bytes after the tag byte), then the bytes. `out` holds
/// at least `max_compress_len(body.len())` bytes; the length written.
fn literal(out: &mut [u8], body: &[u8]) -> usize {
    let mut at = 0;
    let mut len = body.len() as u64;
    while len >= 0x80 {
        out[at] = (len as u8) | 0x80;
        len >>= 7;
        at += 1;
    }
    out[at] = len as u8;
    at += 1;
    if body.is_empty() {
        return at;
    }
    let less_one = body.len().saturating_sub(1) as u32;
    if less_one < 60 {
        out[at] = (less_one as u8) << 2;
        at += 1;
    } else {
        let bytes = (4 - less_one.leading_zeros() as usize / 8).max(1);
        out[at] = ((59 + bytes) as u8) << 2;
        out[at + 1..at + 1 + bytes].copy_from_slice(&less_one.to_le_bytes()[..bytes]);
        at += 1 + bytes;
    }
    out[at..at + body.len()].copy_from_slice(body);
    at + body.len()
}

/// `a < b`, bytes unsigned. Most values differ in their first eight bytes (pseudonyms always):
/// those are compared as one big-endian integer, without a call to `memcmp`.
#[inline]
fn less(a: &[u8], b: &[u8]) -> bool {
    if let (Some(x), Some(y)) = (a.first_chunk::<8>(), b.first_chunk::<8>()) {
        let (x, y) = (u64::from_be_bytes(*x), u64::from_be_bytes(*y));
        if x != y {
            return x < y;
        }
    }
    a < b
}

/// The definition-level histogram of a flat optional column: nulls at level 0, values at 1.
fn histogram(nulls: usize, rows: usize) -> LevelHistogram {
    let mut h = LevelHistogram::try_new(1).unwrap_or_default();
    h.increment_by(0, nulls as i64);
    h.increment_by(1, (rows - nulls) as i64);
    h
}

/// A minimum longer than [`STAT_BYTES`] cut to at most that many bytes (on a character
/// boundary in a UTF-8 column); `None` when it is short enough already.
fn cut_low(v: &[u8], utf8: bool) -> Option<Vec<u8>> {
    if v.len() <= STAT_BYTES {
        return None;
    }
    match std::str::from_utf8(v) {
        Ok(s) if utf8 => (1..=STAT_BYTES).rfind(|&i| s.is_char_boundary(i)).map(|i| v[..i].to_vec()),
        _ => Some(v[..STAT_BYTES].to_vec()),
    }
}

/// A maximum longer than [`STAT_BYTES`] cut to at most that many bytes and raised so that it
/// still bounds the values: the last character (UTF-8 column) or byte that can be incremented
/// is; `None` when it is short enough already or cannot be raised (it is then kept whole).
fn cut_high(v: &[u8], utf8: bool) -> Option<Vec<u8>> {
    if v.len() <= STAT_BYTES {
        return None;
    }
    match std::str::from_utf8(v) {
        Ok(s) if utf8 => {
            let cut = (STAT_BYTES.saturating_sub(3)..=STAT_BYTES).rfind(|&i| s.is_char_boundary(i))?;
            let s = &s[..cut];
            s.char_indices().rev().find_map(|(at, c)| {
                let next = char::from_u32(c as u32 + 1).filter(|n| n.len_utf8() == c.len_utf8())?;
                let mut out = s.as_bytes()[..at].to_vec();
                let mut buf = [0; 4];
                out.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                Some(out)
            })
        }
        _ => {
            let mut out = v[..STAT_BYTES].to_vec();
            for b in out.iter_mut().rev() {
                let (raised, overflow) = b.overflowing_add(1);
                *b = raised;
                if !overflow {
                    return Some(out);
                }
            }
            None
        }
    }
}

/// Definition levels (each 0 or 1) in the RLE/bit-packing hybrid of bit width 1: a run of eight
/// or more equal levels as one RLE run, the rest bit-packed eight to a byte, at most 63 groups
/// of eight to a run. The last group is padded with zeros; readers stop at the page's count.
fn levels(defs: &[u8], out: &mut Vec<u8>) {
    let n = defs.len();
    let mut i = 0;
    // Where the open bit-packed run's header is, and how many groups it holds.
    let mut packed: Option<(usize, u8)> = None;
    while i < n {
        let v = defs[i];
        let run = defs[i..].iter().take_while(|&&d| d == v).count();
        if run >= 8 {
            packed = None;
            varint(out, (run as u64) << 1);
            out.push(v);
            i += run;
            continue;
        }
        let (at, groups) = match packed {
            Some((at, groups)) if groups < 63 => (at, groups),
            _ => {
                out.push(0);
                (out.len() - 1, 0)
            }
        };
        let end = (i + 8).min(n);
        let byte = defs[i..end].iter().enumerate().fold(0u8, |b, (k, &d)| b | ((d & 1) << k));
        out.push(byte);
        out[at] = ((groups + 1) << 1) | 1;
        packed = Some((at, groups + 1));
        i = end;
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A column chunk in memory, as `SerializedRowGroupWriter::append_column` reads it.
struct Chunk<'c>(&'c [u8]);

impl Length for Chunk<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
}

impl<'c> ChunkReader for Chunk<'c> {
    type T = &'c [u8];

    fn get_read(&self, start: u64) -> Result<&'c [u8]> {
        self.0.get(start as usize..).ok_or_else(|| ParquetError::EOF(format!("offset {start} past the chunk")))
    }

    fn get_bytes(&self, start: u64, length: usize) -> Result<Bytes> {
        let mut read = self.get_read(start)?.take(length as u64);
        let mut out = Vec::with_capacity(length);
        read.read_to_end(&mut out)?;
        Ok(Bytes::from(out))
    }
}

/// Serializes the Thrift `PageHeader` of a v1 data page of `values` levels (compact protocol):
/// PLAIN values, RLE levels, the page's CRC-32. Page statistics are not written into headers
/// (the parquet crate's default; the column index holds them).
fn data_page_header(out: &mut Vec<u8>, uncompressed: i32, compressed: i32, crc: i32, values: i32) {
    let mut t = Compact { out, last: Vec::new(), id: 0 };
    t.i32(1, PageType::DATA_PAGE as i32);
    t.i32(2, uncompressed);
    t.i32(3, compressed);
    t.i32(4, crc);
    t.begin(5);
    t.i32(1, values);
    t.i32(2, Encoding::PLAIN as i32);
    t.i32(3, Encoding::RLE as i32);
    t.i32(4, Encoding::RLE as i32);
    t.end();
    t.out.push(0); // end of PageHeader
}

/// The few pieces of Thrift's compact protocol a page header needs: struct fields as deltas of
/// their ids, zigzag varint integers.
struct Compact<'o> {
    out: &'o mut Vec<u8>,
    /// The last field id of each enclosing struct.
    last: Vec<i16>,
    /// The last field id written in the current struct.
    id: i16,
}

impl Compact<'_> {
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

    fn varint(&mut self, v: u64) {
        varint(self.out, v);
    }

    fn i32(&mut self, id: i16, v: i32) {
        self.field(id, Self::I32);
        self.varint(u64::from(((v << 1) ^ (v >> 31)) as u32));
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
    use std::path::Path;
    use std::sync::Arc;

    use parquet::basic::Compression;
    use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type};
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::types::{SchemaDescriptor, Type as SchemaType};

    use super::{Columns, Scratch};

    const SCHEMA: &str = "message m {
        REQUIRED INT64 a; OPTIONAL INT64 b; REQUIRED INT32 c (DATE); OPTIONAL DOUBLE d;
        REQUIRED DOUBLE e; OPTIONAL BOOLEAN f; REQUIRED BYTE_ARRAY g (UTF8);
        OPTIONAL BYTE_ARRAY h (UTF8); OPTIONAL BYTE_ARRAY i; REQUIRED BOOLEAN j;
    }";
    const OPTIONAL: [bool; 10] = [false, true, false, true, false, true, false, true, true, false];

    /// One column's values in a row group.
    enum Values {
        I64(Vec<Option<i64>>),
        I32(Vec<Option<i32>>),
        F64(Vec<Option<f64>>),
        Bool(Vec<Option<bool>>),
        Bytes(Vec<Option<Vec<u8>>>),
    }

    /// A deterministic generator (splitmix64).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// Whether an optional value is present: all but `nulls` in 1000.
        fn present(&mut self, nulls: u64) -> bool {
            self.below(1000) >= nulls
        }

        /// Text of `len` characters: ASCII and two-, three- and four-byte characters, including
        /// the largest of each width, which a raised maximum cannot increment.
        fn text(&mut self, len: usize) -> Vec<u8> {
            const CHARS: [char; 10] = ['a', 'z', '~', '\u{7f}', 'é', '\u{7ff}', '€', '\u{ffff}', '😀', '\u{10ffff}'];
            (0..len).map(|_| CHARS[self.below(10) as usize]).collect::<String>().into_bytes()
        }
    }

    /// `rows` rows of every kind of column, `nulls` in 1000 optional values null, text up to
    /// `text` characters.
    fn random(g: &mut Gen, rows: usize, nulls: u64, text: u64) -> Vec<Values> {
        let doubles = [0.0, -0.0, f64::NAN, 1.5, -2.25, f64::INFINITY, f64::NEG_INFINITY, 1e300];
        let texts = |g: &mut Gen, optional: bool| -> Vec<Option<Vec<u8>>> {
            (0..rows)
                .map(|_| {
                    let len = g.below(text + 1) as usize;
                    (!optional || g.present(nulls)).then(|| g.text(len))
                })
                .collect()
        };
        vec![
            Values::I64((0..rows).map(|_| Some(g.next() as i64 >> g.below(60))).collect()),
            Values::I64((0..rows).map(|_| g.present(nulls).then(|| g.below(100) as i64 - 50)).collect()),
            Values::I32((0..rows).map(|_| Some(g.next() as i32)).collect()),
            Values::F64((0..rows).map(|_| g.present(nulls).then(|| doubles[g.below(8) as usize])).collect()),
            Values::F64((0..rows).map(|_| Some(doubles[g.below(8) as usize] * g.below(7) as f64)).collect()),
            Values::Bool((0..rows).map(|_| g.present(nulls).then(|| g.below(2) == 1)).collect()),
            Values::Bytes(texts(g, false)),
            Values::Bytes(texts(g, true)),
            Values::Bytes(
                (0..rows)
                    .map(|_| {
                        let bytes = [0u8, 0x7f, 0xfe, 0xff];
                        g.present(nulls).then(|| (0..g.below(90)).map(|_| bytes[g.below(4) as usize]).collect())
                    })
                    .collect(),
            ),
            Values::Bool((0..rows).map(|_| Some(g.below(3) == 0)).collect()),
        ]
    }

    fn props() -> Arc<WriterProperties> {
        // One value per batch, so that the crate checks its page limits after every value, as
        // `Column` does.
        Arc::new(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_dictionary_enabled(false)
                .set_write_batch_size(1)
                .build(),
        )
    }

    fn file_writer(
        path: &Path,
        schema: &str,
        props: Arc<WriterProperties>,
    ) -> (SerializedFileWriter<std::fs::File>, Arc<SchemaDescriptor>) {
        let root: Arc<SchemaType> = Arc::new(parquet::schema::parser::parse_message_type(schema).expect("schema"));
        let descr = Arc::new(SchemaDescriptor::new(root.clone()));
        (SerializedFileWriter::new(std::fs::File::create(path).expect("create"), root, props).expect("writer"), descr)
    }

    /// Appends row `r` of `cols` to `c`.
    fn append(c: &mut Columns, cols: &[Values], r: usize) {
        for (i, values) in cols.iter().enumerate() {
            match values {
                Values::I64(v) => match v[r] {
                    Some(x) => c.i64(i, x),
                    None => c.null(i),
                },
                Values::I32(v) => match v[r] {
                    Some(x) => c.i32(i, x),
                    None => c.null(i),
                },
                Values::F64(v) => match v[r] {
                    Some(x) => c.f64(i, x),
                    None => c.null(i),
                },
                Values::Bool(v) => match v[r] {
                    Some(x) => c.bool(i, x),
                    None => c.null(i),
                },
                Values::Bytes(v) => match &v[r] {
                    Some(x) => c.bytes(i, x),
                    None => c.null(i),
                },
            }
        }
    }

    fn len(cols: &[Values]) -> usize {
        match &cols[0] {
            Values::I64(v) => v.len(),
            _ => 0,
        }
    }

    /// Writes the row groups with `Columns`, row by row.
    fn write_ours(path: &Path, groups: &[Vec<Values>]) {
        let props = props();
        let (mut w, descr) = file_writer(path, SCHEMA, props.clone());
        let mut scratch = Scratch::default();
        let mut c = Columns::new(&descr, &props).expect("columns");
        for cols in groups {
            for r in 0..len(cols) {
                append(&mut c, cols, r);
                c.row_done(&mut scratch);
            }
            c.write_to(&mut w, &mut scratch).expect("row group");
        }
        w.close().expect("close");
    }

    /// The present values and, for an optional column, the definition levels.
    fn split<T: Clone>(v: &[Option<T>], optional: bool) -> (Vec<T>, Option<Vec<i16>>) {
        let values = v.iter().flatten().cloned().collect();
        (values, optional.then(|| v.iter().map(|x| i16::from(x.is_some())).collect()))
    }

    /// Writes the row groups with the parquet crate's own column writer.
    fn write_crate(path: &Path, groups: &[Vec<Values>]) {
        let (mut w, _) = file_writer(path, SCHEMA, props());
        for cols in groups {
            let mut rg = w.next_row_group().expect("row group");
            for (values, &opt) in cols.iter().zip(&OPTIONAL) {
                let mut col = rg.next_column().expect("column").expect("a column left");
                let written = match values {
                    Values::I64(v) => {
                        let (v, d) = split(v, opt);
                        col.typed::<Int64Type>().write_batch(&v, d.as_deref(), None)
                    }
                    Values::I32(v) => {
                        let (v, d) = split(v, opt);
                        col.typed::<Int32Type>().write_batch(&v, d.as_deref(), None)
                    }
                    Values::F64(v) => {
                        let (v, d) = split(v, opt);
                        col.typed::<DoubleType>().write_batch(&v, d.as_deref(), None)
                    }
                    Values::Bool(v) => {
                        let (v, d) = split(v, opt);
                        col.typed::<BoolType>().write_batch(&v, d.as_deref(), None)
                    }
                    Values::Bytes(v) => {
                        let (v, d) = split(v, opt);
                        let v: Vec<ByteArray> = v.into_iter().map(ByteArray::from).collect();
                        col.typed::<ByteArrayType>().write_batch(&v, d.as_deref(), None)
                    }
                };
                written.expect("write");
                col.close().expect("close column");
            }
            rg.close().expect("close row group");
        }
        w.close().expect("close");
    }

    fn metadata(path: &Path) -> ParquetMetaData {
        ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .parse_and_finish(&std::fs::File::open(path).expect("open"))
            .expect("metadata")
    }

    /// Every row, printed (so NaN equals NaN and -0.0 differs from 0.0).
    fn rows(path: &Path) -> Vec<String> {
        let mut out = Vec::new();
        crate::pq::for_each_row(std::fs::File::open(path).expect("open"), |_, row| out.push(format!("{row:?}")))
            .expect("read");
        out
    }

    fn scratch_dir(what: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("pipe-pq-{what}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    /// The columns written here equal the parquet crate's own writer's, given the same pages:
    /// the same values read back, and the same statistics, column index (bounds per page, null
    /// pages, null counts, boundary order, level histograms) and page rows in the offset index.
    /// Row groups: random values over three pages (NaN, ±0, infinities, text up to 150
    /// characters with the characters that cannot be raised, bytes that are not UTF-8);
    /// optional columns all null and doubles all NaN; long text in ascending order that fills
    /// pages by size; one row.
    #[test]
    fn columns_equal_the_parquet_crates_given_the_same_pages() {
        let dir = scratch_dir("write");
        let mut g = Gen(7);
        let mut groups = vec![random(&mut g, 45_000, 300, 150), random(&mut g, 3_000, 1000, 10)];
        // Doubles that are all NaN leave no bounds, and the chunk no column index.
        groups[1][4] = Values::F64(vec![Some(f64::NAN); 3_000]);
        let mut sorted = random(&mut g, 60, 0, 10);
        let mut long: Vec<Vec<u8>> = (0..60).map(|_| g.text(20_000)).collect();
        long.sort();
        sorted[6] = Values::Bytes(long.into_iter().map(Some).collect());
        sorted[0] = Values::I64((0..60).map(Some).collect());
        groups.push(sorted);
        groups.push(random(&mut g, 1, 0, 100));

        let (ours, theirs) = (dir.join("ours.parquet"), dir.join("crate.parquet"));
        write_ours(&ours, &groups);
        write_crate(&theirs, &groups);
        let (a, b) = (rows(&ours), rows(&theirs));
        assert_eq!(a.len(), 48_061);
        assert_eq!(a, b);

        let (m, n) = (metadata(&ours), metadata(&theirs));
        let (ci, cj) = (m.column_index().expect("our column index"), n.column_index().expect("crate's column index"));
        let (oi, oj) = (m.offset_index().expect("our offset index"), n.offset_index().expect("crate's offset index"));
        let first_rows = |o: &parquet::file::page_index::offset_index::OffsetIndexMetaData| {
            o.page_locations().iter().map(|l| l.first_row_index).collect::<Vec<_>>()
        };
        for (r, (x, y)) in m.row_groups().iter().zip(n.row_groups()).enumerate() {
            for (c, (p, q)) in x.columns().iter().zip(y.columns()).enumerate() {
                let at = format!("row group {r}, column {}", p.column_path());
                assert_eq!(p.statistics(), q.statistics(), "{at}");
                assert_eq!(p.num_values(), q.num_values(), "{at}");
                assert_eq!(p.compression(), q.compression(), "{at}");
                assert_eq!(p.unencoded_byte_array_data_bytes(), q.unencoded_byte_array_data_bytes(), "{at}");
                assert_eq!(p.definition_level_histogram(), q.definition_level_histogram(), "{at}");
                assert_eq!(format!("{:?}", ci[r][c]), format!("{:?}", cj[r][c]), "{at}");
                assert_eq!(first_rows(&oi[r][c]), first_rows(&oj[r][c]), "{at}");
                assert_eq!(
                    oi[r][c].unencoded_byte_array_data_bytes(),
                    oj[r][c].unencoded_byte_array_data_bytes(),
                    "{at}"
                );
            }
        }
        // The first group's columns have three pages by rows; the long text fills them by size.
        assert_eq!(first_rows(&oi[0][0]), [0, 20_000, 40_000]);
        assert!(oi[2][6].page_locations().len() >= 2, "{:?}", oi[2][6]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Writes one optional INT64 column `v` with `Columns` and reads its rows back.
    fn round_trip(path: &Path, values: &[Option<i64>]) -> Vec<String> {
        let props = props();
        let (mut w, descr) = file_writer(path, "message m { OPTIONAL INT64 v; }", props.clone());
        let mut scratch = Scratch::default();
        let mut c = Columns::new(&descr, &props).expect("columns");
        for v in values {
            match *v {
                Some(x) => c.i64(0, x),
                None => c.null(0),
            }
            c.row_done(&mut scratch);
        }
        c.write_to(&mut w, &mut scratch).expect("row group");
        w.close().expect("close");
        rows(path)
    }

    /// Definition levels in every shape the hybrid encoding has: runs of eight and more, short
    /// runs packed eight to a byte, more than 63 packed groups in a row, a padded last group,
    /// nulls only.
    #[test]
    fn definition_levels_read_back_in_every_run_shape() {
        let dir = scratch_dir("levels");
        let shapes: Vec<Vec<Option<i64>>> = vec![
            (0..1000).map(|i| (i % 2 == 0).then_some(i)).collect(),
            (0..1000).map(|i| (i / 9 % 2 == 0).then_some(i)).collect(),
            (0..1003).map(|i| (i < 500 || i % 3 == 0).then_some(i)).collect(),
            (0..13).map(|i| (i != 12).then_some(i)).collect(),
            vec![None; 7],
        ];
        for (k, values) in shapes.iter().enumerate() {
            let want: Vec<String> = values
                .iter()
                .map(|v| match v {
                    Some(v) => format!("Row {{ fields: [(\"v\", Long({v}))] }}"),
                    None => "Row { fields: [(\"v\", Null)] }".to_string(),
                })
                .collect();
            assert_eq!(round_trip(&dir.join(format!("{k}.parquet")), values), want, "shape {k}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A snappy literal of every length class (tag alone, one to four length bytes, empty)
    /// decodes to its bytes; a page of random hex digits is stored as one, at about its own
    /// size, and a repetitive page is still compressed.
    #[test]
    fn incompressible_pages_are_one_snappy_literal_that_decodes_to_the_page() {
        let mut g = Gen(11);
        let mut out = Vec::new();
        for len in [0, 1, 60, 61, 256, 257, 65_536, 65_537, (1 << 24) + 3] {
            let body: Vec<u8> = (0..len).map(|_| g.next() as u8).collect();
            out.resize(snap::raw::max_compress_len(len), 0);
            let n = super::literal(&mut out, &body);
            assert_eq!(snap::raw::Decoder::new().decompress_vec(&out[..n]).expect("decodes"), body, "{len}");
        }
        let hex: Vec<u8> = (0..100_000).map(|_| b"0123456789abcdef"[g.below(16) as usize]).collect();
        let repeated: Vec<u8> = hex[..1000].iter().copied().cycle().take(100_000).collect();
        let mut snappy = snap::raw::Encoder::new();
        for (page, stored) in [(&hex, true), (&repeated, false)] {
            let n = super::compress(&mut snappy, &mut out, page).expect("compress");
            let decoded = snap::raw::Decoder::new().decompress_vec(&out[..n]).expect("decodes");
            assert_eq!(&decoded, page);
            assert_eq!(n > page.len(), stored, "{n} bytes for {}", page.len());
            assert!(n < page.len() + 16, "{n}");
        }
    }

    /// Every page carries its checksum: the file reads back whole, and one flipped byte in the
    /// last page of the first column is a checksum error, compressed or not.
    #[test]
    fn every_page_carries_a_checksum_a_flipped_byte_is_an_error() {
        let dir = scratch_dir("crc");
        for codec in [Compression::SNAPPY, Compression::UNCOMPRESSED] {
            let path = dir.join(format!("{codec}.parquet"));
            let props = Arc::new(WriterProperties::builder().set_compression(codec).build());
            let schema = "message m { REQUIRED INT64 id; OPTIONAL BYTE_ARRAY name (UTF8); }";
            let (mut w, descr) = file_writer(&path, schema, props.clone());
            let mut scratch = Scratch::default();
            let mut c = Columns::new(&descr, &props).expect("columns");
            for g in 0..2i64 {
                for i in 0..30_000 {
                    c.i64(0, g * 30_000 + i);
                    if i % 3 == 0 {
                        c.null(1);
                    } else {
                        c.bytes(1, format!("n{}", i % 7).as_bytes());
                    }
                    c.row_done(&mut scratch);
                }
                c.write_to(&mut w, &mut scratch).expect("row group");
            }
            w.close().expect("close");
            let read = rows(&path);
            assert_eq!(read.len(), 60_000, "{codec}");
            assert_eq!(read[59_998], r#"Row { fields: [("id", Long(59998)), ("name", Str("n3"))] }"#, "{codec}");
            assert_eq!(read[3], r#"Row { fields: [("id", Long(3)), ("name", Null)] }"#, "{codec}");
            let meta = metadata(&path);
            let col = meta.row_group(0).column(0);
            let last = (col.data_page_offset() + col.compressed_size() - 1) as usize;
            let mut bytes = std::fs::read(&path).expect("bytes");
            bytes[last] ^= 0x01;
            std::fs::write(&path, &bytes).expect("write");
            let err =
                crate::pq::for_each_row(std::fs::File::open(&path).expect("open"), |_, _| {}).expect_err("flipped");
            assert!(err.to_lowercase().contains("checksum"), "{codec}: {err}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A null in a required column is an error of the row group, not a corrupt file; the
    /// columns are empty afterwards and take the next rows.
    #[test]
    fn a_null_in_a_required_column_is_an_error() {
        let dir = scratch_dir("null");
        let props = props();
        let path = dir.join("n.parquet");
        let (mut w, descr) = file_writer(&path, "message m { REQUIRED INT64 v; }", props.clone());
        let mut scratch = Scratch::default();
        let mut c = Columns::new(&descr, &props).expect("columns");
        c.i64(0, 1);
        c.row_done(&mut scratch);
        c.null(0);
        c.row_done(&mut scratch);
        let err = c.write_to(&mut w, &mut scratch).expect_err("a null in a required column");
        assert!(err.to_string().contains("a null in the required column `v`"), "{err}");
        assert_eq!(c.rows(), 0);
        c.i64(0, 7);
        c.row_done(&mut scratch);
        c.write_to(&mut w, &mut scratch).expect("the next row group");
        w.close().expect("close");
        assert_eq!(rows(&path), [r#"Row { fields: [("v", Long(7))] }"#]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
