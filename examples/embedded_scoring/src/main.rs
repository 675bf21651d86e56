//! Scores the applications of a CSV file (default: the 500 feature rows of
//! `examples/batch_scoring`) and prints how many are approved and which go to review.

use std::process::ExitCode;

use pipe_example_embedded_scoring::{read_applications, risk};

fn main() -> ExitCode {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../batch_scoring/data/features.csv").to_string());
    let report = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {path}: {e}"))
        .and_then(|text| read_applications(&text).map_err(|e| format!("{path}: {e}")))
        .and_then(|applications| {
            risk::run_batch(risk::Inputs { applications }).map_err(|e| format!("the pipeline failed: {e}"))
        });
    let out = match report {
        Ok(out) => out,
        Err(e) => {
            #[allow(clippy::print_stderr, reason = "the program's error report")]
            {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    let review: Vec<&risk::DecidedRow> = out.decided.iter().filter(|d| d.decision == "review").collect();
    #[allow(clippy::print_stdout, reason = "the program's report")]
    {
        println!(
            "{} applications: {} approved, {} to review",
            out.decided.len(),
            out.decided.len() - review.len(),
            review.len()
        );
        for d in review.iter().take(5) {
            println!("  review #{} (grade {}): p(default) = {:.3}", d.id, d.grade, d.p_default);
        }
        if !out.rejected.is_empty() {
            println!("{} rows rejected; first: {}", out.rejected.len(), out.rejected[0].reason);
        }
    }
    ExitCode::SUCCESS
}
