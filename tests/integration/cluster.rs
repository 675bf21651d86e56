//! The execution core at every scale: one worker, several workers, and clusters of several
//! processes (on 127.0.0.1, and on two hosts made of network namespaces so the key exchange
//! crosses a real network interface) write the same rows in batch and in stream mode; a
//! streaming cluster killed at random and restarted (on another number of workers, too)
//! writes every row exactly once.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipe_tests::{build_pipeline, repo_root, scratch};

const KEY: &str = "integration-test-key-0123456789";

/// The rows a sink directory holds (see `pipe_tests::sink_rows`).
fn rows(dir: &Path) -> Vec<String> {
    pipe_tests::sink_rows(dir)
}

/// Free TCP ports on 127.0.0.1, one per process.
fn ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("addr").port()).collect()
}

fn hosts_file(dir: &Path, hosts: &[String]) -> PathBuf {
    let path = dir.join(format!("hosts-{}", hosts.join("_").replace([':', '.'], "-")));
    std::fs::write(&path, hosts.join("\n") + "\n").expect("hosts file");
    path
}

/// Starts process `i` of `n` (each with `workers` threads), optionally inside a namespace.
fn spawn(bin: &Path, args: &[String], workers: usize, n: usize, i: usize, hosts: &Path, netns: Option<&str>) -> Child {
    let mut all: Vec<String> = args.to_vec();
    all.extend(["--workers".into(), workers.to_string()]);
    if n > 1 {
        all.extend([
            "--processes".into(),
            n.to_string(),
            "--process".into(),
            i.to_string(),
            "--hosts".into(),
            hosts.display().to_string(),
        ]);
    }
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(&all).env("PIPE_HMAC_KEY", KEY).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start")
}

