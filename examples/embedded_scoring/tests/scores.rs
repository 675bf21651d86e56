//! The embedded pipeline scores every application as LightGBM itself does (the reference
//! predictions of `examples/batch_scoring`, made by the `lightgbm` Python package) and decides
//! by the threshold.

use pipe_example_embedded_scoring::{read_applications, risk, REVIEW_ABOVE};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../batch_scoring/data");

#[test]
fn scores_match_lightgbm_and_decisions_follow_the_threshold() {
    let text = std::fs::read_to_string(format!("{DATA}/features.csv")).expect("features");
    let applications = read_applications(&text).expect("the CSV parses");
    assert_eq!(applications.len(), 500);
    let reference: Vec<(i64, f64)> = std::fs::read_to_string(format!("{DATA}/reference_predictions.csv"))
        .expect("reference predictions")
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[0].parse().expect("id"), cells[1].parse().expect("lgb_default"))
        })
        .collect();

    let out = risk::run_batch(risk::Inputs { applications }).expect("the pipeline runs");
    assert!(out.rejected.is_empty(), "{:?}", out.rejected.first());
    assert_eq!(out.decided.len(), reference.len());
    let mut review = 0;
    for (row, (id, p)) in out.decided.iter().zip(&reference) {
        assert_eq!(row.id, *id);
        assert!((row.p_default - p).abs() <= 1e-6, "application {id}: {} vs LightGBM's {p}", row.p_default);
        let expected = if row.p_default >= REVIEW_ABOVE { "review" } else { "approve" };
        assert_eq!(row.decision, expected);
        review += usize::from(expected == "review");
    }
    // The threshold splits the rows: both decisions occur.
    assert!(review > 0 && review < out.decided.len(), "{review} of {} to review", out.decided.len());
}

#[test]
fn an_empty_batch_gives_empty_outputs() {
    let out = risk::run_batch(risk::Inputs::default()).expect("the pipeline runs");
    assert!(out.decided.is_empty() && out.rejected.is_empty());
}
