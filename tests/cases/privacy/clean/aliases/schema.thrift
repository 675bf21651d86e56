struct User {
  1: required string user_id (personalDataType = "UserId")
  2: optional double score (pii = "acme.scores.internal")
} (has_personal_data)
