//! Analyze-then-apply transforms (`zscore`, `scale_to_01`, `vocabulary`, `quantile_bucket`):
//! `pipec fit` over the committed training file gives the parameters this test computes on its
//! own (and writes the committed artifact again, byte for byte), a backfill and a stream apply
//! them identically, scikit-learn's scalers and discretizer agree within 1e-9 when Python has
//! them, and a program edited after fitting is refused until it is fitted again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pipe_tests::{build_pipeline, repo_root, scratch, sink_rows};
use serde_json::Value;

const CASE: &str = "tests/cases/stream/transforms";

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("read rows")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect()
}

/// The case copied into a scratch folder (fitting writes beside the program).
fn copy_case(name: &str) -> PathBuf {
    let dir = scratch(name);
    for f in ["applicants.thrift", "pipeline.pipe", "train.jsonl", "score.jsonl", "pipeline.fit.json"] {
        std::fs::copy(repo_root().join(CASE).join(f), dir.join(f)).expect("copy the case");
    }
    dir
}

/// The non-null values of `field` in `rows`.
fn values(rows: &[Value], field: &str) -> Vec<f64> {
    rows.iter().filter_map(|r| r[field].as_f64()).collect()
}

/// The `q`-quantile by the averaged inverted distribution function, from its definition: the
/// value at rank `⌈n q⌉`, or the mean of the two around a whole rank `n q`.
fn averaged_inverted_cdf(sorted: &[f64], q: f64) -> f64 {
    let g = sorted.len() as f64 * q;
    let k = g.floor();
    if g == k && k >= 1.0 && (k as usize) < sorted.len() {
        (sorted[k as usize - 1] + sorted[k as usize]) / 2.0
    } else {
        sorted[(g.ceil() as usize).clamp(1, sorted.len()) - 1]
    }
}

/// `KBinsDiscretizer`'s edges: the quantiles at the levels `np.linspace(0, 100, n + 1)` asks for
/// (in floating point: 100/3 % is a hair above a third, so a rank of exactly n/3 is not whole),
/// edges within 1e-8 of the one before dropped.
fn edges(mut v: Vec<f64>, n: usize) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    let mut out: Vec<f64> = Vec::new();
    for i in 0..=n {
        let level = if i == n { 100.0 } else { i as f64 * (100.0 / n as f64) };
        let e = averaged_inverted_cdf(&v, level / 100.0);
        if out.last().is_none_or(|l| e - l > 1e-8) {
            out.push(e);
        }
    }
    out
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (mean, (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt())
}

fn close(got: f64, want: f64, what: &str) {
    assert!((got - want).abs() <= 1e-9 * want.abs().max(1.0), "{what}: pipe {got}, expected {want}");
}

fn bucket(edges: &[f64], x: f64) -> i64 {
    edges[1..edges.len() - 1].iter().filter(|e| **e <= x).count() as i64
}

