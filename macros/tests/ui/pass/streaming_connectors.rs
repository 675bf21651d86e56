//! A program whose source has only a Kafka binding and whose sink is Redis: neither has a runner
//! yet, so `run` refuses to start and says why, while `run_batch` runs it on rows in memory.
pipe_macros::pipeline! {
    namespace live

    struct Reading {
      1: required string sensor
      2: required i64    at    (timestamp = "millis")
      3: required double value
    }

    source readings: Reading {
      event_time = at
      watermark  = 5s
      stream     = kafka(topic = "readings", brokers = "127.0.0.1:9092", format = json)
    }

    stream peaks = readings
      | window tumbling(1m)
      | group by sensor
      | aggregate { peak = max(value), n = count() }

    sink latest = redis(url = "redis://127.0.0.1:6379", key = sensor)

    peaks -> latest
}

fn main() {
    let err = live::run(&pipe_runtime::run::Options::default()).expect_err("no streaming runner yet");
    let msg = err.to_string();
    assert!(msg.contains("source `readings`: the `kafka` connector has no runner yet"), "{msg}");
    assert!(msg.contains("`redis` sink"), "{msg}");

    let r = |sensor: &str, at: i64, value: f64| live::Reading { sensor: sensor.into(), at, value };
    let out = live::run_batch(live::Inputs {
        readings: vec![r("s1", 1_000, 3.5), r("s1", 59_000, 7.25), r("s2", 61_000, 1.0), r("s1", 60_000, 2.0)],
    })
    .expect("runs in memory");
    let mut rows: Vec<(String, i64, Option<f64>, i64)> =
        out.latest.iter().map(|p| (p.sensor.clone(), p.window_start, p.peak, p.n)).collect();
    rows.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    assert_eq!(
        rows,
        [("s1".to_string(), 0, Some(7.25), 2), ("s1".to_string(), 60_000, Some(2.0), 1), ("s2".to_string(), 60_000, Some(1.0), 1)]
    );
}
