//! Data validation: `pipec profile` writes the baseline this test computes on its own (and the
//! committed one, byte for byte), with the labeled income's distribution withheld; `expect`
//! checks pass on the feed and publish it; a feed whose states drift fails with exit code 4,
//! names the check and publishes nothing; a `warn` check reports and lets the run publish; a
//! stream checks each minute; `drift` equals the Jensen–Shannon divergence and L-infinity
//! distance computed here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pipe_tests::{build_pipeline, repo_root, scratch, sink_rows};
use serde_json::Value;

const CASE: &str = "tests/cases/stream/validation";

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read rows")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect()
}

fn write_rows(path: &Path, rows: &[Value]) {
    let text: String = rows.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(path, text).expect("write rows");
}

/// NumPy's default percentile: linear between the two nearest ranks.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (h - lo as f64)
}

/// The Jensen–Shannon divergence in bits between two weight vectors, from its definition.
fn jensen_shannon(p: &[f64], q: &[f64]) -> f64 {
    let (sp, sq): (f64, f64) = (p.iter().sum(), q.iter().sum());
    let mut d = 0.0;
    for (a, b) in p.iter().zip(q) {
        let (a, b) = (a / sp, b / sq);
        let m = (a + b) / 2.0;
        if a > 0.0 {
            d += 0.5 * a * (a / m).log2();
        }
        if b > 0.0 {
            d += 0.5 * b * (b / m).log2();
        }
    }
    d
}

fn numbers(rows: &[Value], field: &str) -> Vec<f64> {
    rows.iter().filter_map(|r| r[field].as_f64()).collect()
}

/// The drift of numbers `v` from a profiled field: their shares in its buckets against its own.
fn number_drift(profile: &Value, v: &[f64]) -> f64 {
    let edges: Vec<f64> =
        profile["numbers"]["edges"].as_array().expect("edges").iter().filter_map(Value::as_f64).collect();
    let base: Vec<f64> =
        profile["numbers"]["shares"].as_array().expect("shares").iter().filter_map(Value::as_f64).collect();
    let mut counts = vec![0.0; edges.len() + 1];
    for x in v {
        counts[edges.iter().filter(|e| **e <= *x).count()] += 1.0;
    }
    jensen_shannon(&counts, &base)
}

/// The drift of strings `v`: the largest difference of a frequent value's share (or the rest's).
fn string_drift(profile: &Value, v: &[&str]) -> f64 {
    let s = &profile["strings"];
    let top: Vec<(String, f64)> = s["top"]
        .as_array()
        .expect("top")
        .iter()
        .map(|p| (p[0].as_str().expect("value").to_string(), p[1].as_f64().expect("count")))
        .collect();
    let total = top.iter().map(|(_, n)| n).sum::<f64>() + s["other"].as_f64().expect("other");
    let n = v.len() as f64;
    let mut worst: f64 = 0.0;
    let mut known = 0.0;
    for (value, count) in &top {
        let here = v.iter().filter(|x| *x == value).count() as f64;
        known += here;
        worst = worst.max((here / n - count / total).abs());
    }
    worst.max(((n - known) / n - s["other"].as_f64().expect("other") / total).abs())
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-12, "{what}: {got}, expected {want}");
}

struct Case {
    dir: PathBuf,
    bin: PathBuf,
}

impl Case {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin).current_dir(&self.dir).args(args).output().expect("run")
    }

    /// A batch run over `input` (a file in the case folder), with its summary.
    fn batch(&self, input: &str) -> (Output, Value) {
        let summary = self.dir.join(format!("{input}.summary.json"));
        let out = self.run(&[
            "--quiet",
            "--source",
            &format!("applicants={}", self.dir.join(input).display()),
            "--summary",
            &summary.display().to_string(),
        ]);
        let s = std::fs::read_to_string(&summary).map_or(Value::Null, |t| serde_json::from_str(&t).expect("JSON"));
        (out, s)
    }
}

