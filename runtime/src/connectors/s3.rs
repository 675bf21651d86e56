//! Object stores: S3 and any S3-protocol server, for `s3(…)` sources and sinks and every
//! `s3://bucket/key` location (the runtime's `s3` feature, through the `object_store` crate).
//!
//! Credentials, region and endpoint come from the standard AWS variables (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
//! `AWS_ENDPOINT_URL`); an `http://` endpoint is allowed as such (a server on the machine).
//!
//! Reading: a glob is listed once when the run starts; each object is read by byte ranges (the
//! splits of [`crate::input`]) and must keep the ETag it was listed with, or the run stops
//! instead of mixing two versions. A folder with a [`MANIFEST`] is read as the manifest says:
//! only the parts it names.
//!
//! Writing has no rename to commit with. A batch run uploads its parts under names no earlier
//! run used (`part-WORKER-RUN.EXT`, multipart when large), then writes the
//! manifest naming them, last: a reader that honours it sees the old run's parts or the new
//! run's, never a mixture. Parts of runs before the previous one are deleted after the commit
//! (the previous run's stay, for readers that listed it just before). A stream uploads each
//! epoch's parts once its checkpoint is complete, under names fixed by epoch and worker, so a
//! replay after a crash writes the same objects again rather than new ones.

use std::future::Future;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as Key;
use object_store::{
    BackoffConfig, ClientConfigKey, GetOptions, GetRange, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutPayload,
    RetryConfig, UpdateVersion, WriteMultipart,
};

/// The object that commits a sink's output: the parts of the run, as JSON (see [`Manifest`]).
pub const MANIFEST: &str = "_SUCCESS";
/// The size of each part of a multipart upload, unless `PIPE_S3_PART_BYTES` says otherwise (at
/// least 5 MiB: S3 refuses smaller parts but for the last); files larger than this are uploaded
/// in parts, smaller ones in one request.
const PART_BYTES: usize = 16 << 20;
const MIN_PART_BYTES: usize = 5 << 20;

fn part_bytes() -> usize {
    std::env::var("PIPE_S3_PART_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(PART_BYTES).max(MIN_PART_BYTES)
}
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Whole reads and uploads are tried this many times (each request is also retried by the
/// client, with backoff, while its server is unreachable: see [`Bucket::connect`]).
const ATTEMPTS: u32 = 4;

/// One bucket of one server, with two clients: a patient one that retries a request for up to
/// a minute (a server restarting, a connection reset), and a quick one for the first request of
/// a run, so a server that is down at the start is reported in seconds.
#[derive(Debug)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    quick: Arc<dyn ObjectStore>,
    pub name: String,
    /// Where the bucket is, for messages: the endpoint (or AWS) — never a credential.
    endpoint: String,
}

/// `s3://bucket/rest` (or `bucket/rest`) as the bucket and the rest.
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("s3://").unwrap_or(url);
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(format!("`{url}` names no bucket: write it as s3://BUCKET/PREFIX"));
    }
    Ok((bucket.to_string(), key.trim_start_matches('/').to_string()))
}

/// The client of `bucket`, made once per process.
pub fn bucket(name: &str) -> Result<Arc<Bucket>, String> {
    static BUCKETS: OnceLock<Mutex<Vec<Arc<Bucket>>>> = OnceLock::new();
    let all = BUCKETS.get_or_init(Mutex::default);
    let mut all = all.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(b) = all.iter().find(|b| b.name == name) {
        return Ok(b.clone());
    }
    let b = Arc::new(Bucket::connect(name)?);
    all.push(b.clone());
    Ok(b)
}

impl Bucket {
    fn connect(name: &str) -> Result<Bucket, String> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT")).ok();
        let region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).ok();
        let build = |retry: RetryConfig| {
            // A whole object (Parquet, Arrow, CSV) is one request: five minutes, not the
            // client's default 30 s, before a transfer counts as stalled.
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(name)
                .with_retry(retry)
                .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "300s");
            if let Some(r) = &region {
                b = b.with_region(r);
            }
            if let Some(e) = &endpoint {
                b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
            }
            b.build().map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        };
        let patient = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(4),
                base: 2.0,
            },
            max_retries: 30,
            retry_timeout: Duration::from_secs(60),
        };
        let quick = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            // The 8 s decide, not the count: ten tries fit in 4 s of backoff, and a server
            // restarting again and again under load failed them all (seen once in the object
            // store test while its server restarts every 270 ms).
            max_retries: 30,
            retry_timeout: Duration::from_secs(8),
        };
        let where_ = endpoint.as_deref().map_or_else(|| "AWS S3".to_string(), crate::connectors::redact);
        let why = |e: object_store::Error| format!("bucket `{name}` at {where_}: {e}");
        Ok(Bucket {
            store: build(patient).map_err(why)?,
            quick: build(quick).map_err(why)?,
            name: name.to_string(),
            endpoint: where_,
        })
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    fn fail(&self, key: &str, what: &str, e: impl std::fmt::Display) -> String {
        let e = e.to_string();
        // Without keys the client asks the machine's instance metadata service for a role.
        let hint = if e.contains("169.254.169.254") {
            "; no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or run where an instance role gives them)"
        } else {
            ""
        };
        format!("{what} `{}` (at {}): {e}{hint}", self.url(key), self.endpoint)
    }
}

