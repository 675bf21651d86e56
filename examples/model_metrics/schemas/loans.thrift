// Lending Club loans (../../../shared/data/loans_full_schema.csv, as ../lending/data/loans.csv):
// the columns the default-risk model reads, the grade and the outcome, labeled. The CSV has 56
// columns; the source reads only these.
namespace rs credit.model_metrics

struct Loan {
  1: required i64    rownames                  (pii = "user.unique_id")
  2: optional double annual_income             (pii = "user.financial.income", mask = "bucket(10000)")
  3: optional double debt_to_income            (pii = "user.financial")
  4: optional double months_since_last_delinq  (pii = "user.financial")
  5: optional double inquiries_last_12m        (pii = "user.financial")
  6: optional double total_credit_limit        (pii = "user.financial")
  7: required i64    loan_amount               (pii = "user.financial")
  8: required i64    term                      (pii = "none")
  9: required string grade                     (pii = "user.financial.credit_score")
  10: required string loan_status              (pii = "user.financial")
} (has_personal_data)
