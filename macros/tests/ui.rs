//! The `pipeline!` macro's failures as users meet them: programs that must not compile carry
//! the compiler's diagnostics, at the spans of the tokens they point at, snapshotted in
//! `.stderr` files (`TRYBUILD=overwrite cargo test -p pipe-macros` rewrites them). The programs
//! that compile are plain tests (`tests/pipelines.rs`): built with the workspace, they share its
//! compiled dependencies, and trybuild, left with only failures, checks instead of building.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
}
