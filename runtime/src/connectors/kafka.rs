//! Kafka sources and sinks (the runtime's `kafka` feature), on librdkafka through `rdkafka`.
//!
//! A source never joins a consumer group's rebalancing: the engine assigns the topic's
//! partitions to workers itself (partition `p` to worker `p % workers`, the same on every
//! process) and each worker's reader consumes its partitions from the offsets its checkpoint
//! recorded. The group only receives the offsets of completed checkpoints, for lag tooling
//! and for `start = group` when there is no checkpoint. A batch run reads every partition up to
//! the end offset it has when the run starts.
//!
//! A sink produces with the idempotent producer and waits for every message of an epoch to be
//! acknowledged before the epoch's checkpoint completes: nothing is lost; after a crash the
//! messages of the epoch that was cut short are produced again (at least once).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};

use super::files::{Batch, Msg, BATCH_LINES};
use super::{position_name, ReaderShared};
use crate::input::{KafkaDecl, KafkaStart};
use crate::record::MessageMeta;

/// How long a request at start (metadata, offsets) may take before the brokers count as
/// unreachable.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest lines wait in a reader before they are sent on (when fewer than a batch came).
const BATCH_WAIT: Duration = Duration::from_millis(20);
/// The payload bytes after which a reader sends a partition's batch on.
const BATCH_BYTES: usize = 1 << 20;
/// How often librdkafka reports its statistics: the partitions' end offsets as the brokers'
/// fetch responses give them (consumer lag, and the end of a bounded read).
const STATS_MS: &str = "100";
/// How long a bounded read waits for the first fetch response's end offset before it takes
/// the one the brokers listed.
const END_WAIT: Duration = Duration::from_secs(5);
/// A bounded read that gets nothing for this long while its partition has more to give fails.
const STALL: Duration = Duration::from_secs(120);

fn config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("socket.connection.setup.timeout.ms", "10000")
        // librdkafka's own log lines would interleave with the pipeline's report.
        .set("log_level", "3");
    c
}

/// A consumer's context: keeps the end offset (high watermark) of each partition from the
/// statistics librdkafka takes from fetch responses. (Some brokers list a stale end offset when
/// asked directly; a fetch response's is the one the data comes with.)
#[derive(Debug, Default)]
struct Watermarks {
    topic: String,
    highs: Mutex<BTreeMap<i32, i64>>,
}

impl ClientContext for Watermarks {
    fn stats(&self, statistics: Statistics) {
        let Some(t) = statistics.topics.get(&self.topic) else { return };
        let mut highs = lock(&self.highs);
        for (p, part) in &t.partitions {
            if *p >= 0 && part.hi_offset >= 0 {
                highs.insert(*p, part.hi_offset);
            }
        }
    }
}

impl ConsumerContext for Watermarks {}

type Reader = BaseConsumer<Watermarks>;

