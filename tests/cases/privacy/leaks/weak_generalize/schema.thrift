struct Person {
  1: required string id (pii = "user.unique_id")
  2: required i64 born (timestamp = "millis", pii = "user.demographic.date_of_birth")
}
