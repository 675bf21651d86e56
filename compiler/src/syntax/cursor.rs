//! A cursor over tokens shared by the Pipe and Thrift parsers: lookahead, expectation errors and
//! recovery. Parsers never stop at the first error: they report it, skip to a point where the
//! grammar can resume, and go on. Only the first error at a given token is reported, so one
//! mistake does not produce a cascade.

use super::ast::{Ident, StrLit};
use super::lexer::{Lexed, Tok, Token};
use super::literals;
use crate::diagnostics::{Code, Diagnostic};
use crate::source::Span;

#[derive(Debug)]
pub struct Cursor<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    docs: Vec<Option<String>>,
    pos: usize,
    /// Position of the last reported error, to suppress cascades at the same token.
    last_error_at: Option<usize>,
    /// Nesting depth, bounded so adversarial input cannot overflow the stack.
    depth: usize,
    pub diags: Vec<Diagnostic>,
}

/// Deeper nesting than this is reported instead of recursed into.
pub const MAX_DEPTH: usize = 100;

impl<'a> Cursor<'a> {
    pub fn new(text: &'a str, lexed: Lexed, diags: Vec<Diagnostic>) -> Cursor<'a> {
        Cursor { text, tokens: lexed.tokens, docs: lexed.docs, pos: 0, last_error_at: None, depth: 0, diags }
    }

    pub fn peek(&self) -> Token {
        self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    pub fn kind(&self) -> Tok {
        self.peek().kind
    }

    pub fn nth(&self, n: usize) -> Tok {
        self.tokens[(self.pos + n).min(self.tokens.len() - 1)].kind
    }

    pub fn nth_text(&self, n: usize) -> &'a str {
        let t = self.tokens[(self.pos + n).min(self.tokens.len() - 1)];
        &self.text[t.span.start as usize..t.span.end as usize]
    }

    pub fn text(&self) -> &'a str {
        self.nth_text(0)
    }

    pub fn slice(&self, span: Span) -> &'a str {
        &self.text[span.start as usize..span.end as usize]
    }

    pub fn span(&self) -> Span {
        self.peek().span
    }

    /// The span of the token before the current one (for "ends here" spans).
    pub fn prev_span(&self) -> Span {
        self.tokens[self.pos.saturating_sub(1)].span
    }

    pub fn at(&self, kind: Tok) -> bool {
        self.kind() == kind
    }

    pub fn at_eof(&self) -> bool {
        self.at(Tok::Eof)
    }

    /// Is the current token the word `word`?
    pub fn at_word(&self, word: &str) -> bool {
        self.at(Tok::Ident) && self.text() == word
    }

    pub fn doc(&self) -> Option<String> {
        self.docs.get(self.pos).cloned().flatten()
    }

    pub fn bump(&mut self) -> Token {
        let t = self.peek();
        if t.kind != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    pub fn eat(&mut self, kind: Tok) -> Option<Token> {
        self.at(kind).then(|| self.bump())
    }

    pub fn eat_word(&mut self, word: &str) -> Option<Token> {
        self.at_word(word).then(|| self.bump())
    }

    /// Consumes `kind` or reports "expected `what`".
    pub fn expect(&mut self, kind: Tok, what: &str) -> Option<Token> {
        if let Some(t) = self.eat(kind) {
            return Some(t);
        }
        self.error_expected(what);
        None
    }

    pub fn expect_word(&mut self, word: &str) -> Option<Token> {
        if let Some(t) = self.eat_word(word) {
            return Some(t);
        }
        self.error_expected(&format!("`{word}`"));
        None
    }

    /// Reports "expected X, found Y" at the current token, once per position.
    pub fn error_expected(&mut self, what: &str) {
        let found = match self.kind() {
            Tok::Ident => format!("`{}`", self.text()),
            k => k.describe().to_string(),
        };
        let span = self.span();
        let help = match self.kind() {
            Tok::Eof => format!("the file ended early: add {what}"),
            _ => format!("write {what} here"),
        };
        self.error(
            Diagnostic::new(Code::E0001, span, format!("expected {what}, found {found}"))
                .label(format!("expected {what}"))
                .help(help),
        );
    }

    pub fn error(&mut self, d: Diagnostic) {
        if self.last_error_at == Some(self.pos) {
            return;
        }
        self.last_error_at = Some(self.pos);
        self.diags.push(d);
    }

    /// Reports at a span without the cascade guard (for checks on already-consumed tokens).
    pub fn report(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Skips tokens until `stop` says the grammar can resume at depth 0 of brackets, or a
    /// closing bracket that belongs to an enclosing construct is reached.
    pub fn recover(&mut self, stop: impl Fn(&Cursor) -> bool) {
        let mut depth = 0usize;
        while !self.at_eof() {
            if depth == 0 && stop(self) {
                return;
            }
            match self.kind() {
                Tok::LBrace | Tok::LParen | Tok::LBracket => depth += 1,
                Tok::RBrace | Tok::RParen | Tok::RBracket => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                }
                _ => {}
            }
            self.bump();
        }
    }

    /// Enters a nested construct; returns false (after reporting) when nesting is too deep.
    pub fn enter(&mut self) -> bool {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let span = self.span();
            self.error(
                Diagnostic::new(Code::E0001, span, "nesting is too deep")
                    .label("nested too deeply")
                    .help(format!("split the expression: at most {MAX_DEPTH} levels of nesting are allowed")),
            );
            return false;
        }
        true
    }

    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// A name, or "expected `what`".
    pub fn ident(&mut self, what: &str) -> Option<Ident> {
        let t = self.expect(Tok::Ident, what)?;
        Some(Ident { name: self.slice(t.span).to_string(), span: t.span })
    }

    /// A string literal with its escapes applied; a bad escape is reported and the string kept.
    pub fn string(&mut self, what: &str) -> Option<StrLit> {
        let t = self.expect(Tok::Str, what)?;
        match literals::string(self.slice(t.span), t.span) {
            Ok(value) => Some(StrLit { value, span: t.span }),
            Err(d) => {
                self.report(d);
                Some(StrLit { value: String::new(), span: t.span })
            }
        }
    }

    /// An optional `,` or `;` between list items.
    pub fn separator(&mut self) {
        if self.eat(Tok::Comma).is_none() {
            self.eat(Tok::Semi);
        }
    }

    /// Position marker for "did this loop iteration make progress?" guards.
    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn finish(self) -> Vec<Diagnostic> {
        self.diags
    }
}
