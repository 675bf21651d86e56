include "a.thrift" //~ E1002
struct B { 1: string x }
