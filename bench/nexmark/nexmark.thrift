// Nexmark's three kinds of event, as the `nexmark` crate writes them (bench/nexmark.sh).
// The people's names, addresses and cards are personal data; a bidder or seller is a person.
namespace rs bench.nexmark

struct Person {
  1: required i64 id (pii = "user.unique_id")
  2: required string name (pii = "user.name")
  3: required string email_address (pii = "user.contact.email")
  4: required string credit_card (pii = "user.financial.credit_card")
  5: required string city
  6: required string state
  7: required i64 date_time (timestamp = "millis")
  8: required string extra
}

struct Auction {
  1: required i64 id
  2: required string item_name
  3: required string description
  4: required i64 initial_bid
  5: required i64 reserve
  6: required i64 date_time (timestamp = "millis")
  7: required i64 expires (timestamp = "millis")
  8: required i64 seller (pii = "user.unique_id")
  9: required i64 category
  10: required string extra
}

struct Bid {
  1: required i64 auction
  2: required i64 bidder (pii = "user.unique_id")
  3: required i64 price
  4: required string channel
  5: required string url
  6: required i64 date_time (timestamp = "millis")
  7: required string extra
}
