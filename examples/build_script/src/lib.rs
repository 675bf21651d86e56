//! Pipelines kept as `.pipe` files and compiled into this crate by its build script: `build.rs`
//! calls `pipe_build`, which checks `grades.pipe` and `spreads.pipe` with the same compiler as `pipec` and writes
//! the modules `grades` and `spreads` (typed rows, `Inputs`, `Outputs`, `run_batch`, `run`) to `OUT_DIR`.

pipe_runtime::include_pipeline!("grades");
pipe_runtime::include_pipeline!("spreads");
