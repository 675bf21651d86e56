// Constants are checked through typedefs and inside struct literals.
typedef i8 Small

struct T { 1: i8 x }
struct U { 1: Small s = 1000 } //~ W0004

const T A = {"x": 300} //~ W0004
const Small B = 300 //~ W0004
const i32 C = D //~ E2012
const i32 D = C //~ E2012
const i32 E = E //~ E2012
struct X { 1: i32 a = 1.5 } //~ E2012
const string BAD_ESCAPE = "\u12" //~ E0006
const double HUGE = 1e99999 //~ E0004
enum Wide { A = 0x80000000 } //~ E2012
struct Empty { 1: list<i32> l = {}, 2: set<string> s = {}, 3: map<string, i32> m = {} }
struct NotEmpty { 1: list<i32> l = {"a": 1} } //~ E2012