/// Runs `f` to its end on the connectors' runtime (from any thread, in a runtime or not).
fn block<T: Send>(f: impl Future<Output = T> + Send) -> Result<T, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    let rt = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("pipe-s3")
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the object store client: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(rt.block_on(f));
    }
    // Inside another runtime a thread of our own waits instead.
    std::thread::scope(|s| match s.spawn(|| rt.block_on(f)).join() {
        Ok(v) => Ok(v),
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Waits before attempt `n` (from 1) of something that failed.
fn pause(n: u32) {
    std::thread::sleep(Duration::from_millis(200 << n.min(5)));
}

/// What a sink's [`MANIFEST`] holds: the parts of the run that wrote it, by key relative to the
/// sink's prefix.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// Always `pipe-manifest-1`.
    pub format: String,
    /// The run that committed it.
    pub run: String,
    /// The parts' format (`json`, `csv`, `parquet`, `arrow`).
    pub content: String,
    pub parts: Vec<Part>,
}

/// One object of a committed output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Part {
    pub key: String,
    pub bytes: u64,
}

const MANIFEST_FORMAT: &str = "pipe-manifest-1";

/// The manifest at `dir/_SUCCESS`: none when there is none. A `_SUCCESS` that is not a Pipe
/// manifest (Spark's and Hadoop's empty marker, the S3A committer's JSON) is a marker only:
/// [`Manifest::is_marker`], and every object of the folder counts.
fn read_manifest(b: &Bucket, store: &dyn ObjectStore, dir: &str) -> Result<Option<Manifest>, String> {
    let key = join(dir, MANIFEST);
    let path = key_of(&key)?;
    let got = block(async { store.get(&path).await?.bytes().await })?;
    let bytes = match got {
        Ok(bytes) => bytes,
        Err(object_store::Error::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(b.fail(&key, "cannot read", e)),
    };
    match serde_json::from_slice::<Manifest>(&bytes) {
        Ok(m) if m.format == MANIFEST_FORMAT => Ok(Some(m)),
        _ => Ok(Some(Manifest::default())),
    }
}

impl Manifest {
    /// A success marker of another writer, naming no parts.
    pub fn is_marker(&self) -> bool {
        self.format != MANIFEST_FORMAT
    }
}

/// The store's path of `key`, as it is: our part names are escaped already (partition folders
/// as Hive escapes them), and listed keys are the server's own.
fn key_of(key: &str) -> Result<Key, String> {
    Key::parse(key).map_err(|e| format!("`{key}` is not an object key: {e}"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{}/{name}", dir.trim_end_matches('/'))
    }
}

fn parent(key: &str) -> &str {
    key.rfind('/').map_or("", |i| &key[..i])
}

/// An object a batch run reads, as it was listed.
#[derive(Debug)]
pub struct Object {
    bucket: Arc<Bucket>,
    pub key: String,
    pub size: u64,
    pub e_tag: Option<String>,
    pub modified: std::time::SystemTime,
}

impl Object {
    pub fn url(&self) -> String {
        self.bucket.url(&self.key)
    }

    /// Bytes `[start, end)` into `buf` (replacing what it held), from the object as it was
    /// listed: a changed or deleted object stops the read with a clear error.
    pub fn read_range(&self, start: u64, end: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        buf.clear();
        if start >= end {
            return Ok(());
        }
        let key = key_of(&self.key).map_err(io::Error::other)?;
        let mut attempt = 0;
        loop {
            let options = GetOptions {
                range: Some(GetRange::Bounded(start..end)),
                if_match: self.e_tag.clone(),
                ..GetOptions::default()
            };
            let got = block(async {
                let r = self.bucket.store.get_opts(&key, options).await?;
                let tag = r.meta.e_tag.clone();
                r.bytes().await.map(|b| (tag, b))
            })
            .map_err(io::Error::other)?;
            match got {
                Ok((tag, bytes)) => {
                    if self.e_tag.is_some() && tag.is_some() && tag != self.e_tag {
                        return Err(changed(&format!("its ETag went from {:?} to {:?}", self.e_tag, tag)));
                    }
                    if bytes.len() as u64 != end - start {
                        return Err(changed(&format!(
                            "it ended after {} of the planned {} bytes",
                            start + bytes.len() as u64,
                            self.size
                        )));
                    }
                    buf.extend_from_slice(&bytes);
                    return Ok(());
                }
                Err(object_store::Error::NotFound { .. }) => return Err(changed("it was deleted")),
                Err(object_store::Error::Precondition { .. }) => return Err(changed("it was replaced")),
                Err(e) if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    pause(attempt);
                    let _ = e;
                }
                Err(e) => return Err(io::Error::other(self.bucket.fail(&self.key, "cannot read", e))),
            }
        }
    }

    /// The offset of the first line that starts at or after `at` (`at` > 0), or the size.
    fn line_start_at_or_after(&self, at: u64) -> io::Result<u64> {
        let mut pos = at - 1;
        let mut chunk = Vec::new();
        while pos < self.size {
            let end = (pos + (256 << 10)).min(self.size);
            self.read_range(pos, end, &mut chunk)?;
            if let Some(i) = memchr::memchr(b'\n', &chunk) {
                return Ok(pos + i as u64 + 1);
            }
            pos = end;
        }
        Ok(self.size)
    }
}

impl crate::input::Remote for Object {
    fn read_range(&self, start: u64, end: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        Object::read_range(self, start, end, buf)
    }
}

fn changed(why: &str) -> io::Error {
    io::Error::other(format!(
        "the object changed while the run read it ({why}): nothing was published; run again once it is complete"
    ))
}

/// The objects a glob `s3://bucket/pattern` names, sorted by key. Names starting with `_` or
/// `.` are not data (markers, summaries); in a folder with a manifest, or under one, only the
/// parts the nearest manifest names are read. A glob that names nothing is an error.
pub fn list(url: &str) -> Result<Vec<Object>, String> {
    let (name, pattern) = split_url(url)?;
    let b = bucket(&name)?;
    let glob = glob::Pattern::new(&pattern).map_err(|e| format!("bad object pattern `{url}`: {e}"))?;
    let literal = &pattern[..pattern.find(['*', '?', '[']).unwrap_or(pattern.len())];
    // A name without wildcards is one object or a folder (everything under it).
    let folder = (literal.len() == pattern.len()).then(|| format!("{}/", pattern.trim_end_matches('/')));
    // A name without wildcards is listed as a folder; if it is none, its parent (where the
    // object it names would be).
    let mut dir = match &folder {
        Some(f) => f.trim_end_matches('/'),
        None => literal.rfind('/').map_or("", |i| &literal[..i]),
    };
    let mut listed = list_under(&b, dir)?;
    if folder.is_some() && listed.is_empty() {
        dir = parent(dir);
        listed = list_under(&b, dir)?;
    }
    // Manifests: in the listed folders, and in every folder above the listing.
    let mut manifests: Vec<(String, Manifest)> = Vec::new();
    for m in listed.iter().filter(|m| m.location.filename() == Some(MANIFEST)) {
        let d = parent(m.location.as_ref()).to_string();
        if let Some(found) = read_manifest(&b, b.store.as_ref(), &d)? {
            manifests.push((d, found));
        }
    }
    let mut above = dir;
    loop {
        above = parent(above);
        if let Some(found) = read_manifest(&b, b.store.as_ref(), above)? {
            manifests.push((above.to_string(), found));
        }
        if above.is_empty() {
            break;
        }
    }
    let options =
        glob::MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: true };
    let mut skipped = 0usize;
    let mut objects = Vec::new();
    let mut found: std::collections::HashSet<String> = std::collections::HashSet::new();
    for m in listed {
        let key = m.location.as_ref().to_string();
        // Names starting with `_` or `.` below the listing are not data (markers, summaries,
        // folders of other writers' bookkeeping).
        let below = if dir.is_empty() { key.as_str() } else { key.get(dir.len() + 1..).unwrap_or_default() };
        let hidden = below.split('/').any(|segment| segment.starts_with(['_', '.']));
        let named = glob.matches_with(&key, options) || folder.as_ref().is_some_and(|f| key.starts_with(f.as_str()));
        if hidden || !named {
            continue;
        }
        // The nearest manifest above the object decides.
        let nearest = manifests
            .iter()
            .filter(|(d, _)| d.is_empty() || key.starts_with(&format!("{d}/")))
            .max_by_key(|(d, _)| d.len());
        if let Some((d, manifest)) = nearest.filter(|(_, m)| !m.is_marker()) {
            let rel = if d.is_empty() { key.as_str() } else { &key[d.len() + 1..] };
            match manifest.parts.iter().find(|p| p.key == rel) {
                None => {
                    skipped += 1;
                    continue;
                }
                Some(p) if p.bytes != m.size => {
                    return Err(format!(
                        "`{}` has {} bytes, but the manifest of its folder says {}: was it rewritten after the commit?",
                        b.url(&key),
                        m.size,
                        p.bytes
                    ));
                }
                Some(_) => {
                    found.insert(key.clone());
                }
            }
        }
        objects.push(Object { bucket: b.clone(), key, size: m.size, e_tag: m.e_tag, modified: m.last_modified.into() });
    }
    // Every part a manifest names must be there: a reader never gets part of a committed run.
    let mut governs_glob = false;
    for (d, manifest) in manifests.iter().filter(|(_, m)| !m.is_marker()) {
        for p in &manifest.parts {
            let key = join(d, &p.key);
            if !(glob.matches_with(&key, options) || folder.as_ref().is_some_and(|f| key.starts_with(f.as_str()))) {
                continue;
            }
            if !found.contains(&key) {
                return Err(format!(
                    "`{}` is missing: the manifest `{}` names it (was it deleted by a cleanup, or by another run writing the same prefix?)",
                    b.url(&key),
                    b.url(&join(d, MANIFEST))
                ));
            }
        }
        // A committed run with no rows is an empty input, not a missing one.
        governs_glob |= d.is_empty() || literal == d.as_str() || literal.starts_with(&format!("{d}/"));
    }
    if objects.is_empty() && governs_glob {
        return Ok(objects);
    }
    if objects.is_empty() {
        let why = if skipped > 0 {
            format!(" ({skipped} objects there are not parts of the run their folder's {MANIFEST} names)")
        } else {
            String::new()
        };
        return Err(format!("no objects match `{url}`{why}"));
    }
    objects.sort_by(|a, c| a.key.cmp(&c.key));
    Ok(objects)
}

