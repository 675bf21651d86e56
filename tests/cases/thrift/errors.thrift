// Thrift mistakes, all reported in one run.
include "common.thrift"

struct Dup {
  1: string a
  1: string b //~ E1014
  2: string a //~ E1007
  3: Unknwn c //~ E1004
  4: common.Mony d //~ E1004
  5: i64 when (timestamp = "hours") //~ E2020
  6: double when2 (timestamp = "millis") //~ E2020
  7: i8 small = 300 //~ W0004
  8: string s = 5 //~ E2012
  9: common.Money m = {"cent": 1} //~ E1006
  10: common.Currency c2 = common.Currency.YEN //~ E1012
  11: list<i32> l = {"a": 1} //~ E2012
  12: bool flag = 2 //~ E2012
  13: string ref = NO_SUCH_CONST //~ E1016
  14: i64 ref2 = common.DEFAULT_REGION //~ E2012
  15: i32 (oops = ) broken //~ E0001
}

struct Dup {} //~ E1005

enum E {
  A,
  B,
  A //~ E1015
}

typedef Loop1 Loop2 //~ E1004
typedef Loop2 Loop1
typedef DEFAULT_VALUE NotAType //~ E1004
const string DEFAULT_VALUE = "x"
