typedef string Email (pii = "user.contact.emial") //~ P001

struct Person {
  1: required string id (pii = "user.unique_id", mask = "hmac")
  2: optional Email email (mask = "encrypt") //~ P008
  3: optional string nickname //~ P006
  4: optional string city (pii = "user.location.imprecise, user.contact.address.city")
  5: optional string notes (pii = "none")
} (has_personal_data)
