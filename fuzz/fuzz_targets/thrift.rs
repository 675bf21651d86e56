//! Any text as a Thrift file that a pipeline includes and reads from: the Thrift parser, the
//! schema resolver and the privacy annotations never panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pipec::source::MemoryLoader;

const PIPE: &str = "include \"s.thrift\"\n\
source rows: R { batch = files(\"in.jsonl\", format = json) }\n\
stream out = rows | select { a, b }\n\
out -> stdout()\n\
rejected -> files(\"out/rejected\", format = json) { allow \"user\" as raw }\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut l = MemoryLoader::new();
    l.insert("main.pipe", PIPE);
    l.insert("s.thrift", text);
    let _ = pipec::check_program(&l, Path::new("main.pipe"));
});
