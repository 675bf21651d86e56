//! How values are read from and written to text formats where Pipe's types need more than
//! serde's defaults: timestamps in the unit a schema declares, dates and timestamps written as
//! ISO-8601 text. Generated row structs name these in `#[serde(with = …)]` attributes.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serializer};

use crate::f;

fn scaled<'de, D: Deserializer<'de>>(d: D, num: i64, den: i64) -> Result<i64, D::Error> {
    let n = i64::deserialize(d)?;
    // Rounded down, as Parquet timestamps are read: the same instant before 1970 in either.
    n.checked_mul(num).map(|v| v.div_euclid(den)).ok_or_else(|| D::Error::custom("timestamp out of range"))
}

fn iso<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let s = std::borrow::Cow::<str>::deserialize(d)?;
    f::parse_iso(s.trim()).ok_or_else(|| D::Error::custom("not an ISO-8601 date or date-time"))
}

macro_rules! timestamp_units {
    ($($module:ident => |$d:ident| $body:expr;)*) => {$(
        /// Reads a timestamp stored in this unit, as milliseconds since the epoch.
        pub mod $module {
            use super::*;
            pub fn deserialize<'de, D: Deserializer<'de>>($d: D) -> Result<i64, D::Error> {
                // Binary formats (Arrow, checkpoints) hold milliseconds whatever the schema's
                // text unit: Arrow readers convert other units first.
                if !$d.is_human_readable() || crate::record::arrow_rows() {
                    return i64::deserialize($d);
                }
                $body
            }
            /// The same for a nullable field.
            pub mod opt {
                use super::*;
                pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
                    #[derive(Deserialize)]
                    struct W(#[serde(deserialize_with = "super::deserialize")] i64);
                    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
                }
            }
        }
    )*};
}

timestamp_units! {
    ts_millis => |d| i64::deserialize(d);
    ts_seconds => |d| scaled(d, 1000, 1);
    ts_micros => |d| scaled(d, 1, 1000);
    ts_nanos => |d| scaled(d, 1, 1_000_000);
    ts_iso => |d| iso(d);
}

/// A field of a source's schema that the pipeline does not read: its value is checked against
/// the declared type (the schema is the partner's contract) and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Checked;

/// A string checked and dropped without being copied.
#[derive(Debug)]
pub struct AnyStr;

impl<'de> Deserialize<'de> for AnyStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AnyStr, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AnyStr;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<AnyStr, E> {
                Ok(AnyStr)
            }
        }
        d.deserialize_str(V)
    }
}

/// A list (or set) checked element by element and dropped: nothing of it is kept, so checking a
/// list of strings allocates nothing. The messages are those of a `Vec` ("a sequence").
#[derive(Debug)]
pub struct AnyList<T>(std::marker::PhantomData<T>);

