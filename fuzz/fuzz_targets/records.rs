//! Any bytes as a record of a source, the way generated code reads it: a JSON line or a CSV
//! row into a record struct that uses the runtime's deserializers (timestamps in units and
//! ISO-8601, dates, nested values as JSON text, unread fields checked), with the reasons a
//! rejection gives, and the JSON fast path (which must read exactly what serde_json reads); or a
//! whole Parquet file read row by row with checksums on. None panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipe_runtime::value::Checked;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only decoded")]
struct Rec {
    id: String,
    #[serde(default)]
    n: Option<i64>,
    #[serde(deserialize_with = "pipe_runtime::value::ts_seconds::deserialize")]
    at: i64,
    #[serde(default, deserialize_with = "pipe_runtime::value::ts_iso::opt::deserialize")]
    seen: Option<i64>,
    #[serde(default, deserialize_with = "check_day")]
    day: Checked,
    #[serde(default, deserialize_with = "check_name")]
    name: Checked,
    #[serde(default, deserialize_with = "pipe_runtime::value::json_text::opt::deserialize")]
    tags: Option<Vec<String>>,
}

fn check_day<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
    pipe_runtime::value::de_date(d).map(|_| Checked)
}

fn check_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
    <Option<pipe_runtime::value::AnyStr> as Deserialize>::deserialize(d).map(|_| Checked)
}

/// The JSON form of `Rec` (nested values as JSON, not text).
#[derive(Debug, Deserialize)]
#[allow(dead_code, reason = "only decoded")]
struct JsonRec {
    id: String,
    n: Option<i64>,
    #[serde(deserialize_with = "pipe_runtime::value::ts_millis::deserialize")]
    at: i64,
    #[serde(default)]
    tags: Option<Vec<Option<f64>>>,
}

/// The JSON fast path's reader of `JsonRec`, as the code generator writes one
/// (`compiler/src/codegen/rows.rs`, `fast_reader`).
impl pipe_runtime::json::Fast for JsonRec {
    fn read(s: &mut pipe_runtime::json::Scan<'_>) -> Option<JsonRec> {
        use pipe_runtime::json::set_once;
        const KEYS: [&[u8]; 4] = [b"id", b"n", b"at", b"tags"];
        let (mut id, mut n, mut at, mut tags) = (None, None, None, None);
        s.open()?;
        let (mut first, mut next) = (true, 0usize);
        while let Some(k) = s.key_expecting(&mut first, KEYS.get(next).copied())? {
            match k {
                b"id" => {
                    next = 1;
                    set_once(&mut id, String::read(s))?
                }
                b"n" => {
                    next = 2;
                    set_once(&mut n, Option::<i64>::read(s))?
                }
                b"at" => {
                    next = 3;
                    set_once(&mut at, i64::read(s))?
                }
                b"tags" => {
                    next = 4;
                    set_once(&mut tags, Option::<Vec<Option<f64>>>::read(s))?
                }
                _ => s.skip()?,
            }
        }
        Some(JsonRec { id: id?, n: n.unwrap_or_default(), at: at?, tags: tags.unwrap_or_default() })
    }
}

/// libFuzzer's panic hook aborts at once, before `for_each_row` can catch the parquet crate's
/// panic; this hook only prints, and a panic that no one catches still ends the run (libfuzzer-sys
/// aborts on it).
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else { return };
    match kind % 3 {
        0 => {
            // Whatever the fast path reads, serde_json reads the same (`Debug` tells -0.0 from 0.0).
            let fast = pipe_runtime::json::parse::<JsonRec>(body);
            match serde_json::from_slice::<JsonRec>(body) {
                Ok(slow) => {
                    if let Some(fast) = fast {
                        assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
                    }
                }
                Err(e) => {
                    assert!(fast.is_none(), "the fast path read what serde_json rejects: {fast:?}");
                    let _ = pipe_runtime::record::json_reason::<JsonRec>(body, &e);
                }
            }
        }
        1 => {
            let header = csv::ByteRecord::from(vec!["id", "n", "at", "seen", "day", "name", "tags"]);
            if let Some(rec) = pipe_runtime::connectors::files::parse_csv_line(body) {
                if pipe_runtime::record::csv_too_wide(&rec, &header).is_none() {
                    if let Err(e) = rec.deserialize::<Rec>(Some(&header)) {
                        let _ = pipe_runtime::record::csv_reason(&e, &header);
                    }
                }
            }
        }
        _ => {
            // As the batch engine reads a Parquet split: a decoder panic becomes an error there
            // (a panic anywhere else still aborts the fuzzer).
            quiet_panics();
            let _ = pipe_runtime::pq::for_each_row(bytes::Bytes::copy_from_slice(body), |_, row| {
                let _ = pipe_runtime::pq::get_i64(&row, "n");
                let _ = pipe_runtime::pq::get_str(&row, "id");
            });
        }
    }
});
