//! The lexer shared by `.pipe` and `.thrift` files. Keywords are not tokens: both grammars treat
//! words contextually, so a Thrift field may be called `source` and a Pipe field `struct`.
//! Comments are trivia, but a `/** doc */` comment is remembered for the token after it.

use logos::Logos;

use crate::diagnostics::{Code, Diagnostic};
use crate::source::{FileId, Span};

#[derive(Logos, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[logos(skip r"[ \t\r\n\f\u{feff}]+")]
pub enum Tok {
    #[regex(r"[\p{XID_Start}_][\p{XID_Continue}]*")]
    Ident,
    #[regex(r"[0-9]+", priority = 3)]
    Int,
    #[regex(r"0[xX][0-9a-fA-F]+", priority = 4)]
    HexInt,
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?", priority = 4)]
    #[regex(r"\.[0-9]+([eE][+-]?[0-9]+)?", priority = 4)]
    #[regex(r"[0-9]+[eE][+-]?[0-9]+", priority = 4)]
    Float,
    /// A number with a unit, such as `5m` or `500ms`; the parser checks the unit.
    #[regex(r"[0-9]+[A-Za-z_][A-Za-z0-9_]*", priority = 2)]
    Duration,
    /// `@2024-01-31` or `@2024-01-31T12:00:00Z`; the parser checks the date.
    #[regex(r"@[0-9][0-9A-Za-z:.+\-]*")]
    Timestamp,
    #[regex(r#""([^"\\\n]|\\[^\n])*""#)]
    #[regex(r#"'([^'\\\n]|\\[^\n])*'"#)]
    Str,
    #[regex(r#""([^"\\\n]|\\[^\n])*"#, priority = 0)]
    #[regex(r#"'([^'\\\n]|\\[^\n])*"#, priority = 0)]
    UnterminatedStr,
    #[regex(r"//[^\n]*")]
    #[regex(r"#[^\n]*")]
    LineComment,
    #[token("/*", block_comment)]
    BlockComment,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("<=")]
    Le,
    #[token(">=")]
    Ge,
    #[token("==")]
    EqEq,
    #[token("!=")]
    Ne,
    #[token("=")]
    Eq,
    #[token(",")]
    Comma,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token(".")]
    Dot,
    #[token("|")]
    Pipe,
    #[token("->")]
    Arrow,
    #[token("??")]
    Coalesce,
    #[token("?")]
    Question,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("!")]
    Bang,
    #[token("&&")]
    AndAnd,
    /// Thrift's field reference marker (`1: Node & next`); not part of `.pipe`.
    #[token("&")]
    Amp,
    #[token("||")]
    OrOr,
    /// Stands for the end of input; never produced by logos itself.
    Eof,
}

/// Consumes a block comment up to and including `*/`; fails when it never ends.
fn block_comment(lex: &mut logos::Lexer<Tok>) -> Result<(), ()> {
    match lex.remainder().find("*/") {
        Some(end) => {
            lex.bump(end + 2);
            Ok(())
        }
        None => {
            lex.bump(lex.remainder().len());
            Err(())
        }
    }
}

impl Tok {
    /// How the token is shown in "expected …, found …" messages.
    pub fn describe(self) -> &'static str {
        match self {
            Tok::Ident => "a name",
            Tok::Int | Tok::HexInt => "an integer",
            Tok::Float => "a number",
            Tok::Duration => "a duration",
            Tok::Timestamp => "a timestamp",
            Tok::Str | Tok::UnterminatedStr => "a string",
            Tok::LineComment | Tok::BlockComment => "a comment",
            Tok::LBrace => "`{`",
            Tok::RBrace => "`}`",
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::LBracket => "`[`",
            Tok::RBracket => "`]`",
            Tok::Lt => "`<`",
            Tok::Gt => "`>`",
            Tok::Le => "`<=`",
            Tok::Ge => "`>=`",
            Tok::EqEq => "`==`",
            Tok::Ne => "`!=`",
            Tok::Eq => "`=`",
            Tok::Comma => "`,`",
            Tok::Semi => "`;`",
            Tok::Colon => "`:`",
            Tok::Dot => "`.`",
            Tok::Pipe => "`|`",
            Tok::Arrow => "`->`",
            Tok::Coalesce => "`??`",
            Tok::Question => "`?`",
            Tok::Plus => "`+`",
            Tok::Minus => "`-`",
            Tok::Star => "`*`",
            Tok::Slash => "`/`",
            Tok::Percent => "`%`",
            Tok::Bang => "`!`",
            Tok::AndAnd => "`&&`",
            Tok::Amp => "`&` (write `&&` for a logical and)",
            Tok::OrOr => "`||`",
            Tok::Eof => "the end of the file",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub span: Span,
}

/// The significant tokens of a file (ending with [`Tok::Eof`]) and, for each, the doc comment
/// that stood right before it.
#[derive(Debug, Default)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    pub docs: Vec<Option<String>>,
}

