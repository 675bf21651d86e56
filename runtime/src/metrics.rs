//! Metrics of a running stream: each process serves its own workers' counts, with the
//! cluster's watermark and this process's share of the work, in Prometheus text format.

use std::sync::{Arc, Mutex};

use crate::run::{NodeDecl, Stat};

/// What one process reports: its workers' counts summed, and the cluster's progress.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub stats: Vec<Stat>,
    /// The cluster's watermark.
    pub watermark: i64,
    /// Groups this process's aggregates hold.
    pub groups: usize,
    pub checkpoints: u64,
    /// Records this process's workers have read.
    pub records: u64,
    /// Records the whole cluster has read (from the workers' reports).
    pub cluster_records: u64,
    /// Kafka consumer lag of the partitions this process reads: (source, partition, messages).
    pub partition_lag: Vec<(String, i32, i64)>,
    /// The checks of `expect` blocks this process's workers evaluated so far.
    pub checks: crate::run::Violations,
}

impl Status {
    /// Adds another local worker's status (counts add; the cluster's figures are shared).
    pub fn add(&mut self, o: &Status) {
        if self.stats.len() < o.stats.len() {
            self.stats.resize(o.stats.len(), Stat::default());
        }
        for (a, b) in self.stats.iter_mut().zip(&o.stats) {
            a.add(b);
        }
        self.watermark = self.watermark.max(o.watermark);
        self.groups += o.groups;
        self.checkpoints = self.checkpoints.max(o.checkpoints);
        self.records += o.records;
        self.cluster_records = self.cluster_records.max(o.cluster_records);
        self.partition_lag.extend(o.partition_lag.iter().cloned());
        self.checks.merge(&o.checks);
    }
}

