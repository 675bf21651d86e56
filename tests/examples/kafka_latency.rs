//! Latency from a Kafka produce to a pipeline's output. Starts BINARY (a stream that reads the
//! topic and writes each event to standard output, such as `bench/latency/kafka.pipe`), then
//! produces RATE events a second for SECONDS, each carrying the time of its send, and times each
//! event from its send to the read of its output line. Prints p50, p99 and the maximum; the
//! first second is warm-up, not counted. With `-` for BINARY, a bare consumer in this process
//! reads the topic instead: the broker's own share of the latency.
//!
//! `cargo run --release -p pipe-tests --example kafka_latency -- BROKERS TOPIC BINARY|- [RATE] [SECONDS]`

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Keeps the latency of event `id`, sent at `sent` and seen at `at` (nanoseconds), after the
/// warm-up.
fn record(latencies: &mut Vec<f64>, id: i64, sent: i64, at: i64, warmup: i64) {
    if id >= warmup {
        #[allow(clippy::cast_precision_loss, reason = "nanoseconds to milliseconds")]
        latencies.push((at - sent) as f64 / 1e6);
    }
}

/// A consumer of every partition of `topic` (a fresh one) from its start, configured as the pipeline's
/// readers are (`fetch.wait.max.ms = 10`), timing each event until `done`.
fn bare_consumer(
    brokers: &str,
    topic: &str,
    warmup: i64,
    done: Arc<AtomicBool>,
) -> Result<JoinHandle<Vec<f64>>, String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "kafka-latency-bare")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()
        .map_err(|e| format!("{brokers}: {e}"))?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(10)).map_err(|e| format!("{brokers}: {e}"))?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning).map_err(|e| e.to_string())?;
        }
    }
    c.assign(&tpl).map_err(|e| e.to_string())?;
    Ok(std::thread::spawn(move || {
        let mut latencies = Vec::new();
        while !done.load(Ordering::Relaxed) {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(10)) {
                let at = now_ns();
                let Ok(v) = serde_json::from_slice::<serde_json::Value>(m.payload().unwrap_or_default()) else {
                    continue;
                };
                if let (Some(id), Some(sent)) = (v["id"].as_i64(), v["sent_ns"].as_i64()) {
                    record(&mut latencies, id, sent, at, warmup);
                }
            }
        }
        latencies
    }))
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (brokers, topic, binary) = match args.as_slice() {
        [b, t, bin, ..] => (b.clone(), t.clone(), bin.clone()),
        _ => return Err("usage: kafka_latency BROKERS TOPIC BINARY [RATE] [SECONDS]".into()),
    };
    let rate: u32 = args.get(3).map_or(Ok(5000), |r| r.parse()).map_err(|e| format!("RATE: {e}"))?;
    let seconds: f64 = args.get(4).map_or(Ok(10.0), |s| s.parse()).map_err(|e| format!("SECONDS: {e}"))?;
    let warmup = i64::from(rate);
    let done = Arc::new(AtomicBool::new(false));
    let (mut child, reader) = if binary == "-" {
        (None, bare_consumer(&brokers, &topic, warmup, done.clone())?)
    } else {
        let mut child = Command::new(&binary)
            .args(["--mode", "stream", "--quiet", "--metrics-interval", "0"])
            .env("KAFKA_BROKERS", &brokers)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{binary}: {e}"))?;
        let out = child.stdout.take().ok_or("no standard output")?;
        let reader = std::thread::spawn(move || {
            let mut latencies = Vec::new();
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let at = now_ns();
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else { continue };
                if let (Some(id), Some(sent)) = (v["id"].as_i64(), v["sent_ns"].as_i64()) {
                    record(&mut latencies, id, sent, at, warmup);
                }
            }
            latencies
        });
        (Some(child), reader)
    };
    // Let the reader find its partitions before the clock starts.
    std::thread::sleep(Duration::from_secs(2));
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()
        .map_err(|e| format!("{brokers}: {e}"))?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "a count of events")]
    let n = (f64::from(rate) * seconds) as u64;
    let start = Instant::now();
    for i in 0..n {
        let due = start + Duration::from_secs_f64(i as f64 / f64::from(rate));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let sent = now_ns();
        let payload = format!(r#"{{"id":{i},"at":{},"sent_ns":{sent}}}"#, sent / 1_000_000);
        let key = (i % 64).to_string();
        let mut rec: BaseRecord<'_, str, str> =
            BaseRecord::to(topic.as_str()).key(key.as_str()).payload(payload.as_str());
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    let sent_for = start.elapsed().as_secs_f64();
    producer.flush(Duration::from_secs(30)).map_err(|e| format!("{topic} on {brokers}: {e}"))?;
    std::thread::sleep(Duration::from_secs(2));
    done.store(true, Ordering::Relaxed);
    if let Some(child) = child.as_mut() {
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        child.wait().map_err(|e| e.to_string())?;
    }
    let mut latencies = reader.join().map_err(|_| "the reader panicked")?;
    if latencies.is_empty() {
        return Err("no events came back".into());
    }
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "an index"
        )]
        let i = ((q * latencies.len() as f64) as usize).min(latencies.len() - 1);
        latencies[i]
    };
    #[allow(clippy::print_stdout, clippy::cast_precision_loss, reason = "the tool's report")]
    {
        println!(
            "latency from produce at {:.0} events/s over {sent_for:.1}s ({} of {n} events timed): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            n as f64 / sent_for,
            latencies.len(),
            pick(0.5),
            pick(0.99),
            latencies[latencies.len() - 1]
        );
    }
    Ok(())
}
