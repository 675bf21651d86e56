// Loan feature rows (the CSV of examples/batch_scoring, from tests/cases/codegen/scoring/make_models.py:
// Lending Club loans, some values removed or zeroed to exercise missing-value handling).
namespace rs credit.batch_scoring

struct LoanFeatures {
  1: required i64    id
  2: optional double annual_income
  3: optional double debt_to_income
  4: optional double months_since_last_delinq
  5: optional double inquiries_last_12m
  6: optional double total_credit_limit
  7: optional double loan_amount
  8: optional double term
  9: required i64    grade
}