/// Every object under folder `dir` (recursively). The first request goes through the quick
/// client (a server that is down is reported at once), the listing itself through the patient
/// one.
fn list_under(b: &Bucket, dir: &str) -> Result<Vec<ObjectMeta>, String> {
    let prefix = if dir.is_empty() { None } else { Some(key_of(dir)?) };
    block(async { b.quick.list_with_delimiter(prefix.as_ref()).await })?.map_err(|e| b.fail(dir, "cannot list", e))?;
    block(async { b.store.list(prefix.as_ref()).try_collect::<Vec<ObjectMeta>>().await })?
        .map_err(|e| b.fail(dir, "cannot list", e))
}

/// Splits every object of `url` for source number `source`: a line-oriented object is cut at
/// line starts into ranges of about `target` bytes (JSON; CSV objects stay whole, as a quoted
/// field may hold a newline), Parquet and Arrow objects are one split each.
pub fn plan(
    source: usize,
    url: &str,
    format: crate::input::Format,
    workers: usize,
) -> Result<Vec<crate::input::Split>, String> {
    use crate::input::{Format, Snapshot, Split, SPLIT_BYTES};
    let objects = list(url)?;
    let total: u64 = objects.iter().map(|o| o.size).sum();
    let target = (total / (4 * workers.max(1) as u64)).clamp(1 << 20, SPLIT_BYTES);
    let mut splits = Vec::new();
    for o in objects {
        let o = Arc::new(o);
        let why = |e: io::Error| e.to_string();
        let mut header = None;
        let mut start = 0;
        if format == Format::Csv {
            let mut line = Vec::new();
            let end = o.line_start_at_or_after(1).map_err(why)?;
            o.read_range(0, end, &mut line).map_err(why)?;
            start = line.len() as u64;
            header = Some(Arc::new(line));
        }
        let mut cuts = vec![start];
        if format == Format::Json {
            let mut at = start + target;
            while at < o.size {
                let next = o.line_start_at_or_after(at).map_err(why)?;
                if next >= o.size {
                    break;
                }
                cuts.push(next);
                at = next + target;
            }
        }
        cuts.push(o.size);
        let display: Arc<str> = o.url().into();
        let planned =
            Snapshot { id: (0, crate::run::key_hash(&(&o.key, &o.e_tag))), len: o.size, modified: Some(o.modified) };
        let whole = matches!(format, Format::Parquet | Format::Arrow);
        for w in cuts.windows(2) {
            if w[1] > w[0] || (whole && o.size > 0) {
                splits.push(Split {
                    source,
                    path: Arc::new(std::path::PathBuf::from(&*display)),
                    display: display.clone(),
                    start: w[0],
                    end: w[1],
                    header: header.clone(),
                    planned,
                    object: Some(o.clone() as Arc<dyn crate::input::Remote>),
                });
            }
        }
    }
    Ok(splits)
}

