struct User {
  1: required string user_id (personalDataType = "UserId")
}
