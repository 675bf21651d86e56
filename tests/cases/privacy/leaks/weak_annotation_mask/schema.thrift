struct Customer {
  1: required string id  (pii = "user.unique_id", mask = "hmac")
  2: optional string zip (pii = "user.contact.address.postal_code", mask = "truncate(100)") //~ P011
}
