// The 24 features of ../../../shared/bench/train_models.py's models.
namespace rs bench.scoring

struct Row {
  1: optional double annual_income
  2: optional double debt_to_income
  3: optional double delinq_2y
  4: optional double inquiries_last_12m
  5: optional double total_credit_lines
  6: optional double open_credit_lines
  7: optional double total_credit_limit
  8: optional double total_credit_utilized
  9: optional double num_collections_last_12m
  10: optional double num_historical_failed_to_pay
  11: optional double current_accounts_delinq
  12: optional double accounts_opened_24m
  13: optional double num_satisfactory_accounts
  14: optional double num_active_debit_accounts
  15: optional double total_debit_limit
  16: optional double num_total_cc_accounts
  17: optional double num_open_cc_accounts
  18: optional double num_cc_carrying_balance
  19: optional double num_mort_accounts
  20: optional double account_never_delinq_percent
  21: optional double public_record_bankrupt
  22: optional double loan_amount
  23: optional double term
  24: optional double installment
}
