/** Pizza orders, one JSON object per line, with ISO-8601 timestamps. */
namespace rs shop.orders

struct Item {
  1: required string name
  2: required string size
  3: required string type
  4: required double price
}

struct Order {
  1: required string id
  2: required string ts (timestamp = "iso8601")
  3: required i32 n_items
  4: required double total
  5: required list<Item> items
}
