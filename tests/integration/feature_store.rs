//! The feature store: PostgreSQL sources and sinks and Redis sinks against real servers
//! (Debian's PostgreSQL 15 and Redis, started here on 127.0.0.1 with throwaway data): the
//! Lending Club loans loaded into a table and replaced in one transaction by every run;
//! features read back from it in page ranges at several worker counts equal those computed from
//! the CSV file, upserted by key, and the latest month of each state in Redis, never
//! overwritten by an older one; a stream killed at random, restarted, and whose connections
//! both servers kill, appends each window's row exactly once and leaves Redis as a backfill
//! does; bad tables and unreachable servers are clear errors that leave the tables as they were.
//!
//! The servers' programs are PostgreSQL's `initdb` and `pg_ctl` (under
//! `/usr/lib/postgresql/*/bin` or on the PATH) and `redis-server`; `.ci/run` installs them.
//! Without them these tests say why and pass, unless `PIPE_REQUIRE_POSTGRES` is set (as
//! `.ci/run` sets it).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pipe_tests::{build_pipeline, scratch};

const KEY: &str = "integration-test-key-0123456789";

/// The folder on the PATH that holds `program`.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join(program).is_file())
}

/// `found`, or (when it is `None`) the reason printed, and a failure under
/// `PIPE_REQUIRE_POSTGRES` (which `.ci/run` sets).
fn required(found: Option<PathBuf>, what: &str, install: &str) -> Option<PathBuf> {
    if found.is_none() {
        assert!(
            std::env::var_os("PIPE_REQUIRE_POSTGRES").is_none(),
            "PIPE_REQUIRE_POSTGRES is set but {what} is not installed"
        );
        #[allow(clippy::print_stderr, reason = "why the test did nothing")]
        {
            eprintln!("skipped: no {what} here ({install})");
        }
    }
    found
}

/// The directory of PostgreSQL's server programs (the newest under `/usr/lib/postgresql`, else
/// the PATH's).
fn server_bin() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort();
    required(found.pop().or_else(|| on_path("initdb")), "PostgreSQL server", "apt-get install postgresql")
}

/// `redis-server`.
fn redis_bin() -> Option<PathBuf> {
    let bin = on_path("redis-server").map(|d| d.join("redis-server"));
    required(bin, "Redis server", "apt-get install redis-server")
}

/// A Redis server on a free port of 127.0.0.1, without persistence, stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start(bin: &Path) -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let child = Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "redis-server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    fn client(&self, db: u8) -> redis::Connection {
        redis::Client::open(self.url(db)).and_then(|c| c.get_connection()).expect("connect to the test Redis")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every hash under `pattern`, each as its key and its sorted fields.
fn hashes(c: &mut redis::Connection, pattern: &str) -> std::collections::BTreeMap<String, Vec<(String, String)>> {
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(c).expect("KEYS");
    keys.into_iter()
        .map(|k| {
            let mut fields: Vec<(String, String)> = redis::cmd("HGETALL").arg(&k).query(c).expect("HGETALL");
            fields.sort();
            (k, fields)
        })
        .collect()
}

