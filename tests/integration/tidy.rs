//! House rules that keep the code base readable: every Rust file says what it is for in a
//! `//!` line, and nothing unfinished (`todo!`, `unimplemented!`) is left outside tests.

use pipe_tests::{read_tree, repo_root};

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let root = repo_root();
    let mut missing = Vec::new();
    for dir in ["compiler", "runtime", "macros", "tests"] {
        for (path, text) in read_tree(&root.join(dir), &["rs"]) {
            if !text.trim_start().starts_with("//!") {
                missing.push(format!("{dir}/{}", path.display()));
            }
        }
    }
    assert!(missing.is_empty(), "files without a `//!` doc line: {missing:?}");
}

#[test]
fn no_unfinished_code_outside_tests() {
    let root = repo_root();
    let mut found = Vec::new();
    for dir in ["compiler/src", "runtime/src", "macros/src"] {
        for (path, text) in read_tree(&root.join(dir), &["rs"]) {
            for (i, line) in text.lines().enumerate() {
                if line.contains(concat!("todo", "!(")) || line.contains(concat!("unimplemented", "!(")) {
                    found.push(format!("{dir}/{}:{}", path.display(), i + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "unfinished code: {found:?}");
}
