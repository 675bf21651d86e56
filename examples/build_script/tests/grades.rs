//! The modules `build.rs` generated from `grades.pipe` and `spreads.pipe`: on loans held in memory,
//! and with the declared CSV source over the real Lending Club file, checked against sums this
//! test computes itself.

use std::collections::BTreeMap;

use pipe_example_build_script::grades;
use pipe_runtime::prelude::csv;

fn loan(id: i64, grade: &str, amount: i64, rate: f64, term: i64) -> grades::Loan {
    grades::Loan {
        rownames: id,
        emp_title: None,
        emp_length: None,
        state: Some("CA".into()),
        homeownership: None,
        annual_income: Some(50_000.0),
        debt_to_income: None,
        loan_purpose: None,
        loan_amount: amount,
        term,
        interest_rate: rate,
        installment: 100.0,
        grade: grade.into(),
        sub_grade: format!("{grade}1"),
        issue_month: "Jan-2018".into(),
        loan_status: "Current".into(),
        paid_total: 0.0,
    }
}

#[test]
fn in_memory_groups_below_k_are_suppressed_and_empty_loans_filtered() {
    let mut loans: Vec<grades::Loan> = (0..5).map(|i| loan(i, "A", 1_000 * (i + 1), 5.0 + i as f64, 36)).collect();
    loans[4].term = 60;
    loans.push(loan(10, "B", 2_000, 9.0, 36));
    loans.push(loan(11, "B", 3_000, 11.0, 36));
    loans.push(loan(12, "A", 0, 30.0, 36)); // filtered: no amount
    let out = grades::run_batch(grades::Inputs { loans }).expect("the pipeline runs");
    // Grade B has 2 loans, fewer than k = 5: suppressed.
    assert_eq!(out.grade_report.len(), 1, "{:?}", out.grade_report);
    let a: &grades::GradeReportRow = &out.grade_report[0];
    assert_eq!(a.grade, "A");
    assert_eq!((a.loans, a.amount, a.terms), (5, 15_000, 2));
    assert_eq!(a.mean_rate, Some(7.0));
    assert!(out.rejected.is_empty());
}

#[test]
fn declared_source_over_the_lending_club_csv() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("grades");
    let options = pipe_runtime::run::Options {
        sinks: vec![
            format!("grade_report={}", report.display()),
            format!("rejected->files={}", dir.path().join("rejected").display()),
        ],
        quiet: true,
        no_progress: true,
        ..Default::default()
    };
    grades::run(&options).expect("the pipeline runs");

    // What the report must say, from the CSV directly.
    let csv_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../lending/data/loans.csv");
    let mut expected: BTreeMap<String, (i64, i64, f64, Vec<i64>)> = BTreeMap::new();
    let mut reader = csv::Reader::from_path(csv_path).expect("loans.csv");
    let headers = reader.headers().expect("header").clone();
    let col = |name: &str| headers.iter().position(|h| h == name).expect(name);
    let (g, amt, rate, term) = (col("grade"), col("loan_amount"), col("interest_rate"), col("term"));
    for rec in reader.records() {
        let rec = rec.expect("record");
        let amount: i64 = rec[amt].parse().expect("amount");
        if amount <= 0 {
            continue;
        }
        let e = expected.entry(rec[g].to_string()).or_default();
        e.0 += 1;
        e.1 += amount;
        e.2 += rec[rate].parse::<f64>().expect("rate");
        let t: i64 = rec[term].parse().expect("term");
        if !e.3.contains(&t) {
            e.3.push(t);
        }
    }
    expected.retain(|_, e| e.0 >= 5);

    // Each worker writes its own part of the report.
    let mut got = BTreeMap::new();
    let mut parts: Vec<_> = std::fs::read_dir(&report)
        .expect("the report")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    parts.sort();
    assert!(!parts.is_empty(), "no part of the report was written");
    for part in parts {
        let mut written = csv::Reader::from_path(&part).expect("a part of the report");
        for row in written.records() {
            let row = row.expect("row");
            // grade, loans, amount, mean_rate, terms
            got.insert(
                row[0].to_string(),
                (row[1].to_string(), row[2].to_string(), row[3].to_string(), row[4].to_string()),
            );
        }
    }
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for (grade, (n, amount, rate_sum, terms)) in &expected {
        let (gn, ga, gr, gt) = &got[grade];
        assert_eq!(gn, &n.to_string(), "grade {grade}");
        assert_eq!(ga, &amount.to_string(), "grade {grade}");
        let mean: f64 = gr.parse().expect("mean");
        assert!((mean - rate_sum / *n as f64).abs() < 1e-9, "grade {grade}: {mean}");
        assert_eq!(gt, &terms.len().to_string(), "grade {grade}");
    }
}

#[test]
fn in_memory_the_join_table_is_read_before_the_loans_and_each_loan_meets_its_grades_rates() {
    use pipe_example_build_script::spreads;
    use pipe_runtime::prelude::serde_json;
    // The same records in the other module's type (both modules read `loans.thrift`).
    let as_spreads = |l: grades::Loan| -> spreads::Loan {
        serde_json::from_value(serde_json::to_value(l).expect("to JSON")).expect("from JSON")
    };
    let loans = vec![
        as_spreads(loan(1, "A", 1_000, 7.0, 36)),
        as_spreads(loan(2, "C", 1_000, 15.5, 36)),
        as_spreads(loan(3, "Z", 1_000, 30.0, 36)),
    ];
    let rate = |grade: &str, base: f64| spreads::BaseRate { grade: grade.into(), base };
    // Grade C has two base rates: its loan comes out once with each.
    let base_rates = vec![rate("A", 6.5), rate("C", 12.0), rate("C", 13.0)];
    let out = spreads::run_batch(spreads::Inputs { loans, base_rates }).expect("the pipeline runs");
    let mut got: Vec<(i64, String, f64, bool)> =
        out.spread_report.iter().map(|r| (r.rownames, r.grade.clone(), r.spread, r.known)).collect();
    got.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
    assert_eq!(
        got,
        vec![
            (1, "A".into(), 0.5, true),
            (2, "C".into(), 2.5, true),
            (2, "C".into(), 3.5, true),
            (3, "Z".into(), 30.0, false),
        ]
    );
    assert!(out.rejected.is_empty());
}
