//! `pipec fmt`: one canonical layout for `.pipe` files. The formatter works on the token stream
//! and never adds, drops or reorders a token, so the formatted program is the same program (a
//! test checks that its checked plan and diagnostics are unchanged over the whole corpus); it
//! only decides the white space between tokens:
//!
//! - every top-level item starts a line at column 0, with at most one blank line before it
//!   (and none before the first);
//! - lines are indented by two spaces per enclosing bracket opened on an earlier line, plus two
//!   for a continuation line of an item (a `| step` of a stream); a closing bracket that starts
//!   a line goes back to the indent of the line that opened it;
//! - a `{ … }` block that spans lines has its first entry on the line after `{` and its `}` on
//!   a line of its own; one that fits on a line is written `{ a, b }`;
//! - where the author broke a line the line stays broken (at most one blank line is kept),
//!   and where they did not it stays joined, as gofmt does: line structure is the author's;
//! - within a line: one space around binary operators, `=`, `->`, `|` and after `,` and `:`,
//!   none inside `( )` and `[ ]`, before `,` `;` `)` `]` `?` `.`, after `.`, or between a name
//!   and its `(`; where a token's spacing is ambiguous (`<` in `list<string>` and in `a < b`,
//!   unary `-`) the author's choice of space or none is kept;
//! - comments stay where they are: a comment that ended a line still ends it.
//!
//! Files with lexical or syntax errors are not formatted. Idempotent: `fmt(fmt(x)) == fmt(x)`.

use logos::Logos;

use crate::source::FileId;
use crate::syntax::lexer::Tok;

/// Why a file was not formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotFormatted(pub String);

struct Tk<'a> {
    kind: Tok,
    text: &'a str,
    start: usize,
    end: usize,
}

/// The canonical layout of `text`, a `.pipe` file.
pub fn format(text: &str) -> Result<String, NotFormatted> {
    let (file, diags) = crate::syntax::parse_pipe(FileId(0), text);
    if let Some(d) = diags.iter().find(|d| d.is_error()) {
        return Err(NotFormatted(format!("it has a syntax error ({}: {})", d.code.as_str(), d.message)));
    }
    let item_starts: Vec<usize> = file.items.iter().map(|i| i.span.start as usize).collect();
    let mut tokens = Vec::new();
    let mut lexer = Tok::lexer(text);
    while let Some(t) = lexer.next() {
        let range = lexer.span();
        match t {
            Ok(kind) => tokens.push(Tk { kind, text: lexer.slice(), start: range.start, end: range.end }),
            Err(()) => return Err(NotFormatted("it has a lexical error".into())),
        }
    }
    // An item's span starts at its first token, or at the doc comment before it.
    let starts_item = |t: &Tk<'_>| item_starts.contains(&t.start);
    // The matching bracket of each opener, and whether the original broke a line inside it.
    let mut close_of = vec![usize::MAX; tokens.len()];
    let mut stack = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t.kind {
            Tok::LBrace | Tok::LParen | Tok::LBracket => stack.push(i),
            Tok::RBrace | Tok::RParen | Tok::RBracket => {
                if let Some(o) = stack.pop() {
                    close_of[o] = i;
                }
            }
            _ => {}
        }
    }
    let broken = |o: usize| close_of[o] != usize::MAX && text[tokens[o].end..tokens[close_of[o]].start].contains('\n');

    let mut out = String::with_capacity(text.len() + text.len() / 8);
    // Open brackets: (kind, indent of the line that opened it, whether it is a broken block).
    let mut open: Vec<(Tok, usize, bool)> = Vec::new();
    let mut line_indent = 0;
    // Whether the current top-level item already had a line (the next ones continue it).
    for (i, t) in tokens.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| &tokens[p]);
        let gap = prev.map_or("", |p| &text[p.end..t.start]);
        let newlines = gap.matches('\n').count();
        let closes = matches!(t.kind, Tok::RBrace | Tok::RParen | Tok::RBracket);
        let after_broken_open = prev.is_some_and(|p| p.kind == Tok::LBrace) && open.last().is_some_and(|o| o.2);
        let before_broken_close = t.kind == Tok::RBrace && open.last().is_some_and(|o| o.0 == Tok::LBrace && o.2);
        let item = open.is_empty() && starts_item(t);
        let new_line = prev.is_some()
            && (newlines > 0
                || item
                || after_broken_open
                || before_broken_close)
            // A comment that ended a line in the original stays there.
            && !(newlines == 0 && matches!(t.kind, Tok::LineComment | Tok::BlockComment) && !item);
        if prev.is_none() {
            line_indent = 0;
        } else if new_line {
            let blank = newlines >= 2 && !after_broken_open && !before_broken_close;
            out.push('\n');
            if blank {
                out.push('\n');
            }
            line_indent = if closes {
                open.last().map_or(0, |o| o.1)
            } else if let Some(o) = open.last() {
                o.1 + 2
            } else if item || comment_before_item(&tokens[i..], &starts_item) {
                0
            } else {
                2
            };
            out.extend(std::iter::repeat_n(' ', line_indent));
        } else if let Some(p) = prev {
            if space_between(p, t, !gap.is_empty(), open.last().map(|o| o.0)) {
                out.push(' ');
            }
        }
        out.push_str(t.text.trim_end());
        match t.kind {
            Tok::LBrace | Tok::LParen | Tok::LBracket => {
                open.push((t.kind, line_indent, t.kind == Tok::LBrace && broken(i)))
            }
            Tok::RBrace | Tok::RParen | Tok::RBracket => {
                open.pop();
            }
            _ => {}
        }
    }
    out.push('\n');
    Ok(out)
}

