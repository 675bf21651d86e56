//! Scores the applications of a CSV file (default: the 500 feature rows of
//! `examples/batch_scoring`) of at most a given amount (default 40,000) and prints, per grade and
//! band, how many there are, what they ask for and their mean probability of default.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../batch_scoring/data/features.csv").to_string());
    let max_amount = match args.next().map(|a| a.parse::<f64>()) {
        None => 40_000.0,
        Some(Ok(a)) if a.is_finite() => a,
        _ => {
            #[allow(clippy::print_stderr, reason = "the program's error report")]
            {
                eprintln!("error: the largest loan amount must be a finite number");
            }
            return ExitCode::FAILURE;
        }
    };
    let report =
        match pipe_example_datafusion::review(&path, &pipe_example_datafusion::applications_up_to(max_amount)).await {
            Ok(report) => report,
            Err(e) => {
                #[allow(clippy::print_stderr, reason = "the program's error report")]
                {
                    eprintln!("error: {path}: {e}");
                }
                return ExitCode::FAILURE;
            }
        };
    let table = match pipe_example_datafusion::table(&report.summary) {
        Ok(table) => table,
        Err(e) => {
            #[allow(clippy::print_stderr, reason = "the program's error report")]
            {
                eprintln!("error: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    #[allow(clippy::print_stdout, reason = "the program's report")]
    {
        println!("{} applications scored, {} rejected", report.scored, report.rejected.num_rows());
        println!("{table}");
    }
    ExitCode::SUCCESS
}
