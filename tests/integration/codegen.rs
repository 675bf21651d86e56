//! The code generator: its output for each case under `tests/cases/codegen/` is kept as a
//! snapshot (`main.rs.snap`, rewritten with `PIPE_BLESS=1`), and each case is built with cargo
//! and run on the data beside it, with its outputs checked against values worked out by hand.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use pipe_tests::{build_pipeline, hmac_hex, read_parquet_dir, repo_root, scratch, Cell};
use pipec::fs_loader::FsLoader;
use serde_json::Value;

const KEY: &str = "codegen-test-key-0123456789";

#[test]
fn generated_code_matches_its_snapshots() {
    let dir = repo_root().join("tests/cases/codegen");
    let bless = std::env::var_os("PIPE_BLESS").is_some();
    let mut problems = Vec::new();
    let mut cases: Vec<_> = std::fs::read_dir(&dir).expect("cases").flatten().map(|e| e.path()).collect();
    cases.sort();
    assert!(!cases.is_empty());
    for case in cases {
        let root = case.join("pipeline.pipe");
        let loader = FsLoader::new(".");
        let mut checked = pipec::check_program(&loader, &root).expect("readable");
        let target = pipe_tests::case_target();
        let krate = pipec::generate(&mut checked, &root, &target).unwrap_or_else(|| {
            panic!(
                "{} does not generate:\n{}",
                root.display(),
                pipec::diagnostics::render::human(&checked.resolved.sources, &checked.diagnostics, false)
            )
        });
        let main = &krate.files.iter().find(|(p, _)| p == "main.rs").expect("main.rs").1;
        let snap = case.join("main.rs.snap");
        if bless {
            std::fs::write(&snap, main).expect("write snapshot");
        } else if std::fs::read_to_string(&snap).ok().as_deref() != Some(main.as_str()) {
            problems.push(format!("{} differs from the generated code (PIPE_BLESS=1 rewrites it)", snap.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The rows of every part of a JSON Lines sink directory.
fn jsonl(dir: &Path) -> Vec<Value> {
    pipe_tests::parts(dir, "jsonl").lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect()
}

/// Runs a pipeline binary with `args`, asserting that it succeeds.
fn run_ok(bin: &Path, args: &[String]) {
    let res = Command::new(bin).args(args).env("PIPE_HMAC_KEY", KEY).output().expect("run");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
}

/// `--sink` options putting each sink of the feature case under `out`.
fn feature_sinks(out: &Path) -> Vec<String> {
    [("zip_sink", "zips"), ("hourly_sink", "hourly"), ("tag_days->parquet", "tags"), ("rejected->files", "rejected")]
        .iter()
        .flat_map(|(name, dir)| ["--sink".to_string(), format!("{name}={}", out.join(dir).display())])
        .collect()
}

#[test]
fn the_feature_case_builds_without_warnings_and_computes_the_right_rows() {
    let bin = build_pipeline(Path::new("tests/cases/codegen/features/pipeline.pipe"));
    let out = scratch("codegen_features");
    let mut args = feature_sinks(&out);
    args.extend(["--threads".to_string(), "2".to_string()]);
    run_ok(&bin, &args);

    // Hourly windows per kind: every aggregate, window bounds, CSV text forms.
    let hourly = pipe_tests::parts(&out.join("hourly"), "csv");
    let mut lines: Vec<&str> = hourly.lines().collect();
    assert_eq!(lines.remove(0), "kind,window_start,window_end,n,total,users,biggest,mean,opening,closing,keyed");
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "charge,2023-11-14T22:00:00.000Z,2023-11-14T23:00:00.000Z,2,37.5,2,25.5,18.75,25.5,12.0,2",
            "charge,2023-11-14T23:00:00.000Z,2023-11-15T00:00:00.000Z,2,30.0,2,30.0,15.0,0.0,30.0,2",
            "refund,2023-11-14T22:00:00.000Z,2023-11-14T23:00:00.000Z,1,-7.5,1,-7.5,-7.5,-7.5,-7.5,1",
            "refund,2023-11-14T23:00:00.000Z,2023-11-15T00:00:00.000Z,1,-2.0,1,-2.0,-2.0,-2.0,-2.0,1",
        ]
    );

    // Exploded tags per day; B has one use and `k >= 2` suppresses it; the division by zero
    // rejected one element.
    let tags = read_parquet_dir(&out.join("tags"));
    assert_eq!(tags.len(), 1, "{tags:?}");
    let (part, row) = &tags[0];
    assert_eq!(part, "tag=A");
    assert_eq!(row["uses"], Cell::Int(3));
    assert_eq!(row["worst"], Cell::Double(100.0));
    assert_eq!(row["window_start"], Cell::Int(1_699_920_000_000));

    // `protect for`: the user pseudonymized, the ZIP code truncated, the default `visits`.
    let mut zips: Vec<String> = jsonl(&out.join("zips")).iter().map(Value::to_string).collect();
    zips.sort();
    let mut want: Vec<String> = [
        ("ann", Some("941"), 4),
        ("bob", Some("100"), 1),
        ("bob", None, 2),
        ("cy", None, 0),
        ("ann", None, 1),
        ("max", None, 1),
    ]
    .iter()
    .map(|(u, z, v)| serde_json::json!({ "user": hmac_hex(KEY, u), "zip": z, "visits": v }).to_string())
    .collect();
    want.sort();
    assert_eq!(zips, want);

    // Every bad record, once, with where it came from.
    let rejected = jsonl(&out.join("rejected"));
    let mut got: Vec<(String, String)> = rejected
        .iter()
        .map(|r| {
            let pos = r["position"].as_str().expect("position");
            let file = Path::new(pos).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            (file, r["reason"].as_str().expect("reason").to_string())
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = vec![
        // Fields the pipeline never reads are checked against the schema too (here and in
        // `refunds.csv:6`).
        ("events.jsonl:10".into(), "events: field `referrals`: invalid type: string, expected i64".into()),
        ("events.jsonl:4".into(), "tag_days: division by zero (`/`)".into()),
        ("events.jsonl:6".into(), "events: field `at`: invalid type: string, expected i64".into()),
        ("events.jsonl:7".into(), "events: field `tier`: not a value of enum Tier".into()),
        ("events.jsonl:8".into(), "events: malformed JSON at column 2".into()),
        // An event time so close to the end of time that its window's end would overflow.
        ("events.jsonl:9".into(), "hourly: event time out of range for the window".into()),
        ("refunds.csv:4".into(), "refunds: not an ISO-8601 date or date-time".into()),
        // A shifted row: one column more than the header.
        ("refunds.csv:5".into(), "refunds: the row has 5 columns, its header 4".into()),
        ("refunds.csv:6".into(), "refunds: column `items`: not an integer".into()),
    ];
    assert_eq!(got, want);

    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("zips/_pipe_summary.json")).expect("summary"))
            .expect("json");
    let ops: BTreeMap<String, Value> = summary["operators"]
        .as_array()
        .expect("ops")
        .iter()
        .map(|o| (o["name"].as_str().unwrap_or_default().to_string(), o.clone()))
        .collect();
    assert_eq!(ops["events"]["read"], 10);
    assert_eq!(ops["events"]["rejected"], 4);
    assert_eq!(ops["refunds"]["read"], 5);
    // `charges` filters on labeled data: its counts show in steps of 10 (one filtered: 0).
    assert_eq!((ops["charges"]["filtered"].as_u64(), ops["charges"]["coarsened"].as_bool()), (Some(0), Some(true)));
    assert_eq!(ops["events"]["coarsened"], false);
    assert_eq!(ops["rejected"]["read"], 9);
}

#[test]
fn every_valid_program_generates_or_names_what_is_not_supported_yet() {
    let root = repo_root();
    let mut roots: Vec<std::path::PathBuf> = Vec::new();
    for dir in ["tests/cases/valid", "tests/cases/privacy/clean", "examples"] {
        let files = pipe_tests::read_tree(&root.join(dir), &["pipe"]);
        roots.extend(
            files.keys().filter(|p| !p.components().any(|c| c.as_os_str() == "blocks")).map(|p| root.join(dir).join(p)),
        );
    }
    let mut problems = Vec::new();
    for path in &roots {
        let loader = FsLoader::new(".");
        let mut checked = pipec::check_program(&loader, path).expect("readable");
        if checked.has_errors() {
            continue; // multi-file cases whose root is another file
        }
        let target = pipe_tests::case_target();
        if pipec::generate(&mut checked, path, &target).is_none() {
            for d in checked.diagnostics.iter().filter(|d| d.message.contains("internal error")) {
                problems.push(format!("{}: {}", path.display(), d.message));
            }
        }
    }
    assert!(roots.len() > 10);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_builtin_function_compiles_to_rust_without_warnings() {
    // tests/cases/valid/expressions.pipe calls every builtin function and operator.
    let bin = build_pipeline(Path::new("tests/cases/valid/expressions.pipe"));
    let help = Command::new(&bin).arg("--help").output().expect("run --help");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--source") && text.contains("--hmac-key-file"), "{text}");
}

#[test]
fn garbled_input_never_crashes_a_pipeline_and_every_record_is_counted() {
    let bin = build_pipeline(Path::new("tests/cases/codegen/features/pipeline.pipe"));
    let out = scratch("codegen_garbled");
    let good = std::fs::read_to_string(repo_root().join("tests/cases/codegen/features/events.jsonl")).expect("events");
    let good: Vec<&str> = good.lines().collect();
    // A small deterministic generator (xorshift), so a failure reproduces.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let replacements = [
        "9223372036854775807",
        "-9223372036854775808",
        "1e400",
        "-0",
        "null",
        "\"\"",
        "[]",
        "{}",
        "true",
        "\"\\ud800\"",
        "\"日本\"",
        "[[[[[[]]]]]]",
        "\"GOLD\"",
        "3",
    ];
    let mut bytes: Vec<u8> = Vec::new();
    let mut lines = 0;
    for i in 0..400 {
        let base = good[(next() % good.len() as u64) as usize].as_bytes();
        let mut line = base.to_vec();
        match i % 4 {
            0 => line.truncate((next() % (base.len() as u64 + 1)) as usize),
            1 => {
                let at = (next() % line.len() as u64) as usize;
                line[at] = (next() % 256) as u8;
            }
            2 => {
                // Replace the value after a random colon.
                let colons: Vec<usize> = line.iter().enumerate().filter(|(_, b)| **b == b':').map(|(i, _)| i).collect();
                if let Some(&c) = colons.get((next() % colons.len().max(1) as u64) as usize) {
                    let end = line[c..].iter().position(|b| *b == b',' || *b == b'}').map_or(line.len(), |e| c + e);
                    let r = replacements[(next() % replacements.len() as u64) as usize];
                    line.splice(c + 1..end, r.bytes());
                }
            }
            _ => {}
        }
        if line.iter().all(u8::is_ascii_whitespace) || line.contains(&b'\n') {
            continue;
        }
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
        lines += 1;
    }
    let input = out.join("garbled.jsonl");
    std::fs::write(&input, &bytes).expect("write");
    let mut args = vec!["--source".to_string(), format!("events={}", input.display())];
    args.extend(feature_sinks(&out));
    run_ok(&bin, &args);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("zips/_pipe_summary.json")).expect("summary"))
            .expect("json");
    for op in summary["operators"].as_array().expect("ops") {
        assert_eq!(op["reconciled"], true, "{op}");
    }
    let events =
        summary["operators"].as_array().and_then(|a| a.iter().find(|o| o["name"] == "events")).expect("events");
    assert_eq!(events["read"], lines);
    let rejected = jsonl(&out.join("rejected")).len();
    assert!(rejected > 50, "garbling rejects many records ({rejected})");
}

#[test]
fn compiled_models_predict_what_the_libraries_predict() {
    let bin = build_pipeline(Path::new("tests/cases/codegen/scoring/pipeline.pipe"));
    let out = scratch("codegen_scoring");
    run_ok(&bin, &["--sink".to_string(), format!("scored->files={}", out.join("scores").display())]);
    let read = |path: &Path| -> (Vec<String>, BTreeMap<i64, Vec<f64>>) {
        let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let headers: Vec<String> = r.headers().expect("header").iter().map(str::to_string).collect();
        let rows = r
            .records()
            .map(|rec| {
                let rec = rec.expect("record");
                let id: i64 = rec[0].parse().expect("id");
                (id, rec.iter().skip(1).map(|v| v.parse::<f64>().expect("number")).collect())
            })
            .collect();
        (headers, rows)
    };
    let (want_cols, want) = read(&repo_root().join("tests/cases/codegen/scoring/fixtures/predictions.csv"));
    let (got_cols, got) = read(&out.join("scores/part-00000.csv"));
    assert_eq!(got.len(), want.len());
    let mut worst = Vec::new();
    for (c, name) in want_cols.iter().enumerate().skip(1) {
        let g = got_cols.iter().position(|h| *h == format!("p_{name}")).expect("a score column per model") - 1;
        let mut max = 0.0f64;
        for (id, w) in &want {
            let diff = (got[id][g] - w[c - 1]).abs();
            max = max.max(diff);
        }
        worst.push((name.clone(), max));
    }
    for (name, max) in &worst {
        assert!(*max <= 1e-6, "{name}: max difference {max} from the library's predictions ({worst:?})");
    }
}

#[test]
fn score_right_after_explode_scores_every_element() {
    let bin = build_pipeline(Path::new("tests/cases/codegen/explode_score/pipeline.pipe"));
    let out = scratch("codegen_explode_score");
    run_ok(&bin, &["--sink".to_string(), format!("scored->files={}", out.join("scored").display())]);
    let mut got: Vec<String> = jsonl(&out.join("scored")).iter().map(Value::to_string).collect();
    got.sort();
    // s = 2x + 0.5, per element; empty and missing lists give no rows.
    assert_eq!(
        got,
        vec![
            r#"{"k":"a","s":2.5,"x":1.0}"#.to_string(),
            r#"{"k":"a","s":4.5,"x":2.0}"#.to_string(),
            r#"{"k":"d","s":-2.5,"x":-1.5}"#.to_string(),
        ]
    );
}