/// The object that says which run writes a prefix.
const LOCK: &str = "_pipe_lock";
/// A live run refreshes its lock this often...
const LOCK_REFRESH: Duration = Duration::from_secs(60);
/// ... so one not refreshed for this long belongs to a run that died.
const LOCK_STALE: Duration = Duration::from_secs(180);

/// How many times a write of the lock that found the server down is tried again (pausing 0.1 s,
/// then twice as long each time: 6.3 s in all).
const LOCK_WRITE_RETRIES: u32 = 6;
/// A write of the lock that failed sooner than this could not be sent at all.
const LOCK_WRITE_AT_ONCE: Duration = Duration::from_secs(2);

/// Who holds a prefix's lock.
#[derive(Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct LockInfo {
    run: String,
    host: String,
    pid: u32,
    /// Which taking of the lock, within the process: two runs of one process (pipelines run
    /// inline in a program) are told apart by it. Locks written before it read as 0.
    #[serde(default)]
    take: u64,
}

/// The number of the next taking of a lock in this process (from 1).
static LOCK_TAKES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Whether process `pid` of this host has ended (only where `/proc` tells; elsewhere never).
fn process_gone(pid: u32) -> bool {
    Path::new("/proc/self").exists() && !Path::new(&format!("/proc/{pid}")).exists()
}

