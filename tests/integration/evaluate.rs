//! Model metrics and refresh gates (`metrics`, `auc`, `log_loss`, `accuracy`,
//! `quantile_means`, `require`) on random predictions with tied scores and missing values: the
//! values against what this test computes with nested loops (and scikit-learn's, when Python
//! has it), a backfill against a stream per window, and a broken requirement that fails the
//! run with exit code 3 and publishes nothing.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output};

use pipe_tests::{build_pipeline, scratch, sink_rows};
use serde_json::Value;

/// A minute-aligned start: ten-minute windows begin here.
const START: i64 = 1_700_000_400_000;

/// One prediction: segment, score (rounded to 2 decimals, so many tie), label, time.
#[derive(Clone, Debug)]
struct Pred {
    seg: &'static str,
    p: Option<f64>,
    y: Option<bool>,
    at: i64,
}

/// Predictions of a model that ranks segment `a` well, `b` fairly and `c` with skill `c_skill`
/// (negative: worse than chance); about 3% of scores and labels are missing. Times rise over an
/// hour and arrive up to 50 s out of order (within the 1-minute watermark bound).
fn predictions(seed: u64, n: usize, c_skill: f64) -> Vec<Pred> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            let seg = ["a", "b", "c"][(next() * 3.0) as usize % 3];
            let skill = match seg {
                "a" => 2.0,
                "b" => 0.8,
                _ => c_skill,
            };
            let y = next() < 0.3;
            let z = skill * if y { 1.0 } else { -1.0 } + 1.5 * (next() + next() + next() - 1.5) - 0.8;
            let p = ((1.0 / (1.0 + (-z).exp())) * 100.0).round() / 100.0;
            let at = START + (i as i64 * 3_600_000 / n as i64) + ((next() * 100_000.0) as i64 - 50_000);
            Pred { seg, p: (next() >= 0.03).then_some(p), y: (next() >= 0.03).then_some(y), at }
        })
        .collect()
}

fn json_lines(preds: &[Pred]) -> Vec<String> {
    preds.iter().map(|r| serde_json::json!({"seg": r.seg, "p": r.p, "y": r.y, "at": r.at}).to_string()).collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).expect("create input");
    for l in lines {
        writeln!(f, "{l}").expect("write input");
    }
}

/// What the test expects of a segment's rows with a score and a label, computed plainly: the
/// AUC over every (positive, negative) pair, the calibration bins from the sorted scores.
#[derive(Debug)]
struct Expected {
    count: i64,
    positives: i64,
    mean_prediction: f64,
    mean_label: f64,
    auc: Option<f64>,
    log_loss: f64,
    accuracy: f64,
    calibration: (Vec<f64>, Vec<f64>),
}

fn expected(rows: &[(f64, bool)], threshold: f64, bins: usize) -> Expected {
    let n = rows.len() as f64;
    let pos: Vec<f64> = rows.iter().filter(|r| r.1).map(|r| r.0).collect();
    let neg: Vec<f64> = rows.iter().filter(|r| !r.1).map(|r| r.0).collect();
    let mut wins = 0.0;
    for p in &pos {
        for q in &neg {
            wins += if p > q {
                1.0
            } else if p == q {
                0.5
            } else {
                0.0
            };
        }
    }
    let eps = f64::EPSILON;
    let loss: f64 = rows.iter().map(|&(p, y)| -(if y { p.max(eps) } else { (1.0 - p).max(eps) }).ln()).sum();
    let right = rows.iter().filter(|&&(p, y)| (p > threshold) == y).count() as f64;
    let mut sorted: Vec<f64> = rows.iter().map(|r| r.0).collect();
    sorted.sort_by(f64::total_cmp);
    let edge = |q: f64| {
        let h = (sorted.len() - 1) as f64 * q;
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(sorted.len() - 1);
        sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
    };
    let edges: Vec<f64> = (1..bins).map(|i| edge(i as f64 / bins as f64)).collect();
    let mut sums = vec![(0.0, 0.0, 0usize); bins];
    for &(p, y) in rows {
        let b = edges.iter().filter(|e| **e < p).count();
        sums[b].0 += p;
        sums[b].1 += if y { 1.0 } else { 0.0 };
        sums[b].2 += 1;
    }
    let full: Vec<_> = sums.into_iter().filter(|s| s.2 > 0).collect();
    Expected {
        count: rows.len() as i64,
        positives: pos.len() as i64,
        mean_prediction: rows.iter().map(|r| r.0).sum::<f64>() / n,
        mean_label: pos.len() as f64 / n,
        auc: (!pos.is_empty() && !neg.is_empty()).then(|| wins / (pos.len() * neg.len()) as f64),
        log_loss: loss / n,
        accuracy: right / n,
        calibration: (full.iter().map(|s| s.0 / s.2 as f64).collect(), full.iter().map(|s| s.1 / s.2 as f64).collect()),
    }
}

