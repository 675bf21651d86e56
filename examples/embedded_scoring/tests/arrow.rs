//! The same pipeline on Arrow record batches (`run_batch_arrow`): the features as columns (in
//! two batches, `grade` as 32-bit integers, missing values as nulls) give the same decisions as
//! the typed rows, as a record batch with the sink's columns.

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use pipe_example_embedded_scoring::{read_applications, risk};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../batch_scoring/data");

fn batch(rows: &[risk::LoanFeatures], with_grade: bool) -> RecordBatch {
    let grades: Int32Array = rows.iter().map(|r| i32::try_from(r.grade).ok()).collect();
    batch_with_grades(rows, with_grade.then_some(grades))
}

fn batch_with_grades(rows: &[risk::LoanFeatures], grades: Option<Int32Array>) -> RecordBatch {
    let double = |f: fn(&risk::LoanFeatures) -> Option<f64>| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<Float64Array>())
    };
    let mut columns: Vec<(&str, ArrayRef)> = vec![
        ("id", Arc::new(rows.iter().map(|r| r.id).collect::<Int64Array>())),
        ("annual_income", double(|r| r.annual_income)),
        ("debt_to_income", double(|r| r.debt_to_income)),
        ("months_since_last_delinq", double(|r| r.months_since_last_delinq)),
        ("inquiries_last_12m", double(|r| r.inquiries_last_12m)),
        ("total_credit_limit", double(|r| r.total_credit_limit)),
        ("loan_amount", double(|r| r.loan_amount)),
        ("term", double(|r| r.term)),
    ];
    if let Some(grades) = grades {
        columns.push(("grade", Arc::new(grades)));
    }
    RecordBatch::try_from_iter(columns).expect("a record batch")
}

#[test]
fn record_batches_give_the_decisions_typed_rows_give() {
    let text = std::fs::read_to_string(format!("{DATA}/features.csv")).expect("features");
    let rows = read_applications(&text).expect("the CSV parses");
    let typed = risk::run_batch(risk::Inputs { applications: rows.clone() }).expect("typed run");

    let (first, second) = rows.split_at(250);
    let out = risk::run_batch_arrow(risk::ArrowInputs { applications: vec![batch(first, true), batch(second, true)] })
        .expect("Arrow run");
    let decided = &out.decided;
    assert_eq!(decided.num_rows(), typed.decided.len());
    assert_eq!(out.rejected.num_rows(), 0);
    let names: Vec<String> = decided.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, ["id", "grade", "p_default", "decision"]);
    let ids = decided.column(0).as_any().downcast_ref::<Int64Array>().expect("id: Int64");
    let p = decided.column(2).as_any().downcast_ref::<Float64Array>().expect("p_default: Float64");
    let decision = decided.column(3).as_any().downcast_ref::<StringArray>().expect("decision: Utf8");
    for (i, row) in typed.decided.iter().enumerate() {
        assert_eq!(ids.value(i), row.id);
        assert_eq!(p.value(i), row.p_default, "application {}", row.id);
        assert_eq!(decision.value(i), row.decision);
    }
    assert!(p.nulls().is_none());
}

#[test]
fn a_batch_without_a_required_column_is_refused_by_name() {
    let text = std::fs::read_to_string(format!("{DATA}/features.csv")).expect("features");
    let rows = read_applications(&text).expect("the CSV parses");
    let err = risk::run_batch_arrow(risk::ArrowInputs {
        applications: vec![batch(&rows[..3], true), batch(&rows[3..6], false)],
    })
    .expect_err("no grade");
    assert_eq!(err.to_string(), "input `applications`, batch 1: it has no column `grade` (Int64 in the schema)");
}

#[test]
fn a_row_without_a_grade_is_rejected_in_its_place_and_the_others_scored() {
    let text = std::fs::read_to_string(format!("{DATA}/features.csv")).expect("features");
    let rows = read_applications(&text).expect("the CSV parses");
    // The second batch's middle row has no grade (a null in a column the schema requires).
    let second = batch_with_grades(&rows[3..6], Some([Some(1), None, Some(3)].into_iter().collect()));

    let out = risk::run_batch_arrow(risk::ArrowInputs { applications: vec![batch(&rows[..3], true), second] })
        .expect("Arrow run");
    let ids = out.decided.column(0).as_any().downcast_ref::<Int64Array>().expect("id: Int64");
    let scored: Vec<i64> = ids.values().to_vec();
    assert_eq!(scored, [rows[0].id, rows[1].id, rows[2].id, rows[3].id, rows[5].id]);

    let rejected = &out.rejected;
    assert_eq!(rejected.num_rows(), 1);
    let text = |name: &str| -> String {
        let column = rejected.column_by_name(name).unwrap_or_else(|| panic!("a column `{name}`"));
        column.as_any().downcast_ref::<StringArray>().expect("text").value(0).to_string()
    };
    assert_eq!(text("source"), "applications");
    // Its place among all the input's rows, as a typed run names it.
    assert_eq!(text("position"), "applications[4]");
    assert_eq!(text("reason"), "applications: field `grade`: null, but the schema requires a value");
    let raw: serde_json::Value = serde_json::from_str(&text("raw")).expect("the row as JSON");
    assert_eq!(raw["id"], rows[4].id);
    assert!(raw["grade"].is_null());
}
