//! The fast path for JSON records: a reader for the common shape of a record, generated per row
//! struct ([`Fast`]), tried before serde.
//!
//! serde_json reads a record through serde's visitors: every key is unescaped and checked as
//! UTF-8 before it is compared with the field names, and every value passes through a visitor.
//! The compiler knows the row's fields, so generated code matches keys as bytes and reads each
//! value straight into its field. The fast path only ever *accepts* a record in the plainest
//! form, and gives up (`None`) on anything else — an escape in a string, a number with more
//! than 19 digits or a scale beyond 10^±22, a duplicate key, a missing field, anything malformed.
//! The caller then reads the record with serde_json as before, which gives the value or the
//! reason for the rejection. So the rule that keeps the two in agreement is one-sided: whenever
//! the fast path returns a row, serde_json would have returned the same row; this module's
//! tests check it against serde_json on every case and on generated numbers.

use std::collections::BTreeMap;

use crate::value::{AnyList, AnyMap, AnyStr};

/// serde_json refuses typed values nested deeper than 127 (ignored ones it follows to any
/// depth); the fast path gives up before either.
const MAX_DEPTH: u32 = 100;

/// A position in one record's text.
///
/// The record is checked as UTF-8 once, whole ([`parse`]): every string in it then starts and
/// ends at a quote, an ASCII byte, so its text is a slice of the record's, with no check of its
/// own. Checking each string on its own took 4% of an ingest's instructions, in a call per
/// string; the whole record is checked at several bytes an instruction.
#[derive(Debug)]
pub struct Scan<'a> {
    t: &'a str,
    b: &'a [u8],
    i: usize,
    depth: u32,
}

/// A value the fast path can read. `None` means "not in the fast path's form": the record is
/// then read by serde_json.
pub trait Fast: Sized {
    fn read(s: &mut Scan<'_>) -> Option<Self>;
}

/// Reads a whole record (one JSON value and nothing after it but white space). With
/// `PIPE_JSON_FAST=off` in the environment it reads nothing, and serde reads every record.
pub fn parse<T: Fast>(raw: &[u8]) -> Option<T> {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*ON.get_or_init(|| std::env::var_os("PIPE_JSON_FAST").is_none_or(|v| v != "off")) {
        return None;
    }
    let mut s = Scan::new(std::str::from_utf8(raw).ok()?);
    let v = T::read(&mut s)?;
    s.ws();
    (s.i == s.b.len()).then_some(v)
}

/// The bytes of `w` (eight string bytes, the first in the lowest) that end a plain string's
/// scan: a quote, a backslash or a control character. Each such byte has its high bit set in
/// the result; bytes above the lowest such one may be marked too (borrows run upward), so only
/// the lowest mark is exact.
#[inline]
fn string_stops(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))) | (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
}

/// JSON's powers of ten that a double holds exactly.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// A number as written: its digits as an integer, the power of ten they are scaled by, and
/// whether it was written as an integer (no fraction, no exponent).
struct Number {
    negative: bool,
    digits: u64,
    exponent: i32,
    integer: bool,
}

