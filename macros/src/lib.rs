//! `pipeline! { … }`: a Pipe program inline in Rust, checked and compiled by the same compiler
//! library as `pipec`, expanding to a module with the pipeline's typed rows and functions to
//! run it on rows in memory (`run_batch`) or with its declared connectors (`run`, `main`).
//!
//! ```ignore
//! pipe_macros::pipeline! {
//!     namespace scoring
//!     include "schemas/loans.thrift"   // relative to CARGO_MANIFEST_DIR
//!     source loans: Loan { batch = files("loans.jsonl", format = json) }
//!     stream big = loans | where amount > 10000
//!     sink out = stdout(format = json) { allow "user" as raw }
//!     big -> out
//! }
//!
//! let out = scoring::run_batch(scoring::Inputs { loans: vec![/* scoring::Loan { … } */] })?;
//! ```
//!
//! The module is named after the program's namespace (its last segment), `pipeline` without
//! one. The crate that uses the macro also depends on `pipe-runtime`.
//!
//! Diagnostics: every error `pipec check` reports is a `compile_error!` spanning the offending
//! tokens inside the macro call, with the same code and message (help, notes and the privacy
//! path follow on their own lines); an error in an included file points at the macro call and
//! names the file, line and column. Warnings become deprecation warnings at their tokens
//! (stable Rust gives procedural macros no other way to warn).
//!
//! How the program text is recovered: the macro receives Rust tokens, so it lays each token's
//! source text out again at its line and column (comments vanish, doc comments come back as
//! their text) and remembers which text range each token covers; a diagnostic's range maps
//! back to the first and last token it touches.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};

use pipec::diagnostics::{Diagnostic, Severity};
use pipec::source::{LoadError, Loader, SourceMap};

