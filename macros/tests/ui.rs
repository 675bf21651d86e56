//! The `pipeline!` macro's failures as users meet them: programs that must not compile carry
//! the compiler's diagnostics, at the spans of the tokens they point at, snapshotted in
//! `.stderr` files next to them (`PIPE_BLESS=1 cargo test -p pipe-macros --test ui` rewrites
//! them). The programs that compile are plain tests (`tests/pipelines.rs`).
//!
//! Each program is given to `rustc` with the proc macro the workspace build compiled (cargo names
//! its file): a check takes a tenth of a second, where a separate crate built for the purpose
//! (trybuild's way) compiled the whole compiler a second time, 70 s on a cold suite.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The compiled proc macro, as cargo reports it (fresh: nothing is rebuilt).
fn proc_macro_library() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--quiet", "-p", "pipe-macros", "--message-format=json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo build -p pipe-macros: {}", String::from_utf8_lossy(&out.stderr));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let kinds = &message["target"]["kind"];
        if message["reason"] == "compiler-artifact"
            && message["target"]["name"] == "pipe_macros"
            && kinds.as_array().is_some_and(|k| k.iter().any(|k| k == "proc-macro"))
        {
            if let Some(file) = message["filenames"].get(0).and_then(|f| f.as_str()) {
                return PathBuf::from(file);
            }
        }
    }
    panic!("cargo named no proc-macro library for pipe-macros");
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
