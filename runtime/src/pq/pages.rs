//! A strict walk over the page headers of every column chunk, before the parquet crate decodes
//! them.
//!
//! The crate's Thrift reader trusts the counts it reads: skipping a list of booleans costs it no
//! input per element, and a skip past the end of its input succeeds without reading anything. A
//! corrupt page header of a few bytes can so keep it busy for minutes (found by fuzzing: Parquet
//! files under 2 KB that took 27–256 s to fail). It also allocates what a header claims before
//! it checks it: the uncompressed size of a page, and the entries of a dictionary. This walk
//! reads each header as `parquet.thrift` declares it, in the same order the crate does: the
//! fields the crate reads must carry their declared wire types and i32 fields fit an i32 (so both
//! readers consume the same bytes), a count never exceeds the bytes left, no collection holds
//! booleans (no page header has one), every page ends inside its column chunk, a snappy page
//! claims no more than snappy can expand its bytes to, and a dictionary no more entries than its
//! bytes can hold. The footer is walked the same way first (`check_footer`), with the whole
//! `FileMetaData` schema. A file that passes costs the crate header work in proportion to its size and
//! allocations bounded by a small multiple of it; one that does not is an error naming the row
//! group, the column, the byte offset and what is wrong.

use std::io::Read;

use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::ChunkReader;

/// The Thrift compact protocol's wire types.
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;

/// How deep unknown values may nest (the crate stops at 64 too).
const DEPTH: u32 = 64;