impl<T> Default for AnyList<T> {
    fn default() -> AnyList<T> {
        AnyList(std::marker::PhantomData)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for AnyList<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AnyList<T>, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = AnyList<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<S: serde::de::SeqAccess<'de>>(self, mut s: S) -> Result<AnyList<T>, S::Error> {
                while s.next_element::<T>()?.is_some() {}
                Ok(AnyList(std::marker::PhantomData))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A map checked entry by entry and dropped, as [`AnyList`]; the messages are those of a
/// `BTreeMap` ("a map").
#[derive(Debug)]
pub struct AnyMap<K, V>(std::marker::PhantomData<(K, V)>);

impl<K, V> Default for AnyMap<K, V> {
    fn default() -> AnyMap<K, V> {
        AnyMap(std::marker::PhantomData)
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for AnyMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AnyMap<K, V>, D::Error> {
        struct Vis<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> serde::de::Visitor<'de> for Vis<K, V> {
            type Value = AnyMap<K, V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut m: M) -> Result<AnyMap<K, V>, M::Error> {
                while m.next_entry::<K, V>()?.is_some() {}
                Ok(AnyMap(std::marker::PhantomData))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

/// Reads a nested value (a list, set, map or struct) from CSV, where it is JSON text.
pub mod json_text {
    use super::*;
    pub fn deserialize<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(d: D) -> Result<T, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        serde_json::from_str(&text)
            .map_err(|e| D::Error::custom(format_args!("not the JSON of the value ({})", e.classify_name())))
    }
    /// The same for a nullable value: an empty cell is null.
    pub mod opt {
        use super::*;
        pub fn deserialize<'de, D: Deserializer<'de>, T: serde::de::DeserializeOwned>(
            d: D,
        ) -> Result<Option<T>, D::Error> {
            let text = Option::<std::borrow::Cow<'_, str>>::deserialize(d)?;
            match text.as_deref().map(str::trim) {
                None | Some("") => Ok(None),
                Some(t) => serde_json::from_str(t)
                    .map(Some)
                    .map_err(|e| D::Error::custom(format_args!("not the JSON of the value ({})", e.classify_name()))),
            }
        }
    }

    trait ClassifyName {
        fn classify_name(&self) -> &'static str;
    }
    impl ClassifyName for serde_json::Error {
        fn classify_name(&self) -> &'static str {
            match self.classify() {
                serde_json::error::Category::Data => "wrong types",
                serde_json::error::Category::Eof => "truncated",
                _ => "malformed",
            }
        }
    }
}

/// Writes a double that may not be finite: JSON has no NaN or infinity, so those are written
/// as the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (as JavaScript and Python spell
/// them) instead of a `null` that would read back as a missing value.
pub fn ser_f64<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
    if x.is_finite() || !s.is_human_readable() || crate::record::arrow_rows() {
        s.serialize_f64(*x)
    } else if x.is_nan() {
        s.serialize_str("NaN")
    } else if *x > 0.0 {
        s.serialize_str("Infinity")
    } else {
        s.serialize_str("-Infinity")
    }
}
pub fn ser_opt_f64<S: Serializer>(x: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match x {
        Some(x) => ser_f64(x, s),
        None => s.serialize_none(),
    }
}

/// Writes a timestamp as RFC 3339 text (binary formats: milliseconds since the epoch).
pub fn ser_ts<S: Serializer>(t: &i64, s: S) -> Result<S::Ok, S::Error> {
    if !s.is_human_readable() || crate::record::arrow_rows() {
        return s.serialize_i64(*t);
    }
    s.serialize_str(&f::ts_text(*t))
}
pub fn ser_opt_ts<S: Serializer>(t: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ser_ts(t, s),
        None => s.serialize_none(),
    }
}
/// Writes a date as `YYYY-MM-DD` (binary formats: days since the epoch).
pub fn ser_date<S: Serializer>(d: &i32, s: S) -> Result<S::Ok, S::Error> {
    if !s.is_human_readable() || crate::record::arrow_rows() {
        return s.serialize_i32(*d);
    }
    s.serialize_str(&f::date_text(*d))
}
pub fn ser_opt_date<S: Serializer>(d: &Option<i32>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser_date(d, s),
        None => s.serialize_none(),
    }
}

/// Reads a date written `YYYY-MM-DD` (or as days since the epoch).
pub fn de_date<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    if !d.is_human_readable() || crate::record::arrow_rows() {
        return i32::deserialize(d);
    }
    let s = std::borrow::Cow::<str>::deserialize(d)?;
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    f::parse_iso(s.trim()).map(f::date).ok_or_else(|| D::Error::custom("not an ISO-8601 date"))
}

/// A text form of any value for a CSV cell or a Hive partition folder: scalars as they are,
/// everything else as JSON.
pub trait Cell {
    fn cell(&self, out: &mut String);
}

