//! A step the language does not have, and a `where` without its condition: both reported in one
//! run, each at its tokens.
pipe_macros::pipeline! {
    namespace broken

    struct Click {
      1: required string page
      2: required i64    at (timestamp = "millis")
    }

    source clicks: Click { event_time = at  batch = files("clicks.jsonl", format = json) }

    stream pages = clicks | filtr page != "" | select { page }
    stream late = clicks | where | select { page }
    pages -> stdout()
    late -> stdout()
}

fn main() {}
