// A schema for the code generator's feature case.
namespace rs test.features

enum Tier { BASIC = 1, GOLD = 2 }

struct Event {
  1: required string user    (pii = "user.unique_id", mask = "hmac")
  2: required i64    at      (timestamp = "millis")
  3: optional double amount  (pii = "user.financial")
  4: optional Tier   tier
  5: optional list<string> tags
  6: optional string zip     (pii = "user.contact.address.postal_code", mask = "truncate(3)")
  7: i64             visits = 1
  8: optional i64    referrals   // never read: still checked (`validate = all`)
}

struct Refund {
  1: required string user    (pii = "user.unique_id")
  2: required string at      (timestamp = "iso8601")
  3: required double amount  (pii = "user.financial")
  4: optional i32    items       // never read: still checked
}
