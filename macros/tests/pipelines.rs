//! The `pipeline!` macro as users meet it when a program compiles: each module expands one
//! program inline, runs it on rows in memory and checks what comes out. (The programs that must
//! not compile are in `tests/ui/fail`, checked by `tests/ui.rs`; their `.stderr` files hold the
//! diagnostics rustc prints.)

/// Thrift definitions written inline, a `where`, a derived column, an hourly window with keys,
/// and a record that fails its step going to `rejected`.
mod inline_schema {
    pipe_macros::pipeline! {
        namespace shop

        enum Channel { WEB = 1, STORE = 2 }

        /** One purchase. */
        struct Purchase {
          1: required string customer (pii = "user.unique_id")
          2: required i64    at       (timestamp = "millis")
          3: required double amount   (pii = "user.financial")
          4: optional Channel channel
          5: required i64    items
        }

        source purchases: Purchase {
          event_time = at
          batch      = files("purchases.jsonl", format = json)
        }

        stream priced = purchases
          | where amount > 0
          | derive { unit = amount / items }

        stream hourly = priced
          | window tumbling(1h)
          | group by channel
          | aggregate { n = count(), total = sum(amount), dearest = max(unit) }

        sink report = stdout(format = json) {
          allow "user.financial" as raw
        }

        hourly -> report
        // A rejected record's raw text holds the customer and the amount.
        rejected -> stdout(format = json) { purpose = "essential.service" allow "user" as raw }
    }

    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_window_with_keys_aggregates_rows_in_memory_and_a_failing_record_goes_to_rejected() {
        let p = |customer: &str, at: i64, amount: f64, channel: Option<shop::Channel>, items: i64| shop::Purchase {
            customer: customer.into(),
            at,
            amount,
            channel,
            items,
        };
        let web = Some(shop::Channel::WEB);
        let inputs = shop::Inputs {
            purchases: vec![
                p("a", 10, 30.0, web, 3),
                p("b", 20, 12.0, web, 1),
                p("c", HOUR + 5, 8.0, None, 2),
                p("d", 30, -1.0, web, 1),
                // A division by zero items: `derive` fails, the record goes to `rejected`.
                p("e", 40, 5.0, web, 0),
            ],
        };
        let out = shop::run_batch(inputs).expect("the pipeline runs");
        let mut rows = out.report.clone();
        rows.sort_by_key(|r| r.window_start);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!((rows[0].window_start, rows[0].window_end), (0, HOUR));
        assert_eq!(rows[0].channel, web);
        assert_eq!((rows[0].n, rows[0].total, rows[0].dearest), (2, 42.0, Some(12.0)));
        assert_eq!((rows[1].window_start, rows[1].channel, rows[1].n), (HOUR, None, 1));
        assert_eq!(out.rejected.len(), 1, "{:?}", out.rejected);
        assert_eq!(out.rejected[0].source, "purchases");
        assert_eq!(out.rejected[0].position, "purchases[4]");
        assert!(out.rejected[0].reason.contains("division by zero"), "{}", out.rejected[0].reason);
        assert!(out.rejected[0].raw.contains("\"customer\":\"e\""), "{}", out.rejected[0].raw);
    }
}

/// A model scored in memory, a keyed pseudonym, `protect for` choosing each field's mask, and
/// a run that needs a key refusing to start without one.
mod scoring_and_masks {
    pipe_macros::pipeline! {
        namespace underwriting

        struct Applicant {
          1: required string id      (pii = "user.unique_id", mask = "hmac")
          2: required i64    at      (timestamp = "millis")
          3: required double income  (pii = "user.financial.income", mask = "bucket(10000)")
          4: required double tenure
          5: optional string zip     (pii = "user.contact.address.postal_code", mask = "truncate(3)")
        }

        source applicants: Applicant { event_time = at  batch = files("a.jsonl", format = json) }

        // Relative to the crate that expands the macro (its CARGO_MANIFEST_DIR).
        model churn = linear("tests/ui/models/churn.json")

        stream scored = applicants
          | score churn { income = income, tenure = tenure } as p
          | select { member = hmac(id), p }

        stream shared = applicants
          | select { id, income, zip }
          | protect for partner

        sink scores = stdout(format = json) {
          allow "user.unique_id" as pseudonymized
          allow "user.financial" as raw   // a score derived from income
        }
        sink partner = stdout(format = json) {
          allow "user.unique_id" as pseudonymized
          allow "user.financial" as generalized
          allow "user.contact" as generalized
        }

        scored -> scores
        shared -> partner
        rejected -> stdout(format = json) { purpose = "essential.service" allow "user" as raw }
    }

    use pipe_runtime::mask::{hmac_hex, Key};

    #[test]
    fn a_model_scores_and_masks_protect_rows_in_memory_and_a_run_without_a_key_is_refused() {
        let a = |id: &str, income: f64, tenure: f64, zip: Option<&str>| underwriting::Applicant {
            id: id.into(),
            at: 0,
            income,
            tenure,
            zip: zip.map(String::from),
        };
        let inputs = underwriting::Inputs {
            applicants: vec![a("m-1", 52_000.0, 2.0, Some("94110")), a("m-2", 31_500.0, 0.5, None)],
        };

        // Without a key a pipeline that pseudonymizes does not run.
        std::env::remove_var("PIPE_HMAC_KEY");
        let err = underwriting::run_batch(inputs.clone()).expect_err("no key, no run");
        assert!(err.to_string().contains("PIPE_HMAC_KEY"), "{err}");

        let secret = "a-test-key-of-some-length";
        let settings = pipe_runtime::run::Settings::with_hmac_key(secret).expect("long enough");
        let out = underwriting::run_batch_with(inputs, &settings).expect("the pipeline runs");
        let key = Key::new(secret).expect("long enough");

        assert_eq!(out.scores.len(), 2);
        for (row, (id, income, tenure)) in out.scores.iter().zip([("m-1", 52_000.0, 2.0), ("m-2", 31_500.0, 0.5)]) {
            assert_eq!(row.member, hmac_hex(&key, id.as_bytes()));
            let z: f64 = 0.001 * income + 0.5 * tenure;
            let expected = 1.0 / (1.0 + (-z).exp());
            assert!((row.p - expected).abs() < 1e-12, "{} vs {expected}", row.p);
        }

        // `protect for partner`: the id pseudonymized, the income bucketed, the zip truncated.
        let first = &out.partner[0];
        assert_eq!(first.id, hmac_hex(&key, b"m-1"));
        assert_eq!(first.income, 50_000.0);
        assert_eq!(first.zip.as_deref(), Some("941"));
        assert_eq!(out.partner[1].zip, None);
        assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    }
}

/// A program whose source has only a Kafka binding and whose sink is Redis: neither has a runner
/// yet, so `run` refuses to start and says why, while `run_batch` runs it on rows in memory.
mod streaming_connectors {
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

    #[test]
    fn run_refuses_connectors_without_a_runner_while_run_batch_runs_the_rows_in_memory() {
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
            [
                ("s1".to_string(), 0, Some(7.25), 2),
                ("s1".to_string(), 60_000, Some(2.0), 1),
                ("s2".to_string(), 60_000, Some(1.0), 1)
            ]
        );
    }
}
