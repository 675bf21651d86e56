//! What a record is while it moves through a pipeline: where it came from (so a rejection can
//! say so) and the one error type every generated stage returns.

use std::fmt;

/// Where a record came from: the source, the file position and its raw text, kept only until
/// the record leaves the stage functions (a rejection copies them; nothing else does).
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    pub source: &'a str,
    pub file: &'a str,
    /// Byte offset of the record's first byte in its file.
    pub offset: u64,
    /// The line, when the reader knows it.
    pub line: Line<'a>,
    pub raw: &'a [u8],
    /// For a row a join made, the record of the other side it met (0: none): `k >= N` behind
    /// a join counts the distinct records of both sides.
    pub with: u64,
}

impl Origin<'_> {
    /// An owned copy.
    pub fn to_owned(&self) -> OwnedOrigin {
        OwnedOrigin {
            source: self.source.to_string(),
            position: self.position(),
            id: self.id(),
            raw: self.raw.to_vec(),
            with: self.with,
        }
    }

    /// `file:line`, or `file@offset` when the line is not known.
    pub fn position(&self) -> String {
        if let Line::Resolved(_) = self.line {
            return self.file.to_string();
        }
        let line = match self.line {
            Line::Known(l) => Some(l),
            Line::InSplit(base, index) => base.first_line().map(|f| f + index),
            Line::Resolved(_) | Line::Unknown => None,
        };
        match line {
            Some(l) => format!("{}:{l}", self.file),
            None => format!("{}@{}", self.file, self.offset),
        }
    }

    /// An origin for rows an aggregate produced: they come from many records, not one. `group`
    /// tells the groups apart (a hash of the key and window): a later `k >= N` counts each once.
    pub fn group(stream: &str, group: u64) -> Origin<'_> {
        Origin { source: stream, file: "", offset: group, line: Line::Unknown, raw: b"", with: 0 }
    }

    /// An origin for a row a join made of record `row` and the other side's record `other`
    /// (0 for a row that met nothing).
    pub fn joined(stream: &str, row: u64, other: u64) -> Origin<'_> {
        Origin { source: stream, file: stream, offset: row, line: Line::Resolved(row), raw: b"", with: other }
    }

    /// This record, joined with the other side's record `other`.
    pub fn meeting(&self, other: u64) -> Origin<'_> {
        Origin { with: other, ..*self }
    }

    /// Which source record this is, as a number: the same for every row made from it (an
    /// `explode`, each side of a `union` that reads it twice), different for another record
    /// (barring a 64-bit hash collision, which makes `k >= N` count one record fewer).
    #[inline]
    pub fn id(&self) -> u64 {
        match self.line {
            Line::Resolved(id) => id,
            Line::Known(line) => record_id(self.source, self.file, self.offset, line),
            Line::InSplit(..) | Line::Unknown => record_id(self.source, self.file, self.offset, 0),
        }
    }
}

/// The number [`Origin::id`] gives the record at `offset` (and `line`, for readers that count
/// lines instead) of `file` of `source`. Fixed, not seeded: checkpointed groups keep these.
#[inline]
pub fn record_id(source: &str, file: &str, offset: u64, line: u64) -> u64 {
    id_of(&(source, file, offset, line))
}

/// A fixed 64-bit hash of `v` (the same in every process and run).
#[inline]
pub fn id_of<T: std::hash::Hash>(v: &T) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0x5049_5045).hash_one(v)
}

/// What a message broker says of a record besides its payload (a Kafka message's key,
/// partition, offset and timestamp): a source that names fields for them gets them filled in.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageMeta {
    /// The key as text (not valid UTF-8: replaced characters), none for a message without one.
    pub key: Option<String>,
    pub partition: i64,
    pub offset: i64,
    /// Milliseconds since the epoch (the producer's or the broker's time), when the message has one.
    pub timestamp: Option<i64>,
}

