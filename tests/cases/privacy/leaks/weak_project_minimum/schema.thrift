struct Customer {
  1: optional string zip (pii = "user.contact.address.postal_code")
}
