//! Kafka sources and sinks against a real Kafka-protocol broker (tansu, started here on
//! 127.0.0.1 with in-memory storage): the partner-stream example followed from a topic while
//! it is killed at random, restarted and its broker paused writes exactly the rows a backfill
//! of the same topic writes; malformed messages are rejected once each with their
//! `topic/partition@offset`; offsets reach the consumer group, and `start = group` goes on
//! from them; the sink's topic holds every row, keyed; a missing broker or topic is a clear
//! error.
//!
//! The broker is `tansu` on the PATH (or `$TANSU`); `.ci/run` installs it. Without it these
//! tests say why and pass, unless `PIPE_REQUIRE_KAFKA` is set (as `.ci/run` sets it).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipe_tests::{build_pipeline, scratch};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const KEY: &str = "integration-test-key-0123456789";
const TOPIC: &str = "loan-applications";
const FEATURES_TOPIC: &str = "member-daily";
const GROUP: &str = "pipe-pipe_credit_partner_stream";

/// The `tansu` binary, or `None` (with the reason printed) when this machine has none.
fn tansu() -> Option<PathBuf> {
    let found = std::env::var_os("TANSU").map(PathBuf::from).or_else(|| {
        let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tansu"));
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .map(|d| d.join("tansu"))
            .chain(home)
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("PIPE_REQUIRE_KAFKA").is_none(),
            "PIPE_REQUIRE_KAFKA is set but no `tansu` broker is installed"
        );
        #[allow(clippy::print_stderr, reason = "why the test did nothing")]
        {
            eprintln!(
                "skipped: no `tansu` Kafka broker here (cargo install tansu --version 0.6.0 --locked --features dynostore)"
            );
        }
    }
    found
}

/// A tansu broker on a free port of 127.0.0.1, stopped when dropped.
struct Broker {
    bin: PathBuf,
    child: Child,
    port: u16,
}

