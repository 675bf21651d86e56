//! `pipec check` as a user runs it: exit codes, human and JSON output, every error reported.
#![allow(clippy::disallowed_methods, reason = "the CLI is tested on real files")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cases() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cases")
}

fn pipec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pipec")).args(args).current_dir(cases()).output().expect("pipec runs")
}

#[test]
fn a_clean_program_exits_zero() {
    let out = pipec(&["check", "--color", "never", "valid/windows.pipe", "valid/imports/main.pipe"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 files checked: 0 errors, 0 warnings"));
}

#[test]
fn errors_exit_one_and_every_error_is_printed_with_code_span_and_help() {
    let out = pipec(&["check", "--color", "never", "invalid/types.pipe"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    // One run shows all of them, not just the first.
    for code in ["E2001", "E2002", "E2003", "E2004", "E2008", "W0003"] {
        assert!(text.contains(code), "{code} missing from:\n{text}");
    }
    assert!(text.contains("invalid/types.pipe:17:11"), "no file:line:col in:\n{text}");
    assert!(text.contains("help: handle the null first"), "no help line in:\n{text}");
    assert!(text.contains("25 errors, 1 warning"), "{text}");
}

#[test]
fn warnings_alone_do_not_fail() {
    let dir = std::env::temp_dir().join(format!("pipec-warn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("s.thrift"), "struct R { 1: required string id }").expect("write");
    std::fs::write(
        dir.join("w.pipe"),
        "include \"s.thrift\"\nsource r: R { batch = files(\"r.jsonl\") }\nstream unused = r | select { id }\n",
    )
    .expect("write");
    let out =
        Command::new(env!("CARGO_BIN_EXE_pipec")).args(["check", "w.pipe"]).current_dir(&dir).output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("W0001"));
}

#[test]
fn a_missing_file_exits_two() {
    let out = pipec(&["check", "no/such/file.pipe"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read `no/such/file.pipe`: file not found"));
    // An unreadable root outranks errors in the other files.
    let out = pipec(&["check", "invalid/types.pipe", "no/such/file.pipe"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn json_output_is_machine_readable() {
    let out = pipec(&["check", "--format", "json", "invalid/names.pipe", "missing.pipe"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    assert_eq!(v["files"][0]["status"], "checked");
    assert_eq!(v["files"][1]["status"], "unreadable");
    let diags = v["diagnostics"].as_array().expect("a list");
    let first = &diags[0];
    assert_eq!(first["code"], "E1001");
    assert_eq!(first["severity"], "error");
    assert_eq!(first["location"]["file"], "invalid/names.pipe");
    assert_eq!(first["location"]["line"], 3);
    assert_eq!(first["location"]["column"], 9);
    assert!(first["help"].as_str().is_some_and(|h| h.contains("relative to the file")));
    let unknown_type = diags.iter().find(|d| d["code"] == "E1004").expect("E1004 reported");
    assert_eq!(unknown_type["help"], "did you mean `LoanApplication`?");
    assert_eq!(v["errors"].as_u64(), Some(diags.iter().filter(|d| d["severity"] == "error").count() as u64));
}

#[test]
fn secondary_labels_in_other_files_are_shown() {
    let out = pipec(&["check", "--color", "never", "invalid/cycle/main.pipe"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("include cycle: invalid/cycle/a.thrift → invalid/cycle/b.thrift → invalid/cycle/a.thrift"),
        "{text}"
    );
}
