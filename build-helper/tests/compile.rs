//! pipe-build as a build script uses it: modules written to the output directory, every file a
//! pipeline read reported, errors worded as `pipec check` words them.

use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

const SCHEMA: &str = r#"
struct Click {
  1: required string page
  2: required i64    at (timestamp = "millis")
}
"#;

#[test]
fn writes_a_module_per_pipeline_and_lists_its_inputs() {
    let src = tempfile::tempdir().expect("dir");
    let out = tempfile::tempdir().expect("dir");
    write(src.path(), "clicks.thrift", SCHEMA);
    write(
        src.path(),
        "pages.pipe",
        "include \"clicks.thrift\"\nsource clicks: Click { event_time = at  batch = files(\"c.jsonl\", format = json) }\nstream pages = clicks | select { page }\npages -> stdout()\n",
    );
    write(
        src.path(),
        "named.pipe",
        "namespace web.traffic\ninclude \"clicks.thrift\"\nsource clicks: Click { batch = files(\"c.jsonl\", format = json) }\nclicks -> stdout()\n",
    );
    let done = pipe_build::Config::new()
        .out_dir(out.path())
        .quiet(true)
        .compile(&[src.path().join("pages.pipe"), src.path().join("named.pipe")])
        .expect("both compile");
    // Without a namespace the module takes the file's name; with one, its last segment.
    assert_eq!(done.iter().map(|c| c.module.as_str()).collect::<Vec<_>>(), ["pages", "traffic"]);
    let text = std::fs::read_to_string(out.path().join("pages.rs")).expect("pages.rs");
    assert!(text.contains("pub mod pages"), "{text}");
    assert!(text.contains("pub fn run_batch"), "{text}");
    assert!(text.contains("pub struct Click"), "{text}");
    // The schema is an input: editing it reruns the build script.
    assert!(done[0].inputs.iter().any(|p| p.ends_with("clicks.thrift")), "{:?}", done[0].inputs);
    assert!(done[0].inputs.iter().any(|p| p.ends_with("pages.pipe")), "{:?}", done[0].inputs);

    // Compiling again leaves an unchanged file alone, so cargo does not rebuild.
    let before = std::fs::metadata(out.path().join("pages.rs")).and_then(|m| m.modified()).expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    pipe_build::Config::new().out_dir(out.path()).quiet(true).compile(&[src.path().join("pages.pipe")]).expect("again");
    let after = std::fs::metadata(out.path().join("pages.rs")).and_then(|m| m.modified()).expect("mtime");
    assert_eq!(before, after);
}

#[test]
fn a_pipeline_with_errors_fails_with_its_diagnostics() {
    let src = tempfile::tempdir().expect("dir");
    let out = tempfile::tempdir().expect("dir");
    write(src.path(), "clicks.thrift", SCHEMA);
    write(
        src.path(),
        "bad.pipe",
        "include \"clicks.thrift\"\nsource clicks: Click { batch = files(\"c.jsonl\", format = json) }\nstream pages = clicks | select { pag }\npages -> stdout()\n",
    );
    let err = pipe_build::Config::new()
        .out_dir(out.path())
        .quiet(true)
        .compile(&[src.path().join("bad.pipe")])
        .expect_err("an unknown field");
    let text = err.to_string();
    assert!(text.contains("E1006"), "{text}");
    assert!(text.contains("unknown field `pag`"), "{text}");
    assert!(text.contains("did you mean `page`?"), "{text}");
    assert!(!out.path().join("bad.rs").exists());
}

#[test]
fn two_pipelines_of_one_module_name_are_refused() {
    let src = tempfile::tempdir().expect("dir");
    let out = tempfile::tempdir().expect("dir");
    write(src.path(), "clicks.thrift", SCHEMA);
    for f in ["a.pipe", "b.pipe"] {
        write(
            src.path(),
            f,
            "namespace same\ninclude \"clicks.thrift\"\nsource clicks: Click { batch = files(\"c.jsonl\", format = json) }\nclicks -> stdout()\n",
        );
    }
    let err = pipe_build::Config::new()
        .out_dir(out.path())
        .quiet(true)
        .compile(&[src.path().join("a.pipe"), src.path().join("b.pipe")])
        .expect_err("same module");
    assert!(matches!(err, pipe_build::Error::SameModule { ref module, .. } if module == "same"), "{err}");
}

#[test]
fn a_missing_pipeline_file_is_a_load_error() {
    let out = tempfile::tempdir().expect("dir");
    let err =
        pipe_build::Config::new().out_dir(out.path()).quiet(true).compile(&["no/such/file.pipe"]).expect_err("missing");
    assert!(err.to_string().contains("no/such/file.pipe"), "{err}");
}