/// Runs a cluster of `n` processes to its end on 127.0.0.1 and checks every process succeeded.
fn run_cluster(bin: &Path, dir: &Path, args: &[String], workers: usize, n: usize) {
    let hosts: Vec<String> = ports(n).iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let hosts = hosts_file(dir, &hosts);
    let children: Vec<Child> = (0..n).map(|i| spawn(bin, args, workers, n, i, &hosts, None)).collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "process {i} of {n} ({workers} workers) failed: {args:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A deterministic generator of 64-bit numbers (xorshift) from `seed`.
fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// Events of four keys, disordered within the windows pipeline's two-minute bound.
fn events(seed: u64, n: usize) -> Vec<String> {
    let mut next = xorshift(seed);
    let mut t: i64 = 1_700_000_000_000;
    (0..n)
        .map(|_| {
            t += (next() % 90_000) as i64;
            let at = t - (next() % 110_000) as i64;
            let key = ["a", "b", "c", "d", "e", "f", "g"][(next() % 7) as usize];
            let value = match next() % 10 {
                0 => "null".to_string(),
                _ => format!("{}", (next() % 20_000) as f64 / 100.0 - 50.0),
            };
            let tag = match next() % 5 {
                0 => "null".to_string(),
                k => format!("\"t{k}\""),
            };
            format!(r#"{{"key":"{key}","at":{at},"value":{value},"tag":{tag}}}"#)
        })
        .collect()
}

const WINDOW_SINKS: [&str; 3] = ["tumbling", "sliding", "sessions"];

fn window_sinks(out: &Path) -> Vec<String> {
    WINDOW_SINKS.iter().flat_map(|s| ["--sink".to_string(), format!("{s}->files={}", out.join(s).display())]).collect()
}

#[test]
fn every_mode_and_scale_writes_the_same_rows() {
    let bin = build_pipeline(Path::new("tests/cases/stream/windows/pipeline.pipe"));
    for seed in [3u64, 11] {
        let dir = scratch(&format!("cluster_scales_{seed}"));
        let input = events(seed, 1500);
        let live = dir.join("live");
        std::fs::create_dir_all(&live).expect("live");
        // Five files, so the files are shared out over the workers of a stream.
        for (k, chunk) in input.chunks(input.len() / 5 + 1).enumerate() {
            std::fs::write(live.join(format!("part-{k}.jsonl")), chunk.join("\n") + "\n").expect("input");
        }
        let source = format!("events={}/*.jsonl", live.display());
        let reference = dir.join("reference");
        let mut args = vec!["--quiet".to_string(), "--source".into(), source.clone()];
        args.extend(window_sinks(&reference));
        run_cluster(&bin, &dir, &args, 1, 1);
        let want: Vec<Vec<String>> = WINDOW_SINKS.iter().map(|s| rows(&reference.join(s))).collect();
        assert!(want.iter().all(|w| !w.is_empty()), "seed {seed}: the reference wrote nothing");

        for (mode, workers, processes) in [
            ("batch", 3, 1),
            ("batch", 1, 2),
            ("batch", 2, 3),
            ("stream", 1, 1),
            ("stream", 3, 1),
            ("stream", 1, 2),
            ("stream", 2, 3),
        ] {
            let out = dir.join(format!("{mode}-{workers}x{processes}"));
            let mut args = vec!["--quiet".to_string(), "--mode".into(), mode.into(), "--source".into(), source.clone()];
            if mode == "stream" {
                args.extend([
                    "--exit-when-idle".into(),
                    "600ms".into(),
                    "--checkpoint-interval".into(),
                    "100ms".into(),
                ]);
            }
            args.extend(window_sinks(&out));
            run_cluster(&bin, &dir, &args, workers, processes);
            for (sink, want) in WINDOW_SINKS.iter().zip(&want) {
                let got = rows(&out.join(sink));
                assert_eq!(
                    &got, want,
                    "seed {seed}: {sink} rows of {mode} on {processes} processes of {workers} workers differ from one worker's"
                );
            }
        }
    }
}

/// Orders of three keys with one to five line items each. With `nan`, `v` is negative in one
/// item of eight (a NaN under `pow(v, 0.5)`), and some orders are written so that a group
/// already holds a number when an order whose first item is negative comes: taken one by one,
/// the larger item after the NaN still raises `max`.
fn orders(seed: u64, n: usize, nan: bool) -> Vec<String> {
    let mut next = xorshift(seed);
    let mut t: i64 = 1_700_000_000_000;
    let item = |sku: u64, v: f64, tag: Option<u64>| {
        let tag = tag.map_or("null".to_string(), |k| format!("\"t{k}\""));
        format!(r#"{{"sku":"s{sku}","v":{v},"tag":{tag}}}"#)
    };
    let mut out = Vec::new();
    for k in 0..n {
        t += (next() % 60_000) as i64;
        let at = t - (next() % 90_000) as i64;
        let key = ["a", "b", "c"][(next() % 3) as usize];
        let items: Vec<String> = if nan && k % 50 == 7 {
            out.push(format!(r#"{{"key":"{key}","at":{at},"items":[{}]}}"#, item(1, 4.0, None)));
            vec![item(2, -1.0, None), item(3, 400.0, Some(1))]
        } else {
            (0..1 + next() % 5)
                .map(|_| {
                    let negative = nan && next().is_multiple_of(8);
                    let v = if negative { -((next() % 100) as f64) } else { (next() % 10_000) as f64 / 100.0 };
                    item(next() % 9, v, (!next().is_multiple_of(3)).then(|| next() % 4))
                })
                .collect()
        };
        out.push(format!(r#"{{"key":"{key}","at":{at},"items":[{}]}}"#, items.join(",")));
    }
    out
}

const ORDER_SINKS: [&str; 3] = ["tumbling", "sliding", "sessions"];

/// Runs the explode_groups pipeline over `source` with `workers` × `processes` in `mode` into
/// `out`, and says where its rows differ from `want` (one list per sink), if they do.
fn order_rows_differ(
    bin: &Path,
    dir: &Path,
    source: &str,
    run: (&str, usize, usize),
    want: &[Vec<String>],
) -> Option<String> {
    let (mode, workers, processes) = run;
    let out = dir.join(format!("{mode}-{workers}x{processes}"));
    let mut args = vec!["--quiet".to_string(), "--mode".into(), mode.into(), "--source".into(), source.to_string()];
    if mode == "stream" {
        args.extend(["--exit-when-idle".into(), "600ms".into()]);
    }
    for s in ORDER_SINKS {
        args.extend(["--sink".to_string(), format!("{s}->files={}", out.join(s).display())]);
    }
    run_cluster(bin, dir, &args, workers, processes);
    ORDER_SINKS.iter().zip(want).find_map(|(sink, want)| {
        let got = rows(&out.join(sink));
        (got != *want).then(|| {
            let at = got.iter().zip(want).position(|(g, w)| g != w).unwrap_or(got.len().min(want.len()));
            format!(
                "{sink} rows of {mode} on {processes} processes of {workers} workers differ from one worker's: {} rows against {}, first at {at}: {:?} against {:?}",
                got.len(),
                want.len(),
                got.get(at),
                want.get(at)
            )
        })
    })
}

/// The rows an `explode` makes of one order share its key and time, and travel to their
/// group's worker as one partial accumulator: every aggregate and window kind gives the rows of
/// one worker folding them one by one, on every number of workers and processes, batch and
/// stream. With NaN in `min` and `max` (which keep a NaN that comes first) the order rows
/// reach a group in matters, so that part reads one file (one split, one reading worker): a
/// partial must not hide the values after a NaN.
#[test]
fn rows_of_one_record_merged_before_the_exchange_give_the_same_groups() {
    let bin = build_pipeline(Path::new("tests/cases/stream/explode_groups/pipeline.pipe"));
    let dir = scratch("cluster_explode_groups");
    for nan in [false, true] {
        let input = orders(5, 1200, nan);
        let live = dir.join(format!("live-{nan}"));
        std::fs::create_dir_all(&live).expect("live");
        let files = if nan { 1 } else { 3 };
        for (k, chunk) in input.chunks(input.len() / files + 1).enumerate() {
            std::fs::write(live.join(format!("part-{k}.jsonl")), chunk.join("\n") + "\n").expect("input");
        }
        let source = format!("orders={}/*.jsonl", live.display());
        let reference = dir.join(format!("reference-{nan}"));
        let mut args = vec!["--quiet".to_string(), "--source".into(), source.clone()];
        for s in ORDER_SINKS {
            args.extend(["--sink".to_string(), format!("{s}->files={}", reference.join(s).display())]);
        }
        run_cluster(&bin, &dir, &args, 1, 1);
        let want: Vec<Vec<String>> = ORDER_SINKS.iter().map(|s| rows(&reference.join(s))).collect();
        assert!(
            want.iter().all(|w| w.len() > 20),
            "the reference wrote too little: {:?}",
            want.iter().map(Vec::len).collect::<Vec<_>>()
        );
        if nan {
            assert!(want[0].iter().any(|r| r.contains(r#""high":20.0"#)), "no group's max is the 400 after a NaN");
            assert!(want[0].iter().any(|r| r.contains(r#""high":"NaN""#)), "no group's max is a leading NaN");
        }
        let runs: &[(&str, usize, usize)] = if nan {
            &[("batch", 2, 1), ("batch", 3, 1)]
        } else {
            &[("batch", 2, 1), ("batch", 3, 1), ("batch", 1, 2), ("stream", 2, 1)]
        };
        for &(mode, workers, processes) in runs {
            let run_dir = dir.join(format!("{nan}"));
            std::fs::create_dir_all(&run_dir).expect("run dir");
            if let Some(why) = order_rows_differ(&bin, &run_dir, &source, (mode, workers, processes), &want) {
                panic!("NaN {nan}: {why}");
            }
        }
    }
}

/// The member_features example's sinks under `out`.
fn feature_sinks(out: &Path) -> Vec<String> {
    vec![
        "--sink".to_string(),
        format!("features={}", out.join("features").display()),
        "--sink".into(),
        format!("rejected->files={}", out.join("rejected").display()),
    ]
}

/// Runs `cmd`, saying whether it succeeded.
fn sh(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd).args(args).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Two hosts joined by a veth pair: namespaces `<tag>a` (10.213.0.1) and `<tag>b` (10.213.0.2).
struct Hosts(String);

impl Hosts {
    fn make(tag: &str) -> Option<Hosts> {
        let (a, b) = (format!("{tag}a"), format!("{tag}b"));
        let _ = sh("ip", &["netns", "del", &a]);
        let _ = sh("ip", &["netns", "del", &b]);
        let steps: Vec<Vec<String>> = vec![
            vec!["netns".into(), "add".into(), a.clone()],
            vec!["netns".into(), "add".into(), b.clone()],
            vec![
                "link".into(),
                "add".into(),
                format!("{tag}0"),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                format!("{tag}1"),
            ],
            vec!["link".into(), "set".into(), format!("{tag}0"), "netns".into(), a.clone()],
            vec!["link".into(), "set".into(), format!("{tag}1"), "netns".into(), b.clone()],
            vec![
                "-n".into(),
                a.clone(),
                "addr".into(),
                "add".into(),
                "10.213.0.1/24".into(),
                "dev".into(),
                format!("{tag}0"),
            ],
            vec![
                "-n".into(),
                b.clone(),
                "addr".into(),
                "add".into(),
                "10.213.0.2/24".into(),
                "dev".into(),
                format!("{tag}1"),
            ],
            vec!["-n".into(), a.clone(), "link".into(), "set".into(), format!("{tag}0"), "up".into()],
            vec!["-n".into(), b.clone(), "link".into(), "set".into(), format!("{tag}1"), "up".into()],
            vec!["-n".into(), a.clone(), "link".into(), "set".into(), "lo".into(), "up".into()],
            vec!["-n".into(), b.clone(), "link".into(), "set".into(), "lo".into(), "up".into()],
        ];
        let hosts = Hosts(tag.to_string());
        for s in steps {
            let s: Vec<&str> = s.iter().map(String::as_str).collect();
            if !sh("ip", &s) {
                return None;
            }
        }
        Some(hosts)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let _ = sh("ip", &["netns", "del", &format!("{}a", self.0)]);
        let _ = sh("ip", &["netns", "del", &format!("{}b", self.0)]);
    }
}

#[test]
fn a_cluster_of_two_hosts_exchanges_keys_over_the_network() {
    let Some(_hosts) = Hosts::make("pipex") else {
        #[allow(clippy::print_stderr, reason = "why the test did nothing")]
        {
            eprintln!("skipped: cannot make network namespaces here (needs root and iproute2)");
        }
        return;
    };
    let bin = build_pipeline(Path::new("examples/member_features/pipeline.pipe"));
    let dir = scratch("cluster_netns");
    let reference = dir.join("reference");
    let mut args = vec!["--quiet".to_string()];
    args.extend(feature_sinks(&reference));
    run_cluster(&bin, &dir, &args, 1, 1);

    let hosts = hosts_file(&dir, &["10.213.0.1:4801".to_string(), "10.213.0.2:4801".to_string()]);
    let data = repo_root().join("examples/member_features/data/applications.jsonl");
    for mode in ["batch", "stream"] {
        let out = dir.join(mode);
        let mut args = vec!["--quiet".to_string(), "--mode".into(), mode.into()];
        if mode == "stream" {
            args.extend(["--exit-when-idle".into(), "800ms".into()]);
        }
        args.extend(["--source".into(), format!("applications={}", data.display())]);
        args.extend(feature_sinks(&out));
        let children =
            [spawn(&bin, &args, 2, 2, 0, &hosts, Some("pipexa")), spawn(&bin, &args, 2, 2, 1, &hosts, Some("pipexb"))];
        for (i, c) in children.into_iter().enumerate() {
            let o = c.wait_with_output().expect("wait");
            assert!(o.status.success(), "{mode}: host {i} failed:\n{}", String::from_utf8_lossy(&o.stderr));
        }
        assert_eq!(rows(&out.join("features")), rows(&reference.join("features")), "{mode} on two hosts");
        assert_eq!(rows(&out.join("rejected")).len(), 30, "{mode}: every malformed line rejected once");
    }
}

#[test]
fn a_streaming_cluster_killed_at_random_and_restarted_writes_each_row_exactly_once() {
    let bin = build_pipeline(Path::new("examples/member_features/pipeline.pipe"));
    let data = repo_root().join("examples/member_features/data/applications.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&data).expect("example data").lines().map(String::from).collect();
    let dir = scratch("cluster_kill");
    let reference = dir.join("reference");
    let mut args = vec!["--quiet".to_string()];
    args.extend(feature_sinks(&reference));
    run_cluster(&bin, &dir, &args, 1, 1);

    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live");
    let out = dir.join("stream");
    let mut stream = vec![
        "--mode".to_string(),
        "stream".into(),
        "--quiet".into(),
        "--state-dir".into(),
        dir.join("state").display().to_string(),
        "--checkpoint-interval".into(),
        "60ms".into(),
        "--poll-interval".into(),
        "10ms".into(),
        "--source".into(),
        format!("applications={}/*.jsonl", live.display()),
    ];
    stream.extend(feature_sinks(&out));
    // A producer appends the records to six files over time.
    let producer = pipe_tests::produce(live.clone(), lines, 6);
    let mut seed: u64 = 0x5eed_c1a5;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut kills = 0;
    let started = Instant::now();
    while !producer.is_finished() || kills < 10 {
        let hosts: Vec<String> = ports(2).iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let hosts = hosts_file(&dir, &hosts);
        let mut cluster: Vec<Child> = (0..2).map(|i| spawn(&bin, &stream, 1, 2, i, &hosts, None)).collect();
        std::thread::sleep(Duration::from_millis(150 + rand(400)));
        // One process dies; the other is stopped with it (the failure model: all restart).
        let victim = rand(2) as usize;
        cluster[victim].kill().expect("SIGKILL");
        for c in &mut cluster {
            let _ = c.kill();
            let _ = c.wait();
        }
        kills += 1;
        assert!(started.elapsed() < Duration::from_secs(240), "the producer never finished");
    }
    producer.join().expect("producer");
    // The last run, on one process of three workers (the state is re-partitioned), drains.
    let mut last = stream.clone();
    last.extend(["--exit-when-idle".to_string(), "1s".into()]);
    run_cluster(&bin, &dir, &last, 3, 1);

    let (want, got) = (rows(&reference.join("features")), rows(&out.join("features")));
    assert_eq!(want.len(), 2430, "the reference run");
    assert_eq!(got.len(), want.len(), "rows after {kills} kills: lost or repeated");
    assert_eq!(got, want, "rows after {kills} kills differ from an uninterrupted run's");
    assert_eq!(rows(&out.join("rejected")).len(), 30, "every malformed line rejected exactly once");
}

#[test]
fn a_stream_that_ran_to_the_end_of_its_input_goes_on_with_new_input_next_time() {
    let bin = build_pipeline(Path::new("examples/member_features/pipeline.pipe"));
    let data = repo_root().join("examples/member_features/data/applications.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&data).expect("example data").lines().map(String::from).collect();
    let dir = scratch("stream_after_end");
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live");
    let (first, second) = lines.split_at(lines.len() / 2);
    std::fs::write(live.join("a.jsonl"), first.join("\n") + "\n").expect("input");
    let out = dir.join("out");
    let mut args = vec![
        "--mode".to_string(),
        "stream".into(),
        "--quiet".into(),
        "--exit-when-idle".into(),
        "600ms".into(),
        "--state-dir".into(),
        dir.join("state").display().to_string(),
        "--source".into(),
        format!("applications={}/*.jsonl", live.display()),
    ];
    args.extend(feature_sinks(&out));
    let summary = |out: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join("features/_pipe_summary.json")).expect("summary"))
            .expect("JSON")
    };
    let count = |s: &serde_json::Value, name: &str, kind: &str, what: &str| -> i64 {
        s["operators"]
            .as_array()
            .and_then(|a| a.iter().find(|o| o["name"] == name && o["kind"] == kind))
            .and_then(|o| o[what].as_i64())
            .unwrap_or(-1)
    };
    run_cluster(&bin, &dir, &args, 2, 1);
    let after_first = rows(&out.join("features")).len();
    assert!(after_first > 0, "the first run fired its windows at the end of its input");
    // More input comes; the next run reads only that, and none of it is late.
    std::fs::write(live.join("b.jsonl"), second.join("\n") + "\n").expect("input");
    run_cluster(&bin, &dir, &args, 2, 1);
    let s = summary(&out);
    assert_eq!(count(&s, "applications", "source", "read"), lines.len() as i64, "each line read once over both runs");
    assert_eq!(count(&s, "member_daily", "aggregate", "late"), 0, "nothing of the second run is late");
    assert!(rows(&out.join("features")).len() > after_first, "the second run's windows fired");
}

/// Runs `bin` as reference (one process, one worker, batch) and at other scales, and checks
/// every scale writes the reference's rows to each of `sinks` (`--sink` names).
fn same_rows_at_every_scale(
    bin: &Path,
    dir: &Path,
    common: &[String],
    sinks: &[&str],
    scales: &[(&str, usize, usize)],
) {
    let sink_args = |out: &Path| -> Vec<String> {
        sinks
            .iter()
            .flat_map(|s| ["--sink".to_string(), format!("{s}={}", out.join(s.replace("->", "_")).display())])
            .collect()
    };
    let reference = dir.join("reference");
    let mut args = common.to_vec();
    args.extend(sink_args(&reference));
    run_cluster(bin, dir, &args, 1, 1);
    for (mode, workers, processes) in scales {
        let out = dir.join(format!("{mode}-{workers}x{processes}"));
        let mut args = common.to_vec();
        args.extend(["--mode".into(), mode.to_string()]);
        if *mode == "stream" {
            args.extend(["--exit-when-idle".into(), "600ms".into(), "--checkpoint-interval".into(), "100ms".into()]);
        }
        args.extend(sink_args(&out));
        run_cluster(bin, dir, &args, *workers, *processes);
        for s in sinks {
            let (want, got) = (rows(&reference.join(s.replace("->", "_"))), rows(&out.join(s.replace("->", "_"))));
            assert!(!want.is_empty(), "{s}: the reference wrote nothing");
            assert_eq!(got, want, "{s}: {mode} on {processes} processes of {workers} workers differs from one worker");
        }
    }
}

#[test]
fn joins_and_rolling_windows_write_the_same_rows_on_every_number_of_processes() {
    // Interval and as-of joins and a rolling window: both sides cross the key exchange between
    // processes; the lookup and as-of joins with a table read it in every process.
    let bin = build_pipeline(Path::new("tests/cases/stream/interval/pipeline.pipe"));
    let dir = scratch("cluster_joins");
    let mut common = vec!["--quiet".to_string()];
    for (name, seed) in [("views", 5u64), ("buys", 6)] {
        let input = events(seed, 900);
        let live = dir.join(name);
        std::fs::create_dir_all(&live).expect("live");
        for (k, chunk) in input.chunks(input.len() / 3 + 1).enumerate() {
            std::fs::write(live.join(format!("part-{k}.jsonl")), chunk.join("\n") + "\n").expect("input");
        }
        common.extend(["--source".into(), format!("{name}={}/*.jsonl", live.display())]);
    }
    let tiers = dir.join("tiers.jsonl");
    std::fs::write(&tiers, events(7, 60).join("\n") + "\n").expect("tiers");
    common.extend(["--source".into(), format!("tiers={}", tiers.display())]);
    let sinks = [
        "attributed->files",
        "near->files",
        "recent->files",
        "priced->files",
        "after->files",
        "tiered->files",
        "tier_then->files",
    ];
    same_rows_at_every_scale(&bin, &dir, &common, &sinks, &[("batch", 1, 2), ("batch", 2, 3), ("stream", 1, 2)]);

    // Lookup and as-of joins: every process reads the tables itself, from a share of each
    // worker's reading gathered across the cluster.
    let bin = build_pipeline(Path::new("tests/cases/codegen/join/pipeline.pipe"));
    let dir = scratch("cluster_tables");
    let sinks = ["profiles", "all_apps->files", "scored->files", "overall->files", "rejected->files"];
    // `per_state` writes no row (k >= 2 suppresses every group): out of the repository, not compared.
    let common =
        ["--quiet".to_string(), "--sink".into(), format!("per_state->files={}", dir.join("per_state").display())];
    same_rows_at_every_scale(&bin, &dir, &common, &sinks, &[("batch", 1, 2), ("stream", 2, 2)]);
}
