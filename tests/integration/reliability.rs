//! Faults an operator meets: a run killed while it publishes its sinks, two runs on the same
//! outputs, a sink path that is a file, leftovers of dead runs, input that changes under a batch
//! run, and a stream restarted without its state. Each ends with all sinks old or all new and
//! a clear error, never a silent loss or duplicate.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pipe_tests::{build_pipeline, repo_root, scratch};
use serde_json::Value;

const KEY: &str = "integration-test-key-0123456789";

/// The feature case's four sinks, by their `--sink` names and folders.
const SINKS: [(&str, &str); 4] =
    [("zip_sink", "zips"), ("hourly_sink", "hourly"), ("tag_days->parquet", "tags"), ("rejected->files", "rejected")];

fn features() -> PathBuf {
    build_pipeline(Path::new("tests/cases/codegen/features/pipeline.pipe"))
}

/// Runs the feature case on `events` (a JSON Lines file) with its sinks under `out`.
fn run(bin: &Path, events: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.env("PIPE_HMAC_KEY", KEY).args(["--source".to_string(), format!("events={}", events.display())]);
    for (name, dir) in SINKS {
        cmd.args(["--sink".to_string(), format!("{name}={}", out.join(dir).display())]);
    }
    cmd.envs(env.iter().copied()).output().expect("start the pipeline")
}

/// How many events the run that wrote sink folder `dir` read (from its summary).
fn events_read(dir: &Path) -> u64 {
    let text =
        std::fs::read_to_string(dir.join("_pipe_summary.json")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let s: Value = serde_json::from_str(&text).expect("summary");
    s["operators"].as_array().and_then(|a| a.iter().find(|o| o["name"] == "events")).expect("events")["read"]
        .as_u64()
        .expect("read")
}

/// Hidden files and folders a run leaves beside its sinks.
fn hidden(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .expect("out")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && !n.ends_with(".pipe-lock"))
        .collect();
    names.sort();
    names
}

/// Two inputs: the case's events, and the same without their first line.
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let all = std::fs::read_to_string(repo_root().join("tests/cases/codegen/features/events.jsonl")).expect("events");
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    std::fs::write(&a, &all).expect("a");
    std::fs::write(&b, all.split_once('\n').expect("lines").1).expect("b");
    (a, b)
}

/// A run killed after it switched N of its four sinks (and after all four, before it removed
/// its journal): no sink is ever missing, and the next run finishes the interrupted commit
/// before its own, so the sinks go from all old to all new and nothing is left behind.
#[test]
fn a_run_killed_at_every_sink_boundary_of_its_commit_leaves_all_old_or_all_new() {
    let bin = features();
    for n in 1..=SINKS.len() {
        let out = scratch(&format!("commit_crash_{n}"));
        let (a, b) = inputs(&out);
        let first = run(&bin, &a, &out, &[]);
        assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
        let crash = n.to_string();
        let killed = run(&bin, &b, &out, &[("PIPE_TEST_CRASH_COMMIT_AFTER", &crash)]);
        assert!(!killed.status.success(), "the run was to be stopped after {n} sinks");
        // Killed mid-commit: every sink folder is there, old or new, and the journal says which
        // run is being published.
        let switched: Vec<u64> = SINKS.iter().map(|(_, d)| events_read(&out.join(d))).collect();
        assert_eq!(switched.iter().filter(|&&r| r == 9).count(), n, "{switched:?}");
        assert!(hidden(&out).iter().any(|h| h.ends_with(".pipe-commit")), "{:?}", hidden(&out));

        // The next run (on the first input again) first finishes the interrupted commit, then
        // publishes its own: all four sinks are the next run's, and nothing is left over.
        let next = run(&bin, &a, &out, &[]);
        let stderr = String::from_utf8_lossy(&next.stderr);
        assert!(next.status.success(), "{stderr}");
        assert!(stderr.contains("finished the commit of a run that was stopped while publishing"), "{stderr}");
        for (_, d) in SINKS {
            assert_eq!(events_read(&out.join(d)), 10, "sink {d} after the commit crashed at {n}");
        }
        assert_eq!(hidden(&out), Vec::<String>::new());
    }
}

