// Loan applicants from a partner feed: the training file the baseline profile is made of, and
// the files checked against it. The income is personal data.
namespace rs test.stream_validation

struct Applicant {
  1: required string id     (pii = "none")
  2: optional double income (pii = "user.financial.income")
  3: optional double dti    (pii = "none")
  4: optional string state  (pii = "none")
  5: optional i64    amount (pii = "none")
  6: required i64    at     (timestamp = "millis", pii = "none")
} (has_personal_data)
