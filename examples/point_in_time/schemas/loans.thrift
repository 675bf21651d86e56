// Lending Club loans (data/loans.csv, made from ../../../shared/data/loans_full_schema.csv by
// data/make_loans.py), and the per-state features the feature pipeline writes from them.
namespace rs credit.point_in_time

struct Loan {
  1: required i64    loan_id        (pii = "user.unique_id")
  2: optional string state          (pii = "user.location.imprecise")
  3: required string grade          (pii = "user.financial.credit_score")
  4: required i64    loan_amount    (pii = "user.financial")
  5: required double interest_rate  (pii = "user.financial")
  6: optional double annual_income  (pii = "user.financial.income")
  7: required string issued         (timestamp = "iso8601", pii = "none")  // the month's first day
  8: required string loan_status    (pii = "user.financial")
} (has_personal_data)

// One row per state and month (a one-day window on the month's first day): what was known
// of the state's loans once that month's were issued.
struct StateFeatures {
  1: required string state          (pii = "user.location.imprecise")
  2: required string window_start   (timestamp = "iso8601", pii = "none")
  3: required string window_end     (timestamp = "iso8601", pii = "none")
  4: required i64    loans          (pii = "none")
  5: required double avg_rate       (pii = "user.financial")
  6: required double avg_income     (pii = "user.financial.income")
} (has_personal_data)
