//! Object stores against a real S3-protocol server (s3s-fs, started here on 127.0.0.1 over a
//! throwaway folder, with an access key and a secret the requests are signed with): the
//! Lending Club loans archived as Parquet parts per grade and as JSON lines, committed by a
//! manifest written last; a large part uploaded in parts; the features read back from either archive,
//! at several worker counts, equal those of the CSV file; a part no manifest names is never
//! read; a server restarted again and again during a run loses and repeats nothing; a server
//! that is down is a clear error that leaves the archive as it was; a stream killed at random
//! uploads every window's row once.
//!
//! The server is `s3s-fs` (`cargo install s3s-fs --version 0.14.1 --features binary`, which
//! `scripts/services.sh` does). Without it these tests say why and pass, unless
//! `PIPE_REQUIRE_S3` is set (as `.ci/run` sets it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipe_tests::{build_pipeline, scratch, sink_rows};

const KEY: &str = "integration-test-key-0123456789";
const ACCESS: &str = "pipe-test-access";
const SECRET: &str = "pipe-test-secret-never-printed";
const BUCKET: &str = "pipe-archive";

/// `s3s-fs`, on the PATH or where `cargo install` puts it.
pub(crate) fn server_bin() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("s3s-fs"))
        .find(|b| b.is_file());
    let installed = std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo/bin/s3s-fs")).filter(|b| b.is_file());
    let found = on_path.or(installed);
    if found.is_none() {
        assert!(std::env::var_os("PIPE_REQUIRE_S3").is_none(), "PIPE_REQUIRE_S3 is set but s3s-fs is not installed");
        #[allow(clippy::print_stderr, reason = "why the test did nothing")]
        {
            eprintln!("skipped: no s3s-fs here (cargo install s3s-fs --version 0.14.1 --features binary)");
        }
    }
    found
}

/// An S3-protocol server on 127.0.0.1 storing its objects under `root` (bucket `pipe-archive`
/// is its folder), stopped when dropped.
pub(crate) struct Server {
    bin: PathBuf,
    root: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Server {
    pub(crate) fn start(bin: PathBuf, root: &Path) -> Server {
        std::fs::create_dir_all(root.join(BUCKET)).expect("bucket folder");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let mut s = Server { bin, root: root.to_path_buf(), port, child: None };
        s.up();
        s
    }

    fn up(&mut self) {
        let child = Command::new(&self.bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--access-key",
                ACCESS,
                "--secret-key",
                SECRET,
            ])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        self.child = Some(child);
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "s3s-fs did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where the server keeps object `key` of the bucket.
    fn object(&self, key: &str) -> PathBuf {
        self.root.join(BUCKET).join(key)
    }

    /// The keys of the parts a sink's manifest names, with their sizes.
    pub(crate) fn manifest(&self, prefix: &str) -> Vec<(String, u64)> {
        let text = std::fs::read_to_string(self.object(&format!("{prefix}/_SUCCESS"))).expect("the sink's manifest");
        let m: serde_json::Value = serde_json::from_str(&text).expect("a JSON manifest");
        assert_eq!(m["format"], "pipe-manifest-1", "{text}");
        m["parts"]
            .as_array()
            .expect("parts")
            .iter()
            .map(|p| (p["key"].as_str().expect("key").to_string(), p["bytes"].as_u64().expect("bytes")))
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.down();
    }
}

/// `bin` with `args`, the HMAC key and the AWS variables of the test server at `endpoint`.
pub(crate) fn command(bin: &Path, args: &[&str], endpoint: &str) -> Command {
    let mut c = Command::new(bin);
    c.args(args)
        .env("PIPE_HMAC_KEY", KEY)
        .env("AWS_ACCESS_KEY_ID", ACCESS)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", endpoint)
        // Parts of 5 MiB, the least S3 (and this server) takes.
        .env("PIPE_S3_PART_BYTES", "5242880");
    c
}

fn run(bin: &Path, args: &[&str], endpoint: &str) -> std::process::Output {
    command(bin, args, endpoint).output().expect("run the pipeline")
}

fn run_ok(bin: &Path, args: &[&str], endpoint: &str) {
    let out = run(bin, args, endpoint);
    assert!(out.status.success(), "{} {args:?} failed:\n{}", bin.display(), String::from_utf8_lossy(&out.stderr));
}

/// `--sink NAME=DIR` for every named sink, into `dir`.
fn sinks(dir: &Path, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| ["--sink".to_string(), format!("{n}={}", dir.join(n.replace("->", "_")).display())])
        .collect()
}

