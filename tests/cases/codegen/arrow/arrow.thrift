// Every type Pipe has, for the Arrow round trip (tests/integration/run.rs).
namespace rs test.arrow

enum Grade { A = 1, B = 2, C = 3 }

struct Payment {
  1: required i64    at     (timestamp = "millis")
  2: optional double amount
  3: optional string note
}

struct Account {
  1:  required string id
  2:  required i64    opened (timestamp = "seconds")
  3:  optional i64    closed (timestamp = "millis")
  4:  required string since  (timestamp = "iso8601")
  5:  required double rate
  6:  optional double score
  7:  required bool   active
  8:  required Grade  grade
  9:  optional Grade  previous
  10: required binary blob
  11: required list<string> tags
  12: optional set<i64> codes
  13: required list<Payment> payments
  14: optional map<string, i64> limits
  15: optional Payment last
  16: i64 visits = 1
}
