struct Person {
  1: required string ssn (PII = "SSN")
  2: optional string city (pii = "none")
}