fn with(args: &[String], more: &[&str]) -> Vec<String> {
    more.iter().map(|s| (*s).to_string()).chain(args.iter().cloned()).collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn an_archive_in_an_object_store_is_committed_by_its_manifest_and_reads_back_like_the_csv() {
    let Some(bin) = server_bin() else { return };
    let dir = scratch("object_store_archive");
    let mut server = Server::start(bin, &dir.join("s3"));
    let endpoint = server.endpoint();
    let archive = build_pipeline(Path::new("examples/object_store/archive.pipe"));
    let parquet = build_pipeline(Path::new("examples/object_store/features.pipe"));
    let json = build_pipeline(Path::new("examples/object_store/features_json.pipe"));
    let csv = build_pipeline(Path::new("examples/point_in_time/features.pipe"));

    let out = dir.join("reference");
    run_ok(&csv, &strs(&with(&sinks(&out, &["monthly->files", "rejected->files"]), &["--quiet"])), &endpoint);
    let want = sink_rows(&out.join("monthly_files"));
    assert_eq!(want.len(), 129);

    let archive_args = with(&sinks(&dir.join("a"), &["rejected->files"]), &["--quiet", "--workers", "2"]);
    // The first archive reads the CSV file from the object store itself (one object, its header
    // read by a ranged request), later ones from the disk.
    std::fs::create_dir_all(server.object("raw")).expect("raw folder");
    std::fs::copy(
        pipe_tests::repo_root().join("examples/point_in_time/data/loans.csv"),
        server.object("raw/loans.csv"),
    )
    .expect("upload the CSV");
    run_ok(&archive, &strs(&with(&archive_args, &["--source", "loans=s3://pipe-archive/raw/loans.csv"])), &endpoint);
    let first = server.manifest("loans");
    let grades: Vec<&str> = first.iter().filter_map(|(k, _)| k.split('/').next()).collect();
    assert_eq!(grades, ["grade=A", "grade=B", "grade=C", "grade=D", "grade=E", "grade=F", "grade=G"], "{first:?}");
    for (key, bytes) in &first {
        let len = std::fs::metadata(server.object(&format!("loans/{key}"))).map(|m| m.len()).ok();
        assert_eq!(len, Some(*bytes), "part {key} as the manifest says");
    }
    let json_parts = server.manifest("loans_json");
    let lines: usize = json_parts
        .iter()
        .map(|(k, _)| std::fs::read_to_string(server.object(&format!("loans_json/{k}"))).expect("part").lines().count())
        .sum();
    assert_eq!(lines, 10_000, "every loan once in the JSON lines archive");

    // The month folders' names are escaped as Hive escapes them (`:` as `%3A`), and the objects
    // are stored under those names, not escaped twice.
    assert!(
        json_parts.iter().all(|(k, _)| k.starts_with("issued=2018-0") && k.contains("T00%3A00%3A00")),
        "{json_parts:?}"
    );

    // A part larger than the part size goes up in parts (two of at most 5 MiB): the object
    // holds the rows written.
    let copy = build_pipeline(Path::new("examples/object_store/import.pipe"));
    let big = dir.join("in").join("loans.jsonl");
    std::fs::create_dir_all(dir.join("in")).expect("input folder");
    let one: Vec<u8> = json_parts
        .iter()
        .flat_map(|(k, _)| std::fs::read(server.object(&format!("loans_json/{k}"))).expect("part"))
        .collect();
    std::fs::write(&big, one.repeat(4)).expect("input");
    let copy_args = with(
        &sinks(&dir.join("c"), &["rejected->files"]),
        &["--quiet", "--workers", "1", "--source", &format!("loans={}", big.display())],
    );
    run_ok(&copy, &strs(&copy_args), &endpoint);
    let copied = server.manifest("copy");
    assert_eq!(copied.len(), 1, "{copied:?}");
    assert!(copied[0].1 > 5 << 20, "{copied:?}");
    // (A worker reads its splits largest first: the same lines, in another order.)
    let sorted = |b: &[u8]| {
        let mut lines: Vec<String> = String::from_utf8_lossy(b).lines().map(String::from).collect();
        lines.sort();
        lines
    };
    let got = std::fs::read(server.object(&format!("copy/{}", copied[0].0))).expect("copied part");
    assert!(
        sorted(&got) == sorted(&one.repeat(4)),
        "the uploaded part differs from the rows written ({} bytes)",
        got.len()
    );

    // A cluster of two processes of two workers: each process uploads its workers' parts, the
    // first commits them all in one manifest.
    let ports: Vec<u16> = (0..2)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("port"))
        .collect::<Vec<_>>()
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect();
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, ports.iter().map(|p| format!("127.0.0.1:{p}\n")).collect::<String>()).expect("hosts");
    let children: Vec<Child> = (0..2)
        .map(|i| {
            let mut args = copy_args.clone();
            let at = args.iter().position(|a| a == "--workers").expect("workers") + 1;
            args[at] = "2".into();
            let cluster = ["--processes", "2", "--process", &i.to_string(), "--hosts", &hosts.display().to_string()]
                .map(String::from);
            args.extend(cluster);
            command(&copy, &strs(&args), &endpoint).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start")
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().expect("wait");
        assert!(out.status.success(), "process {i}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let copied = server.manifest("copy");
    let workers: std::collections::BTreeSet<&str> = copied.iter().map(|(k, _)| &k[..10]).collect();
    assert!(workers.contains("part-00002") || workers.contains("part-00003"), "the second process's parts: {copied:?}");
    let got: Vec<u8> =
        copied.iter().flat_map(|(k, _)| std::fs::read(server.object(&format!("copy/{k}"))).expect("part")).collect();
    assert!(sorted(&got) == sorted(&one.repeat(4)), "the cluster's parts hold the rows written, once");

    // A run with no rows commits an empty output: readers get no rows, not the previous run's.
    std::fs::write(&big, "").expect("empty input");
    run_ok(&copy, &strs(&copy_args), &endpoint);
    assert_eq!(server.manifest("copy"), []);
    let empty = dir.join("empty");
    let args = with(
        &sinks(&empty, &["monthly->files", "rejected->files"]),
        &["--quiet", "--source", "loans=s3://pipe-archive/copy/*.jsonl"],
    );
    run_ok(&json, &strs(&args), &endpoint);
    assert_eq!(
        sink_rows(&empty.join("monthly_files")),
        Vec::<String>::new(),
        "an empty committed run reads as no rows"
    );

    // Read back from each archive, at one and three workers: the features of the CSV file.
    let read_back = |bin: &Path, name: &str, workers: &str, endpoint: &str| {
        let out = dir.join(format!("{name}-{workers}"));
        let _ = std::fs::remove_dir_all(&out);
        let args = with(&sinks(&out, &["monthly->files", "rejected->files"]), &["--quiet", "--workers", workers]);
        run_ok(bin, &strs(&args), endpoint);
        sink_rows(&out.join("monthly_files"))
    };
    for workers in ["1", "3"] {
        assert_eq!(read_back(&parquet, "parquet", workers, &endpoint), want, "from Parquet at {workers} workers");
    }
    assert_eq!(read_back(&json, "json", "3", &endpoint), want, "from JSON lines cut in ranges");

    // Each run's parts have names of their own; the previous run's stay for readers that listed
    // them, older ones go.
    run_ok(&archive, &strs(&archive_args), &endpoint);
    let second = server.manifest("loans");
    assert!(second.iter().all(|p| !first.contains(p)), "new names: {first:?} {second:?}");
    assert!(first.iter().all(|(k, _)| server.object(&format!("loans/{k}")).is_file()), "the previous run's parts stay");
    run_ok(&archive, &strs(&archive_args), &endpoint);
    assert!(
        first.iter().all(|(k, _)| !server.object(&format!("loans/{k}")).exists()),
        "parts of older runs are deleted"
    );
    assert!(second.iter().all(|(k, _)| server.object(&format!("loans/{k}")).is_file()));

    // A part no manifest names (a run that died before its commit) is not read; without the
    // manifest, every part is.
    let third = server.manifest("loans");
    let stray = server.object("loans/grade=A/part-00042-stray.parquet");
    std::fs::copy(server.object(&format!("loans/{}", third[0].0)), &stray).expect("stray part");
    assert_eq!(read_back(&parquet, "stray", "2", &endpoint), want, "a part the manifest does not name is not read");
    let manifest = server.object("loans/_SUCCESS");
    let kept = std::fs::read(&manifest).expect("manifest");
    std::fs::remove_file(&manifest).expect("remove the manifest");
    assert_ne!(read_back(&parquet, "unmanifested", "2", &endpoint), want, "without the manifest the stray part counts");
    std::fs::write(&manifest, kept).expect("manifest back");
    std::fs::remove_file(&stray).expect("stray gone");

    // A part the manifest names but the store lost: an error naming it, never a subset of rows.
    let lost = server.object(&format!("loans/{}", third[1].0));
    let kept = std::fs::read(&lost).expect("part");
    std::fs::remove_file(&lost).expect("lose a part");
    let out = run(
        &parquet,
        &strs(&with(&sinks(&dir.join("lost"), &["monthly->files", "rejected->files"]), &["--quiet"])),
        &endpoint,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is missing") && err.contains(&third[1].0), "{err}");
    std::fs::write(&lost, kept).expect("part back");

    // The server restarted again and again while the archive is written and read: requests are
    // retried, nothing is lost or written twice.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let restarts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flapping = {
        let (stop, restarts) = (stop.clone(), restarts.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(120));
                server.down();
                std::thread::sleep(Duration::from_millis(150));
                server.up();
                restarts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            server
        })
    };
    let started = Instant::now();
    let mut runs = 0;
    // At least two restarts fall inside runs (a run takes longer than a restart cycle).
    while restarts.load(std::sync::atomic::Ordering::Relaxed) < 3 || runs < 2 {
        run_ok(&archive, &strs(&archive_args), &endpoint);
        assert_eq!(read_back(&json, "flapping", "3", &endpoint), want, "read while the server restarts");
        runs += 1;
        assert!(started.elapsed() < Duration::from_secs(300), "runs never finished while the server restarted");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let server = flapping.join().expect("restarts");
    let lines: usize = server
        .manifest("loans_json")
        .iter()
        .map(|(k, _)| std::fs::read_to_string(server.object(&format!("loans_json/{k}"))).expect("part").lines().count())
        .sum();
    assert_eq!(lines, 10_000, "after {runs} runs through restarts");
    assert_eq!(read_back(&parquet, "after", "2", &endpoint), want);
}

#[test]
fn an_object_store_that_is_down_or_refuses_is_a_clear_error_that_keeps_the_archive() {
    let Some(bin) = server_bin() else { return };
    let dir = scratch("object_store_errors");
    let mut server = Server::start(bin, &dir.join("s3"));
    let endpoint = server.endpoint();
    let archive = build_pipeline(Path::new("examples/object_store/archive.pipe"));
    let parquet = build_pipeline(Path::new("examples/object_store/features.pipe"));
    let args = with(&sinks(&dir.join("a"), &["rejected->files"]), &["--quiet"]);
    run_ok(&archive, &strs(&args), &endpoint);
    let before = server.manifest("loans");

    // Down at the start: the sink's location and the endpoint are named, the secret never.
    server.down();
    let out = run(&archive, &strs(&args), &endpoint);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a run against a stopped server succeeded");
    assert!(err.contains("s3://pipe-archive/loans") && err.contains(&endpoint), "{err}");
    assert!(!err.contains(SECRET), "the secret was printed: {err}");
    let read = dir.join("r");
    let out =
        run(&parquet, &strs(&with(&sinks(&read, &["monthly->files", "rejected->files"]), &["--quiet"])), &endpoint);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("s3://pipe-archive/loans"), "{err}");
    server.up();
    assert_eq!(server.manifest("loans"), before, "the archive is as it was");

    // Wrong credentials: refused by the server, the archive untouched.
    let out = command(&archive, &strs(&args), &endpoint).env("AWS_SECRET_ACCESS_KEY", "wrong").output().expect("run");
    assert!(!out.status.success(), "signed with a wrong secret and accepted");
    assert_eq!(server.manifest("loans"), before);

    // A sink inside another's prefix: refused before anything is written.
    let mut nested = args.clone();
    nested.extend(["--sink".to_string(), "loans->s3#2=s3://pipe-archive/loans/json".into()]);
    let out = run(&archive, &strs(&nested), &endpoint);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("inside sink `loans->s3`"), "{err}");
    assert_eq!(server.manifest("loans"), before);

    // A glob that names nothing, and a missing bucket: errors, not empty inputs.
    let out = run(
        &parquet,
        &strs(&with(
            &sinks(&read, &["monthly->files", "rejected->files"]),
            &["--quiet", "--source", "loans=s3://pipe-archive/nothing/*.parquet"],
        )),
        &endpoint,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no objects match `s3://pipe-archive/nothing/*.parquet`"), "{err}");
    let out = run(
        &parquet,
        &strs(&with(
            &sinks(&read, &["monthly->files", "rejected->files"]),
            &["--quiet", "--source", "loans=s3://no-such-bucket/loans/*.parquet"],
        )),
        &endpoint,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("no-such-bucket"), "{err}");
}

