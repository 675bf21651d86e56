// `PII` is not `pii`: without the warning the SSN would be unlabeled and reach any sink.
struct Applicant {
  1: required string id  (pii = "user.unique_id")
  2: required string ssn (PII = "user.government_id") //~ P010
  3: optional string state
}
