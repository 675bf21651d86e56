typedef string Email (pii = "user.contact.email")

struct Person {
  1: optional list<Email> emails
  2: optional map<string, string (pii = "user.contact.phone_number")> phones
}