/// A PostgreSQL cluster on a free port of 127.0.0.1 (trust authentication), stopped and removed
/// when dropped. As root, its programs run as the `postgres` user, which PostgreSQL requires.
struct Server {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

/// Whether the tests run as root (PostgreSQL's programs then run as `postgres`).
fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn as_server_user(bin: &Path, program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

impl Server {
    fn start(bin: PathBuf, name: &str) -> Server {
        let dir = std::env::temp_dir().join(format!("pipe-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("server dir");
        if is_root() {
            let ok = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status().expect("chown");
            assert!(ok.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let data = dir.join("data");
        let out = as_server_user(&bin, "initdb")
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "-D"])
            .arg(&data)
            .current_dir(&dir)
            .output()
            .expect("initdb");
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let server = Server { bin, dir, port };
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", server.dir.display());
        let out = as_server_user(&server.bin, "pg_ctl")
            .args(["-w", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(server.dir.join("log"))
            .args(["-o", &options, "start"])
            .current_dir(&server.dir)
            .output()
            .expect("pg_ctl start");
        assert!(out.status.success(), "pg_ctl start: {}", String::from_utf8_lossy(&out.stderr));
        server
    }

    /// The URL of database `db` (with a password the server ignores, to see it is not printed).
    fn url(&self, db: &str) -> String {
        format!("postgresql://postgres:s3cret-pw@127.0.0.1:{}/{db}", self.port)
    }

    fn client(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(&self.url(db), postgres::NoTls).expect("connect to the test server")
    }

    fn create_db(&self, db: &str) {
        self.client("postgres").batch_execute(&format!("CREATE DATABASE {db}")).expect("create database");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = as_server_user(&self.bin, "pg_ctl")
            .args(["-D"])
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .current_dir(&self.dir)
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where a run's stores are: PostgreSQL's URL and Redis's (unused by pipelines without Redis).
type Stores<'a> = (&'a str, &'a str);

fn run(bin: &Path, args: &[&str], (url, redis): Stores<'_>) -> std::process::Output {
    Command::new(bin)
        .args(args)
        .env("PIPE_HMAC_KEY", KEY)
        .env("DATABASE_URL", url)
        .env("REDIS_URL", redis)
        .output()
        .expect("run the pipeline")
}

fn run_ok(bin: &Path, args: &[&str], stores: Stores<'_>) {
    let out = run(bin, args, stores);
    assert!(out.status.success(), "{} {args:?} failed:\n{}", bin.display(), String::from_utf8_lossy(&out.stderr));
}

/// Every row of a query, each as its columns' text joined by `|` (nulls as `∅`), sorted.
fn table(c: &mut postgres::Client, sql: &str) -> Vec<String> {
    let text = c.simple_query(sql).expect("query");
    let mut rows: Vec<String> = text
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).unwrap_or("∅").to_string()).collect::<Vec<_>>().join("|"))
            }
            _ => None,
        })
        .collect();
    rows.sort();
    rows
}

fn count(c: &mut postgres::Client, table: &str) -> i64 {
    c.query_one(&format!("SELECT count(*) FROM {table}"), &[]).expect("count").get(0)
}

#[test]
fn loans_loaded_into_postgres_and_read_back_in_ranges_give_the_features_of_the_csv() {
    let (Some(pg), Some(redis)) = (server_bin(), redis_bin()) else { return };
    let server = Server::start(pg, "tables");
    let redis = Redis::start(&redis);
    let (url, redis_url) = (server.url("postgres"), redis.url(0));
    let stores = (url.as_str(), redis_url.as_str());
    let mut c = server.client("postgres");
    let dir = scratch("postgres_tables");
    let load = build_pipeline(Path::new("examples/feature_store/load.pipe"));
    let features = build_pipeline(Path::new("examples/feature_store/features.pipe"));

    // Loaded (the table created from the rows' schema), then loaded again: replaced, not doubled.
    let rejected = dir.join("rejected_load").display().to_string();
    let load_args = ["--quiet", "--workers", "2", "--sink", &format!("rejected->files={rejected}")];
    run_ok(&load, &load_args, stores);
    assert_eq!(count(&mut c, "loans"), 10_000);
    let columns = table(
        &mut c,
        "SELECT column_name || ' ' || data_type || ' ' || is_nullable FROM information_schema.columns WHERE table_name = 'loans'",
    );
    assert!(columns.contains(&"issued timestamp with time zone NO".to_string()), "{columns:?}");
    assert!(columns.contains(&"annual_income double precision YES".to_string()), "{columns:?}");
    let first = table(&mut c, "SELECT * FROM loans WHERE loan_id IN (1, 2)");
    assert_eq!(
        first,
        [
            "1|NJ|C|28000|14.07|90000|2018-03-01 00:00:00+00|Current",
            "2|HI|C|5000|12.61|40000|2018-02-01 00:00:00+00|Current"
        ]
    );
    run_ok(&load, &load_args, stores);
    assert_eq!(count(&mut c, "loans"), 10_000, "a second `replace` run replaces the rows");

    // The reference: the point-in-time example's feature pipeline over the CSV file.
    let csv = build_pipeline(Path::new("examples/point_in_time/features.pipe"));
    let reference = dir.join("reference");
    run_ok(
        &csv,
        &[
            "--quiet",
            "--sink",
            &format!("monthly->files={}", reference.display()),
            "--sink",
            &format!("rejected->files={}", dir.join("r0").display()),
        ],
        stores,
    );
    let want = pipe_tests::sink_rows(&reference);
    assert_eq!(want.len(), 129);

    // Read from the table in page ranges, at 1 and 3 workers: the same rows, in the files sink
    // and in the upserted table (keyed by state and window, so a second run changes nothing).
    for workers in ["1", "3"] {
        let out = dir.join(format!("w{workers}"));
        let args = [
            "--quiet",
            "--workers",
            workers,
            "--sink",
            &format!("monthly->files={}", out.join("features").display()),
            "--sink",
            &format!("rejected->files={}", out.join("rejected").display()),
        ];
        run_ok(&features, &args, stores);
        assert_eq!(pipe_tests::sink_rows(&out.join("features")), want, "{workers} workers");
        assert_eq!(count(&mut c, "state_features"), 129);
    }
    // The raw history archived from the table to an object store as Parquet, and the features
    // computed back from the archive: the CSV file's.
    if let Some(s3) = super::object_store::server_bin() {
        let s3 = super::object_store::Server::start(s3, &dir.join("s3"));
        let archive = build_pipeline(Path::new("examples/feature_store/archive.pipe"));
        let from_archive = build_pipeline(Path::new("examples/object_store/features.pipe"));
        let archived = super::object_store::command(
            &archive,
            &["--quiet", "--workers", "2", "--sink", &format!("rejected->files={}", dir.join("r3").display())],
            &s3.endpoint(),
        )
        .env("DATABASE_URL", &url)
        .output()
        .expect("archive");
        assert!(archived.status.success(), "{}", String::from_utf8_lossy(&archived.stderr));
        let grades: std::collections::BTreeSet<String> =
            s3.manifest("history").iter().filter_map(|(k, _)| k.split('/').next().map(String::from)).collect();
        assert_eq!(grades.len(), 7, "a folder per grade: {grades:?}");
        let out = dir.join("from_archive");
        let read = super::object_store::command(
            &from_archive,
            &[
                "--quiet",
                "--source",
                "loans=s3://pipe-archive/history/**/*.parquet",
                "--sink",
                &format!("monthly->files={}", out.join("features").display()),
                "--sink",
                &format!("rejected->files={}", out.join("rejected").display()),
            ],
            &s3.endpoint(),
        )
        .output()
        .expect("read the archive");
        assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
        assert_eq!(pipe_tests::sink_rows(&out.join("features")), want, "features from the archive");
    }
    let mut from_json: Vec<String> = want
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r).expect("JSON");
            format!(
                "{}|{}|{}",
                v["state"].as_str().unwrap_or(""),
                &v["window_start"].as_str().unwrap_or("")[..10],
                v["loans"]
            )
        })
        .collect();
    from_json.sort();
    let in_table = table(
        &mut c,
        "SELECT state, to_char(window_start AT TIME ZONE 'UTC', 'YYYY-MM-DD'), loans FROM state_features",
    );
    assert_eq!(in_table, from_json, "the upserted table holds the features");
    let pk = table(&mut c, "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'state_features'::regclass AND i.indisprimary");
    assert_eq!(pk, ["state", "window_start"], "the key is the created table's primary key");

    // Redis holds each state's latest month: the row with the greatest window end.
    let mut latest: std::collections::BTreeMap<String, serde_json::Value> = std::collections::BTreeMap::new();
    for r in &want {
        let v: serde_json::Value = serde_json::from_str(r).expect("JSON");
        let state = v["state"].as_str().unwrap_or_default().to_string();
        if latest.get(&state).is_none_or(|held| held["window_end"].as_str() < v["window_end"].as_str()) {
            latest.insert(state, v);
        }
    }
    let mut rc = redis.client(0);
    let held = hashes(&mut rc, "state:*");
    assert_eq!(held.len(), latest.len(), "one hash per state");
    for (state, row) in &latest {
        let fields = &held[&format!("state:{state}")];
        let get = |f: &str| fields.iter().find(|(k, _)| k == f).map(|(_, v)| v.as_str());
        assert_eq!(get("window_end"), row["window_end"].as_str(), "{state}");
        assert_eq!(get("loans"), Some(row["loans"].to_string().as_str()), "{state}");
        // Averages merged from several workers' partial sums may differ in the last bit.
        let rate: f64 = get("avg_rate").and_then(|r| r.parse().ok()).unwrap_or(f64::NAN);
        let want_rate = row["avg_rate"].as_f64().unwrap_or_default();
        assert!((rate - want_rate).abs() <= 1e-12 * want_rate.abs(), "{state}: {rate} vs {want_rate}");
        let ttl: i64 = redis::cmd("PTTL").arg(format!("state:{state}")).query(&mut rc).expect("PTTL");
        assert!(ttl > 29 * 86_400_000 && ttl <= 30 * 86_400_000, "the TTL is refreshed to 30 days: {ttl}");
    }
    // A hash holding a newer version is never overwritten by an older window; the others are
    // written again as they were.
    let _: () = redis::cmd("HSET")
        .arg("state:CA")
        .arg("_pipe_version")
        .arg(i64::MAX / 2)
        .arg("loans")
        .arg("newer")
        .query(&mut rc)
        .expect("HSET");
    let out = dir.join("again");
    run_ok(
        &features,
        &[
            "--quiet",
            "--sink",
            &format!("monthly->files={}", out.join("f").display()),
            "--sink",
            &format!("rejected->files={}", out.join("r").display()),
        ],
        stores,
    );
    let again = hashes(&mut rc, "state:*");
    let newer = again["state:CA"].iter().find(|(k, _)| k == "loans").map(|(_, v)| v.as_str());
    assert_eq!(newer, Some("newer"), "an older window overwrote a newer one");
    for (k, v) in &held {
        if k != "state:CA" {
            assert_eq!(&again[k], v, "{k}");
        }
    }

    // A null in a required field: that row is rejected, with the field's name, the rest goes on.
    c.batch_execute("ALTER TABLE loans ALTER grade DROP NOT NULL; UPDATE loans SET grade = NULL WHERE loan_id = 7")
        .expect("null grade");
    let out = dir.join("null");
    run_ok(
        &features,
        &[
            "--quiet",
            "--workers",
            "2",
            "--sink",
            &format!("monthly->files={}", out.join("f").display()),
            "--sink",
            &format!("rejected->files={}", out.join("rejected").display()),
        ],
        stores,
    );
    let rejected = pipe_tests::sink_rows(&out.join("rejected"));
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    let r: serde_json::Value = serde_json::from_str(&rejected[0]).expect("JSON");
    assert!(r["reason"].as_str().is_some_and(|m| m.contains("field `grade`")), "the reason names the field: {r}");
    assert!(r["raw"].as_str().is_some_and(|m| m.contains("\"loan_id\":7")), "the row is kept, as JSON: {r}");
    let at = r["position"].as_str().unwrap_or_default();
    // `loans pages A..B@N`: the range (the table is read in several) and the row's number in it.
    let (range, n) = at.rsplit_once('@').unwrap_or_default();
    assert!(range.starts_with("loans pages ") && n.parse::<u64>().is_ok(), "the range and the row's number: {r}");

    // Redis down: the URL is named without its password, and nothing is written anywhere.
    let before = table(&mut c, "SELECT * FROM state_features");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let out = run(
        &features,
        &["--quiet", "--sink", &format!("monthly->files={}", dir.join("down").display())],
        (&url, &format!("redis://:s3cret-pw@127.0.0.1:{closed}/0")),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot connect to Redis at `redis://:***@127.0.0.1:{closed}/0`")), "{err}");
    assert!(!err.contains("s3cret-pw"), "the password is printed: {err}");
    assert_eq!(table(&mut c, "SELECT * FROM state_features"), before, "the table changed");
    // The table as the run with the null grade upserted it (one loan fewer in one state).
    training_from_the_table(&dir, &dir.join("null").join("f"), stores, &mut c);
}

