// A partner's loan application as it arrives on the `loan-applications` topic: the fields of
// the batch feed, plus three the Kafka source fills from each message's metadata.
include "../../partner_ingest/schemas/partner.thrift"

struct StreamedApplication {
  1: required string member_id     (pii = "user.unique_id")
  2: required string ssn           (pii = "user.government_id", mask = "redact")
  3: optional string email         (pii = "user.contact.email", mask = "hmac")
  4: required i64    submitted_at  (timestamp = "millis", pii = "none")
  5: optional double annual_income (pii = "user.financial.income", mask = "bucket")
  6: optional partner.HomeOwnership home  (pii = "none")
  7: optional string state         (pii = "none")
  8: optional list<partner.Tradeline> tradelines
  9: optional map<string, string> partner_attrs (pii = "none")
  // Filled from the message, not the payload.
  10: optional string partner_key  (pii = "user.unique_id")
  11: optional i64    partition    (pii = "none")
  12: optional i64    offset       (pii = "none")
} (has_personal_data)
