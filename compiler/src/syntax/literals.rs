//! Turning literal tokens into values: strings with escapes, integers (decimal and hex),
//! durations with units and ISO-8601 timestamps. Each failure is a diagnostic, not a panic.
#![allow(
    clippy::result_large_err,
    reason = "a diagnostic is returned only on the cold error path, where boxing it buys nothing"
)]

use chrono::{DateTime, NaiveDate, NaiveDateTime};

use crate::diagnostics::{Code, Diagnostic};
use crate::source::Span;

/// Duration units and their length in milliseconds.
pub const DURATION_UNITS: &[(&str, i64)] =
    &[("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)];

/// The value of a quoted string token (either quote), with escapes applied.
pub fn string(raw: &str, span: Span) -> Result<String, Diagnostic> {
    // An unterminated string (already reported by the lexer) has no closing quote to strip.
    let quote = &raw[..1];
    let closed = raw.len() >= 2 && raw.ends_with(quote);
    let inner = if closed { &raw[1..raw.len() - 1] } else { &raw[1..] };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.char_indices();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let bad = |msg: &str| {
            let at = span.start as usize + 1 + i;
            Diagnostic::new(Code::E0006, Span::new(span.file, at, at + 2), msg.to_string())
                .label("this escape")
                .help("valid escapes are \\\\ \\\" \\' \\n \\r \\t \\0 \\/ and \\u{…}")
        };
        match chars.next().map(|(_, c)| c) {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some(c @ ('\\' | '"' | '\'' | '/')) => out.push(c),
            Some('u') => {
                let rest = &inner[i + 2..];
                let (hex, used) = if let Some(r) = rest.strip_prefix('{') {
                    match r.find('}') {
                        Some(end) => (&r[..end], end + 2),
                        None => return Err(bad("unterminated unicode escape")),
                    }
                } else {
                    match rest.get(..4) {
                        Some(h) => (h, 4),
                        None => return Err(bad("a `\\u` escape takes four hex digits")),
                    }
                };
                let ch = u32::from_str_radix(hex, 16).ok().and_then(char::from_u32);
                match ch {
                    Some(ch) => out.push(ch),
                    None => return Err(bad("invalid unicode escape")),
                }
                for _ in 0..used {
                    chars.next();
                }
            }
            _ => return Err(bad("unknown escape")),
        }
    }
    Ok(out)
}

/// A decimal or `0x` hexadecimal integer.
pub fn int(raw: &str, span: Span) -> Result<i64, Diagnostic> {
    let parsed = match raw.strip_prefix("0x").or_else(|| raw.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16),
        None => raw.parse::<i64>(),
    };
    parsed.map_err(|_| {
        Diagnostic::new(Code::E0004, span, format!("integer `{raw}` does not fit in 64 bits"))
            .label("too large")
            .help("integers range from -9223372036854775808 to 9223372036854775807; write a double (`1.0e20`) for larger values")
    })
}

pub fn float(raw: &str, span: Span) -> Result<f64, Diagnostic> {
    raw.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| {
        Diagnostic::new(Code::E0004, span, format!("invalid number `{raw}`"))
            .label("not a number")
            .help("write a number such as `1.5` or `2e10`")
    })
}

/// A duration such as `5m` in milliseconds.
pub fn duration(raw: &str, span: Span) -> Result<i64, Diagnostic> {
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let Some(&(_, ms)) = DURATION_UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(Diagnostic::new(Code::E0005, span, format!("unknown duration unit `{unit}`"))
            .label("not a duration unit")
            .help("durations are written as a whole number and one of the units ms, s, m, h, d, w, e.g. `5m`"));
    };
    digits.parse::<i64>().ok().and_then(|n| n.checked_mul(ms)).ok_or_else(|| {
        Diagnostic::new(Code::E0005, span, format!("duration `{raw}` is too long"))
            .label("overflows 64-bit milliseconds")
            .help("use a shorter duration")
    })
}

/// A timestamp literal `@2024-01-31` or `@2024-01-31T12:00:00Z` in milliseconds since the epoch.
/// Without an offset the time is in UTC.
pub fn timestamp(raw: &str, span: Span) -> Result<i64, Diagnostic> {
    let s = &raw[1..];
    let millis = if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        Some(dt.timestamp_millis())
    } else if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        Some(dt.and_utc().timestamp_millis())
    } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0).map(|dt| dt.and_utc().timestamp_millis())
    } else {
        None
    };
    millis.ok_or_else(|| {
        Diagnostic::new(Code::E0005, span, format!("invalid timestamp `{raw}`"))
            .label("not an ISO-8601 date or date-time")
            .help("write `@2024-01-31` or `@2024-01-31T12:00:00Z`")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp() -> Span {
        Span::default()
    }

    #[test]
    fn escapes_and_both_quotes() {
        assert_eq!(string(r#""a\"b\n""#, sp()).ok(), Some("a\"b\n".to_string()));
        assert_eq!(string(r"'it\'s \u{e9}'", sp()).ok(), Some("it's é".to_string()));
        assert_eq!(string(r#""\q""#, sp()).map_err(|d| d.code), Err(Code::E0006));
    }

    #[test]
    fn durations_and_timestamps() {
        assert_eq!(duration("5m", sp()).ok(), Some(300_000));
        assert_eq!(duration("1d", sp()).ok(), Some(86_400_000));
        assert_eq!(duration("5min", sp()).map_err(|d| d.code), Err(Code::E0005));
        assert_eq!(timestamp("@1970-01-02", sp()).ok(), Some(86_400_000));
        assert_eq!(timestamp("@2023-01-01T00:00:00Z", sp()).ok(), Some(1_672_531_200_000));
        assert_eq!(timestamp("@2023-13-01", sp()).map_err(|d| d.code), Err(Code::E0005));
    }

    #[test]
    fn integers_in_both_bases() {
        assert_eq!(int("0x1F", sp()).ok(), Some(31));
        assert_eq!(int("99999999999999999999", sp()).map_err(|d| d.code), Err(Code::E0004));
    }
}