/// The point-in-time training set with its features read from the table `state_features` (an
/// as-of join with a PostgreSQL table): the same rows as with the features read from files, in a
/// backfill at 1 and 3 workers and in a stream; then, while the stream runs, an upsert into the
/// table reaches the loans that arrive after the next `refresh`.
fn training_from_the_table(dir: &Path, features: &Path, stores: Stores<'_>, c: &mut postgres::Client) {
    let from_files = build_pipeline(Path::new("examples/point_in_time/training.pipe"));
    let from_table = build_pipeline(Path::new("examples/feature_store/training.pipe"));
    let sinks = |out: &Path| {
        [
            "--sink".to_string(),
            format!("training->files={}", out.join("training").display()),
            "--sink".to_string(),
            format!("rejected->files={}", out.join("rejected").display()),
        ]
    };
    let out = dir.join("training_files");
    let mut args =
        vec!["--quiet".to_string(), "--source".into(), format!("state_features={}/*.jsonl", features.display())];
    args.extend(sinks(&out));
    run_ok(&from_files, &args.iter().map(String::as_str).collect::<Vec<_>>(), stores);
    let want = pipe_tests::sink_rows(&out.join("training"));
    assert_eq!(want.len(), 10_000);
    let alone = want.iter().filter(|r| r.contains("\"state_loans\":null")).count();
    assert!(alone > 0 && alone < 5_000, "January's loans meet no features, most others do: {alone}");
    for workers in ["1", "3"] {
        let out = dir.join(format!("training_pg{workers}"));
        let mut args = vec!["--quiet".to_string(), "--workers".into(), workers.into()];
        args.extend(sinks(&out));
        run_ok(&from_table, &args.iter().map(String::as_str).collect::<Vec<_>>(), stores);
        assert_eq!(pipe_tests::sink_rows(&out.join("training")), want, "features from PostgreSQL, {workers} workers");
        assert!(pipe_tests::sink_rows(&out.join("rejected")).is_empty());
    }

    // A stream following new loan files: the table is read at the start and again every 2 s.
    let live = dir.join("training_live");
    std::fs::create_dir_all(&live).expect("live dir");
    let csv = std::fs::read_to_string(pipe_tests::repo_root().join("examples/point_in_time/data/loans.csv"))
        .expect("loans.csv");
    let mut lines = csv.lines();
    let header = lines.next().expect("header");
    let ca: Vec<&str> = lines.filter(|l| l.contains(",CA,") && l.contains("2018-03-01")).take(1).collect();
    assert_eq!(ca.len(), 1, "a California loan of March 2018");
    let out = dir.join("training_stream");
    let mut args: Vec<String> = [
        "--mode",
        "stream",
        "--quiet",
        "--poll-interval",
        "50ms",
        "--checkpoint-interval",
        "100ms",
        "--exit-when-idle",
        "8s",
    ]
    .map(String::from)
    .to_vec();
    args.extend(["--source".to_string(), format!("loans={}/*.csv", live.display())]);
    args.extend(sinks(&out));
    let child = Command::new(&from_table)
        .args(&args)
        .env("DATABASE_URL", stores.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the stream");
    // (loan id, the state's loan count it met) of the rows written so far.
    let met = |n: i64| -> Option<i64> {
        pipe_tests::sink_rows(&out.join("training")).iter().find_map(|r| {
            let v: serde_json::Value = serde_json::from_str(r).expect("JSON");
            (v["loan_id"].as_i64() == Some(n)).then(|| v["state_loans"].as_i64().unwrap_or(-2))
        })
    };
    // One copy of the loan per file, with a new id, until `done` holds of the rows.
    let mut next = 1_000_000i64;
    let mut send_until = |done: &dyn Fn(i64) -> bool| -> i64 {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let id = next;
            next += 1;
            let (_, rest) = ca[0].split_once(',').expect("a loan line");
            std::fs::write(live.join(format!("loans-{id}.csv")), format!("{header}\n{id},{rest}\n")).expect("write");
            let wait = Instant::now() + Duration::from_secs(5);
            while met(id).is_none() && Instant::now() < wait {
                std::thread::sleep(Duration::from_millis(100));
            }
            if done(id) {
                return id;
            }
            assert!(Instant::now() < deadline, "the stream did not get there");
        }
    };
    let first = send_until(&|id| met(id).is_some());
    let before = met(first).expect("a row");
    assert!(before > 0, "the loan met February's California features: {before}");
    c.batch_execute("UPDATE state_features SET loans = 424242 WHERE state = 'CA'").expect("upsert");
    send_until(&|id| met(id) == Some(424_242));
    let res = child.wait_with_output().expect("wait");
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    // Every loan once; those before the update met the old figures, from one loan on the new.
    let rows: Vec<i64> = (1_000_000..next).map(|id| met(id).expect("every loan has its row")).collect();
    let switch = rows.iter().position(|n| *n == 424_242).expect("the new figures");
    assert!(rows[..switch].iter().all(|n| *n == before) && rows[switch..].iter().all(|n| *n == 424_242), "{rows:?}");
    assert_eq!(pipe_tests::sink_rows(&out.join("training")).len(), rows.len());
}