/// The complete rows of each segment.
fn by_segment(preds: &[Pred]) -> BTreeMap<&'static str, Vec<(f64, bool)>> {
    let mut out: BTreeMap<&'static str, Vec<(f64, bool)>> = BTreeMap::new();
    for r in preds {
        if let (Some(p), Some(y)) = (r.p, r.y) {
            out.entry(r.seg).or_default().push((p, y));
        }
    }
    out
}

fn close(got: &Value, want: f64, what: &str) {
    let g = got.as_f64().unwrap_or_else(|| panic!("{what}: not a number: {got}"));
    assert!((g - want).abs() <= 1e-9 * want.abs().max(1.0), "{what}: pipe {g}, expected {want}");
}

fn close_all(got: &Value, want: &[f64], what: &str) {
    let g = got.as_array().unwrap_or_else(|| panic!("{what}: not a list: {got}"));
    assert_eq!(g.len(), want.len(), "{what}: {got} vs {want:?}");
    for (k, (g, w)) in g.iter().zip(want).enumerate() {
        close(g, *w, &format!("{what}[{k}]"));
    }
}

/// The output rows of a sink, parsed, by their `seg`.
fn rows_by_seg(dir: &Path) -> BTreeMap<String, Value> {
    sink_rows(dir)
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON row");
            (v["seg"].as_str().expect("seg").to_string(), v)
        })
        .collect()
}

fn run(bin: &Path, args: &[String]) -> Output {
    Command::new(bin).args(args).output().expect("start the pipeline")
}

fn batch_args(input: &Path, out: &Path, sinks: &[&str]) -> Vec<String> {
    let mut args = vec!["--quiet".to_string(), "--source".into(), format!("preds={}", input.display())];
    for s in sinks {
        args.push("--sink".into());
        args.push(format!("{s}->files={}", out.join(s).display()));
    }
    args
}

