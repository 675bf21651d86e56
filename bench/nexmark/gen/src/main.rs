//! Writes Nexmark events as JSON Lines for `bench/nexmark.sh`: `N` events of the `nexmark`
//! crate's generator (the generator of RisingWave's and Arroyo's Nexmark runs), split by kind
//! into `OUT/person/`, `OUT/auction/` and `OUT/bid/`, each kind dealt round-robin over `PARTS`
//! files so that readers of the files advance through event time together.
//!
//!   nexmark-gen N OUT [PARTS] [RATE]
//!
//! `RATE` is events per second of event time: 10,000,000 by default, the rate of the Flink
//! Nexmark suite (100 million events in 10 seconds), so windows hold as many events as there.
//! The clock starts at a fixed instant, so two runs write the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use nexmark::config::NexmarkConfig;
use nexmark::event::Event;
use nexmark::EventGenerator;

/// 2023-11-14T22:13:20Z: a fixed start instead of the crate's default, the wall clock.
const BASE_TIME_MS: u64 = 1_700_000_000_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: nexmark-gen N OUT [PARTS] [RATE]");
        std::process::exit(2);
    }
    let number = |i: usize, default: usize| -> usize {
        args.get(i).map_or(default, |s| {
            s.replace('_', "").parse().unwrap_or_else(|_| {
                eprintln!("nexmark-gen: `{s}` is not a number");
                std::process::exit(2)
            })
        })
    };
    let (events, parts, rate) = (number(1, 0), number(3, 4).max(1), number(4, 10_000_000).max(1));
    let out = Path::new(&args[2]);
    if let Err(e) = write(events, out, parts, rate) {
        eprintln!("nexmark-gen: {}: {e}", out.display());
        std::process::exit(1);
    }
}

fn write(events: usize, out: &Path, parts: usize, rate: usize) -> std::io::Result<()> {
    let files = |kind: &str| -> std::io::Result<Vec<BufWriter<File>>> {
        let dir = out.join(kind);
        std::fs::create_dir_all(&dir)?;
        (0..parts)
            .map(|p| Ok(BufWriter::with_capacity(1 << 20, File::create(dir.join(format!("part-{p}.jsonl")))?)))
            .collect()
    };
    let (mut person, mut auction, mut bid) = (files("person")?, files("auction")?, files("bid")?);
    let mut counts = [0usize; 3];
    let config = NexmarkConfig { base_time: BASE_TIME_MS, first_rate: rate, next_rate: rate, ..Default::default() };
    // `EventGenerator::default()` has a step of 0 and repeats its first event: build it from a
    // configuration.
    for event in EventGenerator::new(config).take(events) {
        let (kind, line) = match &event {
            Event::Person(p) => (0, serde_json::to_string(p)),
            Event::Auction(a) => (1, serde_json::to_string(a)),
            Event::Bid(b) => (2, serde_json::to_string(b)),
        };
        let files = [&mut person, &mut auction, &mut bid][kind].as_mut_slice();
        let file = &mut files[counts[kind] % parts];
        file.write_all(line.map_err(std::io::Error::other)?.as_bytes())?;
        file.write_all(b"\n")?;
        counts[kind] += 1;
    }
    for f in person.iter_mut().chain(&mut auction).chain(&mut bid) {
        f.flush()?;
    }
    println!("persons={} auctions={} bids={}", counts[0], counts[1], counts[2]);
    Ok(())
}
