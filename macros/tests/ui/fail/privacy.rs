//! A labeled field reaches a sink cleared for nothing: P003 names the sink, the field, its
//! category and the path it took.
pipe_macros::pipeline! {
    namespace leaky

    struct Signup {
      1: required string email (pii = "user.contact.email", mask = "hmac")
      2: required i64    at    (timestamp = "millis")
    }

    source signups: Signup { event_time = at  batch = files("signups.jsonl", format = json) }

    stream contacts = signups | select { who = email, at }

    sink marketing = files("out/marketing", format = csv) {
      purpose = "marketing.advertising"
    }

    contacts -> marketing
    rejected -> stdout(format = json) { purpose = "essential.service" allow "user" as raw }
}

fn main() {}
