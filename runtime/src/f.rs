//! The builtin scalar functions and operators, as generated code calls them. Anything that can
//! fail on data returns [`Res`] with a reason that names the operation, never the value.

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};

use crate::record::{Reject, Res};

pub const DAY_MS: i64 = 86_400_000;

// ---- arithmetic ----

#[inline]
pub fn add_i(a: i64, b: i64) -> Res<i64> {
    a.checked_add(b).ok_or_else(|| Reject::new("integer overflow in `+`"))
}
#[inline]
pub fn sub_i(a: i64, b: i64) -> Res<i64> {
    a.checked_sub(b).ok_or_else(|| Reject::new("integer overflow in `-`"))
}
#[inline]
pub fn mul_i(a: i64, b: i64) -> Res<i64> {
    a.checked_mul(b).ok_or_else(|| Reject::new("integer overflow in `*`"))
}
#[inline]
pub fn rem_i(a: i64, b: i64) -> Res<i64> {
    if b == 0 {
        return Err(Reject::new("remainder of a division by zero (`%`)"));
    }
    Ok(a.checked_rem(b).unwrap_or(0))
}
#[inline]
pub fn rem_f(a: f64, b: f64) -> Res<f64> {
    if b == 0.0 {
        return Err(Reject::new("remainder of a division by zero (`%`)"));
    }
    Ok(a % b)
}
#[inline]
pub fn div_f(a: f64, b: f64) -> Res<f64> {
    if b == 0.0 {
        return Err(Reject::new("division by zero (`/`)"));
    }
    Ok(a / b)
}
/// A duration divided by a count.
#[inline]
pub fn div_d(a: i64, b: i64) -> Res<i64> {
    if b == 0 {
        return Err(Reject::new("division by zero (`/`)"));
    }
    a.checked_div(b).ok_or_else(|| Reject::new("integer overflow in `/`"))
}
#[inline]
pub fn neg_i(a: i64) -> Res<i64> {
    a.checked_neg().ok_or_else(|| Reject::new("integer overflow in `-`"))
}
#[inline]
pub fn add_s(mut a: String, b: String) -> String {
    a.push_str(&b);
    a
}

// ---- comparisons with nulls: an ordering comparison with a null side is false ----

#[inline]
pub fn lt<T: PartialOrd>(a: Option<T>, b: Option<T>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a < b)
}
#[inline]
pub fn le<T: PartialOrd>(a: Option<T>, b: Option<T>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a <= b)
}
#[inline]
pub fn gt<T: PartialOrd>(a: Option<T>, b: Option<T>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a > b)
}
#[inline]
pub fn ge<T: PartialOrd>(a: Option<T>, b: Option<T>) -> bool {
    matches!((a, b), (Some(a), Some(b)) if a >= b)
}

// ---- numbers ----

pub fn abs_i(x: i64) -> Res<i64> {
    x.checked_abs().ok_or_else(|| Reject::new("integer overflow in `abs`"))
}
pub fn abs_f(x: f64) -> f64 {
    x.abs()
}
/// Half away from zero, to `digits` decimal places.
pub fn round(x: f64, digits: i64) -> f64 {
    let d = digits.clamp(-15, 15) as i32;
    let p = 10f64.powi(d);
    let r = (x * p).round() / p;
    if r.is_finite() {
        r
    } else {
        x
    }
}
pub fn floor(x: f64) -> f64 {
    x.floor()
}
pub fn ceil(x: f64) -> f64 {
    x.ceil()
}
pub fn sqrt(x: f64) -> Res<f64> {
    if x < 0.0 {
        return Err(Reject::new("square root of a negative number (`sqrt`)"));
    }
    Ok(x.sqrt())
}
pub fn ln(x: f64) -> Res<f64> {
    if x <= 0.0 {
        return Err(Reject::new("logarithm of a number that is not positive (`ln`)"));
    }
    Ok(x.ln())
}
pub fn exp(x: f64) -> f64 {
    x.exp()
}
pub fn pow(x: f64, y: f64) -> f64 {
    x.powf(y)
}

// ---- text ----

