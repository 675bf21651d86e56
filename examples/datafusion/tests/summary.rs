//! The DataFusion program against the module's typed API: the same applications, scored with
//! `review::run_batch` on rows read without DataFusion and summed up by hand, give the summary
//! DataFusion's SQL computes over the module's record batches.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use pipe_example_datafusion::{applications_up_to, review, DECLINE_AT, REVIEW_AT};

const CSV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../batch_scoring/data/features.csv");

/// Per (grade, band): applications, their amount (`None` when none has one) and their mean
/// probability of default.
type Summary = BTreeMap<(i64, String), (i64, Option<f64>, f64)>;

fn typed_rows() -> Vec<review::LoanFeatures> {
    let text = std::fs::read_to_string(CSV).expect("the CSV file");
    let rows: Result<Vec<review::LoanFeatures>, _> =
        pipe_runtime::prelude::csv::Reader::from_reader(text.as_bytes()).deserialize().collect();
    rows.expect("the CSV parses")
}

fn summary_of(batches: &[RecordBatch]) -> Summary {
    let mut out = Summary::new();
    for b in batches {
        let grade = b.column(0).as_primitive::<Int64Type>();
        let band = cast(b.column(1), &DataType::Utf8).expect("band as text");
        let band = band.as_string::<i32>();
        let n = b.column(2).as_primitive::<Int64Type>();
        let amount = b.column(3).as_primitive::<Float64Type>();
        let mean = b.column(4).as_primitive::<Float64Type>();
        for i in 0..b.num_rows() {
            let amount = amount.is_valid(i).then(|| amount.value(i));
            let old = out.insert((grade.value(i), band.value(i).to_string()), (n.value(i), amount, mean.value(i)));
            assert!(old.is_none(), "grade {} band {} twice", grade.value(i), band.value(i));
        }
    }
    out
}

#[tokio::test]
async fn the_summary_is_what_the_typed_rows_give() {
    let report = review(CSV, &applications_up_to(40_000.0)).await.expect("the program runs");

    let chosen: Vec<review::LoanFeatures> =
        typed_rows().into_iter().filter(|r| r.loan_amount.is_some_and(|a| a <= 40_000.0)).collect();
    let typed = review::run_batch(review::Inputs { applications: chosen.clone() }).expect("typed run");
    assert!(typed.rejected.is_empty());
    assert_eq!(report.scored, chosen.len());
    assert_eq!(report.rejected.num_rows(), 0);
    assert!(chosen.len() < typed_rows().len(), "the selection drops the loans above 40,000");

    let mut want: BTreeMap<(i64, String), (i64, Option<f64>, f64)> = BTreeMap::new();
    for r in &typed.bands {
        let expected = if r.p_default >= DECLINE_AT {
            "decline"
        } else if r.p_default >= REVIEW_AT {
            "review"
        } else {
            "approve"
        };
        assert_eq!(r.band, expected, "application {} (p = {})", r.id, r.p_default);
        let e = want.entry((r.grade, r.band.clone())).or_insert((0, None, 0.0));
        e.0 += 1;
        if let Some(a) = r.loan_amount {
            e.1 = Some(e.1.unwrap_or(0.0) + a);
        }
        e.2 += r.p_default;
    }
    for e in want.values_mut() {
        e.2 /= e.0 as f64;
    }
    let got = summary_of(&report.summary);
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    assert!(got.keys().any(|(_, band)| band == "decline") && got.keys().any(|(_, band)| band == "approve"));
    for (key, (n, amount, mean)) in &want {
        let (got_n, got_amount, got_mean) = got[key];
        assert_eq!(got_n, *n, "{key:?}");
        // Sums in another order: equal to the last few bits.
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
        assert!(got_amount.zip(*amount).is_some_and(|(g, w)| close(g, w)), "{key:?}: {got_amount:?} vs {amount:?}");
        assert!(close(got_mean, *mean), "{key:?}: {got_mean} vs {mean}");
    }
}

#[tokio::test]
async fn rows_without_a_grade_are_rejected_with_their_reason_and_the_rest_scored() {
    let selection = "SELECT id, annual_income, debt_to_income, months_since_last_delinq, inquiries_last_12m,
                            total_credit_limit, loan_amount, term,
                            CASE WHEN id % 50 = 7 THEN NULL ELSE grade END AS grade
                     FROM applications";
    let report = review(CSV, selection).await.expect("the program runs");
    let all = typed_rows();
    let missing: Vec<i64> = all.iter().map(|r| r.id).filter(|id| id % 50 == 7).collect();
    assert!(!missing.is_empty());
    assert_eq!(report.rejected.num_rows(), missing.len());
    assert_eq!(report.scored, all.len() - missing.len());
    let text = |name: &str| -> Vec<String> {
        let column = report.rejected.column_by_name(name).unwrap_or_else(|| panic!("a column `{name}`"));
        let column = cast(column, &DataType::Utf8).expect("text");
        column.as_string::<i32>().iter().map(|v| v.unwrap_or_default().to_string()).collect()
    };
    for reason in text("reason") {
        assert_eq!(reason, "applications: field `grade`: null, but the schema requires a value");
    }
    // The rejected rows are those applications, each as DataFusion handed it over.
    let rejected_ids: Vec<i64> = text("raw")
        .iter()
        .map(|raw| {
            let row: pipe_runtime::prelude::serde_json::Value =
                pipe_runtime::prelude::serde_json::from_str(raw).expect("JSON");
            assert!(row["grade"].is_null(), "{raw}");
            row["id"].as_i64().expect("an id")
        })
        .collect();
    assert_eq!(rejected_ids, missing);
}

#[tokio::test]
async fn a_selection_without_a_required_column_is_refused_by_name() {
    let err = review(CSV, "SELECT id, annual_income, loan_amount FROM applications").await.expect_err("no grade");
    assert!(err.to_string().contains("it has no column `grade` (Int64 in the schema)"), "{err}");
}