/// A second run on outputs another run holds stops at once, naming the holder; a sink path that
/// is a regular file is refused and left as it was; the temporary and old folders dead runs
/// left beside the sinks are removed.
#[test]
fn concurrent_runs_files_in_the_way_and_leftovers() {
    let bin = features();
    let out = scratch("locks");
    let (a, _) = inputs(&out);

    // Another run holds the `zips` sink: this test takes its lock, as that run would.
    let lock_path = out.join(".zips.pipe-lock");
    let lock = std::fs::File::create(&lock_path).expect("lock file");
    lock.lock().expect("lock");
    std::fs::write(&lock_path, "4242\n").expect("pid");
    let res = run(&bin, &a, &out, &[]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success(), "{stderr}");
    assert!(stderr.contains("sink `zip_sink`") && stderr.contains("in use by another run (PID 4242"), "{stderr}");
    assert!(!out.join("zips").exists() && !out.join("hourly").exists(), "nothing was written");
    drop(lock);

    // A regular file where a sink directory goes.
    std::fs::write(out.join("hourly"), "not a directory").expect("file");
    let res = run(&bin, &a, &out, &[]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(!res.status.success());
    assert!(stderr.contains("sink `hourly_sink`") && stderr.contains("is a file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(out.join("hourly")).expect("kept"), "not a directory");
    std::fs::remove_file(out.join("hourly")).expect("remove");

    // What dead runs left: a temporary folder and an old folder.
    for left in [".zips.pipe-tmp-7", ".tags.pipe-old-99999"] {
        std::fs::create_dir_all(out.join(left).join("x")).expect("leftover");
    }
    let res = run(&bin, &a, &out, &[]);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert_eq!(hidden(&out), Vec::<String>::new());
    for (_, d) in SINKS {
        assert_eq!(events_read(&out.join(d)), 10);
    }
}

/// A stream restarted without the state its earlier run checkpointed would start over and
/// write every published row again: it refuses, saying why, unless told `--reset`.
#[test]
fn a_stream_whose_state_is_lost_refuses_to_duplicate_its_output() {
    let bin = build_pipeline(Path::new("tests/cases/stream/windows/pipeline.pipe"));
    let dir = scratch("lost_state");
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live");
    let lines: Vec<String> = (0..50)
        .map(|i| {
            format!(r#"{{"key":"k{}","at":{},"value":{i}.5,"tag":"t"}}"#, i % 3, 1_700_000_000_000i64 + i * 60_000)
        })
        .collect();
    std::fs::write(live.join("a.jsonl"), lines.join("\n") + "\n").expect("input");
    let state = dir.join("state");
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = [
            "--mode",
            "stream",
            "--quiet",
            "--exit-when-idle",
            "500ms",
            "--checkpoint-interval",
            "100ms",
            "--state-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(state.display().to_string());
        args.extend(["--source".to_string(), format!("events={}/*.jsonl", live.display())]);
        for s in ["tumbling", "sliding", "sessions"] {
            args.extend(["--sink".to_string(), format!("{s}->files={}", dir.join(s).display())]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Command::new(&bin).args(&args).env("PIPE_HMAC_KEY", KEY).output().expect("start")
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let published = pipe_tests::sink_rows(&dir.join("tumbling"));
    assert!(!published.is_empty());

    std::fs::remove_dir_all(&state).expect("lose the state");
    let again = run(&[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success(), "{stderr}");
    assert!(stderr.contains("holds output a stream published") && stderr.contains("--reset"), "{stderr}");
    assert_eq!(pipe_tests::sink_rows(&dir.join("tumbling")), published, "nothing was written again");

    // Told to, it starts over as if it had never run: the published files go, and the rows
    // are written once more, once.
    std::fs::write(dir.join("tumbling/notes.txt"), "a file of the user's").expect("other file");
    let reset = run(&["--reset"]);
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
    assert_eq!(pipe_tests::sink_rows(&dir.join("tumbling")), published);
    assert!(dir.join("tumbling/notes.txt").exists(), "only files a stream published are removed");
}

/// A followed file rewritten while the stream runs is read again from its start, and the run's
/// summary counts it at the source (`restarted`), so the reconciliation shows what happened.
#[test]
fn a_followed_file_rewritten_mid_stream_is_read_again_and_counted() {
    let bin = build_pipeline(Path::new("tests/cases/stream/windows/pipeline.pipe"));
    let dir = scratch("rewritten_follow");
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live");
    let events = |from: i64, n: i64| -> String {
        (0..n)
            .map(|i| {
                format!(r#"{{"key":"k","at":{},"value":1.0,"tag":"t"}}"#, 1_700_000_000_000i64 + (from + i) * 60_000)
            })
            .collect::<Vec<_>>()
            .join("\n")
            + "\n"
    };
    let file = live.join("a.jsonl");
    std::fs::write(&file, events(0, 20)).expect("first version");
    let mut args: Vec<String> =
        ["--mode", "stream", "--quiet", "--exit-when-idle", "1500ms", "--checkpoint-interval", "100ms"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    args.extend(["--source".to_string(), format!("events={}/*.jsonl", live.display())]);
    for s in ["tumbling", "sliding", "sessions"] {
        args.extend(["--sink".to_string(), format!("{s}->files={}", dir.join(s).display())]);
    }
    let child = Command::new(&bin).args(&args).env("PIPE_HMAC_KEY", KEY).stderr(std::process::Stdio::piped()).spawn();
    let child = child.expect("start");
    // Once the first version has been read (a checkpoint published its first windows), the
    // file is rewritten: other first bytes, longer than what was read.
    let t0 = std::time::Instant::now();
    while pipe_tests::sink_rows(&dir.join("tumbling")).is_empty() {
        assert!(t0.elapsed() < std::time::Duration::from_secs(60), "the stream published nothing");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::fs::write(&file, events(100, 40)).expect("second version");
    let res = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    // Rewritten in place: seen as rewritten, or as truncated if the reader looked in between.
    assert!(stderr.contains("a.jsonl` was") && stderr.contains("reading it again from its start"), "{stderr}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tumbling/_pipe_summary.json")).expect("summary"))
            .expect("json");
    let source = summary["operators"].as_array().expect("ops").iter().find(|o| o["name"] == "events").expect("source");
    assert_eq!(source["restarted"], 1, "{source}");
    assert_eq!(source["read"], 60, "both versions, each whole: {source}");
}
