// Events for the batch-equals-stream property test.
namespace rs test.stream

struct Event {
  1: required string key
  2: required i64    at     (timestamp = "millis")
  3: optional double value
  4: optional string tag
}
