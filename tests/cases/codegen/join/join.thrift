namespace rs test.join

struct Application {
  1: required string app_id
  2: required string member_id (pii = "user.unique_id", mask = "hmac")
  3: required double amount
  4: required i64 submitted_at (timestamp = "millis")
}

struct Member {
  1: required string member_id (pii = "user.unique_id", mask = "hmac")
  2: required string state
  3: optional double income (pii = "user.financial", mask = "bucket(10000)")
  4: optional list<string> products
}
