// A table of factors by key, read again while the stream runs.
namespace rs test.stream_join

struct Rate {
  1: required string key
  2: required double factor
}
