//! Property tests: no input, however broken, panics the parser or the checker.

use proptest::prelude::*;

use pipe_tests::{read_tree, repo_root};
use pipec::source::{FileId, MemoryLoader};

/// Words and symbols of both grammars, plus names and literals, for random token sequences that
/// get deep into parsing. The words come from the parsers' own list.
fn vocabulary() -> Vec<&'static str> {
    let mut v: Vec<&'static str> =
        pipec::syntax::PIPE_WORDS.iter().chain(pipec::syntax::THRIFT_WORDS).copied().collect();
    v.extend([
        "tumbling",
        "sliding",
        "session",
        "count",
        "sum",
        "hmac",
        "files",
        "kafka",
        "env",
        "rejected",
        "apps",
        "LoanApplication",
        "member_id",
        "annual_income",
        "tradelines",
        "t",
        "balance",
        "x",
        "\"a.thrift\"",
        "\"s\"",
        "'q'",
        "1",
        "0x1F",
        "2.5",
        "5m",
        "1d",
        "@2024-01-01",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        "<",
        ">",
        "<=",
        ">=",
        "==",
        "!=",
        "=",
        ",",
        ";",
        ":",
        ".",
        "|",
        "->",
        "??",
        "?",
        "+",
        "-",
        "*",
        "/",
        "%",
        "!",
        "&&",
        "||",
        "&",
        "//",
        "/*",
        "*/",
        "#",
        "\n",
    ]);
    v
}

const SCHEMA: &str = include_str!("../cases/schemas/partner.thrift");

fn check_text(pipe: &str) {
    let loader = MemoryLoader::new().with("main.pipe", pipe).with("s.thrift", SCHEMA).with("a.thrift", pipe);
    let checked = pipec::check_program(&loader, std::path::Path::new("main.pipe"));
    // Rendering must not panic either: spans must lie inside their files.
    if let Ok(c) = checked {
        let _ = pipec::diagnostics::render::human(&c.resolved.sources, &c.diagnostics, false);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let mut d = Vec::new();
        let _ = pipec::syntax::lexer::lex(FileId(0), &text, &mut d);
        let _ = pipec::syntax::parse_thrift(FileId(0), &text);
        let _ = pipec::syntax::parse_pipe(FileId(0), &text);
        check_text(&text);
    }

    #[test]
    fn random_token_sequences_never_panic(words in proptest::collection::vec(any::<usize>(), 0..120)) {
        let vocabulary = vocabulary();
        let text = words.iter().map(|&i| vocabulary[i % vocabulary.len()]).collect::<Vec<_>>().join(" ");
        check_text(&format!("include \"s.thrift\"\n{text}"));
        let _ = pipec::syntax::parse_thrift(FileId(0), &text);
    }

    #[test]
    fn mutated_valid_programs_never_panic(seed in any::<u64>(), cuts in proptest::collection::vec((any::<u16>(), any::<u16>()), 1..6)) {
        let files = read_tree(&repo_root().join("tests/cases/valid"), &["pipe"]);
        let texts: Vec<&String> = files.values().collect();
        let base = texts[(seed as usize) % texts.len()];
        let mut text: Vec<char> = base.chars().collect();
        // Delete or duplicate small ranges: the kinds of edits a person makes mid-typing.
        for (a, b) in cuts {
            if text.is_empty() {
                break;
            }
            let start = a as usize % text.len();
            let len = (b as usize % 12).min(text.len() - start);
            if b % 2 == 0 {
                text.drain(start..start + len);
            } else {
                let piece: Vec<char> = text[start..start + len].to_vec();
                text.splice(start..start, piece);
            }
        }
        let text: String = text.into_iter().collect();
        let text = text.replace("../schemas/partner.thrift", "s.thrift");
        check_text(&text);
    }
}

#[test]
fn deep_nesting_is_reported_not_overflowed() {
    let deep = format!("stream s = a | select {{ x = {}1{} }}", "(".repeat(5000), ")".repeat(5000));
    check_text(&deep);
    // Just inside the limit, a deep expression parses, checks and flows on a test thread's stack.
    let ok = format!("include \"s.thrift\"\nsource a: LoanApplication {{ batch = files(\"x\") }}\nstream s = a | select {{ x = {}annual_income ?? 0.0{} }}\ns -> stdout() {{ allow \"user\" as raw }}\nrejected -> stdout() {{ allow \"user\" as raw }}\n", "(".repeat(90), " + 1)".repeat(90));
    let loader = MemoryLoader::new().with("main.pipe", ok.as_str()).with("s.thrift", SCHEMA);
    let checked = pipec::check_program(&loader, std::path::Path::new("main.pipe")).expect("loads");
    assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
    let deep_thrift = format!("struct S {{ 1: {}i32{} x }}", "list<".repeat(5000), ">".repeat(5000));
    let (_, d) = pipec::syntax::parse_thrift(FileId(0), &deep_thrift);
    assert!(d.iter().any(|d| d.message.contains("nesting is too deep")));
}
