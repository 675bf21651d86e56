// Page visits for the test that a backfill fires its windows as event time passes.
namespace rs test.backfill

struct Visit {
  1: required string user
  2: required i64    at    (timestamp = "millis")
  3: required string page
}

struct Tap {
  1: required string k
  2: required i64    at    (timestamp = "millis")
  3: required i64    v
}
