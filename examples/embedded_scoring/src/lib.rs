//! Loan applications scored inside a Rust program: the pipeline is written inline with
//! `pipeline!`, checked by the same compiler as `pipec` when this crate compiles (a typo, a
//! type error or a leak of a labeled field fails `cargo build` at the offending token), and
//! runs on rows the program already holds with `risk::run_batch`.
//!
//! The schema (shared with `examples/batch_scoring`) and the model are files, read relative to
//! this crate's `Cargo.toml`; the model is compiled into the binary, so it needs nothing at run
//! time.

pipe_macros::pipeline! {
    namespace credit.risk
    include "../batch_scoring/features.thrift"

    source applications: LoanFeatures {
      // Read by `risk::run` (declared connectors); `run_batch` takes rows from the caller.
      batch = files("../batch_scoring/data/features.csv", format = csv)
    }

    model default_lgb = lightgbm("models/lgb_default.txt")

    stream decisions = applications
      | score default_lgb {
          annual_income, debt_to_income, months_since_last_delinq, inquiries_last_12m,
          total_credit_limit, loan_amount, term, grade,
        } as p_default
      | derive { decision = if p_default >= 0.1 then "review" else "approve" }
      | select { id, grade, p_default, decision }

    sink decided = stdout(format = json)

    decisions -> decided
}

/// Applications whose probability of default is at least this go to a person (the threshold
/// the pipeline's `derive` step uses).
pub const REVIEW_ABOVE: f64 = 0.1;

/// Reads feature rows from CSV (a header, then one application per line).
pub fn read_applications(csv_text: &str) -> Result<Vec<risk::LoanFeatures>, pipe_runtime::prelude::csv::Error> {
    pipe_runtime::prelude::csv::Reader::from_reader(csv_text.as_bytes()).deserialize().collect()
}
