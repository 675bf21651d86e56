// The join and rolling-window benchmark's events (bench/joins.sh).
namespace rs bench.joins

struct Event {
  1: required string key
  2: required i64 at (timestamp = "millis")
  3: required double value
}
