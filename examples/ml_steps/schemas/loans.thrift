// Lending Club loans, split by issue month (data/make_data.py): the columns the transforms, the
// default-risk model and the checks read, labeled.
namespace rs credit.ml_steps

struct Loan {
  1: required i64    rownames                  (pii = "user.unique_id")
  2: optional string state                     (pii = "none")
  3: optional double annual_income             (pii = "user.financial.income", mask = "bucket(10000)")
  4: optional double debt_to_income            (pii = "user.financial")
  5: optional double months_since_last_delinq  (pii = "user.financial")
  6: optional double inquiries_last_12m        (pii = "user.financial")
  7: optional double total_credit_limit        (pii = "user.financial")
  8: required i64    loan_amount               (pii = "user.financial")
  9: required i64    term                      (pii = "none")
  10: required string grade                    (pii = "user.financial.credit_score")
  11: required string loan_status              (pii = "user.financial")
  12: required string issued                   (timestamp = "iso8601", pii = "none")
} (has_personal_data)