/// A stream uploads each epoch's parts once the checkpoint that records it is complete, under
/// names fixed by epoch and worker: killed with SIGKILL at random moments and restarted, it
/// leaves exactly the rows a backfill writes.
#[test]
fn a_stream_to_an_object_store_killed_at_random_uploads_each_row_once() {
    let Some(bin) = server_bin() else { return };
    let dir = scratch("object_store_stream");
    let server = Server::start(bin, &dir.join("s3"));
    let endpoint = server.endpoint();
    let members = build_pipeline(Path::new("examples/object_store/members.pipe"));
    let rejected = |d: &str| vec!["--sink".to_string(), format!("rejected->files={}", dir.join(d).display())];

    let mut args = vec!["--quiet".to_string(), "--workers".into(), "2".into()];
    args.extend(rejected("r0"));
    run_ok(&members, &strs(&args), &endpoint);
    let want = sink_rows(&server.object("members"));
    assert_eq!(want.len(), 2430, "the backfill");
    assert!(!server.manifest("members").is_empty());

    let data = pipe_tests::repo_root().join("examples/member_features/data/applications.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&data).expect("example data").lines().map(String::from).collect();
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live dir");
    let mut stream = pipe_tests::follow_args("applications", &live, &dir.join("state"));
    stream.extend(["--sink".to_string(), format!("daily=s3://{BUCKET}/members_stream")]);
    stream.extend(rejected("r1"));

    // A stream is refused on a prefix a batch run committed (its manifest would hide the
    // stream's parts from readers).
    let mut onto_batch = stream.clone();
    let at = onto_batch.iter().position(|a| a.starts_with("daily=")).expect("sink override");
    onto_batch[at] = format!("daily=s3://{BUCKET}/members");
    let out = run(&members, &strs(&onto_batch), &endpoint);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("holds a batch run's output"), "{err}");

    // While a stream writes the prefix, no other run may: its lock names it. Killed, its lock
    // is taken over at once by the next run on this host (every restart below does).
    let mut holder = command(&members, &strs(&stream), &endpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the stream");
    let waited = Instant::now();
    while !server.object("members_stream/_pipe_lock").is_file() {
        assert!(waited.elapsed() < Duration::from_secs(60), "the stream never took its prefix's lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut batch = args.clone();
    batch.extend(["--sink".to_string(), format!("daily=s3://{BUCKET}/members_stream")]);
    let out = run(&members, &strs(&batch), &endpoint);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is being written by run"), "{err}");
    holder.kill().expect("SIGKILL");
    holder.wait().expect("reap");

    let producer = pipe_tests::produce(live.clone(), lines, 3);
    let kills = pipe_tests::kill_at_random(0x5eed_53a5, 8, &producer, |n| {
        let log = std::fs::File::create(dir.join(format!("run-{n}.log"))).expect("log");
        command(&members, &strs(&stream), &endpoint)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the stream")
    });
    producer.join().expect("producer");
    let mut last = stream.clone();
    last.extend(["--exit-when-idle".to_string(), "1500ms".into()]);
    run_ok(&members, &strs(&last), &endpoint);
    let got = sink_rows(&server.object("members_stream"));
    assert_eq!(got.len(), want.len(), "rows after {kills} kills: lost or repeated");
    assert_eq!(got, want, "rows after {kills} kills differ from the backfill's");
    assert!(server.object("members_stream/_pipe_summary.json").is_file());

    // Without the checkpoints of the stream that published, starting over would upload every
    // row again: refused, naming `--reset`, which removes the published parts and starts over.
    let mut lost = last.clone();
    let at = lost.iter().position(|a| a == "--state-dir").expect("state dir") + 1;
    lost[at] = dir.join("fresh-state").display().to_string();
    let out = run(&members, &strs(&lost), &endpoint);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--reset"), "{err}");
    lost.push("--reset".into());
    run_ok(&members, &strs(&lost), &endpoint);
    assert_eq!(sink_rows(&server.object("members_stream")), want, "`--reset` starts over: each row once");
}