pub fn lower(s: String) -> String {
    s.to_lowercase()
}
pub fn upper(s: String) -> String {
    s.to_uppercase()
}
pub fn trim(s: String) -> String {
    s.trim().to_string()
}
pub fn len_s(s: &str) -> i64 {
    i64::try_from(s.chars().count()).unwrap_or(i64::MAX)
}
pub fn len_c(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
pub fn contains(s: String, part: String) -> bool {
    s.contains(part.as_str())
}
pub fn starts_with(s: String, p: String) -> bool {
    s.starts_with(p.as_str())
}
pub fn ends_with(s: String, p: String) -> bool {
    s.ends_with(p.as_str())
}
/// `count` characters from character `start`; positions out of range are clamped.
pub fn substr(s: String, start: i64, count: Option<i64>) -> String {
    let start = usize::try_from(start.max(0)).unwrap_or(usize::MAX);
    let chars = s.chars().skip(start);
    match count {
        Some(c) => chars.take(usize::try_from(c.max(0)).unwrap_or(usize::MAX)).collect(),
        None => chars.collect(),
    }
}
pub fn replace(s: String, from: String, to: String) -> String {
    if from.is_empty() {
        return s;
    }
    s.replace(from.as_str(), &to)
}
pub fn split(s: String, sep: String) -> Vec<String> {
    if sep.is_empty() {
        return vec![s];
    }
    s.split(sep.as_str()).map(str::to_string).collect()
}
pub fn parse_int(s: String) -> Res<i64> {
    s.trim().parse::<i64>().map_err(|_| Reject::new("text is not an integer (`parse_int`)"))
}
pub fn parse_double(s: String) -> Res<f64> {
    s.trim().parse::<f64>().map_err(|_| Reject::new("text is not a number (`parse_double`)"))
}

/// Element `i` of a list, or null when out of range.
pub fn at<T: Clone>(v: &[T], i: i64) -> Option<T> {
    usize::try_from(i).ok().and_then(|i| v.get(i)).cloned()
}

// ---- time ----

/// An ISO-8601 date (`2024-01-31`) or RFC 3339 date-time, as milliseconds since the epoch.
pub fn parse_timestamp(s: String) -> Res<i64> {
    parse_iso(s.trim()).ok_or_else(|| Reject::new("text is not an ISO-8601 date or date-time (`parse_timestamp`)"))
}

pub fn parse_iso(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f") {
        return Some(t.and_utc().timestamp_millis());
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

fn utc(ts: i64) -> Res<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ts).ok_or_else(|| Reject::new("timestamp out of range"))
}

/// The UTC day of a timestamp, as days since 1970-01-01.
#[inline]
pub fn date(ts: i64) -> i32 {
    i32::try_from(ts.div_euclid(DAY_MS)).unwrap_or(if ts < 0 { i32::MIN } else { i32::MAX })
}

fn day_of(d: i32) -> Res<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(d.checked_add(719_163).ok_or_else(|| Reject::new("date out of range"))?)
        .ok_or_else(|| Reject::new("date out of range"))
}

pub fn year_ts(ts: i64) -> Res<i64> {
    Ok(i64::from(utc(ts)?.year()))
}
pub fn month_ts(ts: i64) -> Res<i64> {
    Ok(i64::from(utc(ts)?.month()))
}
pub fn day_ts(ts: i64) -> Res<i64> {
    Ok(i64::from(utc(ts)?.day()))
}
pub fn year_d(d: i32) -> Res<i64> {
    Ok(i64::from(day_of(d)?.year()))
}
pub fn month_d(d: i32) -> Res<i64> {
    Ok(i64::from(day_of(d)?.month()))
}
pub fn day_d(d: i32) -> Res<i64> {
    Ok(i64::from(day_of(d)?.day()))
}
pub fn hour(ts: i64) -> Res<i64> {
    Ok(i64::from(utc(ts)?.hour()))
}

/// RFC 3339 in UTC with milliseconds, the form every sink writes timestamps in as text.
pub fn ts_text(ts: i64) -> String {
    match DateTime::from_timestamp_millis(ts) {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => ts.to_string(),
    }
}

/// `YYYY-MM-DD`.
pub fn date_text(d: i32) -> String {
    match day_of(d) {
        Ok(day) => day.format("%Y-%m-%d").to_string(),
        Err(_) => d.to_string(),
    }
}