#[proc_macro]
pub fn pipeline(input: TokenStream) -> TokenStream {
    let mut text = Text::default();
    let mut top = Vec::new();
    text.stream(input, Some(&mut top));
    let manifest = std::env::var("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from("."));
    let root = manifest.join(ROOT_NAME);
    let schema = manifest.join(SCHEMA_NAME);
    // Thrift definitions written inline go to a schema file of their own, which the program
    // includes; both keep every byte offset of the macro's text.
    let ranges = thrift_ranges(&top);
    let mut program = blank(&text.out, &ranges, false);
    let thrift = if ranges.is_empty() {
        None
    } else {
        program.push_str(&format!("\ninclude {SCHEMA_NAME:?}\n"));
        Some(blank(&text.out, &ranges, true))
    };
    let loader = MacroLoader {
        root: root.clone(),
        text: program,
        schema: schema.clone(),
        thrift,
        files: Mutex::new(Vec::new()),
    };
    let mut checked = match pipec::check_program(&loader, &root) {
        Ok(c) => c,
        Err(e) => return compile_error(Span::call_site(), Span::call_site(), &format!("pipeline!: {e:?}")),
    };
    let module = pipec::codegen::module_name(&checked.program, "pipeline");
    let target = pipec::codegen::Target {
        runtime_dir: String::new(),
        base_dir: manifest.display().to_string(),
        id: String::new(),
        features: Vec::new(),
    };
    let generated = pipec::generate_module(&mut checked, &module, &target);
    let map = &checked.resolved.sources;
    let mut out = TokenStream::new();
    let mut errors = false;
    for (i, d) in checked.diagnostics.iter().enumerate() {
        match d.severity {
            Severity::Error => {
                errors = true;
                let (start, end) = text.spans(map, &root, d.primary.span);
                out.extend(compile_error(start, end, &message(map, &root, &text, d)));
            }
            Severity::Warning => {
                let (start, _) = text.spans(map, &root, d.primary.span);
                out.extend(warning(i, start, &message(map, &root, &text, d)));
            }
            Severity::Note => {}
        }
    }
    if errors {
        return out;
    }
    let Some(code) = generated else {
        out.extend(compile_error(Span::call_site(), Span::call_site(), "pipeline!: the program could not be compiled"));
        return out;
    };
    match code.parse::<TokenStream>() {
        Ok(ts) => out.extend(ts),
        Err(e) => {
            out.extend(compile_error(
                Span::call_site(),
                Span::call_site(),
                &format!("pipeline!: internal error, the generated module does not parse: {e}"),
            ));
        }
    }
    // Every file the program read (schemas, models): cargo rebuilds when one changes.
    let files = loader.files.lock().map(|f| f.clone()).unwrap_or_default();
    for f in files {
        if let Some(path) = f.to_str() {
            out.extend(
                format!("const _: &[u8] = include_bytes!({path:?});").parse::<TokenStream>().unwrap_or_default(),
            );
        }
    }
    out
}

/// The name the macro's program has in diagnostics and as the folder relative paths start in.
const ROOT_NAME: &str = "pipeline!.pipe";
/// The file of the Thrift definitions written inside the macro.
const SCHEMA_NAME: &str = "pipeline!.thrift";

/// Serves the macro's text as the root file and reads every other file from disk.
struct MacroLoader {
    root: PathBuf,
    text: String,
    schema: PathBuf,
    thrift: Option<String>,
    files: Mutex<Vec<PathBuf>>,
}

impl Loader for MacroLoader {
    fn load(&self, path: &Path) -> Result<String, LoadError> {
        if path == self.root {
            return Ok(self.text.clone());
        }
        if let (true, Some(t)) = (path == self.schema, &self.thrift) {
            return Ok(t.clone());
        }
        let text = pipec::fs_loader::FsLoader::new("").load(path)?;
        if let Ok(mut files) = self.files.lock() {
            files.push(path.to_path_buf());
        }
        Ok(text)
    }
}

/// A top-level token tree of the macro's input and the text it covers.
struct Top {
    kind: TopKind,
    start: usize,
    end: usize,
}

#[derive(PartialEq)]
enum TopKind {
    Word(String),
    Punct(char),
    Group(Delimiter),
    Literal,
    Doc,
}

/// Words that start a Thrift definition, and words that start a `.pipe` item.
const THRIFT_ITEMS: &[&str] = &["struct", "union", "exception", "enum", "senum", "typedef", "const", "service"];
const PIPE_ITEMS: &[&str] = &["namespace", "include", "import", "source", "fn", "stream", "model", "sink"];

/// The text ranges of Thrift definitions written inline: a definition runs from its word
/// (with the doc comment before it) through its `{ … }` body, annotations and separator; a
/// `typedef` or `const` up to its separator or the next item.
fn thrift_ranges(top: &[Top]) -> Vec<(usize, usize)> {
    let word = |k: usize| match top.get(k).map(|t| &t.kind) {
        Some(TopKind::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let punct = |k: usize, c: char| matches!(top.get(k).map(|t| &t.kind), Some(TopKind::Punct(p)) if *p == c);
    let mut out = Vec::new();
    let mut i = 0;
    while i < top.len() {
        let Some(w) = word(i).filter(|w| THRIFT_ITEMS.contains(w)) else {
            i += 1;
            continue;
        };
        let start = if i > 0 && top[i - 1].kind == TopKind::Doc { top[i - 1].start } else { top[i].start };
        let mut j = i + 1;
        if matches!(w, "typedef" | "const") {
            while j < top.len() {
                let next_item = word(j).is_some_and(|w| THRIFT_ITEMS.contains(&w) || PIPE_ITEMS.contains(&w))
                    || (word(j).is_some() && punct(j + 1, '-') && punct(j + 2, '>'))
                    || top[j].kind == TopKind::Doc;
                if next_item {
                    break;
                }
                j += 1;
                if punct(j - 1, ';') || punct(j - 1, ',') {
                    break;
                }
            }
        } else {
            while j < top.len() && top[j].kind != TopKind::Group(Delimiter::Brace) {
                j += 1;
            }
            j += 1;
            if matches!(top.get(j).map(|t| &t.kind), Some(TopKind::Group(Delimiter::Parenthesis))) {
                j += 1;
            }
            if punct(j, ';') || punct(j, ',') {
                j += 1;
            }
        }
        let j = j.min(top.len());
        out.push((start, top[j - 1].end));
        i = j;
    }
    out
}

/// `text` with the bytes outside (`keep`) or inside (`!keep`) `ranges` turned into spaces,
/// newlines kept: byte offsets stay the same in both halves.
fn blank(text: &str, ranges: &[(usize, usize)], keep: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        let inside = ranges.iter().any(|(s, e)| i >= *s && i < *e);
        if inside == keep || c == '\n' {
            out.push(c);
        } else {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        }
    }
    out
}

/// The program text rebuilt from tokens, and which text range each token covers.
#[derive(Default)]
struct Text {
    out: String,
    /// (start, end, span) of every token, in text order.
    tokens: Vec<(usize, usize, Span)>,
    /// The line and column where the text is now, in the Rust file's terms.
    at: Option<(usize, usize)>,
}

impl Text {
    /// Lays out a token stream; `top` (for the macro's own stream) collects each top-level
    /// token tree with its text range.
    fn stream(&mut self, ts: TokenStream, mut top: Option<&mut Vec<Top>>) {
        let mut iter = ts.into_iter().peekable();
        while let Some(tt) = iter.next() {
            let first = self.tokens.len();
            let kind = match &tt {
                TokenTree::Ident(i) => TopKind::Word(i.to_string()),
                TokenTree::Punct(p) => TopKind::Punct(p.as_char()),
                TokenTree::Group(g) => TopKind::Group(g.delimiter()),
                TokenTree::Literal(_) => TopKind::Literal,
            };
            self.tree(tt, &mut iter);
            if let Some(top) = top.as_deref_mut() {
                if self.tokens.len() > first {
                    let (start, end) = (self.tokens[first].0, self.tokens[self.tokens.len() - 1].1);
                    let kind = if self.out[start..end].starts_with('/') { TopKind::Doc } else { kind };
                    top.push(Top { kind, start, end });
                }
            }
        }
    }

    fn tree(&mut self, tt: TokenTree, iter: &mut std::iter::Peekable<proc_macro::token_stream::IntoIter>) {
        match tt {
            TokenTree::Group(g) => {
                let (open, close) = match g.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                if !open.is_empty() {
                    self.token(open, g.span_open());
                }
                self.stream(g.stream(), None);
                if !close.is_empty() {
                    self.token(close, g.span_close());
                }
            }
            TokenTree::Punct(p) => {
                // A doc comment reaches a macro as `#[doc = "…"]` (or `#![doc …]`) with the
                // comment's span: put the comment back.
                if p.as_char() == '#' {
                    if let Some(src) = p.span().source_text().filter(|t| t.starts_with("//") || t.starts_with("/*")) {
                        if matches!(iter.peek(), Some(TokenTree::Punct(b)) if b.as_char() == '!') {
                            iter.next();
                        }
                        iter.next();
                        self.token(&src, p.span());
                        return;
                    }
                }
                self.token(&p.as_char().to_string(), p.span());
            }
            TokenTree::Ident(i) => self.token(&i.to_string(), i.span()),
            TokenTree::Literal(l) => {
                let s = l.span().source_text().unwrap_or_else(|| l.to_string());
                self.token(&s, l.span());
            }
        }
    }

    /// Appends one token at its line and column, so the text keeps the layout of the source.
    fn token(&mut self, text: &str, span: Span) {
        let (line, col) = (span.line(), span.column());
        match self.at {
            Some((l, _)) if line > l => {
                self.out.extend(std::iter::repeat_n('\n', line - l));
                self.out.extend(std::iter::repeat_n(' ', col.saturating_sub(1)));
            }
            Some((l, c)) if line == l && col > c => self.out.extend(std::iter::repeat_n(' ', col - c)),
            Some((l, c)) if (line, col) == (l, c) => {}
            // Out of order (tokens from another macro's expansion): keep them apart.
            Some(_) => self.out.push(' '),
            None => self.out.extend(std::iter::repeat_n(' ', col.saturating_sub(1))),
        }
        let start = self.out.len();
        self.out.push_str(text);
        self.tokens.push((start, self.out.len(), span));
        let lines = text.matches('\n').count();
        let end_col = match text.rfind('\n') {
            Some(i) => text[i + 1..].chars().count() + 1,
            None => col + text.chars().count(),
        };
        self.at = Some((line + lines, end_col));
    }

    /// The spans of the first and last token a diagnostic range touches; the macro call for a
    /// range in another file.
    fn spans(&self, map: &SourceMap, root: &Path, span: pipec::source::Span) -> (Span, Span) {
        if !ours(map, root, span) {
            return (Span::call_site(), Span::call_site());
        }
        let (s, e) = (span.start as usize, (span.end as usize).max(span.start as usize + 1));
        let first = self.tokens.iter().find(|t| t.1 > s).or(self.tokens.last());
        let last = self.tokens.iter().rev().find(|t| t.0 < e).or(first);
        match (first, last) {
            (Some(f), Some(l)) if l.0 >= f.0 => (f.2, l.2),
            (Some(f), _) => (f.2, f.2),
            _ => (Span::call_site(), Span::call_site()),
        }
    }

    /// `note` with every `path:line:col` in the macro's text (notes are worded by the
    /// compiler, which names its files) replaced by the place in the Rust file.
    fn relocate(&self, map: &SourceMap, root: &Path, note: &str) -> String {
        let mut out = note.to_string();
        for (id, file) in map.files() {
            let path = file.path.display().to_string();
            if !ours(map, root, pipec::source::Span::new(id, 0, 0)) {
                continue;
            }
            let mut from = 0;
            while let Some(k) = out[from..].find(&path).map(|k| k + from) {
                let rest = &out[k + path.len()..];
                let nums: Vec<usize> = rest
                    .strip_prefix(':')
                    .map(|r| r.split(|c: char| !c.is_ascii_digit()).take(2).filter_map(|x| x.parse().ok()).collect())
                    .unwrap_or_default();
                let [line, col] = nums[..] else {
                    from = k + path.len();
                    continue;
                };
                let len = path.len() + 2 + line.to_string().len() + col.to_string().len();
                let offset = file.text.split_inclusive('\n').take(line.saturating_sub(1)).map(str::len).sum::<usize>();
                let at =
                    offset + file.text[offset..].chars().take(col.saturating_sub(1)).map(char::len_utf8).sum::<usize>();
                let place = self.location(map, root, pipec::source::Span::new(id, at, at + 1));
                out.replace_range(k..k + len, &place);
                from = k + place.len();
            }
        }
        out
    }

    /// `file:line:col` of a position: the Rust file's for the macro's text, else the file's own.
    fn location(&self, map: &SourceMap, root: &Path, span: pipec::source::Span) -> String {
        let file = map.get(span.file);
        if ours(map, root, span) {
            let (first, _) = self.spans(map, root, span);
            return format!("{}:{}:{}", first.file(), first.line(), first.column());
        }
        let (line, col) = file.line_col(span.start);
        format!("{}:{line}:{col}", file.path.display())
    }
}

/// Whether a span is in the macro's text (its program or its inline schema).
fn ours(map: &SourceMap, root: &Path, span: pipec::source::Span) -> bool {
    let path = &map.get(span.file).path;
    path == root || *path == root.with_file_name(SCHEMA_NAME)
}

/// The diagnostic as `pipec check` words it: code and message, then label, help, notes and the
/// path of a privacy finding, one per line.
fn message(map: &SourceMap, root: &Path, text: &Text, d: &Diagnostic) -> String {
    let mut m = format!("{}: {}", d.code.as_str(), d.message);
    if !ours(map, root, d.primary.span) {
        m.push_str(&format!("\n --> {}", text.location(map, root, d.primary.span)));
    }
    if !d.primary.message.is_empty() {
        m.push_str(&format!("\n  = {}", d.primary.message));
    }
    // Steps of a privacy path are also secondary labels (for snippets): list them once.
    for l in d.secondary.iter().filter(|l| !d.flow.iter().any(|f| f.span == l.span)) {
        m.push_str(&format!("\n  = {} ({})", l.message, text.location(map, root, l.span)));
    }
    for (i, step) in d.flow.iter().enumerate() {
        m.push_str(&format!("\n  {}. {} ({})", i + 1, step.message, text.location(map, root, step.span)));
    }
    for n in &d.notes {
        m.push_str(&format!("\n  = note: {}", text.relocate(map, root, n)));
    }
    if let Some(h) = &d.help {
        m.push_str(&format!("\n  = help: {h}"));
    }
    m
}

/// `::core::compile_error!{ "…" }` spanning `start` to `end`: rustc underlines from the
/// first token's span to the last one's.
fn compile_error(start: Span, end: Span, msg: &str) -> TokenStream {
    let colons = |span| {
        let mut a = Punct::new(':', Spacing::Joint);
        a.set_span(span);
        let mut b = Punct::new(':', Spacing::Alone);
        b.set_span(span);
        [TokenTree::Punct(a), TokenTree::Punct(b)]
    };
    let mut ts: Vec<TokenTree> = Vec::new();
    ts.extend(colons(start));
    ts.push(TokenTree::Ident(Ident::new("core", start)));
    ts.extend(colons(start));
    ts.push(TokenTree::Ident(Ident::new("compile_error", start)));
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(start);
    ts.push(TokenTree::Punct(bang));
    let mut lit = Literal::string(msg);
    lit.set_span(end);
    let mut g = Group::new(Delimiter::Brace, TokenStream::from(TokenTree::Literal(lit)));
    g.set_span(end);
    ts.push(TokenTree::Group(g));
    ts.into_iter().collect()
}

/// A warning at `span`: the use of a deprecated constant whose note is the message.
fn warning(n: usize, span: Span, msg: &str) -> TokenStream {
    let name = format!("PIPE_WARNING_{n}");
    let mut inner: TokenStream =
        format!("#[deprecated(note = {msg:?})] const {name}: () = ();").parse().unwrap_or_default();
    // The use carries the diagnostic's span, so the warning points at the tokens.
    inner.extend([
        TokenTree::Ident(Ident::new("let", span)),
        TokenTree::Ident(Ident::new("_", span)),
        TokenTree::Punct(Punct::new('=', Spacing::Alone)),
        TokenTree::Ident(Ident::new(&name, span)),
        TokenTree::Punct(Punct::new(';', Spacing::Alone)),
    ]);
    let mut out: TokenStream = "const _: () =".parse().unwrap_or_default();
    out.extend([
        TokenTree::Group(Group::new(Delimiter::Brace, inner)),
        TokenTree::Punct(Punct::new(';', Spacing::Alone)),
    ]);
    out
}
