include "c1.thrift" //~ E1002
struct B { 1: optional c1.A a }
