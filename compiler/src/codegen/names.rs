//! Rust names for Pipe names. A field keeps its name when Rust allows it (a keyword becomes a
//! raw identifier); anything else (a non-ASCII name, `self`) gets a numbered name and a serde
//! rename, so records still read and write under the original name.

use proc_macro2::{Ident, Span};

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "else", "enum", "extern", "false", "fn", "for", "if", "impl", "in", "let",
    "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "static", "struct", "trait", "true", "type",
    "unsafe", "use", "where", "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];
/// Whether `name` is a Rust keyword (strict, reserved, or one that cannot be raw).
pub fn is_keyword(name: &str) -> bool {
    KEYWORDS.contains(&name) || RESERVED.contains(&name)
}

/// Keywords that cannot be raw identifiers either.
const RESERVED: &[&str] = &["crate", "self", "Self", "super", "_"];

fn plain(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The Rust field name for a Pipe field, and the name serde must use if it differs.
pub fn field(name: &str, index: usize) -> (Ident, Option<String>) {
    if plain(name) && !RESERVED.contains(&name) {
        if KEYWORDS.contains(&name) {
            return (Ident::new_raw(name, Span::call_site()), None);
        }
        return (Ident::new(name, Span::call_site()), None);
    }
    (Ident::new(&format!("field_{index}"), Span::call_site()), Some(name.to_string()))
}

/// A Rust type or function name built from a Pipe name, made safe.
pub fn ident(prefix: &str, name: &str) -> Ident {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    Ident::new(&format!("{prefix}{clean}"), Span::call_site())
}

/// Names generated code defines or imports, which a schema type must not take.
const TAKEN: &[&str] = &[
    "Program",
    "State",
    "Worker",
    "Inputs",
    "Outputs",
    "ArrowInputs",
    "ArrowOutputs",
    "Context",
    "Base",
    "Record",
    "Origin",
    "Reject",
    "Rejected",
    "Res",
    "SinkBuf",
    "Pipeline",
    "NodeDecl",
    "NodeKind",
    "SourceDecl",
    "SinkDecl",
    "SinkFormat",
    "SinkKind",
    "Stat",
    "Cell",
    "HashF64",
    "Acc",
    "String",
    "Vec",
    "Option",
    "Result",
    "Some",
    "None",
    "Ok",
    "Err",
    "Box",
    "Iterator",
    "Default",
    "Clone",
    "Debug",
    "PartialEq",
    "Eq",
    "Hash",
    "Serialize",
    "Deserialize",
    "Settings",
    "Self",
];

/// `UpperCamelCase` of a Pipe name, starting with a letter.
pub fn camel(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if !out.starts_with(|c: char| c.is_ascii_alphabetic()) {
        out.insert(0, 'T');
    }
    out
}

/// Whether a camel-cased schema name can be used as it is: not one generated code defines
/// (`Row3`, `Acc5`, `Pending2`, the runtime's types).
pub fn free_type_name(camel: &str) -> bool {
    let numbered = ["Row", "Acc", "Pending"].iter().any(|p| {
        camel.strip_prefix(p).is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    });
    !numbered && !TAKEN.contains(&camel)
}

/// A Rust type name for a schema type: `UpperCamelCase` of the Pipe name, with a number when
/// another type of the program has the same name (types of two files) or the name is one
/// generated code uses.
pub fn type_name(name: &str, n: u32, unique: bool) -> Ident {
    let out = camel(name);
    if unique && free_type_name(&out) {
        return Ident::new(&out, Span::call_site());
    }
    Ident::new(&format!("{out}{n}"), Span::call_site())
}

/// A local variable holding field `name` at step `step` of a stage function.
pub fn local(step: usize, name: &str) -> Ident {
    let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    // The leading underscore: not every field of a row is used by every step.
    Ident::new(&format!("_s{step}_{}_{:x}", clean.trim_matches('_'), fnv(name) & 0xfff), Span::call_site())
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe() {
        assert_eq!(field("member_id", 0).0.to_string(), "member_id");
        assert_eq!(field("type", 0).0.to_string(), "r#type");
        let (id, rename) = field("größe", 3);
        assert_eq!((id.to_string(), rename.as_deref()), ("field_3".into(), Some("größe")));
        assert_eq!(field("self", 1).1.as_deref(), Some("self"));
        assert_ne!(local(1, "a_b"), local(1, "a-b"));
    }
}
