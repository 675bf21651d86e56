//! A recursive-descent parser for `.pipe` files. Items are parsed one by one; after an error the
//! parser skips to the next item (or the next `|` step inside a stream) and goes on, so one run
//! reports every syntax error in the file.

use super::ast::Ident;
use super::cursor::Cursor;
use super::lexer::{lex, Tok};
use super::literals;
use super::pipe_ast::*;
use crate::diagnostics::{Code, Diagnostic};
use crate::source::FileId;

pub const ITEM_WORDS: &[&str] = &["namespace", "include", "import", "source", "fn", "stream", "model", "sink"];
pub const OP_WORDS: &[&str] = &[
    "select",
    "where",
    "derive",
    "explode",
    "window",
    "group",
    "aggregate",
    "score",
    "protect",
    "union",
    "join",
    "metrics",
    "require",
    "expect",
];
/// Words with a meaning inside expressions; they cannot name a field there.
pub const RESERVED: &[&str] = &["if", "then", "else", "null", "true", "false", "and", "or", "not"];

/// Parses a `.pipe` file. Always returns a tree; problems are in the returned diagnostics.
pub fn parse_pipe(file: FileId, text: &str) -> (PipeFile, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let lexed = lex(file, text, &mut diags);
    let mut p = Parser { c: Cursor::new(text, lexed, diags) };
    let mut items = Vec::new();
    while !p.c.at_eof() {
        let before = p.c.pos();
        if let Some(item) = p.item() {
            items.push(item);
        }
        if p.c.pos() == before || !at_item(&p.c) && !p.c.at_eof() {
            if p.c.pos() == before {
                p.c.error_expected("a definition (`source`, `stream`, `fn`, `sink`, …) or an edge `a -> b`");
                p.c.bump();
            } else {
                p.c.error_expected("a new definition");
            }
            p.c.recover(at_item);
            if p.c.at(Tok::RBrace) || p.c.at(Tok::RParen) || p.c.at(Tok::RBracket) {
                p.c.bump();
            }
        }
    }
    (PipeFile { file, items }, p.c.finish())
}

fn at_item(c: &Cursor) -> bool {
    c.at_eof() || c.at(Tok::Ident) && (ITEM_WORDS.contains(&c.text()) || c.nth(1) == Tok::Arrow)
}

fn at_step_end(c: &Cursor) -> bool {
    c.at(Tok::Pipe) || at_item(c)
}

struct Parser<'a> {
    c: Cursor<'a>,
}

type Binary = (BinOp, u8);