#[test]
fn fitted_transforms_match_their_training_data_in_a_backfill_and_a_stream() {
    let dir = copy_case("transforms_fit");
    let program = dir.join("pipeline.pipe");
    let committed = std::fs::read_to_string(dir.join("pipeline.fit.json")).expect("the committed artifact");
    std::fs::remove_file(dir.join("pipeline.fit.json")).expect("remove");

    // Without the artifact every transform is an error naming the command.
    let loader = pipec::fs_loader::FsLoader::new(".");
    let checked = pipec::check_program(&loader, &program).expect("loads");
    let e2028: Vec<_> = checked.diagnostics.iter().filter(|d| d.code.as_str() == "E2028").collect();
    assert_eq!(e2028.len(), 5, "{:?}", checked.diagnostics);
    assert!(e2028[0].help.as_deref().is_some_and(|h| h.contains("pipec fit")), "{:?}", e2028[0].help);

    // Fitting writes what was committed: two passes, `z_bucket` in the second.
    let cache = pipec::driver::Cache::from_env(pipec::driver::Profile::Default);
    let report = pipec::driver::fit(&program, pipec::Options::default(), &cache).expect("fits");
    assert_eq!(report.passes, 2);
    assert_eq!(report.fitted.len(), 5);
    let written = std::fs::read_to_string(dir.join("pipeline.fit.json")).expect("written");
    let artifact: Value = serde_json::from_str(&written).expect("JSON");
    let fitted: Value = serde_json::from_str(&committed).expect("JSON");
    assert_eq!(artifact["transforms"], fitted["transforms"], "fitting again gives the committed parameters");

    // The parameters, from the training rows.
    let train = rows(&dir.join("train.jsonl"));
    let t = &artifact["transforms"];
    let (mean, std) = mean_std(&values(&train, "income"));
    let p = &t["features.income_z"]["params"];
    close(p["mean"].as_f64().expect("mean"), mean, "mean");
    close(p["scale"].as_f64().expect("scale"), std, "std");
    let dti = values(&train, "dti");
    let (lo, hi) =
        (dti.iter().copied().fold(f64::INFINITY, f64::min), dti.iter().copied().fold(f64::NEG_INFINITY, f64::max));
    assert_eq!(t["features.dti_01"]["params"]["min"].as_f64(), Some(lo));
    assert_eq!(t["features.dti_01"]["params"]["max"].as_f64(), Some(hi));
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for r in &train {
        if let Some(s) = r["state"].as_str() {
            *counts.entry(s.to_string()).or_default() += 1;
        }
    }
    let mut by_count: Vec<(i64, String)> = counts.into_iter().map(|(s, n)| (-n, s)).collect();
    by_count.sort();
    let vocabulary: Vec<String> = by_count.into_iter().take(3).map(|(_, s)| s).collect();
    let got: Vec<String> = t["features.state_ix"]["params"]["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|v| v.as_str().expect("a string").to_string())
        .collect();
    assert_eq!(got, vocabulary);
    let amount_edges = edges(values(&train, "amount"), 4);
    let got: Vec<f64> =
        t["features.amount_q"]["params"]["edges"].as_array().expect("edges").iter().filter_map(Value::as_f64).collect();
    assert_eq!(got, amount_edges);
    let z: Vec<f64> = values(&train, "income").iter().map(|x| (x - mean) / std).collect();
    let z_edges = edges(z, 3);
    let got: Vec<f64> =
        t["features.z_bucket"]["params"]["edges"].as_array().expect("edges").iter().filter_map(Value::as_f64).collect();
    assert_eq!(got.len(), z_edges.len());
    for (g, w) in got.iter().zip(&z_edges) {
        close(*g, *w, "z edge");
    }

    // Applied in a backfill and in a stream over the same records: the same rows, each what the
    // parameters give.
    let bin = build_pipeline(&program);
    let out = dir.join("out");
    let run = |args: &[String]| {
        let res = Command::new(&bin).args(args).output().expect("run");
        assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    };
    let sink = |name: &str| format!("features->files={}", out.join(name).display());
    run(&["--quiet".into(), "--sink".into(), sink("batch")]);
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live");
    let score = std::fs::read_to_string(dir.join("score.jsonl")).expect("score");
    let lines: Vec<&str> = score.lines().collect();
    for (k, chunk) in lines.chunks(200).enumerate() {
        std::fs::write(live.join(format!("part-{k}.jsonl")), chunk.join("\n") + "\n").expect("live file");
    }
    let mut stream: Vec<String> =
        ["--mode", "stream", "--quiet", "--exit-when-idle", "500ms", "--workers", "2"].map(String::from).to_vec();
    stream.extend([
        "--source".into(),
        format!("applicants={}/*.jsonl", live.display()),
        "--sink".into(),
        sink("stream"),
    ]);
    run(&stream);
    let batch = sink_rows(&out.join("batch"));
    assert_eq!(batch.len(), lines.len());
    assert_eq!(batch, sink_rows(&out.join("stream")), "a stream applies the transforms a backfill does");
    let by_id: BTreeMap<String, Value> = batch
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("row");
            (v["id"].as_str().expect("id").to_string(), v)
        })
        .collect();
    for r in rows(&dir.join("score.jsonl")) {
        let o = &by_id[r["id"].as_str().expect("id")];
        match r["income"].as_f64() {
            Some(x) => {
                let z = (x - mean) / std;
                close(o["income_z"].as_f64().expect("income_z"), z, "income_z");
                assert_eq!(o["z_bucket"].as_i64(), Some(bucket(&z_edges, z)));
            }
            None => assert_eq!((&o["income_z"], &o["z_bucket"]), (&Value::Null, &Value::Null), "a null stays null"),
        }
        if let Some(x) = r["dti"].as_f64() {
            close(o["dti_01"].as_f64().expect("dti_01"), (x - lo) / (hi - lo), "dti_01");
        }
        if let Some(x) = r["amount"].as_f64() {
            assert_eq!(o["amount_q"].as_i64(), Some(bucket(&amount_edges, x)));
        }
        let want = r["state"].as_str().map(|s| vocabulary.iter().position(|v| v == s).unwrap_or(3) as i64);
        assert_eq!(o["state_ix"].as_i64(), want, "{r}");
    }
    scikit_learn_agrees(&dir, &out.join("batch"));

    // An edit to what a transform reads makes it stale; a comment or a new line does not.
    let text = std::fs::read_to_string(&program).expect("program");
    std::fs::write(&program, format!("// reformatted\n\n{}", text.replace("top = 3", "top = 4"))).expect("edit");
    let checked = pipec::check_program(&loader, &program).expect("loads");
    let stale: Vec<String> = checked.diagnostics.iter().filter(|d| d.is_error()).map(|d| d.message.clone()).collect();
    assert_eq!(
        stale,
        vec!["`vocabulary` is not fitted: `features.state_ix` was fitted for a pipeline that has changed since"]
    );

    // A training binding that asks for more rows than the training file has fails the fit and
    // leaves the artifact as it was.
    let before = std::fs::read_to_string(dir.join("pipeline.fit.json")).expect("artifact");
    std::fs::write(
        &program,
        text.replace(
            r#"fit = files("train.jsonl", format = json)"#,
            r#"fit = files("train.jsonl", format = json) { k >= 5000 }"#,
        ),
    )
    .expect("edit");
    let Err(err) = pipec::driver::fit(&program, pipec::Options::default(), &cache) else {
        panic!("fitted on fewer rows than `k >= 5000`")
    };
    assert!(
        matches!(&err, pipec::driver::BuildError::Fit(why) if why.contains("too few training rows reach `features.income_z`") && why.contains("k >= 5000")),
        "{err:?}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("pipeline.fit.json")).expect("artifact"), before);
    // The artifact fitted on fewer rows no longer binds.
    let checked = pipec::check_program(&loader, &program).expect("loads");
    let fewer =
        checked.diagnostics.iter().filter(|d| d.message.contains("fewer than its training binding's `k >= 5000`"));
    assert_eq!(fewer.count(), 5, "{:?}", checked.diagnostics);
}