impl Broker {
    fn start(bin: PathBuf) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["broker", "--storage-engine", "memory://tansu/", "--listener-url", &url])
            .args(["--advertised-listener-url", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        let b = Broker { bin, child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "tansu did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        b
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn create_topic(&self, name: &str, partitions: u32) {
        let out = Command::new(&self.bin)
            .args(["topic", "create", name, "--broker", &format!("tcp://{}", self.address())])
            .args(["--partitions", &partitions.to_string()])
            .output()
            .expect("tansu topic create");
        assert!(out.status.success(), "topic {name}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// SIGSTOP or SIGCONT.
    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill");
        assert!(ok.success());
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Batches several messages per record batch (`linger.ms`), so restarted readers resume from
/// offsets inside batches: tansu 0.6.0 answers such a fetch with the batches after it, and the
/// readers must ask again from further back (see `Resume` in the runtime's Kafka reader).
fn producer(brokers: &str) -> ThreadedProducer<rdkafka::producer::DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .create()
        .expect("test producer")
}

/// Produces `lines` over time (a chunk every few milliseconds), each keyed by its member
/// (malformed ones by `bad`), so a member's messages share a partition.
fn produce(brokers: String, lines: Vec<String>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let p = producer(&brokers);
        for chunk in lines.chunks(60) {
            for line in chunk {
                let key = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["member_id"].as_str().map(String::from))
                    .unwrap_or_else(|| "bad".into());
                let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(TOPIC).key(key.as_str()).payload(line.as_str());
                loop {
                    match p.send(rec) {
                        Ok(()) => break,
                        Err((_, back)) => {
                            rec = back;
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(15));
        }
        p.flush(Duration::from_secs(120)).expect("every test message acknowledged");
    })
}

fn consumer(brokers: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("test consumer")
}

/// Every message of `topic`: (key, payload), read until none comes for two seconds.
fn read_topic(brokers: &str, topic: &str, partitions: i32) -> Vec<(String, String)> {
    let c = consumer(brokers, "pipe-tests-reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut last = Instant::now();
    while last.elapsed() < Duration::from_secs(2) {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            out.push((key, String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()));
            last = Instant::now();
        }
    }
    out
}

fn run(bin: &Path, args: &[String], brokers: &str) -> std::process::Output {
    Command::new(bin)
        .args(args)
        .env("PIPE_HMAC_KEY", KEY)
        .env("KAFKA_BROKERS", brokers)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run the pipeline")
}

fn run_ok(bin: &Path, args: &[String], brokers: &str) {
    let out = run(bin, args, brokers);
    assert!(out.status.success(), "{args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

fn sinks(out: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for s in ["features", "arrival_log"] {
        v.extend(["--sink".to_string(), format!("{s}={}", out.join(s).display())]);
    }
    v.extend(["--sink".to_string(), format!("rejected->files={}", out.join("rejected").display())]);
    v
}

/// Asserts two sorted row lists are equal, showing what one has and the other lacks.
fn same_rows(got: &[String], want: &[String], what: &str) {
    if got == want {
        return;
    }
    let (g, w): (BTreeSet<&String>, BTreeSet<&String>) = (got.iter().collect(), want.iter().collect());
    let missing: Vec<&&String> = w.difference(&g).take(5).collect();
    let extra: Vec<&&String> = g.difference(&w).take(5).collect();
    panic!(
        "{what}: {} rows, {} wanted; {} missing, e.g. {missing:#?}; {} unexpected, e.g. {extra:#?}",
        got.len(),
        want.len(),
        w.difference(&g).count(),
        g.difference(&w).count()
    );
}

fn rows(dir: &Path) -> Vec<String> {
    pipe_tests::sink_rows(dir)
}

#[test]
fn a_kafka_stream_writes_what_a_backfill_of_the_topic_writes() {
    stream_and_backfill(false);
}

/// The same with faults: killed ten times at random while the producer runs, then the broker
/// paused for 20 s.
#[test]
fn a_kafka_stream_killed_restarted_and_paused_writes_what_a_backfill_of_the_topic_writes() {
    stream_and_backfill(true);
}

fn stream_and_backfill(faults: bool) {
    let Some(tansu) = tansu() else { return };
    let bin = build_pipeline(Path::new("examples/partner_stream/pipeline.pipe"));
    let broker = Broker::start(tansu);
    let brokers = broker.address();
    broker.create_topic(TOPIC, 4);
    broker.create_topic(FEATURES_TOPIC, 2);
    let data = pipe_tests::repo_root().join("examples/member_features/data/applications.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&data).expect("example data").lines().map(String::from).collect();
    let dir = scratch(if faults { "kafka_stream_faults" } else { "kafka_stream" });
    let state = dir.join("state").display().to_string();
    let out = dir.join("stream");
    let mut stream = vec!["--mode", "stream", "--quiet", "--workers", "2", "--checkpoint-interval", "40ms"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    stream.extend(["--state-dir".to_string(), state]);
    stream.extend(sinks(&out));

    if !faults {
        produce(brokers.clone(), lines.clone()).join().expect("producer");
    }
    // Killed with SIGKILL at random moments while the producer runs.
    let (first, rest) = if faults { lines.split_at(2000) } else { (&lines[..0], &lines[..0]) };
    let feed = produce(brokers.clone(), first.to_vec());
    let mut x: u64 = 0x5eed_4b61;
    let mut kills = 0;
    let started = Instant::now();
    while faults && (!feed.is_finished() || kills < 10) {
        let mut child = Command::new(&bin)
            .args(&stream)
            .env("PIPE_HMAC_KEY", KEY)
            .env("KAFKA_BROKERS", &brokers)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join(format!("run-{kills}.log"))).expect("log file"))
            .spawn()
            .expect("start the stream");
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_millis(150 + x % 400));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills += 1;
        assert!(started.elapsed() < Duration::from_secs(240), "the producer never finished");
    }
    feed.join().expect("producer");

    // The broker paused for 20 s while the stream runs and the rest is produced: the stream
    // waits and goes on.
    if faults {
        pause_while_producing(&bin, &stream, &broker, rest);
    }
    // Idle for 5 s before it ends: a broker just resumed on a loaded machine can answer a
    // fetch with nothing for longer than a second while messages wait.
    let mut last = stream.clone();
    last.extend(["--exit-when-idle".to_string(), "5s".into()]);
    run_ok(&bin, &last, &brokers);
    check(&bin, &dir, &out, &brokers, &lines, kills);
}

fn pause_while_producing(bin: &Path, stream: &[String], broker: &Broker, rest: &[String]) {
    let brokers = broker.address();
    let child = Command::new(bin)
        .args(stream)
        .env("PIPE_HMAC_KEY", KEY)
        .env("KAFKA_BROKERS", &brokers)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the stream");
    let feed = produce(brokers.clone(), rest.to_vec());
    std::thread::sleep(Duration::from_millis(300));
    broker.signal("-STOP");
    std::thread::sleep(Duration::from_secs(20));
    broker.signal("-CONT");
    feed.join().expect("producer");
    std::thread::sleep(Duration::from_secs(1));
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let paused = child.wait_with_output().expect("wait");
    assert!(
        paused.status.success(),
        "the stream that saw its broker paused ended with {}:\n{}",
        paused.status,
        String::from_utf8_lossy(&paused.stderr)
    );
}

fn check(bin: &Path, dir: &Path, out: &Path, brokers: &str, lines: &[String], kills: usize) {
    let (bin, brokers) = (bin.to_path_buf(), brokers.to_string());
    // The reference: a backfill of the same topic.
    let reference = dir.join("backfill");
    let mut batch = vec!["--quiet".to_string(), "--workers".into(), "2".into()];
    batch.extend(sinks(&reference));
    run_ok(&bin, &batch, &brokers);

    let arrivals = rows(&reference.join("arrival_log"));
    assert_eq!(arrivals.len(), 2970, "every well-formed message, once");
    let want = rows(&reference.join("features"));
    assert_eq!(want.len(), 2430, "the backfill's features (as the file example's)");
    same_rows(&rows(&out.join("arrival_log")), &arrivals, "arrivals: partition, offset and key of each message");
    same_rows(
        &rows(&out.join("features")),
        &want,
        &format!("features, stream after {kills} kills and a paused broker"),
    );
    // Each arrival names a partition and an offset, once.
    let places: BTreeSet<(i64, i64)> = arrivals
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r).expect("JSON");
            (v["partition"].as_i64().expect("partition"), v["offset"].as_i64().expect("offset"))
        })
        .collect();
    assert_eq!(places.len(), 2970);
    let rejected = rows(&out.join("rejected"));
    assert_eq!(rejected.len(), 30, "every malformed message rejected once");
    let positions: BTreeSet<String> = rejected
        .iter()
        .map(|r| serde_json::from_str::<serde_json::Value>(r).expect("JSON")["position"].as_str().unwrap_or("").into())
        .collect();
    assert_eq!(positions.len(), 30, "{positions:?}");
    assert!(positions.iter().all(|p| p.starts_with("loan-applications/") && p.contains('@')), "{positions:?}");

    // The checkpoints' offsets reached the consumer group: every message is accounted for.
    let c = consumer(&brokers, GROUP);
    let mut tpl = TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition(TOPIC, p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).expect("committed offsets");
    let total: i64 = committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => o,
            _ => 0,
        })
        .sum();
    assert_eq!(total, 3000, "committed offsets of {GROUP}");

    // The sink's topic holds every feature row (at least once), keyed by member.
    let produced = read_topic(&brokers, FEATURES_TOPIC, 2);
    let distinct: BTreeSet<String> = produced
        .iter()
        .map(|(k, v)| {
            let row: serde_json::Value = serde_json::from_str(v).expect("a JSON message");
            assert_eq!(row["member"].as_str(), Some(k.as_str()), "the message key is the row's member");
            row.to_string()
        })
        .collect();
    let want_json: BTreeSet<String> =
        want.iter().map(|r| serde_json::from_str::<serde_json::Value>(r).expect("JSON").to_string()).collect();
    let missing = want_json.difference(&distinct).count();
    let extra = distinct.difference(&want_json).count();
    assert_eq!((missing, extra), (0, 0), "member-daily rows missing from the topic, and rows no run wrote");

    // Without a checkpoint, `start = group` goes on where the group's commits say.
    let extra: Vec<String> = lines.iter().filter(|l| l.starts_with('{')).take(50).cloned().collect();
    produce(brokers.clone(), extra).join().expect("producer");
    let fresh = dir.join("fresh");
    let mut again: Vec<String> =
        vec!["--mode", "stream", "--quiet", "--exit-when-idle", "1500ms"].into_iter().map(String::from).collect();
    again.extend(sinks(&fresh));
    run_ok(&bin, &again, &brokers);
    assert_eq!(rows(&fresh.join("arrival_log")).len(), 50, "only what was produced after the commits");
}

#[test]
fn missing_brokers_and_topics_are_clear_errors() {
    let Some(tansu) = tansu() else { return };
    let bin = build_pipeline(Path::new("examples/partner_stream/pipeline.pipe"));
    let dir = scratch("kafka_errors");
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let nowhere = format!("127.0.0.1:{free}");
    let mut args = vec!["--mode".to_string(), "stream".into(), "--quiet".into()];
    args.extend(sinks(&dir.join("out")));
    let out = run(&bin, &args, &nowhere);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot reach the Kafka brokers `{nowhere}`")), "{err}");

    let broker = Broker::start(tansu);
    let out = run(&bin, &args, &broker.address());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("have no topic `loan-applications`"), "{err}");
    // The batch binding says the same, and no output directory is replaced.
    let out = run(&bin, &sinks(&dir.join("out")), &broker.address());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("have no topic"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!dir.join("out").join("features").join("_pipe_summary.json").exists());
}
