//! A misspelled field (with a suggestion) and a comparison of a string with a number.
pipe_macros::pipeline! {
    namespace typed

    struct Click {
      1: required string page
      2: required i64    at (timestamp = "millis")
      3: optional double dwell
    }

    source clicks: Click { event_time = at  batch = files("clicks.jsonl", format = json) }

    stream long_reads = clicks
      | where dwel > 30.0
      | select { page, odd = page > 3 }

    long_reads -> stdout()
}

fn main() {}
