// Base rates per grade: a small table the `spreads` pipeline joins.
namespace rs credit.spreads

struct BaseRate {
  1: required string grade (pii = "user.financial.credit_score")
  2: required double base (pii = "none")
}
