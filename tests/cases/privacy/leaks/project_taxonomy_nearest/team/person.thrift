struct Person {
  1: required string national_id (sensitivity = "gov-id")
  2: optional string city
}
