// Events for the latency benchmark: a number and the driver's send time.
namespace rs bench.latency

struct Ping {
  1: required i64 id
  2: required i64 at       (timestamp = "millis")
  3: required i64 sent_ns
}
