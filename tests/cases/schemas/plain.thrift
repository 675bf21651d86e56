// The partner schema without privacy labels, for cases that test other things.
namespace rs credit.partner

enum HomeOwnership { RENT = 1, MORTGAGE = 2, OWN = 3 }

struct Tradeline {
  1: required string account_id
  2: required double balance
  3: optional double credit_limit
  4: optional string kind
}

struct LoanApplication {
  1: required string member_id
  2: required string ssn
  3: optional string email
  4: required i64    submitted_at  (timestamp = "millis")
  5: optional double annual_income
  6: optional HomeOwnership home
  7: optional string state
  8: optional list<Tradeline> tradelines
  9: optional map<string, string> partner_attrs
}
