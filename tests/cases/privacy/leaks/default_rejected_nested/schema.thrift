// Labels only inside a nested struct: the raw text of an event still holds the account numbers.
namespace rs leak.nested

struct Account {
  1: required string number (pii = "user.financial.account_number")
}

struct Event {
  1: required i64 at (timestamp = "millis")
  2: optional string kind
  3: optional list<Account> accounts
}
