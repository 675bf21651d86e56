// Loan applicants: the training file the transforms are fitted on, and the files they are
// applied to, have the same record.
namespace rs test.stream_transforms

struct Applicant {
  1: required string id
  2: optional double income
  3: optional double dti
  4: optional string state
  5: optional i64    amount
  6: required i64    at (timestamp = "millis")
}
