//! The canary test: a pipeline runs on records whose labeled fields hold recognizable canary
//! values, and every byte every sink wrote is searched. A canary may appear only in a sink that
//! allows its category raw; the sinks' clearances are read from the program itself. Two
//! positive controls (a sink cleared for raw member ids, and the rejected output) show that the
//! search does find canaries where they are allowed.

use std::path::Path;
use std::process::Command;

use pipe_tests::{build_pipeline, repo_root, scratch};
use pipec::fs_loader::FsLoader;

const KEY: &str = "canary-test-key-0123456789";

/// Every byte of every file below `dir`, and every file and folder name (a Hive partition
/// folder's name is written data too), summaries included.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())).flatten() {
            let p = e.path();
            out.extend(e.file_name().to_string_lossy().as_bytes());
            out.push(b'\n');
            if p.is_dir() {
                stack.push(p);
            } else {
                out.extend(std::fs::read(&p).expect("read output"));
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn no_canary_reaches_a_sink_that_does_not_allow_its_category_raw() {
    let root = repo_root().join("tests/cases/canary/pipeline.pipe");
    let checked = pipec::check_program(&FsLoader::new("."), &root).expect("readable");
    assert!(!checked.has_errors());
    let bin = build_pipeline(Path::new("tests/cases/canary/pipeline.pipe"));

    // Records whose labeled fields are canaries; the last line is malformed (it goes to
    // `rejected`, which allows everything raw).
    let out = scratch("canary");
    let states = ["CA", "NY", "TX"];
    let mut lines = Vec::new();
    let mut canaries: Vec<(String, &str)> = Vec::new();
    for i in 0..12 {
        let member = format!("CANARYMEMBER{i:03}");
        let ssn = format!("CANARYSSN{i:03}");
        let email = format!("canaryemail{i:03}@example.com");
        let accounts: Vec<String> = (0..2).map(|k| format!("CANARYACCT{i:03}K{k}")).collect();
        canaries.push((member.clone(), "user.unique_id"));
        canaries.push((ssn.clone(), "user.government_id"));
        canaries.push((email.clone(), "user.contact.email"));
        for a in &accounts {
            canaries.push((a.clone(), "user.financial.account_number"));
        }
        let tradelines: Vec<serde_json::Value> = accounts
            .iter()
            .map(|a| serde_json::json!({ "account_id": a, "balance": 100.0 + i as f64, "credit_limit": 1000.0 }))
            .collect();
        lines.push(
            serde_json::json!({
                "member_id": member, "ssn": ssn, "email": email, "submitted_at": 1_700_000_000_000i64 + i,
                "annual_income": 52_300.0 + i as f64, "state": states[i as usize % 3], "tradelines": tradelines,
            })
            .to_string(),
        );
    }
    lines.push(r#"{"member_id": "CANARYMEMBER999", "ssn": "CANARYSSN999", "submitted_at": "#.to_string());
    canaries.push(("CANARYMEMBER999".into(), "user.unique_id"));
    canaries.push(("CANARYSSN999".into(), "user.government_id"));
    let input = out.join("apps.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").expect("write input");

    let sinks: Vec<(String, Vec<String>)> = checked
        .program
        .sinks
        .iter()
        .map(|s| (s.name.clone(), s.allows.iter().filter(|a| a.form == "raw").map(|a| a.category.clone()).collect()))
        .collect();
    let mut args = vec!["--source".to_string(), format!("apps={}", input.display())];
    for (name, _) in &sinks {
        args.push("--sink".into());
        args.push(format!("{name}={}", out.join(name.replace("->", "_")).display()));
    }
    let res = Command::new(&bin).args(&args).env("PIPE_HMAC_KEY", KEY).output().expect("run");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));

    let mut leaks = Vec::new();
    for (name, raw) in &sinks {
        let bytes = all_bytes(&out.join(name.replace("->", "_")));
        assert!(bytes.len() > 100, "sink {name} wrote nothing");
        for (canary, category) in &canaries {
            let allowed = raw.iter().any(|a| category == a || category.starts_with(&format!("{a}.")));
            if !allowed && contains(&bytes, canary) {
                leaks.push(format!("{canary} ({category}) reached sink `{name}`, which allows raw only {raw:?}"));
            }
        }
    }
    // Nothing else of the run — its report on standard output and error, or any file outside
    // the sinks' folders — holds a canary.
    let mut elsewhere = res.stdout.clone();
    elsewhere.extend(&res.stderr);
    for e in std::fs::read_dir(&out).expect("scratch").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name != "apps.jsonl" && !sinks.iter().any(|(n, _)| n.replace("->", "_") == name) {
            elsewhere.extend(name.as_bytes());
            let p = e.path();
            elsewhere.extend(if p.is_dir() { all_bytes(&p) } else { std::fs::read(&p).expect("read") });
        }
    }
    for (canary, category) in &canaries {
        if contains(&elsewhere, canary) {
            leaks.push(format!("{canary} ({category}) reached the run's report or a file outside the sinks"));
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    assert!(contains(&all_bytes(&out.join("by_member_out")), "state="), "partition folders are scanned");

    // Six of the twelve incomes pass the `where` of `high_earners`: every report of the run
    // shows that count in steps of 10 (0), never exactly.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("high_out/_pipe_summary.json")).expect("summary"))
            .expect("JSON");
    let op = |name: &str| {
        summary["operators"].as_array().expect("operators").iter().find(|o| o["name"] == name).cloned().expect(name)
    };
    let high = op("high_earners");
    assert_eq!(
        (high["read"].as_u64(), high["written"].as_u64(), high["filtered"].as_u64(), high["coarsened"].as_bool()),
        (Some(10), Some(0), Some(0), Some(true)),
        "{high}"
    );
    assert_eq!(high["reconciled"], true, "reconciled on the exact counts");
    assert_eq!(op("high_out")["read"], 0);
    assert_eq!(op("apps")["read"], 13, "a source's counts are not decided by labeled data");
    let report = format!("{}{}", String::from_utf8_lossy(&res.stdout), String::from_utf8_lossy(&res.stderr));
    assert!(report.contains("in steps of 10"), "{report}");

    // Positive controls: where raw is allowed, the canaries are found.
    let raw_ok = all_bytes(&out.join("raw_ok"));
    assert!(contains(&raw_ok, "CANARYMEMBER000") && contains(&raw_ok, "CANARYMEMBER011"));
    let rejected = sinks
        .iter()
        .find(|(n, _)| n.starts_with("rejected"))
        .map(|(n, _)| n.replace("->", "_"))
        .expect("rejected sink");
    assert!(contains(&all_bytes(&out.join(rejected)), "CANARYSSN999"));
}

/// `k >= N` counts the distinct source records that give each aggregate a value: copying a
/// record (an `explode` of a constant list, a `union` of a stream with itself) or surrounding
/// one income with nulls does not release that income (tests/cases/canary/k_records.pipe).
#[test]
fn k_counts_records_not_rows() {
    let bin = build_pipeline(Path::new("tests/cases/canary/k_records.pipe"));
    let out = scratch("canary-k");
    let app = |i: usize, state: &str, income: Option<f64>| {
        let mut v = serde_json::json!({
            "member_id": format!("M{state}{i}"), "ssn": "000-00-0000", "submitted_at": 1_700_000_000_000i64 + i as i64,
            "state": state, "tradelines": [],
        });
        if let Some(x) = income {
            v["annual_income"] = x.into();
        }
        v.to_string()
    };
    let mut lines: Vec<String> = (0..12).map(|i| app(i, "CA", Some(50_000.5))).collect();
    lines.push(app(0, "WY", Some(987_654.5)));
    lines.extend((0..10).map(|i| app(i, "NV", (i == 3).then_some(123_456.5))));
    let input = out.join("apps.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").expect("write input");
    let mut args = vec!["--source".to_string(), format!("apps={}", input.display())];
    for sink in ["copied_out", "tenfold_out", "sparse_out"] {
        args.extend(["--sink".to_string(), format!("{sink}={}", out.join(sink).display())]);
    }
    let res = Command::new(&bin).args(&args).output().expect("run");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    for sink in ["copied_out", "tenfold_out", "sparse_out"] {
        let bytes = all_bytes(&out.join(sink));
        let text = String::from_utf8_lossy(&bytes);
        assert!(contains(&bytes, "50000.5"), "{sink}: the twelve Californians are released\n{text}");
        assert!(contains(&bytes, "\"state\":\"CA\""), "{sink}\n{text}");
        for (canary, who) in [("987654.5", "one record copied"), ("123456.5", "one income among nulls")] {
            assert!(!contains(&bytes, canary), "{sink} released {who}: {text}");
        }
    }
}