/// A number in its shortest round-trip form (`2.5`, `3.0`).
pub fn double_text(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e16 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// `generalize` on a date: days rounded down to a multiple of `unit`.
pub fn generalize_date(d: i32, unit: i64) -> Res<i32> {
    let days = unit / DAY_MS;
    if days <= 0 {
        return Ok(d);
    }
    let d = i64::from(d);
    i32::try_from(d - d.rem_euclid(days)).map_err(|_| Reject::new("date out of range"))
}

/// `generalize` on a timestamp; a unit that is not positive keeps it, and an instant so
/// early that its bucket start is not representable rejects the record.
pub fn generalize_ts(t: i64, unit: i64) -> Res<i64> {
    if unit <= 0 {
        return Ok(t);
    }
    crate::mask::generalize(t, unit).ok_or_else(|| Reject::new("timestamp out of range (`generalize`)"))
}

/// `bucket(x, width)`; a width that is not positive rejects the record.
pub fn bucket(x: f64, width: f64) -> Res<f64> {
    crate::mask::bucket(x, width).ok_or_else(|| Reject::new("`bucket` width must be positive"))
}

/// `quantile_bucket(x, n)` with the fitted bucket edges: the number of inner edges (all but the
/// first and last) at or below `x`, as NumPy's `searchsorted(…, side="right")` (NaN sorts
/// last).
pub fn quantile_bucket(x: f64, edges: &[f64]) -> i64 {
    let inner = edges.get(1..edges.len().saturating_sub(1)).unwrap_or_default();
    let below = if x.is_nan() { inner.len() } else { inner.partition_point(|e| *e <= x) };
    i64::try_from(below).unwrap_or(i64::MAX)
}

/// `bucket` without a width (a field's `mask = "bucket"`): keeps one significant digit.
pub fn bucket_auto(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let width = 10f64.powi(x.abs().log10().floor() as i32);
    (x / width).floor() * width
}

pub const REDACTED: &str = "[REDACTED]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_operations_reject_without_quoting_data() {
        assert_eq!(div_f(1.0, 0.0), Err(Reject::new("division by zero (`/`)")));
        assert!(add_i(i64::MAX, 1).is_err());
        let e = parse_int("12-secret".into()).expect_err("not a number");
        assert!(!e.0.contains("secret"));
        assert!(sqrt(-1.0).is_err());
    }

    #[test]
    fn null_comparisons_are_false() {
        assert!(!gt(None, Some(0.0)));
        assert!(gt(Some(1.0), Some(0.0)));
        assert!(!le::<i64>(Some(1), None));
    }

    #[test]
    fn time_functions() {
        let t = parse_timestamp("2024-01-31T10:30:00Z".into()).expect("valid");
        assert_eq!(date_text(date(t)), "2024-01-31");
        assert_eq!(hour(t), Ok(10));
        assert_eq!(year_d(date(t)), Ok(2024));
        assert_eq!(parse_timestamp("2024-02-01".into()), Ok(t - t.rem_euclid(DAY_MS) + DAY_MS));
        assert_eq!(ts_text(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date(-1), -1);
        assert!(parse_timestamp("yesterday".into()).is_err());
        assert_eq!(generalize_date(date(t), 7 * DAY_MS), Ok(19_747));
        assert!(generalize_ts(i64::MIN, DAY_MS).is_err(), "the start of its day is not representable");
        assert_eq!(generalize_ts(DAY_MS + 5, DAY_MS), Ok(DAY_MS));
        assert!(div_d(i64::MIN, -1).is_err());
    }

    #[test]
    fn text_and_numbers() {
        assert_eq!(substr("abcdef".into(), 1, Some(3)), "bcd");
        assert_eq!(substr("abc".into(), 5, None), "");
        assert_eq!(round(2.345, 2), 2.35);
        assert_eq!(round(-2.5, 0), -3.0);
        assert_eq!(double_text(3.0), "3.0");
        assert_eq!(double_text(0.1), "0.1");
        assert_eq!(bucket_auto(52_300.0), 50_000.0);
        assert_eq!(split("a,b".into(), ",".into()), vec!["a", "b"]);
    }
}
