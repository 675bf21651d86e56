//! The streaming runner against the batch runner: for the same records (disordered within the
//! watermark bound) a stream writes the same rows as a backfill, for every window kind and
//! aggregate; and a stream killed with SIGKILL at random moments and restarted from its
//! checkpoints writes exactly what an uninterrupted run writes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipe_tests::{build_pipeline, scratch};

const KEY: &str = "integration-test-key-0123456789";

/// Every row of every `.jsonl` file under `dir` (in-progress folders and the summary aside),
/// sorted: the multiset of rows a sink holds.
fn rows(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "jsonl") {
                let text = std::fs::read_to_string(&p).expect("read output");
                out.extend(text.lines().map(String::from));
            }
        }
    }
    out.sort();
    out
}

/// A small deterministic generator (xorshift), so failures replay from their seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Events in arrival order: times rise by up to `step` ms, each arrives up to `disorder` ms
/// early or late relative to that (within the 2-minute bound), keys and tags from small sets,
/// some values missing.
fn events(seed: u64, n: usize, disorder: i64) -> Vec<String> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut t: i64 = 1_700_000_000_000 + i64::try_from(rng.below(3_600_000)).unwrap_or(0);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        t += i64::try_from(rng.below(90_000)).unwrap_or(0);
        let at = t - i64::try_from(rng.below(u64::try_from(disorder).unwrap_or(1).max(1))).unwrap_or(0);
        let key = ["a", "b", "c", "d"][rng.below(4) as usize];
        let value = match rng.below(10) {
            0 => "null".to_string(),
            _ => format!("{}", (rng.below(20_000) as f64) / 100.0 - 50.0),
        };
        let tag = match rng.below(5) {
            0 => "null".to_string(),
            k => format!("\"t{k}\""),
        };
        out.push(format!(r#"{{"key":"{key}","at":{at},"value":{value},"tag":{tag}}}"#));
    }
    out
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut f = std::fs::File::create(path).expect("create input");
    for l in lines {
        writeln!(f, "{l}").expect("write input");
    }
}

fn sink_args(out: &Path, sinks: &[&str]) -> Vec<String> {
    let mut args = Vec::new();
    for s in sinks {
        args.push("--sink".to_string());
        args.push(format!("{s}->files={}", out.join(s).display()));
    }
    args
}

fn run_to_end(bin: &Path, args: &[String]) {
    let out = Command::new(bin).args(args).env("PIPE_HMAC_KEY", KEY).output().expect("start the pipeline");
    assert!(out.status.success(), "{} {args:?} failed:\n{}", bin.display(), String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_stream_writes_what_a_backfill_writes_for_every_window_and_aggregate() {
    let bin = build_pipeline(Path::new("tests/cases/stream/windows/pipeline.pipe"));
    let sinks = ["tumbling", "sliding", "sessions"];
    for seed in 1..=6u64 {
        let dir = scratch(&format!("stream_vs_batch_{seed}"));
        let input = events(seed, 400 + 150 * seed as usize, 110_000);
        // The batch run reads one file; the stream follows the same records in three files.
        write_lines(&dir.join("all.jsonl"), &input);
        let live = dir.join("live");
        std::fs::create_dir_all(&live).expect("live dir");
        for (k, chunk) in input.chunks(input.len() / 3 + 1).enumerate() {
            write_lines(&live.join(format!("part-{k}.jsonl")), chunk);
        }
        let (b, s) = (dir.join("batch"), dir.join("stream"));
        let mut batch = vec![
            "--threads".to_string(),
            "1".into(),
            "--quiet".into(),
            "--source".into(),
            format!("events={}", dir.join("all.jsonl").display()),
        ];
        batch.extend(sink_args(&b, &sinks));
        run_to_end(&bin, &batch);
        let mut stream = vec![
            "--mode".to_string(),
            "stream".into(),
            "--quiet".into(),
            "--exit-when-idle".into(),
            "700ms".into(),
            "--checkpoint-interval".into(),
            "100ms".into(),
            "--source".into(),
            format!("events={}/*.jsonl", live.display()),
        ];
        stream.extend(sink_args(&s, &sinks));
        run_to_end(&bin, &stream);
        for sink in sinks {
            let (want, got) = (rows(&b.join(sink)), rows(&s.join(sink)));
            assert!(!want.is_empty(), "seed {seed}: the batch run wrote no {sink} rows");
            assert_eq!(want.len(), got.len(), "seed {seed}: {sink} row counts differ");
            for (w, g) in want.iter().zip(&got) {
                assert_eq!(w, g, "seed {seed}: {sink} rows differ");
            }
        }
    }
}

/// Appends `lines` to files under `live` over time, as a producer would, in chunks.
fn produce(live: PathBuf, lines: Vec<String>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let per_file = lines.len() / 3 + 1;
        for (k, file_lines) in lines.chunks(per_file).enumerate() {
            let path = live.join(format!("part-{k}.jsonl"));
            for chunk in file_lines.chunks(40) {
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).expect("open live file");
                let mut text = String::new();
                for l in chunk {
                    text.push_str(l);
                    text.push('\n');
                }
                // Written in two pieces: a reader may see half a line and must wait for the rest.
                let (a, b) = text.split_at(text.len() / 2);
                f.write_all(a.as_bytes()).expect("append");
                f.flush().expect("flush");
                std::thread::sleep(Duration::from_millis(3));
                f.write_all(b.as_bytes()).expect("append");
                std::thread::sleep(Duration::from_millis(12));
            }
        }
    })
}

