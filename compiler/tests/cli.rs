//! `pipec` as a user runs it: exit codes, human and JSON output, every error reported, builds
//! refused with the reason.
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
    assert!(text.contains("invalid/types.pipe:17:9"), "no file:line:col in:\n{text}");
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
fn a_runtime_feature_that_does_not_exist_is_refused_before_anything_is_built() {
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["build", "valid/windows.pipe"])
        .current_dir(cases())
        .env("PIPE_RUNTIME_FEATURES", "s3, kafak")
        .env("PIPE_CACHE_DIR", std::env::temp_dir().join(format!("pipe-features-{}", std::process::id())))
        .output()
        .expect("pipec runs");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: PIPE_RUNTIME_FEATURES names `kafak`, which is not a feature of the runtime (its features: kafka, postgres, redis, s3, arrow; or `all`)\n"
    );
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

fn sarif_of(dir: &Path, args: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_pipec")).args(args).current_dir(dir).output().expect("pipec runs");
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v)
}

/// What GitHub code scanning requires of an upload, checked field by field (SARIF 2.1.0).
fn assert_code_scanning_accepts(log: &serde_json::Value) {
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().is_some_and(|s| s.contains("sarif-2.1.0")));
    let run = &log["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "pipec");
    let rules = run["tool"]["driver"]["rules"].as_array().expect("rules");
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().expect("rule id")).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids.len(), unique.len(), "rule ids are unique");
    for r in rules {
        assert!(r["shortDescription"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(r["help"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(["error", "warning", "note"].contains(&r["defaultConfiguration"]["level"].as_str().unwrap_or("")));
    }
    let results = run["results"].as_array().expect("results");
    assert!(!results.is_empty());
    for r in results {
        let id = r["ruleId"].as_str().expect("ruleId");
        let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
        assert_eq!(ids[index], id, "ruleIndex points at the rule");
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap_or("")));
        assert!(r["message"]["text"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(r["partialFingerprints"].as_object().is_some_and(|f| !f.is_empty()));
        let locations: Vec<&serde_json::Value> = r["locations"]
            .as_array()
            .expect("a location")
            .iter()
            .chain(r["codeFlows"].as_array().into_iter().flatten().flat_map(|cf| {
                cf["threadFlows"][0]["locations"].as_array().expect("thread flow steps").iter().map(|l| &l["location"])
            }))
            .collect();
        for l in locations {
            let pl = &l["physicalLocation"];
            let uri = pl["artifactLocation"]["uri"].as_str().expect("uri");
            assert!(
                !uri.starts_with('/') && !uri.contains(".."),
                "uri `{uri}` must be relative to the repository root"
            );
            assert_eq!(pl["artifactLocation"]["uriBaseId"], "%SRCROOT%");
            assert!(pl["region"]["startLine"].as_u64().is_some_and(|n| n >= 1));
            assert!(pl["region"]["startColumn"].as_u64().is_some_and(|n| n >= 1));
        }
    }
}

#[test]
fn sarif_output_is_accepted_by_code_scanning_and_shows_the_flow() {
    let (code, log) = sarif_of(&cases(), &["check", "--format", "sarif", "privacy/leaks/through_user_function.pipe"]);
    assert_eq!(code, Some(1));
    assert_code_scanning_accepts(&log);
    let result = &log["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "P003");
    assert_eq!(
        result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "tests/cases/privacy/leaks/through_user_function.pipe"
    );
    let steps: Vec<&str> = result["codeFlows"][0]["threadFlows"][0]["locations"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["location"]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(steps.first(), Some(&"tests/cases/schemas/partner.thrift"), "the flow starts at the labeled field");
    assert!(steps.len() >= 4, "{steps:?}");
}

#[test]
fn fingerprints_do_not_change_when_lines_move() {
    let dir = std::env::temp_dir().join(format!("pipec-sarif-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::write(dir.join("s.thrift"), "struct R { 1: required string email (pii = \"user.contact.email\") }")
        .expect("write");
    let program = "include \"s.thrift\"\nsource r: R { batch = files(\"r.jsonl\") }\nstream s = r | select { email }\ns -> stdout()\n";
    std::fs::write(dir.join("p.pipe"), program).expect("write");
    let (_, before) = sarif_of(&dir, &["check", "--format", "sarif", "p.pipe"]);
    std::fs::write(dir.join("p.pipe"), format!("// moved\n\n\n{program}")).expect("write");
    let (_, after) = sarif_of(&dir, &["check", "--format", "sarif", "p.pipe"]);
    let (a, b) = (&before["runs"][0]["results"][0], &after["runs"][0]["results"][0]);
    assert_eq!(a["partialFingerprints"], b["partialFingerprints"]);
    let line = |r: &serde_json::Value| r["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64();
    assert_eq!(line(a).map(|l| l + 3), line(b));
    assert_code_scanning_accepts(&after);
}

#[test]
fn warn_only_reports_without_failing() {
    let (code, log) =
        sarif_of(&cases(), &["check", "--format", "sarif", "--warn-only", "privacy/leaks/raw_email.pipe"]);
    assert_eq!(code, Some(0));
    assert_eq!(log["runs"][0]["results"][0]["level"], "warning");
    let out = pipec(&["check", "--warn-only", "privacy/leaks/raw_email.pipe"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("P003"));
}

#[test]
fn strict_fails_on_implicit_flows() {
    assert_eq!(pipec(&["check", "privacy/leaks/implicit_where.pipe"]).status.code(), Some(0));
    assert_eq!(pipec(&["check", "--strict", "privacy/leaks/implicit_where.pipe"]).status.code(), Some(1));
}

#[test]
fn privacy_report_lists_every_sink_column_with_its_origin() {
    let out = pipec(&["privacy-report", "--format", "json", "valid/design/main.pipe"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let columns = v["columns"].as_array().expect("columns");
    let member = columns.iter().find(|c| c["sink"] == "warehouse" && c["field"] == "member").expect("warehouse.member");
    let label = &member["labels"][0];
    assert_eq!(label["category"], "user.unique_id");
    assert_eq!(label["form"], "pseudonymized");
    assert_eq!(label["allowed"], true);
    assert!(label["path"][0]["at"].as_str().is_some_and(|a| a.ends_with("schemas/partner.thrift:14:43")), "{label}");
    let report = columns.iter().find(|c| c["sink"] == "report" && c["field"] == "avg_util").expect("report.avg_util");
    assert!(report["labels"].as_array().expect("labels").iter().all(|l| l["form"] == "aggregated"));
    let human = pipec(&["privacy-report", "valid/design/main.pipe"]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("sink warehouse") && text.contains("user.unique_id as pseudonymized"), "{text}");
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pipec-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn very_long_lines_are_reported_without_a_snippet_instead_of_crashing() {
    let dir = temp_dir("wide");
    std::fs::write(dir.join("wide.pipe"), format!("{}$\n", " ".repeat(70_000))).expect("write");
    std::fs::write(dir.join("brackets.pipe"), "[".repeat(100_000)).expect("write");
    for f in ["wide.pipe", "brackets.pipe"] {
        let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
            .args(["check", "--color", "never", f])
            .current_dir(&dir)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{f}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["check", "--color", "never", "wide.pipe"])
        .current_dir(&dir)
        .output()
        .expect("runs");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error[E0003]: invalid character `$`\n  --> wide.pipe:1:70001")
    );
}

#[test]
fn long_flat_expressions_hit_the_nesting_limit_instead_of_the_stack() {
    let dir = temp_dir("flat");
    let sum = format!("fn f(x: i64) -> i64 = x{}\n", " + x".repeat(3_000));
    let fields = format!("fn g(x: i64) -> i64 = x{}\n", ".a".repeat(3_000));
    let coalesce = format!("fn h(x: i64?) -> i64 = x{} 1\n", " ?? x".repeat(3_000));
    for (name, text) in [("sum.pipe", sum), ("fields.pipe", fields), ("coalesce.pipe", coalesce)] {
        std::fs::write(dir.join(name), text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
            .args(["check", "--format", "json", name])
            .current_dir(&dir)
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("nesting is too deep"), "{name}");
    }
}

#[cfg(unix)]
#[test]
#[allow(clippy::print_stderr, reason = "a skipped test says why")]
fn special_files_are_unreadable_not_waited_on() {
    let dir = temp_dir("fifo");
    let fifo = dir.join("pipe.pipe");
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().map(|s| s.success()).unwrap_or(false);
    if !made {
        eprintln!("skipped: mkfifo is not available");
        return;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["check", "pipe.pipe"])
        .current_dir(&dir)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a regular file"));
}

#[test]
fn human_and_json_columns_agree_after_non_ascii_text() {
    let dir = temp_dir("columns");
    std::fs::write(dir.join("s.thrift"), "struct R { 1: required string state }").expect("write");
    std::fs::write(dir.join("m.pipe"), "include \"s.thrift\"\nsource r: R { batch = files(\"x\") }\nstream s = r | select { a = \"üüüü\", y = stat }\ns -> stdout()\n")
        .expect("write");
    let human = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["check", "--color", "never", "m.pipe"])
        .current_dir(&dir)
        .output()
        .expect("runs");
    assert!(
        String::from_utf8_lossy(&human.stderr).contains("[m.pipe:3:41]"),
        "{}",
        String::from_utf8_lossy(&human.stderr)
    );
    let json = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["check", "--format", "json", "m.pipe"])
        .current_dir(&dir)
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(v["diagnostics"][0]["location"]["column"], 41);
}

#[test]
fn explain_prints_the_optimized_plan_or_refuses_a_broken_program() {
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["explain", "pipeline.pipe"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/partner_offers"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("plan credit.partner_offers:"), "{text}");
    assert!(text.contains("exchange by member") && text.contains("aggregate (k >= 10)"), "{text}");
    assert!(text.contains("`applications` deserializes 4 of 9 fields"), "{text}");
    let unoptimized = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["explain", "--unoptimized", "pipeline.pipe"])
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/partner_offers"))
        .output()
        .expect("runs");
    assert!(!String::from_utf8_lossy(&unoptimized.stdout).contains("optimizations:"));
    let broken = pipec(&["explain", "--", "invalid/types.pipe"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("no plan: the program has errors"));
}

#[test]
fn build_refuses_programs_with_errors_or_unsupported_constructs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("repo").to_path_buf();
    // A program that checks clean, but with constructs the code generator cannot compile (a
    // PostgreSQL table and an S3 prefix followed as streams, a computed quantile): each is named.
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["build", "tests/cases/invalid/codegen_unsupported.pipe"])
        .current_dir(&repo)
        .env("NO_COLOR", "1")
        .output()
        .expect("pipec runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("E3001") && err.contains("the `postgres` connector has no runner yet"), "{err}");
    assert!(err.contains("the `s3` connector has no runner yet"), "{err}");
    assert!(err.contains("not built: 3 errors"), "{err}");
    // A type error stops the build before any code is generated.
    let out = pipec(&["build", "invalid/types.pipe"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E2002"));
    let out = pipec(&["build", "no/such/file.pipe"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn build_checks_where_the_binary_goes_before_building() {
    let out = pipec(&["build", "valid/windows.pipe", "-o", "/nonexistent-pipe-dir/bin"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("cannot write `/nonexistent-pipe-dir/bin`: its folder `/nonexistent-pipe-dir`"), "{text}");
    assert!(!text.contains("compiled"), "nothing is built first: {text}");
    let dir = temp_dir("build-out-dir");
    let out = pipec(&["build", "valid/windows.pipe", "-o", dir.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("it is a folder"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn privacy_report_lists_the_default_rejected_output_as_a_sink() {
    let out = pipec(&["privacy-report", "privacy/leaks/default_rejected_raw.pipe"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sink rejected/ (the default)"), "{text}");
    assert!(text.contains("user.government_id as raw  DENIED"), "{text}");
}

/// `pipec graph`: every edge carries the labels of the rows crossing it with their forms; the
/// edge on which a label reaches a sink that does not allow it is red, in DOT and in Mermaid.
#[test]
fn graph_labels_edges_with_forms_and_draws_leaks_in_red() {
    let out = pipec(&["graph", "privacy/leaks/aggregate_without_k.pipe"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let dot = String::from_utf8_lossy(&out.stdout);
    let edges = || dot.lines().filter(|l| l.split_whitespace().nth(1) == Some("->"));
    let red: Vec<&str> = edges().filter(|l| l.contains("#dc2626")).collect();
    assert_eq!(red.len(), 1, "{dot}");
    assert!(red[0].contains("LEAK s.total: user.financial.income raw"), "{dot}");
    assert!(dot.contains("key exchange by state\\naggregate total"), "{dot}");
    let out = pipec(&["graph", "--format", "mermaid", "privacy/leaks/aggregate_without_k.pipe"]);
    let mermaid = String::from_utf8_lossy(&out.stdout);
    assert!(mermaid.starts_with("---\ntitle:"), "{mermaid}");
    assert_eq!(mermaid.matches("linkStyle").count(), 1, "{mermaid}");

    // The main example: the source edge carries the raw ids, the edge into the warehouse their
    // pseudonyms; no leak anywhere.
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/partner_ingest");
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["graph", "pipeline.pipe"])
        .current_dir(&ex)
        .output()
        .expect("runs");
    let dot = String::from_utf8_lossy(&out.stdout);
    assert!(!dot.contains("#dc2626"), "{dot}");
    let edge = |from: &str, to: &str| {
        let id = |label: &str| {
            dot.lines().find(|l| l.contains(&format!("label=\"{label}"))).and_then(|l| l.split_whitespace().next())
        };
        let (f, t) = (id(from).expect(from), id(to).expect(to));
        dot.lines().find(|l| l.trim_start().starts_with(&format!("{f} -> {t} "))).unwrap_or_default().to_string()
    };
    let from_source = edge("source applications", "explode tradelines");
    assert!(from_source.contains("user.unique_id: raw"), "{from_source}");
    let into_sink = edge("where balance", "sink warehouse");
    assert!(into_sink.contains("user.unique_id: pseudonymized"), "{into_sink}");
    assert!(into_sink.contains("user.financial.account_number: pseudonymized"), "{into_sink}");
    assert!(!into_sink.contains("government_id"), "the select drops the SSN: {into_sink}");

    // A program with type errors is not drawn; SVG without Graphviz says what to install.
    let out = pipec(&["graph", "invalid/types.pipe"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no graph"));
    let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
        .args(["graph", "--format", "svg", "privacy/leaks/aggregate_without_k.pipe"])
        .current_dir(cases())
        .env("PATH", "")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("apt-get install graphviz"));
}

/// The README's picture of the main example is the graph of the example as it is now:
/// `examples/partner_ingest/pipeline.dot` always, and its SVG where Graphviz is installed (CI
/// installs it and sets PIPE_REQUIRE_GRAPHVIZ). `PIPE_BLESS=1` rewrites both.
#[test]
#[allow(clippy::print_stderr, reason = "a skipped comparison says why")]
fn the_readme_picture_of_the_main_example_is_current() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/partner_ingest");
    let graph = |format: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_pipec"))
            .args(["graph", "--format", format, "pipeline.pipe"])
            .current_dir(&ex)
            .output()
            .expect("runs");
        (out.status.code(), out.stdout, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let bless = std::env::var_os("PIPE_BLESS").is_some();
    let (code, dot, err) = graph("dot");
    assert_eq!(code, Some(0), "{err}");
    if bless {
        std::fs::write(ex.join("pipeline.dot"), &dot).expect("bless");
    }
    let stale = "is stale: run `PIPE_BLESS=1 cargo test -p pipe-compiler --test cli the_readme_picture`";
    assert!(std::fs::read(ex.join("pipeline.dot")).ok() == Some(dot), "examples/partner_ingest/pipeline.dot {stale}");
    let have_dot = Command::new("dot").arg("-V").output().is_ok_and(|o| o.status.success());
    if !have_dot {
        assert!(
            std::env::var_os("PIPE_REQUIRE_GRAPHVIZ").is_none(),
            "PIPE_REQUIRE_GRAPHVIZ is set but `dot` is missing"
        );
        eprintln!("skipping the SVG comparison: Graphviz's `dot` is not installed");
        return;
    }
    let (code, svg, err) = graph("svg");
    assert_eq!(code, Some(0), "{err}");
    if bless {
        std::fs::write(ex.join("pipeline.svg"), &svg).expect("bless");
    }
    assert!(std::fs::read(ex.join("pipeline.svg")).ok() == Some(svg), "examples/partner_ingest/pipeline.svg {stale}");
}

/// A minimal LSP client over the server's stdio: framed JSON-RPC both ways.
struct Lsp {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    messages: std::sync::mpsc::Receiver<serde_json::Value>,
    next_id: i64,
    /// Notifications received while waiting for responses.
    notes: Vec<serde_json::Value>,
}

impl Lsp {
    fn start() -> Lsp {
        use std::io::{BufRead, Read};
        let mut child = Command::new(env!("CARGO_BIN_EXE_pipec"))
            .arg("lsp")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("pipec lsp starts");
        let stdin = child.stdin.take().expect("stdin");
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, messages) = std::sync::mpsc::channel();
        std::thread::spawn(move || loop {
            let mut len = 0;
            loop {
                let mut line = String::new();
                if out.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(n) = line.strip_prefix("Content-Length: ") {
                    len = n.parse().expect("length");
                }
            }
            let mut body = vec![0; len];
            if out.read_exact(&mut body).is_err() {
                return;
            }
            let _ = tx.send(serde_json::from_slice(&body).expect("json"));
        });
        Lsp { child, stdin, messages, next_id: 1, notes: Vec::new() }
    }

    fn send(&mut self, msg: serde_json::Value) {
        use std::io::Write;
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("send");
        self.stdin.flush().expect("flush");
    }

    fn notify(&mut self, method: &str, params: serde_json::Value) {
        self.send(serde_json::json!({ "jsonrpc": "2.0", "method": method, "params": params }));
    }

    fn request(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(serde_json::json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let msg = self.messages.recv_timeout(std::time::Duration::from_secs(60)).expect("a response");
            if msg["id"] == id {
                assert!(msg.get("error").is_none(), "{method}: {msg}");
                return msg["result"].clone();
            }
            self.notes.push(msg);
        }
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &str) -> Vec<serde_json::Value> {
        if let Some(i) = self.notes.iter().position(|n| n["params"]["uri"] == uri) {
            return self.notes.remove(i)["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
        }
        loop {
            let msg = self.messages.recv_timeout(std::time::Duration::from_secs(60)).expect("diagnostics");
            if msg["method"] == "textDocument/publishDiagnostics" && msg["params"]["uri"] == uri {
                return msg["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
            }
            self.notes.push(msg);
        }
    }
}

/// The position (0-based line, UTF-16 column) of the `nth` occurrence of `needle` in `text`,
/// plus `shift` characters.
fn pos_of(text: &str, needle: &str, shift: usize) -> serde_json::Value {
    let at = text.find(needle).expect(needle) + shift;
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    serde_json::json!({ "line": line, "character": col })
}

/// `pipec lsp` driven as an editor drives it: initialize, open the main example, see its
/// diagnostics follow edits (a privacy finding with its path as related information), hover,
/// go to definition into the Thrift file, complete fields after `.`, list symbols, shut down.
#[test]
#[allow(clippy::print_stderr, reason = "the measured re-check time is reported, not asserted")]
fn the_language_server_answers_an_editor_session() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/partner_ingest").canonicalize().expect("example");
    let file = dir.join("pipeline.pipe");
    let uri = format!("file://{}", file.display());
    let text = std::fs::read_to_string(&file).expect("example");
    let mut lsp = Lsp::start();
    let init = lsp.request("initialize", serde_json::json!({ "processId": null, "rootUri": null, "capabilities": {} }));
    let caps = &init["capabilities"];
    assert_eq!(caps["hoverProvider"], true, "{init}");
    assert_eq!(caps["definitionProvider"], true, "{init}");
    assert_eq!(caps["completionProvider"]["triggerCharacters"][0], ".", "{init}");
    lsp.notify("initialized", serde_json::json!({}));
    lsp.notify(
        "textDocument/didOpen",
        serde_json::json!({ "textDocument": { "uri": uri, "languageId": "pipe", "version": 1, "text": text } }),
    );
    assert_eq!(lsp.diagnostics(&uri), Vec::<serde_json::Value>::new(), "the example is clean");

    // The warehouse no longer allows pseudonymized ids: a privacy error with its path.
    let leaky = text.replace("  allow \"user.unique_id\" as pseudonymized\n", "");
    let started = std::time::Instant::now();
    lsp.notify(
        "textDocument/didChange",
        serde_json::json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": leaky }] }),
    );
    let diags = lsp.diagnostics(&uri);
    eprintln!("re-checked after an edit in {:?} (round trip)", started.elapsed());
    let p003 = diags.iter().find(|d| d["code"] == "P003").unwrap_or_else(|| panic!("no P003 in {diags:?}"));
    assert_eq!(p003["severity"], 1);
    let related = p003["relatedInformation"].as_array().expect("the path as related information");
    assert!(
        related.iter().any(|r| r["location"]["uri"].as_str().is_some_and(|u| u.ends_with("partner.thrift"))),
        "{p003}"
    );
    assert!(p003["message"].as_str().is_some_and(|m| m.contains("help:")), "{p003}");
    // A type error points at its line; fixing it clears every diagnostic.
    let broken = text.replace("where balance >= 0", "where balance >= \"zero\"");
    lsp.notify(
        "textDocument/didChange",
        serde_json::json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{ "text": broken }] }),
    );
    let diags = lsp.diagnostics(&uri);
    let line = pos_of(&text, "where balance", 0)["line"].clone();
    assert!(
        diags
            .iter()
            .any(|d| d["range"]["start"]["line"] == line && d["code"].as_str().is_some_and(|c| c.starts_with('E'))),
        "{diags:?}"
    );
    lsp.notify(
        "textDocument/didChange",
        serde_json::json!({ "textDocument": { "uri": uri, "version": 4 }, "contentChanges": [{ "text": text }] }),
    );
    assert_eq!(lsp.diagnostics(&uri), Vec::<serde_json::Value>::new());

    // Hover: a raw id and its pseudonym, with types and labels.
    let at = |needle: &str, shift: usize| serde_json::json!({ "textDocument": { "uri": uri }, "position": pos_of(&text, needle, shift) });
    let raw = lsp.request("textDocument/hover", at("hmac(member_id)", 6));
    let raw = raw["contents"]["value"].as_str().unwrap_or_default().to_string();
    assert!(raw.contains("member_id: string") && raw.contains("`user.unique_id` raw"), "{raw}");
    let masked = lsp.request("textDocument/hover", at("hmac(member_id)", 1));
    let masked = masked["contents"]["value"].as_str().unwrap_or_default().to_string();
    assert!(masked.contains("`user.unique_id` pseudonymized"), "{masked}");
    let stream = lsp.request("textDocument/hover", at("tradeline_rows = applications", 2));
    assert!(
        stream["contents"]["value"]
            .as_str()
            .is_some_and(|v| v.contains("stream tradeline_rows") && v.contains("util: double?")),
        "{stream}"
    );

    // Definitions: a field of a nested struct, a record type, a source, an include.
    let def = lsp.request("textDocument/definition", at("t.account_id", 3));
    assert!(def["uri"].as_str().is_some_and(|u| u.ends_with("schemas/partner.thrift")), "{def}");
    let thrift = std::fs::read_to_string(dir.join("schemas/partner.thrift")).expect("thrift");
    assert_eq!(def["range"]["start"]["line"], pos_of(&thrift, "account_id", 0)["line"], "{def}");
    let def = lsp.request("textDocument/definition", at("LoanApplication {", 1));
    assert_eq!(def["range"]["start"]["line"], pos_of(&thrift, "struct LoanApplication", 0)["line"], "{def}");
    let def = lsp.request("textDocument/definition", at("= applications\n", 4));
    assert_eq!(def["range"]["start"]["line"], pos_of(&text, "source applications", 0)["line"], "{def}");
    let def = lsp.request("textDocument/definition", at("include \"schemas", 10));
    assert!(def["uri"].as_str().is_some_and(|u| u.ends_with("schemas/partner.thrift")), "{def}");

    // Completion after `t.`, typed into the select; then names and functions elsewhere.
    let typing = text.replacen("state,\n", "state,\n    limit = t.cr\n", 1);
    lsp.notify(
        "textDocument/didChange",
        serde_json::json!({ "textDocument": { "uri": uri, "version": 5 }, "contentChanges": [{ "text": typing }] }),
    );
    let _ = lsp.diagnostics(&uri);
    let items = lsp.request(
        "textDocument/completion",
        serde_json::json!({ "textDocument": { "uri": uri }, "position": pos_of(&typing, "limit = t.cr", 12) }),
    );
    let labels: Vec<&str> = items.as_array().expect("items").iter().filter_map(|i| i["label"].as_str()).collect();
    for field in ["account_id", "balance", "credit_limit", "kind"] {
        assert!(labels.contains(&field), "{field} not in {labels:?}");
    }
    assert!(!labels.contains(&"hmac"), "only fields after `.`: {labels:?}");
    let items = lsp.request(
        "textDocument/completion",
        serde_json::json!({ "textDocument": { "uri": uri }, "position": pos_of(&typing, "where balance", 6) }),
    );
    let labels: Vec<&str> = items.as_array().expect("items").iter().filter_map(|i| i["label"].as_str()).collect();
    for name in ["balance", "member", "hmac", "tradeline_rows", "warehouse", "count_distinct"] {
        assert!(labels.contains(&name), "{name} not in {labels:?}");
    }

    let symbols = lsp.request("textDocument/documentSymbol", serde_json::json!({ "textDocument": { "uri": uri } }));
    let names: Vec<&str> = symbols.as_array().expect("symbols").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["applications", "tradeline_rows", "warehouse"], "{symbols}");

    // Across `import`: a function defined in another `.pipe` file, and the import line itself.
    let offers = dir.join("../partner_offers/pipeline.pipe").canonicalize().expect("example");
    let offers_uri = format!("file://{}", offers.display());
    let offers_text = std::fs::read_to_string(&offers).expect("example");
    lsp.notify(
        "textDocument/didOpen",
        serde_json::json!({ "textDocument": { "uri": offers_uri, "languageId": "pipe", "version": 1, "text": offers_text } }),
    );
    assert_eq!(lsp.diagnostics(&offers_uri), Vec::<serde_json::Value>::new());
    let blocks = std::fs::read_to_string(dir.join("../partner_offers/blocks/credit.pipe")).expect("blocks");
    let def = lsp.request(
        "textDocument/definition",
        serde_json::json!({ "textDocument": { "uri": offers_uri }, "position": pos_of(&offers_text, "utilization(", 2) }),
    );
    assert!(def["uri"].as_str().is_some_and(|u| u.ends_with("blocks/credit.pipe")), "{def}");
    assert_eq!(def["range"]["start"]["line"], pos_of(&blocks, "fn utilization", 0)["line"], "{def}");
    let def = lsp.request(
        "textDocument/definition",
        serde_json::json!({ "textDocument": { "uri": offers_uri }, "position": pos_of(&offers_text, "import \"blocks", 10) }),
    );
    assert!(def["uri"].as_str().is_some_and(|u| u.ends_with("blocks/credit.pipe")), "{def}");

    assert_eq!(lsp.request("shutdown", serde_json::Value::Null), serde_json::Value::Null);
    lsp.notify("exit", serde_json::Value::Null);
    let status = lsp.child.wait().expect("exits");
    assert!(status.success(), "{status}");
}

/// `pipec fmt`: `--check` reports and changes nothing (exit 1), a plain run rewrites the file
/// into the layout `--check` accepts, and a file with a syntax error is reported and left alone.
#[test]
fn fmt_rewrites_files_and_check_reports_them() {
    let dir = temp_dir("fmt");
    let messy = "include \"s.thrift\"\nsource r: R {batch=files(\"r.jsonl\")}\nstream s=r|select{ id }\n";
    std::fs::write(dir.join("a.pipe"), messy).expect("write");
    std::fs::write(dir.join("broken.pipe"), "stream s = | where\n").expect("write");
    let run =
        |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_pipec")).args(args).current_dir(&dir).output().expect("runs");
    let out = run(&["fmt", "--check", "."]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not formatted: ./a.pipe") && err.contains("skipped ./broken.pipe: it has a syntax error"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(dir.join("a.pipe")).expect("read"), messy, "--check changes nothing");
    assert_eq!(run(&["fmt", "."]).status.code(), Some(0));
    let formatted = std::fs::read_to_string(dir.join("a.pipe")).expect("read");
    assert_eq!(
        formatted,
        "include \"s.thrift\"\nsource r: R { batch = files(\"r.jsonl\") }\nstream s = r | select { id }\n"
    );
    assert_eq!(run(&["fmt", "--check", "a.pipe"]).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(dir.join("broken.pipe")).expect("read"), "stream s = | where\n");
}

/// An installed `pipec` (the test build's binary copied into a fresh root's `bin/`, which is
/// what `cargo install` does once it has built it) builds and runs a pipeline in a directory of
/// its own with the source tree hidden: a read-only tmpfs mounted over the checkout in a mount
/// namespace of its own, so that neither reading the runtime from the checkout nor writing into
/// it can succeed. The runtime it compiles against travels inside `pipec` and is written to the
/// user's cache. Where mount namespaces are not allowed the test says so and runs with the
/// checkout in place, unless `PIPE_REQUIRE_UNSHARE` is set (scripts/test.sh sets it).
#[test]
fn an_installed_pipec_builds_pipelines_with_the_source_tree_out_of_reach() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    // A fixed place, so that runs of the test reuse one generated crate in the user's cache.
    let root = std::env::temp_dir().join("pipec-installed");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("root/bin")).expect("install root");
    let installed = root.join("root/bin/pipec");
    std::fs::copy(env!("CARGO_BIN_EXE_pipec"), &installed).expect("install pipec");

    let project = root.join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::write(project.join("s.thrift"), "struct R {\n  1: required string id\n  2: required i64 n\n}\n")
        .expect("schema");
    std::fs::write(
        project.join("p.pipe"),
        "include \"s.thrift\"\n\nsource rows: R {\n  batch = files(\"in.jsonl\", format = json)\n}\n\nstream big = rows\n  | where n > 1\n  | select { id, twice = n * 2 }\n\nbig -> files(\"out\", format = json)\n",
    )
    .expect("pipeline");
    std::fs::write(
        project.join("in.jsonl"),
        "{\"id\":\"a\",\"n\":1}\n{\"id\":\"b\",\"n\":2}\n{\"id\":\"c\",\"n\":3}\n",
    )
    .expect("input");

    // Exit 97: the namespace or the mount was refused (pipec never ran).
    const REFUSED: i32 = 97;
    let hidden = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!("mount -t tmpfs -o ro pipe-hidden \"$1\" || exit {REFUSED}; shift; exec \"$@\""))
        .args(["sh"])
        .arg(&repo)
        .arg(&installed)
        .args(["run", "p.pipe"])
        .current_dir(&project)
        .env_remove("PIPE_RUNTIME_DIR")
        .env_remove("PIPE_TARGET_DIR")
        // The profile and the runtime features users get (the suite builds the other pipelines
        // with `--quick` and every runtime feature).
        .env_remove("PIPE_QUICK")
        .env_remove("PIPE_RUNTIME_FEATURES")
        .output();
    let refused = match &hidden {
        Err(e) => Some(format!("unshare: {e}")),
        Ok(out)
            if out.status.code() == Some(REFUSED)
                || (out.status.code() == Some(1) && String::from_utf8_lossy(&out.stderr).starts_with("unshare:")) =>
        {
            Some(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
        Ok(_) => None,
    };
    let out = match refused {
        None => hidden.expect("ran"),
        Some(why) => {
            assert!(std::env::var_os("PIPE_REQUIRE_UNSHARE").is_none(), "cannot hide the checkout: {why}");
            #[allow(clippy::print_stdout, reason = "the test says why it could not hide the checkout")]
            {
                println!("the source tree cannot be hidden here ({why}); building with it in place");
            }
            Command::new(&installed)
                .args(["run", "p.pipe"])
                .current_dir(&project)
                .env_remove("PIPE_RUNTIME_DIR")
                .env_remove("PIPE_TARGET_DIR")
                .env_remove("PIPE_QUICK")
                .env_remove("PIPE_RUNTIME_FEATURES")
                .output()
                .expect("pipec runs")
        }
    };
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut written = String::new();
    for f in std::fs::read_dir(project.join("out")).expect("the sink folder").flatten() {
        if f.file_name().to_string_lossy().starts_with('_') {
            continue; // the run's summary
        }
        written.push_str(&std::fs::read_to_string(f.path()).expect("output"));
    }
    let mut lines: Vec<&str> = written.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["{\"id\":\"b\",\"twice\":4}", "{\"id\":\"c\",\"twice\":6}"]);

    // `--quick` compiles the pipeline's own code unoptimized: a build of its own, the same
    // output.
    let _ = std::fs::remove_dir_all(project.join("out"));
    let out = Command::new(&installed)
        .args(["run", "--quick", "p.pipe"])
        .current_dir(&project)
        .env_remove("PIPE_RUNTIME_DIR")
        .env_remove("PIPE_TARGET_DIR")
        .env_remove("PIPE_QUICK")
        .env_remove("PIPE_RUNTIME_FEATURES")
        .output()
        .expect("pipec runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(quick: the pipeline's own code unoptimized)"),
        "a build of its own, which says it is unoptimized: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again: String = std::fs::read_dir(project.join("out"))
        .expect("the sink folder")
        .flatten()
        .filter(|f| !f.file_name().to_string_lossy().starts_with('_'))
        .map(|f| std::fs::read_to_string(f.path()).expect("output"))
        .collect();
    let mut again: Vec<&str> = again.lines().collect();
    again.sort_unstable();
    assert_eq!(again, lines);
    let out = Command::new(&installed).args(["run", "--quick", "--release", "p.pipe"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(2), "the two profiles exclude each other");
    let _ = std::fs::remove_dir_all(&root);
}
