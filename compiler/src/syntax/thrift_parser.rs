//! A recursive-descent parser for the Apache Thrift IDL grammar. On an error it reports, skips
//! to the next definition (or field) and goes on, so every mistake in a file is reported.

use super::ast::Ident;
use super::cursor::Cursor;
use super::lexer::{lex, Tok};
use super::literals;
use super::thrift_ast::*;
use crate::diagnostics::{Code, Diagnostic};
use crate::source::{FileId, Span};

pub const DEFINITION_WORDS: &[&str] = &[
    "include",
    "cpp_include",
    "namespace",
    "const",
    "typedef",
    "enum",
    "senum",
    "struct",
    "union",
    "exception",
    "service",
];

/// Parses a Thrift file. Always returns a tree; problems are in the returned diagnostics.
pub fn parse_thrift(file: FileId, text: &str) -> (ThriftFile, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let lexed = lex(file, text, &mut diags);
    let mut p = Parser { c: Cursor::new(text, lexed, diags) };
    let mut out = ThriftFile { file, includes: Vec::new(), namespaces: Vec::new(), defs: Vec::new() };
    while !p.c.at_eof() {
        let before = p.c.pos();
        p.item(&mut out);
        if p.c.pos() == before {
            // Nothing could start here: report once and skip to the next definition keyword.
            p.c.error_expected("a Thrift definition (`struct`, `enum`, `typedef`, `const`, …)");
            p.c.bump();
            p.c.recover(at_definition);
        }
    }
    (out, p.c.finish())
}

fn at_definition(c: &Cursor) -> bool {
    c.at(Tok::Ident) && DEFINITION_WORDS.contains(&c.text())
}

struct Parser<'a> {
    c: Cursor<'a>,
}