impl<'a> Scan<'a> {
    /// A scan of `text` from its start.
    pub fn new(text: &'a str) -> Scan<'a> {
        Scan { t: text, b: text.as_bytes(), i: 0, depth: 0 }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after white space, not consumed.
    pub fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// `null`, consumed, if it is next.
    pub fn null(&mut self) -> bool {
        self.peek() == Some(b'n') && self.literal(b"null").is_some()
    }

    /// A string without escapes or control characters.
    pub fn str(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        loop {
            // Eight bytes at a time up to the first quote, backslash or control character.
            if let Some(w) = self.b.get(self.i..).and_then(<[u8]>::first_chunk::<8>) {
                let m = string_stops(u64::from_le_bytes(*w));
                if m == 0 {
                    self.i += 8;
                    continue;
                }
                self.i += (m.trailing_zeros() / 8) as usize;
            }
            let c = *self.b.get(self.i)?;
            if c == b'"' {
                break;
            }
            if c == b'\\' || c < 0x20 {
                return None;
            }
            self.i += 1;
        }
        let s = self.t.get(start..self.i)?;
        self.i += 1;
        Some(s)
    }

    /// Starts an object (`{`).
    pub fn open(&mut self) -> Option<()> {
        self.eat(b'{')?;
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// The next key of an object as its bytes (`first` is true before the first key), or
    /// `Some(None)` at its end.
    pub fn key(&mut self, first: &mut bool) -> Option<Option<&'a [u8]>> {
        if self.peek()? == b'}' {
            self.i += 1;
            self.depth -= 1;
            return Some(None);
        }
        if !*first {
            self.eat(b',')?;
        }
        *first = false;
        let k = self.str()?;
        self.eat(b':')?;
        Some(Some(k.as_bytes()))
    }

    /// As [`Scan::key`], trying `expected` first (the key after the last one read, in the
    /// schema's order, which is the order most writers use): when the next key is exactly
    /// `"expected"` it is taken with one comparison instead of being scanned byte by byte.
    pub fn key_expecting(&mut self, first: &mut bool, expected: Option<&'static [u8]>) -> Option<Option<&'a [u8]>> {
        if let Some(want) = expected {
            let at = self.i;
            self.ws();
            let comma = !*first && self.b.get(self.i) == Some(&b',');
            if comma {
                self.i += 1;
                self.ws();
            }
            let end = self.i + 1 + want.len();
            if (*first || comma)
                && self.b.get(self.i) == Some(&b'"')
                && self.b.get(self.i + 1..end) == Some(want)
                && self.b.get(end) == Some(&b'"')
            {
                self.i = end + 1;
                self.eat(b':')?;
                *first = false;
                return Some(Some(want));
            }
            self.i = at;
        }
        self.key(first)
    }

    /// Reads a list, `f` reading each element.
    fn list(&mut self, mut f: impl FnMut(&mut Scan<'a>) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                f(self)?;
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    fn digits(&mut self) -> (u64, usize) {
        let (mut v, start) = (0u64, self.i);
        while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
            v = v.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            self.i += 1;
        }
        (v, self.i - start)
    }

    /// A number in JSON's grammar with at most 19 digits (serde_json reads them into a `u64`
    /// as they are) and a scale of at most 10^22 either way (a power of ten a double holds
    /// exactly).
    fn number(&mut self) -> Option<Number> {
        self.ws();
        let negative = self.b.get(self.i) == Some(&b'-');
        if negative {
            self.i += 1;
        }
        let int_start = self.i;
        let (mut digits, n) = self.digits();
        // No leading zeros: `0` alone, or a first digit from 1 to 9.
        if n == 0 || (n > 1 && self.b.get(int_start) == Some(&b'0')) {
            return None;
        }
        let mut count = n;
        let mut exponent = 0i32;
        let mut integer = true;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            integer = false;
            let start = self.i;
            while let Some(&c @ b'0'..=b'9') = self.b.get(self.i) {
                digits = digits.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
                self.i += 1;
            }
            let f = self.i - start;
            if f == 0 {
                return None;
            }
            count += f;
            exponent -= i32::try_from(f).ok()?;
        }
        if let Some(b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
            integer = false;
            let minus = match self.b.get(self.i) {
                Some(b'-') => {
                    self.i += 1;
                    true
                }
                Some(b'+') => {
                    self.i += 1;
                    false
                }
                _ => false,
            };
            let (e, n) = self.digits();
            if n == 0 || n > 4 {
                return None;
            }
            let e = i32::try_from(e).ok()?;
            exponent += if minus { -e } else { e };
        }
        if count > 19 || exponent.abs() > 22 {
            return None;
        }
        // `-0` is a double to serde_json, whatever the field's type; leave it to serde.
        if negative && digits == 0 {
            return None;
        }
        Some(Number { negative, digits, exponent, integer })
    }

    /// Skips one value of any kind, checking its form.
    pub fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.str().map(|_| ()),
            b'{' => {
                self.open()?;
                let mut first = true;
                while self.key(&mut first)?.is_some() {
                    self.skip()?;
                }
                Some(())
            }
            b'[' => self.list(Scan::skip),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number().map(|_| ()),
        }
    }
}

impl Fast for i64 {
    fn read(s: &mut Scan<'_>) -> Option<i64> {
        let n = s.number()?;
        if !n.integer {
            return None;
        }
        let v = i64::try_from(n.digits).ok()?;
        Some(if n.negative { -v } else { v })
    }
}

impl Fast for f64 {
    fn read(s: &mut Scan<'_>) -> Option<f64> {
        let n = s.number()?;
        // As serde_json computes it (without its `float_roundtrip` feature): the digits as a
        // double, scaled by one power of ten (exact up to 10^22).
        let mut f = n.digits as f64;
        let scale = POW10[n.exponent.unsigned_abs() as usize];
        if n.exponent < 0 {
            f /= scale;
        } else {
            f *= scale;
        }
        Some(if n.negative { -f } else { f })
    }
}

impl Fast for bool {
    fn read(s: &mut Scan<'_>) -> Option<bool> {
        match s.peek()? {
            b't' => s.literal(b"true").map(|()| true),
            b'f' => s.literal(b"false").map(|()| false),
            _ => None,
        }
    }
}

impl Fast for String {
    fn read(s: &mut Scan<'_>) -> Option<String> {
        s.str().map(str::to_owned)
    }
}

impl<T: Fast> Fast for Option<T> {
    fn read(s: &mut Scan<'_>) -> Option<Option<T>> {
        if s.null() {
            return Some(None);
        }
        T::read(s).map(Some)
    }
}

impl<T: Fast> Fast for Vec<T> {
    fn read(s: &mut Scan<'_>) -> Option<Vec<T>> {
        let mut out = Vec::new();
        s.list(|s| {
            out.push(T::read(s)?);
            Some(())
        })?;
        Some(out)
    }
}

impl<V: Fast> Fast for BTreeMap<String, V> {
    fn read(s: &mut Scan<'_>) -> Option<BTreeMap<String, V>> {
        s.open()?;
        let mut out = BTreeMap::new();
        let mut first = true;
        while let Some(k) = s.key(&mut first)? {
            let k = String::from_utf8(k.to_vec()).ok()?;
            // A repeated key keeps its last value, as serde's map does.
            out.insert(k, V::read(s)?);
        }
        Some(out)
    }
}

impl Fast for AnyStr {
    fn read(s: &mut Scan<'_>) -> Option<AnyStr> {
        s.str().map(|_| AnyStr)
    }
}

impl<T: Fast> Fast for AnyList<T> {
    fn read(s: &mut Scan<'_>) -> Option<AnyList<T>> {
        s.list(|s| T::read(s).map(|_| ()))?;
        Some(AnyList::default())
    }
}

impl<V: Fast> Fast for AnyMap<AnyStr, V> {
    fn read(s: &mut Scan<'_>) -> Option<AnyMap<AnyStr, V>> {
        s.open()?;
        let mut first = true;
        while s.key(&mut first)?.is_some() {
            V::read(s)?;
        }
        Some(AnyMap::default())
    }
}

/// An enum value written as one of its names or its number (`names` as `pipe_enum!` lists
/// them); a number that names no value is left to serde, which rejects it.
pub fn enum_number(s: &mut Scan<'_>, names: &[(&str, i64)]) -> Option<i64> {
    if s.peek()? == b'"' {
        let text = s.str()?;
        return names.iter().find(|(n, _)| *n == text).map(|(_, v)| *v);
    }
    let v = i64::read(s)?;
    names.iter().any(|(_, n)| *n == v).then_some(v)
}

/// Records a field seen in an object: `None` if it was seen before (serde rejects a repeated
/// field).
pub fn set_once<T>(slot: &mut Option<T>, value: Option<T>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value?);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same<T: Fast + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(text: &str) -> bool {
        let fast = parse::<T>(text.as_bytes());
        let slow = serde_json::from_str::<T>(text).ok();
        if let Some(f) = &fast {
            assert_eq!(Some(f), slow.as_ref(), "the fast path read {text:?} differently");
        }
        fast.is_some()
    }