#[test]
fn postgres_errors_name_the_problem_and_leave_the_tables_as_they_were() {
    let (Some(pg), Some(redis)) = (server_bin(), redis_bin()) else { return };
    let server = Server::start(pg, "errors");
    let redis = Redis::start(&redis);
    let redis_url = redis.url(0);
    let features = build_pipeline(Path::new("examples/feature_store/features.pipe"));
    let dir = scratch("postgres_errors");
    let sinks = |d: &Path| {
        vec![
            "--quiet".to_string(),
            "--sink".into(),
            format!("monthly->files={}", d.join("f").display()),
            "--sink".into(),
            format!("rejected->files={}", d.join("r").display()),
        ]
    };
    let args = sinks(&dir);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // Nobody listens: the URL is named, its password is not. (The source's URL given with
    // `--source`, the sinks' from the environment; then both from the environment.)
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let down = format!("postgresql://postgres:s3cret-pw@127.0.0.1:{closed}/postgres");
    let source = format!("loans={down}");
    let mut with_source = args.clone();
    with_source.extend(["--source", source.as_str()]);
    let out = run(&features, &with_source, (&server.url("postgres"), &redis_url));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let named = format!(
        "source `loans`: cannot connect to PostgreSQL at `postgresql://postgres:***@127.0.0.1:{closed}/postgres`"
    );
    assert!(err.contains(&named), "{err}");
    assert!(!err.contains("s3cret-pw"), "the password is printed: {err}");
    let out = run(&features, &args, (&down, &redis_url));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("postgresql://postgres:***@127.0.0.1:{closed}/postgres")), "{err}");
    assert!(!err.contains("s3cret-pw"), "the password is printed: {err}");

    // A column the schema's field cannot take: refused before any row is read, naming both.
    server.create_db("wrong");
    let mut c = server.client("wrong");
    c.batch_execute(
        "CREATE TABLE loans (loan_id bigint, state text, grade text, loan_amount text, interest_rate float8, \
         annual_income float8, issued timestamptz, loan_status text); \
         INSERT INTO loans VALUES (1, 'NJ', 'C', 'lots', 14.07, 90000, '2018-03-01', 'Current'); \
         CREATE TABLE state_features (state text PRIMARY KEY, window_start timestamptz, window_end timestamptz, \
         loans bigint, avg_rate float8, avg_income float8); \
         INSERT INTO state_features (state, loans) VALUES ('kept', 1)",
    )
    .expect("tables");
    let out = run(&features, &args, (&server.url("wrong"), &redis_url));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("column `loan_amount`") && err.contains("`text`"), "{err}");
    // The sink's table is checked too: its primary key is not the sink's key.
    c.batch_execute("ALTER TABLE loans ALTER loan_amount TYPE bigint USING 5000").expect("fix the column");
    let out = run(&features, &args, (&server.url("wrong"), &redis_url));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unique index or primary key on (state, window_start)"), "{err}");
    assert_eq!(table(&mut c, "SELECT state, loans FROM state_features"), ["kept|1"], "the table is as it was");

    // A table without a field's column.
    c.batch_execute("DROP TABLE state_features; ALTER TABLE loans DROP COLUMN grade").expect("drop");
    let out = run(&features, &args, (&server.url("wrong"), &redis_url));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("has no column `grade`"), "{err}");
}

