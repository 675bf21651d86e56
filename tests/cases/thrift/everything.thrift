# Every Thrift construct the Pipe front end accepts, in one file.
// Line comments of both kinds, and block comments:
/* a block
   comment */
include "common.thrift"
cpp_include "<unordered_map>"

namespace rs credit.everything (package.version = "2", deprecated)
namespace py credit.everything
namespace * credit.everything

const i32 MAX_TRADELINES = 0x40
const double RATE = -1.5e-3;
const string GREETING = 'single quotes'
const string ESCAPED = "tab\tquote\"end",
const list<i16> SMALL = [1, 2, 3]
const map<string, list<i64>> BUCKETS = {"a": [1, 2], 'b': []}
const bool ENABLED = true
const common.Money ZERO = {"cents": 0, "currency": common.Currency.EUR}
const string REGION = common.DEFAULT_REGION

typedef string MemberId (pii = "user.unique_id")
typedef list<map<string, set<i32 (min = "0")>>> Nested (python.immutable = "", a.b.c = "d";)
typedef common.Millis EventTime

/**
 * How a member holds their home.
 */
enum HomeOwnership {
  RENT,
  /** Still paying. */
  MORTGAGE = 5 (deprecated; note = "x"),
  OWN,
  OTHER = -1
} (cpp.enum_strict)

enum Empty {}

/** A credit line. */
struct Tradeline {
  /** The account number. */
  1: required string account_id (pii = "user.financial.account_number", mask = "hmac")
  2: required double balance = 0.0 (pii = "user.financial");
  3: optional double credit_limit (pii = "user.financial"),
  4: optional string kind = "unknown"
  5: optional common.Money limit_money = {"cents": 100, "currency": common.Currency.USD}
  -6: i32 legacy_code
  bool no_id_field
  7: HomeOwnership home = HomeOwnership.RENT
  8: HomeOwnership home2 = 1
  9: optional map<string, list<common.Money>> (cpp.template = "std::map") money_by_key
  10: optional list<i64 (signed)> (max_len = "8") numbers = [0x1F, -2]
  11: EventTime opened_at
} (persisted, pii.owner = "risk", pii.owner = "risk-2")

union Payment {
  1: common.Money cash
  2: string card_token (pii = "user.financial.credit_card")
}

exception NotFound {
  1: string message
}

struct Member xsd_all {
  1: required MemberId id
  2: optional list<Tradeline> tradelines
  3: optional Nested attributes
  4: optional Payment last_payment
  5: required EventTime joined_at
  6: optional uuid device
  7: optional binary photo
  8: optional byte flags
  9: optional i8 tiny
}

service Members extends shared.Base { //~ N0001
  Member get(1: string id) throws (1: NotFound nf),
  oneway void touch(1: string id)
}

senum Legacy { "a", "b" } //~ N0001