    /// As [`same`], comparing the doubles' bits (`-0.0 == 0.0` would hide a sign).
    fn same_f64(text: &str) -> bool {
        let fast = parse::<f64>(text.as_bytes());
        if let Some(f) = fast {
            let slow = serde_json::from_str::<f64>(text).ok().map(f64::to_bits);
            assert_eq!(Some(f.to_bits()), slow, "the fast path read {text:?} as {f}");
        }
        fast.is_some()
    }

    #[test]
    fn numbers_the_fast_path_reads_are_exactly_serde_jsons() {
        for t in [
            "0",
            "1",
            "-1",
            "1772.62",
            "2500.0",
            "0.1",
            "0.30000000000000004",
            "123456789012345",
            "1e22",
            "1E-22",
            "-3.5e+2",
            "9007199254740993",
            "0.000001234",
            "1e-7",
            "5e-324",
            "1.7976931348623157e308",
        ] {
            same_f64(t);
        }
        for (t, fast) in [("42", true), ("-42", true), ("1.0", false), ("1e3", false), ("-0", false)] {
            assert_eq!(same::<i64>(t), fast, "{t}");
        }
        // Every form JSON forbids is left to serde (which rejects it).
        for t in ["01", "-", "1.", ".5", "+1", "1e", "1e+", "--1", "0x10", "NaN", "Infinity", "1.5.2"] {
            assert!(parse::<f64>(t.as_bytes()).is_none(), "{t}");
            assert!(serde_json::from_str::<f64>(t).is_err(), "{t}");
        }
        // Generated numbers: digits, a fraction and an exponent of every size.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut read = 0;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let int = x % 10u64.pow((x >> 8) as u32 % 12);
            let frac = (x >> 20) % 10u64.pow((x >> 40) as u32 % 9);
            let width = (x >> 50) as usize % 9;
            let mut t = if (x >> 61) & 1 == 1 { format!("-{int}") } else { int.to_string() };
            if width > 0 {
                t = format!("{t}.{frac:0width$}");
            }
            if (x >> 62) & 1 == 1 {
                t = format!("{t}e{}", (x >> 33) as i64 % 30 - 15);
            }
            read += usize::from(same_f64(&t));
        }
        assert!(read > 150_000, "only {read} read by the fast path");
    }

    #[test]
    fn strings_with_escapes_control_characters_or_bad_utf8_are_left_to_serde() {
        assert!(same::<String>(r#""plain text""#));
        assert!(same::<String>("\"caf\u{e9} \u{1F600}\""));
        assert!(!same::<String>(r#""a\"b""#));
        assert!(!same::<String>(r#""\u00e9""#));
        assert!(parse::<String>(b"\"tab\there\"").is_none());
        assert!(parse::<String>(b"\"\xff\"").is_none());
        assert!(parse::<String>(b"\"unterminated").is_none());
    }

    #[test]
    fn lists_maps_and_nulls_read_as_serde_reads_them_and_malformed_ones_are_left_to_it() {
        assert!(same::<Vec<i64>>("[1, 2 ,3]"));
        assert!(same::<Vec<i64>>(" [ ] "));
        assert!(same::<Vec<Option<f64>>>("[null, 1.5]"));
        assert!(same::<BTreeMap<String, String>>(r#"{"b": "x", "a": "y", "b": "z"}"#));
        assert!(same::<Option<Vec<String>>>("null"));
        for t in ["[1,]", "[1 2]", "[,1]", "[1", "{\"a\":1,}", "{\"a\" 1}", "{,}", "[1] x", "nul", "nullx"] {
            assert!(parse::<Option<Vec<i64>>>(t.as_bytes()).is_none(), "{t}");
            assert!(parse::<Option<BTreeMap<String, i64>>>(t.as_bytes()).is_none(), "{t}");
        }
    }

    /// A string ending, or holding an escape or a control character, at every offset of the
    /// eight-byte scan reads as serde reads it (or is left to serde), multibyte text included.
    #[test]
    fn strings_read_alike_wherever_the_scan_meets_their_end_or_an_escape() {
        for len in 0..20 {
            for tail in ["", "\n", "\"", "\u{1}", "\t", "\\", "é", "日", "\u{7f}"] {
                for pad in 0..9 {
                    let body = format!("{}{tail}{}", "x".repeat(len), "y".repeat(pad));
                    let plain = !body.chars().any(|c| c == '"' || c == '\\' || c < ' ');
                    // Written by serde (escaped), and written raw (a raw control character or
                    // quote is not JSON): the fast path takes exactly the plain ones.
                    let text = serde_json::to_string(&body).expect("json");
                    assert_eq!(same::<String>(&text), plain, "{text}");
                    assert_eq!(same::<Vec<String>>(&format!("[{text}, {text}]")), plain, "{text}");
                    let raw = format!("\"{body}\"");
                    assert_eq!(same::<String>(&raw), plain, "{raw:?}");
                }
            }
        }
    }

    /// An expected key is taken whole; any other key, the end of the object or bad syntax
    /// takes the ordinary path, with the same outcome.
    #[test]
    fn an_expected_key_reads_as_any_key_reads() {
        let keys = |text: &str, expected: &[&'static [u8]]| {
            let mut s = Scan::new(text);
            let (mut first, mut out, mut n) = (true, Vec::new(), 0);
            s.open()?;
            while let Some(k) = s.key_expecting(&mut first, expected.get(n).copied())? {
                out.push(String::from_utf8(k.to_vec()).ok()?);
                s.skip()?;
                n += 1;
            }
            Some(out)
        };
        let want = |ks: &[&str]| Some(ks.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        let exp: &[&'static [u8]] = &[b"a", b"bb", b"c"];
        assert_eq!(keys(r#"{"a": 1, "bb": 2, "c": 3}"#, exp), want(&["a", "bb", "c"]));
        assert_eq!(keys(r#" { "bb" :2 ,"a":1,"c" : 3 } "#, exp), want(&["bb", "a", "c"]));
        assert_eq!(keys(r#"{"ab": 1, "b": 2, "a\"": 3}"#, exp), None);
        assert_eq!(keys(r#"{"ab": 1, "b": 2}"#, exp), want(&["ab", "b"]));
        assert_eq!(keys(r#"{}"#, exp), want(&[]));
        for bad in [r#"{"a" 1}"#, r#"{"a": 1 "bb": 2}"#, r#"{"a": 1,, "bb": 2}"#, r#"{,"a": 1}"#, r#"{"a": 1,}"#] {
            assert_eq!(keys(bad, exp), None, "{bad}");
        }
    }

    #[test]
    fn skipped_values_are_checked_for_form_and_depth() {
        let mut s = Scan::new(r#"{"a": [1, {"b": null}, "x", true, false, -2.5e3], "c": {}} ,"#);
        assert!(s.skip().is_some());
        assert_eq!(s.peek(), Some(b','));
        for bad in ["[1,]", "{\"a\"}", "tru", "\"a\\n\"", "{1: 2}"] {
            let mut s = Scan::new(bad);
            assert!(s.skip().is_none(), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(150), "]".repeat(150));
        let mut s = Scan::new(&deep);
        assert!(s.skip().is_none());
        assert!(serde_json::from_str::<serde_json::Value>(&deep).is_err());
    }

    #[test]
    fn a_checked_string_list_or_map_is_read_without_being_kept() {
        assert!(parse::<AnyList<AnyStr>>(br#"["a", "b"]"#).is_some());
        assert!(parse::<AnyMap<AnyStr, AnyStr>>(br#"{"channel": "api", "campaign": "c8"}"#).is_some());
        assert!(parse::<AnyMap<AnyStr, AnyStr>>(br#"{"channel": 1}"#).is_none());
        assert!(serde_json::from_str::<AnyMap<AnyStr, AnyStr>>(r#"{"channel": 1}"#).is_err());
    }

    #[test]
    fn enum_values_are_names_or_numbers_of_the_enum() {
        let names = [("RENT", 1), ("OWN", 3)];
        let read = |t: &str| enum_number(&mut Scan::new(t), &names);
        assert_eq!(read("\"OWN\""), Some(3));
        assert_eq!(read("1"), Some(1));
        assert_eq!(read("2"), None);
        assert_eq!(read("\"LEASE\""), None);
    }
}
