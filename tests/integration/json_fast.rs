//! The JSON fast path (`rt::json`) reads exactly what serde_json reads: one pipeline, with every
//! kind of field the fast path handles, runs over records in every form — plain, spaced out,
//! reordered, escaped, with numbers at the edges of what a double holds, malformed, and a few
//! hundred random mutations — once with the fast path and once with `PIPE_JSON_FAST=off`, and
//! writes the same rows and the same rejections.

use std::path::Path;
use std::process::Command;

use pipe_tests::{build_pipeline, parts, scratch};
use serde_json::{json, Value};

/// Every record, one per line, each with its own `id` where it has one.
fn records() -> Vec<String> {
    let base = json!({
        "id": "plain", "at": 1_700_000_000_000i64, "amount": 12.5, "flag": true, "tier": "GOLD",
        "items": [{"sku": "s1", "price": 9.99, "tags": ["x", "y"]}, {"sku": "s2"}],
        "attrs": {"a": "1", "b": "2"}, "count": 3, "n": 5, "codes": [1, 2, 3], "note": "hello",
        "readings": {"t": [1.5, 2.25]}, "more": [{"sku": "m"}], "kind": "k"
    });
    let with = |id: &str, key: &str, v: Value| {
        let mut r = base.clone();
        r["id"] = json!(id);
        r[key] = v;
        r.to_string()
    };
    let without = |id: &str, key: &str| {
        let mut r = base.clone();
        r["id"] = json!(id);
        r.as_object_mut().expect("object").remove(key);
        r.to_string()
    };
    let mut out = vec![base.to_string()];
    // Spaced out (pretty-printed on one line), keys in reverse order.
    let value = |text: String| serde_json::from_str::<Value>(&text).expect("json");
    out.push(serde_json::to_string_pretty(&value(with("spaced", "n", json!(6)))).expect("json").replace('\n', " \t"));
    let Value::Object(fields) = value(with("reversed", "n", json!(7))) else { unreachable!("an object") };
    let fields: Vec<String> = fields.iter().rev().map(|(k, v)| format!("{}:{v}", json!(k))).collect();
    out.push(format!("{{{}}}", fields.join(",")));
    // Numbers: what a double holds exactly, and beyond.
    for (i, n) in [
        "1e2",
        "1.5E-3",
        "-0.0",
        "-0",
        "0.1e1",
        "123456789012345678901234",
        "1e400",
        "1e-400",
        "9007199254740993",
        "0.30000000000000004",
        "2.5e22",
        "2.5e23",
        "-1.25e-20",
        "00",
        "1.",
        ".5",
        "+1",
        "1e",
    ]
    .iter()
    .enumerate()
    {
        out.push(with(&format!("amount{i}"), "amount", json!(0)).replace("\"amount\":0", &format!("\"amount\":{n}")));
    }
    for (i, n) in ["1.0", "-0", "9223372036854775807", "9223372036854775808", "-9223372036854775808", "1e3", "07"]
        .iter()
        .enumerate()
    {
        out.push(with(&format!("n{i}"), "n", json!(0)).replace("\"n\":0", &format!("\"n\":{n}")));
    }
    // Strings: escapes (in values, keys and nested), Unicode, control characters, bad UTF-8.
    out.push(with("esc\\u0041", "kind", json!("a\"b\\c\n")));
    out.push(with("unicode", "kind", json!("café 😀 \u{7f}")));
    out.push(with("keyesc", "n", json!(8)).replace("\"kind\"", "\"ki\\u006ed\""));
    out.push(with("tab", "kind", json!("x")).replace("\"kind\":\"x\"", "\"kind\":\"a\tb\""));
    // `BAD` becomes a byte that is not UTF-8 when the file is written.
    out.push(with("badutf8", "kind", json!("BAD")));
    // Missing, null, defaults, duplicates, unknown fields.
    out.push(without("nocount", "count"));
    out.push(without("non", "n"));
    out.push(without("noamount", "amount"));
    out.push(with("nullamount", "amount", Value::Null));
    out.push(with("nullcount", "count", Value::Null));
    out.push(with("nulln", "n", Value::Null));
    out.push(with("nullitems", "items", Value::Null));
    out.push(with("dupid", "n", json!(1)).replacen('{', "{\"id\":\"first\",", 1));
    out.push(with("dupattr", "attrs", json!({"a": "1"})).replace("{\"a\":\"1\"}", "{\"a\":\"1\",\"a\":\"2\"}"));
    out.push(with("unknown", "extra", json!({"a": [1, {"b": null}, "é", true, false, -2.5e-3], "c": {}})));
    out.push(
        with("deep", "extra", json!(0))
            .replace("\"extra\":0", &format!("\"extra\":{}{}", "[".repeat(150), "]".repeat(150))),
    );
    // Values of the wrong type, read and unread.
    out.push(with("notestr", "note", json!(5)));
    out.push(with("readingstr", "readings", json!({"t": ["x"]})));
    out.push(with("morenosku", "more", json!([{"price": 1}])));
    out.push(with("tiernum", "tier", json!(2)));
    out.push(with("tierbad", "tier", json!("BRONZE")));
    out.push(with("tier9", "tier", json!(9)));
    out.push(with("flagstr", "flag", json!("true")));
    out.push(with("itemsobj", "items", json!({"sku": "s"})));
    out.push(with("emptyall", "items", json!([])).replace("\"attrs\":{\"a\":\"1\",\"b\":\"2\"}", "\"attrs\":{}"));
    // Malformed records.
    for (i, bad) in
        ["{}", "[]", "null", "", "{\"id\":\"t\",}", "{\"id\" \"t\"}", "{\"id\":\"t\"", "x"].iter().enumerate()
    {
        out.push(format!("{bad}{}", " ".repeat(i % 2)));
    }
    let plain = base.to_string();
    out.push(format!("{plain} x"));
    out.push(format!("{plain},"));
    out.push(format!("  {plain}  "));
    // Random mutations of the plain record: a byte deleted, replaced or inserted.
    let alphabet = b"{}[],:\"0123456789eE.-+\\ntfaul x";
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % m) as usize
    };
    for _ in 0..400 {
        let mut b = plain.as_bytes().to_vec();
        for _ in 0..=next(2) {
            let at = next(b.len() as u64);
            let c = alphabet[next(alphabet.len() as u64)];
            match next(3) {
                0 => {
                    b.remove(at);
                }
                1 => b[at] = c,
                _ => b.insert(at, c),
            }
        }
        out.push(String::from_utf8_lossy(&b).replace('\n', "n"));
    }
    out
}