/// A record's line number: known, or counted only when it is asked for (a split that starts in
/// the middle of a file does not know how many lines come before it until it reads them).
#[derive(Clone, Copy, Debug)]
pub enum Line<'a> {
    Known(u64),
    /// The `index`-th line (0-based) of a split.
    InSplit(&'a crate::input::LineBase, u64),
    /// `file` already holds the whole position (an origin kept beyond its split); the number is
    /// the record's [`Origin::id`].
    Resolved(u64),
    Unknown,
}

/// An origin that outlives the split it came from: rows waiting to be scored in a block keep
/// one, in case a later step rejects them.
#[derive(Clone, Debug)]
pub struct OwnedOrigin {
    source: String,
    position: String,
    id: u64,
    raw: Vec<u8>,
    with: u64,
}

impl OwnedOrigin {
    pub fn as_origin(&self) -> Origin<'_> {
        Origin {
            source: &self.source,
            file: &self.position,
            offset: 0,
            line: Line::Resolved(self.id),
            raw: &self.raw,
            with: self.with,
        }
    }
}

/// Why a record was rejected. Reasons name fields, types and operations, never data values:
/// the raw record is kept beside the reason, in the rejected output only.
#[derive(Clone, PartialEq, Eq)]
pub struct Reject(pub String);

impl Reject {
    pub fn new(reason: impl Into<String>) -> Reject {
        Reject(reason.into())
    }
}

impl fmt::Debug for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The result of anything that can fail on a record's data.
pub type Res<T> = Result<T, Reject>;

/// A row of the `rejected` stream.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rejected {
    pub source: String,
    pub position: String,
    pub raw: String,
    pub reason: String,
}

impl Rejected {
    pub fn new(origin: &Origin<'_>, reason: &Reject) -> Rejected {
        Rejected {
            source: origin.source.to_string(),
            position: origin.position(),
            raw: String::from_utf8_lossy(origin.raw).into_owned(),
            reason: reason.0.clone(),
        }
    }
}

/// A record of an in-memory input that does not fit its source's schema (a row of a record
/// batch handed to `run_batch_arrow` with a null where the schema requires a value): the run
/// rejects it in its place, with `raw` (the row as JSON) and the reason.
#[derive(Clone, Debug)]
pub struct Unfit {
    pub raw: Vec<u8>,
    pub why: Reject,
}

/// A value a narrowing proved non-null. The checker guarantees `Some`; if that guarantee were
/// ever broken the record is rejected rather than the run panicking.
#[inline]
pub fn narrowed<T>(v: Option<T>) -> Res<T> {
    v.ok_or_else(|| Reject::new("internal: a value the checker proved non-null was null"))
}

/// Defines a Thrift enum as a Rust type with a constant per value: read from JSON or CSV as
/// its name or its number, written as its name.
#[macro_export]
macro_rules! pipe_enum {
    ($name:ident, $thrift:literal, [$(($c:ident, $v:literal, $n:literal)),* $(,)?]) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);
        #[allow(non_upper_case_globals)]
        impl $name {
            $(pub const $c: $name = $name($n);)*
            pub const NAMES: &'static [(&'static str, i64)] = &[$(($v, $n)),*];
            pub fn name(&self) -> ::std::borrow::Cow<'static, str> {
                $crate::record::enum_name(Self::NAMES, self.0)
            }
        }
        // Text formats and Arrow read and write the name; checkpoints (binary) the number.
        impl $crate::prelude::serde::Serialize for $name {
            fn serialize<S: $crate::prelude::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                if s.is_human_readable() || $crate::record::arrow_rows() {
                    s.serialize_str(&self.name())
                } else {
                    s.serialize_i64(self.0)
                }
            }
        }
        impl $crate::json::Fast for $name {
            fn read(s: &mut $crate::json::Scan<'_>) -> Option<Self> {
                $crate::json::enum_number(s, Self::NAMES).map($name)
            }
        }
        impl<'de> $crate::prelude::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::prelude::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                if d.is_human_readable() || $crate::record::arrow_rows() {
                    $crate::record::enum_value(d, $thrift, Self::NAMES).map($name)
                } else {
                    <i64 as $crate::prelude::serde::Deserialize>::deserialize(d).map($name)
                }
            }
        }
    };
}

