// Orders with line items, for the test that the rows an explode makes of one record, sent to
// their group's worker as one partial accumulator, give the groups one worker gives.
namespace rs test.explode_groups

struct Item {
  1: required string sku
  2: required double v
  3: optional string tag
}

struct Order {
  1: required string key
  2: required i64    at    (timestamp = "millis")
  3: optional list<Item> items
}
