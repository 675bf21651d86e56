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

struct Score {
  1: required string member_id (pii = "user.unique_id", mask = "hmac")
  2: required i64 score (pii = "user.financial.credit_score")
  3: required i64 scored_at (timestamp = "millis")
  4: required i64 revision
}
