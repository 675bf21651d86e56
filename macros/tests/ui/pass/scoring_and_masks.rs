//! A model scored in memory, a keyed pseudonym, `protect for` choosing each field's mask, and
//! a run that needs a key refusing to start without one.
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

    // Relative to the crate trybuild builds, target/tests/trybuild/pipe-macros.
    model churn = linear("../../../../macros/tests/ui/models/churn.json")

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

fn main() {
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
