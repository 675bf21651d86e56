// The rows the lending example writes as Parquet (a subset of its columns), unlabeled: this
// case tests reading Parquet, not privacy.
namespace rs test.parquet_source

struct LoanRow {
  1: required string loan
  2: optional string state
  3: optional double income_band
  4: required i64    amount
  5: required string grade
  6: required bool   delinquent
  7: optional double paid_ratio
}