#[test]
fn metrics_equal_what_the_rows_give_and_a_broken_requirement_publishes_nothing() {
    let bin = build_pipeline(Path::new("tests/cases/stream/metrics/pipeline.pipe"));
    let dir = scratch("metrics_batch");
    let preds = predictions(7, 6000, 1.2);
    write_lines(&dir.join("good.jsonl"), &json_lines(&preds));
    let out = dir.join("out");
    let sinks = ["by_seg", "direct"];
    let res = run(&bin, &batch_args(&dir.join("good.jsonl"), &out, &sinks));
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));

    let segments = by_segment(&preds);
    let got = rows_by_seg(&out.join("by_seg"));
    assert_eq!(got.keys().map(String::as_str).collect::<Vec<_>>(), vec!["a", "b", "c"]);
    for (seg, rows) in &segments {
        let (g, w) = (&got[*seg], expected(rows, 0.3, 4));
        assert_eq!(g["count"], w.count, "{seg}");
        assert_eq!(g["positives"], w.positives, "{seg}");
        close(&g["mean_prediction"], w.mean_prediction, "mean_prediction");
        close(&g["mean_label"], w.mean_label, "mean_label");
        close(&g["auc"], w.auc.expect("both labels"), &format!("{seg} auc"));
        close(&g["log_loss"], w.log_loss, &format!("{seg} log_loss"));
        close(&g["accuracy"], w.accuracy, &format!("{seg} accuracy"));
        close_all(&g["calibration_prediction"], &w.calibration.0, &format!("{seg} calibration_prediction"));
        close_all(&g["calibration_label"], &w.calibration.1, &format!("{seg} calibration_label"));
        assert_eq!(w.calibration.0.len(), 4, "{seg}: four bins with rows");
    }
    // The aggregate functions skip the rows a null leaves out: the same figures.
    let direct = rows_by_seg(&out.join("direct"));
    for (seg, rows) in &segments {
        let (d, m, w) = (&direct[*seg], &got[*seg], expected(rows, 0.3, 4));
        for (field, metric) in
            [("auc", "auc"), ("log_loss", "log_loss"), ("accuracy", "accuracy"), ("curve", "calibration_label")]
        {
            assert_eq!(d[field], m[metric], "{seg}: {field}");
        }
        let all = preds.iter().filter(|r| r.seg == *seg);
        assert_eq!(d["n"], all.clone().count() as i64, "{seg}: count() counts every row");
        let labeled: Vec<bool> = all.filter_map(|r| r.y).collect();
        assert_eq!(d["bad"], labeled.iter().filter(|y| **y).count() as i64, "{seg}: sum of a bool");
        close(&d["rate"], labeled.iter().filter(|y| **y).count() as f64 / labeled.len() as f64, "avg of a bool");
        assert_ne!(d["bad"], w.positives, "{seg}: rows with a label but no score count in `sum(y)`");
    }
    scikit_learn_agrees(&dir, &segments, &got);

    // Segment `c` now ranks worse than chance: the requirement breaks, the run exits with 3 and
    // every sink keeps the first run's output.
    let before: Vec<Vec<String>> = sinks.iter().map(|s| sink_rows(&out.join(s))).collect();
    let worse = predictions(8, 6000, -0.5);
    write_lines(&dir.join("worse.jsonl"), &json_lines(&worse));
    let res = run(&bin, &batch_args(&dir.join("worse.jsonl"), &out, &sinks));
    assert_eq!(res.status.code(), Some(3), "{}", String::from_utf8_lossy(&res.stderr));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("`require (auc ?? 0.0) >= 0.6` in stream `by_seg`: false for 1 row")
            && stderr.contains("nothing was published"),
        "{stderr}"
    );
    let after: Vec<Vec<String>> = sinks.iter().map(|s| sink_rows(&out.join(s))).collect();
    assert_eq!(before, after, "a failed requirement leaves the previous output");
    // On two workers the same.
    let mut args = batch_args(&dir.join("worse.jsonl"), &out, &sinks);
    args.extend(["--workers".to_string(), "2".into()]);
    assert_eq!(run(&bin, &args).status.code(), Some(3));
    assert_eq!(before, sinks.iter().map(|s| sink_rows(&out.join(s))).collect::<Vec<_>>());
}

/// scikit-learn's `roc_auc_score`, `log_loss`, `accuracy_score` and `calibration_curve` on the
/// same rows, within 1e-9; skipped, saying why, without Python or scikit-learn.
fn scikit_learn_agrees(dir: &Path, segments: &BTreeMap<&'static str, Vec<(f64, bool)>>, got: &BTreeMap<String, Value>) {
    let csv = dir.join("complete.csv");
    let mut f = std::fs::File::create(&csv).expect("csv");
    writeln!(f, "seg,p,y").expect("csv");
    for (seg, rows) in segments {
        for (p, y) in rows {
            writeln!(f, "{seg},{p},{}", u8::from(*y)).expect("csv");
        }
    }
    drop(f);
    let script = format!(
        r#"
import csv, json
from sklearn.metrics import roc_auc_score, log_loss, accuracy_score
from sklearn.calibration import calibration_curve
rows = {{}}
for r in csv.DictReader(open({path:?})):
    rows.setdefault(r["seg"], ([], []))
    rows[r["seg"]][0].append(float(r["p"])); rows[r["seg"]][1].append(int(r["y"]))
out = {{}}
for seg, (p, y) in rows.items():
    true, pred = calibration_curve(y, p, n_bins=4, strategy="quantile")
    out[seg] = {{"auc": roc_auc_score(y, p), "log_loss": log_loss(y, p),
        "accuracy": accuracy_score(y, [int(x > 0.3) for x in p]),
        "calibration_prediction": list(map(float, pred)), "calibration_label": list(map(float, true))}}
print(json.dumps(out))
"#,
        path = csv.display().to_string()
    );
    let Some(stdout) = pipe_tests::python_reference("scikit-learn", &script) else { return };
    let reference: Value = serde_json::from_slice(&stdout).expect("the script's JSON");
    for seg in segments.keys() {
        let (r, g) = (&reference[*seg], &got[*seg]);
        for m in ["auc", "log_loss", "accuracy"] {
            close(&g[m], r[m].as_f64().expect("number"), &format!("scikit-learn {seg} {m}"));
        }
        for m in ["calibration_prediction", "calibration_label"] {
            let want: Vec<f64> = r[m].as_array().expect("list").iter().filter_map(Value::as_f64).collect();
            close_all(&g[m], &want, &format!("scikit-learn {seg} {m}"));
        }
    }
}

