//! `pipec lsp`: a Language Server over stdio, on the same library as `pipec check` (no second
//! parser or checker). Every open `.pipe` document is checked as the root of its program, with
//! the editor's unsaved text of any open file (a `.thrift` included, say) in place of the file
//! on disk. What it answers:
//!
//! - diagnostics as the text changes, for every file of the program (an error in an included
//!   Thrift file shows there), each with its code, help, secondary spans and, for privacy
//!   findings, the path the data took as related information;
//! - hover: an expression's type (with `?` when it can be null) and the privacy labels its value
//!   carries with their forms; a source's, stream's or sink's row;
//! - go to definition: streams, sources, sinks, models, functions, Thrift types, fields read
//!   from a record (into the `.thrift` file), fields a step made, included files;
//! - completion: the fields of a struct after `.`, and otherwise the fields of the row at the
//!   cursor, functions, aggregates, streams, sources, sinks and keywords;
//! - document symbols: a program's sources, streams, sinks, models and functions; a Thrift
//!   file's structs and enums with their fields.
//!
//! Documents are synchronized whole (each change sends the full text): a check of the examples
//! takes a few milliseconds, well below a keystroke.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{Completion, DocumentSymbolRequest, GotoDefinition, HoverRequest, Request as _};
use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionOptions, CompletionParams, CompletionResponse,
    DiagnosticRelatedInformation, DiagnosticSeverity, DidChangeTextDocumentParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, DocumentSymbol, DocumentSymbolParams, DocumentSymbolResponse, GotoDefinitionParams,
    GotoDefinitionResponse, Hover, HoverContents, HoverParams, HoverProviderCapability, Location, MarkupContent,
    MarkupKind, NumberOrString, OneOf, Position, PublishDiagnosticsParams, Range, ServerCapabilities, SymbolKind,
    TextDocumentSyncCapability, TextDocumentSyncKind, Uri,
};

use crate::diagnostics::{Diagnostic, Severity};
use crate::fs_loader::FsLoader;
use crate::hir::{Program, Step, TExpr, TExprKind};
use crate::source::{LoadError, Loader, SourceFile, Span};
use crate::types::Type;
use crate::Checked;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Serves the protocol on standard input and output until the client says `exit`.
pub fn serve_stdio() -> Result<(), Error> {
    let (connection, io) = Connection::stdio();
    serve(&connection)?;
    drop(connection);
    io.join()?;
    Ok(())
}

/// What the server can do, as the `initialize` response announces it.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into()]),
            ..CompletionOptions::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// Serves one client on `connection`: the handshake, then every message until `shutdown`.
