// Every kind of field the JSON fast path reads, nested and not, read and unread.
namespace rs test.json_fast

enum Tier { GOLD = 1, SILVER = 2 }

struct Item {
  1: required string sku
  2: optional double price
  3: optional list<string> tags
}

struct Event {
  1: required string id
  2: required i64 at (timestamp = "millis")
  3: optional double amount
  4: optional bool flag
  5: optional Tier tier
  6: optional list<Item> items
  7: optional map<string, string> attrs
  8: optional i64 count = 7
  9: required i64 n
  10: optional list<i64> codes
  11: optional string note
  12: optional map<string, list<double>> readings
  13: optional list<Item> more
  14: required string kind
}