#[test]
fn windowed_metrics_are_the_same_in_a_backfill_and_a_stream() {
    let bin = build_pipeline(Path::new("tests/cases/stream/metrics/windows.pipe"));
    let dir = scratch("metrics_windows");
    let preds = predictions(11, 3000, 0.5);
    let lines = json_lines(&preds);
    write_lines(&dir.join("all.jsonl"), &lines);
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live dir");
    for (k, chunk) in lines.chunks(lines.len() / 3 + 1).enumerate() {
        write_lines(&live.join(format!("part-{k}.jsonl")), chunk);
    }
    let (b, s) = (dir.join("batch"), dir.join("stream"));
    let res = run(&bin, &batch_args(&dir.join("all.jsonl"), &b, &["windowed"]));
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let mut args: Vec<String> =
        ["--mode", "stream", "--workers", "2", "--exit-when-idle", "700ms", "--checkpoint-interval", "100ms"]
            .map(String::from)
            .to_vec();
    args.extend(batch_args(&live.join("*.jsonl"), &s, &["windowed"]));
    let res = run(&bin, &args);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let (want, got) = (sink_rows(&b.join("windowed")), sink_rows(&s.join("windowed")));
    // Six ten-minute windows (and the edges the disorder reaches) per segment.
    assert!(want.len() >= 18, "{want:?}");
    assert_eq!(want, got);
    // Each window's row holds what that window's rows give.
    let mut windows: BTreeMap<(&str, String), Vec<(f64, bool)>> = BTreeMap::new();
    for r in &preds {
        if let (Some(p), Some(y)) = (r.p, r.y) {
            let start = r.at - (r.at - START).rem_euclid(600_000);
            windows.entry((r.seg, pipe_runtime::f::ts_text(start))).or_default().push((p, y));
        }
    }
    assert_eq!(windows.len(), want.len());
    for line in &want {
        let g: Value = serde_json::from_str(line).expect("row");
        let key = (g["seg"].as_str().expect("seg"), g["window_start"].as_str().expect("start").to_string());
        let w = expected(&windows[&key], 0.5, 10);
        assert_eq!(g["count"], w.count, "{key:?}");
        match w.auc {
            Some(auc) => close(&g["auc"], auc, "window auc"),
            None => assert_eq!(g["auc"], Value::Null, "{key:?}: one label only"),
        }
        close(&g["log_loss"], w.log_loss, "window log_loss");
        close(&g["accuracy"], w.accuracy, "window accuracy");
        close_all(&g["calibration_prediction"], &w.calibration.0, "window calibration_prediction");
        close_all(&g["calibration_label"], &w.calibration.1, "window calibration_label");
    }
}

/// The loan statuses `examples/model_metrics` counts as bad.
const BAD: [&str; 4] = ["Charged Off", "Late (31-120 days)", "Late (16-30 days)", "In Grace Period"];

