// `pii` on an enum or one of its values is not read: a field of the enum's type is labeled by
// its own annotation (or a typedef's).
enum CreditBand {
  LOW = 1 (pii = "user.financial") //~ P010
  HIGH = 2
} (pii = "user.financial.credit_score") //~ P010

struct Member {
  1: required string id (pii = "user.unique_id")
  2: optional CreditBand band
}