/// Splits `text` into tokens. Never fails: bad characters become diagnostics and are skipped.
pub fn lex(file: FileId, text: &str, diags: &mut Vec<Diagnostic>) -> Lexed {
    let mut out = Lexed::default();
    let mut pending_doc: Option<String> = None;
    let mut lexer = Tok::lexer(text);
    while let Some(result) = lexer.next() {
        let range = lexer.span();
        let span = Span::new(file, range.start, range.end);
        let slice = lexer.slice();
        match result {
            Ok(Tok::LineComment) => {}
            Ok(Tok::BlockComment) => {
                if slice.starts_with("/**") && slice != "/**/" {
                    pending_doc = Some(doc_text(slice));
                }
            }
            Ok(Tok::UnterminatedStr) => {
                // The string ends at the end of its line, so parsing goes on from the next one.
                diags.push(
                    Diagnostic::new(Code::E0002, Span::new(file, range.start, range.start + 1), "unterminated string")
                        .label("this string is not closed on its line")
                        .help("close the string with the quote it opened with"),
                );
                out.tokens.push(Token { kind: Tok::Str, span });
                out.docs.push(pending_doc.take());
            }
            Ok(kind) => {
                out.tokens.push(Token { kind, span });
                out.docs.push(pending_doc.take());
            }
            Err(()) if slice.starts_with("/*") => {
                diags.push(
                    Diagnostic::new(Code::E0002, Span::new(file, range.start, range.start + 2), "unterminated comment")
                        .label("this comment never ends")
                        .help("close the comment with `*/`"),
                );
            }
            Err(()) => {
                let ch = slice.chars().next().unwrap_or(' ');
                diags.push(
                    Diagnostic::new(Code::E0003, span, format!("invalid character `{}`", ch.escape_default()))
                        .label("not part of the language")
                        .help(match ch {
                            '"' | '\'' => "strings are quoted with matching `\"` or `'`",
                            _ => "remove this character",
                        }),
                );
            }
        }
    }
    out.tokens.push(Token { kind: Tok::Eof, span: Span::new(file, text.len(), text.len()) });
    out.docs.push(None);
    out
}

/// The text of a `/** … */` comment without its markers and leading `*` columns.
fn doc_text(comment: &str) -> String {
    let inner = comment.trim_start_matches("/**").trim_end_matches("*/");
    inner
        .lines()
        .map(|l| l.trim().trim_start_matches('*').trim())
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        let mut d = Vec::new();
        let l = lex(FileId(0), src, &mut d);
        assert!(d.is_empty(), "{d:?}");
        l.tokens.iter().map(|t| t.kind).collect()
    }

    #[test]
    fn numbers_durations_and_hex_are_told_apart() {
        use Tok::*;
        assert_eq!(
            kinds("5 5m 0x1F 1.5 1e5 .5 500ms"),
            vec![Int, Duration, HexInt, Float, Float, Float, Duration, Eof]
        );
    }

    #[test]
    fn comments_are_trivia_and_docs_are_kept() {
        let mut d = Vec::new();
        let l = lex(FileId(0), "# hash\n// line\n/** The id. */ x /* plain */ y", &mut d);
        assert_eq!(l.tokens.len(), 3);
        assert_eq!(l.docs[0].as_deref(), Some("The id."));
        assert_eq!(l.docs[1], None);
    }

    #[test]
    fn unterminated_comment_and_string_are_reported() {
        let mut d = Vec::new();
        lex(FileId(0), "x /* never", &mut d);
        lex(FileId(0), "\"open", &mut d);
        lex(FileId(0), "a $ b", &mut d);
        let codes: Vec<_> = d.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["E0002", "E0002", "E0003"]);
    }
}