pub fn serve(connection: &Connection) -> Result<(), Error> {
    connection.initialize(serde_json::to_value(capabilities())?)?;
    let mut server = Server::default();
    for msg in &connection.receiver {
        match msg {
            Message::Request(req) => {
                if connection.handle_shutdown(&req)? {
                    return Ok(());
                }
                let resp = server.request(req);
                connection.sender.send(Message::Response(resp))?;
            }
            Message::Notification(n) => {
                for out in server.notification(n) {
                    connection.sender.send(Message::Notification(out))?;
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(())
}

/// The open documents, and which files last got diagnostics (to clear them when fixed).
#[derive(Debug, Default)]
struct Server {
    docs: HashMap<PathBuf, String>,
    published: HashSet<PathBuf>,
}

/// The open documents over the file system: the compiler reads the editor's text.
struct Overlay<'a> {
    docs: &'a HashMap<PathBuf, String>,
    fs: FsLoader,
}

impl Loader for Overlay<'_> {
    fn load(&self, path: &Path) -> Result<String, LoadError> {
        match self.docs.get(path) {
            Some(text) => Ok(text.clone()),
            None => self.fs.load(path),
        }
    }
}

fn path_of(uri: &Uri) -> Option<PathBuf> {
    let rest = uri.as_str().strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) =
                bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    Some(PathBuf::from(String::from_utf8(out).ok()?))
}

fn uri_of(path: &Path) -> Option<Uri> {
    let mut s = String::from("file://");
    for b in path.to_str()?.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s.parse().ok()
}

/// The LSP position (line, UTF-16 column) of a byte offset.
fn position(file: &SourceFile, offset: u32) -> Position {
    let offset = (offset as usize).min(file.text.len());
    let start = file.text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = file.text[..start].matches('\n').count();
    let col: usize = file.text.get(start..offset).map_or(0, |s| s.encode_utf16().count());
    Position { line: line as u32, character: col as u32 }
}

/// The byte offset of an LSP position in `text`.
fn offset(text: &str, pos: Position) -> usize {
    let mut start = 0;
    for _ in 0..pos.line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let mut units = 0;
    for (i, c) in text[start..line_end].char_indices() {
        if units >= pos.character as usize {
            return start + i;
        }
        units += c.len_utf16();
    }
    line_end
}

fn range(file: &SourceFile, span: Span) -> Range {
    Range { start: position(file, span.start), end: position(file, span.end) }
}

fn location(checked: &Checked, span: Span) -> Option<Location> {
    let file = checked.resolved.sources.get(span.file);
    Some(Location { uri: uri_of(&file.path)?, range: range(file, span) })
}

impl Server {
    fn check(&self, root: &Path) -> Option<Checked> {
        let loader = Overlay { docs: &self.docs, fs: FsLoader::new("/") };
        crate::check_program(&loader, root).ok()
    }

    fn notification(&mut self, n: Notification) -> Vec<Notification> {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidOpenTextDocumentParams>(n.params) {
                    if let Some(path) = path_of(&p.text_document.uri) {
                        self.docs.insert(path, p.text_document.text);
                    }
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidChangeTextDocumentParams>(n.params) {
                    if let (Some(path), Some(change)) =
                        (path_of(&p.text_document.uri), p.content_changes.into_iter().last())
                    {
                        self.docs.insert(path, change.text);
                    }
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidCloseTextDocumentParams>(n.params) {
                    if let Some(path) = path_of(&p.text_document.uri) {
                        self.docs.remove(&path);
                    }
                }
            }
            _ => return Vec::new(),
        }
        self.diagnostics()
    }

    /// Checks every open `.pipe` document and publishes the diagnostics of every file of their
    /// programs, clearing those of files that no longer have any.
    fn diagnostics(&mut self) -> Vec<Notification> {
        let mut by_file: HashMap<PathBuf, Vec<lsp_types::Diagnostic>> = HashMap::new();
        let roots: Vec<PathBuf> =
            self.docs.keys().filter(|p| p.extension().is_some_and(|e| e == "pipe")).cloned().collect();
        for root in roots {
            by_file.entry(root.clone()).or_default();
            let Some(checked) = self.check(&root) else { continue };
            for d in &checked.diagnostics {
                let file = checked.resolved.sources.get(d.primary.span.file);
                let entry = by_file.entry(file.path.clone()).or_default();
                let converted = convert(&checked, d);
                if !entry.contains(&converted) {
                    entry.push(converted);
                }
            }
        }
        let mut out = Vec::new();
        for stale in self.published.iter().filter(|p| !by_file.contains_key(*p)) {
            if let Some(uri) = uri_of(stale) {
                out.push(publish(uri, Vec::new()));
            }
        }
        self.published = by_file.keys().cloned().collect();
        for (path, diags) in by_file {
            if let Some(uri) = uri_of(&path) {
                out.push(publish(uri, diags));
            }
        }
        out
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            HoverRequest::METHOD => serde_json::from_value::<HoverParams>(req.params)
                .map(|p| serde_json::to_value(self.hover(&p)))
                .map_err(|e| e.to_string()),
            GotoDefinition::METHOD => serde_json::from_value::<GotoDefinitionParams>(req.params)
                .map(|p| serde_json::to_value(self.definition(&p).map(GotoDefinitionResponse::Scalar)))
                .map_err(|e| e.to_string()),
            Completion::METHOD => serde_json::from_value::<CompletionParams>(req.params)
                .map(|p| serde_json::to_value(CompletionResponse::Array(self.complete(&p))))
                .map_err(|e| e.to_string()),
            DocumentSymbolRequest::METHOD => serde_json::from_value::<DocumentSymbolParams>(req.params)
                .map(|p| serde_json::to_value(DocumentSymbolResponse::Nested(self.symbols(&p.text_document.uri))))
                .map_err(|e| e.to_string()),
            other => {
                return Response::new_err(id, ErrorCode::MethodNotFound as i32, format!("unsupported request {other}"))
            }
        };
        match result {
            Ok(Ok(value)) => Response::new_ok(id, value),
            Ok(Err(e)) => Response::new_err(id, ErrorCode::InternalError as i32, e.to_string()),
            Err(e) => Response::new_err(id, ErrorCode::InvalidParams as i32, e),
        }
    }

    /// The checked program a position is in (its `.pipe` root is the document itself), the
    /// file's id in it, and the byte offset.
    fn at(&self, uri: &Uri, pos: Position) -> Option<(Checked, crate::source::FileId, usize)> {
        let path = path_of(uri)?;
        let text = self.docs.get(&path)?;
        let at = offset(text, pos);
        let checked = self.check(&path)?;
        let file = checked.resolved.sources.find(&path)?;
        Some((checked, file, at))
    }

    fn hover(&self, p: &HoverParams) -> Option<Hover> {
        let (checked, file, at) =
            self.at(&p.text_document_position_params.text_document.uri, p.text_document_position_params.position)?;
        let f = checked.resolved.sources.get(file);
        if let Some(e) = innermost(&checked.program, file, at) {
            let text = checked.resolved.sources.text(e.span);
            let labels = checked.privacy.exprs.get(&e.span).map(labels_text).unwrap_or_else(|| "no labels".into());
            let value = format!("```pipe\n{}: {}\n```\nprivacy: {labels}", first_line(text), e.ty);
            return Some(hover(value, range(f, e.span)));
        }
        let word = word_at(&f.text, at)?;
        let p = &checked.program;
        let row = |name: &str, what: &str, fields: &crate::hir::Row| {
            let labels = checked.privacy.streams.get(name).map(labels_text).unwrap_or_else(|| "no labels".into());
            let fields: Vec<String> = fields.fields.iter().map(|(n, t)| format!("  {n}: {t}")).collect();
            format!("```pipe\n{what} {name} {{\n{}\n}}\n```\nprivacy: {labels}", fields.join("\n"))
        };
        let value = if let Some(s) = p.sources.iter().find(|s| s.name == word.0) {
            row(&s.name, "source", &s.row)
        } else if let Some(s) = p.streams.iter().find(|s| s.name == word.0) {
            row(&s.name, "stream", &s.row)
        } else if let Some(s) = p.sinks.iter().find(|s| s.name == word.0) {
            let allows: Vec<String> =
                s.allows.iter().map(|a| format!("allow \"{}\" as {}", a.category, a.form)).collect();
            format!("```pipe\nsink {}\n{}\n```", s.name, allows.join("\n"))
        } else if let Some(b) = crate::builtins::function(&word.0) {
            format!("```pipe\n{}\n```\n{}", b.signature, b.doc)
        } else if let Some(b) = crate::builtins::aggregate(&word.0) {
            format!("```pipe\n{}\n```\n{}", b.signature, b.doc)
        } else {
            return None;
        };
        Some(hover(value, Range { start: position(f, word.1 as u32), end: position(f, word.2 as u32) }))
    }

    fn definition(&self, p: &GotoDefinitionParams) -> Option<Location> {
        let (checked, file, at) =
            self.at(&p.text_document_position_params.text_document.uri, p.text_document_position_params.position)?;
        let f = checked.resolved.sources.get(file);
        let prog = &checked.program;
        let schema = &checked.resolved.schema;
        if let Some(e) = innermost(prog, file, at) {
            match &e.kind {
                TExprKind::Field(base, name) => {
                    if let Type::Struct(id, _) = base.ty.non_null() {
                        if let Some(field) = schema.get_struct(*id).field(name) {
                            return location(&checked, field.span);
                        }
                    }
                }
                TExprKind::Var(name) => {
                    if let Some(span) = field_origin(&checked, e.span, name) {
                        return location(&checked, span);
                    }
                }
                TExprKind::Call(crate::hir::Callee::User(name, _), _) => {
                    if let Some(func) = prog.functions.iter().find(|x| &x.name == name) {
                        return location(&checked, func.span);
                    }
                }
                _ => {}
            }
        }
        // An included file: the string of an `include`/`import` line.
        let line_start = f.text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line = &f.text[line_start..f.text[at..].find('\n').map_or(f.text.len(), |i| at + i)];
        if line.starts_with("include") || line.starts_with("import") {
            if let Some(target) = line.split('"').nth(1) {
                let dir = f.path.parent().unwrap_or(Path::new("/"));
                let path = dir.join(target);
                return Some(Location { uri: uri_of(&path)?, range: Range::default() });
            }
        }
        let (word, ..) = word_at(&f.text, at)?;
        let span = prog
            .sources
            .iter()
            .find(|s| s.name == word)
            .map(|s| s.span)
            .or_else(|| prog.streams.iter().find(|s| s.name == word).map(|s| s.span))
            .or_else(|| prog.sinks.iter().find(|s| s.name == word).map(|s| s.span))
            .or_else(|| prog.models.iter().find(|s| s.name == word).map(|s| s.span))
            .or_else(|| prog.functions.iter().find(|s| s.name == word).map(|s| s.span))
            .or_else(|| schema.structs.iter().find(|s| s.name == word).map(|s| s.span))
            .or_else(|| schema.enums.iter().find(|s| s.name == word).map(|s| s.span))?;
        location(&checked, span)
    }

    fn complete(&self, p: &CompletionParams) -> Vec<CompletionItem> {
        let uri = &p.text_document_position.text_document.uri;
        let Some(path) = path_of(uri) else { return Vec::new() };
        let Some(text) = self.docs.get(&path) else { return Vec::new() };
        let at = offset(text, p.text_document_position.position);
        let ident_start = text[..at]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
            .last()
            .map_or(at, |(i, _)| i);
        if text[..ident_start].ends_with('.') {
            return self.complete_member(&path, text, ident_start - 1, at);
        }
        let mut items = Vec::new();
        if let Some(checked) = self.check(&path) {
            let prog = &checked.program;
            if let Some(file) = checked.resolved.sources.find(&path) {
                for (name, ty) in row_at(prog, file, at) {
                    items.push(item(name, CompletionItemKind::FIELD, ty.to_string()));
                }
            }
            for s in &prog.sources {
                items.push(item(s.name.clone(), CompletionItemKind::MODULE, "source".into()));
            }
            for s in &prog.streams {
                items.push(item(s.name.clone(), CompletionItemKind::MODULE, "stream".into()));
            }
            for s in prog.sinks.iter().filter(|s| !s.name.contains("->")) {
                items.push(item(s.name.clone(), CompletionItemKind::MODULE, "sink".into()));
            }
            for s in &prog.functions {
                items.push(item(s.name.clone(), CompletionItemKind::FUNCTION, format!("fn -> {}", s.ret)));
            }
        }
        for f in crate::builtins::functions::ALL {
            items.push(item(f.name.into(), CompletionItemKind::FUNCTION, f.signature.into()));
        }
        for f in crate::builtins::aggregates::ALL {
            items.push(item(f.name.into(), CompletionItemKind::FUNCTION, f.signature.into()));
        }
        for k in crate::syntax::PIPE_WORDS {
            items.push(item((*k).into(), CompletionItemKind::KEYWORD, "keyword".into()));
        }
        items
    }

    /// Fields after `.`: the text is checked with the `.` and what follows it removed, and the
    /// fields are those of the struct-typed expression that then ends where the `.` was.
    fn complete_member(&self, path: &Path, text: &str, dot: usize, at: usize) -> Vec<CompletionItem> {
        let mut docs = self.docs.clone();
        let mut repaired = String::with_capacity(text.len());
        repaired.push_str(&text[..dot]);
        repaired.push_str(&text[at..]);
        docs.insert(path.to_path_buf(), repaired);
        let loader = Overlay { docs: &docs, fs: FsLoader::new("/") };
        let Ok(checked) = crate::check_program(&loader, path) else { return Vec::new() };
        let Some(file) = checked.resolved.sources.find(path) else { return Vec::new() };
        let mut base: Option<&TExpr> = None;
        walk(&checked.program, &mut |e| {
            if e.span.file == file && e.span.end as usize == dot && base.is_none_or(|b| b.span.len() > e.span.len()) {
                base = Some(e);
            }
        });
        let mut ty = base.map(|b| b.ty.non_null().clone());
        while let Some(Type::List(t) | Type::Set(t)) = &ty {
            ty = Some(t.non_null().clone());
        }
        let Some(Type::Struct(id, _)) = ty else { return Vec::new() };
        let s = checked.resolved.schema.get_struct(id);
        s.fields
            .iter()
            .map(|f| {
                let mut i = item(f.name.clone(), CompletionItemKind::FIELD, f.ty.to_string());
                i.documentation = f.doc.clone().map(lsp_types::Documentation::String);
                i
            })
            .collect()
    }

    fn symbols(&self, uri: &Uri) -> Vec<DocumentSymbol> {
        let Some(path) = path_of(uri) else { return Vec::new() };
        let root = if path.extension().is_some_and(|e| e == "pipe") {
            Some(path.clone())
        } else {
            // A Thrift file: any open program that includes it.
            self.docs.keys().find(|p| p.extension().is_some_and(|e| e == "pipe")).cloned()
        };
        let Some(checked) = root.and_then(|r| self.check(&r)) else { return Vec::new() };
        let Some(file) = checked.resolved.sources.find(&path) else { return Vec::new() };
        let f = checked.resolved.sources.get(file);
        let sym = |name: &str, detail: String, kind: SymbolKind, span: Span, children: Option<Vec<DocumentSymbol>>| {
            #[allow(deprecated, reason = "`deprecated` is a required field of the protocol's struct")]
            DocumentSymbol {
                name: name.to_string(),
                detail: Some(detail),
                kind,
                tags: None,
                deprecated: None,
                range: range(f, span),
                selection_range: range(f, span),
                children,
            }
        };
        let p = &checked.program;
        let mut out = Vec::new();
        for s in p.sources.iter().filter(|s| s.span.file == file) {
            out.push(sym(&s.name, format!("source: {}", s.record), SymbolKind::INTERFACE, s.span, None));
        }
        for s in p.streams.iter().filter(|s| s.span.file == file) {
            out.push(sym(&s.name, "stream".into(), SymbolKind::FUNCTION, s.span, None));
        }
        for s in p.sinks.iter().filter(|s| s.span.file == file && !s.name.contains("->")) {
            out.push(sym(&s.name, format!("sink: {}", s.connector.name), SymbolKind::EVENT, s.span, None));
        }
        for s in p.models.iter().filter(|s| s.span.file == file) {
            out.push(sym(&s.name, format!("model: {}", s.kind), SymbolKind::OBJECT, s.span, None));
        }
        for s in p.functions.iter().filter(|s| s.span.file == file) {
            out.push(sym(&s.name, format!("fn -> {}", s.ret), SymbolKind::METHOD, s.span, None));
        }
        let schema = &checked.resolved.schema;
        for s in schema.structs.iter().filter(|s| s.span.file == file) {
            let fields = s
                .fields
                .iter()
                .filter(|x| x.span.file == file && x.span.start >= s.span.start && x.span.end <= s.span.end)
                .map(|x| sym(&x.name, x.ty.to_string(), SymbolKind::FIELD, x.span, None))
                .collect();
            out.push(sym(&s.name, "struct".into(), SymbolKind::STRUCT, s.span, Some(fields)));
        }
        for s in schema.enums.iter().filter(|s| s.span.file == file) {
            out.push(sym(&s.name, "enum".into(), SymbolKind::ENUM, s.span, None));
        }
        out.sort_by_key(|s| (s.range.start.line, s.range.start.character));
        out
    }
}

