//! Embeds the runtime's sources in `pipec`, so that an installed `pipec` builds pipelines with the
//! runtime it was built with wherever it runs, the source tree gone (`driver::runtime_sources`
//! writes them into the cache). Embedded: `runtime/Cargo.toml` and the `.rs` files under
//! `runtime/src/`, the workspace's `Cargo.lock` (the dependency versions the runtime was tested
//! with) and the workspace's `Cargo.toml` with the runtime as its only member (the runtime's
//! manifest inherits versions, dependencies and lints from it).
#![allow(clippy::print_stdout, reason = "cargo reads a build script's instructions from its stdout")]
#![allow(clippy::disallowed_methods, reason = "a build script writes its output files whole")]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the compiler is in the workspace").to_path_buf();
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for watched in ["runtime", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", repo.join(watched).display());
    }
    let workspace = std::fs::read_to_string(repo.join("Cargo.toml")).expect("the workspace's Cargo.toml");
    let members = workspace
        .lines()
        .find(|l| l.starts_with("members = ["))
        .expect("the workspace's Cargo.toml lists its members on one line");
    let only_runtime = workspace.replacen(members, "members = [\"runtime\"]", 1);
    std::fs::write(out.join("workspace.toml"), only_runtime).expect("write workspace.toml");

    let mut files = vec![
        ("Cargo.toml".to_string(), out.join("workspace.toml")),
        ("Cargo.lock".to_string(), repo.join("Cargo.lock")),
        ("runtime/Cargo.toml".to_string(), repo.join("runtime/Cargo.toml")),
    ];
    let mut stack = vec![repo.join("runtime/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the runtime's sources") {
            let path = entry.expect("read the runtime's sources").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') {
                continue; // editors' lock and swap files
            }
            if path.is_dir() {
                stack.push(path);
            } else if name.ends_with(".rs") {
                let rel = path.strip_prefix(&repo).expect("under the repository");
                files.push((rel.to_string_lossy().replace('\\', "/"), path));
            }
        }
    }
    files.sort();

    // FNV-1a over every name and content: the directory the sources are written to.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut table = String::from("/// The embedded runtime: each file's path under its root and its bytes.\npub const FILES: &[(&str, &[u8])] = &[\n");
    for (name, path) in &files {
        let bytes = std::fs::read(path).expect("read a runtime file");
        for b in name.bytes().chain([0]).chain(bytes.iter().copied()).chain([0]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let _ = writeln!(table, "    ({name:?}, include_bytes!({:?})),", path.display().to_string());
    }
    table.push_str("];\n");
    let _ = writeln!(table, "/// A hash of every embedded path and content.\npub const HASH: &str = \"{hash:016x}\";");
    std::fs::write(out.join("runtime_files.rs"), table).expect("write runtime_files.rs");
}