#[test]
fn the_model_metrics_example_reports_the_grades_of_the_lending_club_loans() {
    let bin = build_pipeline(Path::new("examples/model_metrics/pipeline.pipe"));
    let out = scratch("model_metrics_example");
    let args: Vec<String> = [("report", "metrics"), ("by_grade->files", "by_grade"), ("rejected->files", "rejected")]
        .iter()
        .flat_map(|(sink, dir)| ["--sink".to_string(), format!("{sink}={}", out.join(dir).display())])
        .chain(["--quiet".to_string()])
        .collect();
    let res = run(&bin, &args);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));

    // Counts and outcomes per grade, read from the CSV here.
    let loans = pipe_tests::repo_root().join("examples/lending/data/loans.csv");
    let mut reader = csv::Reader::from_path(&loans).expect("loans.csv");
    let headers = reader.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect("column");
    let (grade, status) = (col("grade"), col("loan_status"));
    let mut want: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in reader.records() {
        let r = r.expect("record");
        let e = want.entry(r[grade].to_string()).or_default();
        e.0 += 1;
        e.1 += i64::from(BAD.contains(&&r[status]));
    }
    let grades: BTreeMap<String, Value> = sink_rows(&out.join("by_grade"))
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("row");
            (v["grade"].as_str().expect("grade").to_string(), v)
        })
        .collect();
    assert_eq!(grades.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (g, (n, bad)) in &want {
        let row = &grades[g];
        assert_eq!((row["count"].as_i64(), row["positives"].as_i64()), (Some(*n), Some(*bad)), "grade {g}");
        close(&row["mean_label"], *bad as f64 / *n as f64, "mean_label");
        let auc = row["auc"].as_f64().expect("every grade has good and bad loans");
        assert!(auc > 0.75, "grade {g}: the model ranks its loans (auc {auc})");
        let curve = row["calibration_label"].as_array().expect("list");
        assert_eq!(curve.len(), 5, "grade {g}: five bins");
        assert_eq!(row["calibration_prediction"].as_array().map(Vec::len), Some(5));
    }
    let overall: Vec<Value> =
        sink_rows(&out.join("metrics")).iter().map(|l| serde_json::from_str(l).expect("row")).collect();
    let total: (i64, i64) = want.values().fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    assert_eq!(overall.len(), 1);
    assert_eq!((overall[0]["count"].as_i64(), overall[0]["positives"].as_i64()), (Some(total.0), Some(total.1)));
    assert!(overall[0].get("calibration_label").is_none(), "the dashboard gets no calibration bins");

    // LightGBM's predictions for the same loans, and scikit-learn's metrics of them.
    let script = format!(
        r#"
import csv, json
import lightgbm, numpy as np
from sklearn.metrics import roc_auc_score, log_loss, accuracy_score
from sklearn.calibration import calibration_curve
NUM = ["annual_income", "debt_to_income", "months_since_last_delinq", "inquiries_last_12m",
       "total_credit_limit", "loan_amount", "term"]
rows = list(csv.DictReader(open({loans:?})))
x = np.array([[float(r[c]) if r[c] != "" else np.nan for c in NUM] + ["ABCDEFG".index(r["grade"])] for r in rows])
p = lightgbm.Booster(model_file={model:?}).predict(x)
y = np.array([int(r["loan_status"] in {bad:?}) for r in rows])
g = np.array([r["grade"] for r in rows])
out = {{"": {{"auc": roc_auc_score(y, p), "log_loss": log_loss(y, p), "accuracy": accuracy_score(y, p > 0.5)}}}}
for grade in sorted(set(g)):
    s = g == grade
    true, pred = calibration_curve(y[s], p[s], n_bins=5, strategy="quantile")
    out[grade] = {{"auc": roc_auc_score(y[s], p[s]), "log_loss": log_loss(y[s], p[s]),
        "accuracy": accuracy_score(y[s], p[s] > 0.5),
        "calibration_prediction": list(map(float, pred)), "calibration_label": list(map(float, true))}}
print(json.dumps(out))
"#,
        loans = loans.display().to_string(),
        model = pipe_tests::repo_root().join("examples/batch_scoring/models/lgb_default.txt").display().to_string(),
        bad = BAD,
    );
    let Some(stdout) = pipe_tests::python_reference("LightGBM and scikit-learn", &script) else { return };
    let reference: Value = serde_json::from_slice(&stdout).expect("the script's JSON");
    for m in ["auc", "log_loss", "accuracy"] {
        close(&overall[0][m], reference[""][m].as_f64().expect("number"), &format!("overall {m}"));
    }
    for (g, row) in &grades {
        // LightGBM's predictions and Pipe's agree to 1e-12 or so, not bit for bit: the
        // metrics then agree to well within 1e-9 (an AUC could only move on a tie).
        for m in ["auc", "log_loss", "accuracy"] {
            close(&row[m], reference[g][m].as_f64().expect("number"), &format!("grade {g} {m}"));
        }
        for m in ["calibration_prediction", "calibration_label"] {
            let want: Vec<f64> = reference[g][m].as_array().expect("list").iter().filter_map(Value::as_f64).collect();
            close_all(&row[m], &want, &format!("grade {g} {m}"));
        }
    }
}
