// The IDL marks personal data its own way; the project taxonomy says what that means.
namespace rs project.users

struct User {
  1: required string user_id (personalDataType = "UserId")
  2: optional string region
}
