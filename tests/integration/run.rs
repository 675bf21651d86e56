//! The examples built into native binaries and run on their data; their outputs are checked
//! against values this test computes on its own from the inputs (it shares no code with the
//! runtime: JSON and CSV are read with serde_json and csv, pseudonyms with hmac/sha2, Parquet
//! with the parquet crate's row reader).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use pipe_tests::{build_pipeline, hmac_hex, read_parquet_dir, repo_root, scratch, Cell};
use serde_json::Value;

const KEY: &str = "integration-test-key-0123456789";
const DAY_MS: i64 = 86_400_000;

fn run(bin: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin).args(args).env("PIPE_HMAC_KEY", KEY).output().expect("start the pipeline")
}

fn summary(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("_pipe_summary.json")).expect("summary beside the output");
    serde_json::from_str(&text).expect("summary is JSON")
}

fn op<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["operators"]
        .as_array()
        .and_then(|a| a.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("no operator {name} in {s}"))
}

/// One expected warehouse row of the ingest example.
type IngestRow = (String, String, i64, String, String, Option<String>, String, Option<String>);

fn f64_key(x: f64) -> String {
    format!("{x:?}")
}

/// The application's fields the pipeline reads, if they have the schema's types.
fn valid_application(v: &Value) -> bool {
    let tradeline_ok = |t: &Value| {
        t["account_id"].is_string()
            && t["balance"].is_number()
            && (t["credit_limit"].is_null() || t["credit_limit"].is_number())
            && (t["kind"].is_null() || t["kind"].is_string())
    };
    v["member_id"].is_string()
        && v["submitted_at"].is_i64()
        && (v["state"].is_null() || v["state"].is_string())
        && (v["tradelines"].is_null() || v["tradelines"].as_array().is_some_and(|ts| ts.iter().all(tradeline_ok)))
}

#[test]
fn partner_ingest_writes_exactly_the_expected_rows_and_rejects_the_malformed_lines() {
    let bin = build_pipeline(Path::new("examples/partner_ingest/pipeline.pipe"));
    let out = scratch("partner_ingest");
    let (wh, rj) = (out.join("warehouse"), out.join("rejected"));
    let res = run(
        &bin,
        &["--sink", &format!("warehouse={}", wh.display()), "--sink", &format!("rejected->files={}", rj.display())],
    );
    assert!(res.status.success(), "run failed: {}", String::from_utf8_lossy(&res.stderr));

    // What the output must be, from the input alone.
    let input =
        std::fs::read_to_string(repo_root().join("examples/partner_ingest/data/applications.jsonl")).expect("data");
    let mut expected: Vec<IngestRow> = Vec::new();
    let mut bad_lines = Vec::new();
    let (mut dropped, mut exploded) = (0, 0);
    for (i, line) in input.lines().enumerate() {
        let v: Value = match serde_json::from_str(line) {
            Ok(v) if valid_application(&v) => v,
            _ => {
                bad_lines.push((i + 1, line.to_string()));
                continue;
            }
        };
        let at = v["submitted_at"].as_i64().expect("checked");
        let day = at.div_euclid(DAY_MS);
        for t in v["tradelines"].as_array().into_iter().flatten() {
            exploded += 1;
            let balance = t["balance"].as_f64().expect("checked");
            if balance < 0.0 {
                dropped += 1;
                continue;
            }
            let util = t["credit_limit"].as_f64().filter(|l| *l > 0.0).map(|l| f64_key(balance / l));
            expected.push((
                format!("date={}", day_string(day)),
                hmac_hex(KEY, v["member_id"].as_str().expect("checked")),
                at,
                hmac_hex(KEY, t["account_id"].as_str().expect("checked")),
                f64_key(balance),
                util,
                t["kind"].as_str().unwrap_or("unknown").to_string(),
                v["state"].as_str().map(str::to_string),
            ));
        }
    }
    assert!(bad_lines.len() >= 10 && expected.len() > 1000, "the sample has good and bad lines");

    let mut got: Vec<IngestRow> = read_parquet_dir(&wh)
        .into_iter()
        .map(|(part, c)| {
            let s = |k: &str| match &c[k] {
                Cell::Str(s) => s.clone(),
                other => panic!("{k} is {other:?}"),
            };
            let d = |k: &str| match &c[k] {
                Cell::Double(x) => Some(f64_key(*x)),
                Cell::Null => None,
                other => panic!("{k} is {other:?}"),
            };
            let at = match c["at"] {
                Cell::Int(v) => v,
                ref other => panic!("at is {other:?}"),
            };
            let state = match &c["state"] {
                Cell::Str(s) => Some(s.clone()),
                _ => None,
            };
            (part, s("member"), at, s("account"), d("balance").expect("required"), d("util"), s("kind"), state)
        })
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(got.len(), expected.len());
    assert_eq!(got, expected);

    // Every malformed line is in `rejected`, once, with its line number, raw text and a reason
    // that names the problem without quoting data.
    let rejected: Vec<Value> =
        pipe_tests::parts(&rj, "jsonl").lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    let mut got_bad: Vec<(usize, String)> = rejected
        .iter()
        .map(|r| {
            let pos = r["position"].as_str().expect("position");
            let line = pos.rsplit(':').next().and_then(|n| n.parse().ok()).expect("line number");
            let reason = r["reason"].as_str().expect("reason");
            assert!(reason.starts_with("applications: "), "{reason}");
            for data in ["yesterday", "lots", "m-0"] {
                assert!(!reason.contains(data), "the reason quotes data: {reason}");
            }
            (line, r["raw"].as_str().expect("raw").to_string())
        })
        .collect();
    got_bad.sort();
    assert_eq!(got_bad, bad_lines);

    // The counts reconcile, and match the data.
    let s = summary(&wh);
    let src = op(&s, "applications");
    assert_eq!(src["read"], input.lines().count());
    assert_eq!(src["rejected"], bad_lines.len());
    assert_eq!(src["written"], input.lines().count() - bad_lines.len());
    // `tradeline_rows` keeps rows by their balance (labeled): its counts are shown in steps of
    // 10, after the reconciliation ran on the exact ones.
    let map = op(&s, "tradeline_rows");
    let step = |n: usize| (n - n % 10) as u64;
    assert_eq!(map["coarsened"], true);
    assert_eq!(map["filtered"].as_u64(), Some(step(dropped)));
    assert_eq!(map["written"].as_u64(), Some(step(expected.len())));
    assert!((map["read"].as_i64().expect("n") + map["expanded"].as_i64().expect("n") - exploded).abs() < 20, "{map}");
    assert!(s["operators"].as_array().expect("ops").iter().all(|o| o["reconciled"] == true), "{s}");
    assert!(String::from_utf8_lossy(&res.stderr).contains("warehouse"), "the run prints its summary");
}