/// A field the parquet crate reads with a fixed type.
#[derive(Clone, Copy)]
enum Ty {
    Byte,
    Int16,
    Int32,
    Int64,
    Double,
    Binary,
    Bool,
    Struct(&'static [(i16, Ty)]),
    List(&'static Ty),
}

impl Ty {
    /// The wire type a value of this type is sent with.
    fn wire(self) -> u8 {
        match self {
            Ty::Byte => BYTE,
            Ty::Int16 => I16,
            Ty::Int32 => I32,
            Ty::Int64 => I64,
            Ty::Double => DOUBLE,
            Ty::Binary => BINARY,
            Ty::Bool => BOOL_TRUE,
            Ty::Struct(_) => STRUCT,
            Ty::List(_) => LIST,
        }
    }

    fn accepts(self, wire: u8) -> bool {
        match self {
            Ty::Bool => wire == BOOL_TRUE || wire == BOOL_FALSE,
            ty => wire == ty.wire(),
        }
    }
}

const STATISTICS: &[(i16, Ty)] = &[
    (1, Ty::Binary),
    (2, Ty::Binary),
    (3, Ty::Int64),
    (4, Ty::Int64),
    (5, Ty::Binary),
    (6, Ty::Binary),
    (7, Ty::Bool),
    (8, Ty::Bool),
];
const DATA_PAGE: &[(i16, Ty)] =
    &[(1, Ty::Int32), (2, Ty::Int32), (3, Ty::Int32), (4, Ty::Int32), (5, Ty::Struct(STATISTICS))];
const DICTIONARY_PAGE: &[(i16, Ty)] = &[(1, Ty::Int32), (2, Ty::Int32), (3, Ty::Bool)];
const DATA_PAGE_V2: &[(i16, Ty)] = &[
    (1, Ty::Int32),
    (2, Ty::Int32),
    (3, Ty::Int32),
    (4, Ty::Int32),
    (5, Ty::Int32),
    (6, Ty::Int32),
    (7, Ty::Bool),
    (8, Ty::Struct(STATISTICS)),
];
const PAGE_HEADER: &[(i16, Ty)] = &[
    (1, Ty::Int32),
    (2, Ty::Int32),
    (3, Ty::Int32),
    (4, Ty::Int32),
    (5, Ty::Struct(DATA_PAGE)),
    (6, Ty::Struct(&[])),
    (7, Ty::Struct(DICTIONARY_PAGE)),
    (8, Ty::Struct(DATA_PAGE_V2)),
];

// The footer (`FileMetaData`) as `parquet.thrift` declares it and the crate reads it. Unions are
// structs of one field here (the crate reads the one field, then the stop).
const EMPTY: &[(i16, Ty)] = &[];
const TIME_UNIT: &[(i16, Ty)] = &[(1, Ty::Struct(EMPTY)), (2, Ty::Struct(EMPTY)), (3, Ty::Struct(EMPTY))];
const TIMESTAMP: &[(i16, Ty)] = &[(1, Ty::Bool), (2, Ty::Struct(TIME_UNIT))];
const LOGICAL_TYPE: &[(i16, Ty)] = &[
    (1, Ty::Struct(EMPTY)),
    (2, Ty::Struct(EMPTY)),
    (3, Ty::Struct(EMPTY)),
    (4, Ty::Struct(EMPTY)),
    (5, Ty::Struct(&[(1, Ty::Int32), (2, Ty::Int32)])),
    (6, Ty::Struct(EMPTY)),
    (7, Ty::Struct(TIMESTAMP)),
    (8, Ty::Struct(TIMESTAMP)),
    (10, Ty::Struct(&[(1, Ty::Byte), (2, Ty::Bool)])),
    (11, Ty::Struct(EMPTY)),
    (12, Ty::Struct(EMPTY)),
    (13, Ty::Struct(EMPTY)),
    (14, Ty::Struct(EMPTY)),
    (15, Ty::Struct(EMPTY)),
    (16, Ty::Struct(&[(1, Ty::Byte)])),
    (17, Ty::Struct(&[(1, Ty::Binary)])),
    (18, Ty::Struct(&[(1, Ty::Binary), (2, Ty::Int32)])),
];
const SCHEMA_ELEMENT: &[(i16, Ty)] = &[
    (1, Ty::Int32),
    (2, Ty::Int32),
    (3, Ty::Int32),
    (4, Ty::Binary),
    (5, Ty::Int32),
    (6, Ty::Int32),
    (7, Ty::Int32),
    (8, Ty::Int32),
    (9, Ty::Int32),
    (10, Ty::Struct(LOGICAL_TYPE)),
];
const KEY_VALUE: &[(i16, Ty)] = &[(1, Ty::Binary), (2, Ty::Binary)];
const BOUNDING_BOX: &[(i16, Ty)] = &[
    (1, Ty::Double),
    (2, Ty::Double),
    (3, Ty::Double),
    (4, Ty::Double),
    (5, Ty::Double),
    (6, Ty::Double),
    (7, Ty::Double),
    (8, Ty::Double),
];
const COLUMN_META_DATA: &[(i16, Ty)] = &[
    (1, Ty::Int32),
    (2, Ty::List(&Ty::Int32)),
    (3, Ty::List(&Ty::Binary)),
    (4, Ty::Int32),
    (5, Ty::Int64),
    (6, Ty::Int64),
    (7, Ty::Int64),
    (8, Ty::List(&Ty::Struct(KEY_VALUE))),
    (9, Ty::Int64),
    (10, Ty::Int64),
    (11, Ty::Int64),
    (12, Ty::Struct(STATISTICS)),
    (13, Ty::List(&Ty::Struct(&[(1, Ty::Int32), (2, Ty::Int32), (3, Ty::Int32)]))),
    (14, Ty::Int64),
    (15, Ty::Int32),
    (16, Ty::Struct(&[(1, Ty::Int64), (2, Ty::List(&Ty::Int64)), (3, Ty::List(&Ty::Int64))])),
    (17, Ty::Struct(&[(1, Ty::Struct(BOUNDING_BOX)), (2, Ty::List(&Ty::Int32))])),
];
const COLUMN_CRYPTO: &[(i16, Ty)] =
    &[(1, Ty::Struct(EMPTY)), (2, Ty::Struct(&[(1, Ty::List(&Ty::Binary)), (2, Ty::Binary)]))];
const COLUMN_CHUNK: &[(i16, Ty)] = &[
    (1, Ty::Binary),
    (2, Ty::Int64),
    (3, Ty::Struct(COLUMN_META_DATA)),
    (4, Ty::Int64),
    (5, Ty::Int32),
    (6, Ty::Int64),
    (7, Ty::Int32),
    (8, Ty::Struct(COLUMN_CRYPTO)),
    (9, Ty::Binary),
];
const ROW_GROUP: &[(i16, Ty)] = &[
    (1, Ty::List(&Ty::Struct(COLUMN_CHUNK))),
    (2, Ty::Int64),
    (3, Ty::Int64),
    (4, Ty::List(&Ty::Struct(&[(1, Ty::Int32), (2, Ty::Bool), (3, Ty::Bool)]))),
    (5, Ty::Int64),
    (6, Ty::Int64),
    (7, Ty::Int16),
];
const AES: &[(i16, Ty)] = &[(1, Ty::Binary), (2, Ty::Binary), (3, Ty::Bool)];
const FILE_META_DATA: &[(i16, Ty)] = &[
    (1, Ty::Int32),
    (2, Ty::List(&Ty::Struct(SCHEMA_ELEMENT))),
    (3, Ty::Int64),
    (4, Ty::List(&Ty::Struct(ROW_GROUP))),
    (5, Ty::List(&Ty::Struct(KEY_VALUE))),
    (6, Ty::Binary),
    (7, Ty::List(&Ty::Struct(&[(1, Ty::Struct(EMPTY))]))),
    (8, Ty::Struct(&[(1, Ty::Struct(AES)), (2, Ty::Struct(AES))])),
    (9, Ty::Binary),
];

/// Walks a file's footer (its `FileMetaData`, the bytes before its last 8) the same way, before
/// the crate decodes it: its skip of unknown fields has the same flaw (a list of booleans in 9
/// bytes cost it 8 s), and it reads the footer with parsers of its own whose byte consumption
/// this walk matches field by field. A file too short to have a footer is left to the crate.
pub(super) fn check_footer<R: ChunkReader>(file: &R) -> Result<(), String> {
    let size = file.len();
    let Some(tail_at) = size.checked_sub(8) else { return Ok(()) };
    let tail = file.get_bytes(tail_at, 8).map_err(|e| format!("cannot read its footer: {e}"))?;
    if &tail[4..] != b"PAR1" {
        return Ok(()); // not Parquet, or an encrypted footer: the crate says which
    }
    let len = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    let Some(start) = tail_at.checked_sub(len) else { return Ok(()) };
    let read = file.get_read(start).map_err(|e| format!("cannot read its footer: {e}"))?;
    let mut wire = Wire { r: read.take(len), used: 0, left: len, dictionary_values: None };
    wire.strukt(FILE_META_DATA, 0).map_err(|e| format!("its footer (at byte {start}) {e}"))?;
    Ok(())
}

/// Walks the page headers of every column chunk of the file.
pub(super) fn check<R: ChunkReader>(file: &R, meta: &ParquetMetaData) -> Result<(), String> {
    let size = file.len();
    for (g, group) in meta.row_groups().iter().enumerate() {
        for column in group.columns() {
            let at = |what: String| format!("row group {g}, column `{}`: {what}", column.column_path().string());
            let (start, len) = column.byte_range();
            let end = start.checked_add(len).filter(|&end| end <= size).ok_or_else(|| {
                at(format!("its pages (bytes {start}..{start}+{len}) lie outside the file ({size} bytes)"))
            })?;
            let codec = match column.compression() {
                parquet::basic::Compression::UNCOMPRESSED => Codec::None,
                parquet::basic::Compression::SNAPPY => Codec::Snappy,
                // Not compiled in: the crate refuses the chunk before it reads a page.
                _ => Codec::Other,
            };
            let bits: i64 = match column.column_type() {
                parquet::basic::Type::BOOLEAN => 1,
                parquet::basic::Type::INT32 | parquet::basic::Type::FLOAT | parquet::basic::Type::BYTE_ARRAY => 32,
                parquet::basic::Type::INT64 | parquet::basic::Type::DOUBLE => 64,
                parquet::basic::Type::INT96 => 96,
                parquet::basic::Type::FIXED_LEN_BYTE_ARRAY => 8 * i64::from(column.column_descr().type_length().max(1)),
            };
            let mut offset = start;
            while offset < end {
                let read = file.get_read(offset).map_err(|e| at(format!("byte {offset}: {e}")))?;
                let mut wire =
                    Wire { r: read.take(end - offset), used: 0, left: end - offset, dictionary_values: None };
                let header =
                    wire.strukt(PAGE_HEADER, 0).map_err(|e| at(format!("the page header at byte {offset} {e}")))?;
                let (Some(_), Some(plain), Some(packed)) = (header[1], header[2], header[3]) else {
                    return Err(at(format!("the page header at byte {offset} lacks its type or sizes")));
                };
                claims(plain, packed, codec, wire.dictionary_values, bits)
                    .map_err(|e| at(format!("the page at byte {offset} {e}")))?;
                offset += wire.used;
                offset = offset.checked_add(packed as u64).filter(|&next| next <= end).ok_or_else(|| {
                    at(format!(
                        "the page at byte {offset} ({packed} bytes) runs past the end of its column chunk (byte {end})"
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// Checks what a page header claims against its bytes: `plain` and `packed` its sizes, whether
/// and how its chunk is compressed, the entries of a dictionary page and the fewest bits one takes.
/// The crate allocates the uncompressed size (and snappy fills it) before it decompresses, and a
/// dictionary's entries before it reads one.
fn claims(plain: i64, packed: i64, codec: Codec, dictionary: Option<i64>, bits: i64) -> Result<(), String> {
    if plain < 0 || packed < 0 {
        return Err("has a negative size".to_string());
    }
    // Snappy expands at most 64 bytes out of a 3-byte copy.
    if codec == Codec::Snappy && plain > 22 * packed + 64 {
        return Err(format!(
            "claims {plain} bytes uncompressed out of {packed} compressed, more than snappy expands to"
        ));
    }
    let body = if codec == Codec::None { packed } else { plain };
    match dictionary {
        Some(n) if n < 0 || n.saturating_mul(bits) > body.saturating_mul(8) => {
            Err(format!("is a dictionary of {n} entries in {body} bytes"))
        }
        _ => Ok(()),
    }
}

/// How a column chunk's pages are compressed, as far as the bounds of `claims` go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    None,
    Snappy,
    Other,
}

/// The bytes of one page header, never more than are left in its column chunk.
struct Wire<R> {
    r: R,
    used: u64,
    left: u64,
    /// The `num_values` of a dictionary page header.
    dictionary_values: Option<i64>,
}

impl<R: Read> Wire<R> {
    fn take(&mut self, n: u64) -> Result<(), String> {
        if n > self.left {
            return Err(format!("runs past the end of its column chunk (wants {n} bytes, {} left)", self.left));
        }
        self.left -= n;
        self.used += n;
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, String> {
        self.take(1)?;
        let mut b = [0u8];
        self.r.read_exact(&mut b).map_err(|e| format!("cannot be read: {e}"))?;
        Ok(b[0])
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        self.take(n)?;
        let copied = std::io::copy(&mut (&mut self.r).take(n), &mut std::io::sink())
            .map_err(|e| format!("cannot be read: {e}"))?;
        if copied < n {
            return Err("runs past the end of the file".to_string());
        }
        Ok(())
    }

    /// An unsigned LEB128 varint of at most 10 bytes.
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("has a varint longer than 10 bytes".to_string())
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// A struct whose known fields are `fields`; the integers found at this level by field id
    /// (ids 1–8, the ones a page header has).
    fn strukt(&mut self, fields: &[(i16, Ty)], depth: u32) -> Result<[Option<i64>; 9], String> {
        if depth > DEPTH {
            return Err(format!("nests deeper than {DEPTH} levels"));
        }
        let mut ints = [None; 9];
        let mut last = 0i16;
        loop {
            let b = self.byte()?;
            let wire = b & 0x0f;
            if wire == 0 {
                return Ok(ints);
            }
            let id = match b >> 4 {
                0 => i16::try_from(self.zigzag()?).map_err(|_| "has a field id out of range".to_string())?,
                delta => last.checked_add(i16::from(delta)).ok_or("has a field id out of range")?,
            };
            match fields.iter().find(|(known, _)| *known == id) {
                Some(&(_, ty)) if !ty.accepts(wire) => {
                    return Err(format!("has field {id} with wire type {wire}, not the type Parquet declares"));
                }
                Some(&(_, Ty::Struct(inner))) => {
                    let nested = self.strukt(inner, depth + 1)?;
                    // A page header's field 7 is its dictionary page header (a footer's is a
                    // list, never here).
                    if depth == 0 && id == 7 {
                        self.dictionary_values = nested[1];
                    }
                }
                Some(&(_, Ty::List(element))) => self.list(*element, depth + 1)?,
                Some(&(_, ty @ (Ty::Int32 | Ty::Int64))) => {
                    let v = self.zigzag()?;
                    // The crate reads an i32 field by truncating the varint: one out of range
                    // would make it read another page size than this walk does.
                    if matches!(ty, Ty::Int32) && i32::try_from(v).is_err() {
                        return Err(format!("has field {id} = {v}, out of the range of its i32"));
                    }
                    if let Some(slot) = usize::try_from(id).ok().and_then(|i| ints.get_mut(i)) {
                        *slot = Some(v);
                    }
                }
                _ => self.value(wire, depth + 1)?,
            }
            last = id;
        }
    }

    /// A list the crate reads with a fixed element type (after the list's header byte: a 0 is
    /// an empty list, as some writers put it).
    fn list(&mut self, element: Ty, depth: u32) -> Result<(), String> {
        if depth > DEPTH {
            return Err(format!("nests deeper than {DEPTH} levels"));
        }
        let b = self.byte()?;
        if b == 0 {
            return Ok(());
        }
        if !element.accepts(b & 0x0f) {
            return Err(format!("has a list of wire type {}, not the type Parquet declares", b & 0x0f));
        }
        let n = match b >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        if n > self.left {
            return Err(format!("has a list of {n} entries in {} bytes", self.left));
        }
        for _ in 0..n {
            match element {
                Ty::Struct(fields) => drop(self.strukt(fields, depth + 1)?),
                Ty::List(inner) => self.list(*inner, depth + 1)?,
                Ty::Bool => self.skip(1)?, // a boolean in a collection takes a byte
                other => self.value(other.wire(), depth + 1)?,
            }
        }
        Ok(())
    }

    /// A value of a field the crate does not know, which it skips by its wire type.
    fn value(&mut self, wire: u8, depth: u32) -> Result<(), String> {
        if depth > DEPTH {
            return Err(format!("nests deeper than {DEPTH} levels"));
        }
        match wire {
            BOOL_TRUE | BOOL_FALSE => Ok(()),
            BYTE => self.skip(1),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => self.skip(8),
            BINARY => {
                let n = self.varint()?;
                self.skip(n)
            }
            STRUCT => self.strukt(&[], depth).map(drop),
            LIST | SET => {
                let b = self.byte()?;
                if b == 0 {
                    return Ok(()); // an empty list as some writers put it
                }
                let n = match b >> 4 {
                    15 => self.varint()?,
                    n => u64::from(n),
                };
                self.elements(n, &[b & 0x0f], depth)
            }
            MAP => {
                let n = self.varint()?;
                if n == 0 {
                    return Ok(());
                }
                let kv = self.byte()?;
                self.elements(n, &[kv >> 4, kv & 0x0f], depth)
            }
            other => Err(format!("has a value of unknown wire type {other}")),
        }
    }

    /// `n` entries of a collection, each a value of every type of `types` in turn.
    fn elements(&mut self, n: u64, types: &[u8], depth: u32) -> Result<(), String> {
        if types.iter().any(|&t| t == BOOL_TRUE || t == BOOL_FALSE) {
            return Err("has a collection of booleans, which neither a page header nor a footer has".to_string());
        }
        if types.iter().any(|&t| !(BYTE..=STRUCT).contains(&t)) {
            return Err("has a collection of an unknown wire type".to_string());
        }
        // Every element takes at least one byte: a count above what is left is corrupt.
        if n.saturating_mul(types.len() as u64) > self.left {
            return Err(format!("has a collection of {n} entries in {} bytes", self.left));
        }
        for _ in 0..n {
            for &t in types {
                self.value(t, depth + 1)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(bytes: &[u8]) -> Result<[Option<i64>; 9], String> {
        let mut w = Wire { r: bytes, used: 0, left: bytes.len() as u64, dictionary_values: None };
        w.strukt(PAGE_HEADER, 0)
    }

    /// A data page header: type 0, sizes 10 and 12, a data page header with 3 values.
    const GOOD: &[u8] =
        &[0x15, 0x00, 0x15, 0x14, 0x15, 0x18, 0x2c, 0x15, 0x06, 0x15, 0x00, 0x15, 0x06, 0x15, 0x06, 0x00, 0x00];

    #[test]
    fn a_page_header_as_parquet_declares_it_reads_its_sizes() {
        let ints = walk(GOOD).expect("good header");
        assert_eq!((ints[1], ints[2], ints[3]), (Some(0), Some(10), Some(12)));
    }

    /// A dictionary page header (type 2, sizes 40 and 40, 10 entries, plain): the walk finds
    /// its number of entries, which `claims` bounds.
    #[test]
    fn a_dictionary_page_header_gives_its_entries() {
        let header = [0x15, 0x04, 0x15, 0x50, 0x15, 0x50, 0x4c, 0x15, 0x14, 0x15, 0x00, 0x00, 0x00];
        let mut w = Wire { r: &header[..], used: 0, left: header.len() as u64, dictionary_values: None };
        let ints = w.strukt(PAGE_HEADER, 0).expect("a dictionary page header");
        assert_eq!((ints[1], ints[2], w.dictionary_values), (Some(2), Some(40), Some(10)));
        assert_eq!(w.used, header.len() as u64);
    }

    #[test]
    fn sizes_the_crate_would_allocate_are_bounded_by_the_bytes() {
        assert!(claims(4096, 1000, Codec::Snappy, None, 32).is_ok());
        assert!(claims(i64::from(i32::MAX), 1, Codec::Snappy, None, 32).expect_err("2 GiB").contains("snappy"));
        assert!(
            claims(i64::from(i32::MAX), 1, Codec::None, None, 32).is_ok(),
            "uncompressed: the crate uses the bytes"
        );
        assert!(claims(400, 400, Codec::None, Some(100), 32).is_ok());
        assert!(
            claims(400, 100, Codec::Snappy, Some(100), 32).is_ok(),
            "snappy: the entries are in the uncompressed bytes"
        );
        assert!(claims(400, 400, Codec::None, Some(101), 32).expect_err("101 i32s").contains("101 entries in 400"));
        assert!(claims(16, 16, Codec::None, Some(128), 1).is_ok(), "booleans take a bit");
        assert!(claims(-1, 0, Codec::None, None, 32).is_err());
        assert!(
            claims(4000, 400, Codec::Other, Some(777), 32).is_ok(),
            "zstd: the entries are in the uncompressed bytes"
        );
    }

    #[test]
    fn counts_the_crate_would_trust_are_refused() {
        // An unknown field 9 holding a list of 2^31 booleans: no bytes per element for the crate.
        let mut bools = GOOD[..6].to_vec();
        bools.extend([0x69, 0xf1, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00]);
        assert!(walk(&bools).expect_err("refused").contains("booleans"));
        // An unknown field holding a list of a billion doubles in a few bytes.
        let mut doubles = GOOD[..6].to_vec();
        doubles.extend([0x69, 0xf7, 0x80, 0x94, 0xeb, 0xdc, 0x03, 0x00]);
        assert!(walk(&doubles).expect_err("refused").contains("entries in"));
        // A statistics value longer than what is left.
        let stats = [
            0x15, 0x00, 0x15, 0x14, 0x15, 0x18, 0x2c, 0x15, 0x06, 0x15, 0x00, 0x15, 0x06, 0x15, 0x06, 0x1c, 0x18, 0xff,
            0x7f,
        ];
        assert!(walk(&stats).expect_err("refused").contains("past the end"));
        // The compressed size sent as a string: the crate would read its length as the size.
        // A compressed size of 2^32 + 12: the crate would truncate it to 12.
        let wide = [0x15, 0x00, 0x15, 0x14, 0x15, 0x98, 0x80, 0x80, 0x80, 0x20, 0x00];
        assert!(walk(&wide).expect_err("refused").contains("out of the range of its i32"));
        let retyped = [0x15, 0x00, 0x15, 0x14, 0x18, 0x02, 0x41, 0x41, 0x00];
        assert!(walk(&retyped).expect_err("refused").contains("wire type 8"));
    }
}
