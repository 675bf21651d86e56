// schemas/partner.thrift — plain Thrift IDL. Real .thrift files must parse unchanged.
namespace rs credit.partner

enum HomeOwnership { RENT = 1, MORTGAGE = 2, OWN = 3 }

struct Tradeline {
  1: required string account_id   (pii = "user.financial.account_number")
  2: required double balance      (pii = "user.financial")
  3: optional double credit_limit (pii = "user.financial")
  4: optional string kind
}

struct LoanApplication {
  1: required string member_id     (pii = "user.unique_id")
  2: required string ssn           (pii = "user.government_id", mask = "redact")
  3: optional string email         (pii = "user.contact.email", mask = "hmac")
  4: required i64    submitted_at  (timestamp = "millis", pii = "none")
  5: optional double annual_income (pii = "user.financial.income", mask = "bucket")
  6: optional HomeOwnership home  (pii = "none")
  7: optional string state         (pii = "none")
  8: optional list<Tradeline> tradelines
  9: optional map<string, string> partner_attrs (pii = "none")
} (has_personal_data)
