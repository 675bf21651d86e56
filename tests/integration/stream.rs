//! The streaming runner against the batch runner: for the same records (disordered within the
//! watermark bound) a stream writes the same rows as a backfill, for every window kind and
//! aggregate; and a stream killed with SIGKILL at random moments and restarted from its
//! checkpoints writes exactly what an uninterrupted run writes.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipe_tests::{build_pipeline, scratch};

const KEY: &str = "integration-test-key-0123456789";

/// The rows a sink directory holds (see `pipe_tests::sink_rows`).
fn rows(dir: &Path) -> Vec<String> {
    pipe_tests::sink_rows(dir)
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
    let producer = pipe_tests::produce(live.clone(), lines, 3);
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

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.mmm][Z]` (UTC), computed here
/// without the runtime.
fn iso_ms(s: &str) -> i64 {
    let n = |a: usize, b: usize| s[a..b].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (hh, mm, ss) = (n(11, 13), n(14, 16), n(17, 19));
    let ms = if s.len() >= 23 && &s[19..20] == "." { n(20, 23) } else { 0 };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000 + ms
}

#[test]
fn order_windows_match_the_orders_in_both_modes() {
    let bin = build_pipeline(Path::new("examples/order_windows/pipeline.pipe"));
    let data = pipe_tests::repo_root().join("examples/order_windows/data/orders.jsonl");
    let text = std::fs::read_to_string(&data).expect("orders");
    let orders: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(orders.len(), 846);
    let dir = scratch("order_windows");
    let sinks = |out: &Path| {
        let mut a = Vec::new();
        for (name, sub) in [("hourly->files", "hourly"), ("rushes->files", "rushes"), ("lines->parquet", "lines")] {
            a.push("--sink".to_string());
            a.push(format!("{name}={}", out.join(sub).display()));
        }
        a
    };
    let (b, s) = (dir.join("batch"), dir.join("stream"));
    let mut args = vec!["--threads".to_string(), "1".into(), "--quiet".into()];
    args.extend(sinks(&b));
    run_to_end(&bin, &args);
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live");
    let lines: Vec<String> = text.lines().map(String::from).collect();
    write_lines(&live.join("a.jsonl"), &lines[..400]);
    write_lines(&live.join("b.jsonl"), &lines[400..]);
    let mut args = vec![
        "--mode".to_string(),
        "stream".into(),
        "--quiet".into(),
        "--exit-when-idle".into(),
        "600ms".into(),
        "--source".into(),
        format!("orders={}/*.jsonl", live.display()),
    ];
    args.extend(sinks(&s));
    run_to_end(&bin, &args);
    assert_eq!(rows(&b.join("rushes")), rows(&s.join("rushes")), "sessions differ between modes");
    let csv_rows = |dir: &Path| {
        let mut v: Vec<String> = Vec::new();
        for e in std::fs::read_dir(dir).expect("hourly dir").flatten() {
            if e.path().extension().is_some_and(|x| x == "csv") {
                v.extend(std::fs::read_to_string(e.path()).expect("csv").lines().skip(1).map(String::from));
            }
        }
        v.sort();
        v
    };
    assert_eq!(csv_rows(&b.join("hourly")), csv_rows(&s.join("hourly")), "hourly rows differ between modes");

    // Hourly revenue per size, from the orders.
    let mut hourly: BTreeMap<(String, i64), (f64, i64, std::collections::BTreeSet<String>)> = BTreeMap::new();
    for o in &orders {
        let t = iso_ms(o["ts"].as_str().expect("ts"));
        for item in o["items"].as_array().expect("items") {
            let e = hourly
                .entry((item["size"].as_str().expect("size").to_string(), t - t.rem_euclid(3_600_000)))
                .or_default();
            e.0 += item["price"].as_f64().expect("price");
            e.1 += 1;
            e.2.insert(item["name"].as_str().expect("name").to_string());
        }
    }
    let written = csv_rows(&b.join("hourly"));
    assert_eq!(written.len(), hourly.len());
    for row in written {
        let c: Vec<&str> = row.split(',').collect();
        let (start, end) = (iso_ms(c[1]), iso_ms(c[2]));
        assert_eq!(end - start, 3_600_000);
        let (revenue, pizzas, kinds) = &hourly[&(c[0].to_string(), start)];
        assert!((c[3].parse::<f64>().expect("revenue") - revenue).abs() < 1e-6, "{row}");
        assert_eq!(c[4].parse::<i64>().expect("pizzas"), *pizzas, "{row}");
        assert_eq!(c[5].parse::<usize>().expect("kinds"), kinds.len(), "{row}");
    }

    // Rush sessions: orders sorted by time, a new session when the gap is 20 minutes or more.
    let mut by_time: Vec<(i64, &serde_json::Value)> =
        orders.iter().map(|o| (iso_ms(o["ts"].as_str().expect("ts")), o)).collect();
    by_time.sort_by_key(|(t, o)| (*t, o["id"].as_str().unwrap_or_default().to_string()));
    let gap = 20 * 60_000;
    let mut sessions: Vec<(i64, i64, i64, f64, i64, String, String)> = Vec::new();
    for (t, o) in by_time {
        let id = o["id"].as_str().expect("id").to_string();
        let (total, n) = (o["total"].as_f64().expect("total"), o["n_items"].as_i64().expect("n_items"));
        match sessions.last_mut() {
            Some(s) if t < s.1 => {
                s.1 = s.1.max(t + gap);
                s.2 += 1;
                s.3 += total;
                s.4 += n;
                s.6 = id;
            }
            _ => sessions.push((t, t + gap, 1, total, n, id.clone(), id)),
        }
    }
    let written = rows(&b.join("rushes"));
    assert_eq!(written.len(), sessions.len());
    let mut got: Vec<(i64, i64, i64, f64, i64, String, String)> = written
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r).expect("JSON");
            (
                iso_ms(v["window_start"].as_str().expect("start")),
                iso_ms(v["window_end"].as_str().expect("end")),
                v["orders"].as_i64().expect("orders"),
                v["spent"].as_f64().expect("spent"),
                v["items"].as_i64().expect("items"),
                v["first_order"].as_str().expect("first").to_string(),
                v["last_order"].as_str().expect("last").to_string(),
            )
        })
        .collect();
    got.sort_by_key(|s| s.0);
    for (g, w) in got.iter().zip(&sessions) {
        assert_eq!((g.0, g.1, g.2, g.4, &g.5, &g.6), (w.0, w.1, w.2, w.4, &w.5, &w.6));
        assert!((g.3 - w.3).abs() < 1e-6, "{g:?} vs {w:?}");
    }
}

/// A minute-aligned time: windows of one minute start here.
const T0: i64 = 1_700_000_040_000;
const MIN: i64 = 60_000;

/// Feeds `lines` to a stream on standard input one at a time (so each is its own batch and
/// the watermark moves between them), runs `probe` before closing the input, and waits for
/// the run to drain and exit.
fn feed(bin: &Path, args: &[String], lines: &[(i64, f64)], probe: impl FnOnce()) {
    let mut child = Command::new(bin)
        .args(args)
        .env("PIPE_HMAC_KEY", KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the pipeline");
    let mut stdin = child.stdin.take().expect("stdin");
    for (at, value) in lines {
        writeln!(stdin, r#"{{"key":"a","at":{at},"value":{value}}}"#).expect("write");
        stdin.flush().expect("flush");
        std::thread::sleep(Duration::from_millis(150));
    }
    probe();
    drop(stdin);
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// (window start, n, total) of each row a counts sink wrote, sorted.
fn counts(dir: &Path) -> Vec<(i64, i64, f64)> {
    let mut v: Vec<(i64, i64, f64)> = rows(dir)
        .iter()
        .map(|r| {
            let j: serde_json::Value = serde_json::from_str(r).expect("JSON");
            (
                iso_ms(j["window_start"].as_str().expect("start")),
                j["n"].as_i64().expect("n"),
                j["total"].as_f64().expect("total"),
            )
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
    v
}

/// Arrivals: two in order, one late by a window, one that moves the watermark 20 minutes on,
/// one late beyond any allowed lateness.
const ARRIVALS: [(i64, f64); 5] =
    [(T0 + 30_000, 1.0), (T0 + 90_000, 2.0), (T0 + 40_000, 4.0), (T0 + 20 * MIN, 8.0), (T0 + 50_000, 16.0)];

fn stdin_args(out: &Path, extra: &[String]) -> Vec<String> {
    let mut a = vec![
        "--mode".to_string(),
        "stream".into(),
        "--quiet".into(),
        "--sink".into(),
        format!("counts->files={}", out.join("counts").display()),
    ];
    a.extend(extra.iter().cloned());
    a
}

#[test]
fn allowed_lateness_re_emits_an_updated_window_then_drops() {
    let bin = build_pipeline(Path::new("tests/cases/stream/late/allow.pipe"));
    let out = scratch("late_allow");
    feed(&bin, &stdin_args(&out, &[]), &ARRIVALS, || {});
    assert_eq!(
        counts(&out.join("counts")),
        vec![(T0, 1, 1.0), (T0, 2, 5.0), (T0 + MIN, 1, 2.0), (T0 + 20 * MIN, 1, 8.0)],
        "the first window fires, fires again with the late record, and the last record is dropped"
    );
}

#[test]
fn late_records_are_dropped_counted_and_served_as_metrics() {
    let bin = build_pipeline(Path::new("tests/cases/stream/late/drop.pipe"));
    let out = scratch("late_drop");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let args = stdin_args(&out, &["--metrics-addr".into(), format!("127.0.0.1:{port}")]);
    let mut metrics = String::new();
    feed(&bin, &args, &ARRIVALS, || {
        use std::io::Read;
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("the metrics endpoint");
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("request");
        conn.read_to_string(&mut metrics).expect("response");
    });
    assert_eq!(counts(&out.join("counts")), vec![(T0, 1, 1.0), (T0 + MIN, 1, 2.0), (T0 + 20 * MIN, 1, 8.0)]);
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    let line = |name: &str, op: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("operator=\"{op}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .map(String::from)
            .unwrap_or_else(|| panic!("no {name} for {op} in\n{metrics}"))
    };
    assert_eq!(line("pipe_records_late_total", "counts"), "2");
    assert_eq!(line("pipe_records_read_total", "events"), "5");
    let wm = metrics.lines().find(|l| l.starts_with("pipe_watermark_milliseconds")).expect("watermark gauge");
    assert!(wm.ends_with(&format!(" {}", T0 + 20 * MIN)), "{wm}");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("counts/_pipe_summary.json")).expect("summary beside the output"),
    )
    .expect("JSON");
    let counts_op = summary["operators"].as_array().and_then(|a| a.iter().find(|o| o["name"] == "counts")).cloned();
    assert_eq!(counts_op.map(|o| o["late"].clone()), Some(serde_json::json!(2)));
}

#[test]
fn records_behind_the_watermark_go_to_the_late_stream() {
    let bin = build_pipeline(Path::new("tests/cases/stream/late/to.pipe"));
    let out = scratch("late_to");
    let args = stdin_args(&out, &["--sink".into(), format!("late_events->files={}", out.join("late").display())]);
    feed(&bin, &args, &ARRIVALS, || {});
    assert_eq!(counts(&out.join("counts")), vec![(T0, 1, 1.0), (T0 + MIN, 1, 2.0), (T0 + 20 * MIN, 1, 8.0)]);
    let late: Vec<f64> = rows(&out.join("late"))
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(r).expect("JSON")["value"].as_f64().expect("value"))
        .collect();
    assert_eq!(late, vec![4.0, 16.0], "the two records that arrived behind the watermark, whole");
}

#[test]
fn an_idle_source_stops_holding_the_watermark_back() {
    let bin = build_pipeline(Path::new("tests/cases/stream/idle/pipeline.pipe"));
    let dir = scratch("stream_idle");
    let (busy, quiet, out) = (dir.join("busy"), dir.join("quiet"), dir.join("counts"));
    std::fs::create_dir_all(&busy).expect("busy");
    std::fs::create_dir_all(&quiet).expect("quiet");
    let lines: Vec<String> =
        (0..5).map(|k| format!(r#"{{"key":"a","at":{},"value":1.0}}"#, T0 + k * MIN + 1_000)).collect();
    write_lines(&busy.join("a.jsonl"), &lines);
    let args = vec![
        "--mode".to_string(),
        "stream".into(),
        "--quiet".into(),
        "--checkpoint-interval".into(),
        "100ms".into(),
        "--source".into(),
        format!("busy={}/*.jsonl", busy.display()),
        "--source".into(),
        format!("quiet={}/*.jsonl", quiet.display()),
        "--sink".into(),
        format!("counts->files={}", out.display()),
    ];
    let mut child = start(&bin, &args);
    // The quiet source has sent nothing for longer than its idle timeout: the busy source's
    // watermark (its last event) fires the four windows before it, while the stream runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rows(&out).len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let running = child.try_wait().expect("status").is_none();
    child.kill().expect("stop");
    child.wait().expect("reap");
    assert!(running, "the stream ended by itself");
    let starts: Vec<i64> = counts_n(&out);
    assert_eq!(starts, vec![T0, T0 + MIN, T0 + 2 * MIN, T0 + 3 * MIN], "the last window waits for more input");
}

/// The window starts of the rows a counts sink wrote, sorted.
fn counts_n(dir: &Path) -> Vec<i64> {
    let mut v: Vec<i64> = rows(dir)
        .iter()
        .map(|r| {
            let j: serde_json::Value = serde_json::from_str(r).expect("JSON");
            iso_ms(j["window_start"].as_str().expect("start"))
        })
        .collect();
    v.sort_unstable();
    v
}

/// An Arrow sink in a stream: each checkpoint epoch's rows go to their own IPC file, published
/// with the checkpoint; together the files hold every record once, typed.
#[test]
fn a_stream_writes_arrow_files_that_hold_every_record_once() {
    use pipe_runtime::arrow::{from_batch, read_ipc_file};
    let bin = build_pipeline(Path::new("tests/cases/stream/arrow/sink.pipe"));
    let out = scratch("stream_arrow");
    let args: Vec<String> = vec![
        "--mode".into(),
        "stream".into(),
        "--quiet".into(),
        "--checkpoint-interval".into(),
        "100ms".into(),
        "--state-dir".into(),
        out.join("state").display().to_string(),
        "--sink".into(),
        format!("sized->files={}", out.join("events").display()),
    ];
    let arrivals: Vec<(i64, f64)> = (0..6).map(|i| (T0 + i * 1000, i as f64)).collect();
    feed(&bin, &args, &arrivals, || {});
    let mut got = Vec::new();
    for entry in std::fs::read_dir(out.join("events")).expect("the sink").flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "arrow") {
            read_ipc_file(std::fs::read(&path).expect("read"), |_, b| {
                for v in from_batch::<serde_json::Value>(b, None).expect("rows") {
                    let size = v["size"].as_str().expect("size").to_string();
                    got.push((v["at"].as_i64().expect("at"), v["value"].as_f64().expect("value"), size));
                }
            })
            .expect("an IPC file");
        }
    }
    got.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
    let want: Vec<(i64, f64, String)> =
        arrivals.iter().map(|&(at, v)| (at, v, if v > 2.0 { "big" } else { "small" }.to_string())).collect();
    assert_eq!(got, want);
}

#[test]
fn a_joins_table_read_again_while_the_stream_runs_gives_later_rows_the_new_values() {
    // tests/cases/codegen/join: `members` is read again every 100 ms in a stream run.
    let bin = build_pipeline(Path::new("tests/cases/codegen/join/pipeline.pipe"));
    let out = scratch("stream_join_refresh");
    let table = out.join("members.jsonl");
    std::fs::write(&table, "{\"member_id\":\"m1\",\"state\":\"CA\"}\n").expect("table");
    let apps = out.join("apps");
    std::fs::create_dir_all(&apps).expect("apps");
    let followed = apps.join("a.jsonl");
    std::fs::write(&followed, "").expect("apps file");
    let mut args: Vec<String> = vec![
        "--mode".into(),
        "stream".into(),
        "--quiet".into(),
        "--checkpoint-interval".into(),
        "100ms".into(),
        "--poll-interval".into(),
        "50ms".into(),
        "--exit-when-idle".into(),
        "2s".into(),
        "--source".into(),
        format!("members={}", table.display()),
        "--source".into(),
        format!("applications={}/*.jsonl", apps.display()),
    ];
    for sink in
        ["profiles", "all_apps->files", "scored->files", "per_state->files", "overall->files", "rejected->files"]
    {
        args.extend(["--sink".into(), format!("{sink}={}", out.join(sink.replace("->", "_")).display())]);
    }
    let child = Command::new(&bin)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the pipeline");
    let sink = out.join("all_apps_files");
    // (application number, state) of each row the left join wrote, in application order.
    let states = |dir: &Path| -> Vec<(i64, String)> {
        let mut v: Vec<(i64, String)> = rows(dir)
            .iter()
            .map(|r| {
                let j: serde_json::Value = serde_json::from_str(r).expect("JSON");
                let n = j["app_id"].as_str().and_then(|a| a.strip_prefix('x')).and_then(|n| n.parse().ok());
                (n.expect("app_id"), j["state"].as_str().unwrap_or("").to_string())
            })
            .collect();
        v.sort();
        v
    };
    // Until each condition holds, one application every 100 ms (the wait is bounded, not
    // measured).
    let mut sent = 0i64;
    let mut send_until = |done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !done() {
            assert!(Instant::now() < deadline, "the stream did not get there");
            let mut f = std::fs::OpenOptions::new().append(true).open(&followed).expect("append");
            writeln!(f, r#"{{"app_id":"x{sent}","member_id":"m1","amount":1.0,"submitted_at":{}}}"#, T0 + sent * 1000)
                .expect("write");
            sent += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    send_until(&|| !states(&sink).is_empty());
    // The table changes under its name, as a nightly export would replace it.
    let next = out.join("members.jsonl.new");
    std::fs::write(&next, "{\"member_id\":\"m1\",\"state\":\"NV\"}\n").expect("new table");
    std::fs::rename(&next, &table).expect("replace the table");
    send_until(&|| states(&sink).iter().any(|(_, s)| s == "NV"));
    // No more input: the stream ends once idle for 2 s, after a last checkpoint.
    let res = child.wait_with_output().expect("wait");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let got = states(&sink);
    assert_eq!(got.len() as i64, sent, "one row per application: {got:?}");
    // Rows in application order: the old state, then from one row on the new one, never back.
    let switch = got.iter().position(|(_, s)| s == "NV").expect("a row with the new state");
    assert!(switch > 0, "{got:?}");
    assert!(got[..switch].iter().all(|(_, s)| s == "CA") && got[switch..].iter().all(|(_, s)| s == "NV"), "{got:?}");
}

/// (key, time, value) of each event line `events` made.
fn parsed(lines: &[String]) -> Vec<(String, i64, Option<f64>)> {
    lines
        .iter()
        .map(|l| {
            let j: serde_json::Value = serde_json::from_str(l).expect("JSON");
            (j["key"].as_str().expect("key").to_string(), j["at"].as_i64().expect("at"), j["value"].as_f64())
        })
        .collect()
}

/// Writes each stream of the interval case whole (`NAME.jsonl`, for a backfill) and cut into
/// three files under `NAME/` (for a stream to follow).
fn write_interval_inputs(dir: &Path, views: &[String], buys: &[String]) {
    for (name, lines) in [("views", views), ("buys", buys)] {
        write_lines(&dir.join(format!("{name}.jsonl")), lines);
        let live = dir.join(name);
        std::fs::create_dir_all(&live).expect("live dir");
        for (k, chunk) in lines.chunks(lines.len() / 3 + 1).enumerate() {
            write_lines(&live.join(format!("part-{k}.jsonl")), chunk);
        }
    }
}

/// The runs the interval case compares: a backfill on 1 and 3 workers, a 2-worker stream.
const INTERVAL_RUNS: [(&str, bool, &[&str]); 3] = [
    ("batch1", true, &["--workers", "1"]),
    ("batch3", true, &["--workers", "3"]),
    ("stream2", false, &["--mode", "stream", "--workers", "2", "--exit-when-idle", "700ms"]),
];

/// One run's arguments: the streams' whole files for a backfill or their folders for a stream,
/// `tiers.jsonl` as the table, and `sinks` written under `out`.
fn interval_args(dir: &Path, batch: bool, extra: &[&str], out: &Path, sinks: &[&str]) -> Vec<String> {
    let stream = |name: &str| {
        if batch {
            format!("{name}={}", dir.join(format!("{name}.jsonl")).display())
        } else {
            format!("{name}={}/*.jsonl", dir.join(name).display())
        }
    };
    let mut args: Vec<String> = vec!["--quiet".into()];
    args.extend(extra.iter().map(|s| s.to_string()));
    for source in [stream("views"), stream("buys"), format!("tiers={}", dir.join("tiers.jsonl").display())] {
        args.extend(["--source".to_string(), source]);
    }
    args.extend(sink_args(out, sinks));
    args
}

#[test]
fn joins_and_rolling_windows_give_what_nested_loops_find_in_batch_and_stream_at_every_scale() {
    let bin = build_pipeline(Path::new("tests/cases/stream/interval/pipeline.pipe"));
    let sinks = ["attributed", "near", "recent", "priced", "after", "tiered", "tier_then"];
    let mut within_cut = false;
    for seed in 1..=3u64 {
        let dir = scratch(&format!("interval_{seed}"));
        let (views, buys) = (events(seed, 300, 110_000), events(seed + 100, 250, 110_000));
        write_interval_inputs(&dir, &views, &buys);
        // A table of tiers for keys a–c (views of `d` meet none), read whole before the streams.
        let tier_lines: Vec<String> =
            events(seed + 200, 60, 0).into_iter().filter(|l| !l.contains(r#""key":"d""#)).collect();
        write_lines(&dir.join("tiers.jsonl"), &tier_lines);
        // What each join must give, by a nested loop over the records.
        let (v, b, t) = (parsed(&views), parsed(&buys), parsed(&tier_lines));
        let tag_of =
            |l: &String| serde_json::from_str::<serde_json::Value>(l).expect("JSON")["tag"].as_str().map(String::from);
        let tier_tags: Vec<Option<String>> = tier_lines.iter().map(tag_of).collect();
        let num = |x: Option<f64>| x.map_or("null".to_string(), |x| format!("{x}"));
        let mut attributed = Vec::new();
        let mut near = Vec::new();
        for (key, at, value) in &v {
            let mut met = 0;
            for (bkey, bat, bvalue) in &b {
                if key == bkey && (0..=600_000).contains(&(bat - at)) {
                    attributed.push(format!("{key} {at} {} {bat} {}", num(*value), num(*bvalue)));
                    met += 1;
                }
                if key == bkey && (-300_000..=300_000).contains(&(bat - at)) {
                    near.push(format!("{key} {at} {bat}"));
                }
            }
            if met == 0 {
                attributed.push(format!("{key} {at} {} null null", num(*value)));
            }
        }
        attributed.sort();
        near.sort();
        // The as-of joins: per view, its key's purchase with the greatest (time, tag) at or
        // before it (a null tag orders first, equal ones by input order: the later wins).
        let tags: Vec<Option<String>> = buys
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON")["tag"].as_str().map(str::to_string))
            .collect();
        let (mut priced, mut after) = (Vec::new(), Vec::new());
        for (key, at, value) in &v {
            let latest = |max_age: i64| {
                (0..b.len())
                    .filter(|&j| b[j].0 == *key && b[j].1 <= *at && at - b[j].1 <= max_age)
                    .max_by(|&x, &y| (b[x].1, &tags[x], x).cmp(&(b[y].1, &tags[y], y)))
            };
            match latest(1_200_000) {
                Some(j) => priced.push(format!(
                    "{key} {at} {} {} {} {}",
                    num(*value),
                    b[j].1,
                    num(b[j].2),
                    tags[j].as_deref().unwrap_or("null")
                )),
                None => priced.push(format!("{key} {at} {} null null null", num(*value))),
            }
            if let Some(j) = latest(i64::MAX) {
                after.push(format!("{key} {at} {}", b[j].1));
            }
        }
        priced.sort();
        after.sort();
        // The table joins: every tier record of the key (or alone), and the latest within 30
        // minutes at or before the view (ties: the greatest tag, then the later line).
        let (mut tiered, mut tier_then) = (Vec::new(), Vec::new());
        for (key, at, _) in &v {
            let mine: Vec<usize> = (0..t.len()).filter(|&j| t[j].0 == *key).collect();
            for &j in &mine {
                tiered.push(format!("{key} {at} {} {}", t[j].1, tier_tags[j].as_deref().unwrap_or("null")));
            }
            if mine.is_empty() {
                tiered.push(format!("{key} {at} null null"));
            }
            let then = mine
                .iter()
                .copied()
                .filter(|&j| t[j].1 <= *at && at - t[j].1 <= 1_800_000)
                .max_by(|&x, &y| (t[x].1, &tier_tags[x], x).cmp(&(t[y].1, &tier_tags[y], y)));
            if let Some(j) = then {
                tier_then.push(format!("{key} {at} {} {}", t[j].1, num(t[j].2)));
            }
        }
        tiered.sort();
        tier_then.sort();
        // The rolling window: per view, its key's views in [t - 10m, t).
        let mut recent: Vec<String> = v
            .iter()
            .map(|(key, at, value)| {
                let before: Vec<&Option<f64>> =
                    v.iter().filter(|(k, t, _)| k == key && *t >= at - 600_000 && t < at).map(|(_, _, x)| x).collect();
                let present: Vec<f64> = before.iter().filter_map(|x| **x).collect();
                let high = present.iter().copied().fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))));
                format!("{key} {at} {} {} {} {}", num(*value), before.len(), present.len(), num(high))
            })
            .collect();
        recent.sort();
        let got = |out: &Path, sink: &str| -> Vec<String> {
            let mut rows: Vec<String> = rows(&out.join(sink))
                .iter()
                .map(|r| {
                    let j: serde_json::Value = serde_json::from_str(r).expect("JSON");
                    let at = |f: &str| j[f].as_str().map_or("null".to_string(), |s| iso_ms(s).to_string());
                    let n = |f: &str| num(j[f].as_f64());
                    let key = j["key"].as_str().expect("key");
                    if sink == "near" || sink == "after" {
                        format!("{key} {} {}", at("at"), at("b_at"))
                    } else if sink == "tiered" {
                        format!("{key} {} {} {}", at("at"), at("t_at"), j["t_tag"].as_str().unwrap_or("null"))
                    } else if sink == "tier_then" {
                        format!("{key} {} {} {}", at("at"), at("t_at"), n("t_value"))
                    } else if sink == "priced" {
                        let tag = j["b_tag"].as_str().unwrap_or("null");
                        format!("{key} {} {} {} {} {tag}", at("at"), n("value"), at("b_at"), n("b_value"))
                    } else if sink == "recent" {
                        let count = |f: &str| j[f].as_i64().expect("count");
                        format!("{key} {} {} {} {} {}", at("at"), n("value"), count("n"), count("present"), n("high"))
                    } else {
                        format!("{key} {} {} {} {}", at("at"), n("value"), at("b_at"), n("b_value"))
                    }
                })
                .collect();
            rows.sort();
            rows
        };
        for (tag, batch, extra) in INTERVAL_RUNS {
            let out = dir.join(tag);
            run_to_end(&bin, &interval_args(&dir, batch, extra, &out, &sinks));
            assert_eq!(got(&out, "attributed"), attributed, "seed {seed}, {tag}: the left interval join");
            assert_eq!(got(&out, "near"), near, "seed {seed}, {tag}: the inner interval join");
            assert_eq!(got(&out, "recent"), recent, "seed {seed}, {tag}: the rolling window");
            assert_eq!(got(&out, "priced"), priced, "seed {seed}, {tag}: the left as-of join with a stream");
            assert_eq!(got(&out, "after"), after, "seed {seed}, {tag}: the inner as-of join with a stream");
            assert_eq!(got(&out, "tiered"), tiered, "seed {seed}, {tag}: the left lookup join");
            assert_eq!(got(&out, "tier_then"), tier_then, "seed {seed}, {tag}: the as-of join with a table");
        }
        assert!(near.len() > 100 && attributed.iter().any(|r| r.ends_with("null null")), "seed {seed}: too few");
        // Some views meet nothing within 20 minutes, and some of those meet an older purchase.
        let alone = priced.iter().filter(|r| r.ends_with("null null null")).count();
        assert!(alone > 0 && alone < v.len() / 2, "seed {seed}: {alone} of {} views priced alone", v.len());
        assert!(
            tiered.iter().any(|r| r.ends_with("null null")) && tier_then.len() > 10 && tier_then.len() < v.len(),
            "seed {seed}: the table joins meet too few or too many ({} as of a tier)",
            tier_then.len()
        );
        within_cut |= after.len() > v.len() - alone;
    }
    assert!(within_cut, "no seed has a view whose latest purchase is older than 20 minutes");

    // Ties: every purchase has a twin at the same key, instant and tag with another value, on
    // the other side of it in the input (before it for odd lines, after for even ones). The
    // spec breaks such ties by a hash of the version's values, not by input order (which a
    // stream's readers and exchange do not keep): every mode and scale picks the same twin,
    // and picks by value, not by which came first.
    let dir = scratch("interval_ties");
    let views = events(9, 200, 110_000);
    let mut buys = Vec::new();
    for (i, line) in events(109, 150, 110_000).into_iter().enumerate() {
        let mut twin: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        twin["value"] = serde_json::json!(twin["value"].as_f64().map_or(2000.0, |v| v + 1000.0));
        let twin = twin.to_string();
        if i % 2 == 1 {
            buys.extend([twin, line]);
        } else {
            buys.extend([line, twin]);
        }
    }
    write_interval_inputs(&dir, &views, &buys);
    write_lines(&dir.join("tiers.jsonl"), &events(209, 40, 0));
    let mut written: Vec<Vec<String>> = Vec::new();
    for (tag, batch, extra) in INTERVAL_RUNS {
        let out = dir.join(tag);
        run_to_end(&bin, &interval_args(&dir, batch, extra, &out, &sinks));
        let mut priced = rows(&out.join("priced"));
        priced.sort();
        written.push(priced);
    }
    assert_eq!(written[0].len(), views.len(), "a left join keeps every view once");
    assert!(written[0] == written[1] && written[0] == written[2], "tied versions picked differently by mode or scale");
    // Of the views that met a purchase, some got the first twin in the input and some the
    // second: the pick follows the values, not the input's order.
    let firsts: std::collections::HashSet<String> = buys
        .chunks(2)
        .map(|pair| {
            let j: serde_json::Value = serde_json::from_str(&pair[0]).expect("JSON");
            j["value"].as_f64().map_or("null".to_string(), |v| format!("{v}"))
        })
        .collect();
    let (mut first, mut second) = (0, 0);
    for row in &written[0] {
        let j: serde_json::Value = serde_json::from_str(row).expect("JSON");
        if let Some(value) = j["b_value"].as_f64() {
            if firsts.contains(&format!("{value}")) {
                first += 1;
            } else {
                second += 1;
            }
        }
    }
    assert!(first > 0 && second > 0, "tied versions: {first} rows met the first twin, {second} the second");
}

#[test]
fn joins_and_rolling_windows_killed_at_random_and_restarted_write_each_row_once() {
    // The interval and as-of joins' waiting rows and versions and the rolling window's records
    // are state: checkpointed with the sources' positions, restored after SIGKILL.
    let bin = build_pipeline(Path::new("tests/cases/stream/interval/pipeline.pipe"));
    let sinks = ["attributed", "near", "recent", "priced", "after", "tiered", "tier_then"];
    let dir = scratch("interval_kill");
    let (views, buys) = (events(21, 400, 110_000), events(22, 350, 110_000));
    write_lines(&dir.join("views.jsonl"), &views);
    write_lines(&dir.join("buys.jsonl"), &buys);
    write_lines(&dir.join("tiers.jsonl"), &events(23, 60, 0));
    let tiers = format!("tiers={}", dir.join("tiers.jsonl").display());

    // The reference: a backfill of the same records.
    let reference = dir.join("reference");
    run_to_end(&bin, &interval_args(&dir, true, &[], &reference, &sinks));

    // The stream on two workers, killed at random while producers append both streams.
    let (live_views, live_buys, out) = (dir.join("live_views"), dir.join("live_buys"), dir.join("stream"));
    for d in [&live_views, &live_buys] {
        std::fs::create_dir_all(d).expect("live dir");
    }
    let mut stream = pipe_tests::follow_args("views", &live_views, &dir.join("state"));
    for source in [format!("buys={}/*.jsonl", live_buys.display()), tiers] {
        stream.extend(["--source".to_string(), source]);
    }
    stream.extend(sink_args(&out, &sinks));
    let producer = std::thread::spawn(move || {
        let both = [pipe_tests::produce(live_views, views, 3), pipe_tests::produce(live_buys, buys, 3)];
        for p in both {
            p.join().expect("producer");
        }
    });
    let kills = pipe_tests::kill_at_random(0x5eed_0715, 8, &producer, |_| start(&bin, &stream));
    producer.join().expect("producers");
    // The last run reads what is left and drains.
    stream.extend(["--exit-when-idle".to_string(), "800ms".into()]);
    run_to_end(&bin, &stream);

    for sink in sinks {
        let (want, got) = (rows(&reference.join(sink)), rows(&out.join(sink)));
        assert!(!want.is_empty(), "{sink}: the reference wrote no row");
        assert_eq!(got.len(), want.len(), "{sink}: rows after {kills} kills: lost or repeated");
        assert_eq!(got, want, "{sink}: rows after {kills} kills differ from the backfill's");
    }
}

/// A backfill's output directories, the stderr of each run, for `args` at each thread count.
fn backfill(bin: &Path, source: &str, out: &Path, sinks: &[&str], threads: usize) -> String {
    let mut args =
        vec!["--threads".to_string(), threads.to_string(), "--quiet".into(), "--source".into(), source.to_string()];
    args.extend(sink_args(out, sinks));
    let run = Command::new(bin).args(&args).env("PIPE_HMAC_KEY", KEY).output().expect("start the pipeline");
    let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
    assert!(run.status.success(), "{} {args:?} failed:\n{stderr}", bin.display());
    stderr
}

const BEHIND: &str = "came behind the watermark";

#[test]
fn a_backfill_fires_windows_as_event_time_passes_and_reads_again_when_its_input_is_out_of_order() {
    let bin = build_pipeline(Path::new("tests/cases/stream/windows/pipeline.pipe"));
    let sinks = ["tumbling", "sliding", "sessions"];
    let dir = scratch("backfill_order");
    // Three files of records disordered within the bound; named in event-time order, and
    // named so that the last third is read first.
    let input = events(11, 30_000, 110_000);
    let thirds: Vec<&[String]> = input.chunks(input.len() / 3 + 1).collect();
    for (name, order) in [("in-order", [0, 1, 2]), ("reversed", [2, 0, 1])] {
        std::fs::create_dir_all(dir.join(name)).expect("input dir");
        for (k, &third) in order.iter().enumerate() {
            write_lines(&dir.join(name).join(format!("part-{k}.jsonl")), thirds[third]);
        }
    }
    let mut outputs = Vec::new();
    for (name, threads) in [("in-order", 1), ("in-order", 2), ("reversed", 1), ("reversed", 2)] {
        let out = dir.join(format!("out-{name}-{threads}"));
        let stderr = backfill(&bin, &format!("events={}/*.jsonl", dir.join(name).display()), &out, &sinks, threads);
        // Read in order, every record is ahead of the watermark; read from the last third on
        // one thread, the first two thirds come behind it and the input is read again.
        match (name, threads) {
            ("in-order", _) => assert!(!stderr.contains(BEHIND), "{name} on {threads} threads read again:\n{stderr}"),
            (_, 1) => assert!(stderr.contains(BEHIND), "{name} on one thread did not read again:\n{stderr}"),
            _ => {}
        }
        outputs.push((format!("{name} on {threads} threads"), sinks.map(|s| rows(&out.join(s)))));
    }
    // Every reading writes what holding every window to the end writes: the rows of the run
    // that read again, which held them.
    let (want_name, want) = &outputs[2];
    for sink in &want[..] {
        assert!(!sink.is_empty(), "{want_name} wrote no rows");
    }
    for (name, got) in &outputs {
        for (k, sink) in sinks.iter().enumerate() {
            assert_eq!(got[k].len(), want[k].len(), "{name}: {sink} row counts differ from {want_name}");
            for (g, w) in got[k].iter().zip(&want[k]) {
                assert_eq!(g, w, "{name}: {sink} rows differ from {want_name}");
            }
        }
    }
}

/// The peak memory a run's summary reports, in bytes.
fn peak_memory(out: &Path) -> u64 {
    let text = std::fs::read_to_string(out.join("_pipe_summary.json")).expect("summary beside the output");
    let summary: serde_json::Value = serde_json::from_str(&text).expect("summary is JSON");
    summary["peak_memory"].as_u64().unwrap_or_else(|| panic!("no peak memory in {summary}"))
}

#[test]
fn a_backfill_holds_the_windows_event_time_has_not_passed_not_the_whole_input() {
    let bin = build_pipeline(Path::new("tests/cases/stream/backfill/pipeline.pipe"));
    let dir = scratch("backfill_memory");
    // 120,000 visits of five users three seconds apart (100 hours) in 60 files, each visit to
    // a page of its own. Every visit is in ten sliding windows, whose distinct pages it joins:
    // held to the end, the groups hold ten copies of the input's pages.
    const VISITS: i64 = 120_000;
    let t0: i64 = 1_700_000_000_000;
    let lines: Vec<String> = (0..VISITS)
        .map(|i| {
            let page = format!("/articles/{i:06}/{}", "x".repeat(100));
            format!(r#"{{"user":"u{}","at":{},"page":"{page}"}}"#, i % 5, t0 + 3_000 * i)
        })
        .collect();
    let (fresh, stale) = (dir.join("fresh"), dir.join("stale"));
    for d in [&fresh, &stale] {
        std::fs::create_dir_all(d).expect("input dir");
        for (k, chunk) in lines.chunks(2_000).enumerate() {
            write_lines(&d.join(format!("part-{k:02}.jsonl")), chunk);
        }
    }
    // The same visits and, read last, the first one again: it changes no count of distinct
    // pages, but it comes 100 hours behind the watermark, so that run reads its input again
    // holding every window to the end.
    write_lines(&stale.join("part-99.jsonl"), &lines[..1]);
    let mut runs = Vec::new();
    for input in [&fresh, &stale] {
        let out = input.join("out");
        let stderr = backfill(&bin, &format!("visits={}/*.jsonl", input.display()), &out, &["pages"], 2);
        runs.push((stderr, rows(&out.join("pages")), peak_memory(&out.join("pages"))));
    }
    let [(fresh_err, fresh_rows, fresh_peak), (stale_err, stale_rows, stale_peak)] = &runs[..] else {
        unreachable!("two runs")
    };
    assert!(!fresh_err.contains(BEHIND), "the visits in order were read again:\n{fresh_err}");
    assert!(stale_err.contains(BEHIND), "the stale visit did not make the run read again:\n{stale_err}");
    // A row per user and window with a visit, each visit counted in each of its ten windows.
    let windows: std::collections::BTreeSet<(i64, i64)> = (0..VISITS)
        .flat_map(|i| {
            let at = t0 + 3_000 * i;
            (0..10).map(move |k| (i % 5, at - at.rem_euclid(60_000) - k * 60_000))
        })
        .collect();
    assert_eq!(fresh_rows.len(), windows.len(), "one row per user and sliding window");
    let counted: i64 = fresh_rows
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(r).expect("a JSON row")["pages"].as_i64().expect("pages"))
        .sum();
    assert_eq!(counted, VISITS * 10, "every visit counted in each of its ten windows");
    assert_eq!(fresh_rows, stale_rows, "both readings write the same rows");
    assert!(
        fresh_peak * 2 < *stale_peak,
        "firing windows as event time passes should hold a small part of what holding them to the end holds: peak {} MB against {} MB",
        fresh_peak / 1_000_000,
        stale_peak / 1_000_000
    );
}

#[test]
fn a_backfill_joining_two_sources_before_an_aggregate_counts_every_pair_at_every_worker_count() {
    let bin = build_pipeline(Path::new("tests/cases/stream/backfill/joined.pipe"));
    let dir = scratch("backfill_joined");
    // 200,000 taps on each side, ten milliseconds apart, keys k0..k99 in turn, in eight files a
    // side (many rounds per worker): every tap of `a` meets exactly the tap of `b` at its time.
    for (side, v) in [("a", 1), ("b", 2)] {
        std::fs::create_dir_all(dir.join(side)).expect("input dir");
        let lines: Vec<String> =
            (0..200_000i64).map(|i| format!(r#"{{"k":"k{}","at":{},"v":{v}}}"#, i % 100, 10 * i)).collect();
        for (f, chunk) in lines.chunks(25_000).enumerate() {
            write_lines(&dir.join(side).join(format!("part-{f}.jsonl")), chunk);
        }
    }
    for workers in [1, 2, 4] {
        let out = dir.join(format!("out-{workers}"));
        let args = [
            "--threads".to_string(),
            workers.to_string(),
            "--source".into(),
            format!("a={}/*.jsonl", dir.join("a").display()),
            "--source".into(),
            format!("b={}/*.jsonl", dir.join("b").display()),
            "--sink".into(),
            format!("pairs->files={}", out.display()),
        ];
        let run = Command::new(&bin).args(&args).output().expect("start the pipeline");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "{workers} workers failed:\n{stderr}");
        assert!(!stderr.contains(BEHIND), "{workers} workers: the taps in order were read again:\n{stderr}");
        let rows: Vec<serde_json::Value> =
            rows(&out).iter().map(|r| serde_json::from_str(r).expect("a JSON row")).collect();
        assert_eq!(rows.len(), 100, "{workers} workers: one row per key");
        let pairs: i64 = rows.iter().map(|r| r["n"].as_i64().expect("n")).sum();
        let total: i64 = rows.iter().map(|r| r["total"].as_i64().expect("total")).sum();
        assert_eq!((pairs, total), (200_000, 400_000), "{workers} workers: every pair reaches the aggregate");
    }
}

#[test]
fn a_backfill_reads_again_when_a_record_belongs_with_a_session_that_already_fired() {
    let bin = build_pipeline(Path::new("tests/cases/stream/backfill/sessions.pipe"));
    let dir = scratch("backfill_session");
    std::fs::create_dir_all(dir.join("in")).expect("input dir");
    let at = |seconds: i64| 1_700_000_040_000 + seconds * 1_000;
    // `b` at 9 minutes moves the watermark (bound 2 minutes) to 7: `a`'s session [0, 4) fires
    // and goes. `a` at 3.5 minutes, read next, belongs with it although its own session
    // [3.5, 7.5) ends after the watermark: held to the end, one session [0, 7.5) of two taps.
    write_lines(
        &dir.join("in/part-0.jsonl"),
        &[format!(r#"{{"k":"a","at":{},"v":1}}"#, at(0)), format!(r#"{{"k":"b","at":{},"v":1}}"#, at(540))],
    );
    write_lines(&dir.join("in/part-1.jsonl"), &[format!(r#"{{"k":"a","at":{},"v":2}}"#, at(210))]);
    let out = dir.join("out");
    let stderr = backfill(&bin, &format!("taps={}/*.jsonl", dir.join("in").display()), &out, &["sessions"], 1);
    assert!(stderr.contains(BEHIND), "the tap of a fired session did not make the run read again:\n{stderr}");
    let sessions: Vec<serde_json::Value> =
        rows(&out.join("sessions")).iter().map(|r| serde_json::from_str(r).expect("a JSON row")).collect();
    let a: Vec<&serde_json::Value> = sessions.iter().filter(|r| r["k"] == "a").collect();
    assert_eq!(a.len(), 1, "one session of `a`: {sessions:?}");
    assert_eq!((a[0]["n"].as_i64(), a[0]["total"].as_i64()), (Some(2), Some(3)), "{sessions:?}");
}
