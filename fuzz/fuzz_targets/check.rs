//! Any text as a `.pipe` file (beside a real schema): parsing and checking never panic and
//! always end.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pipec::source::MemoryLoader;

const SCHEMA: &str = include_str!("../../tests/cases/schemas/partner.thrift");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut l = MemoryLoader::new();
    l.insert("main.pipe", text);
    l.insert("schemas/partner.thrift", SCHEMA);
    let _ = pipec::check_program(&l, Path::new("main.pipe"));
});