impl Parser<'_> {
    fn item(&mut self) -> Option<Item> {
        let doc = self.c.doc();
        let start = self.c.span();
        if !self.c.at(Tok::Ident) {
            return None;
        }
        let kind = if self.c.nth(1) == Tok::Arrow {
            self.edge()?
        } else {
            match self.c.text() {
                "namespace" => {
                    self.c.bump();
                    ItemKind::Namespace(self.dotted("a namespace name")?)
                }
                "include" => {
                    self.c.bump();
                    ItemKind::Include(self.c.string("a file name in quotes")?)
                }
                "import" => {
                    self.c.bump();
                    ItemKind::Import(self.c.string("a file name in quotes")?)
                }
                "source" => self.source()?,
                "fn" => self.function()?,
                "stream" => self.stream()?,
                "model" => {
                    self.c.bump();
                    let name = self.name("a model name")?;
                    self.c.expect(Tok::Eq, "`=`")?;
                    let loader = self.expr()?;
                    ItemKind::Model(ModelDecl { name, loader })
                }
                "sink" => {
                    self.c.bump();
                    let name = self.name("a sink name")?;
                    self.c.expect(Tok::Eq, "`=`")?;
                    let connector = self.postfix()?;
                    let clearance = if self.c.at(Tok::LBrace) { Some(self.clearance()?) } else { None };
                    ItemKind::Sink(SinkDecl { name, connector, clearance })
                }
                _ => return None,
            }
        };
        Some(Item { kind, doc, span: start.to(self.c.prev_span()) })
    }

    fn edge(&mut self) -> Option<ItemKind> {
        let from = self.name("a stream name")?;
        self.c.expect(Tok::Arrow, "`->`")?;
        let to = if self.c.at(Tok::Ident) && self.c.nth(1) == Tok::LParen {
            let connector = self.postfix()?;
            let clearance = if self.c.at(Tok::LBrace) { Some(self.clearance()?) } else { None };
            EdgeTarget::Inline { connector, clearance }
        } else {
            EdgeTarget::Named(self.name("a sink name or a connector such as `files(…)`")?)
        };
        Some(ItemKind::Edge(EdgeDecl { from, to }))
    }

    fn source(&mut self) -> Option<ItemKind> {
        self.c.bump();
        let name = self.name("a source name")?;
        self.c.expect(Tok::Colon, "`:` and the record type")?;
        let ty = self.type_expr()?;
        self.c.expect(Tok::LBrace, "`{`")?;
        let mut props = Vec::new();
        while !self.c.at(Tok::RBrace) && !self.c.at_eof() {
            let before = self.c.pos();
            match self.source_prop() {
                Some(p) => props.push(p),
                None => self.c.recover(|c| c.at(Tok::Ident) && c.nth(1) == Tok::Eq),
            }
            self.c.separator();
            if self.c.pos() == before {
                break;
            }
        }
        self.c.expect(Tok::RBrace, "`}`")?;
        Some(ItemKind::Source(SourceDecl { name, ty, props }))
    }

    fn source_prop(&mut self) -> Option<SourceProp> {
        let key = self.name("a property such as `event_time`, `watermark`, `late`, `batch` or `stream`")?;
        self.c.expect(Tok::Eq, "`=`")?;
        let value = if key.name == "late" {
            let t = self.c.span();
            PropValue::Late(if self.c.eat_word("drop").is_some() {
                LatePolicy::Drop(t)
            } else if self.c.eat_word("to").is_some() {
                LatePolicy::To(self.name("a stream name")?)
            } else if self.c.eat_word("allow").is_some() {
                LatePolicy::Allow(self.expr()?)
            } else {
                self.c.error_expected("`drop`, `to <stream>` or `allow <duration>`");
                return None;
            })
        } else if key.name == "fit" {
            let binding = self.expr()?;
            let clearance = if self.c.at(Tok::LBrace) { Some(self.clearance()?) } else { None };
            PropValue::Fit(binding, clearance)
        } else {
            PropValue::Expr(self.expr()?)
        };
        Some(SourceProp { key, value })
    }

    fn function(&mut self) -> Option<ItemKind> {
        self.c.bump();
        let name = self.name("a function name")?;
        self.c.expect(Tok::LParen, "`(`")?;
        let mut params = Vec::new();
        while !self.c.at(Tok::RParen) && !self.c.at_eof() {
            let pname = self.name("a parameter name")?;
            self.c.expect(Tok::Colon, "`:` and the parameter type")?;
            let ty = self.type_expr()?;
            params.push(Param { name: pname, ty });
            if self.c.eat(Tok::Comma).is_none() {
                break;
            }
        }
        self.c.expect(Tok::RParen, "`)`")?;
        self.c.expect(Tok::Arrow, "`->` and the return type")?;
        let ret = self.type_expr()?;
        self.c.expect(Tok::Eq, "`=` and the function body")?;
        let body = self.expr()?;
        Some(ItemKind::Fn(FnDecl { name, params, ret, body }))
    }

    fn stream(&mut self) -> Option<ItemKind> {
        self.c.bump();
        let name = self.name("a stream name")?;
        self.c.expect(Tok::Eq, "`=`")?;
        let input = self.name("the input stream or source")?;
        let mut ops = Vec::new();
        while self.c.eat(Tok::Pipe).is_some() {
            let start = self.c.span();
            let kind = self.op().unwrap_or_else(|| {
                self.c.recover(at_step_end);
                OpKind::Error
            });
            if !at_step_end(&self.c) && !matches!(kind, OpKind::Error) {
                self.c.error_expected("`|` and the next step, or a new definition");
                self.c.recover(at_step_end);
            }
            ops.push(Op { kind, span: start.to(self.c.prev_span()) });
        }
        Some(ItemKind::Stream(StreamDecl { name, input, ops }))
    }

    fn op(&mut self) -> Option<OpKind> {
        if !self.c.at(Tok::Ident) || !OP_WORDS.contains(&self.c.text()) {
            let span = self.c.span();
            let found = self.c.text().to_string();
            let mut d = Diagnostic::new(Code::E0001, span, "expected a pipeline step").label("not a step").help(
                format!("steps are {}", OP_WORDS.iter().map(|w| format!("`{w}`")).collect::<Vec<_>>().join(", ")),
            );
            if let Some(dym) = crate::diagnostics::did_you_mean(&found, OP_WORDS.iter().copied()) {
                d = d.help(format!("{dym} (steps are {})", OP_WORDS.join(", ")));
            }
            self.c.error(d);
            return None;
        }
        let word = self.c.bump();
        Some(match self.c.slice(word.span) {
            "select" => OpKind::Select(self.field_block()?),
            "derive" => OpKind::Derive(self.field_block()?),
            "where" => OpKind::Where(self.expr()?),
            "require" => OpKind::Require(self.expr()?),
            "explode" => {
                let list = self.expr()?;
                self.c.expect_word("as")?;
                OpKind::Explode { list, alias: self.name("a name for each element")? }
            }
            "window" => OpKind::Window(self.expr()?),
            "group" => {
                self.c.expect_word("by")?;
                if self.c.at(Tok::LBrace) {
                    OpKind::GroupBy(self.field_block()?)
                } else {
                    let mut keys = vec![self.field_def()?];
                    while self.c.eat(Tok::Comma).is_some() {
                        keys.push(self.field_def()?);
                    }
                    OpKind::GroupBy(keys)
                }
            }
            "aggregate" => {
                let min_group = self.min_group()?;
                OpKind::Aggregate { min_group, fields: self.field_block()? }
            }
            "metrics" => {
                let min_group = self.min_group()?;
                OpKind::Metrics { min_group, args: self.field_block()? }
            }
            "expect" => {
                let min_group = self.min_group()?;
                let checks = self.expect_block()?;
                let clearance = if self.c.at(Tok::LBrace) { Some(self.clearance()?) } else { None };
                OpKind::Expect { min_group, checks, clearance }
            }
            "score" => {
                let model = self.name("a model name")?;
                let inputs = self.field_block()?;
                self.c.expect_word("as")?;
                OpKind::Score { model, inputs, alias: self.name("a name for the score")? }
            }
            "protect" => {
                self.c.expect_word("for")?;
                OpKind::ProtectFor(self.name("a sink name")?)
            }
            "join" => {
                let left = self.c.eat_word("left").is_some();
                let asof = self.c.eat_word("asof").is_some();
                let table = self.name("the source to join")?;
                let prefix =
                    if self.c.eat_word("as").is_some() { Some(self.name("a prefix for its fields")?) } else { None };
                self.c.expect_word("on")?;
                let mut on = Vec::new();
                loop {
                    let l = self.expr()?;
                    self.c.expect(Tok::Eq, "`=` and the table's side of the key")?;
                    on.push((l, self.expr()?));
                    if self.c.eat(Tok::Comma).is_none() {
                        break;
                    }
                }
                let (mut within, mut order) = (None, None);
                if self.c.eat_word("within").is_some() {
                    let first = self.expr()?;
                    let second = if self.c.eat_word("to").is_some() { Some(self.expr()?) } else { None };
                    within = Some((first, second));
                }
                if asof && self.c.eat_word("order").is_some() {
                    self.c.expect_word("by")?;
                    order = Some(self.expr()?);
                }
                OpKind::Join(Box::new(JoinOp { left, asof, table, prefix, on, within, order }))
            }
            _ => {
                let mut others = vec![self.name("a stream name")?];
                while self.c.eat(Tok::Comma).is_some() {
                    others.push(self.name("a stream name")?);
                }
                OpKind::Union(others)
            }
        })
    }

    /// The `(k >= N)` of `aggregate` and `metrics`, if written.
    fn min_group(&mut self) -> Option<Option<Expr>> {
        if self.c.eat(Tok::LParen).is_none() {
            return Some(None);
        }
        self.c.expect_word("k")?;
        self.c.expect(Tok::Ge, "`>=`")?;
        let k = self.expr()?;
        self.c.expect(Tok::RParen, "`)`")?;
        Some(Some(k))
    }

    /// `{ name = expr, path, … }` with optional separators and a trailing comma.
    fn field_block(&mut self) -> Option<Vec<FieldDef>> {
        self.c.expect(Tok::LBrace, "`{`")?;
        let mut out = Vec::new();
        while !self.c.at(Tok::RBrace) && !self.c.at_eof() {
            let before = self.c.pos();
            match self.field_def() {
                Some(f) => out.push(f),
                None => self.c.recover(|c| c.at(Tok::Comma)),
            }
            self.c.separator();
            if self.c.pos() == before {
                break;
            }
        }
        self.c.expect(Tok::RBrace, "`}`")?;
        Some(out)
    }

    /// `{ [warn] [NAME =] COND, … }` of an `expect` step.
    fn expect_block(&mut self) -> Option<Vec<ExpectCheck>> {
        self.c.expect(Tok::LBrace, "`{`")?;
        let mut out = Vec::new();
        while !self.c.at(Tok::RBrace) && !self.c.at_eof() {
            let before = self.c.pos();
            let start = self.c.span();
            // `warn` starts a check unless it is a field read (`warn == …`, `warn,`).
            let warn = self.c.at_word("warn") && matches!(self.c.nth(1), Tok::Ident | Tok::LParen | Tok::Bang);
            if warn {
                self.c.bump();
            }
            match self.field_def() {
                Some(f) => out.push(ExpectCheck { warn, name: f.name, span: start.to(f.value.span), cond: f.value }),
                None => self.c.recover(|c| c.at(Tok::Comma)),
            }
            self.c.separator();
            if self.c.pos() == before {
                break;
            }
        }
        self.c.expect(Tok::RBrace, "`}`")?;
        Some(out)
    }

    fn field_def(&mut self) -> Option<FieldDef> {
        let start = self.c.span();
        let name = if self.c.at(Tok::Ident) && self.c.nth(1) == Tok::Eq {
            let n = self.name("a field name")?;
            self.c.bump();
            Some(n)
        } else {
            None
        };
        let value = self.expr()?;
        Some(FieldDef { name, span: start.to(value.span), value })
    }

    fn clearance(&mut self) -> Option<Clearance> {
        let open = self.c.expect(Tok::LBrace, "`{`")?;
        let mut rules = Vec::new();
        while !self.c.at(Tok::RBrace) && !self.c.at_eof() {
            if self.c.eat_word("purpose").is_some() {
                self.c.expect(Tok::Eq, "`=`")?;
                rules.push(ClearanceRule::Purpose(self.c.string("a data use in quotes")?));
            } else if self.c.eat_word("allow").is_some() {
                let category = self.c.string("a data category in quotes, such as \"user.financial\"")?;
                self.c.expect_word("as")?;
                let form = self.name("a form such as `raw`, `pseudonymized` or `aggregated`")?;
                rules.push(ClearanceRule::Allow { category, form });
            } else if let Some(k) = self.c.eat_word("k") {
                self.c.expect(Tok::Ge, "`>=`")?;
                let n = self.expr()?;
                rules.push(ClearanceRule::MinRows { span: k.span.to(n.span), k: n });
            } else {
                self.c.error_expected("`allow \"<category>\" as <form>`, `purpose = \"<data use>\"` or `k >= N`");
                self.c.recover(|c| c.at_word("allow") || c.at_word("purpose") || c.at_word("k"));
                if !self.c.at(Tok::Ident) {
                    break;
                }
            }
            self.c.separator();
        }
        let close = self.c.expect(Tok::RBrace, "`}`")?;
        Some(Clearance { rules, span: open.span.to(close.span) })
    }

    fn type_expr(&mut self) -> Option<TypeExpr> {
        if !self.c.enter() {
            return None;
        }
        let t = self.type_expr_inner();
        self.c.leave();
        t
    }

    fn type_expr_inner(&mut self) -> Option<TypeExpr> {
        let name = self.dotted("a type")?;
        let mut ty = if self.c.eat(Tok::Lt).is_some() {
            let mut args = vec![self.type_expr()?];
            while self.c.eat(Tok::Comma).is_some() {
                args.push(self.type_expr()?);
            }
            self.c.expect(Tok::Gt, "`>`")?;
            let span = name.span.to(self.c.prev_span());
            TypeExpr { kind: TypeExprKind::Generic(name, args), span }
        } else {
            TypeExpr { span: name.span, kind: TypeExprKind::Named(name) }
        };
        while let Some(q) = self.c.eat(Tok::Question) {
            let span = ty.span.to(q.span);
            ty = TypeExpr { kind: TypeExprKind::Nullable(Box::new(ty)), span };
        }
        Some(ty)
    }

    pub fn expr(&mut self) -> Option<Expr> {
        if !self.c.enter() {
            return None;
        }
        let e = if self.c.at_word("if") { self.if_expr() } else { self.binary(0) };
        self.c.leave();
        e
    }

    fn if_expr(&mut self) -> Option<Expr> {
        let start = self.c.bump().span;
        let cond = self.expr()?;
        self.c.expect_word("then")?;
        let then = self.expr()?;
        self.c.expect_word("else")?;
        let other = self.expr()?;
        let span = start.to(other.span);
        Some(Expr { kind: ExprKind::If(Box::new(cond), Box::new(then), Box::new(other)), span })
    }

    fn binary_op(&self) -> Option<Binary> {
        Some(match self.c.kind() {
            Tok::OrOr => (BinOp::Or, 1),
            Tok::AndAnd => (BinOp::And, 2),
            Tok::EqEq => (BinOp::Eq, 3),
            Tok::Ne => (BinOp::Ne, 3),
            Tok::Lt => (BinOp::Lt, 3),
            Tok::Le => (BinOp::Le, 3),
            Tok::Gt => (BinOp::Gt, 3),
            Tok::Ge => (BinOp::Ge, 3),
            Tok::Coalesce => (BinOp::Coalesce, 4),
            Tok::Plus => (BinOp::Add, 5),
            Tok::Minus => (BinOp::Sub, 5),
            Tok::Star => (BinOp::Mul, 6),
            Tok::Slash => (BinOp::Div, 6),
            Tok::Percent => (BinOp::Rem, 6),
            Tok::Ident if self.c.text() == "or" => (BinOp::Or, 1),
            Tok::Ident if self.c.text() == "and" => (BinOp::And, 2),
            _ => return None,
        })
    }

    /// Precedence climbing. Comparisons do not chain; `??` groups to the right.
    fn binary(&mut self, min: u8) -> Option<Expr> {
        let mut lhs = self.unary()?;
        // Each operator deepens the tree by one, so it counts against the nesting limit.
        let mut levels = 0;
        let result = loop {
            let Some((op, prec)) = self.binary_op() else { break Some(lhs) };
            if prec < min {
                break Some(lhs);
            }
            if !self.c.enter() {
                break None;
            }
            levels += 1;
            match self.binary_step(lhs, op, prec) {
                Some(e) => lhs = e,
                None => break None,
            }
        };
        for _ in 0..levels {
            self.c.leave();
        }
        result
    }

    fn binary_step(&mut self, mut lhs: Expr, op: BinOp, prec: u8) -> Option<Expr> {
        let op_tok = self.c.bump();
        {
            let rhs = if self.c.at_word("if") {
                self.expr()?
            } else {
                let next = if op == BinOp::Coalesce { prec } else { prec + 1 };
                self.binary(next)?
            };
            let span = lhs.span.to(rhs.span);
            lhs = Expr { kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)), span };
            if prec == 3 && self.binary_op().is_some_and(|(_, p)| p == 3) {
                let at = self.c.span();
                self.c.error(
                    Diagnostic::new(Code::E0001, at, "comparisons cannot be chained")
                        .label("second comparison")
                        .secondary(op_tok.span, "first comparison")
                        .help("join the comparisons with `&&`: `a < b && b < c`"),
                );
                // Parse the rest so the error is reported once, then drop the whole comparison.
                self.c.bump();
                let rest = self.binary(prec + 1)?;
                lhs = Expr { kind: ExprKind::Error, span: span.to(rest.span) };
            }
        }
        Some(lhs)
    }

    fn unary(&mut self) -> Option<Expr> {
        let op = match self.c.kind() {
            Tok::Minus => UnOp::Neg,
            Tok::Bang => UnOp::Not,
            Tok::Ident if self.c.text() == "not" => UnOp::Not,
            _ => return self.postfix(),
        };
        let start = self.c.bump().span;
        if !self.c.enter() {
            return None;
        }
        let operand = self.unary();
        self.c.leave();
        let operand = operand?;
        let span = start.to(operand.span);
        Some(Expr { kind: ExprKind::Unary(op, Box::new(operand)), span })
    }

    fn postfix(&mut self) -> Option<Expr> {
        let mut e = self.primary()?;
        let mut levels = 0;
        let result = self.postfix_chain(&mut e, &mut levels);
        for _ in 0..levels {
            self.c.leave();
        }
        result.map(|()| e)
    }

    /// `.field`, `[index]` after a primary; each one is a level of nesting.
    fn postfix_chain(&mut self, e: &mut Expr, levels: &mut usize) -> Option<()> {
        loop {
            if matches!(self.c.kind(), Tok::Dot | Tok::LBracket) {
                if !self.c.enter() {
                    return None;
                }
                *levels += 1;
            }
            if self.c.eat(Tok::Dot).is_some() {
                let field = self.name("a field name")?;
                let span = e.span.to(field.span);
                let base = std::mem::replace(e, Expr { kind: ExprKind::Error, span });
                *e = Expr { kind: ExprKind::Field(Box::new(base), field), span };
            } else if self.c.eat(Tok::LBracket).is_some() {
                let index = self.expr()?;
                let close = self.c.expect(Tok::RBracket, "`]`")?;
                let span = e.span.to(close.span);
                let base = std::mem::replace(e, Expr { kind: ExprKind::Error, span });
                *e = Expr { kind: ExprKind::Index(Box::new(base), Box::new(index)), span };
            } else {
                return Some(());
            }
        }
    }

    fn primary(&mut self) -> Option<Expr> {
        let t = self.c.peek();
        let raw = self.c.text();
        let lit = |kind| Some(Expr { kind, span: t.span });
        let value = |r: Result<ExprKind, Diagnostic>, p: &mut Self| match r {
            Ok(k) => k,
            Err(d) => {
                p.c.report(d);
                ExprKind::Error
            }
        };
        match t.kind {
            Tok::Int | Tok::HexInt => {
                self.c.bump();
                let k = value(literals::int(raw, t.span).map(ExprKind::Int), self);
                lit(k)
            }
            Tok::Float => {
                self.c.bump();
                let k = value(literals::float(raw, t.span).map(ExprKind::Float), self);
                lit(k)
            }
            Tok::Duration => {
                self.c.bump();
                let k = value(literals::duration(raw, t.span).map(ExprKind::Duration), self);
                lit(k)
            }
            Tok::Timestamp => {
                self.c.bump();
                let k = value(literals::timestamp(raw, t.span).map(ExprKind::Timestamp), self);
                lit(k)
            }
            Tok::Str => {
                let s = self.c.string("a string")?;
                lit(ExprKind::Str(s.value))
            }
            Tok::LParen => {
                self.c.bump();
                let e = self.expr()?;
                let close = self.c.expect(Tok::RParen, "`)`")?;
                Some(Expr { span: t.span.to(close.span), kind: e.kind })
            }
            Tok::LBracket => {
                self.c.bump();
                let mut items = Vec::new();
                while !self.c.at(Tok::RBracket) && !self.c.at_eof() {
                    items.push(self.expr()?);
                    if self.c.eat(Tok::Comma).is_none() {
                        break;
                    }
                }
                let close = self.c.expect(Tok::RBracket, "`]`")?;
                Some(Expr { kind: ExprKind::List(items), span: t.span.to(close.span) })
            }
            Tok::Ident => match raw {
                "null" => {
                    self.c.bump();
                    lit(ExprKind::Null)
                }
                "true" | "false" => {
                    self.c.bump();
                    lit(ExprKind::Bool(raw == "true"))
                }
                "if" => self.if_expr(),
                "then" | "else" | "and" | "or" => {
                    self.c.error_expected("an expression");
                    None
                }
                _ => {
                    let name = self.name("a name")?;
                    if self.c.at(Tok::LParen) {
                        self.call(name)
                    } else {
                        Some(Expr { span: name.span, kind: ExprKind::Name(name) })
                    }
                }
            },
            _ => {
                self.c.error_expected("an expression");
                None
            }
        }
    }

    fn call(&mut self, name: Ident) -> Option<Expr> {
        self.c.bump();
        let mut args = Vec::new();
        while !self.c.at(Tok::RParen) && !self.c.at_eof() {
            let arg_name = if self.c.at(Tok::Ident) && self.c.nth(1) == Tok::Eq {
                let n = self.name("an argument name")?;
                self.c.bump();
                Some(n)
            } else {
                None
            };
            args.push(Arg { name: arg_name, value: self.expr()? });
            if self.c.eat(Tok::Comma).is_none() {
                break;
            }
        }
        let close = self.c.expect(Tok::RParen, "`)` or `,`")?;
        let span = name.span.to(close.span);
        Some(Expr { kind: ExprKind::Call(name, args), span })
    }

    fn name(&mut self, what: &str) -> Option<Ident> {
        self.c.ident(what)
    }

    fn dotted(&mut self, what: &str) -> Option<Ident> {
        let mut id = self.name(what)?;
        while self.c.at(Tok::Dot) && self.c.nth(1) == Tok::Ident {
            self.c.bump();
            let part = self.c.bump();
            id.name.push('.');
            id.name.push_str(self.c.slice(part.span));
            id.span = id.span.to(part.span);
        }
        Some(id)
    }
}