fn consumer(decl: &KafkaDecl, group: &str) -> Result<Reader, String> {
    config(&decl.brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        // Every read starts at an offset of ours: a broker that calls one out of range is an
        // error to handle, never a silent jump to another end of the partition.
        .set("auto.offset.reset", "error")
        // What librdkafka prefetches per partition: bounded, so a slow pipeline holds it back.
        .set("queued.max.messages.kbytes", "16384")
        .set("fetch.wait.max.ms", "10")
        .set("statistics.interval.ms", STATS_MS)
        .create_with_context(Watermarks { topic: decl.topic.clone(), highs: Mutex::new(BTreeMap::new()) })
        .map_err(|e| format!("cannot create a Kafka consumer of topic `{}` on `{}`: {e}", decl.topic, decl.brokers))
}

/// The partitions of the topic. Fails with an error naming the brokers when none answers in
/// time, and naming the topic when the brokers do not have it.
pub fn partitions(decl: &KafkaDecl) -> Result<Vec<i32>, String> {
    let c = consumer(decl, "pipe-metadata")?;
    let md = c.fetch_metadata(Some(&decl.topic), SETUP_TIMEOUT).map_err(|e| {
        format!("cannot reach the Kafka brokers `{}` (waited {}s): {e}", decl.brokers, SETUP_TIMEOUT.as_secs())
    })?;
    let Some(t) = md.topics().iter().find(|t| t.name() == decl.topic) else {
        return Err(format!("the Kafka brokers `{}` have no topic `{}`", decl.brokers, decl.topic));
    };
    if let Some(e) = t.error() {
        let code = RDKafkaErrorCode::from(e);
        return Err(if code == RDKafkaErrorCode::UnknownTopicOrPartition {
            format!("the Kafka brokers `{}` have no topic `{}`", decl.brokers, decl.topic)
        } else {
            format!("topic `{}` on `{}`: {code}", decl.topic, decl.brokers)
        });
    }
    let mut parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    if parts.is_empty() {
        return Err(format!("the Kafka brokers `{}` have no topic `{}`", decl.brokers, decl.topic));
    }
    parts.sort_unstable();
    Ok(parts)
}

/// Why a reader could not find where to start: the message, and whether asking again may
/// help (the brokers did not answer in time) or not (the topic or the permission is gone).
struct StartError {
    message: String,
    retry: bool,
}

impl StartError {
    fn new(e: &KafkaError, message: String) -> StartError {
        StartError { message: format!("{message}: {e}"), retry: !fatal(e) }
    }
}

/// The offset each partition starts from when no checkpoint names one.
fn start_offsets(c: &Reader, decl: &KafkaDecl, parts: &[i32]) -> Result<BTreeMap<i32, i64>, StartError> {
    let mut out = BTreeMap::new();
    if parts.is_empty() {
        return Ok(out);
    }
    let ends = |p: i32| {
        c.fetch_watermarks(&decl.topic, p, SETUP_TIMEOUT).map_err(|e| {
            StartError::new(
                &e,
                format!("reading the offsets of topic `{}` partition {p} on `{}`", decl.topic, decl.brokers),
            )
        })
    };
    match decl.start {
        KafkaStart::Earliest => {
            for &p in parts {
                out.insert(p, ends(p)?.0);
            }
        }
        KafkaStart::Latest => {
            for &p in parts {
                out.insert(p, ends(p)?.1);
            }
        }
        KafkaStart::Group => {
            let mut tpl = TopicPartitionList::new();
            for &p in parts {
                tpl.add_partition(&decl.topic, p);
            }
            let committed = c.committed_offsets(tpl, SETUP_TIMEOUT).map_err(|e| {
                StartError::new(
                    &e,
                    format!("reading the committed offsets of topic `{}` on `{}`", decl.topic, decl.brokers),
                )
            })?;
            for &p in parts {
                let at = committed.find_partition(&decl.topic, p).and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
                out.insert(
                    p,
                    match at {
                        Some(o) => o,
                        None => ends(p)?.0,
                    },
                );
            }
        }
        KafkaStart::Timestamp(ts) => {
            let mut tpl = TopicPartitionList::new();
            for &p in parts {
                tpl.add_partition_offset(&decl.topic, p, Offset::Offset(ts)).map_err(|e| StartError {
                    message: format!(
                        "looking up the start time {ts} in topic `{}` partition {p} on `{}`: {e}",
                        decl.topic, decl.brokers
                    ),
                    retry: false,
                })?;
            }
            let found = c.offsets_for_times(tpl, SETUP_TIMEOUT).map_err(|e| {
                StartError::new(
                    &e,
                    format!("looking up the offsets at {ts} of topic `{}` on `{}`", decl.topic, decl.brokers),
                )
            })?;
            for &p in parts {
                let at = found.find_partition(&decl.topic, p).and_then(|e| match e.offset() {
                    Offset::Offset(o) if o >= 0 => Some(o),
                    _ => None,
                });
                // No message at or after the time: start at the end.
                out.insert(
                    p,
                    match at {
                        Some(o) => o,
                        None => ends(p)?.1,
                    },
                );
            }
        }
    }
    Ok(out)
}

fn assign(c: &Reader, decl: &KafkaDecl, from: &BTreeMap<i32, i64>) -> Result<(), String> {
    let (topic, brokers) = (&decl.topic, &decl.brokers);
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in from {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .map_err(|e| format!("cannot read topic `{topic}` partition {p} from offset {o} on `{brokers}`: {e}"))?;
    }
    c.assign(&tpl).map_err(|e| format!("cannot read topic `{topic}` on `{brokers}`: {e}"))
}

/// How long a partition sought to an offset may give nothing, while its end is past that
/// offset, before its reader asks from further back.
const RESUME_WAIT: Duration = Duration::from_secs(1);

/// A partition a reader assigned or sought to offset `want` that has not given its first
/// message yet. Kafka serves a fetch from inside a record batch from the offset asked for; tansu
/// 0.6.0 serves the batches after it and skips the rest of that batch (measured: a fetch from
/// offset 50 of a 100-message batch returns offset 100 onwards, and from inside the last batch
/// nothing). So until a message at or before `want` comes, the reader asks again from further
/// back (1, 2, 4, … offsets before `want`, down to 0) and drops what comes before `want`. On a
/// broker that serves what it is asked, the first message is `want` and nothing changes.
struct Resume {
    want: i64,
    back: i64,
    asked: Instant,
    /// A message before `want` came: the broker serves from where it is asked.
    before: bool,
}

enum Arrival {
    /// The message is at or after where the reader resumes: read it.
    Take,
    /// Before where the reader resumes: already read.
    Drop,
    /// The broker skipped ahead: ask again from this offset.
    AskFrom(i64),
}

impl Resume {
    fn new(want: i64) -> Resume {
        Resume { want, back: 0, asked: Instant::now(), before: false }
    }

    fn target(&self) -> i64 {
        (self.want - self.back).max(0)
    }

    fn further(&mut self) -> i64 {
        self.back = (self.back * 2).max(1);
        self.asked = Instant::now();
        self.target()
    }

    fn arrival(&mut self, offset: i64) -> Arrival {
        if offset < self.want {
            self.before = true;
            Arrival::Drop
        } else if offset > self.want && !self.before && self.target() > 0 {
            Arrival::AskFrom(self.further())
        } else {
            // At `want`, or after it where the broker has nothing in between (compacted away).
            Arrival::Take
        }
    }

    /// Nothing came for a while although the partition ends past `want` (`high`, -1 unknown):
    /// where to ask from next, if it is worth asking again.
    fn stalled(&mut self, high: i64) -> Option<i64> {
        (!self.before && high > self.want && self.target() > 0 && self.asked.elapsed() >= RESUME_WAIT)
            .then(|| self.further())
    }
}

fn meta(m: &rdkafka::message::BorrowedMessage<'_>) -> MessageMeta {
    MessageMeta {
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        partition: i64::from(m.partition()),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
    }
}

/// Offset resets in a row without a message after which a reader gives up.
const MAX_RESETS: u32 = 20;

/// The brokers refused a reader's offset (`auto.offset.reset = error`).
fn out_of_range(e: &KafkaError) -> bool {
    matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::AutoOffsetReset | RDKafkaErrorCode::OffsetOutOfRange))
}

