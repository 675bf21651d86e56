include "c2.thrift"
struct A { 1: c2.B b }
