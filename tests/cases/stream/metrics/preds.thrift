// A model's predictions with the outcome they predicted, in segments.
namespace rs test.stream_metrics

struct Prediction {
  1: required string seg
  2: optional double p
  3: optional bool   y
  4: required i64    at (timestamp = "millis")
}