/// Whether `rest` starts with comments that come before an item (or the end of the file):
/// they are indented as the item is.
fn comment_before_item(rest: &[Tk<'_>], starts_item: &impl Fn(&Tk<'_>) -> bool) -> bool {
    let mut comments = rest.iter().take_while(|t| matches!(t.kind, Tok::LineComment | Tok::BlockComment)).peekable();
    comments.peek().is_some()
        && rest.iter().find(|t| !matches!(t.kind, Tok::LineComment | Tok::BlockComment)).is_none_or(starts_item)
}

/// Whether one space goes between `a` and `b` on a line; `spaced` is whether the author put
/// any, `inside` the innermost open bracket.
fn space_between(a: &Tk<'_>, b: &Tk<'_>, spaced: bool, inside: Option<Tok>) -> bool {
    use Tok::*;
    match (a.kind, b.kind) {
        (_, LineComment | BlockComment) | (LineComment | BlockComment, _) => true,
        (_, Comma | Semi | RParen | RBracket | Dot) | (LParen | LBracket | Dot, _) => false,
        // `{ a }` on one line; `{}` stays empty.
        (LBrace, RBrace) => false,
        (LBrace, _) | (_, LBrace | RBrace) => true,
        (Comma | Semi | Colon, _) => true,
        (_, Colon) => false,
        // A type's `?` (`string?`), but the `??` operator is spaced.
        (_, Question) => false,
        (Eq | Arrow | Pipe | EqEq | Ne | Le | Ge | Coalesce | AndAnd | OrOr | Plus | Star | Slash | Percent, _)
        | (_, Eq | Arrow | Pipe | EqEq | Ne | Le | Ge | Coalesce | AndAnd | OrOr | Plus | Star | Slash | Percent) => {
            true
        }
        // A call: `f(x)`, `window tumbling(1d)`; but `aggregate (k >= 5)` and `if (x)` keep
        // the author's space.
        (Ident, LParen) if !is_keyword_before_paren(a.text) => false,
        (RParen | RBracket | Ident, LBracket) => false,
        // `<`, `>`, `-`, `!` and the rest: a type bracket, a comparison or a sign; as written.
        _ => {
            let _ = inside;
            spaced
        }
    }
}

/// Words after which `(` opens an expression rather than a call's arguments.
fn is_keyword_before_paren(word: &str) -> bool {
    matches!(word, "aggregate" | "metrics" | "require" | "if" | "then" | "else" | "and" | "or" | "not" | "where" | "as")
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn layout_is_canonical_and_keeps_comments_and_line_structure() {
        let messy = "// A file.\n  // Two lines.\nnamespace  a.b\ninclude \"s.thrift\"\n\n\n\nsource r : R {batch=files( \"r.jsonl\" ) }  // the input\nstream s=r\n      |select{ id,\n  n = len( name )  ,\n}\n   | where n>=2 // long enough\n     // a comment inside the stream\n   | where n < 9\nfn f(x: i64)->i64 = x+1\ns -> stdout()\n";
        let want = "// A file.\n// Two lines.\nnamespace a.b\ninclude \"s.thrift\"\n\nsource r: R { batch = files(\"r.jsonl\") } // the input\nstream s = r\n  | select {\n    id,\n    n = len(name),\n  }\n  | where n >= 2 // long enough\n  // a comment inside the stream\n  | where n < 9\nfn f(x: i64) -> i64 = x + 1\ns -> stdout()\n";
        let got = format(messy).expect("formats");
        assert_eq!(got, want, "\n{got}");
        assert_eq!(format(&got).expect("again"), got, "idempotent");
    }

    #[test]
    fn broken_files_are_not_formatted() {
        assert!(format("stream s = | where").is_err());
        assert!(format("source r: R { batch = files(\"x) }").is_err());
    }
}