/// Runs the pipeline over `data` into `out`, the fast path on or off; returns the rows and the
/// rejections, each sorted.
fn run(bin: &Path, data: &Path, out: &Path, fast: bool) -> (Vec<String>, Vec<String>) {
    let res = Command::new(bin)
        .args(["--quiet", "--source", &format!("events={}", data.display())])
        .args(["--sink", &format!("out={}", out.join("rows").display())])
        .args(["--sink", &format!("rejected->files={}", out.join("rejected").display())])
        .env("PIPE_JSON_FAST", if fast { "on" } else { "off" })
        .output()
        .expect("run");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let sorted = |dir: &str| {
        let mut lines: Vec<String> = parts(&out.join(dir), "jsonl").lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    (sorted("rows"), sorted("rejected"))
}

/// The lines of `a` that `b` does not have (the first five).
fn only_in<'a>(a: &'a [String], b: &[String]) -> Vec<&'a String> {
    a.iter().filter(|l| !b.contains(l)).take(5).collect()
}

#[test]
fn the_json_fast_path_reads_every_record_as_serde_does() {
    let bin = build_pipeline(Path::new("tests/cases/json_fast/pipeline.pipe"));
    let dir = scratch("json_fast");
    let data = dir.join("events.jsonl");
    let records = records();
    let text = records.join("\n") + "\n";
    let bytes = text.replace("BAD", "\u{1}").into_bytes().into_iter().map(|b| if b == 1 { 0xff } else { b });
    std::fs::write(&data, bytes.collect::<Vec<u8>>()).expect("write records");

    let (rows, rejected) = run(&bin, &data, &dir.join("fast"), true);
    let (slow_rows, slow_rejected) = run(&bin, &data, &dir.join("slow"), false);
    assert_eq!(only_in(&rows, &slow_rows), only_in(&slow_rows, &rows), "rows: (with the fast path, without)");
    assert_eq!(only_in(&rejected, &slow_rejected), only_in(&slow_rejected, &rejected), "rejections: (with, without)");
    assert_eq!((rows.len(), rejected.len()), (slow_rows.len(), slow_rejected.len()));

    // Both kinds of outcome are well represented, so the comparison means something.
    assert_eq!(rows.len() + rejected.len(), records.len() - 1, "every record but the empty line once");
    assert!(rows.len() > 60 && rejected.len() > 200, "{} rows, {} rejected", rows.len(), rejected.len());
    // The plain record, field by field (mutated copies of it may keep its id).
    let plain = json!({
        "id": "plain", "at": "2023-11-14T22:13:20.000Z", "amount": 12.5, "flag": true, "tier": "GOLD",
        "items": [{"sku": "s1", "price": 9.99, "tags": ["x", "y"]}, {"sku": "s2", "price": null, "tags": null}],
        "attrs": {"a": "1", "b": "2"}, "count": 3, "n": 5, "codes": [1, 2, 3], "kind": "k"
    });
    assert!(rows.iter().any(|r| serde_json::from_str::<Value>(r).expect("row") == plain), "no row {plain}");
    let by_id: std::collections::BTreeMap<String, Value> = rows
        .iter()
        .map(|r| serde_json::from_str::<Value>(r).expect("row"))
        .map(|r| (r["id"].as_str().expect("id").to_string(), r))
        .collect();
    // Defaults and nulls as the schema says; escapes and Unicode decoded.
    assert_eq!(by_id["nocount"]["count"], 7);
    assert_eq!(by_id["nullamount"]["amount"], Value::Null);
    assert_eq!(by_id["esc\\u0041"]["kind"], "a\"b\\c\n");
    assert_eq!(by_id["unicode"]["kind"], "café 😀 \u{7f}");
    assert_eq!(by_id["dupattr"]["attrs"], json!({"a": "2"}));
    assert_eq!(by_id["tiernum"]["tier"], "SILVER");
    assert_eq!(by_id["amount0"]["amount"], 100.0);
    for id in ["keyesc", "spaced", "reversed", "unknown", "emptyall", "nullitems", "noamount"] {
        assert!(by_id.contains_key(id), "{id} was rejected");
    }
    // A repeated field, a null where a value is required, a value of the wrong type (read or
    // unread), a control character or bad UTF-8 in a string: rejected.
    for id in [
        "dupid",
        "nulln",
        "nullcount",
        "non",
        "notestr",
        "readingstr",
        "morenosku",
        "tierbad",
        "tier9",
        "flagstr",
        "tab",
        "badutf8",
    ] {
        assert!(!by_id.contains_key(id), "{id} was not rejected");
    }
}
