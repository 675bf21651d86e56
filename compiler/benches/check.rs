//! How long `pipec check` takes on a generated 1,000-line pipeline (the goal is under 50 ms),
//! and on the design brief's example. Run with `cargo bench -p pipe-compiler --bench check`.
//! The generated program is also written to `target/bench/generated.pipe`, to time the CLI.
#![allow(
    clippy::disallowed_methods,
    reason = "the bench writes its generated program out so the CLI can be timed on it"
)]

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use pipec::source::MemoryLoader;

const SCHEMA: &str = include_str!("../../tests/cases/schemas/partner.thrift");
const DESIGN: &str = include_str!("../../tests/cases/valid/design/main.pipe");

/// A realistic program of about `lines` lines: functions, sources, and streams that explode,
/// filter, derive, window, aggregate and union, wired to sinks.
fn generate(lines: usize) -> String {
    let mut out = String::from("namespace bench.generated\ninclude \"schemas/partner.thrift\"\n\n");
    out.push_str("source apps: LoanApplication {\n  event_time = submitted_at\n  watermark = 5m\n  batch = files(\"apps/*.jsonl\", format = json)\n  stream = kafka(topic = \"apps\", brokers = env(\"BROKERS\"))\n}\n\n");
    let mut i = 0;
    while out.lines().count() < lines {
        out.push_str(&format!(
            "fn util_{i}(balance: double, limit: double?) -> double? =\n  if limit > 0 then balance / limit * {i}.0 else null\n\n\
             stream rows_{i} = apps\n  | where annual_income != null && state != null\n  | explode tradelines as t\n  | select {{\n      member = hmac(member_id),\n      at = submitted_at,\n      account = hmac(t.account_id),\n      balance = t.balance,\n      util = util_{i}(t.balance, t.credit_limit),\n      kind = t.kind ?? \"unknown\",\n      income = annual_income,\n      state = lower(state),\n    }}\n  | where balance >= {i}\n  | derive {{ band = if income > 100000 then \"high\" else \"low\", day = date(at) }}\n\n\
             stream daily_{i} = rows_{i}\n  | window tumbling(1d)\n  | group by member, state\n  | aggregate {{\n      accounts = count_distinct(account),\n      total = sum(balance),\n      peak = max(util),\n      mean = avg(income),\n    }}\n\n\
             daily_{i} -> files(\"out/daily_{i}\", format = parquet, partition_by = [date(window_start)]) {{\n  purpose = \"analytics.reporting\"\n  allow \"user.unique_id\" as pseudonymized\n  allow \"user.financial\" as raw\n}}\n\n"
        ));
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let program = generate(1000);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    if std::fs::create_dir_all(dir.join("schemas")).is_ok() {
        let _ = std::fs::write(dir.join("generated.pipe"), &program);
        let _ = std::fs::write(dir.join("schemas/partner.thrift"), SCHEMA);
    }
    let loader = MemoryLoader::new().with("schemas/partner.thrift", SCHEMA).with("main.pipe", program.as_str());
    let checked = pipec::check_program(&loader, Path::new("main.pipe")).expect("loads");
    assert!(!checked.has_errors(), "the generated program must be valid: {:?}", checked.diagnostics.first());
    c.bench_function(&format!("check {} lines", program.lines().count()), |b| {
        b.iter(|| pipec::check_program(black_box(&loader), Path::new("main.pipe")).map(|c| c.diagnostics.len()))
    });
    let design = MemoryLoader::new().with("../../schemas/partner.thrift", SCHEMA).with("x/y/main.pipe", DESIGN);
    c.bench_function("check design example", |b| {
        b.iter(|| pipec::check_program(black_box(&design), Path::new("x/y/main.pipe")).map(|c| c.diagnostics.len()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
