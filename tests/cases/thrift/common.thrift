// Shared definitions, included by everything.thrift as `common.*`.
namespace * shared.common

typedef i64 Millis (timestamp = "millis")

enum Currency {
  USD = 840,
  EUR = 978 (iso = "EUR"),
}

struct Money {
  1: required i64 cents
  2: required Currency currency = Currency.USD
}

const string DEFAULT_REGION = "us-east";
