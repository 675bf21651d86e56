// Constructs from Apache Thrift's own test IDL that Pipe must accept.
namespace java com.example.v1.0
namespace py foo.2d

struct RecList {
  1: RecList & nextitem
  3: i16 item
}

struct WithXsd {
  1: i32 a xsd_optional xsd_nillable xsd_attrs { 1: i32 b }
}

const i32 T = true
const double D = false
struct Flags {
  1: i16 flag = true
  2: slist legacy_name
}

// From test/EnumTest.thrift: an enum constant is found by its last segment.
enum MyEnum1 { ME1_0 }
enum MyEnum2 { ME2_0, ME2_1, ME2_2 }
struct MyStruct {
  1: MyEnum2 me2_2 = MyEnum1.ME2_2
}

// From Apache's test/ThriftTest.thrift: `{}` as an empty set, and (as Apache accepts) an
// integer default wider than its field, which is only a warning.
struct CrazyNesting {
  1: set<binary> bin_set = {}
  2: list<string> names = {}
}
struct Narrow {
  1: byte flags = 200 //~ W0004
}