/// Errors that end a read: the topic or the permission to read it is gone. Anything else
/// (brokers down or slow) librdkafka retries by itself.
fn fatal(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
        )
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads partitions `parts` of the topic until `stop`, from the positions `resume` gives
/// (offsets by [`position_name`]) or where the source's `start` says, sending the messages of
/// each partition in batches: their payloads are the lines, their offsets the line numbers.
/// An empty batch tells the worker where a partition starts.
#[allow(clippy::too_many_arguments, reason = "a reader's whole configuration")]
pub fn follow(
    source: usize,
    decl: &KafkaDecl,
    header: Option<Arc<csv::ByteRecord>>,
    group: &str,
    parts: &[i32],
    resume: &BTreeMap<String, (u64, u64)>,
    tx: &SyncSender<Msg>,
    stop: &AtomicBool,
    shared: &ReaderShared,
) -> Result<(), String> {
    if parts.is_empty() {
        return Ok(());
    }
    let c = consumer(decl, group)?;
    let mut from = BTreeMap::new();
    let missing: Vec<i32> =
        parts.iter().copied().filter(|p| !resume.contains_key(&position_name(&decl.topic, *p))).collect();
    // The brokers answered at setup; if they stop answering now, the stream waits for them as
    // it does once reading (a warning says so), unless it is stopped.
    let mut warned = false;
    let starts = loop {
        match start_offsets(&c, decl, &missing) {
            Ok(s) => break s,
            Err(e) if e.retry => {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                if !warned {
                    #[allow(clippy::print_stderr, reason = "a warning the operator should see")]
                    {
                        eprintln!("warning: {} (asking again)", e.message);
                    }
                    warned = true;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(e.message),
        }
    };
    for &p in parts {
        let at = match resume.get(&position_name(&decl.topic, p)) {
            Some((o, _)) => i64::try_from(*o).unwrap_or(i64::MAX),
            None => starts.get(&p).copied().unwrap_or(0),
        };
        from.insert(p, at);
    }
    assign(&c, decl, &from)?;
    let names: BTreeMap<i32, Arc<str>> = parts.iter().map(|&p| (p, Arc::from(position_name(&decl.topic, p)))).collect();
    {
        let mut st = lock(&shared.partitions);
        for (&p, &o) in &from {
            st.insert(p, super::PartitionState { position: o, high: -1, last_message: None });
        }
    }
    // Where each partition starts, so a checkpoint before its first message records it.
    for (&p, &o) in &from {
        let b = empty_batch(source, &names[&p], o, None);
        if tx.send(Msg::Batch(b)).is_err() {
            return Ok(());
        }
    }
    let mut resuming: BTreeMap<i32, Resume> = from.iter().map(|(&p, &o)| (p, Resume::new(o))).collect();
    let mut pending: BTreeMap<i32, Batch> = BTreeMap::new();
    let mut oldest = Instant::now();
    let mut resets = 0;
    while !stop.load(Ordering::Relaxed) {
        if let Some(offsets) = lock(&shared.commit).take() {
            commit(&c, decl, &offsets);
        }
        {
            let highs = lock(&c.context().highs);
            let mut st = lock(&shared.partitions);
            for (p, high) in highs.iter() {
                if let Some(s) = st.get_mut(p) {
                    s.high = *high;
                }
            }
        }
        if !resuming.is_empty() {
            let highs: Vec<(i32, i64)> = lock(&shared.partitions).iter().map(|(p, s)| (*p, s.high)).collect();
            for (p, high) in highs {
                if let Some(at) = resuming.get_mut(&p).and_then(|r| r.stalled(high)) {
                    let _ = c.seek(&decl.topic, p, Offset::Offset(at), SETUP_TIMEOUT);
                }
            }
        }
        // With lines waiting, only what has already arrived joins them: the moment nothing
        // more is there, they are sent on.
        let polled = c.poll(if pending.is_empty() { Duration::from_millis(10) } else { Duration::ZERO });
        let idle = polled.is_none();
        match polled {
            Some(Ok(m)) => {
                let p = m.partition();
                let Some(name) = names.get(&p) else { continue };
                if let Some(r) = resuming.get_mut(&p) {
                    match r.arrival(m.offset()) {
                        Arrival::Take => {
                            resuming.remove(&p);
                        }
                        Arrival::Drop => continue,
                        Arrival::AskFrom(at) => {
                            let _ = c.seek(&decl.topic, p, Offset::Offset(at), SETUP_TIMEOUT);
                            continue;
                        }
                    }
                }
                if pending.is_empty() {
                    oldest = Instant::now();
                }
                let b = pending.entry(p).or_insert_with(|| {
                    let mut b = empty_batch(source, name, m.offset(), header.clone());
                    // Sized once: growing a batch by doubling copied it and touched fresh pages
                    // (a fifth of a reader's time in a profile).
                    b.data.reserve(BATCH_BYTES + (BATCH_BYTES >> 2));
                    b.lines.reserve(BATCH_LINES);
                    b.meta.reserve(BATCH_LINES);
                    b
                });
                let payload = m.payload().unwrap_or_default();
                let start = b.data.len();
                b.data.extend_from_slice(payload);
                b.lines.push((start, b.data.len(), u64::try_from(m.offset()).unwrap_or(0)));
                b.meta.push(meta(&m));
                b.end_offset = u64::try_from(m.offset() + 1).unwrap_or(0);
                resets = 0;
                if let Some(s) = lock(&shared.partitions).get_mut(&p) {
                    s.position = m.offset() + 1;
                    s.last_message = Some(Instant::now());
                }
                if b.lines.len() >= BATCH_LINES || b.data.len() >= BATCH_BYTES {
                    if let Some(full) = pending.remove(&p) {
                        if tx.send(Msg::Batch(full)).is_err() {
                            return Ok(());
                        }
                    }
                }
            }
            Some(Err(e)) if fatal(&e) => {
                return Err(format!("reading topic `{}` on `{}`: {e}", decl.topic, decl.brokers));
            }
            Some(Err(e)) if out_of_range(&e) => {
                // Go on from where this reader is; a partition that keeps refusing its position
                // (its messages are no longer retained) stops the run.
                resets += 1;
                if resets > MAX_RESETS {
                    return Err(format!(
                        "topic `{}` on `{}`: the brokers keep refusing this reader's offsets ({e}); were the messages deleted?",
                        decl.topic, decl.brokers
                    ));
                }
                let at: Vec<(i32, i64)> = lock(&shared.partitions).iter().map(|(p, s)| (*p, s.position)).collect();
                for (p, o) in at {
                    let _ = c.seek(&decl.topic, p, Offset::Offset(o), SETUP_TIMEOUT);
                    resuming.insert(p, Resume::new(o));
                }
            }
            // The brokers are down or slow: librdkafka reconnects and goes on by itself.
            Some(Err(_)) => {}
            None => {}
        }
        if !pending.is_empty() && (idle || oldest.elapsed() >= BATCH_WAIT) {
            for (_, b) in std::mem::take(&mut pending) {
                if tx.send(Msg::Batch(b)).is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

fn empty_batch(source: usize, name: &Arc<str>, offset: i64, header: Option<Arc<csv::ByteRecord>>) -> Batch {
    let at = u64::try_from(offset).unwrap_or(0);
    Batch {
        source,
        file: name.clone(),
        header,
        data: Vec::new(),
        lines: Vec::new(),
        meta: Vec::new(),
        end_offset: at,
        end_line: 0,
        restarted: false,
        renamed_from: None,
        mark: None,
    }
}

/// Commits the offsets of a published checkpoint to the consumer group. A failure only
/// delays lag tooling (the checkpoint holds the offsets that count): it is reported, not fatal.
fn commit(c: &Reader, decl: &KafkaDecl, offsets: &BTreeMap<i32, i64>) {
    let (topic, brokers) = (&decl.topic, &decl.brokers);
    let mut tpl = TopicPartitionList::new();
    for (&p, &o) in offsets {
        if tpl.add_partition_offset(topic, p, Offset::Offset(o)).is_err() {
            return;
        }
    }
    if let Err(e) = c.commit(&tpl, CommitMode::Async) {
        #[allow(clippy::print_stderr, reason = "a warning the operator should see")]
        {
            eprintln!(
                "warning: committing offsets of topic `{topic}` to the consumer group on `{brokers}` failed: {e}"
            );
        }
    }
}

/// Reads partition `p` from where the source's `start` says up to the end offset it has when
/// the read starts, handing each message to `take`. Returns the payload bytes read.
pub fn read_bounded(
    decl: &KafkaDecl,
    group: &str,
    p: i32,
    take: &mut dyn FnMut(&[u8], &MessageMeta),
) -> Result<u64, String> {
    let c = consumer(decl, group)?;
    let (_, listed) = c.fetch_watermarks(&decl.topic, p, SETUP_TIMEOUT).map_err(|e| {
        format!("reading the end offset of topic `{}` partition {p} on `{}`: {e}", decl.topic, decl.brokers)
    })?;
    let from = start_offsets(&c, decl, &[p]).map_err(|e| e.message)?;
    let start = from.get(&p).copied().unwrap_or(listed);
    assign(&c, decl, &from)?;
    // The end: the first fetch response's high watermark (or, when none comes in time, the
    // listed one).
    let started = Instant::now();
    let mut end: Option<i64> = None;
    let mut position = start;
    let mut bytes = 0u64;
    let mut last = Instant::now();
    let mut resuming = Some(Resume::new(start));
    loop {
        if let Some(at) = resuming.as_mut().and_then(|r| r.stalled(end.unwrap_or(-1))) {
            let _ = c.seek(&decl.topic, p, Offset::Offset(at), SETUP_TIMEOUT);
        }
        if end.is_none() {
            if let Some(h) = lock(&c.context().highs).get(&p) {
                end = Some((*h).max(listed));
            } else if started.elapsed() >= END_WAIT {
                end = Some(listed);
            }
        }
        if end.is_some_and(|e| position >= e) {
            return Ok(bytes);
        }
        match c.poll(Duration::from_millis(20)) {
            Some(Ok(m)) => {
                if let Some(r) = resuming.as_mut() {
                    match r.arrival(m.offset()) {
                        Arrival::Take => resuming = None,
                        Arrival::Drop => continue,
                        Arrival::AskFrom(at) => {
                            let _ = c.seek(&decl.topic, p, Offset::Offset(at), SETUP_TIMEOUT);
                            continue;
                        }
                    }
                }
                if end.is_some_and(|e| m.offset() >= e) {
                    return Ok(bytes);
                }
                last = Instant::now();
                position = m.offset() + 1;
                let payload = m.payload().unwrap_or_default();
                bytes += payload.len() as u64;
                take(payload, &meta(&m));
            }
            Some(Err(e)) if fatal(&e) => {
                return Err(format!("reading topic `{}` partition {p} on `{}`: {e}", decl.topic, decl.brokers))
            }
            Some(Err(e)) if out_of_range(&e) => {
                let _ = c.seek(&decl.topic, p, Offset::Offset(position), SETUP_TIMEOUT);
                resuming = Some(Resume::new(position));
            }
            Some(Err(_)) | None => {
                // Offsets can end in records that are not messages (transaction markers).
                if let (None, Ok(pos)) = (&resuming, c.position()) {
                    if let Some(Offset::Offset(o)) = pos.find_partition(&decl.topic, p).map(|e| e.offset()) {
                        position = position.max(o);
                    }
                }
                if last.elapsed() >= STALL {
                    return Err(format!(
                        "topic `{}` partition {p} on `{}`: nothing read for {}s before its end offset {}",
                        decl.topic,
                        decl.brokers,
                        STALL.as_secs(),
                        end.unwrap_or(listed)
                    ));
                }
            }
        }
    }
}

/// Remembers the first failed delivery.
#[derive(Debug, Default)]
struct Deliveries {
    failure: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            lock(&self.failure).get_or_insert_with(|| e.to_string());
        }
    }
}

/// A sink's producer: idempotent (retries never duplicate or reorder within a partition), every
/// message acknowledged by all in-sync replicas.
pub struct Producer {
    topic: String,
    brokers: String,
    inner: ThreadedProducer<Deliveries>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Producer({} on {})", self.topic, self.brokers)
    }
}

impl Producer {
    /// Connects, and checks the topic exists (a clear error naming the brokers otherwise).
    pub fn open(topic: &str, brokers: &str) -> Result<Producer, String> {
        let decl = KafkaDecl {
            topic: topic.to_string(),
            brokers: brokers.to_string(),
            group: None,
            start: KafkaStart::Latest,
            columns: Vec::new(),
        };
        partitions(&decl)?;
        let inner: ThreadedProducer<Deliveries> = config(brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .create_with_context(Deliveries::default())
            .map_err(|e| format!("cannot create a Kafka producer to topic `{topic}` on `{brokers}`: {e}"))?;
        Ok(Producer { topic: topic.to_string(), brokers: brokers.to_string(), inner })
    }

    /// Queues one message, waiting while librdkafka's queue is full.
    pub fn send(&self, key: Option<&str>, payload: &[u8]) -> Result<(), String> {
        let mut record: BaseRecord<'_, str, [u8]> = BaseRecord::to(&self.topic).payload(payload);
        if let Some(k) = key {
            record = record.key(k);
        }
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err((e, _)) => return Err(format!("writing to topic `{}` on `{}`: {e}", self.topic, self.brokers)),
            }
        }
    }

    /// Waits until every queued message is acknowledged; fails if any delivery failed.
    pub fn flush(&self) -> Result<(), String> {
        self.inner.flush(Duration::from_secs(300)).map_err(|e| {
            format!("waiting for the brokers `{}` to acknowledge topic `{}`: {e}", self.brokers, self.topic)
        })?;
        match lock(&self.inner.context().failure).take() {
            Some(e) => Err(format!("a message to topic `{}` on `{}` was not delivered: {e}", self.topic, self.brokers)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where a reader resuming at `want` ends up reading from, against a broker that serves a
    /// fetch from `at` with the offsets `serve(at)` returns.
    fn resumes_at(want: i64, serve: &dyn Fn(i64) -> Vec<i64>) -> (Option<i64>, usize) {
        let mut r = Resume::new(want);
        let mut at = want;
        for asks in 1..64 {
            let mut next = None;
            for o in serve(at) {
                match r.arrival(o) {
                    Arrival::Take => return (Some(o), asks),
                    Arrival::Drop => {}
                    Arrival::AskFrom(x) => {
                        next = Some(x);
                        break;
                    }
                }
            }
            match next {
                Some(x) => at = x,
                None => return (None, asks),
            }
        }
        (None, 64)
    }

    /// tansu 0.6.0: a fetch from inside a record batch starts at the next batch.
    fn from_next_batch(starts: &'static [i64], end: i64) -> impl Fn(i64) -> Vec<i64> {
        move |at| {
            let first = starts.iter().copied().find(|s| *s >= at).unwrap_or(end);
            (first..end).collect()
        }
    }

    #[test]
    fn a_broker_that_skips_to_the_next_batch_is_asked_again_from_further_back() {
        let broker = from_next_batch(&[0, 100, 200], 300);
        assert_eq!(resumes_at(150, &broker).0, Some(150));
        assert_eq!(resumes_at(1, &broker).0, Some(1));
        assert_eq!(resumes_at(100, &broker), (Some(100), 1), "a batch start is served as asked");
        assert_eq!(resumes_at(0, &broker), (Some(0), 1));
    }

    #[test]
    fn a_broker_that_serves_what_it_is_asked_is_read_at_once() {
        let kafka = |at: i64| (at..300).collect::<Vec<_>>();
        assert_eq!(resumes_at(150, &kafka), (Some(150), 1));
        // Offsets compacted away: the first message after them is taken, once the broker has
        // shown it serves from where it is asked.
        let compacted = |at: i64| (at..300).filter(|o| !(150..160).contains(o)).collect::<Vec<_>>();
        assert_eq!(resumes_at(150, &compacted).0, Some(160));
        // Nothing before the gap either: from 0 on, the first message is taken.
        let sparse = |at: i64| (at.max(40)..300).collect::<Vec<_>>();
        assert_eq!(resumes_at(10, &sparse).0, Some(40));
    }

    #[test]
    fn a_partition_silent_past_its_resume_point_is_asked_again() {
        let mut r = Resume::new(150);
        assert_eq!(r.stalled(200), None, "not before a second has passed");
        r.asked = Instant::now().checked_sub(RESUME_WAIT).expect("an instant a second ago");
        assert_eq!(r.stalled(150), None, "nothing past the resume point to wait for");
        assert_eq!(r.stalled(-1), None, "its end is not known");
        assert_eq!(r.stalled(200), Some(149));
    }
}