impl Parser<'_> {
    fn item(&mut self, out: &mut ThriftFile) {
        let doc = self.c.doc();
        let start = self.c.span();
        if !self.c.at(Tok::Ident) {
            return;
        }
        match self.c.text() {
            "include" | "cpp_include" => {
                let cpp = self.c.text() == "cpp_include";
                self.c.bump();
                if let Some(s) = self.c.string("a file name in quotes") {
                    if !cpp {
                        out.includes.push(s);
                    }
                }
            }
            "namespace" => {
                self.c.bump();
                let scope = if let Some(t) = self.c.eat(Tok::Star) {
                    Some(Ident { name: "*".into(), span: t.span })
                } else {
                    self.dotted("a namespace scope such as `rs` or `*`")
                };
                let name = self.dotted("a namespace name");
                let annotations = self.annotations();
                if let (Some(scope), Some(name)) = (scope, name) {
                    out.namespaces.push(Namespace { scope, name, annotations });
                }
            }
            "const" => {
                self.c.bump();
                let ty = self.field_type();
                let name = self.name();
                self.c.expect(Tok::Eq, "`=`");
                let value = self.const_value();
                self.c.separator();
                if let (Some(ty), Some(name), Some(value)) = (ty, name, value) {
                    let span = start.to(self.c.prev_span());
                    out.defs.push(Definition {
                        name,
                        kind: DefKind::Const { ty, value },
                        annotations: Vec::new(),
                        doc,
                        span,
                    });
                }
            }
            "typedef" => {
                self.c.bump();
                let ty = self.field_type();
                let name = self.name();
                let annotations = self.annotations();
                self.c.separator();
                if let (Some(ty), Some(name)) = (ty, name) {
                    let span = start.to(self.c.prev_span());
                    out.defs.push(Definition { name, kind: DefKind::Typedef { ty }, annotations, doc, span });
                }
            }
            "enum" => {
                self.c.bump();
                let name = self.name();
                let values = self.enum_body();
                let annotations = self.annotations();
                if let Some(name) = name {
                    let span = start.to(self.c.prev_span());
                    out.defs.push(Definition { name, kind: DefKind::Enum { values }, annotations, doc, span });
                }
            }
            "struct" | "union" | "exception" => {
                let kind = match self.c.text() {
                    "struct" => StructKind::Struct,
                    "union" => StructKind::Union,
                    _ => StructKind::Exception,
                };
                self.c.bump();
                let name = self.name();
                self.c.eat_word("xsd_all");
                let fields = self.fields(Tok::LBrace, Tok::RBrace);
                let annotations = self.annotations();
                if let Some(name) = name {
                    let span = start.to(self.c.prev_span());
                    out.defs.push(Definition { name, kind: DefKind::Struct { kind, fields }, annotations, doc, span });
                }
            }
            "service" | "senum" => self.skipped_block(),
            _ => {}
        }
    }

    /// `service` (and the long-deprecated `senum`) are parsed only far enough to skip them.
    fn skipped_block(&mut self) {
        let kw = self.c.bump();
        let what = self.c.slice(kw.span).to_string();
        let name = self.name();
        if self.c.eat_word("extends").is_some() {
            self.dotted("the extended service");
        }
        if self.c.at(Tok::LBrace) {
            self.c.bump();
            self.c.recover(|_| false);
            self.c.expect(Tok::RBrace, "`}`");
        } else {
            self.c.expect(Tok::LBrace, "`{`");
            self.c.recover(at_definition);
        }
        self.annotations();
        let span = kw.span.to(name.map_or(kw.span, |n| n.span));
        self.c.report(
            Diagnostic::new(Code::N0001, span, format!("`{what}` block skipped"))
                .label("not used by Pipe")
                .help("Pipe reads only the data types of a Thrift file; RPC services are ignored"),
        );
    }

    fn enum_body(&mut self) -> Vec<EnumValue> {
        let mut values = Vec::new();
        if self.c.expect(Tok::LBrace, "`{`").is_none() {
            self.c.recover(at_definition);
            return values;
        }
        while !self.c.at(Tok::RBrace) && !self.c.at_eof() {
            let doc = self.c.doc();
            let before = self.c.pos();
            let Some(name) = self.name() else {
                self.c.recover(|c| c.at(Tok::Comma) || c.at(Tok::Semi));
                self.c.separator();
                if self.c.pos() == before {
                    // A stray closing bracket: step over it rather than loop.
                    self.c.bump();
                }
                continue;
            };
            let value = if self.c.eat(Tok::Eq).is_some() { self.int_constant() } else { None };
            let annotations = self.annotations();
            self.c.separator();
            values.push(EnumValue { name, value, annotations, doc });
        }
        self.c.expect(Tok::RBrace, "`}`");
        values
    }

    fn fields(&mut self, open: Tok, close: Tok) -> Vec<Field> {
        let mut fields = Vec::new();
        if self.c.expect(open, open.describe()).is_none() {
            self.c.recover(at_definition);
            return fields;
        }
        while !self.c.at(close) && !self.c.at_eof() && !at_definition(&self.c) {
            let before = self.c.pos();
            match self.field() {
                Some(f) => fields.push(f),
                None => {
                    self.c
                        .recover(|c| c.at(Tok::Comma) || c.at(Tok::Semi) || (c.at(Tok::Int) && c.nth(1) == Tok::Colon));
                    self.c.separator();
                }
            }
            if self.c.pos() == before {
                self.c.bump();
            }
        }
        self.c.expect(close, close.describe());
        fields
    }

    fn field(&mut self) -> Option<Field> {
        let doc = self.c.doc();
        let start = self.c.span();
        let id = if matches!(self.c.kind(), Tok::Int | Tok::HexInt | Tok::Minus | Tok::Plus) {
            let id = self.int_constant()?;
            self.c.expect(Tok::Colon, "`:` after the field id")?;
            Some(id)
        } else {
            None
        };
        let req = if self.c.eat_word("required").is_some() {
            Requiredness::Required
        } else if self.c.eat_word("optional").is_some() {
            Requiredness::Optional
        } else {
            Requiredness::Default
        };
        let ty = self.field_type()?;
        // `&` marks a field reference in C++ code generation; it means nothing to Pipe.
        self.c.eat(Tok::Amp);
        let name = self.name()?;
        let default = if self.c.eat(Tok::Eq).is_some() { Some(self.const_value()?) } else { None };
        // XSD options of old Thrift versions are accepted and ignored.
        self.c.eat_word("xsd_optional");
        self.c.eat_word("xsd_nillable");
        if self.c.eat_word("xsd_attrs").is_some() {
            self.fields(Tok::LBrace, Tok::RBrace);
        }
        let annotations = self.annotations();
        self.c.separator();
        Some(Field { id, req, ty, name, default, annotations, doc, span: start.to(self.c.prev_span()) })
    }

    fn field_type(&mut self) -> Option<TypeRef> {
        if !self.c.enter() {
            return None;
        }
        let t = self.field_type_inner();
        self.c.leave();
        t
    }

    fn field_type_inner(&mut self) -> Option<TypeRef> {
        let start = self.c.span();
        let Some(word) = self.c.at(Tok::Ident).then(|| self.c.text()) else {
            self.c.error_expected("a type");
            return None;
        };
        let kind = match word {
            "list" | "set" => {
                self.c.bump();
                self.cpp_type();
                self.c.expect(Tok::Lt, "`<`")?;
                let elem = Box::new(self.field_type()?);
                self.c.expect(Tok::Gt, "`>`")?;
                self.cpp_type();
                if word == "list" {
                    TypeKind::List(elem)
                } else {
                    TypeKind::Set(elem)
                }
            }
            "map" => {
                self.c.bump();
                self.cpp_type();
                self.c.expect(Tok::Lt, "`<`")?;
                let k = Box::new(self.field_type()?);
                self.c.expect(Tok::Comma, "`,`")?;
                let v = Box::new(self.field_type()?);
                self.c.expect(Tok::Gt, "`>`")?;
                self.cpp_type();
                TypeKind::Map(k, v)
            }
            _ => match BaseType::from_name(word) {
                Some(b) => {
                    self.c.bump();
                    TypeKind::Base(b)
                }
                None => TypeKind::Named(self.dotted("a type")?),
            },
        };
        let annotations = self.annotations();
        Some(TypeRef { kind, annotations, span: start.to(self.c.prev_span()) })
    }

    fn cpp_type(&mut self) {
        if self.c.eat_word("cpp_type").is_some() {
            self.c.string("a C++ type name in quotes");
        }
    }

    fn const_value(&mut self) -> Option<ConstValue> {
        if !self.c.enter() {
            return None;
        }
        let v = self.const_value_inner();
        self.c.leave();
        v
    }

    fn const_value_inner(&mut self) -> Option<ConstValue> {
        let start = self.c.span();
        let kind = match self.c.kind() {
            Tok::Int | Tok::HexInt => ConstKind::Int(self.int_constant()?.0),
            Tok::Float => ConstKind::Double(self.double(false)?),
            Tok::Plus | Tok::Minus if self.c.nth(1) == Tok::Float => {
                let neg = self.c.bump().kind == Tok::Minus;
                ConstKind::Double(self.double(neg)?)
            }
            Tok::Plus | Tok::Minus => ConstKind::Int(self.int_constant()?.0),
            Tok::Str => ConstKind::Str(self.c.string("a string")?.value),
            Tok::Ident => ConstKind::Ident(self.dotted("a constant")?),
            Tok::LBracket => {
                self.c.bump();
                let mut items = Vec::new();
                while !self.c.at(Tok::RBracket) && !self.c.at_eof() {
                    items.push(self.const_value()?);
                    self.c.separator();
                }
                self.c.expect(Tok::RBracket, "`]`")?;
                ConstKind::List(items)
            }
            Tok::LBrace => {
                self.c.bump();
                let mut entries = Vec::new();
                while !self.c.at(Tok::RBrace) && !self.c.at_eof() {
                    let k = self.const_value()?;
                    self.c.expect(Tok::Colon, "`:`")?;
                    let v = self.const_value()?;
                    self.c.separator();
                    entries.push((k, v));
                }
                self.c.expect(Tok::RBrace, "`}`")?;
                ConstKind::Map(entries)
            }
            _ => {
                self.c.error_expected("a constant value");
                return None;
            }
        };
        Some(ConstValue { kind, span: start.to(self.c.prev_span()) })
    }

    fn int_constant(&mut self) -> Option<(i64, Span)> {
        let start = self.c.span();
        let neg = match self.c.kind() {
            Tok::Minus => {
                self.c.bump();
                true
            }
            Tok::Plus => {
                self.c.bump();
                false
            }
            _ => false,
        };
        if !matches!(self.c.kind(), Tok::Int | Tok::HexInt) {
            self.c.error_expected("an integer");
            return None;
        }
        let t = self.c.bump();
        let raw = self.c.slice(t.span);
        let span = start.to(t.span);
        // Parse with the sign so that i64::MIN is representable.
        let text = if neg { format!("-{raw}") } else { raw.to_string() };
        let value = if raw.starts_with("0x") || raw.starts_with("0X") {
            literals::int(raw, span).map(|v| if neg { -v } else { v })
        } else {
            literals::int(&text, span)
        };
        match value {
            Ok(v) => Some((v, span)),
            Err(d) => {
                self.c.report(d);
                Some((0, span))
            }
        }
    }

    fn double(&mut self, neg: bool) -> Option<f64> {
        let t = self.c.expect(Tok::Float, "a number")?;
        match literals::float(self.c.slice(t.span), t.span) {
            Ok(v) => Some(if neg { -v } else { v }),
            Err(d) => {
                self.c.report(d);
                Some(0.0)
            }
        }
    }

    /// `( key = "value", key2, a.b = 'x'; )`, possibly absent.
    fn annotations(&mut self) -> Vec<Annotation> {
        let mut out = Vec::new();
        if self.c.eat(Tok::LParen).is_none() {
            return out;
        }
        while !self.c.at(Tok::RParen) && !self.c.at_eof() {
            let Some(key) = self.dotted("an annotation name") else {
                self.c.recover(|c| c.at(Tok::RParen));
                break;
            };
            let value =
                if self.c.eat(Tok::Eq).is_some() { self.c.string("an annotation value in quotes") } else { None };
            let span = key.span.to(self.c.prev_span());
            out.push(Annotation { key, value, span });
            self.c.separator();
        }
        self.c.expect(Tok::RParen, "`)`");
        out
    }

    fn name(&mut self) -> Option<Ident> {
        self.dotted("a name")
    }

    /// A Thrift identifier, which may contain dots: `a`, `a.b.c`.
    fn dotted(&mut self, what: &str) -> Option<Ident> {
        let Ident { mut name, mut span } = self.c.ident(what)?;
        let mut after_number = false;
        loop {
            let t = self.c.peek();
            if t.span.start != span.end {
                break;
            }
            // Thrift identifiers may have segments that start with a digit (`v1.0`, `foo.2d`),
            // which the shared lexer reads as numbers: glue adjacent pieces back together.
            match t.kind {
                Tok::Dot if self.c.nth(1) == Tok::Ident => {
                    self.c.bump();
                    let part = self.c.bump();
                    name.push('.');
                    name.push_str(self.c.slice(part.span));
                    span = span.to(part.span);
                    after_number = false;
                }
                Tok::Float | Tok::Int | Tok::Duration | Tok::Ident
                    if name.ends_with('.') || after_number || self.c.slice(t.span).starts_with('.') =>
                {
                    self.c.bump();
                    name.push_str(self.c.slice(t.span));
                    span = span.to(t.span);
                    after_number = t.kind != Tok::Ident;
                }
                Tok::Dot if matches!(self.c.nth(1), Tok::Int | Tok::Duration) => {
                    self.c.bump();
                    name.push('.');
                }
                _ => break,
            }
        }
        Some(Ident { name, span })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> ThriftFile {
        let (f, d) = parse_thrift(FileId(0), src);
        let errors: Vec<_> = d.iter().filter(|d| d.is_error()).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        f
    }

    #[test]
    fn struct_with_everything() {
        let f = parse_ok(
            r#"
            namespace rs a.b (x = "y")
            /** A thing. */
            struct S {
              /** The id. */
              1: required string id (pii = "user.unique_id", mask = 'hmac');
              -2: optional list<map<string, i32 (k = "v")>> (c) xs = [{"a": 0x10}],
              i64 plain = -5
            } (has_personal_data, a.b.c = "d")
            "#,
        );
        assert_eq!(f.namespaces[0].name.name, "a.b");
        let DefKind::Struct { fields, .. } = &f.defs[0].kind else { panic!("not a struct") };
        assert_eq!(f.defs[0].doc.as_deref(), Some("A thing."));
        assert_eq!(fields.len(), 3);
        assert_eq!(fields[0].annotations.len(), 2);
        assert_eq!(fields[0].doc.as_deref(), Some("The id."));
        assert_eq!(fields[1].id.map(|i| i.0), Some(-2));
        assert!(fields[2].id.is_none());
        assert_eq!(f.defs[0].annotations.len(), 2);
    }

    #[test]
    fn every_error_is_reported_and_parsing_goes_on() {
        let (f, d) =
            parse_thrift(FileId(0), "struct A { 1: string }\nstruct B { 1: i32 x }\nenum C { X = }\nstruct D {}");
        assert_eq!(d.iter().filter(|d| d.is_error()).count(), 2, "{d:#?}");
        let names: Vec<_> = f.defs.iter().map(|d| d.name.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "C", "D"]);
    }

    #[test]
    fn services_are_skipped_with_a_note() {
        let (f, d) = parse_thrift(FileId(0), "service S extends T { void ping() throws (1: E e), }\nstruct X {}");
        assert_eq!(f.defs.len(), 1);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].code, Code::N0001);
    }

    #[test]
    fn stray_closing_brackets_do_not_stall_the_parser() {
        let (_, d) = parse_thrift(FileId(0), "enum { ; ) # x\n struct S { ) ] 1: i32 x }");
        assert!(d.iter().all(|d| d.code == Code::E0001), "{d:#?}");
    }
}
