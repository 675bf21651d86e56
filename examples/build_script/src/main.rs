//! Runs `grades.pipe` with its declared connectors, like the binary `pipec build` would make:
//! `cargo run -p pipe-example-build-script -- --sink grade_report=/tmp/grades`.

fn main() -> std::process::ExitCode {
    pipe_example_build_script::grades::main()
}
