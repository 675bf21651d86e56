//! The `pipeline!` macro's failures as users meet them: programs that must not compile carry
//! the compiler's diagnostics, at the spans of the tokens they point at, snapshotted in
//! `.stderr` files next to them (`PIPE_BLESS=1 cargo test -p pipe-macros --test ui` rewrites
//! them). The programs that compile are plain tests (`tests/pipelines.rs`).
//!
//! Each program is given to `rustc` with the proc macro this test was built with: a check takes a
//! tenth of a second, where a separate crate built for the purpose (trybuild's way) compiled the
//! whole compiler a second time, 70 s on a cold suite.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The compiled proc macro this test was linked with: of the `libpipe_macros-*` libraries in
/// the test's folder (cargo's `deps/`), the newest one built before the test binary. Others are
/// other builds' (another feature set, clippy's); asking cargo instead would resolve features
/// for another selection of packages and compile the compiler again.
fn proc_macro_library() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary");
    let linked = std::fs::metadata(&exe).and_then(|m| m.modified()).expect("the test binary's time");
    let deps = exe.parent().expect("the test binary's folder");
    let suffix = std::env::consts::DLL_SUFFIX;
    let prefix = format!("{}pipe_macros-", std::env::consts::DLL_PREFIX);
    std::fs::read_dir(deps)
        .expect("the test binary's folder")
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix) && n.ends_with(suffix)))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .filter(|(built, _)| *built <= linked)
        .max()
        .map(|(_, path)| path)
        .unwrap_or_else(|| panic!("no {prefix}*{suffix} in {}", deps.display()))
}

/// What rustc printed, without the closing count that changes with rustc versions, and with the
/// crate's folder written `$CRATE` (it is wherever the checkout is).
fn normalized(stderr: &[u8], manifest: &Path) -> String {
    let text = String::from_utf8_lossy(stderr).replace(&manifest.display().to_string(), "$CRATE");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("error: aborting due to") && !l.starts_with("For more information about"))
        .collect();
    format!("{}\n", kept.join("\n").trim_end())
}

#[test]
fn programs_that_must_not_compile_report_the_expected_diagnostics() {
    let library = proc_macro_library();
    let deps = library.parent().expect("the library's folder");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out_dir = std::env::temp_dir().join(format!("pipe-macros-ui-{}", std::process::id()));
    let bless = std::env::var_os("PIPE_BLESS").is_some();
    let mut programs: Vec<PathBuf> = std::fs::read_dir(manifest.join("tests/ui/fail"))
        .expect("tests/ui/fail")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    programs.sort();
    assert!(programs.len() >= 5, "the failing programs are missing: {programs:?}");
    let mut problems = Vec::new();
    for program in &programs {
        let relative = program.strip_prefix(manifest).expect("under the crate");
        let out = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
            .args(["--edition", "2021", "--crate-type", "bin", "--emit=metadata", "--color", "never"])
            .arg("--out-dir")
            .arg(&out_dir)
            .arg("--extern")
            .arg(format!("pipe_macros={}", library.display()))
            .arg("-L")
            .arg(format!("dependency={}", deps.display()))
            .arg(relative)
            .current_dir(manifest)
            // What the macro reads relative paths against, as under cargo.
            .env("CARGO_MANIFEST_DIR", manifest)
            .output()
            .expect("rustc runs");
        if out.status.success() {
            problems.push(format!("{} compiled, but must not", relative.display()));
            continue;
        }
        let got = normalized(&out.stderr, manifest);
        let snapshot = program.with_extension("stderr");
        if bless {
            std::fs::write(&snapshot, &got).expect("write the snapshot");
        } else if std::fs::read_to_string(&snapshot).ok().as_deref() != Some(got.as_str()) {
            problems.push(format!(
                "{} reported something else than {}:\n{got}",
                relative.display(),
                snapshot.display()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&out_dir);
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
