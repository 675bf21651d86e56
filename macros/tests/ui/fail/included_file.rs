//! A file the program includes does not exist: the error points at the macro call and names it.
pipe_macros::pipeline! {
    namespace missing
    include "schemas/nowhere.thrift"

    source events: Event { batch = files("e.jsonl", format = json) }
    events -> stdout()
}

fn main() {}
