//! The `pipeline!` macro as users meet it: passing programs compile, run on rows in memory
//! and check what comes out; failing programs carry the compiler's diagnostics, snapshotted in
//! `.stderr` files (`TRYBUILD=overwrite cargo test -p pipe-macros` rewrites them).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