fn item(label: String, kind: CompletionItemKind, detail: String) -> CompletionItem {
    CompletionItem { label, kind: Some(kind), detail: Some(detail), ..CompletionItem::default() }
}

fn hover(value: String, range: Range) -> Hover {
    Hover { contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value }), range: Some(range) }
}

fn publish(uri: Uri, diagnostics: Vec<lsp_types::Diagnostic>) -> Notification {
    Notification::new(
        PublishDiagnostics::METHOD.to_string(),
        PublishDiagnosticsParams { uri, diagnostics, version: None },
    )
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

fn labels_text(labels: &crate::privacy::label::Labels) -> String {
    if labels.is_empty() {
        return "no labels".into();
    }
    let mut parts: Vec<String> = labels
        .iter()
        .map(|l| {
            let how = if l.implicit { ", implicit: decides which records arrive" } else { "" };
            format!("`{}` {}{how}", l.category, l.form.name())
        })
        .collect();
    parts.sort();
    parts.join("; ")
}

/// A compiler diagnostic in the protocol's terms: secondary spans and the privacy path become
/// related information, the help line follows the message.
fn convert(checked: &Checked, d: &Diagnostic) -> lsp_types::Diagnostic {
    let file = checked.resolved.sources.get(d.primary.span.file);
    let mut message = d.message.clone();
    if !d.primary.message.is_empty() && d.primary.message != d.message {
        message.push_str(&format!(": {}", d.primary.message));
    }
    for n in &d.notes {
        message.push_str(&format!("\nnote: {n}"));
    }
    if let Some(h) = &d.help {
        message.push_str(&format!("\nhelp: {h}"));
    }
    let related: Vec<DiagnosticRelatedInformation> = d
        .secondary
        .iter()
        .chain(&d.flow)
        .filter_map(|l| {
            Some(DiagnosticRelatedInformation { location: location(checked, l.span)?, message: l.message.clone() })
        })
        .collect();
    lsp_types::Diagnostic {
        range: range(file, d.primary.span),
        severity: Some(match d.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
            Severity::Note => DiagnosticSeverity::INFORMATION,
        }),
        code: Some(NumberOrString::String(d.code.as_str().to_string())),
        source: Some("pipec".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..lsp_types::Diagnostic::default()
    }
}

/// The identifier around `at`, with its byte range.
fn word_at(text: &str, at: usize) -> Option<(String, usize, usize)> {
    let is = |c: char| c.is_alphanumeric() || c == '_';
    let start = text[..at].char_indices().rev().take_while(|(_, c)| is(*c)).last().map_or(at, |(i, _)| i);
    let end = text[at..].char_indices().find(|(_, c)| !is(*c)).map_or(text.len(), |(i, _)| at + i);
    (end > start).then(|| (text[start..end].to_string(), start, end))
}

/// Calls `f` on every expression of the program, subexpressions included.
fn walk<'p>(p: &'p Program, f: &mut impl FnMut(&'p TExpr)) {
    fn go<'p>(e: &'p TExpr, f: &mut impl FnMut(&'p TExpr)) {
        f(e);
        for c in e.children() {
            go(c, f);
        }
    }
    for s in &p.sources {
        if let Some(e) = &s.event_time {
            go(e, f);
        }
    }
    for func in &p.functions {
        go(&func.body, f);
    }
    for s in &p.streams {
        for step in &s.steps {
            for e in step_exprs(&step.step) {
                go(e, f);
            }
        }
    }
    for edge in &p.edges {
        for (_, es) in &edge.sink_exprs {
            for e in es {
                go(e, f);
            }
        }
    }
}

fn step_exprs(step: &Step) -> Vec<&TExpr> {
    step.exprs()
}

/// The smallest expression of `file` whose span holds `at`.
fn innermost(p: &Program, file: crate::source::FileId, at: usize) -> Option<&TExpr> {
    let mut best: Option<&TExpr> = None;
    walk(p, &mut |e| {
        let holds = e.span.file == file && (e.span.start as usize) <= at && at <= e.span.end as usize;
        if holds && !e.span.is_empty() && best.is_none_or(|b| e.span.len() <= b.span.len()) {
            best = Some(e);
        }
    });
    best
}

/// The fields of the row a step at `at` reads: the row after the steps before it, or the
/// stream's input.
fn row_at(p: &Program, file: crate::source::FileId, at: usize) -> Vec<(String, Type)> {
    // The stream declared last before `at` (a stream's span may cover only its header).
    let Some(s) =
        p.streams.iter().filter(|s| s.span.file == file && (s.span.start as usize) <= at).max_by_key(|s| s.span.start)
    else {
        return Vec::new();
    };
    let next_item = (p.sources.iter().map(|x| x.span))
        .chain(p.sinks.iter().map(|x| x.span))
        .chain(p.edges.iter().map(|e| e.span))
        .filter(|sp| sp.file == file && sp.start > s.span.start)
        .map(|sp| sp.start as usize)
        .min();
    if next_item.is_some_and(|n| n <= at) {
        return Vec::new();
    }
    if let Some(step) = s.steps.iter().rev().find(|st| (st.span.end as usize) < at) {
        return step.row.fields.clone();
    }
    input_row(p, &s.input).unwrap_or_default()
}

fn input_row(p: &Program, name: &str) -> Option<Vec<(String, Type)>> {
    p.sources
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.row.fields.clone())
        .or_else(|| p.streams.iter().find(|s| s.name == name).map(|s| s.row.fields.clone()))
}

