//! A Pipe module inside a DataFusion program. DataFusion reads the applications' CSV file and
//! selects the rows to score with SQL; the pipeline — written inline with `pipeline!`, checked
//! and compiled with this crate, its model compiled in — scores them on DataFusion's own record
//! batches (`review::run_batch_arrow`); its output is registered as a table and summed up with
//! SQL again. DataFusion 55 and Pipe share arrow-rs 59: the batches cross as they are.

use datafusion::arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::prelude::{CsvReadOptions, SessionContext};

pipe_macros::pipeline! {
    namespace credit.review
    include "../batch_scoring/features.thrift"

    source applications: LoanFeatures {
      // Read by `review::run` (declared connectors); the SQL query below feeds `run_batch_arrow`.
      batch = files("../batch_scoring/data/features.csv", format = csv)
    }

    model default_lgb = lightgbm("../embedded_scoring/models/lgb_default.txt")

    stream scored = applications
      | score default_lgb {
          annual_income, debt_to_income, months_since_last_delinq, inquiries_last_12m,
          total_credit_limit, loan_amount, term, grade,
        } as p_default
      | derive {
          band = if p_default >= 0.2 then "decline" else if p_default >= 0.1 then "review" else "approve"
        }
      | select { id, grade, loan_amount, p_default, band }

    sink bands = stdout(format = json)

    scored -> bands
}

/// Where the pipeline's `derive` step draws its bands: at or above `DECLINE_AT` an application
/// is declined, at or above `REVIEW_AT` it goes to a person, below it is approved.
pub const DECLINE_AT: f64 = 0.2;
pub const REVIEW_AT: f64 = 0.1;

/// The applications main.rs scores: every column of the CSV file as DataFusion reads it (it
/// infers the amounts written as whole numbers as `Int64`; the module reads integer columns
/// into its `double` fields), the loans of at most `max_amount`.
pub fn applications_up_to(max_amount: f64) -> String {
    format!("SELECT * FROM applications WHERE loan_amount <= {max_amount}")
}

/// Per grade and band: how many applications, the money they ask for, their mean probability
/// of default.
pub const SUMMARY: &str = "
    SELECT grade, band, COUNT(*) AS applications, SUM(loan_amount) AS amount,
           AVG(p_default) AS mean_p_default
    FROM scored
    GROUP BY grade, band
    ORDER BY grade, band";

/// What a run found: the summary, how many applications were scored, and the rows the pipeline
/// rejected (a column `reason` says why).
#[derive(Debug)]
pub struct Report {
    pub summary: Vec<RecordBatch>,
    pub scored: usize,
    pub rejected: RecordBatch,
}

/// Reads the CSV file at `csv_path` with DataFusion as the table `applications`, scores the
/// rows the SQL query `selection` returns with the pipeline, and sums its output up per grade
/// and band.
pub async fn review(csv_path: &str, selection: &str) -> Result<Report, DataFusionError> {
    let ctx = SessionContext::new();
    ctx.register_csv("applications", csv_path, CsvReadOptions::new()).await?;
    let applications = ctx.sql(selection).await?.collect().await?;
    let out = review::run_batch_arrow(review::ArrowInputs { applications })
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let scored = out.bands.num_rows();
    ctx.register_batch("scored", out.bands)?;
    let summary = ctx.sql(SUMMARY).await?.collect().await?;
    Ok(Report { summary, scored, rejected: out.rejected })
}

/// The summary as a table for people.
pub fn table(batches: &[RecordBatch]) -> Result<String, DataFusionError> {
    Ok(datafusion::arrow::util::pretty::pretty_format_batches(batches)?.to_string())
}