/// The metrics of a running stream, as Prometheus text.
pub fn prometheus(name: &str, nodes: &[NodeDecl], process: usize, status: &Status) -> String {
    let Status { stats, watermark, groups: state, checkpoints, records, cluster_records, partition_lag, checks } =
        status;
    let (watermark, state, checkpoints, records, cluster_records) =
        (*watermark, *state, *checkpoints, *records, *cluster_records);
    let mut out = String::new();
    type Counter = (&'static str, &'static str, fn(&Stat) -> u64);
    let counters: [Counter; 6] = [
        ("read", "Records an operator received.", |s| s.read),
        ("written", "Records an operator emitted.", |s| s.written),
        ("filtered", "Records a `where` or `k >= N` removed.", |s| s.filtered),
        ("rejected", "Records that failed and went to `rejected`.", |s| s.rejected),
        ("late", "Records that came too late for their window (or behind the watermark).", |s| s.late),
        ("restarted_files", "Followed files read again from their start (truncated, rewritten or replaced).", |s| {
            s.restarted
        }),
    ];
    for (metric, help, get) in counters {
        out.push_str(&format!(
            "# HELP pipe_records_{metric}_total {help}\n# TYPE pipe_records_{metric}_total counter\n"
        ));
        for (i, (n, s)) in nodes.iter().zip(stats).enumerate() {
            out.push_str(&format!(
                "pipe_records_{metric}_total{{pipeline=\"{name}\",operator=\"{}\",kind=\"{:?}\",index=\"{i}\"}} {}\n",
                n.name.replace('"', "'"),
                n.kind,
                if n.private { get(&s.coarsened()) } else { get(s) }
            ));
        }
    }
    let now = now_ms();
    let (wm, lag) = if watermark == i64::MIN || watermark == i64::MAX {
        ("NaN".to_string(), "NaN".to_string())
    } else {
        (watermark.to_string(), (now.saturating_sub(watermark) as f64 / 1000.0).to_string())
    };
    out.push_str(&format!(
        "# HELP pipe_watermark_milliseconds The watermark, in milliseconds since the epoch.\n# TYPE pipe_watermark_milliseconds gauge\npipe_watermark_milliseconds{{pipeline=\"{name}\"}} {wm}\n"
    ));
    out.push_str(&format!(
        "# HELP pipe_lag_seconds How far the watermark is behind the wall clock.\n# TYPE pipe_lag_seconds gauge\npipe_lag_seconds{{pipeline=\"{name}\"}} {lag}\n"
    ));
    out.push_str(&format!(
        "# HELP pipe_state_groups Groups the aggregates of this process hold.\n# TYPE pipe_state_groups gauge\npipe_state_groups{{pipeline=\"{name}\"}} {state}\n"
    ));
    out.push_str(&format!(
        "# HELP pipe_process Which process of the cluster serves these metrics.\n# TYPE pipe_process gauge\npipe_process{{pipeline=\"{name}\"}} {process}\n"
    ));
    out.push_str(&format!(
        "# HELP pipe_process_records_total Records this process's workers have read.\n# TYPE pipe_process_records_total counter\npipe_process_records_total{{pipeline=\"{name}\"}} {records}\n"
    ));
    let share =
        if cluster_records == 0 { "NaN".to_string() } else { (records as f64 / cluster_records as f64).to_string() };
    out.push_str(&format!(
        "# HELP pipe_process_share This process's share of the records the cluster has read.\n# TYPE pipe_process_share gauge\npipe_process_share{{pipeline=\"{name}\"}} {share}\n"
    ));
    if !partition_lag.is_empty() {
        out.push_str("# HELP pipe_kafka_consumer_lag Messages of a Kafka partition produced and not read yet.\n# TYPE pipe_kafka_consumer_lag gauge\n");
        for (source, partition, lag) in partition_lag {
            out.push_str(&format!(
                "pipe_kafka_consumer_lag{{pipeline=\"{name}\",source=\"{source}\",partition=\"{partition}\"}} {lag}\n"
            ));
        }
    }
    if !checks.is_empty() {
        type Series = (&'static str, &'static str, fn(&crate::run::Tally) -> u64);
        let series: [Series; 2] = [
            ("evaluations", "Times a check of an `expect` block was evaluated (once per group and window).", |t| {
                t.evaluated
            }),
            ("failures", "Times a check of an `expect` block did not hold.", |t| t.failed),
        ];
        for (metric, help, get) in series {
            out.push_str(&format!(
                "# HELP pipe_expectation_{metric}_total {help}\n# TYPE pipe_expectation_{metric}_total counter\n"
            ));
            for (what, t) in &checks.0 {
                let gate = match t.gate {
                    crate::run::Gate::Require => "require",
                    crate::run::Gate::Expect => "expect",
                    crate::run::Gate::Warn => "warn",
                };
                out.push_str(&format!(
                    "pipe_expectation_{metric}_total{{pipeline=\"{name}\",check=\"{}\",gate=\"{gate}\"}} {}\n",
                    what.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " "),
                    get(t)
                ));
            }
        }
    }
    out.push_str(&format!(
        "# HELP pipe_checkpoints_total Checkpoints completed.\n# TYPE pipe_checkpoints_total counter\npipe_checkpoints_total{{pipeline=\"{name}\"}} {checkpoints}\n"
    ));
    out
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Serves `/metrics` from the latest text.
pub async fn serve_metrics(listener: tokio::net::TcpListener, text: Arc<Mutex<String>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut conn, _)) = listener.accept().await else { continue };
        let text = text.clone();
        tokio::spawn(async move {
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let first = req.split(|b| *b == b'\n').next().unwrap_or_default();
            let ok = first.starts_with(b"GET /metrics ") || first.starts_with(b"GET / ");
            let body = if ok { text.lock().map(|t| t.clone()).unwrap_or_default() } else { "not found\n".into() };
            let status = if ok { "200 OK" } else { "404 Not Found" };
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(resp.as_bytes()).await;
            let _ = conn.shutdown().await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::NodeKind;

    #[test]
    fn a_process_reports_its_counts_its_share_and_the_cluster_watermark() {
        let nodes = [NodeDecl { name: "events", kind: NodeKind::Source, private: false }];
        let mut total = Status::default();
        let worker = |read, records, partition: i32| Status {
            stats: vec![Stat { read, ..Stat::default() }],
            watermark: 1_700_000_000_000,
            groups: 3,
            checkpoints: 2,
            records,
            cluster_records: 400,
            partition_lag: vec![("events".into(), partition, i64::from(partition) * 10 + 5)],
            checks: {
                let mut v = crate::run::Violations::default();
                v.check("`null_rate(x) < 0.1` of `events`", true, partition == 0);
                v
            },
        };
        total.add(&worker(60, 60, 0));
        total.add(&worker(40, 40, 1));
        let text = prometheus("p", &nodes, 1, &total);
        let value = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .unwrap_or_else(|| panic!("no {name} in\n{text}"))
                .to_string()
        };
        assert_eq!(value("pipe_records_read_total"), "100");
        assert_eq!(value("pipe_process{"), "1");
        assert_eq!(value("pipe_process_records_total"), "100");
        assert_eq!(value("pipe_process_share"), "0.25");
        assert_eq!(value("pipe_state_groups"), "6");
        assert_eq!(value("pipe_watermark_milliseconds"), "1700000000000");
        assert_eq!(value("pipe_checkpoints_total"), "2");
        // The checks of `expect` blocks, summed over the workers.
        let check = "{pipeline=\"p\",check=\"`null_rate(x) < 0.1` of `events`\",gate=\"expect\"}";
        assert_eq!(value(&format!("pipe_expectation_evaluations_total{check}")), "2");
        assert_eq!(value(&format!("pipe_expectation_failures_total{check}")), "1");
        // Each worker's Kafka partitions, with their lag.
        assert_eq!(value("pipe_kafka_consumer_lag{pipeline=\"p\",source=\"events\",partition=\"0\"}"), "5");
        assert_eq!(value("pipe_kafka_consumer_lag{pipeline=\"p\",source=\"events\",partition=\"1\"}"), "15");
    }
}