thread_local! {
    static ARROW_ROWS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether rows are being converted to or from Arrow (inside [`with_arrow_rows`]). serde_arrow's
/// serializers call themselves human-readable, so the forms Pipe picks per format ask this:
/// in Arrow, enums are names (as in text; checkpoints use numbers), timestamps milliseconds and
/// dates days (as in checkpoints; text uses ISO-8601).
pub fn arrow_rows() -> bool {
    ARROW_ROWS.with(std::cell::Cell::get)
}

/// Runs `f` with rows converted in their Arrow forms.
pub fn with_arrow_rows<T>(f: impl FnOnce() -> T) -> T {
    with_row_forms(true, f)
}

/// Runs `f` with rows in their text forms (undoing [`with_arrow_rows`] inside it: a nested value
/// written as JSON text keeps ISO timestamps).
pub fn with_text_rows<T>(f: impl FnOnce() -> T) -> T {
    with_row_forms(false, f)
}

fn with_row_forms<T>(arrow: bool, f: impl FnOnce() -> T) -> T {
    /// Puts the flag back however `f` ends (a panic caught further up included).
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ARROW_ROWS.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(ARROW_ROWS.with(|c| c.replace(arrow)));
    f()
}

pub fn enum_name(names: &[(&'static str, i64)], n: i64) -> std::borrow::Cow<'static, str> {
    match names.iter().find(|(_, v)| *v == n) {
        Some((name, _)) => std::borrow::Cow::Borrowed(name),
        None => std::borrow::Cow::Owned(n.to_string()),
    }
}

/// Reads an enum value written as its name or its number.
pub fn enum_value<'de, D: serde::Deserializer<'de>>(
    d: D,
    thrift: &'static str,
    names: &'static [(&'static str, i64)],
) -> Result<i64, D::Error> {
    struct V(&'static str, &'static [(&'static str, i64)]);
    impl serde::de::Visitor<'_> for V {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a value of enum {}", self.0)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<i64, E> {
            if let Some((_, n)) = self.1.iter().find(|(name, _)| *name == s) {
                return Ok(*n);
            }
            match s.parse::<i64>() {
                Ok(n) => self.visit_i64(n),
                Err(_) => Err(E::custom(format_args!("not a value of enum {}", self.0))),
            }
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<i64, E> {
            if self.1.iter().any(|(_, v)| *v == n) {
                Ok(n)
            } else {
                Err(E::custom(format_args!("not a value of enum {}", self.0)))
            }
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<i64, E> {
            match i64::try_from(n) {
                Ok(n) => self.visit_i64(n),
                Err(_) => Err(E::custom(format_args!("not a value of enum {}", self.0))),
            }
        }
    }
    d.deserialize_any(V(thrift, names))
}

/// Why a JSON record did not parse, without quoting its data: the field path and what was
/// wrong (`field tradelines[0].balance: invalid type: string, expected f64`).
pub fn json_reason<T: serde::de::DeserializeOwned>(raw: &[u8], err: &serde_json::Error) -> Reject {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax => Reject(format!("malformed JSON at column {}", err.column())),
        Category::Eof => Reject("truncated JSON (the record ends early)".into()),
        Category::Io => Reject("unreadable JSON".into()),
        Category::Data => {
            let mut de = serde_json::Deserializer::from_slice(raw);
            let path = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Err(e) => e.path().to_string(),
                Ok(_) => String::new(),
            };
            let msg = without_values(&strip_position(&err.to_string()));
            if path.is_empty() || path == "." {
                Reject(msg)
            } else {
                Reject(format!("field `{path}`: {msg}"))
            }
        }
    }
}

/// A CSV row with more columns than its header: a shifted row (a delimiter inside an
/// unquoted value, a column added upstream), rejected whole rather than read column by column.
pub fn csv_too_wide(rec: &csv::ByteRecord, header: &csv::ByteRecord) -> Option<Reject> {
    (rec.len() > header.len() && !header.is_empty())
        .then(|| Reject(format!("the row has {} columns, its header {}", rec.len(), header.len())))
}

/// Why a CSV record did not parse, naming the column, not the value.
pub fn csv_reason(err: &csv::Error, header: &csv::ByteRecord) -> Reject {
    match err.kind() {
        csv::ErrorKind::Deserialize { err, .. } => {
            let column =
                err.field().and_then(|i| header.get(i as usize)).map(|c| String::from_utf8_lossy(c).into_owned());
            let what = match err.kind() {
                csv::DeserializeErrorKind::ParseInt(_) => "not an integer".to_string(),
                csv::DeserializeErrorKind::ParseFloat(_) => "not a number".to_string(),
                csv::DeserializeErrorKind::ParseBool(_) => "not true or false".to_string(),
                csv::DeserializeErrorKind::InvalidUtf8(_) => "not valid UTF-8".to_string(),
                csv::DeserializeErrorKind::UnexpectedEndOfRow => "the row has too few columns".to_string(),
                csv::DeserializeErrorKind::Message(m) => without_values(m),
                csv::DeserializeErrorKind::Unsupported(m) => format!("unsupported: {m}"),
            };
            match column {
                Some(c) => Reject(format!("column `{c}`: {what}")),
                None => Reject(what),
            }
        }
        csv::ErrorKind::UnequalLengths { .. } => {
            Reject("the row has a different number of columns than the header".into())
        }
        csv::ErrorKind::Utf8 { .. } => Reject("not valid UTF-8".into()),
        _ => Reject("unreadable CSV record".into()),
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// serde's messages quote the offending value (`invalid type: string "yesterday"`); rejection
/// reasons must not carry data, so quoted and backticked values are cut from the part before
/// `, expected`.
pub fn without_values(msg: &str) -> String {
    let (head, tail) = match msg.find(", expected") {
        Some(i) => (&msg[..i], &msg[i..]),
        None => (msg, ""),
    };
    if !(head.starts_with("invalid type") || head.starts_with("invalid value") || head.starts_with("invalid length")) {
        return msg.to_string();
    }
    let mut out = String::new();
    let mut quote: Option<char> = None;
    for c in head.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '`' => quote = Some(c),
            None => out.push(c),
        }
    }
    format!("{}{tail}", out.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code, reason = "only parsed")]
    struct T {
        a: i64,
        b: Vec<U>,
    }
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code, reason = "only parsed")]
    struct U {
        x: f64,
    }

    fn reason(raw: &str) -> String {
        let e = serde_json::from_slice::<T>(raw.as_bytes()).expect_err("bad");
        json_reason::<T>(raw.as_bytes(), &e).0
    }

    #[allow(dead_code, reason = "only read")]
    mod sign {
        crate::pipe_enum!(Sign, "Sign", [(MINUS, "MINUS", -1i64), (PLUS, "PLUS", 1i64)]);
    }
    use sign::Sign;

    /// A number beyond `i64` is no value of an enum, even one that declares -1.
    #[test]
    fn enum_values_are_names_or_declared_numbers() {
        let read = |t: &str| serde_json::from_str::<Sign>(t).map(|s| s.0).map_err(|e| e.to_string());
        assert_eq!(read("\"PLUS\""), Ok(1));
        assert_eq!(read("-1"), Ok(-1));
        assert_eq!(read("\"-1\""), Ok(-1));
        for bad in ["2", "9223372036854775808", "18446744073709551615", "\"ZERO\""] {
            assert!(read(bad).is_err_and(|e| e.contains("not a value of enum Sign")), "{bad}: {:?}", read(bad));
        }
    }

    #[test]
    fn reasons_name_fields_not_values() {
        assert_eq!(reason(r#"{"a": "secret-value", "b": []}"#), "field `a`: invalid type: string, expected i64");
        assert_eq!(reason(r#"{"a": 1, "b": [{"x": "lots"}]}"#), "field `b[0].x`: invalid type: string, expected f64");
        assert_eq!(reason(r#"{"b": []}"#), "missing field `a`");
        assert_eq!(reason(r#"{"a": 1, "b": [{"x""#), "truncated JSON (the record ends early)");
        assert!(reason(r#"{"a": 1,, }"#).starts_with("malformed JSON at column"));
    }
}