fn day_string(day: i64) -> String {
    // Civil date from days since the epoch (Howard Hinnant's algorithm), written here so the
    // test does not borrow the runtime's date code.
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[test]
fn lending_flattens_the_real_loans_into_partitions_with_the_expected_values() {
    let bin = build_pipeline(Path::new("examples/lending/pipeline.pipe"));
    let out = scratch("lending");
    let wh = out.join("loans");
    let res = run(
        &bin,
        &[
            "--sink",
            &format!("warehouse={}", wh.display()),
            "--sink",
            &format!("rejected->files={}", out.join("rejected").display()),
        ],
    );
    assert!(res.status.success(), "run failed: {}", String::from_utf8_lossy(&res.stderr));

    let mut reader = csv::Reader::from_path(repo_root().join("examples/lending/data/loans.csv")).expect("csv");
    let headers = reader.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect("column");
    let (id, inc, amt, grade, month, status, paid, state) = (
        col("rownames"),
        col("annual_income"),
        col("loan_amount"),
        col("grade"),
        col("issue_month"),
        col("loan_status"),
        col("paid_total"),
        col("state"),
    );
    let mut expected: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    let mut rows = BTreeMap::new();
    for rec in reader.records() {
        let rec = rec.expect("record");
        let amount: i64 = rec[amt].parse().expect("amount");
        let year = &rec[month][4..];
        let part = format!("issue_year={year}/grade={}", &rec[grade]);
        let e = expected.entry(part.clone()).or_default();
        e.0 += 1;
        e.1 += amount;
        let income: Option<f64> = rec[inc].parse().ok();
        let paid: f64 = rec[paid].parse().expect("paid");
        rows.insert(
            hmac_hex(KEY, &rec[id]),
            (
                part,
                income.map(|x| (x / 10_000.0).floor() * 10_000.0),
                rec[status].to_lowercase(),
                paid / amount as f64,
                rec[status] != *"Current" && rec[status] != *"Fully Paid",
                rec[state].to_string(),
            ),
        );
    }
    let got = read_parquet_dir(&wh);
    assert_eq!(got.len(), rows.len());
    let mut by_part: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for (part, c) in &got {
        let e = by_part.entry(part.clone()).or_default();
        e.0 += 1;
        let Cell::Int(a) = c["amount"] else { panic!("amount") };
        e.1 += a;
        let Cell::Str(loan) = &c["loan"] else { panic!("loan") };
        let want = rows.get(loan).unwrap_or_else(|| panic!("unexpected loan pseudonym {loan}"));
        assert_eq!(&want.0, part);
        let band = match c["income_band"] {
            Cell::Double(x) => Some(x),
            _ => None,
        };
        assert_eq!(band, want.1);
        assert_eq!(c["status"], Cell::Str(want.2.clone()));
        assert_eq!(c["paid_ratio"], Cell::Double(want.3));
        assert_eq!(c["delinquent"], Cell::Bool(want.4));
        assert_eq!(c["state"], Cell::Str(want.5.clone()));
        assert!(!c.contains_key("emp_title"), "the job title is not selected");
    }
    assert_eq!(by_part, expected);
    let s = summary(&wh);
    assert_eq!(op(&s, "loans")["read"], 10_000);
    assert_eq!(op(&s, "warehouse")["written"], 10_000);
}

#[test]
fn a_run_without_its_key_stops_before_writing_anything() {
    let bin = build_pipeline(Path::new("examples/partner_ingest/pipeline.pipe"));
    let out = scratch("no_key");
    let wh = out.join("warehouse");
    std::fs::create_dir_all(&wh).expect("dir");
    std::fs::write(wh.join("previous.parquet"), "an earlier run's output").expect("write");
    let res = Command::new(&bin)
        .args([
            "--sink",
            &format!("warehouse={}", wh.display()),
            "--sink",
            &format!("rejected->files={}", out.join("r").display()),
        ])
        .env_remove("PIPE_HMAC_KEY")
        .output()
        .expect("start");
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("PIPE_HMAC_KEY") && err.contains("--hmac-key-file"), "{err}");
    assert!(wh.join("previous.parquet").exists(), "the earlier output is untouched");
    assert!(!out.join("r").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("pipe-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directories left behind");

    // A successful run replaces the earlier output as a whole.
    let res = run(
        &bin,
        &[
            "--sink",
            &format!("warehouse={}", wh.display()),
            "--sink",
            &format!("rejected->files={}", out.join("r").display()),
        ],
    );
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(!wh.join("previous.parquet").exists());
    assert!(wh.join("_pipe_summary.json").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .filter(|e| !e.file_name().to_string_lossy().ends_with(".pipe-lock"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary directories left behind (the locks stay: {leftovers:?})");

    // Bad options are reported, not guessed at.
    let res = run(&bin, &["--sink", "nosuch=/tmp/x"]);
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("no sink `nosuch`"));
    // Two sinks in one directory would overwrite each other: refused before reading.
    let same = format!("{}", out.join("same").display());
    let res = run(&bin, &["--sink", &format!("warehouse={same}"), "--sink", &format!("rejected->files={same}")]);
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("both write to"), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(!out.join("same").exists());
}

#[test]
fn parquet_written_by_one_pipeline_is_read_by_another() {
    let lending = build_pipeline(Path::new("examples/lending/pipeline.pipe"));
    let reader = build_pipeline(Path::new("tests/cases/codegen/parquet_source/pipeline.pipe"));
    let out = scratch("parquet_source");
    let res = run(
        &lending,
        &[
            "--sink",
            &format!("warehouse={}", out.join("loans").display()),
            "--sink",
            &format!("rejected->files={}", out.join("rej").display()),
        ],
    );
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let res = run(
        &reader,
        &[
            "--source",
            &format!("loans={}/loans/**/*.parquet", out.display()),
            "--sink",
            &format!("grades->files={}", out.join("grades").display()),
        ],
    );
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));

    // Per grade from the original CSV: loans, total amount, delinquent loans, known incomes.
    let mut reader_csv = csv::Reader::from_path(repo_root().join("examples/lending/data/loans.csv")).expect("csv");
    let headers = reader_csv.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect("column");
    let (grade, amt, status, inc) = (col("grade"), col("loan_amount"), col("loan_status"), col("annual_income"));
    let mut want: BTreeMap<String, (i64, i64, i64, i64)> = BTreeMap::new();
    for rec in reader_csv.records() {
        let rec = rec.expect("record");
        let e = want.entry(rec[grade].to_string()).or_default();
        e.0 += 1;
        e.1 += rec[amt].parse::<i64>().expect("amount");
        e.2 += i64::from(&rec[status] != "Current" && &rec[status] != "Fully Paid");
        e.3 += i64::from(!rec[inc].is_empty());
    }
    // `k >= 2` releases a grade when two loans stand behind it and behind each count of a
    // nullable value: grade G has one delinquent loan, so it is not released.
    want.retain(|_, v| v.0 >= 2 && v.2 >= 2 && v.3 >= 2);
    // Without a `rejected` edge, rejected records go beside the first sink, where `--sink` put it.
    assert!(out.join("rejected/_pipe_summary.json").exists());
    assert!(!repo_root().join("tests/cases/codegen/parquet_source/out").exists());
    let text = pipe_tests::parts(&out.join("grades"), "csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("grade,n,total,delinquent,banded"));
    let got: BTreeMap<String, (i64, i64, i64, i64)> = lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let n = |i: usize| f[i].parse::<i64>().expect("number");
            (f[0].to_string(), (n(1), n(2), n(3), n(4)))
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn batch_scoring_writes_the_libraries_predictions_to_parquet() {
    let bin = build_pipeline(Path::new("examples/batch_scoring/pipeline.pipe"));
    let out = scratch("batch_scoring");
    let res = run(&bin, &["--sink", &format!("scored->parquet={}", out.join("scores").display())]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let mut reference =
        csv::Reader::from_path(repo_root().join("examples/batch_scoring/data/reference_predictions.csv")).expect("csv");
    let headers = reference.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect("column");
    let (id, lgb, xgb) = (col("id"), col("lgb_default"), col("xgb_default"));
    let want: BTreeMap<i64, (f64, f64)> = reference
        .records()
        .map(|r| {
            let r = r.expect("record");
            (r[id].parse().expect("id"), (r[lgb].parse().expect("lgb"), r[xgb].parse().expect("xgb")))
        })
        .collect();
    let rows = read_parquet_dir(&out.join("scores"));
    assert_eq!(rows.len(), want.len());
    for (part, c) in rows {
        let (Cell::Int(row_id), Cell::Double(p_lgb), Cell::Double(p_xgb), Cell::Int(grade)) =
            (&c["id"], &c["p_lgb"], &c["p_xgb"], &c["grade"])
        else {
            panic!("unexpected row {c:?}");
        };
        assert_eq!(part, format!("grade={grade}"));
        let (w_lgb, w_xgb) = want[row_id];
        assert!((p_lgb - w_lgb).abs() <= 1e-6, "row {row_id}: lightgbm {w_lgb}, pipe {p_lgb}");
        assert!((p_xgb - w_xgb).abs() <= 1e-6, "row {row_id}: xgboost {w_xgb}, pipe {p_xgb}");
        assert_eq!(c["disagree"], Cell::Bool((p_lgb - p_xgb).abs() > 0.1));
    }
}

#[test]
fn two_pipelines_of_one_name_never_share_a_build() {
    // Two `pipeline.pipe` files without a namespace, built one after the other and then run:
    // each runs its own code, and both stay cached.
    let root = scratch("same_name");
    for (dir, word) in [("a", "first"), ("b", "second")] {
        let d = root.join(dir);
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("s.thrift"), "struct R {\n  1: required string v\n}\n").expect("schema");
        std::fs::write(d.join("in.jsonl"), "{\"v\": \"x\"}\n").expect("input");
        std::fs::write(
            d.join("pipeline.pipe"),
            format!(
                "include \"s.thrift\"\nsource rows: R {{ batch = files(\"in.jsonl\", format = json) }}\nstream out = rows | select {{ v, w = \"{word}\" }}\nout -> files(\"out\", format = json)\n"
            ),
        )
        .expect("pipeline");
    }
    let cache = pipec::driver::Cache::from_env(pipec::driver::Profile::Default);
    let build = |dir: &str| {
        pipec::driver::build(&root.join(dir).join("pipeline.pipe"), pipec::Options::default(), &cache).expect("builds")
    };
    let (a, b) = (build("a"), build("b"));
    assert_ne!(a.krate.name, b.krate.name);
    assert!(a.binary.exists() && b.binary.exists(), "building one does not evict the other");
    for (dir, built, word) in [("a", &a, "first"), ("b", &b, "second")] {
        let res = Command::new(&built.binary).output().expect("run");
        assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
        let text = pipe_tests::parts(&root.join(dir).join("out"), "jsonl");
        assert_eq!(text.trim(), format!("{{\"v\":\"x\",\"w\":\"{word}\"}}"));
    }
}

/// Parquet page checksums are verified: pyarrow wrote both files with CRCs, and in
/// `corrupt.parquet` one bit of a data page is flipped. The good file reads; the corrupt one
/// fails the run naming the file, and no value (right or wrong) is published.
#[test]
fn a_corrupt_parquet_page_fails_the_run_naming_the_file() {
    let bin = build_pipeline(Path::new("tests/cases/codegen/parquet_crc/pipeline.pipe"));
    let case = repo_root().join("tests/cases/codegen/parquet_crc");
    let out = scratch("parquet_crc");
    let read = |file: &str, sink: &str| {
        run(
            &bin,
            &[
                "--source",
                &format!("readings={}", case.join(file).display()),
                "--sink",
                &format!("values->files={}", out.join(sink).display()),
            ],
        )
    };
    let good = read("good.parquet", "good");
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let mut rows: Vec<String> = pipe_tests::parts(&out.join("good"), "jsonl").lines().map(String::from).collect();
    rows.sort();
    assert_eq!(
        rows,
        [r#"{"id":"a","value":123456789}"#, r#"{"id":"b","value":222222222}"#, r#"{"id":"c","value":333333333}"#]
    );

    let bad = read("corrupt.parquet", "corrupt");
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "a corrupt page must fail the run:\n{stderr}");
    assert!(stderr.contains("corrupt.parquet") && stderr.contains("checksum"), "{stderr}");
    let written =
        if out.join("corrupt").exists() { pipe_tests::parts(&out.join("corrupt"), "jsonl") } else { String::new() };
    assert!(written.is_empty(), "nothing is published from a failed run: {written}");
}

/// Arrow IPC files: `accounts` (JSON Lines, every type a Thrift file declares) is written as
/// Arrow and read back as Arrow into the same JSON; `replayed` reads files pyarrow and Polars
/// wrote with other encodings (microsecond, second and zoned nanosecond timestamps, int32 enums
/// and strings, string views, categoricals, large lists and strings, null-typed columns, extra
/// columns, LZ4 compression); `spans` writes dates and durations. A file whose columns do not
/// fit the schema fails the run before a row is read.
#[test]
fn arrow_files_carry_every_type_and_read_what_pyarrow_and_polars_write() {
    use pipe_runtime::arrow::{read_ipc_file, DataType};
    let bin = build_pipeline(Path::new("tests/cases/codegen/arrow/pipeline.pipe"));
    let case = repo_root().join("tests/cases/codegen/arrow");
    let out = scratch("arrow");
    let sinks = |tag: &str| {
        [
            ("accounts->files", "arrow"),
            ("accounts->files#2", "direct"),
            ("spans->files", "spans"),
            ("replayed->files", "replayed"),
            ("just_ids->files", "ids"),
            ("rejected", "rejected"),
        ]
        .map(|(sink, dir)| format!("{sink}={}", out.join(tag).join(dir).display()))
    };
    let run_with = |replayed: &str, tag: &str| {
        let mut args = vec!["--source".to_string(), format!("replayed={replayed}")];
        for s in sinks(tag) {
            args.extend(["--sink".to_string(), s]);
        }
        run(&bin, &args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let res = run_with(&format!("{}/foreign/*.arrow", case.display()), "first");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let lines = |dir: &str| -> Vec<String> {
        let mut l: Vec<String> = pipe_tests::parts(&out.join(dir), "jsonl").lines().map(str::to_string).collect();
        l.sort();
        l
    };

    // Written as Arrow, read back as Arrow: the same rows as written straight to JSON.
    let res = run_with(&format!("{}/first/arrow/*.arrow", out.display()), "second");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let direct = lines("first/direct");
    assert_eq!(direct.len(), 3, "{direct:?}");
    assert_eq!(lines("second/replayed"), direct);

    // pyarrow's encodings, read as the schema's types.
    let rows: BTreeMap<String, Value> = lines("first/replayed")
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON"))
        .map(|v| (v["id"].as_str().expect("id").to_string(), v))
        .collect();
    assert_eq!(rows.keys().collect::<Vec<_>>(), ["p1", "p2", "p3", "q1", "q2"]);
    let p1 = &rows["p1"];
    assert_eq!(p1["opened"], "2023-11-14T22:13:20.000Z", "seconds");
    assert_eq!(p1["since"], "2023-11-15T00:00:00.000Z", "nanoseconds in Europe/Paris: the same instant");
    assert_eq!(p1["payments"][0]["at"], "2023-11-14T22:13:20.123Z", "microseconds, rounded down");
    assert_eq!(p1["payments"][1]["at"], "1969-12-31T23:59:58.500Z");
    assert_eq!(p1["payments"][1]["amount"], Value::Null);
    assert_eq!((&p1["grade"], &p1["previous"]), (&"A".into(), &"B".into()), "a string and an int32 enum");
    assert_eq!(p1["blob"], serde_json::json!([0, 1, 255]));
    assert_eq!(p1["limits"], serde_json::json!({"card": 5000, "loan": 0}));
    assert_eq!(p1["score"], 712.5, "float32");
    assert_eq!(rows["p2"]["visits"], 1, "a null where the field has a default takes the default");
    assert_eq!(rows["p2"]["codes"], Value::Null);
    assert_eq!(rows["p3"]["tags"], serde_json::json!(["ü"]));
    // Polars: string views, a categorical and an enum, a struct whose fields are all null.
    let q1 = &rows["q1"];
    assert_eq!(q1["opened"], "2024-01-01T12:00:00.000Z");
    assert_eq!((&q1["grade"], &q1["previous"]), (&"B".into(), &"A".into()));
    assert_eq!(q1["tags"], serde_json::json!(["x", "y"]));
    assert_eq!(q1["blob"], serde_json::json!([1]));
    assert_eq!(q1["payments"][0]["at"], "2024-01-01T00:00:00.000Z");
    assert_eq!(q1["limits"], Value::Null, "no map column: the optional field is null");
    assert_eq!(rows["q2"]["last"], serde_json::json!({"at": "2024-01-03T00:00:00.000Z", "amount": null, "note": null}));
    assert_eq!((&rows["q2"]["previous"], &rows["q2"]["visits"]), (&Value::Null, &1.into()));
    let rejected = lines("first/rejected");
    let p4: Vec<&String> = rejected.iter().filter(|l| l.contains(r#""source":"replayed""#)).collect();
    assert_eq!(p4.len(), 1, "{rejected:?}");
    assert_eq!(rejected.iter().filter(|l| l.contains(r#""source":"ids""#)).count(), 1, "{rejected:?}");
    let p4: Value = serde_json::from_str(p4[0]).expect("JSON");
    assert_eq!(p4["reason"], "replayed: field `opened`: null, but the schema requires a value");
    assert!(p4["position"].as_str().is_some_and(|p| p.ends_with("foreign/pyarrow.arrow@3")), "{p4}");
    assert!(p4["raw"].as_str().is_some_and(|r| r.contains(r#""id":"p4""#)), "{p4}");

    // Where only `id` is read, the other fields are still checked, and a null where a field has
    // a default takes it: the same rows pass (p4, without `opened`, is rejected again).
    let ids = pipe_tests::parts(&out.join("first/ids"), "csv");
    let mut ids: Vec<&str> = ids.lines().collect();
    ids.sort_unstable();
    assert_eq!(ids, ["id", "p1", "p2", "p3", "q1", "q2"]);

    // Dates, durations and enums in the Arrow types a reader expects.
    let spans = std::fs::read_dir(out.join("first/spans"))
        .expect("spans")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "arrow"))
        .expect("an Arrow file");
    let mut batches = Vec::new();
    let schema = read_ipc_file(std::fs::read(&spans).expect("read"), |_, b| batches.push(b.clone())).expect("IPC");
    let types: Vec<(String, DataType, bool)> =
        schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable())).collect();
    use pipe_runtime::arrow::TimeUnit;
    assert_eq!(types[1], ("day".into(), DataType::Date32, false));
    assert_eq!(types[2], ("open_for".into(), DataType::Duration(TimeUnit::Millisecond), false));
    assert_eq!(types[3], ("closed_after".into(), DataType::Duration(TimeUnit::Millisecond), true));
    assert_eq!(types[4], ("grade".into(), DataType::Utf8, false));
    let mut values: Vec<Value> =
        batches.iter().flat_map(|b| pipe_runtime::arrow::from_batch::<Value>(b, None).expect("rows")).collect();
    values.sort_by_key(|v| v["id"].as_str().map(str::to_string));
    // a1: opened 2023-11-14T22:13:20Z (day 19675), since the next midnight: 6,400 s later.
    assert_eq!(
        values[0],
        serde_json::json!({"id": "a1", "day": 19675, "open_for": 6_400_000, "closed_after": 86_400_000, "grade": "A"})
    );
    assert_eq!(values[1]["closed_after"], Value::Null);

    // pyarrow reads what Pipe writes, when it is installed.
    let script = format!(
        "import pyarrow.ipc as i; t = i.open_file('{}').read_all(); print(t.schema.field('since').type, t.schema.field('grade').type, t.num_rows)",
        std::fs::read_dir(out.join("first/arrow")).expect("arrow").flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "arrow")).expect("a file").display()
    );
    let check = Command::new("python3").args(["-c", &script]).output();
    let skipped = match check {
        Ok(o) if o.status.success() => {
            let seen = String::from_utf8_lossy(&o.stdout).trim().to_string();
            assert_eq!(seen, "timestamp[ms, tz=UTC] string 3");
            None
        }
        Ok(o) => Some(String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or("").to_string()),
        Err(e) => Some(format!("no python3 ({e})")),
    };
    if let Some(why) = skipped {
        #[allow(clippy::print_stderr, reason = "why the reference check did nothing")]
        {
            eprintln!("skipped the pyarrow check: {why}");
        }
    }

    // pyarrow's Feather file (the same table, LZ4-compressed) reads to the same rows; ZSTD is
    // refused naming the file.
    let res = run_with(&format!("{}/compressed/feather.arrow", case.display()), "lz4");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let from_pyarrow: Vec<String> = lines("first/replayed").into_iter().filter(|l| l.contains(r#""id":"p"#)).collect();
    assert_eq!(lines("lz4/replayed"), from_pyarrow);
    let res = run_with(&format!("{}/compressed/zstd.arrow", case.display()), "zstd");
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("zstd.arrow") && stderr.contains("zstd"), "{stderr}");

    // A file with a string `rate` stops the run before a row is read; the output stays.
    let res = run_with(&format!("{}/wrong/*.arrow", case.display()), "first");
    assert!(!res.status.success());
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.contains("column `rate` is Utf8, which cannot be read as the schema's Float64"), "{stderr}");
    assert!(stderr.contains("wrong/accounts.arrow"), "{stderr}");
    assert_eq!(lines("first/direct"), direct);
}

/// The rows of every `.jsonl` file under `dir`, sorted (parts per worker come in any order).
fn jsonl_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "jsonl") {
            rows.extend(std::fs::read_to_string(&p).expect("part").lines().map(str::to_string));
        }
    }
    rows.sort();
    rows
}

#[test]
fn lookup_and_as_of_joins_write_the_same_rows_in_batch_and_stream_at_every_worker_count() {
    let bin = build_pipeline(Path::new("tests/cases/codegen/join/pipeline.pipe"));
    let out = scratch("join");
    let inner = [
        r#"{"app_id":"a1","amount":1200.5,"state":"CA","income":85000.0,"products":["card"]}"#,
        r#"{"app_id":"a2","amount":300.0,"state":"TX","income":null,"products":null}"#,
        r#"{"app_id":"a4","amount":999.0,"state":"NJ","income":64000.0,"products":null}"#,
        r#"{"app_id":"a4","amount":999.0,"state":"NY","income":61000.0,"products":[]}"#,
        r#"{"app_id":"a5","amount":10.0,"state":"CA","income":85000.0,"products":["card"]}"#,
    ];
    let left = [
        r#"{"app_id":"a1","state":"CA","has_income":true}"#,
        r#"{"app_id":"a2","state":"TX","has_income":false}"#,
        r#"{"app_id":"a3","state":null,"has_income":false}"#,
        r#"{"app_id":"a4","state":"NJ","has_income":true}"#,
        r#"{"app_id":"a4","state":"NY","has_income":true}"#,
        r#"{"app_id":"a5","state":"CA","has_income":true}"#,
    ];
    let scored = [
        r#"{"app_id":"a1","score":700}"#,
        r#"{"app_id":"a2","score":null}"#,
        r#"{"app_id":"a3","score":null}"#,
        r#"{"app_id":"a4","score":620}"#,
        r#"{"app_id":"a5","score":710}"#,
    ];
    for (tag, extra) in [
        ("batch1", vec!["--workers", "1"]),
        ("batch2", vec!["--workers", "2"]),
        ("stream2", vec!["--mode", "stream", "--workers", "2", "--exit-when-idle", "1s"]),
    ] {
        let dir = out.join(tag);
        let sink = |name: &str, sub: &str| format!("{name}={}", dir.join(sub).display());
        let (a, b, c) =
            (sink("profiles", "enriched"), sink("all_apps->files", "all"), sink("rejected->files", "rejected"));
        let d = sink("scored->files", "scored");
        let (e, f) = (sink("per_state->files", "per_state"), sink("overall->files", "overall"));
        let mut args =
            vec!["--quiet", "--sink", &a, "--sink", &b, "--sink", &c, "--sink", &d, "--sink", &e, "--sink", &f];
        args.extend(extra);
        let res = run(&bin, &args);
        assert!(res.status.success(), "{tag}: {}", String::from_utf8_lossy(&res.stderr));
        assert_eq!(jsonl_rows(&dir.join("enriched")), inner, "{tag}: the inner join");
        assert_eq!(jsonl_rows(&dir.join("all")), left, "{tag}: the left join");
        // As of each application's time: m1's score changed between a1 and a5 (and again after
        // a5, unseen), m2's is older than 30 days, m3's two versions of one instant are
        // ordered by revision.
        assert_eq!(jsonl_rows(&dir.join("scored")), scored, "{tag}: the as-of join");
        // `k >= 2` behind the join: California's two applications met one member record.
        assert_eq!(jsonl_rows(&dir.join("per_state")), Vec::<String>::new(), "{tag}: k counts both sides");
        assert_eq!(
            jsonl_rows(&dir.join("overall")),
            [r#"{"apps":5,"total":3508.5,"income":73750.0}"#],
            "{tag}: four records of each side"
        );
        let rejected = jsonl_rows(&dir.join("rejected"));
        assert_eq!(rejected.len(), 1, "{tag}: {rejected:?}");
        assert!(
            rejected[0].contains("members.jsonl:5") && rejected[0].contains("field `income`"),
            "{tag}: {}",
            rejected[0]
        );
    }
}

#[test]
fn the_point_in_time_training_set_has_each_loans_features_as_of_its_month_in_batch_and_stream() {
    let features = build_pipeline(Path::new("examples/point_in_time/features.pipe"));
    let training = build_pipeline(Path::new("examples/point_in_time/training.pipe"));
    let out = scratch("point_in_time");
    let table = out.join("state_features");
    let res = run(
        &features,
        &[
            "--quiet",
            "--sink",
            &format!("monthly->files={}", table.display()),
            "--sink",
            &format!("rejected->files={}", out.join("rejected_features").display()),
        ],
    );
    assert!(res.status.success(), "features: {}", String::from_utf8_lossy(&res.stderr));
    let source = format!("state_features={}/*.jsonl", table.display());
    let mut written = Vec::new();
    for (tag, extra) in [
        ("batch", vec!["--workers", "2"]),
        ("stream", vec!["--mode", "stream", "--workers", "2", "--exit-when-idle", "1s"]),
    ] {
        let (sink, rejected) = (
            format!("training->files={}", out.join(tag).display()),
            format!("rejected->files={}", out.join(format!("rejected_{tag}")).display()),
        );
        let mut args = vec!["--quiet", "--source", &source, "--sink", &sink, "--sink", &rejected];
        args.extend(extra);
        let res = run(&training, &args);
        assert!(res.status.success(), "{tag}: {}", String::from_utf8_lossy(&res.stderr));
        written.push(jsonl_rows(&out.join(tag)));
    }
    assert_eq!(written[0].len(), 10_000, "one training row per loan");
    assert!(written[0] == written[1], "the backfill and the stream wrote different rows");

    // What the features must be, from the CSV alone: per state and month, the loans issued and
    // their mean rate (months with fewer than 10 loans are suppressed); each loan gets the
    // previous month's figures of its state.
    let mut reader =
        csv::Reader::from_path(repo_root().join("examples/point_in_time/data/loans.csv")).expect("loans.csv");
    let mut loans: BTreeMap<i64, (String, String)> = BTreeMap::new();
    let mut months: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for r in reader.records() {
        let r = r.expect("row");
        let (id, state, rate, issued) = (r[0].parse::<i64>().expect("id"), &r[1], &r[4], &r[6]);
        loans.insert(id, (state.to_string(), issued.to_string()));
        if !state.is_empty() {
            months.entry((state.to_string(), issued.to_string())).or_default().push(rate.parse().expect("rate"));
        }
    }
    let previous = |issued: &str| match issued {
        "2018-02-01" => Some("2018-01-01"),
        "2018-03-01" => Some("2018-02-01"),
        _ => None,
    };
    let (mut with, mut without) = (0, 0);
    for line in &written[0] {
        let v: Value = serde_json::from_str(line).expect("json");
        let (state, issued) = &loans[&v["loan_id"].as_i64().expect("loan_id")];
        let expected = previous(issued)
            .and_then(|m| months.get(&(state.clone(), m.to_string())))
            .filter(|rates| rates.len() >= 10);
        match expected {
            Some(rates) => {
                with += 1;
                assert_eq!(v["state_loans"].as_u64(), Some(rates.len() as u64), "{line}");
                let mean = rates.iter().sum::<f64>() / rates.len() as f64;
                let got = v["state_avg_rate"].as_f64().expect("avg_rate");
                assert!((got - mean).abs() <= 1e-9 * mean, "{line}: mean rate {mean}");
                assert!(v["features_from"].as_str().is_some_and(|s| s.starts_with(previous(issued).unwrap_or("-"))));
            }
            None => {
                without += 1;
                assert!(v["state_loans"].is_null() && v["state_avg_rate"].is_null(), "{line}");
            }
        }
    }
    // January's loans, and those of states with few loans the month before, have none.
    assert!(with > 6000 && without > 3395, "{with} with features, {without} without");
}
