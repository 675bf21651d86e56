// `hasPersonalData` is not `has_personal_data`: the struct's unlabeled fields went unreported.
struct Profile {
  1: required string id (pii = "user.unique_id")
  2: optional string nickname
} (hasPersonalData) //~ P010

typedef string Note (has_personal_data) //~ P010