/// `evaluated` and `failed` of check `name` in a run's summary.
fn tally(summary: &Value, name: &str) -> (i64, i64) {
    let checks = summary["checks"].as_object().expect("checks");
    let (_, t) = checks
        .iter()
        .find(|(k, _)| k.contains(&format!("({name})")))
        .unwrap_or_else(|| panic!("no check {name} in {checks:?}"));
    (t["evaluated"].as_i64().expect("evaluated"), t["failed"].as_i64().expect("failed"))
}

#[test]
fn a_feed_is_checked_against_the_profile_of_its_training_data() {
    let dir = scratch("validation");
    for f in ["applicants.thrift", "pipeline.pipe", "train.jsonl", "score.jsonl", "pipeline.profile.json"] {
        std::fs::copy(repo_root().join(CASE).join(f), dir.join(f)).expect("copy the case");
    }
    let program = dir.join("pipeline.pipe");
    let committed = std::fs::read_to_string(dir.join("pipeline.profile.json")).expect("the committed profile");
    std::fs::remove_file(dir.join("pipeline.profile.json")).expect("remove");

    // Without a profile every `drift` is an error naming the command.
    let loader = pipec::fs_loader::FsLoader::new(".");
    let checked = pipec::check_program(&loader, &program).expect("loads");
    let e2029: Vec<_> = checked.diagnostics.iter().filter(|d| d.code.as_str() == "E2029").collect();
    assert_eq!(e2029.len(), 7, "{:?}", checked.diagnostics);
    assert!(e2029.iter().all(|d| d.help.as_deref().is_some_and(|h| h.contains("pipec profile"))));

    // Profiling writes what was committed.
    let cache = pipec::driver::Cache::from_env(pipec::driver::Profile::Default);
    let report = pipec::driver::profile(&program, pipec::Options::default(), &cache).expect("profiles");
    assert_eq!(report.sources, vec![("applicants".to_string(), "fit".to_string(), 2000, 0)]);
    let written = std::fs::read_to_string(dir.join("pipeline.profile.json")).expect("written");
    let profile: Value = serde_json::from_str(&written).expect("JSON");
    let want: Value = serde_json::from_str(&committed).expect("JSON");
    assert_eq!(profile["sources"], want["sources"], "profiling again gives the committed profile");

    // The profile, from the training rows.
    let train = rows(&dir.join("train.jsonl"));
    let fields = &profile["sources"]["applicants"]["fields"];
    let mut amount = numbers(&train, "amount");
    amount.sort_by(f64::total_cmp);
    let quantiles: Vec<f64> = (0..=10).map(|i| percentile(&amount, f64::from(i) / 10.0)).collect();
    let got: Vec<f64> =
        fields["amount"]["numbers"]["quantiles"].as_array().expect("q").iter().filter_map(Value::as_f64).collect();
    assert_eq!(got, quantiles);
    let nulls = train.iter().filter(|r| r["amount"].is_null()).count();
    assert_eq!(fields["amount"]["nulls"].as_u64(), Some(nulls as u64));
    close(number_drift(&fields["amount"], &amount), 0.0, "the training data does not drift from itself");
    let mut states: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &train {
        if let Some(s) = r["state"].as_str() {
            *states.entry(s).or_default() += 1;
        }
    }
    let mut by_count: Vec<(u64, &str)> = states.iter().map(|(s, n)| (*n, *s)).collect();
    by_count.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    assert_eq!(fields["state"]["strings"]["top"][0], serde_json::json!([by_count[0].1, by_count[0].0]));
    assert_eq!(fields["state"]["strings"]["distinct"].as_u64(), Some(states.len() as u64));
    // The income is labeled and cleared only as an aggregate of at least 100 rows: its counts
    // are in the profile, its values are not.
    let income = &fields["income"];
    assert_eq!(income["count"].as_u64(), Some(numbers(&train, "income").len() as u64));
    assert!(
        income.get("numbers").is_none()
            && income["withheld"].as_str().is_some_and(|w| w.contains("user.financial.income"))
    );
    let text = std::fs::read_to_string(&program).expect("program");
    std::fs::write(&program, text.replace("amount_drift = drift(amount)", "amount_drift = drift(income)"))
        .expect("edit");
    let checked = pipec::check_program(&loader, &program).expect("loads");
    let refused: Vec<&str> =
        checked.diagnostics.iter().filter(|d| d.code.as_str() == "E2029").map(|d| d.message.as_str()).collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("`applicants.income` has no distribution"), "{}", refused[0]);
    std::fs::write(&program, &text).expect("restore");

    // The feed passes: every check held once per day (the per-minute ones once per minute with
    // at least 10 rows), the features are published, the distances are the ones computed here.
    let case = Case { bin: build_pipeline(&program), dir: dir.clone() };
    let (out, summary) = case.batch("score.jsonl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let score = rows(&dir.join("score.jsonl"));
    assert_eq!(tally(&summary, "state_drift"), (1, 0));
    let mut minutes: BTreeMap<i64, i64> = BTreeMap::new();
    for r in &score {
        *minutes.entry(r["at"].as_i64().expect("at") / 60_000).or_default() += 1;
    }
    let full = minutes.values().filter(|n| **n >= 10).count() as i64;
    let short = minutes.values().filter(|n| (10..30).contains(*n)).count() as i64;
    assert!(short >= 1, "the last minute of the feed is short");
    assert_eq!(tally(&summary, "rows"), (full, short), "each minute of at least 10 rows is checked once");
    let published = sink_rows(&dir.join("out/features"));
    assert_eq!(published.len(), score.len());
    let drift: Value = serde_json::from_str(&sink_rows(&dir.join("out/drift"))[0]).expect("row");
    let score_states: Vec<&str> = score.iter().filter_map(|r| r["state"].as_str()).collect();
    close(drift["state"].as_f64().expect("state"), string_drift(&fields["state"], &score_states), "drift(state)");
    close(
        drift["amount"].as_f64().expect("amount"),
        number_drift(&fields["amount"], &numbers(&score, "amount")),
        "drift(amount)",
    );
    close(drift["dti"].as_f64().expect("dti"), number_drift(&fields["dti"], &numbers(&score, "dti")), "drift(dti)");

    // A feed where a third of the applicants moved to Nevada: the state check fails, the run
    // exits with 4, names it, and publishes nothing (the first run's output stays).
    let moved: Vec<Value> = score
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut r = r.clone();
            if i % 3 == 0 {
                r["state"] = Value::from("NV");
            }
            r
        })
        .collect();
    write_rows(&dir.join("moved.jsonl"), &moved);
    let (out, summary) = case.batch("moved.jsonl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("1 expectation failed; nothing was published")
            && stderr.contains("`drift(state) < 0.1` (state_drift) in stream `quality`: failed 1 of 1 time"),
        "{stderr}"
    );
    assert_eq!(tally(&summary, "state_drift"), (1, 1), "the JSON report has it too");
    assert_eq!(tally(&summary, "amount_drift"), (1, 0));
    assert_eq!(sink_rows(&dir.join("out/features")), published, "a failed check leaves the previous output");

    // An empty feed reaches no check: the blocking ones fail, and nothing is published.
    std::fs::write(dir.join("empty.jsonl"), "").expect("empty");
    let (out, summary) = case.batch("empty.jsonl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("(state_drift) in stream `quality`: never evaluated (no rows reached it)"), "{stderr}");
    assert_eq!(tally(&summary, "amount_range"), (0, 0));
    assert_eq!(sink_rows(&dir.join("out/features")), published, "an empty feed publishes nothing");

    // Debt-to-income ratios a third higher: only `warn` checks break; the run publishes.
    let higher: Vec<Value> = score
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(x) = r["dti"].as_f64() {
                r["dti"] = Value::from(x * 1.33);
            }
            r
        })
        .collect();
    write_rows(&dir.join("higher.jsonl"), &higher);
    let (out, summary) = case.batch("higher.jsonl");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(tally(&summary, "dti_drift"), (1, 1));
    assert!(tally(&summary, "dti_shift").1 >= 1);

    // A stream checks each minute as it closes; the drifted states stop it with exit code 4.
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live");
    for (k, chunk) in score.chunks(100).enumerate() {
        write_rows(&live.join(format!("part-{k}.jsonl")), chunk);
    }
    // (`--reset`: the second stream starts over where the first published.)
    let stream = |summary: &str| {
        let s = dir.join(summary);
        let out = case.run(&[
            "--reset",
            "--mode",
            "stream",
            "--quiet",
            "--exit-when-idle",
            "500ms",
            "--workers",
            "2",
            "--source",
            &format!("applicants={}/*.jsonl", live.display()),
            "--summary",
            &s.display().to_string(),
        ]);
        let v = std::fs::read_to_string(&s).map_or(Value::Null, |t| serde_json::from_str(&t).expect("JSON"));
        (out, v)
    };
    let (out, summary) = stream("stream.json");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(tally(&summary, "rows"), (full, short), "a stream checks the minutes a backfill checks");
    std::fs::remove_dir_all(&live).expect("clear");
    std::fs::create_dir_all(&live).expect("live");
    write_rows(&live.join("moved.jsonl"), &moved);
    let (out, _) = stream("stream-moved.json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("(state_drift) in stream `quality`"), "{stderr}");
}

