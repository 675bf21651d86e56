//! A model scored without one of its inputs, and given one it does not have.
pipe_macros::pipeline! {
    namespace scoring

    struct Applicant {
      1: required string id
      2: required i64    at (timestamp = "millis")
      3: required double income
    }

    source applicants: Applicant { event_time = at  batch = files("a.jsonl", format = json) }

    // The path is relative to the crate that calls the macro (its CARGO_MANIFEST_DIR).
    model churn = linear("tests/ui/models/churn.json")

    stream scored = applicants
      | score churn { income = income, tenur = 1.0 } as p
      | select { id, p }

    scored -> stdout()
}

fn main() {}
