//! Compiles `grades.pipe` into `$OUT_DIR/grades.rs`; an error in the pipeline fails the build
//! with the same diagnostics as `pipec check`.

fn main() -> Result<(), pipe_build::Error> {
    pipe_build::Config::new().strict(true).compile(&["grades.pipe", "spreads.pipe"])?;
    Ok(())
}