/// A prefix's lock, held until dropped: a thread refreshes it every [`LOCK_REFRESH`].
#[derive(Debug)]
pub struct PrefixLock {
    bucket: Arc<Bucket>,
    path: Key,
    stop: Arc<(Mutex<bool>, std::sync::Condvar)>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl PrefixLock {
    fn hold(bucket: Arc<Bucket>, path: Key, body: Vec<u8>, e_tag: Option<String>) -> PrefixLock {
        let stop = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let refresher = {
            let (bucket, path, stop) = (bucket.clone(), path.clone(), stop.clone());
            std::thread::Builder::new()
                .name("pipe-s3-lock".into())
                .spawn(move || {
                    let mut e_tag = e_tag;
                    let (flag, wake) = &*stop;
                    let mut stopped = flag.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    loop {
                        // Waits while not stopped: a stop that came before this thread first
                        // took the flag is seen at once, not a refresh interval later.
                        let (s, _) = wake
                            .wait_timeout_while(stopped, LOCK_REFRESH, |stop| !*stop)
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        stopped = s;
                        if *stopped {
                            return;
                        }
                        let version = UpdateVersion { e_tag: e_tag.clone(), version: None };
                        let body = PutPayload::from(body.clone());
                        let put =
                            block(async { bucket.store.put_opts(&path, body, PutMode::Update(version).into()).await });
                        if let Ok(Ok(r)) = put {
                            e_tag = r.e_tag;
                        }
                    }
                })
                .ok()
        };
        PrefixLock { bucket, path, stop, refresher }
    }
}

impl Drop for PrefixLock {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        wake.notify_all();
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        // Quickly: a lock left behind is taken over by the next run of its host at once.
        let (store, path) = (self.bucket.quick.clone(), self.path.clone());
        let _ = block(async move { store.delete(&path).await });
    }
}

/// Whether an object's name is a stream's part, `part-EPOCH-WORKER.EXT` (a batch run's are
/// `part-WORKER-rRUN.EXT`).
fn is_stream_part(name: &str) -> bool {
    let numbers = |p: Option<&str>| p.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    let stem = name.split('.').next().unwrap_or_default();
    let mut fields = stem.strip_prefix("part-").unwrap_or_default().split('-');
    numbers(fields.next()) && numbers(fields.next()) && fields.next().is_none()
}

/// An object-store sink: where its parts go and what this process uploaded.
#[derive(Debug)]
pub struct S3Sink {
    bucket: Arc<Bucket>,
    /// The sink's folder, without a trailing `/` (empty: the bucket's top).
    prefix: String,
    pub url: String,
    /// This process's run: in the names of the parts it uploads (batch).
    run: String,
}

/// This process's run, in the names of its parts: `r`, the time it started (µs, hex) and its
/// process id, so no two runs' parts share a name (and none is a stream's `part-EPOCH-WORKER`).
fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let micros = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
        format!("r{micros:x}{:05x}", std::process::id() & 0xfffff)
    })
}

/// One part a batch run uploaded, for the manifest.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Uploaded {
    pub sink: usize,
    pub key: String,
    pub bytes: u64,
}

impl S3Sink {
    /// Checks that the bucket answers (quickly: a server that is down is reported at once).
    pub fn open(url: &str) -> Result<S3Sink, String> {
        let (name, prefix) = split_url(url)?;
        let b = bucket(&name)?;
        let prefix = prefix.trim_end_matches('/').to_string();
        let probe = if prefix.is_empty() { None } else { Some(key_of(&prefix)?) };
        block(async { b.quick.list_with_delimiter(probe.as_ref()).await })?
            .map_err(|e| b.fail(&prefix, "cannot list", e))?;
        Ok(S3Sink { bucket: b, prefix, url: url.to_string(), run: run_id().to_string() })
    }

    fn key(&self, rel: &str) -> String {
        join(&self.prefix, rel)
    }