macro_rules! display_cell {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn cell(&self, out: &mut String) {
                use std::fmt::Write;
                let _ = write!(out, "{self}");
            }
        }
    )*};
}
display_cell!(i64, i32, bool, str, String, std::borrow::Cow<'_, str>);

impl Cell for f64 {
    fn cell(&self, out: &mut String) {
        out.push_str(&f::double_text(*self));
    }
}

impl<T: Cell + ?Sized> Cell for &T {
    fn cell(&self, out: &mut String) {
        (**self).cell(out);
    }
}

impl<T: Cell> Cell for Option<T> {
    fn cell(&self, out: &mut String) {
        if let Some(v) = self {
            v.cell(out);
        }
    }
}

/// Timestamps and dates are `i64`/`i32` in rows; these give them their text form.
#[derive(Debug)]
pub struct TsCell<'a>(pub &'a i64);
impl Cell for TsCell<'_> {
    fn cell(&self, out: &mut String) {
        out.push_str(&f::ts_text(*self.0));
    }
}
#[derive(Debug)]
pub struct DateCell<'a>(pub &'a i32);
impl Cell for DateCell<'_> {
    fn cell(&self, out: &mut String) {
        out.push_str(&f::date_text(*self.0));
    }
}
/// Nested values (lists, maps, structs) as JSON text.
#[derive(Debug)]
pub struct JsonCell<'a, T>(pub &'a T);
impl<T: serde::Serialize> Cell for JsonCell<'_, T> {
    fn cell(&self, out: &mut String) {
        if let Ok(s) = serde_json::to_string(self.0) {
            out.push_str(&s);
        }
    }
}

/// A `f64` that can be hashed and compared for equality by its bits, for group keys and
/// `count_distinct` (all NaNs are one value, as are `0.0` and `-0.0`).
#[derive(Clone, Copy, Debug, PartialOrd, serde::Serialize, serde::Deserialize)]
pub struct HashF64(pub f64);
impl PartialEq for HashF64 {
    fn eq(&self, other: &Self) -> bool {
        (self.0.is_nan() && other.0.is_nan()) || self.0 == other.0
    }
}
impl Eq for HashF64 {}
impl std::hash::Hash for HashF64 {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let v = if self.0.is_nan() {
            f64::NAN.to_bits()
        } else if self.0 == 0.0 {
            0
        } else {
            self.0.to_bits()
        };
        v.hash(h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct R {
        #[serde(deserialize_with = "ts_seconds::deserialize")]
        a: i64,
        #[serde(default, deserialize_with = "ts_iso::opt::deserialize")]
        b: Option<i64>,
    }

    #[test]
    fn timestamps_in_declared_units() {
        let r: R = serde_json::from_str(r#"{"a": 2, "b": "1970-01-01T00:00:01Z"}"#).expect("valid");
        assert_eq!((r.a, r.b), (2000, Some(1000)));
        let r: R = serde_json::from_str(r#"{"a": 2}"#).expect("b missing");
        assert_eq!(r.b, None);
        assert!(serde_json::from_str::<R>(r#"{"a": "x"}"#).is_err());
        let mut s = String::new();
        Some(2.5).cell(&mut s);
        TsCell(&0).cell(&mut s);
        assert_eq!(s, "2.51970-01-01T00:00:00.000Z");
    }

    #[test]
    fn nan_keys_are_one_value_and_non_finite_doubles_stay_visible() {
        use std::collections::HashSet;
        let keys: HashSet<HashF64> = [f64::NAN, f64::NAN, 0.0, -0.0, 1.5].into_iter().map(HashF64).collect();
        assert_eq!(keys.len(), 3);
        #[derive(serde::Serialize)]
        struct Out {
            #[serde(serialize_with = "ser_f64")]
            a: f64,
            #[serde(serialize_with = "ser_opt_f64")]
            b: Option<f64>,
        }
        let text = serde_json::to_string(&Out { a: f64::NAN, b: Some(f64::NEG_INFINITY) }).expect("json");
        assert_eq!(text, r#"{"a":"NaN","b":"-Infinity"}"#);
    }

    #[test]
    fn csv_cells_hold_nested_values_as_json() {
        #[derive(Deserialize)]
        struct Row {
            #[serde(deserialize_with = "json_text::deserialize")]
            tags: Vec<String>,
            #[serde(default, deserialize_with = "json_text::opt::deserialize")]
            more: Option<Vec<i64>>,
        }
        let mut r = csv::Reader::from_reader("tags,more\n\"[\"\"p\"\",\"\"q\"\"]\",\n".as_bytes());
        let row: Row = r.deserialize().next().expect("a row").expect("parses");
        assert_eq!(row.tags, vec!["p", "q"]);
        assert_eq!(row.more, None);
    }
}