fn start(bin: &Path, args: &[String], (url, redis): Stores<'_>, log: &Path) -> Child {
    Command::new(bin)
        .args(args)
        .env("PIPE_HMAC_KEY", KEY)
        .env("DATABASE_URL", url)
        .env("REDIS_URL", redis)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("start the pipeline")
}

/// The stream's rows are appended per epoch in one transaction with the epoch's bookkeeping
/// row: killed with SIGKILL at random moments and restarted, with the server terminating its
/// connections meanwhile, it appends exactly the rows a backfill writes.
#[test]
fn a_postgres_stream_killed_at_random_appends_each_row_exactly_once() {
    let (Some(pg), Some(redis)) = (server_bin(), redis_bin()) else { return };
    let server = Server::start(pg, "stream");
    let redis = Redis::start(&redis);
    server.create_db("reference");
    server.create_db("live");
    let bin = build_pipeline(Path::new("examples/feature_store/members.pipe"));
    let dir = scratch("postgres_stream");
    let rejected = |d: &str| vec!["--sink".to_string(), format!("rejected->files={}", dir.join(d).display())];

    let mut args = vec!["--quiet".to_string(), "--workers".into(), "2".into()];
    args.extend(rejected("r0"));
    let args_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    run_ok(&bin, &args_ref, (&server.url("reference"), &redis.url(0)));
    let mut reference = server.client("reference");
    let want = table(&mut reference, "SELECT * FROM member_daily");
    assert_eq!(want.len(), 2430, "the backfill");

    let data = pipe_tests::repo_root().join("examples/member_features/data/applications.jsonl");
    let lines: Vec<String> = std::fs::read_to_string(&data).expect("example data").lines().map(String::from).collect();
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live dir");
    let mut stream = pipe_tests::follow_args("applications", &live, &dir.join("state"));
    stream.extend(rejected("r1"));
    let (url, redis_url) = (server.url("live"), redis.url(1));
    let producer = pipe_tests::produce(live.clone(), lines, 3);
    // Meanwhile both servers kill the pipeline's connections now and then.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let terminator = {
        let (stop, mut admin, mut redis_admin) = (stop.clone(), server.client("postgres"), redis.client(0));
        std::thread::spawn(move || {
            let mut terminated = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(350));
                let rows = admin
                    .query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'live' AND pid <> pg_backend_pid()",
                        &[],
                    )
                    .expect("terminate");
                terminated += rows.len();
                let killed: usize = redis::cmd("CLIENT")
                    .arg("KILL")
                    .arg("SKIPME")
                    .arg("yes")
                    .query(&mut redis_admin)
                    .expect("CLIENT KILL");
                terminated += killed;
            }
            terminated
        })
    };
    let kills = pipe_tests::kill_at_random(0x5eed_9a11, 8, &producer, |n| {
        start(&bin, &stream, (&url, &redis_url), &dir.join(format!("run-{n}.log")))
    });
    producer.join().expect("producer");
    let mut last = stream.clone();
    last.extend(["--exit-when-idle".to_string(), "1500ms".into()]);
    let last: Vec<&str> = last.iter().map(String::as_str).collect();
    run_ok(&bin, &last, (&url, &redis_url));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let terminated = terminator.join().expect("terminator");
    assert!(terminated > 0, "the server never terminated a connection of the pipeline");

    let mut c = server.client("live");
    let got = table(&mut c, "SELECT * FROM member_daily");
    assert_eq!(
        got.len(),
        want.len(),
        "rows after {kills} kills and {terminated} terminated connections: lost or repeated"
    );
    assert_eq!(got, want, "rows after {kills} kills differ from the backfill's");
    assert_eq!(table(&mut c, "SELECT * FROM member_latest"), table(&mut reference, "SELECT * FROM member_latest"));
    // Every published epoch has its bookkeeping row; no staged row is left behind.
    assert!(count(&mut c, "pipe_sink_epochs") > 0);
    let staged = table(&mut c, "SELECT relname FROM pg_class WHERE relname LIKE 'pipe_stage_%' AND relkind = 'r'");
    for s in staged {
        assert_eq!(count(&mut c, &s), 0, "staged rows left in {s}");
    }
    // Redis: every member's latest day, as the backfill left it.
    let (want, got) = (hashes(&mut redis.client(0), "member:*"), hashes(&mut redis.client(1), "member:*"));
    assert!(!want.is_empty());
    assert_eq!(got, want, "the stream's Redis hashes differ from the backfill's");

    // A stream without the checkpoints of the one that published would append every row again:
    // refused, naming the way out; with `--reset` it starts over (and appends them again).
    let mut lost = last.clone();
    let fresh = dir.join("fresh-state").display().to_string();
    let at = lost.iter().position(|a| *a == "--state-dir").map_or(0, |i| i + 1);
    lost[at] = fresh.as_str();
    // (Its rejected records to a new folder: the file sink would refuse the same way.)
    let rejected_elsewhere = format!("rejected->files={}", dir.join("r2").display());
    if let Some(r) = lost.iter_mut().find(|a| a.starts_with("rejected->files=")) {
        *r = rejected_elsewhere.as_str();
    }
    let out = run(&bin, &lost, (&url, &redis_url));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a stream without its checkpoints appended again");
    assert!(err.contains("holds rows a stream published") && err.contains("--reset"), "{err}");
    assert_eq!(count(&mut c, "member_daily"), 2430, "the refused run wrote nothing");
    lost.push("--reset");
    run_ok(&bin, &lost, (&url, &redis_url));
    assert_eq!(count(&mut c, "member_daily"), 2 * 2430, "`--reset` starts over: every row appended again");
}