    /// Uploads `file` as `rel` (in parts when large), trying again after a failure.
    pub fn upload(&self, file: &Path, rel: &str) -> Result<u64, String> {
        let key = self.key(rel);
        let mut attempt = 0;
        loop {
            match self.upload_once(file, &key) {
                Ok(n) => return Ok(n),
                Err(e) if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    pause(attempt);
                    let _ = e;
                }
                Err(e) => return Err(self.bucket.fail(&key, "cannot upload", e)),
            }
        }
    }

    fn upload_once(&self, file: &Path, key: &str) -> Result<u64, String> {
        let size = std::fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?.len();
        let store = self.bucket.store.clone();
        let key = key_of(key)?;
        let part = part_bytes();
        if size <= part as u64 {
            let bytes = std::fs::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
            block(async { store.put(&key, PutPayload::from(bytes)).await })?.map_err(|e| e.to_string())?;
            return Ok(size);
        }
        let mut f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
        block(async {
            let upload = store.put_multipart(&key).await.map_err(|e| e.to_string())?;
            let mut w = WriteMultipart::new_with_chunk_size(upload, part);
            let mut chunk = vec![0u8; part];
            let result: Result<(), String> = async {
                loop {
                    let n = f.read(&mut chunk).map_err(|e| format!("{}: {e}", file.display()))?;
                    if n == 0 {
                        return Ok(());
                    }
                    w.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| e.to_string())?;
                    w.write(&chunk[..n]);
                }
            }
            .await;
            // Every part in, then the upload completed; a failed part aborts the upload (S3 keeps
            // the parts of an upload neither completed nor aborted, and bills them).
            let result = match result {
                Ok(()) => w.wait_for_capacity(0).await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => w.finish().await.map(|_| size).map_err(|e| e.to_string()),
                Err(e) => {
                    let _ = w.abort().await;
                    Err(e)
                }
            }
        })?
    }

    /// Uploads every file under `dir` whose name `keep` takes to the same relative place under
    /// the sink's prefix, its name passed through `rename`, and removes the local file.
    pub fn upload_dir(
        &self,
        dir: &Path,
        keep: &dyn Fn(&str) -> bool,
        rename: &dyn Fn(&str) -> String,
    ) -> Result<Vec<Part>, String> {
        let mut done = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if !e.file_name().to_str().is_some_and(keep) {
                    continue;
                }
                let Ok(rel) = path.strip_prefix(dir) else { continue };
                let rel = rel.to_string_lossy().replace('\\', "/");
                let rel = match rel.rsplit_once('/') {
                    Some((folder, name)) => format!("{folder}/{}", rename(name)),
                    None => rename(&rel),
                };
                let bytes = match self.upload(&path, &rel) {
                    Ok(n) => n,
                    Err(e) => {
                        // What this call uploaded goes too: no manifest will name it.
                        self.forget(&done);
                        return Err(e);
                    }
                };
                std::fs::remove_file(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                done.push(Part { key: rel, bytes });
            }
        }
        done.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(done)
    }

    /// The name a batch part `part-WORKER.EXT` is uploaded under: `part-WORKER-RUN.EXT`.
    pub fn batch_name(&self, name: &str) -> String {
        match name.split_once('.') {
            Some((stem, ext)) => format!("{stem}-{}.{ext}", self.run),
            None => format!("{name}-{}", self.run),
        }
    }

    fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<(), String> {
        let key = self.key(rel);
        let mut attempt = 0;
        loop {
            let store = self.bucket.store.clone();
            let k = key_of(&key)?;
            let payload = PutPayload::from(bytes.clone());
            match block(async { store.put(&k, payload).await })? {
                Ok(_) => return Ok(()),
                Err(e) if attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    pause(attempt);
                    let _ = e;
                }
                Err(e) => return Err(self.bucket.fail(&key, "cannot write", e)),
            }
        }
    }

    /// Commits a batch run: the summary, then the manifest naming `parts` (written last: from
    /// then on readers see this run), then deletes the parts of runs before the previous one.
    pub fn commit(&self, parts: &[Part], content: &str, summary: &[u8]) -> Result<(), String> {
        let previous = read_manifest(&self.bucket, self.bucket.store.as_ref(), &self.prefix)?.unwrap_or_default();
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            run: self.run.clone(),
            content: content.into(),
            parts: parts.to_vec(),
        };
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| e.to_string())?;
        self.put(MANIFEST, text)?;
        self.put("_pipe_summary.json", summary.to_vec())?;
        // Best effort: a part left behind is never read (no manifest names it).
        let keep: std::collections::HashSet<String> =
            parts.iter().chain(&previous.parts).map(|p| self.key(&p.key)).collect();
        let stale: Vec<String> =
            self.parts(false).unwrap_or_default().into_iter().filter(|k| !keep.contains(k)).collect();
        let _ = self.delete(&stale);
        Ok(())
    }

    /// Deletes objects by key (one already gone is no error); every key is tried, the first
    /// failure is returned.
    pub fn delete(&self, keys: &[String]) -> Result<(), String> {
        let store = self.bucket.store.clone();
        let mut failure = None;
        for k in keys {
            let path = key_of(k)?;
            match block(async { store.delete(&path).await })? {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    failure.get_or_insert_with(|| self.bucket.fail(k, "cannot delete", e));
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Deletes the parts this process uploaded for a run that failed.
    pub fn forget(&self, parts: &[Part]) {
        // Best effort: a part left behind is never read (no manifest names it) and the next
        // commit deletes it.
        let _ = self.delete(&parts.iter().map(|p| self.key(&p.key)).collect::<Vec<_>>());
    }

    /// The keys of the parts streams published under the prefix (`part-EPOCH-WORKER.EXT`).
    pub fn published_parts(&self) -> Result<Vec<String>, String> {
        self.parts(true)
    }

    /// The keys of the parts under the prefix: every object named `part-…`, or only a stream's.
    fn parts(&self, streams_only: bool) -> Result<Vec<String>, String> {
        let store = self.bucket.store.clone();
        let prefix = if self.prefix.is_empty() { None } else { Some(key_of(&self.prefix)?) };
        let listed: Vec<ObjectMeta> = block(async { store.list(prefix.as_ref()).try_collect().await })?
            .map_err(|e| self.bucket.fail(&self.prefix, "cannot list", e))?;
        let mut keys: Vec<String> = listed
            .into_iter()
            .filter(|m| {
                m.location.filename().is_some_and(|f| f.starts_with("part-") && (!streams_only || is_stream_part(f)))
            })
            .map(|m| m.location.as_ref().to_string())
            .collect();
        keys.sort();
        Ok(keys)
    }

    /// Takes the prefix's lock for this run (the leading process, batch or stream): one run at a
    /// time writes a prefix, as the file sinks' directory lock ensures for folders. The lock is
    /// an object created only if absent (`If-None-Match: *`), naming the run, its host and its
    /// process, refreshed every minute while the run lives and deleted when it ends. A lock of a
    /// process of this host that is gone, or one not refreshed for three minutes, is taken over
    /// (a conditional replace on its ETag, so two takers cannot both win).
    pub fn lock(&self) -> Result<PrefixLock, String> {
        let take = LOCK_TAKES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock_as(LockInfo { run: self.run.clone(), host: host_name(), pid: std::process::id(), take })
    }

    /// [`S3Sink::lock`], naming the holder `me`.
    fn lock_as(&self, me: LockInfo) -> Result<PrefixLock, String> {
        let key = self.key(LOCK);
        let path = key_of(&key)?;
        let body = serde_json::to_vec(&me).map_err(|e| e.to_string())?;
        let store = self.bucket.store.clone();
        // The client does not retry a conditional write whose request could not be sent (the
        // server down or restarting: it cannot know whether the write landed). Such a write,
        // one that failed at once, is tried again here after a pause, and the lock read back
        // says whether the earlier one had landed. One that failed after a while (a timeout, a
        // server that answered with an error) is not.
        let mut unanswered = 0u32;
        let mut retry = |e: object_store::Error, took: Duration, what: &str| -> Result<(), String> {
            let at_once = took < LOCK_WRITE_AT_ONCE;
            if !matches!(e, object_store::Error::Generic { .. }) || !at_once || unanswered >= LOCK_WRITE_RETRIES {
                return Err(self.bucket.fail(&key, what, e));
            }
            std::thread::sleep(Duration::from_millis(100 << unanswered));
            unanswered += 1;
            Ok(())
        };
        let mut attempts = 0;
        while attempts < 5 {
            let create = PutPayload::from(body.clone());
            let sent = std::time::Instant::now();
            match block(async { store.put_opts(&path, create, PutMode::Create.into()).await })? {
                Ok(r) => return Ok(PrefixLock::hold(self.bucket.clone(), path, body, r.e_tag)),
                Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {}
                Err(e) => {
                    retry(e, sent.elapsed(), "cannot take the lock")?;
                    continue;
                }
            }
            attempts += 1;
            let held = block(async {
                let r = store.get(&path).await?;
                let meta = r.meta.clone();
                r.bytes().await.map(|b| (meta, b))
            })?;
            let (meta, bytes) = match held {
                Ok(h) => h,
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(self.bucket.fail(&key, "cannot read the lock", e)),
            };
            let holder: Option<LockInfo> = serde_json::from_slice(&bytes).ok();
            if holder.as_ref() == Some(&me) {
                // Our own create, retried after the server took it but its answer was lost
                // (a restart mid-request): the lock is this taking's already.
                return Ok(PrefixLock::hold(self.bucket.clone(), path, body, meta.e_tag));
            }
            let refreshed = std::time::SystemTime::from(meta.last_modified);
            let age = std::time::SystemTime::now().duration_since(refreshed).unwrap_or_default();
            let gone = holder.as_ref().is_some_and(|h| h.host == me.host && process_gone(h.pid));
            if !gone && age < LOCK_STALE {
                let who = holder.map_or_else(
                    || "another writer".to_string(),
                    |h| format!("run {} (process {} on {})", h.run, h.pid, h.host),
                );
                return Err(format!(
                    "`{}` is being written by {who}, its lock refreshed {}s ago: one run at a time per prefix \
                     (a dead run's lock is taken over {}s after its last refresh, or at once from its host)",
                    self.url,
                    age.as_secs(),
                    LOCK_STALE.as_secs()
                ));
            }
            // Taken over only if it is still the lock just read.
            let version = UpdateVersion { e_tag: meta.e_tag.clone(), version: meta.version.clone() };
            let take = PutPayload::from(body.clone());
            let sent = std::time::Instant::now();
            match block(async { store.put_opts(&path, take, PutMode::Update(version).into()).await })? {
                Ok(r) => return Ok(PrefixLock::hold(self.bucket.clone(), path, body, r.e_tag)),
                Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => {}
                Err(e) => {
                    retry(e, sent.elapsed(), "cannot take over the lock")?;
                    // Not a change of hands: the lock is read again (ours, if the write landed).
                    attempts -= 1;
                }
            }
        }
        Err(format!("`{}`: the lock changed hands five times while this run tried to take it", self.url))
    }

    /// A stream adds its parts as it goes and writes no manifest: refused on a prefix a batch
    /// run committed (its manifest would hide the stream's parts from readers).
    pub fn refuse_manifest(&self) -> Result<(), String> {
        match read_manifest(&self.bucket, self.bucket.store.as_ref(), &self.prefix)? {
            Some(_) => Err(format!(
                "`{}` holds a batch run's output (its `{MANIFEST}`), which readers would keep reading instead of the stream's: \
                 write the stream to another prefix",
                self.url
            )),
            None => Ok(()),
        }
    }

    /// Writes `_pipe_summary.json` (the end of a stream).
    pub fn write_summary(&self, summary: &[u8]) -> Result<(), String> {
        self.put("_pipe_summary.json", summary.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_a_bucket_and_a_key_with_or_without_the_scheme() {
        assert_eq!(split_url("s3://archive/loans/*.jsonl"), Ok(("archive".into(), "loans/*.jsonl".into())));
        assert_eq!(split_url("archive/loans"), Ok(("archive".into(), "loans".into())));
        assert_eq!(split_url("s3://archive"), Ok(("archive".into(), String::new())));
        assert!(split_url("s3:///loans").is_err_and(|e| e.contains("names no bucket")));
        assert_eq!(crate::connectors::s3_url("archive/loans"), "s3://archive/loans");
        assert_eq!(crate::connectors::s3_url("s3://archive/loans"), "s3://archive/loans");
    }

    #[test]
    fn requests_run_from_inside_another_runtime_too() {
        let outer = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        assert_eq!(outer.block_on(async { block(async { 7 }) }), Ok(7));
        assert_eq!(block(async { 8 }), Ok(8));
    }

    #[test]
    fn a_lock_naming_this_run_is_its_own_and_a_live_runs_is_refused() {
        let store = Arc::new(object_store::memory::InMemory::new());
        let sink = |run: &str| S3Sink {
            bucket: Arc::new(Bucket {
                store: store.clone(),
                quick: store.clone(),
                name: "b".into(),
                endpoint: "memory".into(),
            }),
            prefix: "out".into(),
            url: "s3://b/out".into(),
            run: run.into(),
        };
        // What a create leaves when the server took it but its answer was lost and the retry
        // found the object: a lock naming this very taking of it.
        let mine = || LockInfo { run: "r1".into(), host: host_name(), pid: std::process::id(), take: 0 };
        let path = key_of("out/_pipe_lock").expect("key");
        let body = PutPayload::from(serde_json::to_vec(&mine()).expect("json"));
        block(async { store.put(&path, body).await }).expect("block").expect("put");
        let held = sink("r1").lock_as(mine()).expect("the lock is this taking's");
        // Another taking in the same process — a second pipeline run inline on the same prefix —
        // is refused like any other run's.
        let err = sink("r1").lock().expect_err("held by the first taking");
        assert!(err.contains("is being written by run r1"), "{err}");
        let err = sink("r2").lock().expect_err("held by a live run");
        assert!(err.contains("is being written by run r1"), "{err}");
        drop(held);
        drop(sink("r2").lock().expect("released when its holder ends"));
    }

    #[test]
    fn batch_parts_are_never_taken_for_a_streams() {
        let run = run_id();
        assert!(run.starts_with('r') && run.len() > 10, "{run}");
        let sink = |prefix: &str| S3Sink {
            bucket: Arc::new(Bucket {
                store: Arc::new(object_store::memory::InMemory::new()),
                quick: Arc::new(object_store::memory::InMemory::new()),
                name: "b".into(),
                endpoint: "memory".into(),
            }),
            prefix: prefix.into(),
            url: format!("s3://b/{prefix}"),
            run: run.to_string(),
        };
        let batch = sink("out").batch_name("part-00003.parquet");
        assert_eq!(batch, format!("part-00003-{run}.parquet"));
        assert!(!is_stream_part(&batch));
        assert!(is_stream_part("part-00012-00001.jsonl"));
        assert!(!is_stream_part("part-00012.jsonl") && !is_stream_part("_SUCCESS"));
        assert_eq!(sink("").key("a/b"), "a/b");
        assert_eq!(sink("out/").key("a"), "out/a");
    }
}
