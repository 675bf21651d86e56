//! Publishes JSON lines to a Kafka topic, each keyed by its `member_id` (lines that are not JSON
//! objects with one keyed `bad`): what a partner's feed does, for `examples/partner_stream/`.
//!
//! `cargo run -p pipe-tests --example kafka_produce -- BROKERS TOPIC FILE`

use std::time::Duration;

use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [brokers, topic, file] = args.as_slice() else {
        return Err("usage: kafka_produce BROKERS TOPIC FILE".into());
    };
    let text = std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?;
    let p: ThreadedProducer<rdkafka::producer::DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create()
        .map_err(|e| format!("{brokers}: {e}"))?;
    let mut n = 0;
    for line in text.lines() {
        let key = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["member_id"].as_str().map(String::from))
            .unwrap_or_else(|| "bad".into());
        let mut rec: BaseRecord<'_, str, str> = BaseRecord::to(topic).key(key.as_str()).payload(line);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, back)) => {
                    rec = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        n += 1;
    }
    p.flush(Duration::from_secs(60)).map_err(|e| format!("{topic} on {brokers}: {e}"))?;
    #[allow(clippy::print_stdout, reason = "the tool's report")]
    {
        println!("produced {n} messages to {topic}");
    }
    Ok(())
}
