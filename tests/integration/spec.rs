//! The language reference cannot drift from the compiler: every code block in `lang-spec/` is
//! checked here. `pipe` and `thrift` blocks compile with exactly the diagnostics their `//~`
//! markers name (a block with `file=PATH` is a file the page's other blocks may include; it is
//! checked through them; a `toml file=pipe-taxonomy.toml` block extends the page's taxonomy); `ebnf` blocks must use only words and symbols the parsers know, and
//! must mention every word the parsers give a meaning to. `functions.md` is generated from the
//! builtin registry (set `PIPE_BLESS=1` to rewrite it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use pipe_tests::{check_case, loader, repo_root};

struct Block {
    lang: String,
    file: Option<String>,
    text: String,
    line: usize,
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    for (i, line) in md.lines().enumerate() {
        if let Some(info) = line.strip_prefix("```") {
            match current.take() {
                Some(b) => out.push(b),
                None => {
                    let mut parts = info.split_whitespace();
                    let lang = parts.next().unwrap_or("").to_string();
                    let file = parts.find_map(|p| p.strip_prefix("file=")).map(str::to_string);
                    current = Some(Block { lang, file, text: String::new(), line: i + 1 });
                }
            }
        } else if let Some(b) = current.as_mut() {
            b.text.push_str(line);
            b.text.push('\n');
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    out
}

fn pages() -> Vec<(String, String)> {
    let dir = repo_root().join("lang-spec");
    let mut pages: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("lang-spec/ exists")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).expect("readable")))
        .collect();
    pages.sort();
    pages
}

#[test]
fn every_pipe_and_thrift_block_compiles_as_its_markers_say() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (page, md) in pages() {
        let bs = blocks(&md);
        let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
        let mut roots = Vec::new();
        for (i, b) in bs.iter().enumerate() {
            match b.lang.as_str() {
                "pipe" | "thrift" => {
                    let name = b.file.clone().unwrap_or_else(|| format!("block_{}_line_{}.{}", i, b.line, b.lang));
                    files.insert(PathBuf::from(&name), b.text.clone());
                    if b.file.is_none() {
                        roots.push(PathBuf::from(name));
                    }
                }
                // Files other blocks read: a taxonomy, a model.
                "toml" | "json" | "text" if b.file.is_some() => {
                    files.insert(PathBuf::from(b.file.clone().unwrap_or_default()), b.text.clone());
                }
                "ebnf" => {}
                other => failures
                    .push(format!("{page}:{}: a `{other}` block cannot be checked; use pipe, thrift or ebnf", b.line)),
            }
        }
        let l = loader(&files);
        for root in roots {
            checked += 1;
            for p in check_case(&l, &root, &files) {
                failures.push(format!("{page} ({}): {p}", root.display()));
            }
        }
    }
    assert!(checked >= 50, "only {checked} blocks were checked");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_catalogue_shows_every_code_with_an_example_that_produces_it() {
    let md = std::fs::read_to_string(repo_root().join("lang-spec/diagnostics.md")).expect("diagnostics.md");
    for code in pipec::diagnostics::Code::ALL {
        let code = code.as_str();
        let heading = format!("### {code} — ");
        let start = md.find(&heading).unwrap_or_else(|| panic!("diagnostics.md has no section `{heading}…`"));
        let end = md[start + 4..].find("\n### ").map_or(md.len(), |e| start + 4 + e);
        let section = &md[start..end];
        assert!(
            section.lines().any(|l| l.contains("//~") && l.split_whitespace().any(|w| w == code)),
            "the section on {code} has no example marked `//~ {code}`"
        );
    }
}

/// The terminals of the lexical rules that are not words or tokens: single characters and the
/// hex prefix. Duration units come from the lexer's own table.
fn lexical_terminal(t: &str) -> bool {
    t.chars().count() == 1 || t == "0x" || pipec::syntax::literals::DURATION_UNITS.iter().any(|(u, _)| *u == t)
}

#[test]
fn the_grammar_uses_the_parsers_words_and_symbols() {
    let symbols: BTreeSet<String> = [
        "{", "}", "(", ")", "[", "]", "<", ">", "<=", ">=", "==", "!=", "=", ",", ";", ":", ".", "|", "->", "??", "?",
        "+", "-", "*", "/", "%", "!", "&&", "||", "@",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Every symbol above must lex as one token, so the list cannot hold what the lexer lacks.
    for s in &symbols {
        let mut d = Vec::new();
        let lexed = pipec::syntax::lexer::lex(pipec::source::FileId(0), s, &mut d);
        assert!(s == "@" || (d.is_empty() && lexed.tokens.len() == 2), "`{s}` is not one token");
    }
    let mut defined = BTreeSet::new();
    let mut referenced = Vec::new();
    let mut terminals = BTreeSet::new();
    for (page, md) in pages() {
        for b in blocks(&md).into_iter().filter(|b| b.lang == "ebnf") {
            for rule in split_rules(&b.text) {
                let (name, body) = rule.split_once('=').unwrap_or_else(|| panic!("{page}: a rule without `=`: {rule}"));
                defined.insert(name.trim().to_string());
                scan(body, &mut referenced, &mut terminals);
            }
        }
    }
    for r in &referenced {
        assert!(defined.contains(r), "the grammar uses `{r}` but never defines it");
    }
    for t in &terminals {
        let known = pipec::syntax::PIPE_WORDS.iter().chain(pipec::syntax::THRIFT_WORDS).any(|w| *w == t.as_str())
            || symbols.contains(t)
            || lexical_terminal(t);
        assert!(known, "the grammar has a terminal \"{t}\" that no parser or lexer rule knows");
    }
    for w in pipec::syntax::PIPE_WORDS.iter().chain(pipec::syntax::THRIFT_WORDS) {
        assert!(terminals.contains(*w), "the parsers give `{w}` a meaning but the grammar never mentions it");
    }
}

/// Splits EBNF text into rules at `;` outside quotes.
fn split_rules(text: &str) -> Vec<String> {
    let mut rules = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == ';' => {
                rules.push(std::mem::take(&mut cur));
                continue;
            }
            None => {}
        }
        cur.push(c);
    }
    assert!(cur.trim().is_empty(), "text after the last rule: {cur}");
    rules
}

/// Collects identifiers (non-terminals) and quoted terminals of a rule body.
fn scan(body: &str, refs: &mut Vec<String>, terms: &mut BTreeSet<String>) {
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            let mut t = String::new();
            for d in chars.by_ref() {
                if d == c {
                    break;
                }
                t.push(d);
            }
            terms.insert(t);
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut id = c.to_string();
            while let Some(&d) = chars.peek() {
                if d.is_ascii_alphanumeric() || d == '_' {
                    id.push(d);
                    chars.next();
                } else {
                    break;
                }
            }
            refs.push(id);
        }
    }
}

#[test]
fn the_function_reference_is_generated_from_the_registry() {
    let path = repo_root().join("lang-spec/functions.md");
    let generated = pipec::builtins::reference();
    if std::env::var_os("PIPE_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write functions.md");
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == generated,
        "lang-spec/functions.md is out of date: run `PIPE_BLESS=1 cargo test -p pipe-tests spec`"
    );
}