fn start(bin: &Path, args: &[String]) -> Child {
    Command::new(bin)
        .args(args)
        .env("PIPE_HMAC_KEY", KEY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the pipeline")
}

#[test]
fn a_stream_killed_at_random_and_restarted_writes_each_row_exactly_once() {
    let bin = build_pipeline(Path::new("examples/member_features/pipeline.pipe"));
    let data = pipe_tests::repo_root().join("examples/member_features/data/applications.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&data).expect("example data").lines().map(String::from).collect();
    let dir = scratch("stream_kill");
    let sinks = |out: &Path| {
        vec![
            "--sink".to_string(),
            format!("features={}", out.join("features").display()),
            "--sink".into(),
            format!("rejected->files={}", out.join("rejected").display()),
        ]
    };

    // The reference: the same records read by a backfill.
    let reference = dir.join("reference");
    let mut args = vec!["--threads".to_string(), "1".into(), "--quiet".into()];
    args.extend(sinks(&reference));
    run_to_end(&bin, &args);

    // The stream, killed with SIGKILL at random moments while a producer appends the records.
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live dir");
    let out = dir.join("stream");
    let mut stream = vec![
        "--mode".to_string(),
        "stream".into(),
        "--quiet".into(),
        "--state-dir".into(),
        dir.join("state").display().to_string(),
        "--checkpoint-interval".into(),
        "40ms".into(),
        "--poll-interval".into(),
        "10ms".into(),
        "--source".into(),
        format!("applications={}/*.jsonl", live.display()),
    ];
    stream.extend(sinks(&out));
    let producer = produce(live.clone(), lines);
    let mut rng = Rng(0x5eed_1234);
    let mut kills = 0;
    let started = Instant::now();
    while !producer.is_finished() || kills < 12 {
        let mut child = start(&bin, &stream);
        std::thread::sleep(Duration::from_millis(20 + rng.below(180)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills += 1;
        assert!(started.elapsed() < Duration::from_secs(120), "the producer never finished");
    }
    producer.join().expect("producer");
    // The last run reads what is left and drains.
    let mut last = stream.clone();
    last.extend(["--exit-when-idle".to_string(), "800ms".into()]);
    run_to_end(&bin, &last);

    let (want, got) = (rows(&reference.join("features")), rows(&out.join("features")));
    assert_eq!(want.len(), 2430, "the reference run");
    assert_eq!(got.len(), want.len(), "rows after {kills} kills: lost or repeated");
    assert_eq!(got, want, "rows after {kills} kills differ from an uninterrupted run's");
    let rejected = rows(&out.join("rejected"));
    assert_eq!(rejected.len(), 30, "every malformed line rejected exactly once");
    let per_position: BTreeMap<String, usize> = rejected.iter().fold(BTreeMap::new(), |mut m, r| {
        let v: serde_json::Value = serde_json::from_str(r).expect("JSON");
        *m.entry(v["position"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        m
    });
    assert!(per_position.values().all(|n| *n == 1), "{per_position:?}");
}