/// Where the field `name` read at `use_at` was made: by an earlier `select`/`derive` of the same
/// stream (its expression), else by the stream's input: a source's record field in the Thrift
/// file, or (following the chain) the stream that made it.
fn field_origin(checked: &Checked, use_at: Span, name: &str) -> Option<Span> {
    let p = &checked.program;
    let s = p
        .streams
        .iter()
        .filter(|s| s.span.file == use_at.file && s.span.start <= use_at.start)
        .max_by_key(|s| s.span.start)?;
    let before = s.steps.iter().filter(|st| st.span.end <= use_at.start);
    if let Some(span) = made_in(before.collect::<Vec<_>>().into_iter().rev(), name) {
        return Some(span);
    }
    from_input(checked, &s.input, name, 0)
}

fn made_in<'a>(steps: impl Iterator<Item = &'a crate::hir::TypedStep>, name: &str) -> Option<Span> {
    for st in steps {
        match &st.step {
            Step::Select(fields) | Step::Derive(fields) | Step::GroupBy(fields) => {
                if let Some((_, e)) = fields.iter().find(|(n, _)| n == name) {
                    return Some(e.span);
                }
                if matches!(st.step, Step::Select(_)) {
                    return None;
                }
            }
            Step::Aggregate { fields, .. } => {
                if let Some((_, e)) = fields.iter().find(|(n, _)| n == name) {
                    return Some(e.span);
                }
            }
            Step::Explode { alias, list } if alias == name => return Some(list.span),
            Step::Score { output, .. } if output == name => return Some(st.span),
            Step::Join { fields, .. } if fields.iter().any(|(n, _)| n == name) => return Some(st.span),
            _ => {}
        }
    }
    None
}

fn from_input(checked: &Checked, input: &str, name: &str, depth: usize) -> Option<Span> {
    let p = &checked.program;
    if let Some(src) = p.sources.iter().find(|s| s.name == input) {
        if let Type::Struct(id, _) = src.record.non_null() {
            return checked.resolved.schema.get_struct(*id).field(name).map(|f| f.span);
        }
        return Some(src.span);
    }
    let s = p.streams.iter().find(|s| s.name == input).filter(|_| depth < 64)?;
    made_in(s.steps.iter().rev(), name).or_else(|| from_input(checked, &s.input, name, depth + 1))
}
