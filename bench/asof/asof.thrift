// The as-of join benchmark's rows (bench/asof.sh).
namespace rs bench.asof

struct Label {
  1: required i64 id
  2: required string member
  3: required i64 at (timestamp = "millis")
}

struct Score {
  1: required string member
  2: required i64 at (timestamp = "millis")
  3: required i64 score
}
