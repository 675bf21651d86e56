// Lending Club loans (../../../shared/data/loans_full_schema.csv, copied to data/loans.csv):
// the columns this example reads, labeled. The CSV has 56 columns; a source reads only the
// ones its pipeline uses.
namespace rs credit.lending

struct Loan {
  1: required i64    rownames        (pii = "user.unique_id")      // the loan's row id
  2: optional string emp_title       (pii = "user.job_title", mask = "redact")
  3: optional double emp_length      (pii = "none")
  4: optional string state           (pii = "user.location.imprecise")
  5: optional string homeownership   (pii = "none")
  6: optional double annual_income   (pii = "user.financial.income", mask = "bucket(10000)")
  7: optional double debt_to_income  (pii = "user.financial")
  8: optional string loan_purpose    (pii = "none")
  9: required i64    loan_amount     (pii = "user.financial")
  10: required i64   term            (pii = "none")
  11: required double interest_rate (pii = "user.financial")
  12: required double installment   (pii = "user.financial")
  13: required string grade         (pii = "user.financial.credit_score")
  14: required string sub_grade     (pii = "user.financial.credit_score")
  15: required string issue_month   (pii = "none")                 // "Mar-2018"
  16: required string loan_status   (pii = "user.financial")
  17: required double paid_total    (pii = "user.financial")
} (has_personal_data)
