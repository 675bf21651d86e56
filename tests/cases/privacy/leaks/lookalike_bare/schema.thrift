// A bare `pii` names no category: it labels nothing.
struct Contact {
  1: required string id (pii = "user.unique_id")
  2: optional string email (pii) //~ P010
  3: optional string phone (Mask = "hmac", pii = "user.contact") //~ P010
}