/// scikit-learn's `StandardScaler`, `MinMaxScaler` and `KBinsDiscretizer(strategy="quantile")`
/// fitted on the same training values give the rows the pipeline wrote; skipped, saying why,
/// without Python or scikit-learn.
fn scikit_learn_agrees(dir: &Path, out: &Path) {
    let script = format!(
        r#"
import glob, json, warnings
import numpy as np
from sklearn.preprocessing import StandardScaler, MinMaxScaler, KBinsDiscretizer
warnings.simplefilter("ignore")
train = [json.loads(l) for l in open({train:?})]
score = [json.loads(l) for l in open({score:?})]
out = {{}}
for f in glob.glob({out:?} + "/**/*.jsonl", recursive=True):
    for l in open(f):
        r = json.loads(l); out[r["id"]] = r
col = lambda rows, k: np.array([[r[k]] for r in rows if r[k] is not None], dtype=float)
ss = StandardScaler().fit(col(train, "income"))
mm = MinMaxScaler().fit(col(train, "dti"))
kb = KBinsDiscretizer(n_bins=4, encode="ordinal", strategy="quantile").fit(col(train, "amount"))
kz = KBinsDiscretizer(n_bins=3, encode="ordinal", strategy="quantile").fit(ss.transform(col(train, "income")))
bad = []
for r in score:
    o = out[r["id"]]
    if r["income"] is not None:
        z = ss.transform([[r["income"]]])[0][0]
        if abs(z - o["income_z"]) > 1e-9 or int(kz.transform([[z]])[0][0]) != o["z_bucket"]: bad.append(o)
    if r["dti"] is not None and abs(mm.transform([[r["dti"]]])[0][0] - o["dti_01"]) > 1e-9: bad.append(o)
    if r["amount"] is not None and int(kb.transform([[r["amount"]]])[0][0]) != o["amount_q"]: bad.append(o)
print(json.dumps(bad[:3]))
"#,
        train = dir.join("train.jsonl").display().to_string(),
        score = dir.join("score.jsonl").display().to_string(),
        out = out.display().to_string(),
    );
    let Some(stdout) = pipe_tests::python_reference("scikit-learn", &script) else { return };
    assert_eq!(String::from_utf8_lossy(&stdout).trim(), "[]", "rows scikit-learn transforms otherwise");
}
