// A personal struct's fields that hold other structs: labeled by what those structs hold.
struct Address {
  1: optional string street
  2: optional string zip
}

struct Score {
  1: required double value (pii = "user.financial")
}

struct Device {
  1: required string serial (pii = "user.unique_id")
  2: optional string model //~ P006
} (has_personal_data)

struct Member {
  1: required string id (pii = "user.unique_id")
  2: optional Address home //~ P006
  3: optional list<Address> previous //~ P006
  4: optional map<string, Address> by_kind //~ P006
  5: optional Score score
  6: optional list<Device> devices
  7: optional Address work (pii = "user.contact.address")
} (has_personal_data)
