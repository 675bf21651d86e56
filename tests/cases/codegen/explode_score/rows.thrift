// Rows with a list of numbers.
namespace rs test.explode_score

struct Scores {
  1: required string k
  2: optional list<double> xs
}