/// A CSV file's rows as maps from column to text.
fn csv_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut reader = csv::Reader::from_path(path).expect("csv");
    let headers = reader.headers().expect("header").clone();
    reader
        .records()
        .map(|r| {
            let r = r.expect("record");
            headers.iter().zip(r.iter()).map(|(h, v)| (h.to_string(), v.to_string())).collect()
        })
        .collect()
}

fn column(rows: &[BTreeMap<String, String>], name: &str) -> Vec<f64> {
    rows.iter().filter_map(|r| r[name].parse::<f64>().ok()).collect()
}

/// The example on the real loans: fitting and profiling January and February give the committed
/// artifacts; March's features are the training data's standardization and vocabularies, the
/// same in a backfill and in a stream; the per-grade metrics count every grade with at least 10
/// loans; March with its debt-to-income ratios shifted fails validation, naming the check, and
/// publishes nothing.
#[test]
fn the_ml_steps_example_fits_validates_and_scores_the_real_loans() {
    const KEY: &str = "a-test-key-of-at-least-16-bytes";
    let example = repo_root().join("examples/ml_steps");
    // The example and what it reads, copied as they lie (fitting and profiling write beside
    // the program; the fingerprints cover the bindings' paths, so they stay the same).
    let dir = scratch("ml_steps/example");
    std::fs::create_dir_all(dir.join("schemas")).expect("schemas");
    std::fs::create_dir_all(dir.join("data")).expect("data");
    let models = dir.join("../batch_scoring/models");
    std::fs::create_dir_all(&models).expect("models");
    std::fs::copy(repo_root().join("examples/batch_scoring/models/lgb_default.txt"), models.join("lgb_default.txt"))
        .expect("copy the model");
    for f in [
        "pipeline.pipe",
        "pipeline.fit.json",
        "pipeline.profile.json",
        "schemas/loans.thrift",
        "data/train.csv",
        "data/score.csv",
        "data/drifted.csv",
    ] {
        std::fs::copy(example.join(f), dir.join(f)).expect("copy the example");
    }
    let program = dir.join("pipeline.pipe");
    let cache = pipec::driver::Cache::from_env(pipec::driver::Profile::Default);
    for (run, file) in [("fit", "pipeline.fit.json"), ("profile", "pipeline.profile.json")] {
        let committed: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect("committed")).expect("JSON");
        std::fs::remove_file(dir.join(file)).expect("remove");
        match run {
            "fit" => drop(pipec::driver::fit(&program, pipec::Options::default(), &cache).expect("fits")),
            _ => drop(pipec::driver::profile(&program, pipec::Options::default(), &cache).expect("profiles")),
        }
        let again: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).expect("written")).expect("JSON");
        let part = if run == "fit" { "transforms" } else { "sources" };
        assert_eq!(again[part], committed[part], "{run} gives the committed {file}");
    }

    let bin = build_pipeline(&program);
    let run = |args: &[String]| {
        Command::new(&bin).current_dir(&dir).args(args).env("PIPE_HMAC_KEY", KEY).output().expect("run")
    };
    let out = run(&["--quiet".to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let features = sink_rows(&dir.join("out/features"));
    let train = csv_rows(&example.join("data/train.csv"));
    let march = csv_rows(&example.join("data/score.csv"));
    assert_eq!(features.len(), march.len());
    let income = column(&train, "annual_income");
    let mean = income.iter().sum::<f64>() / income.len() as f64;
    let std = (income.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / income.len() as f64).sqrt();
    let mut grades: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &train {
        *grades.entry(r["grade"].as_str()).or_default() -= 1;
    }
    let mut order: Vec<(i64, &str)> = grades.iter().map(|(g, n)| (*n, *g)).collect();
    order.sort();
    let by_loan: BTreeMap<String, Value> = features
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("row");
            (v["loan"].as_str().expect("loan").to_string(), v)
        })
        .collect();
    for r in &march {
        let f = &by_loan[&pipe_tests::hmac_hex(KEY, &r["rownames"])];
        let x: f64 = r["annual_income"].parse().expect("every March loan has an income");
        assert!((f["income_z"].as_f64().expect("income_z") - (x - mean) / std).abs() < 1e-9, "{r:?}");
        let ix = order.iter().position(|(_, g)| *g == r["grade"]).unwrap_or(7) as i64;
        assert_eq!(f["grade_ix"].as_i64(), Some(ix), "{r:?}");
    }
    let by_grade: Vec<Value> =
        sink_rows(&dir.join("out/by_grade")).iter().map(|l| serde_json::from_str(l).expect("row")).collect();
    let mut march_grades: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &march {
        *march_grades.entry(r["grade"].as_str()).or_default() += 1;
    }
    let reported: BTreeMap<String, i64> = by_grade
        .iter()
        .map(|g| (g["grade"].as_str().expect("grade").to_string(), g["count"].as_i64().expect("count")))
        .collect();
    let want: BTreeMap<String, i64> =
        march_grades.iter().filter(|(_, n)| **n >= 10).map(|(g, n)| (g.to_string(), *n)).collect();
    assert_eq!(reported, want, "a row per grade of at least 10 loans (k >= 10)");

    // A stream of the same file in parts gives the same features.
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live");
    let score = std::fs::read_to_string(example.join("data/score.csv")).expect("score");
    let mut lines = score.lines();
    let header = lines.next().expect("header");
    let body: Vec<&str> = lines.collect();
    for (k, chunk) in body.chunks(1000).enumerate() {
        std::fs::write(live.join(format!("part-{k}.csv")), format!("{header}\n{}\n", chunk.join("\n"))).expect("part");
    }
    let streamed = dir.join("streamed");
    let out = run(&[
        "--mode".into(),
        "stream".into(),
        "--quiet".into(),
        "--exit-when-idle".into(),
        "500ms".into(),
        "--sink".into(),
        format!("features->files={}", streamed.display()),
        "--sink".into(),
        format!("by_grade->files={}", dir.join("streamed_by_grade").display()),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(sink_rows(&streamed), features, "a stream computes the features a backfill does");

    // March with every debt-to-income ratio 8 points higher fails the drift check.
    let out =
        run(&["--quiet".into(), "--source".into(), format!("loans={}", example.join("data/drifted.csv").display())]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("`drift(debt_to_income) < 0.05` (dti_drift) in stream `feed_checks`: failed 1 of 1 time"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("(income_drift) in stream `feed_checks`: failed"),
        "only the shifted column drifts: {stderr}"
    );
    assert_eq!(sink_rows(&dir.join("out/features")), features, "nothing was published");
}
